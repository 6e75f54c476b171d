//! Every node's time to connect one block, compared across its network: the slowest node and
//! its ratio to the median. Pure.
//!
//! The times come from the nodes' own partitions (as [`BlockConnect`] records the chain
//! processor publishes keyed by network and hash and reads back), so one block's times meet
//! here. A block's comparison closes `window_us` after its first time (event time: the newest
//! time seen in the partition, or the wall clock for a live, idle one) and is reported if at
//! least two nodes gave a time. A time for a block already closed is late and left out.

use std::collections::{BTreeMap, HashSet, VecDeque};

use bmon_schemas::{BlockConnect, BlockConnectComparison, NodeConnect};
use serde::{Deserialize, Serialize};

/// Closed blocks remembered, so that a late time opens no second comparison.
const KEEP_CLOSED: usize = 10_000;
/// Blocks open at once, at most (the oldest closes first beyond it).
const MAX_OPEN: usize = 10_000;

/// One block's times so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    height: i64,
    first_at_us: i64,
    /// Each node's time, µs (the first one given; a redelivery repeats it).
    nodes: BTreeMap<String, i64>,
}

/// The open comparisons of one partition. Checkpointed as JSON, so keys are strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connects {
    /// By network, then hash.
    open: BTreeMap<String, BTreeMap<String, Open>>,
    /// Closed blocks (network, hash), oldest first.
    closed: VecDeque<(String, String)>,
    /// The same, to look up.
    #[serde(skip)]
    closed_set: HashSet<(String, String)>,
    /// The newest time seen, µs.
    watermark_us: i64,
}

/// What one time did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Added {
    /// The time came after its block closed.
    pub late: bool,
    /// Comparisons closed by the time's event time.
    pub closed: Vec<BlockConnectComparison>,
}

impl Connects {
    /// Adds one node's time for a block; closes what the time's event time makes due.
    pub fn add(&mut self, c: &BlockConnect, window_us: i64) -> Added {
        if self.closed_set.len() != self.closed.len() {
            self.closed_set = self.closed.iter().cloned().collect(); // after a restore
        }
        let late = self.closed_set.contains(&(c.network.clone(), c.hash.clone()));
        if !late {
            let open = self.open.entry(c.network.clone()).or_default().entry(c.hash.clone()).or_insert_with(|| Open {
                height: c.height,
                first_at_us: c.at_us,
                nodes: BTreeMap::new(),
            });
            open.first_at_us = open.first_at_us.min(c.at_us);
            open.nodes.entry(c.node_id.clone()).or_insert(c.connect_us);
        }
        self.watermark_us = self.watermark_us.max(c.at_us);
        let mut closed = self.close_due(self.watermark_us, window_us);
        while self.open_blocks() > MAX_OPEN {
            let oldest = self.iter().min_by_key(|(_, o)| o.first_at_us).map(|(k, _)| k);
            closed.extend(oldest.and_then(|k| self.close(k, self.watermark_us)));
        }
        Added { late, closed }
    }

    /// Every open block, by (network, hash).
    fn iter(&self) -> impl Iterator<Item = ((String, String), &Open)> {
        self.open.iter().flat_map(|(net, blocks)| blocks.iter().map(move |(h, o)| ((net.clone(), h.clone()), o)))
    }

    /// Closes every block whose window is over at `now_us`; their comparisons (two nodes or
    /// more), oldest first.
    pub fn close_due(&mut self, now_us: i64, window_us: i64) -> Vec<BlockConnectComparison> {
        let mut due: Vec<((String, String), i64)> = self
            .iter()
            .filter(|(_, o)| now_us - o.first_at_us >= window_us)
            .map(|(k, o)| (k, o.first_at_us + window_us))
            .collect();
        due.sort_by_key(|(k, at)| (*at, k.clone()));
        due.into_iter().filter_map(|(k, at)| self.close(k, at)).collect()
    }

