//! Propagation metrics, with their explicit buckets.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, LATENCY, MetricDef};

/// Buckets for spreads and lags: 1 ms to 10 min.
pub const LAG_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Spread of closed windows.
pub static SPREAD: MetricDef = MetricDef::histogram(
    "bmon_propagation_spread_seconds",
    "Spread (last minus first sighting) of closed windows, by network, object and stage.",
    "seconds",
    &["network", "object", "stage"],
    LAG_BUCKETS,
);
/// Each node's lag behind the first node.
pub static NODE_LAG: MetricDef = MetricDef::histogram(
    "bmon_propagation_node_lag_seconds",
    "Each node's lag behind the first node to see an object, by network, object, stage and node.",
    "seconds",
    &["network", "object", "stage", "node"],
    LAG_BUCKETS,
);
/// Expected nodes missing from a closed window.
pub static MISSING: MetricDef = MetricDef::counter(
    "bmon_propagation_missing_total",
    "Expected nodes missing from a closed window, by network, stage and node.",
    &["network", "stage", "node"],
);
/// Observations after their window closed.
pub static LATE: MetricDef = MetricDef::counter(
    "bmon_propagation_late_observations_total",
    "Observations that arrived after their window closed (each amends it), by network, stage and node.",
    &["network", "stage", "node"],
);
/// Windows currently open.
pub static OPEN_WINDOWS: MetricDef =
    MetricDef::gauge("bmon_propagation_open_windows", "Windows currently open in this instance.", "", &[]);
/// Summaries published.
pub static SUMMARIES: MetricDef = MetricDef::counter(
    "bmon_propagation_summaries_total",
    "Summaries published (each revision once), by close reason.",
    &["close_reason"],
);
/// Spreads above the rolling baseline.
pub static ANOMALIES: MetricDef = MetricDef::counter(
    "bmon_propagation_anomalies_total",
    "Spreads above their network and stage's rolling baseline quantile, by network and stage.",
    &["network", "stage"],
);
/// Duplicate observations ignored.
pub static DUPLICATES: MetricDef = MetricDef::counter(
    "bmon_propagation_duplicate_observations_total",
    "Observations of a (node, stage, object) already seen, ignored.",
    &[],
);
/// Estimated clock offset of a node's log clock behind its producer host.
pub static CLOCK_OFFSET: MetricDef = MetricDef::gauge(
    "bmon_node_clock_offset_seconds",
    "Estimated offset of a node's log clock behind its producer host's clock (NaN once the node departed), by node.",
    "seconds",
    &["node"],
);
/// Log observations whose node clock was an outlier.
pub static CLOCK_OUTLIERS: MetricDef = MetricDef::counter(
    "bmon_propagation_clock_outliers_total",
    "Log observations whose node clock was further than clock_outlier_s from the producer's (the receive time was used), by node.",
    &["node"],
);
/// Wall-clock time from the last needed fact to the summary.
pub static SUMMARY_LATENCY: MetricDef = MetricDef::histogram(
    "bmon_propagation_summary_latency_seconds",
    "Wall-clock time from a window's closing sighting to its summary.",
    "seconds",
    &[],
    LATENCY,
);

/// propagation's metrics.
pub const COMPONENT: Component = Component {
    name: "propagation",
    metrics: &[
        &SPREAD,
        &NODE_LAG,
        &MISSING,
        &LATE,
        &OPEN_WINDOWS,
        &SUMMARIES,
        &ANOMALIES,
        &DUPLICATES,
        &CLOCK_OFFSET,
        &CLOCK_OUTLIERS,
        &SUMMARY_LATENCY,
    ],
};
