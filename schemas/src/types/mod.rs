//! Rust forms of the newest version of every schema family.
//!
//! Field order and union branch order follow the `.avsc` files exactly: the Avro serializer maps a
//! Rust enum variant to the union branch with the same index.

mod chain;
mod dead_letter;
mod envelope;
mod events;
mod facts;
mod mempool;
mod observation;
mod summary;

pub use chain::{
    BlockConnect, BlockConnectComparison, ChainInvalidBlock, ChainReorg, ChainSplit, Inflation, NodeConnect,
    NodeLagging, SelfishMiningSuspect, SplitTip, StaleTip,
};
pub use dead_letter::DeadLetter;
pub use envelope::{Envelope, NodeImplementation, SourceSeq};
pub use events::{
    BlockConnected, BlockDisconnected, BlockDownloadTimeout, BlockReceived, ChainTipEntry, ChainTips,
    CompactBlockReconstructed, ConnectBlockTimings, EventBody, HeaderSeen, InvalidBlock, MempoolAccept, MempoolReject,
    NodeEvent, NodeStart, PeerConnected, PeerDisconnected, RpcCall, Unknown, UpdateTip,
};
pub use facts::{
    LogLineFact, NodeView, RpcErr, RpcOk, RpcOutcome, RpcSnapshotFact, ZmqFact, ZmqGap, ZmqHash, ZmqOther, ZmqPayload,
    ZmqRawBlock, ZmqRawTx, ZmqSequence, ZmqSequenceReset,
};
pub use mempool::{
    MempoolConflict, MempoolDivergence, MempoolEmpty, MempoolRejectionSpike, NodeVerdict, PolicyDivergence,
    TemplateDivergence, TxConflict, TxVerdict,
};
pub use observation::{FactKey, ObjectKind, Observation, ObservationSource, Stage};
pub use summary::{CloseReason, NodeLag, PropagationAnomaly, PropagationSummary};
