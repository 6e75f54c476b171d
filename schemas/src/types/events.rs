use serde::{Deserialize, Serialize};

use crate::registry::Record;
use crate::types::Envelope;

/// The active tip moved (`UpdateTip:` lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateTip {
    /// New tip hash.
    pub hash: String,
    /// New tip height.
    pub height: i64,
    /// log2 of the chain work.
    pub log2_work: Option<f64>,
    /// Chain transaction count.
    pub tx_count: Option<i64>,
    /// The block's own timestamp, µs.
    pub block_time_us: Option<i64>,
    /// Verification progress, 0..=1.
    pub progress: Option<f64>,
    /// Coins cache size, MiB.
    pub cache_mib: Option<f64>,
    /// Coins cache entries.
    pub cache_txo: Option<i64>,
    /// Warning text, if any.
    pub warning: Option<String>,
}

/// A new header arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSeen {
    /// Block hash.
    pub hash: String,
    /// Height, if logged.
    pub height: Option<i64>,
    /// Peer id, if logged.
    pub peer: Option<i64>,
    /// From a compact block.
    pub compact: bool,
}

/// A full block arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockReceived {
    /// Block hash.
    pub hash: String,
    /// Peer id, if logged.
    pub peer: Option<i64>,
}

/// A compact block was reconstructed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlockReconstructed {
    /// Block hash.
    pub hash: String,
    /// Transactions prefilled by the sender.
    pub prefilled: i64,
    /// Transactions found in the mempool.
    pub from_mempool: i64,
    /// Of those, at least this many from the extra pool.
    pub from_extra_pool: Option<i64>,
    /// Transactions requested from the peer.
    pub requested: i64,
}

/// One bench line of block connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectBlockTimings {
    /// Stage name.
    pub stage: String,
    /// Duration in µs.
    pub duration_us: i64,
    /// Transactions or inputs counted by the stage, if logged.
    pub count: Option<i64>,
}

/// Validation interface: a block was connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockConnected {
    /// Block hash.
    pub hash: Option<String>,
    /// Height.
    pub height: Option<i64>,
}

/// Validation interface: a block was disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDisconnected {
    /// Block hash.
    pub hash: Option<String>,
    /// Height.
    pub height: Option<i64>,
}

/// A block failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidBlock {
    /// Block hash.
    pub hash: Option<String>,
    /// Height.
    pub height: Option<i64>,
    /// Reject reason.
    pub reason: String,
    /// The log site.
    pub origin: String,
}

/// A peer stalled a block download and was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDownloadTimeout {
    /// Block hash.
    pub hash: Option<String>,
    /// Peer id.
    pub peer: Option<i64>,
}

/// A transaction entered the mempool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolAccept {
    /// Transaction id.
    pub txid: String,
    /// Witness transaction id.
    pub wtxid: Option<String>,
    /// Relaying peer.
    pub peer: Option<i64>,
    /// Pool transaction count after acceptance.
    pub pool_size: Option<i64>,
    /// Pool size in kB or bytes as logged.
    pub pool_bytes: Option<i64>,
}

/// A transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MempoolReject {
    /// Transaction id.
    pub txid: String,
    /// Witness transaction id.
    pub wtxid: Option<String>,
    /// Relaying peer.
    pub peer: Option<i64>,
    /// Reject reason token.
    pub reason: String,
    /// Reject code.
    pub code: Option<i64>,
    /// Reason detail.
    pub detail: Option<String>,
    /// Fee rate text where logged.
    pub fee_rate: Option<String>,
}

/// A peer connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConnected {
    /// Peer id.
    pub peer: i64,
    /// Address, when logged (-logips).
    pub addr: Option<String>,
    /// Protocol version.
    pub version: Option<i64>,
    /// User agent.
    pub subver: Option<String>,
    /// Inbound connection.
    pub inbound: bool,
    /// Connection type.
    pub conn_type: Option<String>,
}

/// A peer disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDisconnected {
    /// Peer id.
    pub peer: i64,
    /// Why.
    pub reason: Option<String>,
}

/// The node started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStart {
    /// Version string.
    pub version: String,
}

/// A line no rule matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    /// Log category, if any.
    pub category: Option<String>,
    /// The message text.
    pub message: String,
}

/// One tip of a node's getchaintips result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTipEntry {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: i64,
    /// Blocks from the tip down to the active chain (0 for the active tip).
    pub branchlen: i64,
    /// `active`, `valid-fork`, `valid-headers`, `headers-only` or `invalid`.
    pub status: String,
}

/// The node's getchaintips result, as a node event: netviews publishes it beside the log's
/// events, so that the chain processor meets every source of a reorg in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTips {
    /// Every tip the node knows.
    pub tips: Vec<ChainTipEntry>,
}

/// The node served an RPC call (`ThreadRPCServer method=…`, logged with `-debug=rpc`): how the
/// log tells an operator's `invalidateblock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcCall {
    /// The method.
    pub method: String,
}

/// The typed content of a node event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum EventBody {
    UpdateTip(UpdateTip),
    HeaderSeen(HeaderSeen),
    BlockReceived(BlockReceived),
    CompactBlockReconstructed(CompactBlockReconstructed),
    ConnectBlockTimings(ConnectBlockTimings),
    BlockConnected(BlockConnected),
    BlockDisconnected(BlockDisconnected),
    InvalidBlock(InvalidBlock),
    BlockDownloadTimeout(BlockDownloadTimeout),
    MempoolAccept(MempoolAccept),
    MempoolReject(MempoolReject),
    PeerConnected(PeerConnected),
    PeerDisconnected(PeerDisconnected),
    NodeStart(NodeStart),
    Unknown(Unknown),
    ChainTips(ChainTips),
    RpcCall(RpcCall),
}

/// A typed event parsed from a node fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEvent {
    /// The source fact's envelope.
    pub envelope: Envelope,
    /// Position among the events parsed from that fact.
    pub index: i32,
    /// The node's own timestamp for the line.
    pub logged_at_us: Option<i64>,
    /// Thread name prefix.
    pub thread: Option<String>,
    /// Log category prefix.
    pub category: Option<String>,
    /// The event.
    pub event: EventBody,
}

impl Record for NodeEvent {
    const FAMILY: &'static str = "node_event";
}
