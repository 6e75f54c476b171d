//! chain metrics. Times are exported as Unix timestamps (`…_timestamp_seconds`), so that ages
//! (`time() - …`) are computed by Prometheus and never go stale in the exporter.

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, MetricDef};

/// Buckets for reorg depths.
pub const DEPTH_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 50.0, 100.0];
/// Buckets for block handling times: 1 ms to 10 min.
pub const TIME_BUCKETS: &[f64] =
    &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0];

/// Each node's active tip height.
pub static TIP_HEIGHT: MetricDef =
    MetricDef::gauge("bmon_chain_tip_height", "Each node's active tip height.", "blocks", &["network", "node"]);
/// Each node's tip block time.
pub static TIP_BLOCK_TIME: MetricDef = MetricDef::gauge(
    "bmon_chain_tip_block_timestamp_seconds",
    "The block time of each node's active tip (its age is time() minus this).",
    "seconds",
    &["network", "node"],
);
/// When each node's tip last changed.
pub static TIP_CHANGED: MetricDef = MetricDef::gauge(
    "bmon_chain_tip_changed_timestamp_seconds",
    "When each node's active tip last changed, by the node's log time.",
    "seconds",
    &["network", "node"],
);
/// Each network's best height.
pub static BEST_HEIGHT: MetricDef = MetricDef::gauge(
    "bmon_chain_best_height",
    "The highest active tip among a network's nodes, from their getblockchaininfo.",
    "blocks",
    &["network"],
);
/// Stale blocks per window.
pub static STALE_BLOCKS: MetricDef = MetricDef::gauge(
    "bmon_chain_stale_blocks",
    "Blocks among a network's last `window` heights (1008, 2016) that were some node's tip and are not on its active chain, from the nodes' getchaintips.",
    "blocks",
    &["network", "window"],
);
/// Stale-block rate per window.
pub static STALE_RATE: MetricDef = MetricDef::gauge(
    "bmon_chain_stale_block_rate",
    "bmon_chain_stale_blocks divided by the window (1008 or 2016 blocks).",
    "",
    &["network", "window"],
);
/// Each node's connect time over the median, for the last block compared.
pub static CONNECT_RATIO: MetricDef = MetricDef::gauge(
    "bmon_chain_block_connect_ratio",
    "Each node's time to connect the last block compared across its network, over the nodes' median.",
    "",
    &["network", "node"],
);
/// Blocks a node was the slowest to connect.
pub static SLOWEST: MetricDef = MetricDef::counter(
    "bmon_chain_slowest_block_connects_total",
    "Blocks compared across a network's nodes for which this node was the slowest to connect.",
    &["network", "node"],
);
/// Connect times that came after their block's comparison closed.
pub static CONNECTS_LATE: MetricDef = MetricDef::counter(
    "bmon_chain_block_connects_late_total",
    "Block connect times that came after the block's comparison had closed (left out of it).",
    &["network"],
);
/// Reorgs.
pub static REORGS: MetricDef =
    MetricDef::counter("bmon_chain_reorgs_total", "Reorgs of each node's active chain.", &["network", "node"]);
/// Reorg depths.
pub static REORG_DEPTH: MetricDef = MetricDef::histogram(
    "bmon_chain_reorg_depth_blocks",
    "Depth of each node's reorgs (old height minus the fork's).",
    "blocks",
    &["network", "node"],
    DEPTH_BUCKETS,
);
/// Selfish-mining suspects.
pub static SELFISH: MetricDef = MetricDef::counter(
    "bmon_chain_selfish_mining_suspects_total",
    "Reorgs won by two or more blocks that all arrived within the configured span.",
    &["network", "node"],
);
/// Stale tips.
pub static STALE: MetricDef = MetricDef::counter(
    "bmon_chain_stale_tips_total",
    "Tips reported stale (older than the limit by block time).",
    &["network", "node"],
);
/// Invalid blocks.
pub static INVALID: MetricDef = MetricDef::counter(
    "bmon_chain_invalid_blocks_total",
    "Blocks a node found invalid, by reject reason (Core's reasons; others count as other).",
    &["network", "node", "reason"],
);
/// Blocks behind the best.
pub static BEHIND: MetricDef = MetricDef::gauge(
    "bmon_chain_blocks_behind",
    "How many blocks each node's tip is behind its network's best.",
    "blocks",
    &["network", "node"],
);
/// Lagging.
pub static LAGGING: MetricDef = MetricDef::gauge(
    "bmon_chain_lagging",
    "1 while a node is lagging (entered at lag_enter blocks behind, left at lag_exit).",
    "",
    &["network", "node"],
);
/// Chain split.
pub static SPLIT: MetricDef = MetricDef::gauge(
    "bmon_chain_split",
    "1 while a network's nodes have been on different tips at one height for longer than split_after_s.",
    "",
    &["network"],
);
/// In initial block download.
pub static IBD: MetricDef = MetricDef::gauge(
    "bmon_chain_initial_block_download",
    "1 while a node says it is in initial block download.",
    "",
    &["network", "node"],
);
/// When each node last started.
pub static STARTED: MetricDef = MetricDef::gauge(
    "bmon_chain_node_start_timestamp_seconds",
    "When each node last started, by its log: alerts hold back while it catches up.",
    "seconds",
    &["network", "node"],
);
/// Node starts.
pub static STARTS: MetricDef =
    MetricDef::counter("bmon_chain_node_starts_total", "Node starts seen in the log.", &["network", "node"]);
