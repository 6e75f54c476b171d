//! Records held back and released in event-time order. Pure.
//!
//! An operator whose result depends on the order its inputs meet (mempool's comparisons read
//! the conflict markers that arrived before a node's list) gets the same order live and in a
//! replay only if it orders them by event time, not arrival: live, one input reaches it over
//! more broker hops than another; a replay feeds both in process. A record is held until the
//! newest event time seen has passed its own by a bound (the most the inputs' paths can lag
//! one another), then released with the others in (event time, node, arrival) order.
//!
//! Ties are broken by node, then by the caller's rank of the record's kind, and only then by
//! arrival (which differs between a live run and a replay). One node's records of one kind keep
//! their arrival order: a record's time is raised to its stream's newest, so a producer whose
//! clock steps back cannot reorder its own deltas.
//!
//! A record arriving after records later than it were released is *late*: it is handed back at
//! once, and the caller counts it. The held records are rows of the caller's state, so a
//! checkpoint holds exactly what was read and not yet released.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where a held record sorts: its event time, its node, its kind's rank, then its arrival.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    /// Event time, µs.
    pub at_us: i64,
    /// The node the record is about.
    pub node: String,
    /// The caller's rank of the record's kind (lower first at equal times).
    pub rank: u8,
    /// Arrival, counted per buffer.
    pub seq: u64,
}

impl OrderKey {
    /// The row key: the time (sign-flipped, big-endian), the arrival, the rank, then the node's
    /// bytes, so byte order is (time, arrival) order; [`OrderKey::from_row`] reads it back.
    pub fn to_row(&self) -> Vec<u8> {
        let time = (self.at_us as u64 ^ (1 << 63)).to_be_bytes();
        [&time[..], &self.seq.to_be_bytes(), &[self.rank], self.node.as_bytes()].concat()
    }

    /// A key written by [`OrderKey::to_row`].
    pub fn from_row(row: &[u8]) -> Option<OrderKey> {
        let word = |i: usize| row.get(i * 8..i * 8 + 8).and_then(|b| <[u8; 8]>::try_from(b).ok());
        let at_us = (u64::from_be_bytes(word(0)?) ^ (1 << 63)) as i64;
        let seq = u64::from_be_bytes(word(1)?);
        let rank = *row.get(16)?;
        let node = std::str::from_utf8(&row[17..]).ok()?.to_owned();
        Some(OrderKey { at_us, node, rank, seq })
    }
}

/// A held record: its bytes as read (the row), and what the caller parsed of them (absent after
/// a restore, until parsed again).
#[derive(Debug, Clone, PartialEq)]
pub struct Held<P> {
    /// The record as read.
    pub raw: Vec<u8>,
    /// The caller's parse of it.
    pub parsed: Option<P>,
}

/// What became of a pushed record.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed<P> {
    /// Held, to be released in order.
    Held,
    /// Late: records after it were released already; the caller takes it now.
    Late(Held<P>),
}

/// One buffer: the records held, and how far event time has gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Reorder<P> {
    /// The newest event time pushed, µs.
    watermark_us: i64,
    /// Records up to this event time were released, µs.
    released_us: i64,
    /// Arrivals counted.
    seq: u64,
    /// Each stream's (node and rank, as `node/rank`) newest time, µs.
    #[serde(default)]
    streams: BTreeMap<String, i64>,
    #[serde(skip)]
    held: BTreeMap<OrderKey, Held<P>>,
    /// Keys whose row changed since the last checkpoint.
    #[serde(skip)]
    dirty: BTreeSet<OrderKey>,
}

