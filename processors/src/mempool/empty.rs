//! Empty mempools: a node whose mempool has held nothing for `after_us` while another node of
//! its network (heard from within `alive_us`) holds transactions, or always if configured.
//! Reported once on entering, and again on leaving. Pure: getmempoolinfo views in.

use std::collections::BTreeMap;

use bmon_schemas::MempoolEmpty;
use serde::{Deserialize, Serialize};

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptyConfig {
    /// Empty this long is reported, µs.
    pub after_us: i64,
    /// Report even when no other node holds transactions.
    pub always: bool,
    /// Nodes without a view for this long do not count, µs.
    pub alive_us: i64,
}

impl Default for EmptyConfig {
    fn default() -> Self {
        EmptyConfig { after_us: 600_000_000, always: false, alive_us: 600_000_000 }
    }
}

/// What the network knows of one node's mempool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pool {
    size: i64,
    at_us: i64,
    /// Empty since, while empty.
    empty_since: Option<i64>,
    /// An enter event was published for this spell.
    reported: bool,
}

/// One network's mempools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pools {
    nodes: BTreeMap<String, Pool>,
}

impl Pools {
    /// A node's mempool size at `at_us`: the enter or leave event, if any.
    pub fn size(&mut self, c: &EmptyConfig, network: &str, node: &str, size: i64, at_us: i64) -> Option<MempoolEmpty> {
        let others_max_size = self
            .nodes
            .iter()
            .filter(|(id, p)| id.as_str() != node && at_us - p.at_us <= c.alive_us)
            .map(|(_, p)| p.size)
            .max()
            .unwrap_or(0);
        let p = self.nodes.entry(node.to_owned()).or_insert(Pool { size, at_us, empty_since: None, reported: false });
        p.size = size;
        p.at_us = at_us;
        let event = |empty: bool, since_us: i64| MempoolEmpty {
            node_id: node.to_owned(),
            network: network.to_owned(),
            empty,
            since_us,
            others_max_size,
            at_us,
        };
        if size > 0 {
            let was = p.empty_since.take();
            let reported = std::mem::take(&mut p.reported);
            return was.filter(|_| reported).map(|since| event(false, since));
        }
        let since = *p.empty_since.get_or_insert(at_us);
        if !p.reported && at_us - since >= c.after_us && (c.always || others_max_size > 0) {
            p.reported = true;
            return Some(event(true, since));
        }
        None
    }

    /// Whether `node`'s mempool is empty now (and for how long it has been, µs).
    pub fn empty_for(&self, node: &str, now_us: i64) -> Option<i64> {
        self.nodes.get(node).and_then(|p| p.empty_since).map(|s| now_us - s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn empty_while_others_hold_transactions_past_the_span_then_over() {
        let c = EmptyConfig { after_us: 60 * S, always: false, alive_us: 600 * S };
        let mut p = Pools::default();
        assert!(p.size(&c, "regtest", "a", 40, 0).is_none());
        assert!(p.size(&c, "regtest", "b", 0, S).is_none(), "empty, not for long yet");
        assert!(p.size(&c, "regtest", "b", 0, 30 * S).is_none());
        let e = p.size(&c, "regtest", "b", 0, 61 * S).unwrap();
        assert!(e.empty && e.since_us == S && e.others_max_size == 40, "{e:?}");
        assert!(p.size(&c, "regtest", "b", 0, 90 * S).is_none(), "once");
        let e = p.size(&c, "regtest", "b", 3, 120 * S).unwrap();
        assert!(!e.empty && e.since_us == S);
        assert!(p.size(&c, "regtest", "b", 5, 130 * S).is_none());
    }

    #[test]
    fn everyone_empty_is_no_event_unless_always() {
        let quiet = EmptyConfig { after_us: 10 * S, always: false, alive_us: 600 * S };
        let mut p = Pools::default();
        p.size(&quiet, "regtest", "a", 0, 0);
        assert!(p.size(&quiet, "regtest", "b", 0, 0).is_none());
        assert!(p.size(&quiet, "regtest", "b", 0, 20 * S).is_none(), "an idle network is no alarm");
        let always = EmptyConfig { always: true, ..quiet };
        assert!(p.size(&always, "regtest", "b", 0, 21 * S).is_some_and(|e| e.empty));
        // A node not heard from for longer than alive_us does not count as holding anything.
        let mut q = Pools::default();
        q.size(&quiet, "regtest", "gone", 99, 0);
        q.size(&quiet, "regtest", "b", 0, 700 * S);
        assert!(q.size(&quiet, "regtest", "b", 0, 720 * S).is_none());
    }
}
