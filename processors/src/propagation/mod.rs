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
    telemetry::buckets()
}
