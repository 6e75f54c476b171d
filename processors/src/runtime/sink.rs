//! Where a processor's outputs go: the [`Sink`] trait and its Kafka implementation.
//!
//! A sink takes one record at a time and returns an acknowledgement for it, which completes once
//! the sink holds the record durably (Kafka: the broker acknowledged it; Loki: it accepted the
//! batch). The runtime stores an input's offset only after every sink acknowledged every output
//! of that input (see [`super::output::Outputs`]).

use std::collections::HashMap;
use std::time::Duration;

use bmon_kafka::{AckingProducer, ClientSettings, partition_count, partition_for};
use futures_util::FutureExt;
use rdkafka::error::KafkaError;
use tokio::sync::oneshot;

use super::Output;

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
    /// Another sink refused or lost the record.
    #[error("{sink}: {message}")]
    Refused {
        /// The sink.
        sink: &'static str,
        /// Why.
        message: String,
    },
    /// No sink takes records of this topic.
    #[error("no sink takes topic {0}")]
    Unrouted(String),
}

/// One record's acknowledgement.
#[derive(Debug)]
pub enum Ack {
    /// A Kafka delivery report.
    Kafka(bmon_kafka::Ack),
    /// Held already (an in-memory sink).
    Done,
    /// Another sink's report: `Err` carries its reason.
    Other(&'static str, oneshot::Receiver<Result<(), String>>),
}

impl Ack {
    /// Waits for the outcome.
    pub async fn wait(&mut self) -> Result<(), SinkError> {
        match self {
            Ack::Kafka(rx) => rx.await.unwrap_or(Err(KafkaError::Canceled)).map_err(SinkError::Kafka),
            Ack::Done => Ok(()),
            Ack::Other(sink, rx) => rx
                .await
                .unwrap_or_else(|_| Err("acknowledgement dropped".into()))
                .map_err(|message| SinkError::Refused { sink, message }),
        }
    }

    /// The outcome, if it is in.
    pub fn try_now(&mut self) -> Option<Result<(), SinkError>> {
        self.wait().now_or_never()
    }
}

/// A destination for output records.
pub trait Sink: Send {
    /// Its name, for logs and errors.
    fn name(&self) -> &'static str;

    /// Whether it takes records of `topic`. Each output goes to the first sink that does.
    fn accepts(&self, _topic: &str) -> bool {
        true
    }

    /// Publishes one record. The acknowledgement completes when the sink holds it, or fails.
    fn publish(&mut self, output: &Output) -> Result<Ack, SinkError>;

    /// Waits at most `timeout` for everything published to be acknowledged.
    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError>;

    /// Gives up what is queued and not yet sent (after a failure, or at shutdown after the
    /// grace): those inputs' offsets were not stored, so they are consumed again.
    fn close(&mut self);
}

/// Publishes to Kafka topics, partitioned by key as Kafka's default partitioner does.
pub struct KafkaSink {
    producer: AckingProducer,
    partitions: HashMap<String, i32>,
}

impl KafkaSink {
    /// A sink publishing with `settings`.
    pub fn new(settings: &ClientSettings) -> Result<KafkaSink, SinkError> {
        let producer = AckingProducer::new(&settings.producer_config()?)?;
        Ok(KafkaSink { producer, partitions: HashMap::new() })
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
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn publish(&mut self, o: &Output) -> Result<Ack, SinkError> {
        let p = self.partition(&o.topic, &o.key)?;
        Ok(Ack::Kafka(self.producer.send(&o.topic, p, &o.key, &o.payload)?))
    }

    fn flush(&mut self, timeout: Duration) -> Result<(), SinkError> {
        tokio::task::block_in_place(|| self.producer.flush(timeout)).map_err(SinkError::Kafka)
    }

    fn close(&mut self) {
        self.producer.purge_queued();
    }
}

/// Keeps what it is given, acknowledged at once: for tests, and for in-process consumers of a
/// processor's outputs.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Every record published, in order.
    pub records: Vec<Output>,
}

impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn publish(&mut self, output: &Output) -> Result<Ack, SinkError> {
        self.records.push(output.clone());
        Ok(Ack::Done)
    }

    fn flush(&mut self, _timeout: Duration) -> Result<(), SinkError> {
        Ok(())
    }

    fn close(&mut self) {}
}
