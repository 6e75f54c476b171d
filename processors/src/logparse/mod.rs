//! The `logparse` processor: log and ZMQ facts in; typed node events and hash-keyed arrival
//! observations out.

pub mod config;
pub mod dedup;
pub mod logic;
pub mod telemetry;
pub mod tracker;
pub mod wiring;

pub use config::LogParseConfig;
pub use logic::{Derived, LogParse};