    fn close(&mut self, key: (String, String), at_us: i64) -> Option<BlockConnectComparison> {
        let blocks = self.open.get_mut(&key.0)?;
        let open = blocks.remove(&key.1)?;
        if blocks.is_empty() {
            self.open.remove(&key.0);
        }
        self.closed.push_back(key.clone());
        self.closed_set.insert(key.clone());
        if self.closed.len() > KEEP_CLOSED
            && let Some(old) = self.closed.pop_front()
        {
            self.closed_set.remove(&old);
        }
        compare(key.0, key.1, &open, at_us)
    }

    /// Blocks open now.
    pub fn open_blocks(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }
}

/// The comparison of one block's times, if two nodes or more gave one.
fn compare(network: String, hash: String, open: &Open, closed_at_us: i64) -> Option<BlockConnectComparison> {
    if open.nodes.len() < 2 {
        return None;
    }
    let mut times: Vec<i64> = open.nodes.values().copied().collect();
    times.sort_unstable();
    let mid = times.len() / 2;
    let median_us = if times.len().is_multiple_of(2) { (times[mid - 1] + times[mid]) / 2 } else { times[mid] };
    let ratio = |us: i64| us as f64 / median_us.max(1) as f64;
    let mut nodes: Vec<NodeConnect> = open
        .nodes
        .iter()
        .map(|(node, us)| NodeConnect { node_id: node.clone(), connect_us: *us, ratio: ratio(*us) })
        .collect();
    nodes.sort_by(|a, b| b.connect_us.cmp(&a.connect_us).then_with(|| a.node_id.cmp(&b.node_id)));
    let slowest = nodes.first()?.clone();
    Some(BlockConnectComparison {
        network,
        hash,
        height: open.height,
        median_us,
        slowest_node: slowest.node_id,
        slowest_us: slowest.connect_us,
        ratio: slowest.ratio,
        nodes,
        closed_at_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(node: &str, hash: &str, us: i64, at: i64) -> BlockConnect {
        BlockConnect {
            node_id: node.to_owned(),
            network: "regtest".to_owned(),
            hash: hash.to_owned(),
            height: 7,
            connect_us: us,
            at_us: at,
        }
    }

    #[test]
    fn the_slowest_node_and_its_ratio_to_the_median_when_the_window_closes() {
        let mut c = Connects::default();
        let w = 60_000_000;
        assert!(c.add(&time("a", "b1", 2_000, 0), w).closed.is_empty());
        assert!(c.add(&time("b", "b1", 3_000, 10), w).closed.is_empty());
        assert!(c.add(&time("c", "b1", 9_000, 20), w).closed.is_empty());
        assert!(c.add(&time("c", "b1", 1, 30), w).closed.is_empty(), "a redelivery keeps the first time");
        // Another block's time, a window later, closes the first.
        let added = c.add(&time("a", "b2", 2_000, w + 5), w);
        let [cmp] = added.closed.as_slice() else { panic!("{added:?}") };
        assert_eq!((cmp.slowest_node.as_str(), cmp.slowest_us, cmp.median_us), ("c", 9_000, 3_000));
        assert_eq!(cmp.ratio, 3.0);
        let order: Vec<&str> = cmp.nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(order, ["c", "b", "a"], "slowest first");
        assert_eq!(cmp.closed_at_us, w);
        // A late time for the closed block: left out, and said so; also after a checkpoint
        // (the state as JSON, as the store keeps it).
        assert!(c.add(&time("d", "b1", 5, w + 6), w).late);
        assert_eq!(c.open_blocks(), 1);
        let mut restored: Connects = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert!(restored.add(&time("e", "b1", 5, w + 7), w).late);
        let closed = restored.add(&time("b", "b2", 4_000, 2 * w + 10), w).closed;
        assert_eq!(closed.iter().map(|x| x.hash.as_str()).collect::<Vec<_>>(), ["b2"], "b2 kept its open times");
    }

    #[test]
    fn one_node_alone_is_no_comparison_and_an_even_count_takes_the_middle_mean() {
        let mut c = Connects::default();
        c.add(&time("a", "lone", 2_000, 0), 10);
        c.add(&time("a", "pair", 2_000, 0), 10);
        c.add(&time("b", "pair", 4_000, 1), 10);
        let closed = c.close_due(100, 10);
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!((closed[0].hash.as_str(), closed[0].median_us, closed[0].ratio), ("pair", 3_000, 4.0 / 3.0));
    }
}
