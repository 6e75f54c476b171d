use serde::{Deserialize, Serialize};

/// Which node software produced a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeImplementation {
    /// Bitcoin Core.
    Core,
    /// Bitcoin SV node.
    Bsv,
    /// Litecoin Core.
    Litecoin,
    /// Anything else; also what readers see for symbols added after them.
    Unknown,
}

/// Per-source sequence; with the node id it is a fact's deduplication key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceSeq {
    /// `log`, `zmq:<topic>` or `rpc:<method>`.
    pub stream: String,
    /// The source instance: log file identity, or ZMQ/RPC session id.
    pub epoch: String,
    /// Byte offset, ZMQ sequence or poll round.
    pub offset: i64,
}

/// Carried by every fact: who saw it, when, and where in its source it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Operator-chosen node id, unique in the fleet.
    pub node_id: String,
    /// Chain name as the node reports it (main, test, signet, regtest, ...).
    pub network: String,
    /// Node software.
    pub implementation: NodeImplementation,
    /// Node software version string, empty if unknown.
    pub node_version: String,
    /// Producer wall-clock receive time, µs since the Unix epoch.
    pub received_at_us: i64,
    /// Position in the source.
    pub source: SourceSeq,
}

impl Envelope {
    /// The deduplication key: node, stream, epoch and offset joined by `/`.
    pub fn dedup_key(&self) -> String {
        format!("{}/{}/{}/{}", self.node_id, self.source.stream, self.source.epoch, self.source.offset)
    }
}
