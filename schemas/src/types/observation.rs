use serde::{Deserialize, Serialize};

use crate::registry::Record;

/// Block or transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ObjectKind {
    Block,
    Tx,
    Unknown,
}

/// When in its life an object was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    /// Header arrived.
    Header,
    /// Full block arrived.
    Block,
    /// Became the active tip.
    Tip,
    /// Transaction accepted to the mempool.
    TxAccept,
    /// ZMQ block notification.
    ZmqBlock,
    /// ZMQ transaction notification.
    ZmqTx,
    /// Anything newer than this reader.
    Unknown,
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ObservationSource {
    Log,
    Zmq,
    Rpc,
    Unknown,
}

/// The source fact's deduplication key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct FactKey {
    pub stream: String,
    pub epoch: String,
    pub offset: i64,
}

/// One node's sighting of a block or transaction, keyed by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Block hash or txid; the record key.
    pub hash: String,
    /// Block or tx.
    pub object: ObjectKind,
    /// Stage.
    pub stage: Stage,
    /// Observing node.
    pub node_id: String,
    /// Network.
    pub network: String,
    /// When, µs since the epoch.
    pub observed_at_us: i64,
    /// Log, ZMQ or RPC.
    pub source: ObservationSource,
    /// Block height where known.
    pub height: Option<i64>,
    /// Source fact key.
    pub fact: FactKey,
    /// The producer's receive time of the source fact, µs (v2; `None` from v1 data).
    pub received_at_us: Option<i64>,
    /// The source fact was read as backlog: `received_at_us` is no sample of the node's clock
    /// (v3; false from older data).
    pub received_late: bool,
}

impl Record for Observation {
    const FAMILY: &'static str = "observation";
}
