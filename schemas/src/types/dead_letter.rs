use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::registry::Record;

/// A record a processor could not handle, kept with the reason (schema v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Original key.
    #[serde(with = "apache_avro::serde::bytes_opt")]
    pub key: Option<Vec<u8>>,
    /// Original value.
    #[serde(with = "apache_avro::serde::bytes")]
    pub payload: Vec<u8>,
    /// Original Kafka headers (added in v2; empty when read from v1 data).
    pub headers: BTreeMap<String, ByteBuf>,
    /// Human-readable cause.
    pub reason: String,
    /// Stable class: `decode`, `validation`, `processing`.
    pub error_class: String,
    /// Processor that gave up.
    pub processor: String,
    /// When, µs.
    pub failed_at_us: i64,
}

impl Record for DeadLetter {
    const FAMILY: &'static str = "dead_letter";
}
