//! Rejections per node and reason: a bounded reason label, and spikes against the node's own
//! baseline. Pure.
//!
//! Counts go in buckets of `bucket_us` (event time: the node's log time). When a bucket closes
//! (the node's next rejection lands in a later one) or while it fills, its count is compared
//! with the node's mean per bucket for that reason over the `baseline_buckets` before it
//! (empty buckets count as zero): above `factor` × that mean and at least `floor`, it is a
//! spike, reported once per bucket.

use std::collections::{BTreeMap, VecDeque};

use bmon_schemas::MempoolRejectionSpike;
use serde::{Deserialize, Serialize};

/// Core's reject reasons (and BSV's where they differ), as metric labels: anything else is
/// `other`, so one odd node cannot blow up the label set. The raw reason stays in the event.
pub const REASONS: &[&str] = &[
    "absurdly-high-fee",
    "bad-txns-inputs-missingorspent",
    "bad-txns-nonfinal",
    "bare-multisig",
    "datacarrier",
    "dust",
    "insufficient fee",
    "mandatory-script-verify-flag-failed",
    "max-fee-exceeded",
    "mempool full",
    "mempool min fee not met",
    "min relay fee not met",
    "missing-inputs",
    "multi-op-return",
    "non-BIP68-final",
    "non-final",
    "non-mandatory-script-verify-flag",
    "replacement-adds-unconfirmed",
    "scriptpubkey",
    "scriptsig-not-pushonly",
    "scriptsig-size",
    "too-long-mempool-chain",
    "tx-size",
    "tx-size-small",
    "txn-already-in-mempool",
    "txn-already-known",
    "txn-double-spend-detected",
    "txn-mempool-conflict",
    "version",
];

/// The label of a raw reason: the known reason it starts with, or `other`.
pub fn reason_label(reason: &str) -> &'static str {
    let r = reason.trim();
    REASONS.iter().filter(|k| r.starts_with(**k)).max_by_key(|k| k.len()).copied().unwrap_or("other")
}

/// Spike settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeConfig {
    /// Bucket length, µs.
    pub bucket_us: i64,
    /// Buckets the baseline spans.
    pub baseline_buckets: usize,
    /// A bucket above this many times the baseline...
    pub factor: f64,
    /// ...with at least this many rejections is a spike.
    pub floor: i64,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig { bucket_us: 60_000_000, baseline_buckets: 60, factor: 5.0, floor: 20 }
    }
}

/// One (node, reason)'s recent buckets: (bucket index, count), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Buckets {
    counts: VecDeque<(i64, i64)>,
    /// The bucket a spike was reported for.
    reported: Option<i64>,
    example: String,
}

/// Recent refused txids remembered per node, so that one refusal told by two sources (BSV's log
/// and its `invalidtx` ZMQ) counts once.
const RECENT: usize = 512;

/// One node's rejections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    /// By reason label.
    by_reason: BTreeMap<String, Buckets>,
    /// The last refused txids, oldest first.
    #[serde(default)]
    recent: VecDeque<String>,
}

