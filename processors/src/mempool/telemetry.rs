//! mempool metrics.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, MetricDef};

/// Rejections.
pub static REJECTIONS: MetricDef = MetricDef::counter(
    "bmon_mempool_rejections_total",
    "Transactions a node rejected from its mempool, by bounded reason (Core's reject reasons, or other).",
    &["network", "node", "reason"],
);
/// Rejection spikes.
pub static SPIKES: MetricDef = MetricDef::counter(
    "bmon_mempool_rejection_spikes_total",
    "Buckets in which a node rejected transactions for one reason more than spike_factor times its own baseline, above spike_floor.",
    &["network", "node", "reason"],
);
/// Policy divergences.
pub static DIVERGENCES: MetricDef = MetricDef::counter(
    "bmon_mempool_policy_divergences_total",
    "Transactions other nodes of the network accepted that this node rejected for a policy reason, by bounded reason.",
    &["network", "node", "reason"],
);
/// Mempool size.
pub static SIZE: MetricDef = MetricDef::gauge(
    "bmon_mempool_size",
    "Transactions in each node's mempool (getmempoolinfo).",
    "transactions",
    &["network", "node"],
);
/// Mempool bytes.
pub static BYTES: MetricDef = MetricDef::gauge(
    "bmon_mempool_bytes",
    "Sum of the sizes of the transactions in each node's mempool (getmempoolinfo).",
    "bytes",
    &["network", "node"],
);
/// Mempool memory usage.
pub static USAGE: MetricDef = MetricDef::gauge(
    "bmon_mempool_usage_bytes",
    "Memory each node's mempool uses (getmempoolinfo).",
    "bytes",
    &["network", "node"],
);
/// Mempool minimum fee.
pub static MIN_FEE: MetricDef = MetricDef::gauge(
    "bmon_mempool_min_fee_rate",
    "The fee rate a transaction needs to enter each node's mempool, coins per kvB (getmempoolinfo's mempoolminfee).",
    "",
    &["network", "node"],
);
/// Empty mempools.
pub static EMPTY: MetricDef = MetricDef::gauge(
    "bmon_mempool_empty",
    "1 while a node's mempool has been empty for empty_after_s while others hold transactions (or always, if configured).",
    "",
    &["network", "node"],
);

/// mempool's metrics.
pub const COMPONENT: Component = Component {
    name: "mempool",
    metrics: &[&REJECTIONS, &SPIKES, &DIVERGENCES, &SIZE, &BYTES, &USAGE, &MIN_FEE, &EMPTY],
};
