//! One source's walk along a node's active chain: its tip, the recent heights, and a reorg under
//! way. Pure.
//!
//! The log (`UpdateTip`) and ZMQ (`sequence` C and D) each have their own walk, because each is
//! in order only with itself: logparse reads the two from different topics, so a node's log
//! lines and its ZMQ notifications interleave arbitrarily. A walk that lags behind the other
//! replays a reorg the other has already seen; the node's logic ([`super::node`]) reports
//! whichever completes first, once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The active tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: i64,
    /// The block's timestamp, µs, when logged.
    pub block_time_us: Option<i64>,
    /// When the node moved to it (its log time), µs.
    pub changed_at_us: i64,
}

/// A reorg under way: the walk left its old tip and has not yet come back to its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub old_tip: String,
    pub old_height: i64,
    pub fork_height: i64,
    /// The new branch so far, from the fork up.
    pub connected: Vec<(i64, String)>,
    /// The old branch's blocks, as the walk down passes them.
    pub old_branch: BTreeMap<i64, String>,
}

impl Pending {
    /// A reorg starting from `tip`, forked at `fork_height` so far.
    fn from(tip: &Tip, fork_height: i64) -> Pending {
        Pending {
            old_tip: tip.hash.clone(),
            old_height: tip.height,
            fork_height,
            connected: Vec::new(),
            old_branch: BTreeMap::new(),
        }
    }
}

/// What moving the tip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Moved {
    /// It was the tip already.
    Same,
    /// The tip moved; with the reorg it completed, if it did.
    To(Option<Pending>),
}

/// One source's view of the active chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Walk {
    pub tip: Option<Tip>,
    /// The active chain's recent heights.
    pub recent: BTreeMap<i64, String>,
    pub pending: Option<Pending>,
}

impl Walk {
    /// The height of `hash` on this walk's recent chain.
    pub fn height_of(&self, hash: &str) -> Option<i64> {
        self.recent.iter().rev().find(|(_, x)| x.as_str() == hash).map(|(h, _)| *h)
    }

    /// The chain of `other` up to `height`, with no reorg under way: where a walk starts, or
    /// starts again when the other source proves it out of step.
    pub fn seed(&mut self, other: &Walk, height: i64) {
        self.recent = other.recent.range(..=height).map(|(h, x)| (*h, x.clone())).collect();
        self.pending = None;
        self.tip = self.recent.get(&height).map(|hash| {
            let same = other.tip.as_ref().filter(|t| t.height == height);
            Tip {
                hash: hash.clone(),
                height,
                block_time_us: same.and_then(|t| t.block_time_us),
                changed_at_us: same.map_or(0, |t| t.changed_at_us),
            }
        });
    }

