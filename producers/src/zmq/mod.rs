//! The ZMQ source: subscribe, stamp receive time, track sequences, publish facts.

pub mod decode;
pub mod seq;
pub mod subscriber;

pub use seq::{SequenceTracker, Verdict};
pub use subscriber::run_zmq_source;
