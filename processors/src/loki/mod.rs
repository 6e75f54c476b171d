//! The `loki` sink: every node's debug.log lines and bmon's derived events pushed to Loki's push
//! API, so one LogQL query searches the fleet with the events beside the lines that caused them.
//!
//! - [`config`]: its `[loki]` settings (URL, format, batching, backoff, auth, tenant, TLS);
//! - [`entry`]: pure: a line or an event as a Loki entry: few stream labels, the rest as
//!   structured metadata, the node's own timestamp;
//! - [`push`]: pure: a batch as a protobuf + snappy or JSON push body, and what an answer's
//!   status means (accepted, retry, refused);
//! - [`client`]: one HTTP push, with credentials, tenant and TLS;
//! - [`sink`]: batching by size and time, retries with backoff, refused batches split down to
//!   the entries to dead-letter, acknowledgements once Loki holds an entry;
//! - [`pushed`]: the offsets Loki holds, so a restart does not push them again;
//! - [`wiring`]: the processor: records in, entries out;
//! - [`telemetry`]: its metrics.
//!
//! docs/design.md, "Loki", has the decisions; docs/logs.md the LogQL recipes.

pub mod client;
pub mod config;
pub mod entry;
pub mod push;
pub mod pushed;
pub mod sink;
pub mod telemetry;
pub mod wiring;

pub use config::LokiConfig;

use crate::registry::{BuildContext, BuildError, Entry};

/// loki in the processor registry.
pub const ENTRY: Entry = Entry {
    name: "loki",
    doc: "Pushes every node's log lines and bmon's derived events to Loki (or VictoriaLogs), batched, retried, and acknowledged only once held.",
    build,
    telemetry: telemetry::COMPONENT,
};

fn build(ctx: &BuildContext<'_>) -> Result<Box<dyn crate::runtime::Processor>, BuildError> {
    let mut config: LokiConfig = ctx.config()?;
    config.validate().map_err(|message| BuildError::Config { section: ctx.declared.name.clone(), message })?;
    config.state_dir = ctx.state_dir_or(&config.state_dir);
    let topics = wiring::LokiTopics::bind(ctx.topology, &ctx.declared.name)?;
    let p = wiring::LokiProcessor::open(config, topics).map_err(|e| ctx.state_error(e))?;
    Ok(Box::new(p))
}
#[cfg(test)]
mod tests;
