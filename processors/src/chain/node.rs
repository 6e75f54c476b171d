//! One node's chain as its own log tells it: active tip, reorgs (with the selfish-mining
//! heuristic), stale tips, invalid blocks, header-to-tip latency and block connect times. Pure:
//! events in, findings out, no I/O.
//!
//! A reorg in the log: Core and Litecoin log `UpdateTip` for every disconnection too (the new
//! best is the parent), and with `-debug=validation` a `BlockDisconnected` line; BSV logs
//! `Performing best chain tip … rollback` and, with `-debug=bench`, `- Disconnect block`. So a
//! tip at or below the current height, or a disconnection, starts a reorg; the UpdateTips that
//! follow walk down to the fork and up the new branch; the reorg is reported once, when the new
//! branch passes the old height (or, back at the old height with more work, when the node goes
//! quiet: a busy node's next block passes it anyway; any other line may be logged in the middle
//! of the switch). Every source of the same reorg lands in
//! the one pending record, so nothing is counted twice.

use std::collections::{BTreeMap, VecDeque};

use bmon_schemas::{
    BlockReceived, ChainInvalidBlock, ChainReorg, CompactBlockReconstructed, EventBody, HeaderSeen, NodeEvent,
    SelfishMiningSuspect, StaleTip,
};
use serde::{Deserialize, Serialize};

/// Settings of the per-node logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// Heights of the active chain kept, for the disconnected side of a reorg.
    pub keep_blocks: usize,
    /// A reorg whose winning branch (≥ 2 blocks) all arrived within this span is suspect, µs.
    pub selfish_span_us: i64,
    /// A tip older than this by block time is stale, µs.
    pub stale_after_us: i64,
    /// A tip older than this when it arrives means the node is in initial block download (Core's
    /// `-maxtipage`, 24 h): no stale tip is reported for it, µs.
    pub ibd_tip_age_us: i64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            keep_blocks: 200,
            selfish_span_us: 30_000_000,
            stale_after_us: 90 * 60 * 1_000_000,
            ibd_tip_age_us: 24 * 3600 * 1_000_000,
        }
    }
}

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

/// A reorg under way: the node left its old tip and has not yet come back to its height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    old_tip: String,
    old_height: i64,
    fork_height: i64,
    /// The new branch so far, from the fork up.
    connected: Vec<(i64, String)>,
    /// The old branch's blocks, as the walk down passes them.
    old_branch: BTreeMap<i64, String>,
}

/// An `InvalidChainFound` waiting for the validation failure that gives its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingInvalid {
    hash: String,
    height: Option<i64>,
    at_us: i64,
}

/// What one event told about the node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// A completed reorg.
    pub reorg: Option<ChainReorg>,
    /// The reorg looked like a withheld branch.
    pub selfish: Option<SelfishMiningSuspect>,
    /// The new tip is already stale.
    pub stale: Option<StaleTip>,
    /// A block found invalid (first report per hash).
    pub invalid: Option<ChainInvalidBlock>,
    /// The tip moved.
    pub tip_changed: bool,
    /// First sighting (header or block) to tip, µs, for the new tip.
    pub header_to_tip_us: Option<i64>,
    /// `- Connect block` time, µs.
    pub connect_us: Option<i64>,
    /// The node (re)started.
    pub started: bool,
}

/// One node's chain state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeChain {
    /// The node's network.
    pub network: String,
    /// The active tip.
    pub tip: Option<Tip>,
    /// The active chain's recent heights.
    recent: BTreeMap<i64, String>,
    /// First sighting per block hash (header, block or compact block; log time), newest last,
    /// bounded.
    headers: VecDeque<(String, i64)>,
    pending: Option<Pending>,
    pending_invalid: Option<PendingInvalid>,
    /// Hashes already reported invalid, newest last, bounded.
    invalid: VecDeque<String>,
    /// The tip a stale event was raised for.
    stale_reported: Option<String>,
    /// The last tip was older than `ibd_tip_age_us` when it arrived: catching up.
    #[serde(default)]
    catching_up: bool,
    /// The newest event time seen, µs.
    pub last_event_us: i64,
}

