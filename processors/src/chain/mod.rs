//! The `chain` processor: each node's chain from its log, and each network's from its nodes'
//! RPC views.
//!
//! - [`config`]: its `[chain]` settings;
//! - [`node`]: pure: one node's tip, reorgs (and the selfish-mining heuristic), stale tips,
//!   invalid blocks, header-to-tip latency and block connect times, from its node events (log
//!   lines, ZMQ `sequence` and getchaintips), with `walk` following one source's active chain;
//! - [`network`]: pure: lagging nodes (with hysteresis) and the inflation check, from the
//!   network-keyed views;
//! - [`connects`]: pure: one block's connect times across a network's nodes, the slowest
//!   against the median;
//! - [`supply`]: pure: subsidy schedules of Bitcoin, BSV and Litecoin;
//! - [`wiring`]: decoding, per-partition state in RocksDB (rebuilt by replay when a partition
//!   is new here), metrics and events;
//! - [`telemetry`]: its metrics.

pub mod config;
pub mod connects;
pub mod network;
pub mod node;
pub mod supply;
pub mod telemetry;
mod walk;
pub mod wiring;

pub use config::ChainConfig;

use crate::registry::{BuildContext, BuildError, Entry};

/// chain in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "chain",
    doc: "Tips, reorgs, selfish-mining suspects, stale tips, invalid blocks, lagging nodes and inflation.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let mut config: ChainConfig = ctx.config()?;
    config.state_dir = ctx.state_dir_or(&config.state_dir);
    let topics = wiring::ChainTopics::bind(ctx.topology, &ctx.declared.name)?;
    let p = wiring::ChainProcessor::open(&config, topics, ctx.window()).map_err(|e| ctx.state_error(e))?;
    Ok(Box::new(p))
}
