//! Loki sink metrics.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, LATENCY, MetricDef};

/// Entries Loki accepted.
pub static ENTRIES: MetricDef =
    MetricDef::counter("bmon_loki_entries_total", "Entries Loki accepted, by source (log or event).", &["source"]);
/// Request bytes Loki accepted.
pub static BYTES: MetricDef = MetricDef::counter(
    "bmon_loki_request_bytes_total",
    "Bytes of push requests Loki accepted (compressed, as sent).",
    &[],
);
/// Pushes.
pub static PUSHES: MetricDef = MetricDef::counter(
    "bmon_loki_pushes_total",
    "Push requests, by outcome: accepted, retry (will be sent again) or refused (split, then dead-lettered).",
    &["outcome"],
);
/// Push latency.
pub static PUSH_SECONDS: MetricDef = MetricDef::histogram(
    "bmon_loki_push_seconds",
    "Time from sending a push request to Loki's answer.",
    "seconds",
    &[],
    LATENCY,
);
/// Retries.
pub static RETRIES: MetricDef = MetricDef::counter(
    "bmon_loki_retries_total",
    "Pushes to be sent again after a backoff, by reason (rate_limited, server_error, unauthorized, not_found, timeout, transport).",
    &["reason"],
);
/// Refused entries.
pub static REFUSED: MetricDef = MetricDef::counter(
    "bmon_loki_refused_entries_total",
    "Entries Loki refused on their own (after splitting the batch), dead-lettered, by reason (too_far_behind, too_large, invalid_labels, bad_request).",
    &["reason"],
);
/// Records skipped after a restart.
pub static SKIPPED: MetricDef = MetricDef::counter(
    "bmon_loki_already_pushed_total",
    "Input records skipped because Loki already held their entries (consumed again after a restart).",
    &[],
);
/// Entries waiting.
pub static PENDING: MetricDef =
    MetricDef::gauge("bmon_loki_pending_entries", "Entries received by the sink that Loki does not hold yet.", "", &[]);
/// Newest entry held.
pub static LAST_PUSHED: MetricDef = MetricDef::gauge(
    "bmon_loki_last_accepted_timestamp_seconds",
    "Wall-clock time of the last push Loki accepted (alert on its age).",
    "seconds",
    &[],
);

/// Every Loki sink metric.
pub const COMPONENT: Component = Component {
    name: "loki",
    metrics: &[&ENTRIES, &BYTES, &PUSHES, &PUSH_SECONDS, &RETRIES, &REFUSED, &SKIPPED, &PENDING, &LAST_PUSHED],
};
