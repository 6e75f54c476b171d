//! Per-node clock offset: how far a node's log clock is behind its producer's host clock.
//!
//! Each log observation carries the node's timestamp for the line (`observed_at_us`) and the
//! producer's receive time (`received_at_us`, host clock). Their difference is the clock offset
//! plus the tailing delay, which is never negative; the minimum over recent samples is the best
//! estimate of the offset alone. Producer hosts are assumed NTP-synchronised, so the estimate
//! corrects nodes whose own clock (or log time zone) is off.
//!
//! That minimum still holds the smallest tailing delay the node's samples saw: the producer
//! stamps lines at the change notification that announced them (`producers/src/tail/stamp.rs`),
//! so on a quiet host that is a fraction of a millisecond. Nothing is taken from one node's
//! estimate on account of another's: an estimate depends only on that node's own samples, in their
//! order, which is the same live and in any replay, whatever the interleaving with other nodes.
//!
//! The estimate is a pure function of the observations a partition received, in their order:
//! each partition keeps its own estimator inside its checkpointed state, so a restart or a
//! replay of the same input gives the same estimates, and so the same lags.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Samples kept per node.
const SAMPLES: usize = 256;

/// Running offset estimates, per node: the minimum of the last [`SAMPLES`] differences, kept as a
/// monotonic queue (sliding-window minimum, O(1) amortised per sample).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockEstimator {
    nodes: HashMap<String, NodeClock, super::Hasher>,
}

/// One node's samples.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct NodeClock {
    /// Samples seen.
    seen: u64,
    /// (sample number, value) pairs with increasing values.
    window: VecDeque<(u64, i64)>,
    /// Host time of the newest sample, µs: nodes that stopped reporting are forgotten.
    last_us: i64,
}

impl ClockEstimator {
    /// Adds one (node time, host time) pair.
    pub fn sample(&mut self, node: &str, observed_at_us: i64, received_at_us: i64) {
        let v = received_at_us - observed_at_us;
        let c = match self.nodes.get_mut(node) {
            Some(e) => e,
            None => self.nodes.entry(node.to_owned()).or_default(),
        };
        c.last_us = c.last_us.max(received_at_us);
        let (seen, q) = (&mut c.seen, &mut c.window);
        while q.back().is_some_and(|&(_, b)| b >= v) {
            q.pop_back();
        }
        q.push_back((*seen, v));
        *seen += 1;
        while q.front().is_some_and(|&(i, _)| i + (SAMPLES as u64) < *seen) {
            q.pop_front();
        }
    }

    /// The node's estimated offset (µs to add to its timestamps), if it has samples.
    pub fn offset_us(&self, node: &str) -> Option<i64> {
        self.nodes.get(node).and_then(|c| c.window.front().map(|&(_, v)| v))
    }

    /// The offset to add to a node's timestamps, if its estimate exceeds `threshold_us`.
    pub fn correction_us(&self, node: &str, threshold_us: i64) -> Option<i64> {
        self.offset_us(node).filter(|off| off.abs() > threshold_us)
    }

    /// Every node's estimate, with its number of samples.
    pub fn offsets(&self) -> impl Iterator<Item = (&str, i64, u64)> {
        self.nodes.iter().filter_map(|(n, c)| c.window.front().map(|&(_, v)| (n.as_str(), v, c.seen)))
    }

    /// Forgets nodes whose newest sample is older than `before_us` (host time).
    pub fn forget_before(&mut self, before_us: i64) {
        self.nodes.retain(|_, c| c.last_us >= before_us);
    }

    /// Nodes with an estimate.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node has an estimate.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_minimums() {
        let mut c = ClockEstimator::default();
        c.sample("n", 0, 5);
        for i in 0..SAMPLES as i64 {
            c.sample("n", 0, 100 + i);
        }
        assert_eq!(c.offset_us("n"), Some(100), "the 5 fell out of the window");
        c.sample("n", 0, 50);
        assert_eq!(c.offset_us("n"), Some(50));
    }

    #[test]
    fn minimum_of_delays_is_the_offset() {
        let mut c = ClockEstimator::default();
        for (obs, recv) in [(1_000, 6_000_200), (2_000, 6_001_050), (3_000, 6_002_010)] {
            c.sample("slow", obs, recv);
        }
        assert_eq!(c.offset_us("slow"), Some(5_999_010));
        assert_eq!(c.offset_us("other"), None);
    }

    #[test]
    fn a_correction_is_the_nodes_own_estimate_above_the_threshold() {
        let mut c = ClockEstimator::default();
        c.sample("right", 0, 2_500);
        c.sample("ahead", 2_000_000, 6_000);
        assert_eq!(c.correction_us("ahead", 1_000_000), Some(-1_994_000));
        assert_eq!(c.correction_us("right", 1_000_000), None, "within the threshold");
        c.sample("other", 0, 100);
        assert_eq!(c.correction_us("ahead", 1_000_000), Some(-1_994_000), "another node changes nothing");
    }

    #[test]
    fn departed_nodes_are_forgotten() {
        let mut c = ClockEstimator::default();
        c.sample("gone", 0, 1_000);
        c.sample("here", 0, 9_000);
        c.forget_before(5_000);
        assert_eq!((c.offset_us("gone"), c.len()), (None, 1));
    }
}
