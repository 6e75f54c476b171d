//! A non-blocking publisher of facts to one node's partition of a topic.

use std::time::Duration;

use bmon_kafka::{ClientSettings, partition_count, partition_for};
use bmon_schemas::{Codec, Record};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::publish::PublishError;

/// Sends facts without waiting; rdkafka's bounded queue absorbs broker outages and retries
/// deliveries until the broker is back. When the queue is full, `send` says so and the caller counts
/// the fact as dropped.
pub struct FactSink {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    partition: i32,
    key: String,
    codec: Codec,
}

impl FactSink {
    /// A sink for `key`'s partition of `topic`. `max_queued` bounds the facts held while the broker
    /// is unreachable.
    pub fn new(settings: &ClientSettings, topic: &str, key: &str, max_queued: u32) -> Result<FactSink, PublishError> {
        let mut cfg = settings.producer_config().map_err(|e| PublishError::Client(e.to_string()))?;
        cfg.set("enable.idempotence", "true")
            // Keep retrying while the broker is away; the queue bound is the limit, not time.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", max_queued.to_string());
        let producer: ThreadedProducer<DefaultProducerContext> =
            cfg.create().map_err(|e| PublishError::Client(e.to_string()))?;
        let partitions = partition_count(producer.client(), topic, Duration::from_secs(10))
            .map_err(|e| PublishError::Client(e.to_string()))?
            .ok_or_else(|| PublishError::NoTopic(topic.to_owned()))?;
        Ok(FactSink {
            producer,
            topic: topic.to_owned(),
            partition: partition_for(key.as_bytes(), partitions),
            key: key.to_owned(),
            codec: Codec::default(),
        })
    }

    /// Queues `fact`; false if it could not be queued (queue full, or not encodable).
    pub fn send<T: Record>(&self, fact: &T) -> bool {
        let Ok(bytes) = self.codec.encode(fact) else { return false };
        let record = BaseRecord::to(&self.topic).partition(self.partition).key(&self.key).payload(&bytes);
        self.producer.send(record).is_ok()
    }

    /// Facts queued but not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued fact to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.producer.flush(timeout).is_ok()
    }
}
