//! Per-partition bookkeeping of the consumer loop: restore phase, whether the partition has
//! caught up with its end, and when it last delivered a record. Pure: the loop feeds it events.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where an assigned partition's state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Assigned; state not yet restored (waiting for the first record or the end).
    Pending,
    /// Replaying records below this offset to rebuild state; their outputs are discarded.
    Replaying(i64),
    /// State restored: records are processed and their outputs published.
    Live,
}

#[derive(Debug, Clone, Copy)]
struct Partition {
    phase: Phase,
    /// Consumed up to the partition's end (librdkafka reported EOF since the last record).
    caught_up: bool,
    last_record: Option<Instant>,
    /// Pending, at its end, but the look-up of its end position failed: retried on each tick.
    end_unresolved: bool,
}

/// The assigned partitions, by (topic, partition).
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    map: BTreeMap<(String, i32), Partition>,
}

impl Partitions {
    pub(crate) fn assign(&mut self, topic: &str, partition: i32) {
        let p = Partition { phase: Phase::Pending, caught_up: false, last_record: None, end_unresolved: false };
        self.map.insert((topic.to_owned(), partition), p);
    }

    pub(crate) fn revoke(&mut self, topic: &str, partition: i32) {
        self.map.remove(&(topic.to_owned(), partition));
    }

    pub(crate) fn phase(&self, topic: &str, partition: i32) -> Option<Phase> {
        self.map.get(&(topic.to_owned(), partition)).map(|p| p.phase)
    }

    pub(crate) fn set_phase(&mut self, topic: &str, partition: i32, phase: Phase) {
        if let Some(p) = self.map.get_mut(&(topic.to_owned(), partition)) {
            p.phase = phase;
        }
    }

    /// A record at `offset` arrived; returns whether it is replayed (outputs discarded).
    pub(crate) fn record(&mut self, topic: &str, partition: i32, offset: i64, now: Instant) -> bool {
        let Some(p) = self.map.get_mut(&(topic.to_owned(), partition)) else { return false };
        p.caught_up = false;
        p.end_unresolved = false;
        p.last_record = Some(now);
        match p.phase {
            Phase::Replaying(until) if offset < until => true,
            Phase::Replaying(_) => {
                p.phase = Phase::Live;
                false
            }
            _ => false,
        }
    }

    /// The partition reached its end.
    pub(crate) fn at_end(&mut self, topic: &str, partition: i32) {
        if let Some(p) = self.map.get_mut(&(topic.to_owned(), partition)) {
            p.caught_up = true;
        }
    }

    /// Notes whether a pending partition's end position is still to be looked up.
    pub(crate) fn set_end_unresolved(&mut self, topic: &str, partition: i32, unresolved: bool) {
        if let Some(p) = self.map.get_mut(&(topic.to_owned(), partition)) {
            p.end_unresolved = unresolved;
        }
    }

    /// Pending partitions whose end position is still to be looked up.
    pub(crate) fn end_unresolved(&self) -> Vec<(String, i32)> {
        self.map.iter().filter(|(_, p)| p.end_unresolved && p.phase == Phase::Pending).map(|(k, _)| k.clone()).collect()
    }

    /// True if the partition delivered no record since it was assigned.
    pub(crate) fn never_delivered(&self, topic: &str, partition: i32) -> bool {
        self.map.get(&(topic.to_owned(), partition)).is_some_and(|p| p.last_record.is_none())
    }

    /// Partitions the wall clock may move: live, caught up, and quiet for `quiet`.
    pub(crate) fn idle(&self, now: Instant, quiet: Duration) -> Vec<(&str, i32)> {
        self.map
            .iter()
            .filter(|(_, p)| {
                p.phase == Phase::Live
                    && p.caught_up
                    && p.last_record.is_none_or(|t| now.saturating_duration_since(t) >= quiet)
            })
            .map(|((t, n), _)| (t.as_str(), *n))
            .collect()
    }

    /// Partitions whose state is not restored yet.
    pub(crate) fn restoring(&self) -> usize {
        self.map.values().filter(|p| p.phase != Phase::Live).count()
    }

    /// Every assigned partition.
    pub(crate) fn keys(&self) -> Vec<(String, i32)> {
        self.map.keys().cloned().collect()
    }

    /// Assigned partitions of number `partition`, any topic.
    pub(crate) fn with_number(&self, partition: i32) -> Vec<(String, i32)> {
        self.map.keys().filter(|(_, n)| *n == partition).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_caught_up_quiet_partitions_are_idle() {
        let t0 = Instant::now();
        let quiet = Duration::from_secs(1);
        let mut ps = Partitions::default();
        ps.assign("in", 0);
        ps.assign("in", 1);
        ps.assign("in", 2);
        ps.set_phase("in", 0, Phase::Replaying(10));
        ps.set_phase("in", 1, Phase::Live);
        ps.set_phase("in", 2, Phase::Live);
        assert!(ps.record("in", 0, 5, t0), "below the replay end");
        ps.record("in", 1, 5, t0);
        ps.at_end("in", 0);
        ps.at_end("in", 1);
        assert_eq!(ps.idle(t0 + quiet, quiet), vec![("in", 1)], "0 replays, 2 has not caught up");
        ps.record("in", 1, 6, t0 + quiet);
        assert!(ps.idle(t0 + quiet * 2, quiet).is_empty(), "1 took a record since its end");
        assert!(!ps.record("in", 0, 10, t0), "the replay end is live");
        assert_eq!(ps.restoring(), 0);
    }
}
