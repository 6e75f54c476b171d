//! The `propagation` processor: per-node arrival times and cross-node spread per block and
//! transaction.
//!
//! - [`window`]: pure windows per (stage, hash), closed when every expected node reported or at
//!   the timeout, amended by late observations;
//! - [`clock`]: per-node clock offset estimates; [`baseline`]: rolling spreads for anomalies;
//! - [`store`]: RocksDB state, one column family per input partition, checkpointed with the
//!   partition's offset;
//! - [`wiring`]: the runtime processor: decode, observe, metrics, summaries.

pub mod baseline;
pub mod clock;
pub mod config;
pub mod store;
pub mod telemetry;
pub mod window;
pub mod wiring;

pub use config::PropagationConfig;

/// Explicit histogram buckets for the propagation metrics.
pub fn metrics_buckets() -> Vec<(&'static str, &'static [f64])> {
    bmon_service::telemetry::buckets(&[telemetry::COMPONENT])
}

use crate::registry::{BuildContext, BuildError, Entry};

/// The hasher of propagation's in-memory maps, which see every observation: foldhash, seeded per
/// process (std's SipHash cost a tenth of the throughput). Nothing depends on iteration order.
pub(crate) type Hasher = foldhash::quality::RandomState;

/// propagation in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "propagation",
    doc: "Per-node arrival times and cross-node spread for every block and transaction.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let mut config: PropagationConfig = ctx.config()?;
    config.state_dir = ctx.state_dir_or(&config.state_dir);
    let (needed_s, fields) = config.history_needed();
    let window = ctx.window();
    if window.as_secs() < needed_s {
        let store = ctx.declared.state_stores.iter().find(|s| s.window.is_some()).map_or("windows", |s| &s.name);
        return Err(BuildError::Window {
            section: ctx.declared.name.clone(),
            fields: fields.to_owned(),
            needed_s,
            store: store.to_owned(),
            window_s: window.as_secs(),
        });
    }
    let topics = wiring::PropagationTopics::bind(ctx.topology, &ctx.declared.name)?;
    let p = wiring::PropagationProcessor::open(config, topics, window).map_err(|e| ctx.state_error(e))?;
    Ok(Box::new(p))
}
