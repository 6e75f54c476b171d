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

/// Missing transactions.
pub static MISSING: MetricDef = MetricDef::gauge(
    "bmon_mempool_missing_txs",
    "Settled transactions the majority of a network's nodes hold that this node's mempool lacks (conflicts apart).",
    "transactions",
    &["network", "node"],
);
/// Extra transactions.
pub static EXTRA: MetricDef = MetricDef::gauge(
    "bmon_mempool_extra_txs",
    "Settled transactions this node's mempool holds that the majority of its network's nodes lack (conflicts apart).",
    "transactions",
    &["network", "node"],
);
/// Conflicting transactions.
pub static CONFLICTING: MetricDef = MetricDef::gauge(
    "bmon_mempool_conflicting_txs",
    "Transactions other nodes hold that this node refused as conflicting with one it holds.",
    "transactions",
    &["network", "node"],
);
/// Similarity.
pub static SIMILARITY: MetricDef = MetricDef::gauge(
    "bmon_mempool_similarity",
    "Jaccard similarity of this node's mempool to its network's majority set, settled transactions only.",
    "",
    &["network", "node"],
);
/// Diverged.
pub static DIVERGED: MetricDef = MetricDef::gauge(
    "bmon_mempool_diverged",
    "1 while this node's mempool has at least mempool_min_txs missing and extra transactions.",
    "",
    &["network", "node"],
);
/// Tracked transactions.
pub static TRACKED: MetricDef = MetricDef::gauge(
    "bmon_mempool_tracked_txs",
    "Transactions held by any node of the network, as the mempool processor tracks them.",
    "transactions",
    &["network"],
);
/// Feed gaps.
pub static GAPS: MetricDef = MetricDef::counter(
    "bmon_mempool_list_gaps_total",
    "Mempool list facts out of sequence (a lost fact, a producer restart): the node's list is unknown until its next full snapshot.",
    &["network", "node"],
);
/// Conflicts.
pub static CONFLICTS: MetricDef = MetricDef::counter(
    "bmon_mempool_conflicts_total",
    "Transactions some nodes hold and another refused as conflicting (double spends, refused replacements).",
    &["network"],
);
/// Template similarity.
pub static TEMPLATE_SIMILARITY: MetricDef = MetricDef::gauge(
    "bmon_mempool_template_similarity",
    "Jaccard similarity of this node's block template to the majority of its network's templates on the same previous block.",
    "",
    &["network", "node"],
);
/// Template missing.
pub static TEMPLATE_MISSING: MetricDef = MetricDef::gauge(
    "bmon_mempool_template_missing_txs",
    "Transactions the majority of templates on the same previous block hold that this node's lacks.",
    "transactions",
    &["network", "node"],
);
/// Template extra.
pub static TEMPLATE_EXTRA: MetricDef = MetricDef::gauge(
    "bmon_mempool_template_extra_txs",
    "Transactions this node's template holds that the majority of templates on the same previous block lack.",
    "transactions",
    &["network", "node"],
);
/// Template divergences.
pub static TEMPLATE_DIVERGENCES: MetricDef = MetricDef::counter(
    "bmon_mempool_template_divergences_total",
    "Blocks on which this node's template differed from the majority's by at least template_min_txs transactions.",
    &["network", "node"],
);

/// Late views.
pub static LATE_VIEWS: MetricDef = MetricDef::counter(
    "bmon_mempool_late_views_total",
    "View records and conflict markers that arrived more than order_bound_s behind the newest of their network, so applied out of event-time order.",
    &["network", "node"],
);
/// Held views.
pub static HELD_VIEWS: MetricDef = MetricDef::gauge(
    "bmon_mempool_held_views",
    "View records and conflict markers read and held for event-time order (order_bound_s), per network.",
    "records",
    &["network"],
);

/// mempool's metrics.
pub const COMPONENT: Component = Component {
    name: "mempool",
    metrics: &[
        &REJECTIONS,
        &SPIKES,
        &DIVERGENCES,
        &SIZE,
        &BYTES,
        &USAGE,
        &MIN_FEE,
        &EMPTY,
        &MISSING,
        &EXTRA,
        &CONFLICTING,
        &SIMILARITY,
        &DIVERGED,
        &TRACKED,
        &GAPS,
        &CONFLICTS,
        &TEMPLATE_SIMILARITY,
        &TEMPLATE_MISSING,
        &TEMPLATE_EXTRA,
        &TEMPLATE_DIVERGENCES,
        &LATE_VIEWS,
        &HELD_VIEWS,
    ],
};
