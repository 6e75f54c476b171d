//! `node.toml`: what one producer publishes, and where.

use std::path::{Path, PathBuf};

use bmon_kafka::ClientSettings;
use bmon_schemas::NodeImplementation;
use serde::Deserialize;

/// Why a config could not be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not fit (unknown field, wrong type, missing field).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the field.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The node this producer sits beside.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id, unique in the fleet; the record key.
    pub id: String,
    /// Chain name (main, test, signet, regtest).
    pub network: String,
    /// core, bsv or litecoin.
    pub implementation: Implementation,
    /// Version string, if known (default: empty).
    #[serde(default)]
    pub version: String,
}

/// Node software, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Implementation {
    Core,
    Bsv,
    Litecoin,
}

impl From<Implementation> for NodeImplementation {
    fn from(i: Implementation) -> Self {
        match i {
            Implementation::Core => NodeImplementation::Core,
            Implementation::Bsv => NodeImplementation::Bsv,
            Implementation::Litecoin => NodeImplementation::Litecoin,
        }
    }
}

/// The debug.log source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// debug.log (BSV: bitcoind.log).
    pub path: PathBuf,
    /// Lines longer than this are cut and marked truncated. Default 65536.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    /// The read interval of a busy log, in ms: lines are published in batches of about this
    /// span. Also how often a log is re-read where inotify is unavailable. Default 200.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Reads a quiet log may make as lines land, before it is held to one per `poll_ms` (a
    /// token bucket: one more every `poll_ms`). Lets a node's burst of lines for one block be
    /// published as it is written. Default 4; 1 reads at most once per `poll_ms`.
    #[serde(default = "default_read_burst")]
    pub read_burst: u32,
}

fn default_max_line() -> usize {
    65_536
}

fn default_poll_ms() -> u64 {
    200
}

fn default_read_burst() -> u32 {
    4
}

/// The ZMQ source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZmqSection {
    /// Endpoints, e.g. `["tcp://127.0.0.1:28332"]`.
    pub endpoints: Vec<String>,
    /// ZMQ topics to subscribe to. Default hashblock, hashtx, rawblock, rawtx, sequence and
    /// invalidtx (BSV's refused transactions); a topic the node does not publish costs nothing.
    #[serde(default = "default_zmq_topics")]
    pub topics: Vec<String>,
    /// ZMQ receive high-water mark. Default 100000, enough for mainnet bursts.
    #[serde(default = "default_rcvhwm")]
    pub rcvhwm: i32,
}

fn default_zmq_topics() -> Vec<String> {
    ["hashblock", "hashtx", "rawblock", "rawtx", "sequence", "invalidtx"].map(String::from).to_vec()
}

fn default_rcvhwm() -> i32 {
    100_000
}

/// The RPC source. Credentials come from a cookie file, a password file or an environment
/// variable; never from the command line, never logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSection {
    /// `http://host:port`.
    pub url: String,
    /// The node's `.cookie` file.
    #[serde(default)]
    pub cookie_file: Option<PathBuf>,
    /// RPC user, with `password_file` or `password_env`.
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the RPC password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the RPC password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Seconds between poll rounds. Default 10.
    #[serde(default = "default_interval")]
    pub interval_s: u64,
    /// Per-call timeout in seconds. Default 30.
    #[serde(default = "default_rpc_timeout")]
    pub timeout_s: u64,
    /// Seconds between gettxoutsetinfo snapshots, on their own schedule and connection (on
    /// mainnet the call takes minutes without coinstatsindex). 0: never. Default 600.
    #[serde(default = "default_txoutset_interval")]
    pub txoutset_interval_s: u64,
    /// The UTXO set hash gettxoutsetinfo computes: `none` (cheapest), `muhash`, or
    /// `hash_serialized` (the node's default, slowest). Default `none`. BSV takes no parameter.
    #[serde(default)]
    pub txoutset_hash_type: TxOutSetHash,
    /// gettxoutsetinfo's own timeout, s. Default 900.
    #[serde(default = "default_txoutset_timeout")]
    pub txoutset_timeout_s: u64,
    /// The mempool's txids go out as deltas, with a full snapshot (in chunks of at most 1 MB)
    /// every this many rounds. Default 90 (15 min at 10 s): a consumer that starts, or lost a
    /// fact, knows the node's list again within that.
    #[serde(default = "default_mempool_full_every")]
    pub mempool_full_every: u32,
}

