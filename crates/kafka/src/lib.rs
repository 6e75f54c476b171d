//! Kafka wiring for bmon over rdkafka: client settings that work against Redpanda, Kafka and the
//! tansu test broker, and the idempotent `topology apply`.
//!
//! Only the Kafka protocol is used, so anything that speaks it (Redpanda in production) works.

pub mod acking;
pub mod admin;
pub mod partition;
pub mod settings;

pub use acking::{Ack, AckingProducer, Batch};
pub use admin::{ApplyReport, ExistingTopic, KafkaError, Plan, TopicDiff, apply_topology, describe_topics, plan};
pub use partition::{partition_count, partition_for};
pub use settings::{ClientSettings, Security};
