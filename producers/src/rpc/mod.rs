//! The RPC source: periodic snapshots of the node's state, published uninterpreted.

pub mod plan;
pub mod poller;

pub use plan::{Call, PollPlan};
pub use poller::{RpcAuth, RpcSettings, TxOutSetSchedule, run_rpc_source, run_txoutset_source};
