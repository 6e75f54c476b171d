//! `chain` settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::network::NetworkConfig;
use super::node::NodeConfig;

/// Settings of the chain processor (the `[chain]` table). Its topics come from topology.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Heights of each node's active chain kept, for the disconnected side of a reorg. Default 200.
    pub keep_blocks: usize,
    /// A reorg won by ≥ 2 blocks that all reached the node within this span is a selfish-mining
    /// suspect, seconds. Default 30.
    pub selfish_span_s: u64,
    /// A tip older than this by block time is stale, seconds. Default 5400 (90 min).
    pub stale_after_s: u64,
    /// A tip older than this when it arrives means the node is in initial block download, and
    /// is not reported stale, seconds. Default 86400 (Core's `-maxtipage`).
    pub ibd_tip_age_s: u64,
    /// A reorg seen first in getchaintips waits this long for the log or ZMQ to report it with
    /// both branches, seconds. Default 5.
    pub tips_grace_s: u64,
    /// For a node without a log, ZMQ sequence resets of different topics this close together are
    /// one restart, seconds. Default 600. (Where the log tells of starts, a reset is never a new
    /// one.)
    pub restart_merge_s: u64,
    /// A node this many blocks behind its network's best enters lagging. Default 3.
    pub lag_enter: i64,
    /// A lagging node this close to the best leaves lagging. Default 1.
    pub lag_exit: i64,
    /// Nodes without a view for this long do not count for the best height, seconds. Default 600.
    pub alive_s: u64,
    /// Nodes on different tips at the same height for this long are a chain split, seconds.
    /// Default 900: a race at one height usually ends with the next block, 10 minutes on average.
    pub split_after_s: u64,
    /// One block's connect times are compared across nodes this long after the first, seconds.
    /// Default 60.
    pub connect_window_s: u64,
    /// RocksDB directory for the checkpointed state. Default `state/chain`.
    pub state_dir: PathBuf,
}

impl Default for ChainConfig {
    fn default() -> Self {
        let (node, net) = (NodeConfig::default(), NetworkConfig::default());
        ChainConfig {
            keep_blocks: node.keep_blocks,
            selfish_span_s: (node.selfish_span_us / 1_000_000) as u64,
            stale_after_s: (node.stale_after_us / 1_000_000) as u64,
            ibd_tip_age_s: (node.ibd_tip_age_us / 1_000_000) as u64,
            tips_grace_s: (node.tips_grace_us / 1_000_000) as u64,
            restart_merge_s: (node.restart_merge_us / 1_000_000) as u64,
            lag_enter: net.lag_enter,
            lag_exit: net.lag_exit,
            alive_s: (net.alive_us / 1_000_000) as u64,
            split_after_s: (net.split_after_us / 1_000_000) as u64,
            connect_window_s: 60,
            state_dir: PathBuf::from("state/chain"),
        }
    }
}

impl ChainConfig {
    /// The per-node settings, in µs.
    pub fn node(&self) -> NodeConfig {
        NodeConfig {
            keep_blocks: self.keep_blocks.max(1),
            selfish_span_us: secs(self.selfish_span_s),
            stale_after_us: secs(self.stale_after_s),
            ibd_tip_age_us: secs(self.ibd_tip_age_s),
            tips_grace_us: secs(self.tips_grace_s),
            restart_merge_us: secs(self.restart_merge_s),
        }
    }

    /// The window of a block's connect-time comparison, µs.
    pub fn connect_window_us(&self) -> i64 {
        secs(self.connect_window_s)
    }

    /// The per-network settings, in µs.
    pub fn network(&self) -> NetworkConfig {
        NetworkConfig {
            lag_enter: self.lag_enter.max(1),
            lag_exit: self.lag_exit.max(0),
            alive_us: secs(self.alive_s),
            split_after_us: secs(self.split_after_s),
        }
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000)
}
