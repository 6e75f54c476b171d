use serde::{Deserialize, Serialize};

use crate::registry::Record;
use crate::types::{ObjectKind, Stage};

/// Why a propagation window closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    /// Every expected node reported.
    AllReported,
    /// The window timed out.
    Timeout,
    /// A late observation amended a closed window.
    Amended,
    /// Anything newer than this reader.
    Unknown,
}

/// One node's lag behind the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLag {
    /// Node id.
    pub node_id: String,
    /// When it saw the object, µs.
    pub observed_at_us: i64,
    /// Lag behind the first node, µs.
    pub lag_us: i64,
    /// Clock-corrected.
    pub corrected: bool,
    /// Arrived after the window closed.
    pub late: bool,
}

/// How one block or transaction spread across the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationSummary {
    /// Object hash.
    pub hash: String,
    /// Block or tx.
    pub object: ObjectKind,
    /// Stage measured.
    pub stage: Stage,
    /// Network.
    pub network: String,
    /// The first node to see it.
    pub first_node: String,
    /// When, µs.
    pub first_seen_us: i64,
    /// Every reporting node's lag.
    pub lags: Vec<NodeLag>,
    /// Max minus min, µs.
    pub spread_us: i64,
    /// Standard deviation of the lags, µs.
    pub stddev_us: f64,
    /// Expected nodes that did not report.
    pub missing_nodes: Vec<String>,
    /// How many nodes were expected.
    pub expected_nodes: i32,
    /// Observations after close.
    pub late_count: i32,
    /// Lags were clock-corrected.
    pub clock_corrected: bool,
    /// Why it closed.
    pub close_reason: CloseReason,
    /// When it closed, µs.
    pub closed_at_us: i64,
    /// 0 at close, +1 per amendment.
    pub revision: i32,
}

impl Record for PropagationSummary {
    const FAMILY: &'static str = "propagation_summary";
}

/// A closed window whose spread exceeded its network and stage's rolling baseline. The window's
/// summary (same hash and revision) is on the same topic and partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationAnomaly {
    /// Block hash or txid.
    pub hash: String,
    /// Block or transaction.
    pub object: ObjectKind,
    /// Stage of the window.
    pub stage: Stage,
    /// Network.
    pub network: String,
    /// The summary revision judged.
    pub revision: i32,
    /// The window's spread, µs.
    pub spread_us: i64,
    /// The baseline quantile it exceeded, µs.
    pub threshold_us: i64,
    /// Which quantile of the baseline the threshold is.
    pub quantile: f64,
    /// First node to see it.
    pub first_node: String,
    /// The node whose sighting came last.
    pub last_node: String,
}

impl Record for PropagationAnomaly {
    const FAMILY: &'static str = "propagation_anomaly";
}