/// Supply checks.
pub static SUPPLY_CHECKS: MetricDef = MetricDef::counter(
    "bmon_chain_supply_checks_total",
    "UTXO-set snapshots checked against the subsidy schedule, by result: ok, inflated or skipped.",
    &["network", "result"],
);
/// Inflation found.
pub static INFLATION: MetricDef = MetricDef::counter(
    "bmon_chain_inflation_total",
    "UTXO sets holding more than the schedule allows, by check (growth or supply).",
    &["network", "node", "check"],
);
/// The latest excess.
pub static INFLATION_EXCESS: MetricDef = MetricDef::gauge(
    "bmon_chain_inflation_excess_satoshis",
    "The excess of each node's latest checked UTXO-set snapshot over what the schedule allows (0 when within).",
    "satoshis",
    &["network", "node"],
);
/// Header to tip.
pub static HEADER_TO_TIP: MetricDef = MetricDef::histogram(
    "bmon_chain_header_to_tip_seconds",
    "From a block's header first seen to the node's tip moving to it, per node.",
    "seconds",
    &["network", "node"],
    TIME_BUCKETS,
);
/// Block connect time.
pub static CONNECT: MetricDef = MetricDef::histogram(
    "bmon_chain_block_connect_seconds",
    "How long each node took to connect a block (its `- Connect block` bench line).",
    "seconds",
    &["network", "node"],
    TIME_BUCKETS,
);

/// chain's metrics.
pub const COMPONENT: Component = Component {
    name: "chain",
    metrics: &[
        &TIP_HEIGHT,
        &TIP_BLOCK_TIME,
        &TIP_CHANGED,
        &BEST_HEIGHT,
        &STALE_BLOCKS,
        &STALE_RATE,
        &CONNECT_RATIO,
        &SLOWEST,
        &CONNECTS_LATE,
        &REORGS,
        &REORG_DEPTH,
        &SELFISH,
        &STALE,
        &INVALID,
        &BEHIND,
        &LAGGING,
        &SPLIT,
        &IBD,
        &STARTED,
        &STARTS,
        &SUPPLY_CHECKS,
        &INFLATION,
        &INFLATION_EXCESS,
        &HEADER_TO_TIP,
        &CONNECT,
    ],
};

/// Core's block reject reasons: the label set of [`INVALID`]. Anything else counts as `other`.
const REASONS: &[&str] = &[
    "bad-cb-amount",
    "bad-cb-height",
    "bad-cb-length",
    "bad-cb-missing",
    "bad-cb-multiple",
    "bad-blk-length",
    "bad-blk-sigops",
    "bad-blk-weight",
    "bad-diffbits",
    "bad-txnmrklroot",
    "bad-txns-duplicate",
    "bad-txns-inputs-missingorspent",
    "bad-txns-nonfinal",
    "bad-txns-BIP30",
    "bad-version",
    "bad-witness-merkle-match",
    "block-validation-failed",
    "high-hash",
    "invalidateblock",
    "time-too-new",
    "time-too-old",
    "unknown",
];

/// The metric label of a reject reason: bounded, so one odd node cannot blow up cardinality.
pub fn reason_label(reason: &str) -> &'static str {
    REASONS.iter().find(|r| reason.starts_with(**r)).copied().unwrap_or("other")
}
