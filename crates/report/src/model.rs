//! The report's data: what the JSON file holds and the HTML page shows.

use std::collections::BTreeMap;

use bmon_schemas::{
    ChainInvalidBlock, ChainReorg, ChainSplit, Inflation, MempoolConflict, MempoolDivergence, MempoolEmpty,
    MempoolRejectionSpike, NodeLagging, PolicyDivergence, PropagationAnomaly, SelfishMiningSuspect, StaleTip,
    TemplateDivergence,
};
use serde::{Deserialize, Serialize};

/// Everything a replay found over its range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// How the replay ran (the backfill record).
    pub header: Header,
    /// How blocks and transactions spread.
    pub propagation: Propagation,
    /// Tips, reorgs and chain anomalies.
    pub chain: Chain,
    /// Rejections, divergences and similarity.
    pub mempool: Mempool,
    /// The alerts the shipped rules would have fired, as far as they were evaluated.
    pub alerts: Alerts,
    /// Every derived event of the range, counted by kind (schema family).
    pub events: BTreeMap<String, u64>,
}

/// One input partition's part of the replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset read (warm-up included).
    pub start: i64,
    /// First offset after the range.
    pub end: i64,
}

/// How the replay ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The replay's id (the `bmon-replay-id` header of what it published).
    pub replay_id: String,
    /// The range's start, µs since the epoch.
    pub from_us: i64,
    /// The range's end (exclusive), µs.
    pub to_us: i64,
    /// Where time was moved to at the end, µs: the range's end, or when the replay started if
    /// that was earlier, or the last record's time after an early stop.
    pub end_us: i64,
    /// The whole range was read. False after Ctrl-C: the report holds what was read so far.
    pub complete: bool,
    /// The processors run, in pipeline order.
    pub processors: Vec<String>,
    /// Those added because a chosen one needs their output.
    pub added: Vec<String>,
    /// `--nodes` (empty: every node).
    pub nodes: Vec<String>,
    /// `--network`.
    pub network: Option<String>,
    /// Resolved offsets per input partition.
    pub partitions: Vec<PartitionRange>,
    /// Input records read, per topic (warm-up included).
    pub records_read: BTreeMap<String, u64>,
    /// Records produced in the range, per topic.
    pub records_produced: BTreeMap<String, u64>,
    /// Input records the filters left out.
    pub filtered: u64,
    /// Records retention deleted while the replay read them (the report is then incomplete).
    pub lost: u64,
    /// Records a processor could not handle (dead letters live), per processor.
    pub rejected: BTreeMap<String, u64>,
    /// Facts logparse dropped as already seen (redeliveries).
    pub duplicates: u64,
    /// Observations that arrived after their window closed (summed over summaries).
    pub late: u64,
    /// Mempool views and conflict markers applied out of event-time order, more than
    /// `order_bound_s` behind their network's newest (`bmon_mempool_late_views_total`).
    #[serde(default)]
    pub late_views: u64,
    /// Where the warm-up would have started (the longest state window before the range), µs.
    pub warmup_wanted_from_us: i64,
    /// Where reading started, µs (later than wanted when retention cut the warm-up).
    pub warmup_from_us: i64,
    /// Records produced during the warm-up (not in the report).
    pub warmup_outputs: u64,
    /// bmon's version.
    pub bmon_version: String,
    /// The git commit bmon was built from.
    pub git_commit: String,
    /// SHA-256 of the config file's bytes (empty without `--config`).
    pub config_hash: String,
    /// Wall time of the replay, s.
    pub wall_time_s: f64,
    /// When the report was written, µs.
    pub generated_at_us: i64,
}

/// One node's lags at one stage, for the distribution plots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSeries {
    /// Node.
    pub node: String,
    /// Stage (`TIP`, `TX_ACCEPT`, …).
    pub stage: String,
    /// Lags behind the first node, ms, sorted.
    pub lags_ms: Vec<f64>,
}

/// One block's spread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpreadPoint {
    /// When the first node saw it, µs.
    pub at_us: i64,
    /// Block hash.
    pub hash: String,
    /// Max minus min lag, ms.
    pub spread_ms: f64,
}

