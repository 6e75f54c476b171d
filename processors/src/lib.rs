//! bmon's stream processors and the runtime they share.
//!
//! - [`runtime`]: consumer-group plumbing: one loop per process that feeds records to a
//!   [`runtime::Processor`], publishes its outputs, and stores an input offset only after every
//!   output of that record was acknowledged (at-least-once in, idempotent processing, so
//!   exactly-once results). State is rebuilt on assignment by replaying the input from the
//!   store's window (DESIGN.md §4, the `replay` recovery in topology.yaml).
//! - [`logparse`]: log and ZMQ facts to typed node events and hash-keyed arrival observations.
//! - [`netviews`]: each node's RPC snapshots as typed views, re-keyed by network.
//! - [`propagation`]: per-node arrival times and cross-node spread per block and transaction.
//! - [`chain`]: tips, reorgs, stale tips, invalid blocks, lagging nodes and inflation.
//! - [`loki`]: log lines and derived events pushed to Loki.
//! - [`views`]: typed, tolerant views of the RPC snapshots (Core, BSV, Litecoin).
//! - [`replay`]: registered processors chained in process over a past time range.
//! - [`windowed`] and [`reorder`]: pure: per-object windows closed in event time, and
//!   records held and released in event-time order.
//! - [`registry`]: every processor by name, with how to build it from its config section and
//!   topology.yaml.
//!
//! Each processor keeps its pure logic (no rdkafka, no RocksDB) apart from its wiring.

pub mod chain;
pub mod config;
pub mod logparse;
pub mod loki;
pub mod mempool;
pub mod netviews;
pub mod propagation;
pub mod registry;
pub mod reorder;
pub mod replay;
pub mod runtime;
pub mod views;
pub mod windowed;
