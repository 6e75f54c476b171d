//! The shape of `topology.yaml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Retention;

/// The whole topology file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Format version; only 1 exists.
    pub version: u32,
    /// Directory of `.avsc` files, relative to the topology file. Default `schemas/avro`.
    #[serde(default = "default_schema_dir")]
    pub schema_dir: PathBuf,
    /// Record keys topics may use, by name.
    pub keys: BTreeMap<String, KeyDecl>,
    /// Every topic bmon reads or writes.
    pub topics: Vec<Topic>,
    /// Every processor, with its state stores.
    #[serde(default)]
    pub processors: Vec<Processor>,
}

pub(crate) fn default_schema_dir() -> PathBuf {
    PathBuf::from("schemas/avro")
}

/// A record key kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDecl {
    /// What the key is and why records are keyed by it.
    pub doc: String,
}

/// Kafka `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    /// Delete segments past retention.
    Delete,
    /// Keep the newest record per key.
    Compact,
}

impl CleanupPolicy {
    /// The Kafka config value.
    pub fn as_kafka(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

/// One topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// What flows through it.
    pub doc: String,
    /// Name of a declared key.
    pub key: String,
    /// Schema families whose records may appear as values.
    pub value_schemas: Vec<String>,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor; the apply command's default when absent.
    #[serde(default)]
    pub replication_factor: Option<i16>,
    /// `retention.ms`.
    pub retention: Retention,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `max.message.bytes`.
    pub max_message_bytes: i64,
}

impl Topic {
    /// The topic-level configs bmon manages, as Kafka config name and value.
    pub fn kafka_configs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cleanup.policy", self.cleanup_policy.as_kafka().to_owned()),
            ("retention.ms", self.retention.kafka_ms().to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
        ]
    }
}

/// How a state store is recovered on a replica that did not build it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Replay a compacted changelog topic (the Kafka Streams model).
    Changelog,
    /// Offsets are stored atomically with the state; rebuild by replaying input from the window
    /// start (the Arroyo/Materialize model).
    Replay,
    /// Not recovered: a replica without it starts empty, which may repeat outputs but never
    /// changes results (the Loki sink's pushed offsets).
    None,
}

/// One state store of a processor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateStore {
    /// Store name, unique within the processor.
    pub name: String,
    /// What it holds.
    pub doc: String,
    /// Recovery mode.
    pub recovery: Recovery,
    /// Compacted changelog topic, for `recovery: changelog`.
    #[serde(default)]
    pub changelog_topic: Option<String>,
    /// How far back state reaches, for `recovery: replay`.
    #[serde(default)]
    pub window: Option<Retention>,
}

/// One processor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    /// Processor name.
    pub name: String,
    /// What it does.
    pub doc: String,
    /// Kafka consumer group.
    pub consumer_group: String,
    /// Topics it consumes.
    pub inputs: Vec<String>,
    /// Topics it produces to.
    pub outputs: Vec<String>,
    /// Where records it cannot handle go.
    pub dead_letter: String,
    /// Its state stores.
    #[serde(default)]
    pub state_stores: Vec<StateStore>,
}
