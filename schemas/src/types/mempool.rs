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
