//! The `netviews` processor: each node's RPC snapshots in, its typed views out, re-keyed by
//! network, so that tips, mempools and templates of one network meet in one partition.
//!
//! - [`config`]: which methods become views;
//! - [`logic`]: pure: one snapshot to at most one view (failed calls and unknown methods give
//!   none; templates lose their raw transaction data);
//! - [`wiring`]: decoding, topics and keys from topology.yaml;
//! - [`telemetry`]: its metrics.
//!
//! It is stateless: no store, nothing to replay.

pub mod config;
pub mod logic;
pub mod telemetry;
pub mod wiring;

pub use config::NetViewsConfig;

use crate::registry::{BuildContext, BuildError, Entry};

/// netviews in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "netviews",
    doc: "Each node's RPC snapshots as typed views, re-keyed by network.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let config: NetViewsConfig = ctx.config()?;
    let topics = wiring::NetViewsTopics::bind(ctx.topology, &ctx.declared.name)?;
    Ok(Box::new(wiring::NetViewsProcessor::new(config, topics)))
}