    /// Moves the tip to `hash` at `height` (an `UpdateTip`, or a ZMQ connect). A tip at or below
    /// the current height starts a reorg (or walks one down); the reorg is returned when the new
    /// branch passes the old height (a node only moves to more work).
    pub fn move_to(&mut self, keep: usize, hash: &str, height: i64, block_time_us: Option<i64>, at: i64) -> Moved {
        if self.tip.as_ref().is_some_and(|t| t.hash == hash) {
            return Moved::Same;
        }
        // A jump no reorg explains (a wiped data directory, a reindex, another node behind the
        // same id, a bogus height): start again from here rather than open a reorg that never
        // ends.
        let floor = self.recent.first_key_value().map(|(h, _)| *h);
        let keep_i = i64::try_from(keep).unwrap_or(i64::MAX);
        if let Some(tip) = &self.tip
            && (floor.is_some_and(|f| height < f) || tip.height.saturating_sub(height) > keep_i)
        {
            self.recent.clear();
            self.pending = None;
            self.tip = None;
        }
        let known_here = self.recent.get(&height).is_some_and(|h| h == hash);
        match (&self.tip, &mut self.pending) {
            (Some(tip), None) if height <= tip.height => {
                // Down to an ancestor (a disconnection), or straight onto another branch.
                let mut p = Pending::from(tip, if known_here { height } else { height - 1 });
                if !known_here {
                    p.connected.push((height, hash.to_owned()));
                }
                self.pending = Some(p);
            }
            (_, Some(p)) => {
                let on_new_branch = p.connected.iter().any(|(h, x)| *h == height && x == hash);
                if known_here && !on_new_branch {
                    // Back down to a block of the old chain: at or below the fork, it is the
                    // fork so far, and the branch tried above it is abandoned.
                    if height <= p.fork_height {
                        p.fork_height = height;
                        p.connected.clear();
                    } else {
                        p.connected.retain(|(h, _)| *h < height);
                    }
                } else {
                    p.connected.retain(|(h, _)| *h < height);
                    p.connected.push((height, hash.to_owned()));
                    p.fork_height = p.fork_height.min(height - 1);
                }
                if p.connected.len() > keep {
                    // A branch longer than the heights kept is no reorg this walk can follow.
                    self.pending = None;
                }
            }
            _ => {}
        }
        // The heights this tip replaces: during a reorg, the old branch's blocks among them.
        if let Some(p) = self.pending.as_mut() {
            for (h, x) in self.recent.range(height..) {
                if *h > p.fork_height && !p.connected.iter().any(|(ch, cx)| ch == h && cx == x) {
                    p.old_branch.entry(*h).or_insert_with(|| x.clone());
                }
            }
        }
        self.recent.retain(|h, _| *h < height);
        self.recent.insert(height, hash.to_owned());
        while self.recent.len() > keep {
            self.recent.pop_first();
        }
        self.tip = Some(Tip { hash: hash.to_owned(), height, block_time_us, changed_at_us: at });
        if self.pending.as_ref().is_some_and(|p| p.old_tip == hash) {
            // Back on the old tip (`invalidateblock` then `reconsiderblock`, say): no reorg.
            self.pending = None;
        }
        let passed = self.pending.as_ref().is_some_and(|p| height > p.old_height && !p.connected.is_empty());
        Moved::To(if passed { self.pending.take() } else { None })
    }

    /// The log's `BlockDisconnected` of a block on this chain: a reorg starts (the tip moves
    /// with the `UpdateTip` that follows), or its fork is lower than thought.
    pub fn disconnected(&mut self, hash: &str, height: Option<i64>) {
        if !self.recent.values().any(|x| x == hash) {
            return; // logged late, after the new branch replaced it
        }
        match (&self.tip, self.pending.as_mut()) {
            (Some(tip), None) => {
                // The tip goes; its parent (or the logged height's parent) is the fork so far.
                let fork = height.map_or(tip.height - 1, |h| h - 1).min(tip.height - 1);
                self.pending = Some(Pending::from(tip, fork));
            }
            (_, Some(p)) => {
                if let Some(h) = height {
                    p.fork_height = p.fork_height.min(h - 1);
                }
            }
            (None, None) => {}
        }
    }

    /// ZMQ's `D` for `hash`: if it is the tip, the tip moves to its parent. False if the walk
    /// cannot follow (not its tip, or the parent is older than the heights kept).
    pub fn pop(&mut self, keep: usize, hash: &str, at: i64) -> bool {
        let Some(tip) = self.tip.as_ref().filter(|t| t.hash == hash) else { return false };
        let height = tip.height - 1;
        let Some(parent) = self.recent.get(&height).cloned() else { return false };
        self.move_to(keep, &parent, height, None, at);
        true
    }

    /// The next height a ZMQ connect goes to: one above the tip.
    pub fn next_height(&self) -> Option<i64> {
        self.tip.as_ref().map(|t| t.height + 1)
    }

    /// The reorg under way, if its new branch is back at the old height (with more work, or the
    /// node would not have moved): complete when the node goes quiet.
    pub fn done_at_height(&mut self) -> Option<Pending> {
        let done = self.pending.as_ref().is_some_and(|p| p.connected.last().is_some_and(|(h, _)| *h >= p.old_height));
        if done { self.pending.take() } else { None }
    }
}
