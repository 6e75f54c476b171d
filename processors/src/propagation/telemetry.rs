//! Propagation metric names and their explicit buckets.

/// Spread (max − min lag) of closed windows, seconds, by network, object and stage (histogram).
pub const SPREAD: &str = "bmon_propagation_spread_seconds";
/// Each node's lag behind the first node, seconds, by network, object, stage and node (histogram).
pub const NODE_LAG: &str = "bmon_propagation_node_lag_seconds";
/// Expected nodes missing from a closed window, by network, stage and node (counter).
pub const MISSING: &str = "bmon_propagation_missing_total";
/// Observations after their window closed, by network, stage and node (counter).
pub const LATE: &str = "bmon_propagation_late_observations_total";
/// Windows currently open (gauge).
pub const OPEN_WINDOWS: &str = "bmon_propagation_open_windows";
/// Summaries published, by close reason (counter).
pub const SUMMARIES: &str = "bmon_propagation_summaries_total";
/// Spreads above the rolling baseline, by network and stage (counter).
pub const ANOMALIES: &str = "bmon_propagation_anomalies_total";
/// Duplicate observations ignored (counter).
pub const DUPLICATES: &str = "bmon_propagation_duplicate_observations_total";
/// Estimated clock offset of a node's log clock behind its producer host, seconds, by node (gauge).
pub const CLOCK_OFFSET: &str = "bmon_node_clock_offset_seconds";
/// Log observations whose node clock was further from its producer host's clock than
/// `clock_outlier_s` (the receive time was used instead), by node (counter).
pub const CLOCK_OUTLIERS: &str = "bmon_propagation_clock_outliers_total";
/// Wall-clock time from the producer receiving the last needed fact to the summary, seconds (histogram).
pub const SUMMARY_LATENCY: &str = "bmon_propagation_summary_latency_seconds";

/// Buckets for spreads and lags: 1 ms to 10 min.
pub const LAG_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// Per-metric buckets for [`bmon_service::install_recorder`].
pub fn buckets() -> Vec<(&'static str, &'static [f64])> {
    vec![(SPREAD, LAG_BUCKETS), (NODE_LAG, LAG_BUCKETS)]
}
