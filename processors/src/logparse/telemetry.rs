//! logparse metrics.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, MetricDef};

/// Redelivered facts skipped by envelope key.
pub static DUPLICATES: MetricDef = MetricDef::counter(
    "bmon_logparse_duplicate_facts_total",
    "Redelivered facts skipped by their envelope's (node, stream, epoch, offset), by stream kind (log, zmq).",
    &["stream"],
);

/// logparse's metrics.
pub const COMPONENT: Component = Component { name: "logparse", metrics: &[&DUPLICATES] };
