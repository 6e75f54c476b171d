//! `logparse` settings.

use serde::Deserialize;

/// Settings of the logparse processor (the `[logparse]` table of the processor config).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogParseConfig {
    /// Topic of log facts. Default `bmon.node.log`.
    pub log_topic: String,
    /// Topic of ZMQ facts. Default `bmon.node.zmq`.
    pub zmq_topic: String,
    /// Where typed events go. Default `bmon.node.events`.
    pub events_topic: String,
    /// Where observations go. Default `bmon.observations`.
    pub observations_topic: String,
    /// Objects remembered per node for once-only observations. Default 100000 (more than an
    /// hour of mainnet transactions).
    pub tracked_objects_per_node: usize,
    /// Publish `unknown` events too (every unparsed line). Default true.
    pub emit_unknown: bool,
    /// A node without facts for this long, s, is forgotten (its once-only and dedup state).
    /// Default 3600.
    pub node_idle_s: u64,
}

impl Default for LogParseConfig {
    fn default() -> Self {
        LogParseConfig {
            log_topic: "bmon.node.log".into(),
            zmq_topic: "bmon.node.zmq".into(),
            events_topic: "bmon.node.events".into(),
            observations_topic: "bmon.observations".into(),
            tracked_objects_per_node: 100_000,
            emit_unknown: true,
            node_idle_s: 3600,
        }
    }
}
