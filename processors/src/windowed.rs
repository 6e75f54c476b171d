//! Short per-object windows keyed by (network, object), closed a fixed span after their first
//! record in event time: how one block's or one transaction's records from every node are
//! gathered before they are compared (chain's connect times, mempool's verdicts). Pure.
//!
//! The clock is the newest record time seen, or the wall clock for a live, idle partition. An
//! object already closed is late: its records are left out, and the caller says so. Keys are
//! strings, so the state checkpoints as JSON.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

/// Closed objects remembered, so that a late record opens no second window.
const KEEP_CLOSED: usize = 10_000;
/// Objects open at once, at most (the oldest closes first beyond it).
const MAX_OPEN: usize = 10_000;

/// One object's window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Open<V> {
    first_at_us: i64,
    value: V,
}

/// A window that closed: its network, object, what it gathered, and when it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed<V> {
    /// The network.
    pub network: String,
    /// The object (a block hash or txid).
    pub key: String,
    /// What the window gathered.
    pub value: V,
    /// The first record's time plus the span, µs.
    pub closed_at_us: i64,
}

/// The open windows of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windowed<V> {
    /// By network, then object.
    open: BTreeMap<String, BTreeMap<String, Open<V>>>,
    /// Closed (network, object), oldest first.
    closed: VecDeque<(String, String)>,
    #[serde(skip)]
    closed_set: HashSet<(String, String)>,
    /// The newest record time seen, µs.
    watermark_us: i64,
}

impl<V: Default> Windowed<V> {
    /// The window of (`network`, `key`) for a record at `at_us`, opened if new; `None` if it
    /// has closed (the record is late).
    pub fn record(&mut self, network: &str, key: &str, at_us: i64) -> Option<&mut V> {
        if self.closed_set.len() != self.closed.len() {
            self.closed_set = self.closed.iter().cloned().collect(); // after a restore
        }
        self.watermark_us = self.watermark_us.max(at_us);
        if self.closed_set.contains(&(network.to_owned(), key.to_owned())) {
            return None;
        }
        let open = self
            .open
            .entry(network.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_insert_with(|| Open { first_at_us: at_us, value: V::default() });
        open.first_at_us = open.first_at_us.min(at_us);
        Some(&mut open.value)
    }

    /// Closes the windows due at the newest record time (and the oldest beyond `MAX_OPEN`).
    pub fn close_by_records(&mut self, span_us: i64) -> Vec<Closed<V>> {
        let mut closed = self.close_due(self.watermark_us, span_us);
        while self.open_count() > MAX_OPEN {
            let oldest = self.iter().min_by_key(|(_, o)| o.first_at_us).map(|(k, _)| k);
            closed.extend(oldest.and_then(|(n, k)| self.close(n, k, self.watermark_us)));
        }
        closed
    }

    /// Closes every window `span_us` old at `now_us`, oldest first.
    pub fn close_due(&mut self, now_us: i64, span_us: i64) -> Vec<Closed<V>> {
        let mut due: Vec<(i64, (String, String))> = self
            .iter()
            .filter(|(_, o)| now_us - o.first_at_us >= span_us)
            .map(|(k, o)| (o.first_at_us + span_us, k))
            .collect();
        due.sort();
        due.into_iter().filter_map(|(at, (n, k))| self.close(n, k, at)).collect()
    }

    /// Windows open now.
    pub fn open_count(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }

    fn iter(&self) -> impl Iterator<Item = ((String, String), &Open<V>)> {
        self.open.iter().flat_map(|(net, objs)| objs.iter().map(move |(k, o)| ((net.clone(), k.clone()), o)))
    }

    fn close(&mut self, network: String, key: String, at_us: i64) -> Option<Closed<V>> {
        let objs = self.open.get_mut(&network)?;
        let open = objs.remove(&key)?;
        if objs.is_empty() {
            self.open.remove(&network);
        }
        let id = (network, key);
        self.closed_set.insert(id.clone());
        self.closed.push_back(id.clone());
        if self.closed.len() > KEEP_CLOSED
            && let Some(old) = self.closed.pop_front()
        {
            self.closed_set.remove(&old);
        }
        Some(Closed { network: id.0, key: id.1, value: open.value, closed_at_us: at_us })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn windows_close_a_span_after_their_first_record_and_late_records_are_refused_after_a_restore() {
        let mut w: Windowed<Vec<i64>> = Windowed::default();
        w.record("regtest", "a", 10).unwrap().push(1);
        w.record("regtest", "a", 15).unwrap().push(2);
        w.record("regtest", "b", 40).unwrap().push(3);
        assert!(w.close_by_records(50).is_empty());
        w.record("regtest", "c", 61).unwrap().push(4);
        let closed = w.close_by_records(50);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].key.as_str(), closed[0].value.clone(), closed[0].closed_at_us), ("a", vec![1, 2], 60));
        let mut restored: Windowed<Vec<i64>> = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert!(restored.record("regtest", "a", 62).is_none(), "late");
        let closed = restored.close_due(1_000, 50);
        assert_eq!(closed.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    }
}
