//! The `mempool` processor: each node's transaction rejections and mempool, and, across a
//! network's nodes, empty mempools and mempools and templates that differ.
//!
//! - [`config`]: its `[mempool]` settings;
//! - [`rejections`]: pure: rejections per node and bounded reason, and spikes against the
//!   node's own baseline, from its `mempool_reject` node events;
//! - [`divergence`]: pure: a transaction some nodes accepted and another rejected for a policy
//!   reason, from every node's verdicts re-keyed by txid;
//! - [`empty`]: pure: a node's empty mempool while others hold transactions, from the
//!   network-keyed getmempoolinfo views;
//! - [`presence`]: pure: each network's transactions with a bitset of the nodes holding them,
//!   from the producers' getrawmempool deltas and full snapshots; missing, extra and conflicting
//!   transactions per node;
//! - [`templates`]: pure: templates on the same previous block compared;
//! - `network`: the network views' side of the wiring; `tally`: one comparison's per-node counts; `state`: the partition state and its
//!   RocksDB rows;
//! - [`wiring`]: decoding, per-partition state in RocksDB (rebuilt by replay when a partition
//!   is new here), metrics and events;
//! - [`telemetry`]: its metrics.
//!
//! docs/design.md, "Mempool", has the decisions (the mainnet-scale mechanism among them).

pub mod config;
pub mod divergence;
pub mod empty;
mod network;
pub mod presence;
pub mod rejections;
mod state;
mod tally;
pub mod telemetry;
pub mod templates;
pub mod txid;
pub mod wiring;

pub use config::MempoolConfig;

use crate::registry::{BuildContext, BuildError, Entry};

/// mempool in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "mempool",
    doc: "Transaction rejections by reason (with spikes against each node's baseline), policy divergences, empty mempools, and mempool and template divergence across nodes.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let mut config: MempoolConfig = ctx.config()?;
    config.state_dir = ctx.state_dir_or(&config.state_dir);
    let topics = wiring::MempoolTopics::bind(ctx.topology, &ctx.declared.name)?;
    let p = wiring::MempoolProcessor::open(&config, topics, ctx.window()).map_err(|e| ctx.state_error(e))?;
    Ok(Box::new(p))
}