/// Header sightings and invalid hashes kept per node.
const KEEP_SEEN: usize = 1000;

impl NodeChain {
    /// A node of `network` seen for the first time.
    pub fn new(network: &str) -> NodeChain {
        NodeChain { network: network.to_owned(), ..NodeChain::default() }
    }

    /// Applies one of the node's events (in the node's order).
    pub fn apply(&mut self, config: &NodeConfig, e: &NodeEvent) -> Findings {
        let at = e.logged_at_us.unwrap_or(e.envelope.received_at_us);
        self.last_event_us = self.last_event_us.max(at);
        let node = &e.envelope.node_id;
        let mut f = Findings::default();
        // An `InvalidChainFound` whose validation failure never came (invalidateblock, say) is
        // reported at the next tip or start; other lines (Core logs a second `InvalidChainFound:
        // current best=…` line, and other threads log meanwhile) may come in between.
        let flush_invalid = matches!(&e.event, EventBody::UpdateTip(_) | EventBody::NodeStart(_));
        if flush_invalid && let Some(p) = self.pending_invalid.take() {
            f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
        }
        match &e.event {
            EventBody::UpdateTip(u) => {
                self.update_tip(config, node, &u.hash, u.height, u.block_time_us, at, &mut f);
            }
            // Only a block of the active chain: the validation callbacks are logged from a
            // background thread, so a reorg's `BlockDisconnected` lines can come after the new
            // branch's UpdateTips, when those blocks are no longer on it.
            EventBody::BlockDisconnected(d)
                if d.hash.as_ref().is_some_and(|h| self.recent.values().any(|x| x == h)) =>
            {
                if let (Some(tip), None) = (&self.tip, &self.pending) {
                    // The tip goes; its parent (or the logged height's parent) is the fork so far.
                    let fork = d.height.map_or(tip.height - 1, |h| h - 1).min(tip.height - 1);
                    self.pending = Some(Pending {
                        old_tip: tip.hash.clone(),
                        old_height: tip.height,
                        fork_height: fork,
                        connected: Vec::new(),
                        old_branch: BTreeMap::new(),
                    });
                } else if let (Some(p), Some(h)) = (self.pending.as_mut(), d.height) {
                    p.fork_height = p.fork_height.min(h - 1);
                }
            }
            // A block's arrival: its header, the block, or its compact block, whichever the log
            // shows first (Core logs `Saw new header` only for the last of a headers message).
            EventBody::HeaderSeen(HeaderSeen { hash, .. })
            | EventBody::BlockReceived(BlockReceived { hash, .. })
            | EventBody::CompactBlockReconstructed(CompactBlockReconstructed { hash, .. })
                if !self.headers.iter().any(|(x, _)| x == hash) =>
            {
                self.headers.push_back((hash.clone(), at));
                if self.headers.len() > KEEP_SEEN {
                    self.headers.pop_front();
                }
            }
            EventBody::InvalidBlock(b) => match (&b.hash, b.origin.as_str(), b.reason.is_empty()) {
                (Some(hash), "InvalidChainFound", _) => {
                    if let Some(p) =
                        self.pending_invalid.replace(PendingInvalid { hash: hash.clone(), height: b.height, at_us: at })
                    {
                        f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
                    }
                }
                (Some(hash), origin, false) => {
                    let height = self.pending_invalid.as_ref().filter(|p| &p.hash == hash).and_then(|p| p.height);
                    let seen = self.pending_invalid.as_ref().filter(|p| &p.hash == hash).map_or(at, |p| p.at_us);
                    if self.pending_invalid.as_ref().is_some_and(|p| &p.hash == hash) {
                        self.pending_invalid = None;
                    }
                    // `bad-cb-amount, coinbase pays too much (…)`: the reason is the token.
                    let reason = b.reason.split(", ").next().unwrap_or_default();
                    f.invalid =
                        self.report_invalid(node, Some(hash.clone()), height.or(b.height), reason, origin, seen);
                }
                // A reason without a hash (`ConnectBlock(): …`): the hash comes with the next line.
                _ => {}
            },
            EventBody::ConnectBlockTimings(t) if t.stage == "Connect block" => f.connect_us = Some(t.duration_us),
            EventBody::NodeStart(_) => {
                f.started = true;
                self.pending = None;
            }
            _ => {}
        }
        f
    }

