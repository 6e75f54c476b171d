//! The processor config file (TOML), shared by every processor binary entry point.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bmon_kafka::ClientSettings;
use serde::Deserialize;

/// `[service]`: the metrics and health listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSection {
    /// Address of `/metrics`, `/healthz`, `/readyz`. Default `127.0.0.1:9400`.
    pub listen: SocketAddr,
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection { listen: SocketAddr::from(([127, 0, 0, 1], 9400)) }
    }
}

/// `[runtime]`: consumer settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// Consumer group; default: the processor's `consumer_group` in topology.yaml.
    pub group: Option<String>,
    /// Consumer session timeout, ms. Default 10000.
    pub session_timeout_ms: u64,
    /// Input records whose outputs may await acknowledgement at once. Default 20000.
    pub max_in_flight: usize,
    /// After SIGTERM, how long outputs may still be awaited, ms; the process exits a second
    /// later whatever the broker does. Default 2000.
    pub shutdown_grace_ms: u64,
    /// `/healthz` fails when the consumer loop has not turned for this long, s. Default 120
    /// (longer than a delivery timeout, so a broker outage alone does not fail it).
    pub stall_timeout_s: u64,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            group: None,
            session_timeout_ms: 10_000,
            max_in_flight: 20_000,
            shutdown_grace_ms: 2_000,
            stall_timeout_s: 120,
        }
    }
}

impl RuntimeSection {
    /// The session timeout as a duration.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    /// The shutdown grace as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The stall limit of `/healthz`.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs(self.stall_timeout_s)
    }
}

/// A processor config file.
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessorFile {
    /// topology.yaml, relative to the working directory. Default `topology.yaml`.
    #[serde(default = "default_topology")]
    pub topology: PathBuf,
    /// Brokers and client settings.
    pub kafka: ClientSettings,
    /// Listener.
    #[serde(default)]
    pub service: ServiceSection,
    /// Consumer settings.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Each processor's own settings, by processor name (`[logparse]`, `[propagation]`, …).
    /// Only registered processors' sections are allowed (see [`crate::registry`]); each is read
    /// by its processor when built.
    #[serde(flatten)]
    pub sections: std::collections::BTreeMap<String, toml::Value>,
}

fn default_topology() -> PathBuf {
    PathBuf::from("topology.yaml")
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML or not the expected fields (the message names the field).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ProcessorFile {
    /// Reads and validates `path`; `BMON_BROKERS` overrides `kafka.brokers`.
    pub fn load(path: &Path) -> Result<ProcessorFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut file: ProcessorFile =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })?;
        if let Some(unknown) = file.sections.keys().find(|k| crate::registry::find(k).is_none()) {
            return Err(ConfigError::Invalid {
                path: path.into(),
                message: format!(
                    "unknown section or field `{unknown}` (common: topology, kafka, service, runtime; processors: {})",
                    crate::registry::names()
                ),
            });
        }
        if let Ok(brokers) = std::env::var("BMON_BROKERS")
            && !brokers.is_empty()
        {
            file.kafka.brokers = brokers;
        }
        Ok(file)
    }
}
