//! One network as its nodes' RPC views tell it: each node's height against the best (lagging,
//! with hysteresis), each node's UTXO-set total against the subsidy schedule (inflation), and
//! the stale blocks its nodes' getchaintips show. Pure: views in, findings out.

use std::collections::BTreeMap;

use bmon_schemas::{ChainSplit, Inflation, NodeImplementation, NodeLagging, SplitTip};
use serde::{Deserialize, Serialize};

use super::supply::{COIN, Schedule};
use crate::views::{BlockchainInfo, TxOutSetInfo};

/// Settings of the per-network logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkConfig {
    /// A node this many blocks behind the best enters lagging.
    pub lag_enter: i64,
    /// A lagging node this close to the best (or closer) leaves lagging.
    pub lag_exit: i64,
    /// Nodes not heard from for this long do not count for the best height, µs.
    pub alive_us: i64,
    /// Nodes on different tips at the same height for this long are a chain split, µs.
    pub split_after_us: i64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { lag_enter: 3, lag_exit: 1, alive_us: 10 * 60 * 1_000_000, split_after_us: 15 * 60 * 1_000_000 }
    }
}

/// What the network knows of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHeight {
    /// Active tip height.
    pub height: i64,
    /// When the view was received, µs.
    pub at_us: i64,
    /// Lagging (with hysteresis).
    pub lagging: bool,
    /// In initial block download, as the node says.
    pub ibd: bool,
    /// Active tip hash.
    #[serde(default)]
    pub hash: Option<String>,
}

/// Tips that differ at one height, since when, and whether that was reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Split {
    height: i64,
    since_us: i64,
    reported: bool,
}

/// A node's last UTXO-set snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    height: i64,
    total_sat: i64,
}

/// The outcome of one UTXO-set snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupplyCheck {
    /// Within the schedule (growth checked too when `growth_checked`).
    Ok {
        /// Whether there was an earlier snapshot of the same chain to check the growth against.
        growth_checked: bool,
    },
    /// More coins than allowed.
    Inflated(Vec<Inflation>),
    /// Not checked: the snapshot lacks a height or a total.
    Skipped,
}

/// One network's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Per node.
    pub nodes: BTreeMap<String, NodeHeight>,
    snapshots: BTreeMap<String, Snapshot>,
    #[serde(default)]
    split: Option<Split>,
    /// Stale branches: per node, the `valid-fork` tips of its last getchaintips (blocks that
    /// were that node's tip and are not on its active chain), by hash: (height, branch length).
    #[serde(default)]
    stale: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
}

/// The widest window stale blocks are counted over (fork-observer's 2016).
pub const STALE_WINDOW_MAX: i64 = 2016;
/// Stale branches kept per network, at most.
const KEEP_STALE: usize = 10_000;

impl Network {
    /// The best height among the nodes heard from within the alive span before `now_us`, and a
    /// node at it.
    pub fn best(&self, config: &NetworkConfig, now_us: i64) -> Option<(i64, &str)> {
        self.nodes
            .iter()
            .filter(|(_, n)| now_us - n.at_us <= config.alive_us)
            .map(|(id, n)| (n.height, id.as_str()))
            .max_by_key(|(h, id)| (*h, std::cmp::Reverse(*id)))
    }

    /// A node's getblockchaininfo: its height, and the lagging event if it entered or left.
    pub fn blockchain_info(
        &mut self,
        config: &NetworkConfig,
        network: &str,
        node: &str,
        info: &BlockchainInfo,
        at_us: i64,
    ) -> Option<NodeLagging> {
        let height = i64::try_from(info.blocks?).ok()?;
        let ibd = info.initialblockdownload.unwrap_or(false);
        let was = self.nodes.get(node).is_some_and(|n| n.lagging);
        let hash = info.bestblockhash.clone();
        self.nodes.insert(node.to_owned(), NodeHeight { height, at_us, lagging: was, ibd, hash });
        let (best, best_node) = self.best(config, at_us)?;
        let behind = best - height;
        let now = if was { behind > config.lag_exit } else { behind >= config.lag_enter };
        if now == was {
            return None;
        }
        let best_node = best_node.to_owned();
        if let Some(n) = self.nodes.get_mut(node) {
            n.lagging = now;
        }
        Some(NodeLagging {
            node_id: node.to_owned(),
            network: network.to_owned(),
            lagging: now,
            blocks_behind: behind,
            node_height: height,
            best_height: best,
            best_node,
            at_us,
        })
    }