    #[allow(clippy::too_many_arguments)]
    fn update_tip(
        &mut self,
        config: &NodeConfig,
        node: &str,
        hash: &str,
        height: i64,
        block_time_us: Option<i64>,
        at: i64,
        f: &mut Findings,
    ) {
        if self.tip.as_ref().is_some_and(|t| t.hash == hash) {
            return; // the same tip again: nothing moved
        }
        let known_here = self.recent.get(&height).is_some_and(|h| h == hash);
        match (&self.tip, &mut self.pending) {
            (Some(tip), None) if height <= tip.height => {
                // Down to an ancestor (a disconnection), or straight onto another branch.
                let fork = if known_here { height } else { height - 1 };
                let connected = if known_here { Vec::new() } else { vec![(height, hash.to_owned())] };
                self.pending = Some(Pending {
                    old_tip: tip.hash.clone(),
                    old_height: tip.height,
                    fork_height: fork,
                    connected,
                    old_branch: BTreeMap::new(),
                });
            }
            (_, Some(p)) => {
                if known_here && p.connected.is_empty() {
                    p.fork_height = p.fork_height.min(height);
                } else {
                    p.connected.retain(|(h, _)| *h < height);
                    p.connected.push((height, hash.to_owned()));
                    p.fork_height = p.fork_height.min(height - 1);
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
        let header_seen = self.headers.iter().find(|(x, _)| x == hash).map(|(_, t)| *t);
        f.header_to_tip_us = header_seen.map(|t| (at - t).max(0));
        self.recent.retain(|h, _| *h < height);
        self.recent.insert(height, hash.to_owned());
        while self.recent.len() > config.keep_blocks {
            self.recent.pop_first();
        }
        self.tip = Some(Tip { hash: hash.to_owned(), height, block_time_us, changed_at_us: at });
        f.tip_changed = true;
        // Past the old height the new branch has won (a node only moves to more work).
        if self.pending.as_ref().is_some_and(|p| height > p.old_height && !p.connected.is_empty())
            && let Some(p) = self.pending.take()
        {
            self.complete(config, node, p, at, f);
        }
        // A tip that old at its arrival: the node is catching up (initial block download).
        self.catching_up = block_time_us.is_some_and(|bt| at - bt > config.ibd_tip_age_us);
        if let Some(bt) = block_time_us
            && at - bt > config.stale_after_us
            && !self.catching_up
            && self.stale_reported.as_deref() != Some(hash)
        {
            self.stale_reported = Some(hash.to_owned());
            f.stale = Some(self.stale_event(node, config, at));
        }
    }

    /// The reorg `p` is complete: its event, and a selfish-mining suspicion if the winning blocks
    /// all arrived within the span.
    fn complete(&mut self, config: &NodeConfig, node: &str, p: Pending, at: i64, f: &mut Findings) {
        let depth = p.old_height - p.fork_height;
        if depth < 1 {
            return; // back on the old branch: no reorg
        }
        let fork_hash = self.recent.get(&p.fork_height).cloned();
        let connected: Vec<String> = p.connected.iter().map(|(_, h)| h.clone()).collect();
        if p.connected.iter().all(|(h, x)| p.old_branch.get(h) == Some(x)) {
            return; // back up the very blocks it left (reconsiderblock): no reorg
        }
        let (new_height, new_tip) = p.connected.last().cloned().unwrap_or((p.old_height, p.old_tip.clone()));
        let disconnected = p.old_branch.range(p.fork_height + 1..).map(|(_, h)| h.clone()).collect();
        f.reorg = Some(ChainReorg {
            node_id: node.to_owned(),
            network: self.network.clone(),
            old_tip: p.old_tip.clone(),
            old_height: p.old_height,
            new_tip: new_tip.clone(),
            new_height,
            fork_height: p.fork_height,
            fork_hash,
            depth,
            disconnected,
            connected: connected.clone(),
            source: "log".to_owned(),
            detected_at_us: at,
        });
        // Arrival = the block's first sighting. Without every winning block's, no judgement: the
        // connection times of a reorg are always milliseconds apart.
        let Some(arrivals) = connected
            .iter()
            .map(|h| self.headers.iter().find(|(x, _)| x == h).map(|(_, t)| *t))
            .collect::<Option<Vec<i64>>>()
        else {
            return;
        };
        let (Some(first), Some(last)) = (arrivals.iter().min(), arrivals.iter().max()) else { return };
        if connected.len() >= 2 && last - first <= config.selfish_span_us {
            f.selfish = Some(SelfishMiningSuspect {
                node_id: node.to_owned(),
                network: self.network.clone(),
                depth,
                branch_length: connected.len() as i64,
                winning: connected,
                arrival_gaps_us: arrivals.windows(2).map(|w| w[1] - w[0]).collect(),
                span_us: config.selfish_span_us,
                old_tip: p.old_tip,
                new_tip,
            });
        }
    }

    /// Completes a pending reorg whose new branch is back at the old height.
    fn complete_at_height(&mut self, config: &NodeConfig, node: &str, at: i64, f: &mut Findings) {
        let done = self.pending.as_ref().is_some_and(|p| p.connected.last().is_some_and(|(h, _)| *h >= p.old_height));
        if done && let Some(p) = self.pending.take() {
            self.complete(config, node, p, at, f);
        }
    }

    /// A stale-tip event for the current tip at `now_us`.
    fn stale_event(&self, node: &str, config: &NodeConfig, now_us: i64) -> StaleTip {
        let tip =
            self.tip.clone().unwrap_or(Tip { hash: String::new(), height: 0, block_time_us: None, changed_at_us: 0 });
        let bt = tip.block_time_us.unwrap_or(now_us);
        StaleTip {
            node_id: node.to_owned(),
            network: self.network.clone(),
            hash: tip.hash,
            height: tip.height,
            block_time_us: bt,
            age_us: now_us - bt,
            limit_us: config.stale_after_us,
        }
    }

    /// A quiet node at wall-clock `now_us` (live only): a stale event once its tip has aged past
    /// the limit, and an `InvalidChainFound` no reason followed.
    pub fn idle(&mut self, config: &NodeConfig, node: &str, now_us: i64) -> Findings {
        let mut f = Findings::default();
        let last = self.last_event_us;
        self.complete_at_height(config, node, last, &mut f);
        if let Some(p) = self.pending_invalid.take() {
            f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
        }
        if let Some(tip) = &self.tip
            && let Some(bt) = tip.block_time_us
            && !self.catching_up
            && now_us - bt > config.stale_after_us
            && self.stale_reported.as_deref() != Some(tip.hash.as_str())
        {
            self.stale_reported = Some(tip.hash.clone());
            f.stale = Some(self.stale_event(node, config, now_us));
        }
        f
    }

    fn report_invalid(
        &mut self,
        node: &str,
        hash: Option<String>,
        height: Option<i64>,
        reason: &str,
        origin: &str,
        at: i64,
    ) -> Option<ChainInvalidBlock> {
        if let Some(h) = &hash {
            if self.invalid.contains(h) {
                return None;
            }
            self.invalid.push_back(h.clone());
            if self.invalid.len() > KEEP_SEEN {
                self.invalid.pop_front();
            }
        }
        Some(ChainInvalidBlock {
            node_id: node.to_owned(),
            network: self.network.clone(),
            hash,
            height,
            reason: if reason.is_empty() { "unknown".to_owned() } else { reason.to_owned() },
            origin: origin.to_owned(),
            operator_marked: false,
            seen_at_us: at,
        })
    }
}
