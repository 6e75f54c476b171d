//! Events of the chain processor, one schema family per kind.

use serde::{Deserialize, Serialize};

use crate::registry::Record;

/// A node's active tip moved to a block that does not descend from its old tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReorg {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The active tip before the reorg.
    pub old_tip: String,
    /// Its height.
    pub old_height: i64,
    /// The new branch's tip when the reorg completed.
    pub new_tip: String,
    /// Its height.
    pub new_height: i64,
    /// Height of the last block both branches share.
    pub fork_height: i64,
    /// Its hash, when known.
    pub fork_hash: Option<String>,
    /// `old_height - fork_height`.
    pub depth: i64,
    /// Blocks of the old branch, from the fork up, where known.
    pub disconnected: Vec<String>,
    /// Blocks of the new branch, from the fork up.
    pub connected: Vec<String>,
    /// What showed it first.
    pub source: String,
    /// The node's time of the event that completed it, µs.
    pub detected_at_us: i64,
}

impl Record for ChainReorg {
    const FAMILY: &'static str = "chain_reorg";
}

/// A reorg won by blocks that all reached the node in rapid succession.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfishMiningSuspect {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The reorg's depth.
    pub depth: i64,
    /// Blocks of the winning branch.
    pub branch_length: i64,
    /// The winning branch, from the fork up.
    pub winning: Vec<String>,
    /// Gaps between consecutive arrivals, µs.
    pub arrival_gaps_us: Vec<i64>,
    /// The configured span all arrivals fell within, µs.
    pub span_us: i64,
    /// The tip before.
    pub old_tip: String,
    /// The tip after.
    pub new_tip: String,
}

impl Record for SelfishMiningSuspect {
    const FAMILY: &'static str = "selfish_mining_suspect";
}

/// A node's active tip is older than the configured age by its block time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleTip {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The tip.
    pub hash: String,
    /// Its height.
    pub height: i64,
    /// Its block time, µs.
    pub block_time_us: i64,
    /// Its age when judged, µs.
    pub age_us: i64,
    /// The configured limit, µs.
    pub limit_us: i64,
}

impl Record for StaleTip {
    const FAMILY: &'static str = "stale_tip";
}

/// A block a node found invalid, or that an operator marked invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInvalidBlock {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The block, when logged.
    pub hash: Option<String>,
    /// Its height, when logged.
    pub height: Option<i64>,
    /// The reject reason as logged.
    pub reason: String,
    /// The log site.
    pub origin: String,
    /// Marked by `invalidateblock`, as the log says.
    pub operator_marked: bool,
    /// The node's time of the first report, µs.
    pub seen_at_us: i64,
}

impl Record for ChainInvalidBlock {
    const FAMILY: &'static str = "invalid_block";
}

/// A node entered or left the lagging state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLagging {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// True on entering, false on leaving.
    pub lagging: bool,
    /// Blocks behind the best.
    pub blocks_behind: i64,
    /// The node's height.
    pub node_height: i64,
    /// The network's best height.
    pub best_height: i64,
    /// A node at the best height.
    pub best_node: String,
    /// Receive time of the snapshot that showed it, µs.
    pub at_us: i64,
}

impl Record for NodeLagging {
    const FAMILY: &'static str = "node_lagging";
}

/// A UTXO set with more coins than the subsidy schedule allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflation {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// `growth` or `supply`.
    pub check: String,
    /// The earlier snapshot's height (growth only).
    pub from_height: Option<i64>,
    /// The snapshot's height.
    pub to_height: i64,
    /// The total there, satoshis.
    pub total_sat: i64,
    /// The most allowed there, satoshis.
    pub allowed_sat: i64,
    /// `total_sat - allowed_sat`.
    pub excess_sat: i64,
    /// Receive time of the snapshot, µs.
    pub at_us: i64,
}

impl Record for Inflation {
    const FAMILY: &'static str = "inflation";
}

/// One node's tip in a [`ChainSplit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitTip {
    /// The node.
    pub node_id: String,
    /// Its active tip.
    pub hash: String,
}

/// A network's nodes on different tips at the same height for longer than the span, or no longer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSplit {
    /// The network.
    pub network: String,
    /// True when reported, false when over.
    pub split: bool,
    /// The height at which the tips differ.
    pub height: i64,
    /// Each node at that height and its tip.
    pub tips: Vec<SplitTip>,
    /// Receive time of the first view that showed it, µs.
    pub since_us: i64,
    /// Receive time of the view that showed this, µs.
    pub at_us: i64,
}

impl Record for ChainSplit {
    const FAMILY: &'static str = "chain_split";
}

/// How long one node took to connect one block (its `- Connect block` bench line). The chain
/// processor publishes it keyed by network and hash and reads it back, so that every node's time
/// for one block meets in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockConnect {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The block.
    pub hash: String,
    /// Its height.
    pub height: i64,
    /// Time to connect it, µs.
    pub connect_us: i64,
    /// The node's log time of the bench line, µs.
    pub at_us: i64,
}

impl Record for BlockConnect {
    const FAMILY: &'static str = "block_connect";
}

/// One node's time in a [`BlockConnectComparison`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConnect {
    /// The node.
    pub node_id: String,
    /// Time to connect the block, µs.
    pub connect_us: i64,
    /// `connect_us` over the median.
    pub ratio: f64,
}

/// Every node's time to connect one block, against the fleet's median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockConnectComparison {
    /// The network.
    pub network: String,
    /// The block.
    pub hash: String,
    /// Its height.
    pub height: i64,
    /// Each node's time, slowest first.
    pub nodes: Vec<NodeConnect>,
    /// The median of the nodes' times, µs.
    pub median_us: i64,
    /// The slowest node.
    pub slowest_node: String,
    /// Its time, µs.
    pub slowest_us: i64,
    /// Its time over the median.
    pub ratio: f64,
    /// Event time at which the comparison closed, µs.
    pub closed_at_us: i64,
}

impl Record for BlockConnectComparison {
    const FAMILY: &'static str = "block_connect_comparison";
}
