//! The RPC source: periodic snapshots of the node's state, published uninterpreted, except that
//! the mempool's txids go out as deltas and templates without raw transaction data ([`mempool`]).

pub mod mempool;
pub mod plan;
pub mod poller;

pub use plan::{Call, PollPlan};
pub use poller::{RpcAuth, RpcSettings, TxOutSetSchedule, run_rpc_source, run_txoutset_source};