fn default_mempool_full_every() -> u32 {
    90
}

fn default_txoutset_interval() -> u64 {
    600
}

fn default_txoutset_timeout() -> u64 {
    900
}

/// Which UTXO set hash gettxoutsetinfo computes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxOutSetHash {
    /// No hash: counts and amounts only.
    #[default]
    None,
    /// MuHash (Core ≥ 0.21, Litecoin 0.21).
    Muhash,
    /// The node's serialized-set hash (`hash_serialized_3` on Core, `_2` on Litecoin).
    HashSerialized,
}

fn default_interval() -> u64 {
    10
}

fn default_rpc_timeout() -> u64 {
    30
}

impl RpcSection {
    /// The credentials source, or which fields are missing.
    pub fn auth(&self) -> Result<crate::rpc::RpcAuth, &'static str> {
        use crate::rpc::RpcAuth;
        match (&self.cookie_file, &self.user, &self.password_file, &self.password_env) {
            (Some(c), None, None, None) => Ok(RpcAuth::Cookie(c.clone())),
            (None, Some(u), Some(f), None) => Ok(RpcAuth::PasswordFile { user: u.clone(), file: f.clone() }),
            (None, Some(u), None, Some(v)) => Ok(RpcAuth::PasswordEnv { user: u.clone(), var: v.clone() }),
            _ => Err("set exactly one of cookie_file, or user with password_file or password_env"),
        }
    }
}

/// The HTTP listener for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Listen address. Default `127.0.0.1:9464`.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection { listen: default_listen() }
    }
}

/// Local state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// Directory for the log checkpoint and the ZMQ/RPC spools.
    pub dir: PathBuf,
    /// Disk bound of each spool (ZMQ, RPC), MiB. Default 1024: hours of mainnet-rate
    /// notifications, and about an hour of mempool snapshots at a 10 s interval. Beyond it, facts
    /// are counted as dropped.
    #[serde(default = "default_spool_mb")]
    pub spool_capacity_mb: u64,
}

fn default_spool_mb() -> u64 {
    1024
}

/// The whole `node.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// The node.
    pub node: NodeSection,
    /// The log source (optional).
    #[serde(default)]
    pub log: Option<LogSection>,
    /// The ZMQ source (optional).
    #[serde(default)]
    pub zmq: Option<ZmqSection>,
    /// The RPC source (optional).
    #[serde(default)]
    pub rpc: Option<RpcSection>,
    /// Brokers, client id, TLS/SASL and extra librdkafka properties.
    pub kafka: ClientSettings,
    /// Local state.
    pub state: StateSection,
    /// Metrics and health listener.
    #[serde(default)]
    pub service: ServiceSection,
    /// topology.yaml, whose topics the facts go to (found by the schema family each carries).
    /// Default: the topology this bmon was built with.
    #[serde(default)]
    pub topology: Option<PathBuf>,
    /// The topics, resolved from the topology by [`ProducerConfig::load`].
    #[serde(skip)]
    pub topics: ProducerTopics,
}

/// Where each source's facts go, from topology.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerTopics {
    /// Log facts (`log_line_fact`).
    pub log: String,
    /// ZMQ facts (`zmq_fact`).
    pub zmq: String,
    /// RPC snapshots (`rpc_snapshot_fact`).
    pub rpc: String,
}

impl ProducerTopics {
    /// The topics of `topology`; an error names the family no topic carries.
    pub fn of(topology: &bmon_topology::Topology) -> Result<ProducerTopics, bmon_topology::BindError> {
        use bmon_schemas::{LogLineFact, Record, RpcSnapshotFact, ZmqFact};
        Ok(ProducerTopics {
            log: topology.topic_of(LogLineFact::FAMILY)?.name.clone(),
            zmq: topology.topic_of(ZmqFact::FAMILY)?.name.clone(),
            rpc: topology.topic_of(RpcSnapshotFact::FAMILY)?.name.clone(),
        })
    }
}

