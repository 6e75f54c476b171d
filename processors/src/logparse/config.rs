//! `logparse` settings.

use serde::Deserialize;

/// Settings of the logparse processor (the `[logparse]` table of the processor config). Its
/// topics come from topology.yaml (see [`super::wiring::LogParseTopics`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogParseConfig {
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
        LogParseConfig { tracked_objects_per_node: 100_000, emit_unknown: true, node_idle_s: 3600 }
    }
}
