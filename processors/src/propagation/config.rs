//! `propagation` settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the propagation processor (the `[propagation]` table). Its topics come from
/// topology.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PropagationConfig {
    /// Block window timeout, seconds. Default 600.
    pub block_timeout_s: u64,
    /// Transaction window timeout, seconds. Default 3600.
    pub tx_timeout_s: u64,
    /// Closed windows are kept this long to take late observations, seconds. Default 600.
    ///
    /// The longer timeout plus this is the history state needs: topology.yaml's `windows` store
    /// window must cover it (70 min with the defaults), or the processor refuses to start.
    pub closed_retention_s: u64,
    /// A node counts as alive (expected in new windows) this long after its last observation,
    /// seconds. Default 1800.
    pub alive_s: u64,
    /// The fleet per network, if known (`[propagation.fleet] main = ["a", "b"]`): those nodes are
    /// always expected in that network's windows. Networks not listed expect the nodes seen alive
    /// in the last `alive_s`.
    pub fleet: BTreeMap<String, Vec<String>>,
    /// Recent spreads kept per network and stage for the anomaly baseline. Default 200.
    pub baseline_size: usize,
    /// A spread above this quantile of the baseline is anomalous. Default 0.99.
    pub anomaly_quantile: f64,
    /// Baseline samples needed before anomalies are judged. Default 20.
    pub baseline_min: usize,
    /// Clock offsets (|offset| above this, ms) are corrected in lags. Default 1000.
    pub clock_correction_threshold_ms: i64,
    /// A log timestamp further than this from its producer's receive time, s, is a clock
    /// outlier: the receive time is used for it, it is counted, and it never moves a window's
    /// deadline or the watermark. Default 120.
    pub clock_outlier_s: u64,
    /// RocksDB directory for window state. Default `state/propagation`.
    pub state_dir: PathBuf,
}

impl Default for PropagationConfig {
    fn default() -> Self {
        PropagationConfig {
            block_timeout_s: 600,
            tx_timeout_s: 3600,
            closed_retention_s: 600,
            alive_s: 1800,
            fleet: BTreeMap::new(),
            baseline_size: 200,
            anomaly_quantile: 0.99,
            baseline_min: 20,
            clock_correction_threshold_ms: 1000,
            clock_outlier_s: 120,
            state_dir: PathBuf::from("state/propagation"),
        }
    }
}

impl PropagationConfig {
    /// The history (s) state needs: a window held open until the longer timeout, then kept
    /// closed for late observations. With the fields that make it up, for messages.
    pub fn history_needed(&self) -> (u64, &'static str) {
        let (timeout, fields) = if self.tx_timeout_s >= self.block_timeout_s {
            (self.tx_timeout_s, "tx_timeout_s + closed_retention_s")
        } else {
            (self.block_timeout_s, "block_timeout_s + closed_retention_s")
        };
        (timeout.saturating_add(self.closed_retention_s), fields)
    }
}
