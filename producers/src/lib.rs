//! The node-side producer: publishes what one node sees as facts, keyed by node id.
//!
//! So far: the debug.log source. [`tail`] follows the file across rotation and copytruncate;
//! [`publish`] sends each line as a `LogLineFact` and advances the durable checkpoint only after the
//! broker acknowledged everything before it, and on start recovers its true position from the tail
//! of its own partition, so a crash neither loses nor repeats a line.

pub mod config;
pub mod fact_sink;
pub mod in_flight;
pub mod publish;
pub mod recovery;
pub mod rpc;
pub mod run;
pub mod service;
pub mod spool;
pub mod stop;
pub mod tail;
pub mod telemetry;
pub mod zmq;

pub use config::ProducerConfig;
