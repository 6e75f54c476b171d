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

use crate::registry::{BuildContext, BuildError, Entry};

/// logparse in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "logparse",
    doc: "Log and ZMQ facts to typed node events and hash-keyed arrival observations.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let config: LogParseConfig = ctx.config()?;
    let topics = wiring::LogParseTopics::bind(ctx.topology, &ctx.declared.name)?;
    Ok(Box::new(wiring::LogParseProcessor::new(LogParse::new(config), topics, ctx.window())))
}
