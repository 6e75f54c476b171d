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
