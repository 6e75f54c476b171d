//! Per-topic ZMQ sequence tracking. Pure.

use std::collections::HashMap;

/// What one message's sequence number says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first message seen on this topic.
    First,
    /// The next number, as expected (including the u32 wrap to 0).
    InOrder,
    /// Numbers were skipped: messages were lost.
    Gap {
        /// The number that should have come.
        expected: u32,
        /// The number that came.
        received: u32,
        /// How many were lost.
        missed: u32,
    },
    /// The sequence went back: the node restarted (its counters start at 0 again). Not a gap.
    Reset {
        /// The last number before.
        previous: u32,
        /// The number that came.
        received: u32,
    },
}

/// Tracks the last sequence number of each topic.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    last: HashMap<String, u32>,
}

impl SequenceTracker {
    /// Records `seq` for `topic` and judges it.
    pub fn observe(&mut self, topic: &str, seq: u32) -> Verdict {
        let verdict = match self.last.get(topic) {
            None => Verdict::First,
            Some(&prev) if seq == prev.wrapping_add(1) => Verdict::InOrder,
            // A restarted node counts from 0 again; a smaller number is a restart, not a gap.
            Some(&prev) if seq <= prev => Verdict::Reset { previous: prev, received: seq },
            Some(&prev) => {
                let expected = prev.wrapping_add(1);
                Verdict::Gap { expected, received: seq, missed: seq - expected }
            }
        };
        self.last.insert(topic.to_owned(), seq);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn judges_order_gaps_resets_and_wraps() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.observe("hashtx", 5), Verdict::First);
        assert_eq!(t.observe("hashtx", 6), Verdict::InOrder);
        assert_eq!(t.observe("hashtx", 9), Verdict::Gap { expected: 7, received: 9, missed: 2 });
        assert_eq!(t.observe("hashblock", 0), Verdict::First, "topics are independent");
        assert_eq!(t.observe("hashtx", 0), Verdict::Reset { previous: 9, received: 0 });
        assert_eq!(t.observe("hashtx", 1), Verdict::InOrder);
        let mut w = SequenceTracker::default();
        w.observe("rawtx", u32::MAX);
        assert_eq!(w.observe("rawtx", 0), Verdict::InOrder, "u32 wrap is not a reset");
    }

    proptest! {
        /// Dropping messages from a counting stream yields gaps whose sizes add up to what was
        /// dropped, and never a reset.
        #[test]
        fn gaps_account_for_every_dropped_message(keep in proptest::collection::vec(any::<bool>(), 1..300)) {
            let mut t = SequenceTracker::default();
            let kept: Vec<u32> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i as u32).collect();
            prop_assume!(!kept.is_empty());
            let mut missed = 0u32;
            for &s in &kept {
                match t.observe("t", s) {
                    Verdict::Gap { missed: m, .. } => missed += m,
                    Verdict::Reset { .. } => prop_assert!(false, "reset in a monotonic stream"),
                    _ => {}
                }
            }
            let span = kept.last().unwrap() - kept.first().unwrap() + 1;
            prop_assert_eq!(missed, span - kept.len() as u32);
        }
    }
}
