//! Which facts were already handled, by envelope key, so a redelivered fact yields nothing.
//!
//! Facts of one source can arrive out of order: a producer resends a fact whose delivery timed
//! out after later ones were acknowledged, and a log producer refills a hole. A high-water mark
//! would drop those resent facts, so each (node, stream, epoch) keeps the set of handled offset
//! ranges instead: a log line covers `[offset, end_offset)`, a ZMQ or RPC fact `[seq, seq + 1)`.
//! Contiguous facts merge into one range, so an in-order stream costs one range.
//!
//! Memory is bounded three ways: at most [`MAX_RANGES`] ranges per epoch (past that the lowest
//! gap is closed, so a fact refilling it much later is taken as a duplicate and counted), at most
//! [`MAX_EPOCHS`] epochs per (node, stream) (a node restart or a log rotation starts a new one),
//! and (node, stream) pairs unseen for the idle span are forgotten.

use std::collections::{BTreeMap, HashMap};

/// Ranges kept per epoch.
pub const MAX_RANGES: usize = 256;
/// Epochs kept per (node, stream).
pub const MAX_EPOCHS: usize = 4;

/// The verdict on one fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not handled before: handle it.
    New,
    /// Handled before: skip it.
    Duplicate,
}

/// Handled offset ranges of one epoch: start → end (exclusive), disjoint and not adjacent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ranges(BTreeMap<i64, i64>);

impl Ranges {
    /// Adds `[start, end)`; false if it was already covered.
    fn insert(&mut self, start: i64, end: i64) -> bool {
        let end = end.max(start.saturating_add(1));
        if let Some((&s, &e)) = self.0.range(..=start).next_back()
            && s <= start
            && end <= e
        {
            return false;
        }
        let (mut lo, mut hi) = (start, end);
        // Merge every range that overlaps or touches [lo, hi).
        let touching: Vec<i64> = self.0.range(..=hi).rev().take_while(|(_, e)| **e >= lo).map(|(s, _)| *s).collect();
        for s in touching {
            if let Some(e) = self.0.remove(&s) {
                lo = lo.min(s);
                hi = hi.max(e);
            }
        }
        self.0.insert(lo, hi);
        if self.0.len() > MAX_RANGES {
            self.close_lowest_gap();
        }
        true
    }

    fn close_lowest_gap(&mut self) {
        let mut it = self.0.iter();
        let (Some((&s0, _)), Some((&s1, &e1))) = (it.next(), it.next()) else { return };
        self.0.remove(&s1);
        self.0.insert(s0, e1);
    }
}

#[derive(Debug, Default, Clone)]
struct Stream {
    /// Epochs in the order they were first seen, newest last.
    epochs: Vec<(String, Ranges)>,
    /// Latest producer receive time of a fact, µs.
    last_us: i64,
}

/// Handled facts of one input partition.
#[derive(Debug, Default, Clone)]
pub struct Dedup {
    streams: HashMap<(String, String), Stream>,
}

impl Dedup {
    /// Judges the fact at `[offset, end)` of `epoch` in `node`'s `stream`, received at
    /// `received_us`, and marks it handled.
    pub fn check(&mut self, node: &str, stream: &str, epoch: &str, offset: i64, end: i64, received_us: i64) -> Verdict {
        let key = (node.to_owned(), stream.to_owned());
        let s = self.streams.entry(key).or_default();
        s.last_us = s.last_us.max(received_us);
        let ranges = match s.epochs.iter().position(|(e, _)| e == epoch) {
            Some(i) => &mut s.epochs[i].1,
            None => {
                if s.epochs.len() >= MAX_EPOCHS {
                    s.epochs.remove(0);
                }
                s.epochs.push((epoch.to_owned(), Ranges::default()));
                let last = s.epochs.len() - 1;
                &mut s.epochs[last].1
            }
        };
        if ranges.insert(offset, end) { Verdict::New } else { Verdict::Duplicate }
    }

    /// Forgets (node, stream) pairs whose newest fact was received before `before_us`.
    pub fn forget_before(&mut self, before_us: i64) {
        self.streams.retain(|_, s| s.last_us >= before_us);
    }

    /// (node, stream) pairs, epochs and ranges held, for memory bounds.
    pub fn size(&self) -> (usize, usize, usize) {
        let epochs = self.streams.values().map(|s| s.epochs.len()).sum();
        let ranges = self.streams.values().flat_map(|s| s.epochs.iter()).map(|(_, r)| r.0.len()).sum();
        (self.streams.len(), epochs, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_of_order_resends_are_new_and_repeats_are_not() {
        let mut d = Dedup::default();
        let mut check = |off: i64| d.check("n", "zmq:hashtx", "e1", off, off + 1, 0);
        assert_eq!(check(1), Verdict::New);
        assert_eq!(check(3), Verdict::New, "2 timed out, 3 was acknowledged");
        assert_eq!(check(2), Verdict::New, "the resent 2 fills the hole");
        assert_eq!(check(3), Verdict::Duplicate, "3 resent after it");
        assert_eq!(d.size(), (1, 1, 1), "1..=3 merged into one range");
    }

    #[test]
    fn log_lines_merge_by_byte_range() {
        let mut d = Dedup::default();
        assert_eq!(d.check("n", "log", "f", 0, 40, 0), Verdict::New);
        assert_eq!(d.check("n", "log", "f", 40, 95, 0), Verdict::New);
        assert_eq!(d.check("n", "log", "f", 0, 40, 0), Verdict::Duplicate);
        assert_eq!(d.size().2, 1);
    }

    #[test]
    fn epochs_and_departed_nodes_are_bounded() {
        let mut d = Dedup::default();
        for epoch in 0..1000 {
            d.check("restarting", "log", &epoch.to_string(), 0, 10, epoch);
        }
        for node in 0..50 {
            d.check(&format!("gone-{node}"), "log", "e", 0, 10, 5);
        }
        assert_eq!(d.size(), (51, MAX_EPOCHS + 50, MAX_EPOCHS + 50));
        d.forget_before(100);
        assert_eq!(d.size(), (1, MAX_EPOCHS, MAX_EPOCHS), "the 50 departed nodes are forgotten");
        assert_eq!(d.check("restarting", "log", "0", 0, 10, 1000), Verdict::New, "a forgotten epoch starts afresh");
    }

    #[test]
    fn ranges_are_bounded() {
        let mut d = Dedup::default();
        for i in 0..10_000 {
            d.check("n", "zmq", "e", i * 2, i * 2 + 1, 0);
        }
        assert!(d.size().2 <= MAX_RANGES);
    }

    proptest! {
        /// Any delivery order with repeats: each offset is New exactly once (while the range
        /// bound is not reached).
        #[test]
        fn each_fact_is_new_once(order in proptest::collection::vec(0i64..100, 1..400)) {
            let mut d = Dedup::default();
            let mut news = std::collections::BTreeSet::new();
            for off in order {
                match d.check("n", "s", "e", off, off + 1, 0) {
                    Verdict::New => prop_assert!(news.insert(off), "offset {} new twice", off),
                    _ => prop_assert!(news.contains(&off), "offset {} dropped unseen", off),
                }
            }
        }
    }
}
