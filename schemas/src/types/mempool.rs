//! Events of the mempool processor, one schema family per kind.

use serde::{Deserialize, Serialize};

use crate::registry::Record;

/// A node rejected transactions for one reason more often than k times its own baseline, above
/// an absolute floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolRejectionSpike {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The bounded reason label (Core's reject reasons, or `other`).
    pub reason: String,
    /// One raw reason of the bucket, as the node logged it.
    pub example_reason: String,
    /// Rejections in the bucket.
    pub count: i64,
    /// The node's mean per bucket for this reason over the baseline span before it.
    pub baseline: f64,
    /// Bucket length, µs.
    pub bucket_us: i64,
    /// Bucket start (event time), µs.
    pub bucket_start_us: i64,
}

impl Record for MempoolRejectionSpike {
    const FAMILY: &'static str = "mempool_rejection_spike";
}

/// A node's mempool empty for the configured span while others hold transactions; and again,
/// `empty` false, when it holds some again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolEmpty {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// Empty (true), or no longer (false).
    pub empty: bool,
    /// Since when it was empty, µs.
    pub since_us: i64,
    /// The largest mempool among the network's other nodes heard from, transactions.
    pub others_max_size: i64,
    /// When judged (the view's receive time), µs.
    pub at_us: i64,
}

impl Record for MempoolEmpty {
    const FAMILY: &'static str = "mempool_empty";
}

/// One node accepted or rejected one transaction. The mempool processor publishes it keyed by
/// network and txid and reads it back, so that every node's verdict on one transaction meets in
/// one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxVerdict {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// Its software version.
    pub node_version: String,
    /// The transaction.
    pub txid: String,
    /// Accepted (true) or rejected.
    pub accepted: bool,
    /// The reject reason as logged; empty when accepted.
    pub reason: String,
    /// The node's log time, µs.
    pub at_us: i64,
}

impl Record for TxVerdict {
    const FAMILY: &'static str = "tx_verdict";
}

/// One node's verdict in a [`PolicyDivergence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVerdict {
    /// The node.
    pub node_id: String,
    /// Its software version.
    pub node_version: String,
    /// The reject reason; empty for an acceptance.
    pub reason: String,
}

/// A transaction some nodes accepted and another rejected for a policy reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDivergence {
    /// The network.
    pub network: String,
    /// The transaction.
    pub txid: String,
    /// The nodes that accepted it.
    pub accepted_by: Vec<NodeVerdict>,
    /// The nodes that rejected it, with their reasons.
    pub rejected_by: Vec<NodeVerdict>,
    /// The first verdict's time, µs.
    pub first_at_us: i64,
    /// When the comparison closed, µs.
    pub closed_at_us: i64,
}

impl Record for PolicyDivergence {
    const FAMILY: &'static str = "policy_divergence";
}

/// A node refused a transaction as conflicting with one it holds. Published by the mempool
/// processor keyed by network onto the network's views, where the nodes' mempools meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxConflict {
    /// The refusing node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// Its software version.
    pub node_version: String,
    /// The refused transaction.
    pub txid: String,
    /// The reject reason as logged.
    pub reason: String,
    /// The node's log time, µs.
    pub at_us: i64,
}

impl Record for TxConflict {
    const FAMILY: &'static str = "tx_conflict";
}

/// A node's mempool differs from its network's majority set (or, `diverged` false, no longer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MempoolDivergence {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// Diverged (true), or no longer (false).
    pub diverged: bool,
    /// Settled transactions the majority holds and the node lacks.
    pub missing: i64,
    /// Settled transactions the node holds and the majority lacks.
    pub extra: i64,
    /// Transactions others hold that the node refused as conflicting.
    pub conflicts: i64,
    /// Jaccard similarity of its set to the majority set, over settled transactions.
    pub similarity: f64,
    /// Its settled transactions.
    pub node_size: i64,
    /// The majority set's size.
    pub majority_size: i64,
    /// Nodes compared.
    pub nodes: i64,
    /// Some of the missing txids.
    pub missing_sample: Vec<String>,
    /// Some of the extra txids.
    pub extra_sample: Vec<String>,
    /// When judged (the view's receive time), µs.
    pub at_us: i64,
}

impl Record for MempoolDivergence {
    const FAMILY: &'static str = "mempool_divergence";
}

/// A transaction some nodes hold and another refused as conflicting with one it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolConflict {
    /// The network.
    pub network: String,
    /// The transaction.
    pub txid: String,
    /// The nodes holding it.
    pub held_by: Vec<String>,
    /// The nodes that refused it, with their reasons.
    pub refused_by: Vec<NodeVerdict>,
    /// When found (the view's receive time), µs.
    pub at_us: i64,
}

impl Record for MempoolConflict {
    const FAMILY: &'static str = "mempool_conflict";
}

/// A node's block template differs from those of the network's other nodes on the same previous
/// block. Once per node and previous block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDivergence {
    /// The node.
    pub node_id: String,
    /// Its network.
    pub network: String,
    /// The block the templates build on.
    pub previous_block: String,
    /// The height of the block they build.
    pub height: i64,
    /// Templates compared.
    pub nodes: i64,
    /// Jaccard similarity of its transactions to the majority's, over transactions older than
    /// the polling skew.
    pub similarity: f64,
    /// Transactions the majority's templates hold and its lacks.
    pub missing: i64,
    /// Transactions its template holds and the majority's lack.
    pub extra: i64,
    /// Some of the missing txids.
    pub missing_sample: Vec<String>,
    /// Some of the extra txids.
    pub extra_sample: Vec<String>,
    /// Its transactions.
    pub tx_count: i64,
    /// The median over the compared templates.
    pub median_tx_count: i64,
    /// Its total fees, satoshis.
    pub fees: i64,
    /// The median.
    pub median_fees: i64,
    /// Its total weight.
    pub weight: i64,
    /// The median.
    pub median_weight: i64,
    /// Its coinbase value, satoshis.
    pub coinbase_value: i64,
    /// The median.
    pub median_coinbase_value: i64,
    /// When judged (the template's receive time), µs.
    pub at_us: i64,
}

impl Record for TemplateDivergence {
    const FAMILY: &'static str = "template_divergence";
}
