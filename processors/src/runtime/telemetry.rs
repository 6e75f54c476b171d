//! Runtime metrics (every processor): records, outputs, dead letters, replay, rebalances.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, LATENCY, MetricDef};

/// Input records processed, by processor and topic.
pub static RECORDS: MetricDef = MetricDef::counter(
    "bmon_processor_records_total",
    "Input records processed, by processor and topic.",
    &["processor", "topic"],
);
/// Input records replayed to rebuild state.
pub static REPLAYED: MetricDef = MetricDef::counter(
    "bmon_processor_replayed_records_total",
    "Input records replayed to rebuild state (their outputs were published before), by processor.",
    &["processor"],
);
/// Records sent to the dead-letter topic.
pub static DEAD_LETTERS: MetricDef = MetricDef::counter(
    "bmon_processor_dead_letters_total",
    "Records sent to the dead-letter topic, by processor and reason class.",
    &["processor", "reason"],
);
/// Output records published and acknowledged.
pub static OUTPUTS: MetricDef = MetricDef::counter(
    "bmon_processor_outputs_total",
    "Output records published and acknowledged by the broker, by processor and topic.",
    &["processor", "topic"],
);
/// Partitions assigned to this instance.
pub static ASSIGNED: MetricDef = MetricDef::gauge(
    "bmon_processor_assigned_partitions",
    "Input partitions assigned to this instance, by processor.",
    "",
    &["processor"],
);
/// Delivery failures that restarted the consumer loop.
pub static RESTARTS: MetricDef = MetricDef::counter(
    "bmon_processor_restarts_total",
    "Delivery failures that restarted the consumer loop from the stored offsets, by processor.",
    &["processor"],
);
/// Age of each live input record when processed.
pub static RECORD_AGE: MetricDef = MetricDef::histogram(
    "bmon_processor_record_age_seconds",
    "Age of each live input record when processed (now minus its broker timestamp), by processor.",
    "seconds",
    &["processor"],
    LATENCY,
);

/// The runtime's metrics.
pub const COMPONENT: Component = Component {
    name: "runtime",
    metrics: &[&RECORDS, &REPLAYED, &DEAD_LETTERS, &OUTPUTS, &ASSIGNED, &RESTARTS, &RECORD_AGE],
};
