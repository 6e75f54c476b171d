//! Every processor bmon can run, found by name.
//!
//! `bmon process NAME` looks NAME up here. An entry says how to build the processor from its
//! config section (the `[NAME]` table of the processor config) and topology.yaml (its topics,
//! keys and state-store window), and which metrics it declares. Adding a processor is one folder
//! under `processors/src/` with an `ENTRY`, plus one line in [`REGISTRY`].

use std::time::Duration;

use bmon_topology::{BindError, Topology};

use crate::runtime::Processor;

/// What a processor is built from.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The whole topology.
    pub topology: &'a Topology,
    /// The processor's own entry in it.
    pub declared: &'a bmon_topology::Processor,
    /// Its config section, if the file has one (absent: every setting at its default).
    pub section: Option<&'a toml::Value>,
    /// A directory for its local state that overrides the config's (a replay's isolated
    /// temporary directory); `None` for the config's own.
    pub state_dir: Option<&'a std::path::Path>,
}

impl BuildContext<'_> {
    /// The section as the processor's config type (defaults where absent).
    pub fn config<C: serde::de::DeserializeOwned + Default>(&self) -> Result<C, BuildError> {
        match self.section {
            None => Ok(C::default()),
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| BuildError::Config {
                section: self.declared.name.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// Where the processor keeps its local state: under the override (a replay's temporary
    /// directory), else `configured`, its config's `state_dir`.
    pub fn state_dir_or(&self, configured: &std::path::Path) -> std::path::PathBuf {
        self.state_dir.map_or_else(|| configured.to_owned(), |dir| dir.join(&self.declared.name))
    }

    /// The error for state that could not be opened.
    pub fn state_error(&self, e: impl std::fmt::Display) -> BuildError {
        BuildError::State { section: self.declared.name.clone(), message: e.to_string() }
    }

    /// The state-store window from topology.yaml: how far back the processor replays.
    pub fn window(&self) -> Duration {
        self.declared.replay_window().unwrap_or(Duration::ZERO)
    }
}

/// Why a processor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Its config section is not valid.
    #[error("[{section}]: {message}")]
    Config {
        /// The section.
        section: String,
        /// What is wrong (the field is named).
        message: String,
    },
    /// topology.yaml does not give it the topics and keys it needs.
    #[error("topology.yaml: {0}")]
    Bind(#[from] BindError),
    /// Its config needs more history than its state store's window replays.
    #[error(
        "[{section}] {fields} need {needed_s} s of history, but processors.{section}.state_stores.{store}.window in topology.yaml replays {window_s} s: lengthen the window or shorten the settings"
    )]
    Window {
        /// The processor.
        section: String,
        /// The settings that add up to the need.
        fields: String,
        /// Seconds they need.
        needed_s: u64,
        /// The store.
        store: String,
        /// Seconds the window gives.
        window_s: u64,
    },
    /// Its state could not be opened.
    #[error("opening {section} state: {message}")]
    State {
        /// The processor.
        section: String,
        /// Why.
        message: String,
    },
}

/// One processor bmon can run.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its name: the `bmon process` argument, config section and topology.yaml processor.
    pub name: &'static str,
    /// One line on what it does.
    pub doc: &'static str,
    /// Builds it.
    pub build: fn(&BuildContext<'_>) -> Result<Box<dyn Processor>, BuildError>,
    /// Its metrics.
    pub telemetry: bmon_service::telemetry::Component,
}

/// Every processor, in pipeline order.
pub const REGISTRY: &[Entry] = &[
    crate::logparse::ENTRY,
    crate::propagation::ENTRY,
    crate::netviews::ENTRY,
    crate::chain::ENTRY,
    crate::mempool::ENTRY,
    crate::loki::ENTRY,
];

/// Every processor's metrics, and the runtime's they all share.
pub fn telemetry() -> Vec<bmon_service::telemetry::Component> {
    std::iter::once(crate::runtime::telemetry::COMPONENT).chain(REGISTRY.iter().map(|e| e.telemetry)).collect()
}

/// The processor named `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// The topology this binary was built with, checked against the schemas it embeds (for tests,
/// benchmarks and tools that run processors without a topology file).
pub fn builtin_topology() -> Result<Topology, bmon_topology::TopologyError> {
    let schemas = bmon_schemas::SchemaSet::builtin();
    Topology::builtin(schemas.families())
}

/// The registered names, comma-separated (for messages).
pub fn names() -> String {
    REGISTRY.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
}