impl ProducerConfig {
    /// Reads and validates a config file. `BMON_BROKERS`, when set, overrides `kafka.brokers`.
    pub fn load(path: &Path) -> Result<ProducerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        let mut c = Self::parse(&text).map_err(|message| ConfigError::Syntax { path: path.into(), message })?;
        if let Ok(b) = std::env::var("BMON_BROKERS") {
            c.kafka.brokers = b;
        }
        let invalid = |field, message: &str| ConfigError::Invalid { path: path.into(), field, message: message.into() };
        if c.node.id.trim().is_empty() {
            return Err(invalid("node.id", "must not be empty"));
        }
        if c.kafka.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must name at least one broker"));
        }
        if let Some(log) = &c.log {
            if log.max_line_bytes < 256 {
                return Err(invalid("log.max_line_bytes", "must be at least 256"));
            }
            if log.poll_ms == 0 {
                return Err(invalid("log.poll_ms", "must be positive"));
            }
            if log.read_burst == 0 {
                return Err(invalid("log.read_burst", "must be at least 1"));
            }
        }
        if let Some(z) = &c.zmq {
            if z.endpoints.is_empty() {
                return Err(invalid("zmq.endpoints", "must name at least one endpoint"));
            }
            if z.rcvhwm < 1 {
                return Err(invalid("zmq.rcvhwm", "must be positive"));
            }
        }
        if let Some(r) = &c.rpc {
            r.auth().map_err(|m| invalid("rpc", m))?;
            if r.mempool_full_every == 0 {
                return Err(invalid("rpc.mempool_full_every", "must be at least 1"));
            }
            if r.interval_s == 0 || r.timeout_s == 0 {
                return Err(invalid("rpc.interval_s", "interval_s and timeout_s must be positive"));
            }
        }
        if c.log.is_none() && c.zmq.is_none() && c.rpc.is_none() {
            return Err(invalid("log", "configure at least one source ([log], [zmq] or [rpc])"));
        }
        let topology = match &c.topology {
            Some(file) => bmon_topology::Topology::load(file),
            None => bmon_topology::Topology::builtin(bmon_schemas::SchemaSet::builtin().families()),
        }
        .map_err(|e| invalid("topology", &e.to_string()))?;
        c.topics = ProducerTopics::of(&topology).map_err(|e| invalid("topology", &e.to_string()))?;
        Ok(c)
    }

    /// Parses config text without validation beyond its shape.
    pub fn parse(text: &str) -> Result<ProducerConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
id = "core-0"
network = "regtest"
implementation = "core"
[log]
path = "/data/regtest/debug.log"
[kafka]
brokers = "127.0.0.1:9092"
[state]
dir = "/var/lib/bmon"
"#;

    #[test]
    fn parses_with_defaults() {
        let c = ProducerConfig::parse(GOOD).unwrap();
        let log = c.log.unwrap();
        assert_eq!(log.max_line_bytes, 65_536);
        assert!(c.zmq.is_none());
        assert_eq!(c.node.implementation, Implementation::Core);
    }

    #[test]
    fn topics_come_from_the_topology() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.toml");
        std::fs::write(&p, GOOD).unwrap();
        let c = ProducerConfig::load(&p).unwrap();
        assert_eq!(c.topics.log, "bmon.node.log", "the built-in topology's");
        let err = ProducerConfig::parse(&GOOD.replace("[log]\n", "[log]\ntopic = \"x\"\n")).unwrap_err();
        assert!(err.contains("topic"), "a config may not name a topic: {err}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = ProducerConfig::parse(&GOOD.replace("[log]\n", "[log]\npoll = 1\n")).unwrap_err();
        assert!(err.contains("poll"), "{err}");
    }

    #[test]
    fn bad_implementation_is_named() {
        let err = ProducerConfig::parse(&GOOD.replace("\"core\"", "\"btcd\"")).unwrap_err();
        assert!(err.contains("btcd") || err.contains("implementation"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.toml");
        std::fs::write(&p, GOOD.replace("[log]\n", "[log]\nmax_line_bytes = 10\n")).unwrap();
        let err = ProducerConfig::load(&p).unwrap_err();
        assert!(err.to_string().contains("log.max_line_bytes"), "{err}");
    }
}