    /// After a getblockchaininfo (at `now_us`): a split event when nodes heard from within the
    /// alive span have differed in their tips at one height for `split_after_us`, and again
    /// (split false) when they no longer do. The highest such height counts.
    pub fn split_check(&mut self, config: &NetworkConfig, network: &str, now_us: i64) -> Option<ChainSplit> {
        let alive = || self.nodes.iter().filter(|(_, n)| now_us - n.at_us <= config.alive_us);
        let mut by_height: BTreeMap<i64, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for (id, n) in alive() {
            if let Some(h) = &n.hash {
                by_height.entry(n.height).or_default().entry(h.as_str()).or_default().push(id.as_str());
            }
        }
        let differing = by_height.iter().rev().find(|(_, tips)| tips.len() >= 2).map(|(h, _)| *h);
        let tips_at = |height: i64| -> Vec<SplitTip> {
            alive()
                .filter(|(_, n)| n.height == height)
                .filter_map(|(id, n)| Some(SplitTip { node_id: id.clone(), hash: n.hash.clone()? }))
                .collect()
        };
        let event = |s: &Split, split: bool, tips: Vec<SplitTip>| ChainSplit {
            network: network.to_owned(),
            split,
            height: s.height,
            tips,
            since_us: s.since_us,
            at_us: now_us,
        };
        match (differing, self.split.clone()) {
            (Some(h), Some(mut s)) if s.height == h => {
                if !s.reported && now_us - s.since_us >= config.split_after_us {
                    s.reported = true;
                    self.split = Some(s.clone());
                    return Some(event(&s, true, tips_at(h)));
                }
                None
            }
            (found, old) => {
                self.split = found.map(|height| Split { height, since_us: now_us, reported: false });
                old.filter(|s| s.reported).map(|s| event(&s, false, tips_at(s.height)))
            }
        }
    }

    /// A node's getchaintips: its `valid-fork` tips join the network's stale branches. Branches
    /// wholly below the widest window under the best height go.
    /// A node's getchaintips: its `valid-fork` tips replace its earlier ones (a branch that is
    /// active again is no longer listed). Branches wholly below the widest window under the
    /// best height are left out; at most `KEEP_STALE` per node, the highest.
    pub fn chain_tips(&mut self, config: &NetworkConfig, node: &str, tips: &[crate::views::ChainTip], at_us: i64) {
        let floor = self.best(config, at_us).map_or(i64::MIN, |(best, _)| best.saturating_sub(STALE_WINDOW_MAX));
        let mut branches: Vec<(String, (i64, i64))> = tips
            .iter()
            .filter(|t| t.status == Some(crate::views::TipStatus::ValidFork))
            .filter_map(|t| {
                let h = i64::try_from(t.height?).ok()?;
                let len = t.branchlen.and_then(|b| i64::try_from(b).ok()).unwrap_or(1).clamp(1, h.max(1));
                Some((t.hash.clone()?, (h, len)))
            })
            .filter(|(_, (h, _))| *h > floor)
            .collect();
        branches.sort_by_key(|(_, (h, _))| std::cmp::Reverse(*h));
        branches.truncate(KEEP_STALE);
        self.stale.insert(node.to_owned(), branches.into_iter().collect());
    }

    /// Stale blocks among the last `window` heights up to `best`: each branch's blocks at
    /// heights above `best - window`, a branch several nodes list once. Two branches that share
    /// blocks (a fork of a fork) count those twice: getchaintips names only a branch's tip.
    pub fn stale_blocks(&self, best: i64, window: i64) -> i64 {
        let floor = best.saturating_sub(window);
        let branches: BTreeMap<&String, &(i64, i64)> = self.stale.values().flatten().collect();
        branches.values().map(|(h, len)| ((*h).min(best) - floor.max(h - len)).max(0)).sum()
    }

