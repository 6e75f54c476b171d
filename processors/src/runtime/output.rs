//! Publishing outputs with per-record acknowledgement tracking.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bmon_kafka::{Ack, AckingProducer, ClientSettings, partition_count, partition_for};
use rdkafka::error::KafkaError;

use super::Output;

/// The acknowledgements owed for one input record, and the offset to store once they arrive.
pub(crate) struct Pending {
    pub(crate) source: Option<(String, i32, i64)>,
    acks: Vec<Ack>,
    /// The topic of each output, for the outputs metric once all are acknowledged.
    pub(crate) topics: Vec<String>,
}

/// A producer that remembers partition counts and which input each output belongs to.
pub struct OutputSink {
    producer: AckingProducer,
    partitions: HashMap<String, i32>,
    pending: VecDeque<Pending>,
}

/// Publishing failed; the loop restarts from the last stored offsets.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The client could not be built or the broker refused.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// An output topic does not exist.
    #[error("topic {0} does not exist (run `bmon topology apply`)")]
    NoTopic(String),
    /// Client settings could not be read.
    #[error("settings: {0}")]
    Settings(#[from] std::io::Error),
}

impl OutputSink {
    /// A sink publishing with `settings`.
    pub fn new(settings: &ClientSettings) -> Result<OutputSink, SinkError> {
        let producer = AckingProducer::new(&settings.producer_config()?)?;
        Ok(OutputSink { producer, partitions: HashMap::new(), pending: VecDeque::new() })
    }

    fn partition(&mut self, topic: &str, key: &[u8]) -> Result<i32, SinkError> {
        let count = match self.partitions.get(topic) {
            Some(n) => *n,
            None => {
                // A metadata round trip (up to 10 s while the broker is away): off the async
                // threads that serve the health listener.
                let client = self.producer.client();
                let n = tokio::task::block_in_place(|| partition_count(client, topic, Duration::from_secs(10)))?
                    .ok_or_else(|| SinkError::NoTopic(topic.to_owned()))?;
                self.partitions.insert(topic.to_owned(), n);
                n
            }
        };
        Ok(partition_for(key, count))
    }

    /// Queues `outputs`, owed by the input at `source` (topic, partition, offset), if any.
    pub(crate) fn send(&mut self, source: Option<(String, i32, i64)>, outputs: &[Output]) -> Result<(), SinkError> {
        let mut acks = Vec::with_capacity(outputs.len());
        for o in outputs {
            let p = self.partition(&o.topic, &o.key)?;
            acks.push(self.producer.send(&o.topic, p, &o.key, &o.payload)?);
        }
        let topics = outputs.iter().map(|o| o.topic.clone()).collect();
        self.pending.push_back(Pending { source, acks, topics });
        Ok(())
    }

    /// Records whose outputs are awaited.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Pops the oldest pending record once all its outputs are acknowledged. With `wait`, waits
    /// for them; without, returns `Ok(None)` if any is still outstanding.
    pub(crate) async fn complete_front(&mut self, wait: bool) -> Result<Option<Pending>, SinkError> {
        let Some(front) = self.pending.front_mut() else { return Ok(None) };
        while let Some(ack) = front.acks.last_mut() {
            let result = if wait {
                ack.await.ok()
            } else {
                match ack.try_recv() {
                    Ok(r) => Some(r),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return Ok(None),
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => None,
                }
            };
            match result {
                Some(Ok(())) => {
                    front.acks.pop();
                }
                Some(Err(e)) => return Err(SinkError::Kafka(e)),
                None => return Err(SinkError::Kafka(KafkaError::Canceled)),
            }
        }
        Ok(self.pending.pop_front())
    }

    /// Drops what is pending (after a failure: those inputs are consumed again).
    pub(crate) fn abandon(&mut self) {
        self.pending.clear();
    }
}
