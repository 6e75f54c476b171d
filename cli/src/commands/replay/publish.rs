//! `--out-topic`: the replay's records published to a topic of their own, each with a
//! `bmon-replay-id` header (and `bmon-replay-topic`, the topic it would have gone to live).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use bmon_kafka::{ClientSettings, partition_for};
use bmon_processors::runtime::Output;
use bmon_topology::Topology;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use bmon_processors::runtime::REPLAY_ID_HEADER;
/// The header naming the topic a record would have gone to live.
pub const REPLAY_TOPIC_HEADER: &str = "bmon-replay-topic";

/// Counts failed deliveries.
#[derive(Clone, Default)]
struct Deliveries {
    failed: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Publishes a replay's records.
pub struct Publisher {
    producer: BaseProducer<Deliveries>,
    deliveries: Deliveries,
    topic: String,
    partitions: i32,
    id: String,
    sent: u64,
}

impl Publisher {
    /// Opens `topic` for the replay `id`, creating it (shaped as the live events topic) if it
    /// does not exist.
    pub fn open(
        settings: &ClientSettings,
        topology: &Topology,
        topic: &str,
        id: &str,
        replication_factor: i16,
    ) -> anyhow::Result<Publisher> {
        let events = topology.topic_of(<bmon_schemas::PropagationSummary as bmon_schemas::Record>::FAMILY)?.clone();
        let mut shape = topology.clone();
        shape.processors.clear();
        shape.topics = vec![bmon_topology::Topic { name: topic.to_owned(), ..events }];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let timeout = Duration::from_secs(30);
        rt.block_on(bmon_kafka::admin::apply_topology(&shape, settings, replication_factor, timeout))
            .with_context(|| format!("creating --out-topic {topic}"))?;
        let described = rt
            .block_on(bmon_kafka::admin::describe_topics(settings, &[topic.to_owned()], timeout))
            .with_context(|| format!("describing --out-topic {topic}"))?;
        let partitions = described.get(topic).map(|t| t.partitions).ok_or_else(|| anyhow!("{topic} is not visible"))?;
        let deliveries = Deliveries::default();
        let producer = settings.producer_config()?.create_with_context(deliveries.clone())?;
        Ok(Publisher { producer, deliveries, topic: topic.to_owned(), partitions, id: id.to_owned(), sent: 0 })
    }

    /// Queues one record (waiting while the local queue is full).
    pub fn send(&mut self, output: &Output) -> anyhow::Result<()> {
        let headers = OwnedHeaders::new()
            .insert(Header { key: REPLAY_ID_HEADER, value: Some(self.id.as_bytes()) })
            .insert(Header { key: REPLAY_TOPIC_HEADER, value: Some(output.topic.as_bytes()) });
        let partition = partition_for(&output.key, self.partitions);
        let mut record =
            BaseRecord::to(&self.topic).key(&output.key).payload(&output.payload).partition(partition).headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(anyhow!("publishing to {}: {e}", self.topic)),
            }
        }
        self.sent += 1;
        if self.sent.is_multiple_of(1000) {
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Waits for every record to be acknowledged; returns how many were published.
    pub fn finish(self) -> anyhow::Result<u64> {
        self.producer.flush(Duration::from_secs(120)).with_context(|| format!("flushing {}", self.topic))?;
        let failed = self.deliveries.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = self.deliveries.first_error.lock().ok().and_then(|f| f.clone()).unwrap_or_default();
            return Err(anyhow!(
                "{failed} of {} records were not delivered to {} (first: {first})",
                self.sent,
                self.topic
            ));
        }
        Ok(self.sent)
    }
}