    /// A node's gettxoutsetinfo against `implementation`'s schedule for `network`: the total may
    /// not exceed the supply at its height, nor grow by more than the subsidies since the node's
    /// previous snapshot (when that one is lower on the chain).
    pub fn txoutset(
        &mut self,
        implementation: NodeImplementation,
        network: &str,
        node: &str,
        info: &TxOutSetInfo,
        at_us: i64,
    ) -> SupplyCheck {
        let (Some(height), Some(total)) = (info.height.and_then(|h| i64::try_from(h).ok()), info.total_amount) else {
            return SupplyCheck::Skipped;
        };
        let total_sat = (total * COIN as f64).round() as i64;
        let schedule = Schedule::of(implementation, network);
        let event = |check: &str, from_height, allowed_sat: i64| Inflation {
            node_id: node.to_owned(),
            network: network.to_owned(),
            check: check.to_owned(),
            from_height,
            to_height: height,
            total_sat,
            allowed_sat,
            excess_sat: total_sat - allowed_sat,
            at_us,
        };
        let mut found = Vec::new();
        let supply = schedule.supply(height);
        if total_sat > supply {
            found.push(event("supply", None, supply));
        }
        let previous = self.snapshots.insert(node.to_owned(), Snapshot { height, total_sat });
        let mut growth_checked = false;
        if let Some(p) = previous.filter(|p| p.height < height) {
            growth_checked = true;
            let allowed = p.total_sat.saturating_add(schedule.subsidies(p.height + 1, height));
            if total_sat > allowed {
                found.push(event("growth", Some(p.height), allowed));
            }
        }
        if found.is_empty() { SupplyCheck::Ok { growth_checked } } else { SupplyCheck::Inflated(found) }
    }