impl<P> Default for Reorder<P> {
    fn default() -> Self {
        Reorder {
            watermark_us: i64::MIN,
            released_us: i64::MIN,
            seq: 0,
            streams: BTreeMap::new(),
            held: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl<P: PartialEq> PartialEq for Reorder<P> {
    fn eq(&self, o: &Self) -> bool {
        (self.watermark_us, self.released_us, self.seq) == (o.watermark_us, o.released_us, o.seq)
            && self.streams == o.streams
            && self.held.len() == o.held.len()
            && self.held.iter().zip(&o.held).all(|((a, x), (b, y))| a == b && x.raw == y.raw)
    }
}

impl<P> Reorder<P> {
    /// Takes a record of event time `at_us` about `node`, of a kind the caller ranks `rank`.
    pub fn push(&mut self, at_us: i64, node: &str, rank: u8, raw: Vec<u8>, parsed: P) -> Pushed<P> {
        let held = Held { raw, parsed: Some(parsed) };
        let stream = self.streams.entry(format!("{node}/{rank}")).or_insert(i64::MIN);
        let at_us = at_us.max(*stream);
        *stream = at_us;
        if at_us <= self.released_us {
            return Pushed::Late(held);
        }
        self.watermark_us = self.watermark_us.max(at_us);
        self.seq += 1;
        let key = OrderKey { at_us, node: node.to_owned(), rank, seq: self.seq };
        self.dirty.insert(key.clone());
        self.held.insert(key, held);
        Pushed::Held
    }

    /// Releases, in order, the records the newest event time has passed by `bound_us`.
    pub fn release(&mut self, bound_us: i64) -> Vec<(OrderKey, Held<P>)> {
        self.release_until(self.watermark_us.saturating_sub(bound_us))
    }

    /// Releases, in order, the records up to `until_us`, whatever the newest event time (a
    /// replay's end, or a test).
    pub fn release_until(&mut self, until_us: i64) -> Vec<(OrderKey, Held<P>)> {
        if until_us <= self.released_us {
            return Vec::new();
        }
        self.released_us = until_us;
        let mut out = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.key().at_us > until_us {
                break;
            }
            let (key, held) = entry.remove_entry();
            self.dirty.insert(key.clone());
            out.push((key, held));
        }
        out
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// No record is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The rows changed since the last call: a held record's bytes, or `None` for one released.
    pub fn take_rows(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let raw = self.held.get(&k).map(|h| h.raw.clone());
                (k.to_row(), raw)
            })
            .collect()
    }

    /// Rows whose write failed: taken again at the next checkpoint.
    pub fn row_failed(&mut self, row: &[u8]) {
        if let Some(k) = OrderKey::from_row(row) {
            self.dirty.insert(k);
        }
    }

    /// A row read back at a restore; `false` if its key is not one of ours.
    pub fn put_row(&mut self, row: &[u8], raw: &[u8]) -> bool {
        let Some(key) = OrderKey::from_row(row) else { return false };
        self.held.insert(key, Held { raw: raw.to_vec(), parsed: None });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(r: &mut Reorder<u32>, at: i64, node: &str, v: u32) -> bool {
        matches!(r.push(at, node, 0, v.to_be_bytes().to_vec(), v), Pushed::Held)
    }

    fn values(out: Vec<(OrderKey, Held<u32>)>) -> Vec<u32> {
        out.into_iter().filter_map(|(_, h)| h.parsed).collect()
    }

    #[test]
    fn records_come_out_in_event_time_order_once_the_bound_has_passed() {
        let mut r = Reorder::default();
        assert!(pushed(&mut r, 100, "a", 1));
        assert!(pushed(&mut r, 90, "b", 2));
        assert!(values(r.release(20)).is_empty(), "nothing is 20 older than the newest (100)");
        assert!(pushed(&mut r, 115, "a", 3));
        assert_eq!(values(r.release(20)), vec![2], "up to 95");
        assert!(pushed(&mut r, 130, "c", 4));
        assert_eq!(values(r.release(20)), vec![1], "up to 110");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn any_arrival_order_within_the_bound_gives_the_same_sequence() {
        let records = [(10, "a", 1), (12, "b", 2), (12, "a", 3), (30, "c", 4), (31, "a", 5), (60, "b", 6)];
        let run = |order: &[usize]| {
            let mut r = Reorder::default();
            let mut out = Vec::new();
            for &i in order {
                let (at, node, v) = records[i];
                assert!(pushed(&mut r, at, node, v));
                out.extend(values(r.release(40)));
            }
            out.extend(values(r.release_until(i64::MAX)));
            out
        };
        let in_time = run(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(in_time, vec![1, 3, 2, 4, 5, 6], "equal times sort by node");
        // Each node's own records keep their order (a stream is ordered); the nodes interleave.
        assert_eq!(run(&[3, 1, 0, 2, 4, 5]), in_time);
        assert_eq!(run(&[1, 3, 0, 2, 5, 4]), in_time);
    }

    #[test]
    fn a_record_older_than_what_was_released_is_late_and_handed_back() {
        let mut r = Reorder::default();
        assert!(pushed(&mut r, 100, "a", 1));
        assert_eq!(values(r.release_until(100)), vec![1]);
        match r.push(99, "b", 0, vec![2], 2) {
            Pushed::Late(h) => assert_eq!(h.parsed, Some(2)),
            Pushed::Held => panic!("held a late record"),
        }
        assert!(pushed(&mut r, 101, "b", 3));
    }

    #[test]
    fn rows_hold_what_is_held_and_restore_it() {
        let mut r = Reorder::default();
        assert!(pushed(&mut r, -5, "node-a", 1));
        assert!(pushed(&mut r, 7, "b", 2));
        let rows = r.take_rows();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].0 < rows[1].0, "byte order is time order, negatives first");
        assert!(r.take_rows().is_empty(), "only changes are taken");
        assert_eq!(values(r.release_until(0)), vec![1]);
        let released = r.take_rows();
        assert_eq!(released, vec![(rows[0].0.clone(), None)]);

        let value = serde_json::to_vec(&r).unwrap();
        let mut back: Reorder<u32> = serde_json::from_slice(&value).unwrap();
        assert!(back.put_row(&rows[1].0, rows[1].1.as_deref().unwrap()));
        assert_eq!(back, r);
        let out = back.release_until(i64::MAX);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0.at_us, out[0].0.node.as_str()), (7, "b"));
        assert_eq!((out[0].1.raw.clone(), out[0].1.parsed), (2u32.to_be_bytes().to_vec(), None));
        assert!(!back.put_row(b"short", b""), "a key not ours is refused");
    }

    #[test]
    fn a_failed_row_is_taken_again() {
        let mut r = Reorder::default();
        assert!(pushed(&mut r, 1, "a", 1));
        let rows = r.take_rows();
        r.row_failed(&rows[0].0);
        assert_eq!(r.take_rows(), rows);
    }

    #[test]
    fn equal_times_sort_by_node_then_rank_whatever_the_arrival() {
        let mut r = Reorder::default();
        assert!(matches!(r.push(10, "a", 2, vec![1], 1), Pushed::Held));
        assert!(matches!(r.push(10, "b", 0, vec![2], 2), Pushed::Held));
        assert!(matches!(r.push(10, "a", 0, vec![3], 3), Pushed::Held));
        assert_eq!(values(r.release_until(10)), vec![3, 1, 2]);
    }

    #[test]
    fn a_stream_whose_clock_steps_back_keeps_its_own_order() {
        let mut r = Reorder::default();
        assert!(pushed(&mut r, 100, "a", 1));
        assert!(pushed(&mut r, 90, "a", 2), "raised to 100, not late");
        assert!(pushed(&mut r, 95, "b", 3), "another stream keeps its time");
        assert_eq!(values(r.release_until(100)), vec![3, 1, 2]);
    }
}
