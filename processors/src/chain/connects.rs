//! Every node's time to connect one block, compared across its network: the slowest node and
//! its ratio to the median. Pure.
//!
//! The times come from the nodes' own partitions (as [`BlockConnect`] records the chain
//! processor publishes keyed by network and hash and reads back), so one block's times meet
//! here. A block's comparison closes `window_us` after its first time (event time: the newest
//! time seen in the partition, or the wall clock for a live, idle one) and is reported if at
//! least two nodes gave a time. A time for a block already closed is late and left out.

use std::collections::BTreeMap;

use bmon_schemas::{BlockConnect, BlockConnectComparison, NodeConnect};
use serde::{Deserialize, Serialize};

use crate::windowed::{Closed, Windowed};

/// One block's times so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Times {
    height: i64,
    /// Each node's time, µs (the first one given; a redelivery repeats it).
    nodes: BTreeMap<String, i64>,
}

/// The open comparisons of one partition.
pub type Connects = Windowed<Times>;

/// What one time did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Added {
    /// The time came after its block closed.
    pub late: bool,
    /// Comparisons closed by the time's event time.
    pub closed: Vec<BlockConnectComparison>,
}

/// Adds one node's time for a block; closes what the time's event time makes due.
pub fn add(c: &mut Connects, t: &BlockConnect, window_us: i64) -> Added {
    let late = match c.record(&t.network, &t.hash, t.at_us) {
        Some(times) => {
            times.height = t.height;
            times.nodes.entry(t.node_id.clone()).or_insert(t.connect_us);
            false
        }
        None => true,
    };
    Added { late, closed: compared(c.close_by_records(window_us)) }
}

/// The comparisons of closed blocks (two nodes or more).
pub fn compared(closed: Vec<Closed<Times>>) -> Vec<BlockConnectComparison> {
    closed.into_iter().filter_map(|c| compare(c.network, c.key, &c.value, c.closed_at_us)).collect()
}

/// The comparison of one block's times, if two nodes or more gave one.
fn compare(network: String, hash: String, open: &Times, closed_at_us: i64) -> Option<BlockConnectComparison> {
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
        assert!(add(&mut c, &time("a", "b1", 2_000, 0), w).closed.is_empty());
        assert!(add(&mut c, &time("b", "b1", 3_000, 10), w).closed.is_empty());
        assert!(add(&mut c, &time("c", "b1", 9_000, 20), w).closed.is_empty());
        assert!(add(&mut c, &time("c", "b1", 1, 30), w).closed.is_empty(), "a redelivery keeps the first time");
        // Another block's time, a window later, closes the first.
        let added = add(&mut c, &time("a", "b2", 2_000, w + 5), w);
        let [cmp] = added.closed.as_slice() else { panic!("{added:?}") };
        assert_eq!((cmp.slowest_node.as_str(), cmp.slowest_us, cmp.median_us), ("c", 9_000, 3_000));
        assert_eq!(cmp.ratio, 3.0);
        let order: Vec<&str> = cmp.nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(order, ["c", "b", "a"], "slowest first");
        assert_eq!(cmp.closed_at_us, w);
        // A late time for the closed block: left out, and said so; also after a checkpoint
        // (the state as JSON, as the store keeps it).
        assert!(add(&mut c, &time("d", "b1", 5, w + 6), w).late);
        assert_eq!(c.open_count(), 1);
        let mut restored: Connects = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert!(add(&mut restored, &time("e", "b1", 5, w + 7), w).late);
        let closed = add(&mut restored, &time("b", "b2", 4_000, 2 * w + 10), w).closed;
        assert_eq!(closed.iter().map(|x| x.hash.as_str()).collect::<Vec<_>>(), ["b2"], "b2 kept its open times");
    }

    #[test]
    fn one_node_alone_is_no_comparison_and_an_even_count_takes_the_middle_mean() {
        let mut c = Connects::default();
        add(&mut c, &time("a", "lone", 2_000, 0), 10);
        add(&mut c, &time("a", "pair", 2_000, 0), 10);
        add(&mut c, &time("b", "pair", 4_000, 1), 10);
        let closed = compared(c.close_due(100, 10));
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!((closed[0].hash.as_str(), closed[0].median_us, closed[0].ratio), ("pair", 3_000, 4.0 / 3.0));
    }
}