impl Rejections {
    /// Whether `txid`'s refusal is news: false if it is one of the node's last refusals (the
    /// same refusal from another source, or a peer offering it again).
    pub fn first_refusal(&mut self, txid: &str) -> bool {
        if self.recent.iter().any(|t| t == txid) {
            return false;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(txid.to_owned());
        true
    }

    /// Counts one rejection of `reason` at `at_us`; a spike event if it makes its bucket one.
    pub fn add(
        &mut self,
        c: &SpikeConfig,
        node: &str,
        network: &str,
        reason: &str,
        at_us: i64,
    ) -> Option<MempoolRejectionSpike> {
        let label = reason_label(reason);
        let b = self.by_reason.entry(label.to_owned()).or_default();
        let bucket = at_us.div_euclid(c.bucket_us);
        match b.counts.back_mut() {
            Some((i, n)) if *i == bucket => *n += 1,
            Some((i, _)) if *i > bucket => {
                // Late (an older line): counted where it belongs if still kept, never judged.
                if let Some((_, n)) = b.counts.iter_mut().find(|(i, _)| *i == bucket) {
                    *n += 1;
                }
                return None;
            }
            _ => b.counts.push_back((bucket, 1)),
        }
        b.example = reason.to_owned();
        let keep_from = bucket - c.baseline_buckets as i64;
        while b.counts.front().is_some_and(|(i, _)| *i < keep_from) {
            b.counts.pop_front();
        }
        let count = b.counts.back().map_or(0, |(_, n)| *n);
        let before: i64 = b.counts.iter().filter(|(i, _)| *i < bucket).map(|(_, n)| n).sum();
        let baseline = before as f64 / c.baseline_buckets as f64;
        if count < c.floor || (count as f64) <= c.factor * baseline || b.reported == Some(bucket) {
            return None;
        }
        b.reported = Some(bucket);
        Some(MempoolRejectionSpike {
            node_id: node.to_owned(),
            network: network.to_owned(),
            reason: label.to_owned(),
            example_reason: b.example.clone(),
            count,
            baseline,
            bucket_us: c.bucket_us,
            bucket_start_us: bucket * c.bucket_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_told_twice_counts_once_and_the_memory_is_bounded() {
        let mut r = Rejections::default();
        assert!(r.first_refusal("a"));
        assert!(!r.first_refusal("a"), "the same refusal from the node's ZMQ after its log");
        for i in 0..RECENT {
            r.first_refusal(&i.to_string());
        }
        assert_eq!(r.recent.len(), RECENT);
        assert!(r.first_refusal("a"), "forgotten after RECENT others");
    }

    #[test]
    fn reasons_map_to_a_bounded_label_set() {
        assert_eq!(reason_label("txn-mempool-conflict"), "txn-mempool-conflict");
        assert_eq!(reason_label("insufficient fee, rejecting replacement abc"), "insufficient fee");
        assert_eq!(reason_label("tx-size-small"), "tx-size-small", "the longest known prefix");
        assert_eq!(reason_label("datacarrier"), "datacarrier", "v31's -datacarrier=0 reason, from the live bed");
        assert_eq!(reason_label("something new"), "other");
        assert!(REASONS.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    }

    #[test]
    fn a_spike_is_k_times_the_baseline_above_the_floor_once_per_bucket() {
        let c = SpikeConfig { bucket_us: 60, baseline_buckets: 10, factor: 5.0, floor: 3 };
        let mut r = Rejections::default();
        // A steady 1 per bucket for 10 buckets: baseline 1.
        for i in 0..10 {
            assert!(r.add(&c, "n", "regtest", "dust", i * 60).is_none());
        }
        // 5 in the next bucket: not above 5 × 1.
        for k in 0..5 {
            assert!(r.add(&c, "n", "regtest", "dust", 600 + k).is_none());
        }
        // The 6th is: one event for the bucket, however many follow.
        let s = r.add(&c, "n", "regtest", "dust", 605).unwrap();
        assert_eq!((s.count, s.bucket_start_us, s.reason.as_str()), (6, 600, "dust"));
        assert!((s.baseline - 1.0).abs() < 1e-9);
        assert!(r.add(&c, "n", "regtest", "dust", 606).is_none());
        // Another reason has its own baseline (none): three make a spike at the floor.
        assert!(r.add(&c, "n", "regtest", "txn-mempool-conflict", 610).is_none());
        assert!(r.add(&c, "n", "regtest", "txn-mempool-conflict", 611).is_none());
        assert!(r.add(&c, "n", "regtest", "txn-mempool-conflict", 612).is_some());
        // A late line is counted, never judged.
        assert!(r.add(&c, "n", "regtest", "dust", 5).is_none());
    }
}
