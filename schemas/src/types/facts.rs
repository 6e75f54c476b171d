use serde::{Deserialize, Serialize};

use crate::registry::Record;
use crate::types::Envelope;

/// One raw line of a node's debug.log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineFact {
    /// Who, when, where.
    pub envelope: Envelope,
    /// Path of the log file.
    pub path: String,
    /// The raw line without its newline; not necessarily UTF-8.
    #[serde(with = "apache_avro::serde::bytes")]
    pub line: Vec<u8>,
    /// The line was longer than the producer's limit and was cut.
    pub truncated: bool,
    /// Byte offset just past the line's newline, where reading resumes (`envelope.source.offset`
    /// is where the line starts).
    pub end_offset: i64,
    /// The line was already in the file when the producer's previous read ended, so its receive
    /// time is when it was read, not when it was written (v2; false from v1 data).
    pub backlog: bool,
}

impl Record for LogLineFact {
    const FAMILY: &'static str = "log_line_fact";
}

/// hashblock / hashtx body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqHash {
    /// Hash in display byte order.
    pub hash: String,
}

/// Summary of a rawblock notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqRawBlock {
    /// Block hash.
    pub hash: String,
    /// The 80-byte header.
    #[serde(with = "apache_avro::serde::bytes")]
    pub header: Vec<u8>,
    /// Serialized size in bytes.
    pub size: i64,
    /// Number of transactions.
    pub tx_count: i64,
}

/// Summary of a rawtx notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqRawTx {
    /// Transaction id.
    pub txid: String,
    /// Serialized size in bytes.
    pub size: i64,
}

/// Core's `sequence` topic body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqSequence {
    /// Block hash or txid.
    pub hash: String,
    /// C, D, A or R.
    pub label: String,
    /// Mempool sequence for A and R.
    pub mempool_sequence: Option<i64>,
}

/// Messages were lost: the topic's sequence skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqGap {
    /// The sequence that should have come.
    pub expected: i64,
    /// The sequence that came.
    pub received: i64,
    /// How many were missed.
    pub missed: i64,
}

/// The topic's sequence restarted at zero: the node restarted. Not a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqSequenceReset {
    /// Last sequence before the reset.
    pub previous: i64,
    /// The sequence that came.
    pub received: i64,
}

/// A topic the producer does not summarise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqOther {
    /// The body as received.
    #[serde(with = "apache_avro::serde::bytes")]
    pub body: Vec<u8>,
}

/// What a ZMQ fact says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZmqPayload {
    /// hashblock / hashtx.
    Hash(ZmqHash),
    /// rawblock summary.
    RawBlock(ZmqRawBlock),
    /// rawtx summary.
    RawTx(ZmqRawTx),
    /// sequence.
    Sequence(ZmqSequence),
    /// Detected gap.
    Gap(ZmqGap),
    /// Detected restart.
    SequenceReset(ZmqSequenceReset),
    /// Anything else.
    Other(ZmqOther),
}

/// One ZMQ notification, or a gap or reset the producer detected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqFact {
    /// Who, when, where.
    pub envelope: Envelope,
    /// ZMQ topic.
    pub topic: String,
    /// The message's own sequence number.
    pub zmq_sequence: Option<i64>,
    /// Body.
    pub payload: ZmqPayload,
}

impl Record for ZmqFact {
    const FAMILY: &'static str = "zmq_fact";
}

/// A successful RPC call's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcOk {
    /// The result as JSON text, exactly as returned.
    pub json: String,
}

/// A failed RPC call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcErr {
    /// JSON-RPC error code, if the node answered.
    pub code: Option<i64>,
    /// What went wrong.
    pub message: String,
}

/// How an RPC call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcOutcome {
    /// It answered.
    Ok(RpcOk),
    /// It failed.
    Err(RpcErr),
}

/// One RPC snapshot, uninterpreted, so replay can re-derive everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcSnapshotFact {
    /// Who, when, where (`source.offset` is the poll round).
    pub envelope: Envelope,
    /// RPC method.
    pub method: String,
    /// Parameters as a JSON array.
    pub params: String,
    /// Call duration.
    pub duration_us: i64,
    /// Result or error.
    pub outcome: RpcOutcome,
}

impl Record for RpcSnapshotFact {
    const FAMILY: &'static str = "rpc_snapshot_fact";
}

/// One node's typed view of an RPC snapshot, re-keyed by network (see the `netviews` processor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The snapshot's envelope.
    pub envelope: Envelope,
    /// RPC method.
    pub method: String,
    /// The view, as the JSON form of bmon's typed view for the method.
    pub view_json: String,
}

impl Record for NodeView {
    const FAMILY: &'static str = "node_view";
}