    /// Forgets nodes not heard from since `before_us`; returns them.
    pub fn forget_before(&mut self, before_us: i64) -> Vec<String> {
        let gone: Vec<String> =
            self.nodes.iter().filter(|(_, n)| n.at_us < before_us).map(|(k, _)| k.clone()).collect();
        for g in &gone {
            self.nodes.remove(g);
            self.snapshots.remove(g);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(blocks: u64) -> BlockchainInfo {
        BlockchainInfo::parse(&format!(r#"{{"blocks": {blocks}, "initialblockdownload": false}}"#)).unwrap_or_default()
    }

    #[test]
    fn lagging_enters_at_three_behind_and_leaves_at_one() {
        let c = NetworkConfig::default();
        let mut n = Network::default();
        assert!(n.blockchain_info(&c, "regtest", "a", &info(110), 1).is_none());
        assert!(n.blockchain_info(&c, "regtest", "b", &info(108), 2).is_none(), "2 behind: not yet");
        let e = n.blockchain_info(&c, "regtest", "b", &info(107), 3).unwrap();
        assert!(e.lagging && e.blocks_behind == 3 && e.best_node == "a");
        assert!(n.blockchain_info(&c, "regtest", "b", &info(108), 4).is_none(), "2 behind: still lagging");
        let e = n.blockchain_info(&c, "regtest", "b", &info(109), 5).unwrap();
        assert!(!e.lagging && e.blocks_behind == 1);
    }

    #[test]
    fn a_silent_node_does_not_set_the_best() {
        let c = NetworkConfig { alive_us: 100, ..NetworkConfig::default() };
        let mut n = Network::default();
        n.blockchain_info(&c, "regtest", "gone", &info(500), 0);
        assert!(n.blockchain_info(&c, "regtest", "b", &info(100), 1_000).is_none());
        assert_eq!(n.best(&c, 1_000), Some((100, "b")));
    }

    #[test]
    fn stale_blocks_are_counted_per_window_once_per_branch() {
        let c = NetworkConfig::default();
        let mut n = Network::default();
        n.blockchain_info(&c, "regtest", "a", &info(3000), 1);
        let tips = |json: &str| crate::views::chain_tips(json).unwrap();
        // Two nodes show the same 1-block fork; one also a 3-block branch, and one an old one.
        let a = r#"[{"height": 3000, "hash": "t", "branchlen": 0, "status": "active"},
                    {"height": 2990, "hash": "f1", "branchlen": 1, "status": "valid-fork"},
                    {"height": 1500, "hash": "f3", "branchlen": 3, "status": "valid-fork"},
                    {"height": 2999, "hash": "h", "branchlen": 1, "status": "valid-headers"}]"#;
        let b = r#"[{"height": 2990, "hash": "f1", "branchlen": 1, "status": "valid-fork"},
                    {"height": 900, "hash": "old", "branchlen": 1, "status": "valid-fork"}]"#;
        n.chain_tips(&c, "a", &tips(a), 2);
        n.chain_tips(&c, "b", &tips(b), 3);
        assert_eq!(n.stale_blocks(3000, 1008), 1, "f1 once; f3 is below 3000 - 1008");
        assert_eq!(n.stale_blocks(3000, 2016), 4, "f1 and f3's three blocks; headers are no tip");
        assert_eq!(n.stale_blocks(3000, 1501), 2, "f1, and the top of f3 (1500; 1498 and 1499 are not inside)");
        assert!(n.stale.values().all(|b| !b.contains_key("old")), "below the widest window: left out");
        // Node a back on f1's branch (a reorg back): f1 is listed by b only, still stale; once b
        // lists it no more either, it is not.
        let a2 = r#"[{"height": 3001, "hash": "t", "branchlen": 0, "status": "active"},
                     {"height": 1500, "hash": "f3", "branchlen": 3, "status": "valid-fork"}]"#;
        n.chain_tips(&c, "a", &tips(a2), 4);
        assert_eq!(n.stale_blocks(3000, 2016), 4);
        n.chain_tips(&c, "b", &tips("[]"), 5);
        assert_eq!(n.stale_blocks(3000, 2016), 3, "only f3's three blocks");
    }

    fn tip_info(blocks: u64, hash: &str) -> BlockchainInfo {
        BlockchainInfo::parse(&format!(r#"{{"blocks": {blocks}, "bestblockhash": "{hash}"}}"#)).unwrap_or_default()
    }

    #[test]
    fn different_tips_at_one_height_past_the_span_are_a_split_until_they_agree() {
        let c = NetworkConfig { split_after_us: 10, ..NetworkConfig::default() };
        let mut n = Network::default();
        let mut view = |node: &str, blocks: u64, hash: &str, at: i64| {
            n.blockchain_info(&c, "regtest", node, &tip_info(blocks, hash), at);
            n.split_check(&c, "regtest", at)
        };
        assert!(view("a", 105, "aa", 0).is_none());
        assert!(view("b", 105, "bb", 1).is_none(), "different, but not for long yet");
        assert!(view("c", 104, "cc", 5).is_none(), "a node behind is no split");
        let s = view("a", 105, "aa", 12).unwrap();
        assert!(s.split && s.height == 105 && s.since_us == 1 && s.tips.len() == 2, "{s:?}");
        assert!(view("b", 105, "bb", 13).is_none(), "reported once");
        let over = view("b", 106, "dd", 20).unwrap();
        assert!(!over.split && over.height == 105, "{over:?}");
        assert!(view("a", 106, "dd", 21).is_none());
    }

    fn utxo(height: u64, total: f64) -> TxOutSetInfo {
        TxOutSetInfo::parse(&format!(r#"{{"height": {height}, "total_amount": {total}}}"#)).unwrap_or_default()
    }

    #[test]
    fn inflation_by_growth_and_by_supply_and_none_over_a_halving() {
        let mut n = Network::default();
        let core = NodeImplementation::Core;
        // Regtest: the UTXO set at 101 holds 101 × 50 (genesis is unspendable, so at most that).
        assert_eq!(n.txoutset(core, "regtest", "a", &utxo(101, 5050.0), 0), SupplyCheck::Ok { growth_checked: false });
        // 150 is the first block at 25: 101 → 160 allows 48 × 50 + 11 × 25.
        let ok = 5050.0 + 48.0 * 50.0 + 11.0 * 25.0;
        assert_eq!(n.txoutset(core, "regtest", "a", &utxo(160, ok), 1), SupplyCheck::Ok { growth_checked: true });
        let SupplyCheck::Inflated(found) = n.txoutset(core, "regtest", "a", &utxo(161, ok + 25.0 + 0.00000001), 2)
        else {
            panic!("one satoshi too many is inflation")
        };
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].check.as_str(), found[0].excess_sat, found[0].from_height), ("growth", 1, Some(160)));
        let SupplyCheck::Inflated(found) = n.txoutset(core, "regtest", "b", &utxo(10, 600.0), 3) else {
            panic!("above the supply")
        };
        assert_eq!((found[0].check.as_str(), found[0].excess_sat), ("supply", 50 * COIN));
        assert_eq!(n.txoutset(core, "regtest", "c", &TxOutSetInfo::default(), 4), SupplyCheck::Skipped);
    }
}
