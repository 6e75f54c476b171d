//! `mempool` settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::empty::EmptyConfig;
use super::presence::PresenceConfig;
use super::rejections::SpikeConfig;
use super::templates::TemplateConfig;

/// Settings of the mempool processor (the `[mempool]` table). Its topics come from topology.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Rejections are counted in buckets this long (event time), seconds. Default 60.
    pub spike_bucket_s: u64,
    /// A node's baseline is its mean per bucket over this many buckets before. Default 60.
    pub spike_baseline_buckets: usize,
    /// A bucket is a spike when its count exceeds this many times the baseline... Default 5.
    pub spike_factor: f64,
    /// ...and is at least this many rejections. Default 20.
    pub spike_floor: i64,
    /// A transaction's verdicts are compared this long after the first, seconds. Default 60.
    pub divergence_window_s: u64,
    /// A node's mempool empty this long is reported, seconds. Default 600.
    pub empty_after_s: u64,
    /// Report an empty mempool even when no other node holds transactions. Default false.
    pub empty_always: bool,
    /// Nodes without a view for this long do not count as holding transactions, seconds.
    /// Default 600.
    pub alive_s: u64,
    /// A transaction counts in the mempool comparison once held, or split between the nodes,
    /// this long, seconds. Default 60.
    pub mempool_span_s: u64,
    /// A node's mempool diverges with at least this many missing and extra transactions.
    /// Default 5.
    pub mempool_min_txs: i64,
    /// The nodes' mempools, and their templates, are compared at most this often, seconds.
    /// Default 10.
    pub mempool_every_s: u64,
    /// The polling skew between nodes' templates: transactions first seen later than this
    /// before the oldest compared template are not counted, seconds. Default 15.
    pub template_skew_s: u64,
    /// Templates older than this are not compared, seconds. Default 60.
    pub template_alive_s: u64,
    /// A template diverges with at least this many missing and extra transactions. Default 5.
    pub template_min_txs: i64,
    /// The most the views topic's records (each node's lists and templates, and the conflict
    /// markers mempool derives from the logs over more broker hops) lag one another, seconds:
    /// they are held this long behind the newest and applied in event-time order, so the
    /// comparisons are the same live and replayed. Default 10.
    pub order_bound_s: u64,
    /// RocksDB directory for the checkpointed state. Default `state/mempool`.
    pub state_dir: PathBuf,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        let (spike, empty) = (SpikeConfig::default(), EmptyConfig::default());
        let (pool, template) = (PresenceConfig::default(), TemplateConfig::default());
        MempoolConfig {
            spike_bucket_s: (spike.bucket_us / 1_000_000) as u64,
            spike_baseline_buckets: spike.baseline_buckets,
            spike_factor: spike.factor,
            spike_floor: spike.floor,
            divergence_window_s: 60,
            empty_after_s: (empty.after_us / 1_000_000) as u64,
            empty_always: empty.always,
            alive_s: (empty.alive_us / 1_000_000) as u64,
            mempool_span_s: (pool.span_us / 1_000_000) as u64,
            mempool_min_txs: pool.min_txs,
            mempool_every_s: (pool.every_us / 1_000_000) as u64,
            template_skew_s: (template.skew_us / 1_000_000) as u64,
            template_alive_s: (template.alive_us / 1_000_000) as u64,
            template_min_txs: template.min_txs,
            order_bound_s: 10,
            state_dir: PathBuf::from("state/mempool"),
        }
    }
}

impl MempoolConfig {
    /// The spike settings, in µs.
    pub fn spike(&self) -> SpikeConfig {
        SpikeConfig {
            bucket_us: secs(self.spike_bucket_s).max(1),
            baseline_buckets: self.spike_baseline_buckets.max(1),
            factor: if self.spike_factor.is_finite() { self.spike_factor.max(0.0) } else { 5.0 },
            floor: self.spike_floor.max(1),
        }
    }

    /// How long view records are held for event-time order, µs.
    pub fn order_bound_us(&self) -> i64 {
        secs(self.order_bound_s)
    }

    /// The window of a transaction's verdict comparison, µs.
    pub fn divergence_window_us(&self) -> i64 {
        secs(self.divergence_window_s)
    }

    /// The empty-mempool settings, in µs.
    pub fn empty(&self) -> EmptyConfig {
        EmptyConfig { after_us: secs(self.empty_after_s), always: self.empty_always, alive_us: secs(self.alive_s) }
    }
}

impl MempoolConfig {
    /// The mempool comparison's settings, in µs.
    pub fn presence(&self) -> PresenceConfig {
        PresenceConfig {
            span_us: secs(self.mempool_span_s),
            alive_us: secs(self.alive_s),
            min_txs: self.mempool_min_txs.max(1),
            every_us: secs(self.mempool_every_s),
            ..PresenceConfig::default()
        }
    }

    /// The template comparison's settings, in µs.
    pub fn templates(&self) -> TemplateConfig {
        TemplateConfig {
            skew_us: secs(self.template_skew_s),
            alive_us: secs(self.template_alive_s),
            min_txs: self.template_min_txs.max(1),
            every_us: secs(self.mempool_every_s),
            ..TemplateConfig::default()
        }
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000)
}
