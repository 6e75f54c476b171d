//! The ZMQ and getchaintips sources of one node's chain (see the parent module): the ZMQ walk's
//! connects and disconnects, and getchaintips results with what they hold back for the grace.

use std::collections::BTreeSet;

use bmon_schemas::{ChainTipEntry, ChainTips};

use super::{Findings, NodeChain, NodeConfig};
use crate::chain::walk::{Moved, Pending, Walk};

impl NodeChain {
    /// ZMQ `C`: a block connected on top of the ZMQ walk's tip.
    pub(super) fn zmq_connected(&mut self, config: &NodeConfig, node: &str, hash: &str, at: i64, f: &mut Findings) {
        if self.zmq.height_of(hash).is_some() {
            return; // already on its chain
        }
        // The log knows the block: the ZMQ walk is out of step (or new); it starts there again.
        if let Some(h) = self.log.height_of(hash)
            && self.zmq.pending.is_none()
        {
            self.zmq.seed(&self.log, h);
            return;
        }
        if self.zmq.tip.is_none() {
            if let Some(t) = &self.log.tip {
                let h = t.height;
                self.zmq.seed(&self.log, h);
            } else if let Some((tip, h)) = self.anchor.clone() {
                // No log: getchaintips gave a height.
                let anchor = Walk { recent: [(h, tip.clone())].into(), ..Walk::default() };
                self.zmq.seed(&anchor, h);
                if tip == hash {
                    return;
                }
            }
        }
        let Some(height) = self.zmq.next_height() else { return }; // no height to put it at yet
        if let Moved::To(Some(p)) = self.zmq.move_to(config.keep_blocks, hash, height, None, at) {
            self.complete(config, node, p, "zmq", at, f);
        }
    }

    /// ZMQ `D`: the ZMQ walk's tip was disconnected.
    pub(super) fn zmq_disconnected(&mut self, config: &NodeConfig, hash: &str, at: i64) {
        if self.zmq.pop(config.keep_blocks, hash, at) {
            return;
        }
        // Out of step (or new, or a `D` was lost): start again from the log's chain, at the block
        // before this one, without opening a reorg the ZMQ walk did not follow itself (the log
        // reports it).
        if let Some(h) = self.log.height_of(hash) {
            self.zmq.seed(&self.log, h - 1);
        }
    }

    /// A getchaintips result: each `valid-fork` tip new since the last result was reorged away.
    /// The first result is only a baseline (its forks are history).
    pub(super) fn chain_tips(&mut self, config: &NodeConfig, node: &str, t: &ChainTips, at: i64, f: &mut Findings) {
        let active = t.tips.iter().find(|x| x.status == "active");
        self.anchor = active.map(|a| (a.hash.clone(), a.height));
        // Only tips near the active one can be news (a long-running node lists old forks by the
        // hundred), and only sane ones: a branch no longer than its height.
        let keep = i64::try_from(config.keep_blocks).unwrap_or(i64::MAX);
        let near = |x: &&ChainTipEntry| {
            x.height >= 0
                && (0..=x.height).contains(&x.branchlen)
                && active.is_none_or(|a| x.height > a.height.saturating_sub(keep))
        };
        let forks: BTreeSet<String> =
            t.tips.iter().filter(near).filter(|x| x.status == "valid-fork").map(|x| x.hash.clone()).collect();
        let invalid = t.tips.iter().filter(near).filter(|x| x.status == "invalid");
        let Some(known) = self.forks.replace(forks) else {
            // The first result: its forks and invalid tips are history.
            for x in invalid {
                self.remember_invalid(&x.hash);
            }
            return;
        };
        for x in invalid {
            if !self.invalid.contains(&x.hash) && !self.held_invalid.iter().any(|(h, ..)| *h == x.hash) {
                self.held_invalid.push((x.hash.clone(), x.height, x.branchlen, at));
            }
        }
        let new_forks = t.tips.iter().filter(near).filter(|x| x.status == "valid-fork" && !known.contains(&x.hash));
        for x in new_forks.filter(|x| x.branchlen >= 1) {
            let p = Pending {
                old_tip: x.hash.clone(),
                old_height: x.height,
                fork_height: x.height - x.branchlen,
                connected: active.map(|a| vec![(a.height, a.hash.clone())]).unwrap_or_default(),
                old_branch: [(x.height, x.hash.clone())].into(),
            };
            self.held.push((p, at));
        }
        self.flush_held(config, node, at, f);
    }

    /// Reports the held getchaintips reorgs whose grace is over at `now_us`, unless a walk has.
    pub(super) fn flush_held(&mut self, config: &NodeConfig, node: &str, now_us: i64, f: &mut Findings) {
        let (due, wait): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(|(_, at)| now_us - at >= config.tips_grace_us);
        self.held = wait;
        for (p, at) in due {
            self.complete(config, node, p, "getchaintips", at, f);
        }
    }

    /// Reports a held getchaintips invalid tip whose grace is over at `now_us`, unless the log
    /// has; one per event, when the event found no other (the next event or tick reports the
    /// next one).
    pub(super) fn flush_held_invalid(&mut self, config: &NodeConfig, node: &str, now_us: i64, f: &mut Findings) {
        // Reported already, or on a branch with a block reported invalid (a descendant of the
        // block an operator invalidated, say, which getchaintips lists as the invalid tip).
        let (invalid, heights) = (&self.invalid, &self.invalid_heights);
        self.held_invalid.retain(|(h, height, len, _)| {
            !invalid.contains(h) && !heights.iter().any(|x| (height - len + 1..=*height).contains(x))
        });
        if f.invalid.is_none()
            && let Some(i) = self.held_invalid.iter().position(|(.., at)| now_us - at >= config.tips_grace_us)
        {
            let (hash, height, _, at) = self.held_invalid.remove(i);
            f.invalid = self.report_invalid(node, Some(hash), Some(height), "", "getchaintips", at);
        }
    }
}
