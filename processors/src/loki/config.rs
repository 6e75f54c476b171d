//! `[loki]`: where the sink pushes, how it batches and retries, and its credentials.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::push::Format;

/// The Loki sink's settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LokiConfig {
    /// Loki's base URL (`http://loki:3100`); the push path is appended. Default
    /// `http://127.0.0.1:3100`.
    pub url: String,
    /// The push path. Default `/loki/api/v1/push` (VictoriaLogs: `/insert/loki/api/v1/push`).
    pub push_path: String,
    /// `protobuf` (snappy-compressed, Loki's native form; default) or `json`.
    pub format: Format,
    /// A batch is pushed once its entries add up to this many bytes. Default 1 MiB.
    pub batch_max_bytes: usize,
    /// …or once its oldest entry has waited this long, ms. Default 1000.
    pub batch_wait_ms: u64,
    /// One push's timeout, ms. Default 10000.
    pub request_timeout_ms: u64,
    /// First retry backoff, ms; it doubles up to `max_backoff_ms`. Default 250.
    pub min_backoff_ms: u64,
    /// Longest retry backoff, ms. Default 30000.
    pub max_backoff_ms: u64,
    /// `X-Scope-OrgID`: the Loki tenant. Default none.
    pub tenant: Option<String>,
    /// Basic-auth user name. Default none.
    pub username: Option<String>,
    /// A file holding the basic-auth password (read at each start). Default none.
    pub password_file: Option<PathBuf>,
    /// A file holding a bearer token (read at each start). Default none.
    pub bearer_token_file: Option<PathBuf>,
    /// A PEM file of extra CA certificates to trust for an `https` URL. Default none.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification (testing only). Default false.
    pub insecure_skip_verify: bool,
    /// Where the pushed offsets are kept (RocksDB). Default `state/loki`.
    pub state_dir: PathBuf,
    /// Set for replayed data: every stream gets a `replay` label with this id, so backfills
    /// never mix with live streams. Default none. A record with a `bmon-replay-id` header
    /// (published by `bmon replay --out-topic`) is labelled with the header's id instead.
    pub replay_id: Option<String>,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            url: "http://127.0.0.1:3100".into(),
            push_path: "/loki/api/v1/push".into(),
            format: Format::Protobuf,
            batch_max_bytes: 1 << 20,
            batch_wait_ms: 1000,
            request_timeout_ms: 10_000,
            min_backoff_ms: 250,
            max_backoff_ms: 30_000,
            tenant: None,
            username: None,
            password_file: None,
            bearer_token_file: None,
            ca_file: None,
            insecure_skip_verify: false,
            state_dir: PathBuf::from("state/loki"),
            replay_id: None,
        }
    }
}

/// A replay id fit for the `replay` label: 1 to 64 bytes.
pub fn valid_replay_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64
}

impl LokiConfig {
    /// Checks the settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("url = {:?}: must start with http:// or https://", self.url));
        }
        if self.batch_max_bytes == 0 || self.batch_wait_ms == 0 {
            return Err("batch_max_bytes and batch_wait_ms must be above 0".into());
        }
        if self.min_backoff_ms == 0 || self.max_backoff_ms < self.min_backoff_ms {
            return Err("need 0 < min_backoff_ms <= max_backoff_ms".into());
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err("password_file needs username".into());
        }
        if self.bearer_token_file.is_some() && self.username.is_some() {
            return Err("set username/password_file or bearer_token_file, not both".into());
        }
        if let Some(id) = &self.replay_id
            && !valid_replay_id(id)
        {
            return Err("replay_id must be 1 to 64 characters".into());
        }
        Ok(())
    }

    /// The full push URL.
    pub fn push_url(&self) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), self.push_path)
    }

    /// The batch wait.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }
}