/// A block among the slowest to spread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowBlock {
    /// Block hash.
    pub hash: String,
    /// Network.
    pub network: String,
    /// The first node to have it as its tip.
    pub first_node: String,
    /// When, µs.
    pub first_seen_us: i64,
    /// Max minus min lag, ms.
    pub spread_ms: f64,
    /// Each reporting node's lag, ms.
    pub lags_ms: BTreeMap<String, f64>,
    /// Expected nodes that never reported.
    pub missing: Vec<String>,
}

/// How blocks and transactions spread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Propagation {
    /// Summaries read (latest revision per hash and stage).
    pub summaries: u64,
    /// Per node and stage.
    pub lags: Vec<LagSeries>,
    /// Each block's spread at the tip stage, in time order.
    pub spread: Vec<SpreadPoint>,
    /// The slowest blocks at the tip stage, slowest first.
    pub slowest: Vec<SlowBlock>,
    /// Spreads over their baseline.
    pub anomalies: Vec<PropagationAnomaly>,
}

/// One node's tip at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipPoint {
    /// Node.
    pub node: String,
    /// When it moved, µs (the node's log time where known, else bmon's receive time).
    pub at_us: i64,
    /// New tip height.
    pub height: i64,
    /// New tip hash.
    pub hash: String,
}

/// Tips, reorgs and chain anomalies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Every tip change, in time order.
    pub tips: Vec<TipPoint>,
    /// Reorgs.
    pub reorgs: Vec<ChainReorg>,
    /// Reorgs whose winning branch looked withheld.
    pub selfish: Vec<SelfishMiningSuspect>,
    /// Tips that stayed too long.
    pub stale: Vec<StaleTip>,
    /// Blocks found invalid.
    pub invalid: Vec<ChainInvalidBlock>,
    /// Nodes falling behind and catching up.
    pub lagging: Vec<NodeLagging>,
    /// Nodes on different tips at one height.
    pub splits: Vec<ChainSplit>,
    /// Coin supply over the schedule.
    pub inflation: Vec<Inflation>,
}

/// Rejections of one node for one reason in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionBucket {
    /// Node.
    pub node: String,
    /// Bounded reason.
    pub reason: String,
    /// The minute's start, µs.
    pub minute_us: i64,
    /// Rejections.
    pub count: u64,
}

/// One similarity reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimilarityPoint {
    /// Node.
    pub node: String,
    /// `mempool` or `template`.
    pub of: String,
    /// When, µs.
    pub at_us: i64,
    /// Jaccard similarity to the network's majority (mempool) or median template, 0..=1.
    pub similarity: f64,
}

/// Rejections, divergences and similarity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mempool {
    /// Rejections per node, reason and minute.
    pub rejections: Vec<RejectionBucket>,
    /// Rejections over a node's own baseline.
    pub spikes: Vec<MempoolRejectionSpike>,
    /// Transactions some nodes accepted and another rejected.
    pub policy: Vec<PolicyDivergence>,
    /// Mempools that differ from the majority.
    pub divergences: Vec<MempoolDivergence>,
    /// Divergences explained by conflicts.
    pub conflicts: Vec<MempoolConflict>,
    /// Templates that differ on the same previous block.
    pub templates: Vec<TemplateDivergence>,
    /// Empty mempools while others hold transactions.
    pub empty: Vec<MempoolEmpty>,
    /// Similarity readings of the divergence events, in time order.
    pub similarity: Vec<SimilarityPoint>,
}

/// One alert's firing span.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFiring {
    /// The rule's name.
    pub alert: String,
    /// Its labels (those of the series that fired).
    pub labels: BTreeMap<String, String>,
    /// When it would have started firing (after its `for:`), µs.
    pub from_us: i64,
    /// When it stopped, µs (the range's end if still firing).
    pub to_us: i64,
}

/// The shipped alert rules over the replayed metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerts {
    /// Whether the rules were evaluated, and if not, why.
    pub evaluated: bool,
    /// Why not, or how (the engine, the step).
    pub note: String,
    /// The firing spans, by start.
    pub firing: Vec<AlertFiring>,
}
