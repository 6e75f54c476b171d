//! Per-node clock offset: how far a node's log clock is behind its producer's host clock.
//!
//! Each log observation carries the node's timestamp for the line (`observed_at_us`) and the
//! producer's receive time (`received_at_us`, host clock). Their difference is the clock offset
//! plus the tailing delay, which is never negative; the minimum over recent samples is the best
//! estimate of the offset alone. Producer hosts are assumed NTP-synchronised, so the estimate
//! corrects nodes whose own clock (or log time zone) is off.

use std::collections::{BTreeMap, VecDeque};

/// Samples kept per node.
const SAMPLES: usize = 256;

/// Running offset estimates, per node.
#[derive(Debug, Default, Clone)]
pub struct ClockEstimator {
    samples: BTreeMap<String, VecDeque<i64>>,
}

impl ClockEstimator {
    /// Adds one (node time, host time) pair.
    pub fn sample(&mut self, node: &str, observed_at_us: i64, received_at_us: i64) {
        let q = self.samples.entry(node.to_owned()).or_default();
        if q.len() == SAMPLES {
            q.pop_front();
        }
        q.push_back(received_at_us - observed_at_us);
    }

    /// The node's estimated offset (µs to add to its timestamps), if it has samples.
    pub fn offset_us(&self, node: &str) -> Option<i64> {
        self.samples.get(node).and_then(|q| q.iter().min().copied())
    }

    /// Every node's estimate.
    pub fn offsets(&self) -> impl Iterator<Item = (&str, i64)> {
        self.samples.iter().filter_map(|(n, q)| q.iter().min().map(|m| (n.as_str(), *m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_of_delays_is_the_offset() {
        let mut c = ClockEstimator::default();
        for (obs, recv) in [(1_000, 6_000_200), (2_000, 6_001_050), (3_000, 6_002_010)] {
            c.sample("slow", obs, recv);
        }
        assert_eq!(c.offset_us("slow"), Some(5_999_010));
        assert_eq!(c.offset_us("other"), None);
    }
}
