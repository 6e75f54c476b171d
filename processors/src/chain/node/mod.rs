//! One node's chain as its own log, ZMQ and getchaintips tell it: active tip, reorgs (with the
//! selfish-mining heuristic), stale tips, invalid blocks, header-to-tip latency and block connect
//! times. Pure: events in, findings out, no I/O.
//!
//! A reorg in the log: Core and Litecoin log `UpdateTip` for every disconnection too (the new
//! best is the parent), and with `-debug=validation` a `BlockDisconnected` line; BSV logs
//! `Performing best chain tip … rollback` and, with `-debug=bench`, `- Disconnect block`. So a
//! tip at or below the current height, or a disconnection, starts a reorg; the UpdateTips that
//! follow walk down to the fork and up the new branch; the reorg is complete when the new branch
//! passes the old height (or, back at the old height with more work, when the node goes quiet: a
//! busy node's next block passes it anyway; any other line may be logged in the middle of the
//! switch).
//!
//! Three sources, whichever completes first:
//! - the log, as above ([`Walk`] of the `UpdateTip`s);
//! - ZMQ `sequence`: `D` walks its own [`Walk`] down, `C` up; it has no heights, so that walk
//!   starts from the log's heights and infers the rest;
//! - getchaintips (a [`ChainTips`] event from netviews): a `valid-fork` tip new since the last
//!   result was the active tip and was reorged away, `branchlen` deep.
//!
//! A reorg is known by its old tip and depth, the same from every source, and reported once.

use std::collections::{BTreeSet, VecDeque};

use bmon_schemas::{
    BlockReceived, ChainInvalidBlock, ChainReorg, CompactBlockReconstructed, EventBody, HeaderSeen, InvalidBlock,
    NodeEvent, SelfishMiningSuspect, StaleTip,
};
use serde::{Deserialize, Serialize};

pub use super::walk::Tip;
use super::walk::{Moved, Pending, Walk};

mod sources;

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
    /// A reorg seen in getchaintips waits this long for the log or ZMQ to report it with both
    /// branches, µs.
    pub tips_grace_us: i64,
    /// Without a log, ZMQ sequence resets of different topics this close together are one
    /// restart, µs.
    pub restart_merge_us: i64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            keep_blocks: 200,
            selfish_span_us: 30_000_000,
            stale_after_us: 90 * 60 * 1_000_000,
            ibd_tip_age_us: 24 * 3600 * 1_000_000,
            tips_grace_us: 5_000_000,
            restart_merge_us: 600_000_000,
        }
    }
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
    /// Completed reorgs (more than one only from a getchaintips result after several).
    pub reorgs: Vec<ChainReorg>,
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
    /// The block that time is for: the tip (Core and BSV log the time after its UpdateTip).
    pub connect_block: Option<(String, i64)>,
    /// The node (re)started.
    pub started: bool,
}

impl Findings {
    /// Whether there is an event to publish.
    pub fn has_events(&self) -> bool {
        !self.reorgs.is_empty() || self.selfish.is_some() || self.stale.is_some() || self.invalid.is_some()
    }
}

/// One node's chain state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeChain {
    /// The node's network.
    pub network: String,
    /// The log's walk: the active tip as `UpdateTip` tells it.
    log: Walk,
    /// ZMQ `sequence`'s walk.
    #[serde(default)]
    zmq: Walk,
    /// The `valid-fork` tips of the last getchaintips result; none before the first.
    #[serde(default)]
    forks: Option<BTreeSet<String>>,
    /// Reorgs reported, by (old tip, depth), newest last, bounded; and whether the
    /// selfish-mining heuristic judged it (only a walk knows the winning blocks).
    #[serde(default)]
    reorgs: VecDeque<(String, i64, bool)>,
    /// Reorgs from getchaintips, with when they were seen, waiting out `tips_grace_us`.
    #[serde(default)]
    held: Vec<(Pending, i64)>,
    /// `invalid` tips from getchaintips (hash, height, branch length, when seen), waiting out `tips_grace_us`
    /// for the log's report with its reason.
    #[serde(default)]
    held_invalid: Vec<(String, i64, i64, i64)>,
    /// Heights of the blocks reported invalid, newest last, bounded.
    #[serde(default)]
    invalid_heights: VecDeque<i64>,
    /// The active tip of the last getchaintips result: where a ZMQ walk without the log starts.
    #[serde(default)]
    anchor: Option<(String, i64)>,
    /// When the log last showed an `invalidateblock` call (`-debug=rpc`).
    #[serde(default)]
    invalidate_call_us: Option<i64>,
    /// The last restart: when, and the streams that told of it (the log, ZMQ topics).
    #[serde(default)]
    start: Option<(i64, BTreeSet<String>)>,
    /// The log has told of a start: it tells of every one.
    #[serde(default)]
    log_starts: bool,
    /// First sighting per block hash (header, block or compact block; log time), newest last,
    /// bounded.
    headers: VecDeque<(String, i64)>,
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

/// Header sightings, invalid hashes and getchaintips forks kept per node.
const KEEP_SEEN: usize = 1000;
/// An `InvalidChainFound` this soon after an `invalidateblock` call is the operator's doing, µs.
const OPERATOR_CALL_US: i64 = 60_000_000;
/// Reorgs remembered per node, so that a second source's report of one is not counted again.
const KEEP_REORGS: usize = 100;

impl NodeChain {
    /// A node of `network` seen for the first time.
    pub fn new(network: &str) -> NodeChain {
        NodeChain { network: network.to_owned(), ..NodeChain::default() }
    }

    /// The active tip, as the log tells it.
    pub fn tip(&self) -> Option<&Tip> {
        self.log.tip.as_ref()
    }

    /// Whether something waits for more events or time: a reorg under way, held getchaintips
    /// findings, an `InvalidChainFound` without its reason.
    pub fn has_pending(&self) -> bool {
        self.log.pending.is_some()
            || self.zmq.pending.is_some()
            || !self.held.is_empty()
            || !self.held_invalid.is_empty()
            || self.pending_invalid.is_some()
    }

    /// The node's last tip was older than `ibd_tip_age_us` when it came: catching up.
    pub fn catching_up(&self) -> bool {
        self.catching_up
    }

    /// Applies one of the node's events (in the order of its source; see [`super::walk`]).
    pub fn apply(&mut self, config: &NodeConfig, e: &NodeEvent) -> Findings {
        let at = e.logged_at_us.unwrap_or(e.envelope.received_at_us);
        self.last_event_us = self.last_event_us.max(at);
        let node = &e.envelope.node_id;
        let zmq = e.envelope.source.stream.starts_with("zmq");
        let mut f = Findings::default();
        self.flush_held(config, node, at, &mut f);
        // An `InvalidChainFound` whose validation failure never came (invalidateblock, say) is
        // reported at the next tip or start; other lines (Core logs a second `InvalidChainFound:
        // current best=…` line, and other threads log meanwhile) may come in between.
        let flush_invalid =
            matches!(&e.event, EventBody::UpdateTip(_)) || (matches!(&e.event, EventBody::NodeStart(_)) && !zmq);
        if flush_invalid && let Some(p) = self.pending_invalid.take() {
            f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
        }
        match &e.event {
            EventBody::UpdateTip(u) => {
                self.update_tip(config, node, &u.hash, u.height, u.block_time_us, at, &mut f);
            }
            EventBody::BlockConnected(c) if zmq => {
                if let Some(hash) = &c.hash {
                    self.zmq_connected(config, node, hash, at, &mut f);
                }
            }
            EventBody::BlockDisconnected(d) if zmq => {
                if let Some(hash) = &d.hash {
                    self.zmq_disconnected(config, hash, at);
                }
            }
            // Only a block of the active chain: the validation callbacks are logged from a
            // background thread, so a reorg's `BlockDisconnected` lines can come after the new
            // branch's UpdateTips, when those blocks are no longer on it.
            EventBody::BlockDisconnected(d) => {
                if let Some(hash) = &d.hash {
                    self.log.disconnected(hash, d.height);
                }
            }
            EventBody::ChainTips(t) => self.chain_tips(config, node, t, at, &mut f),
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
            EventBody::InvalidBlock(b) => self.invalid_block(node, b, at, &mut f),
            EventBody::RpcCall(c) if c.method == "invalidateblock" => self.invalidate_call_us = Some(at),
            EventBody::ConnectBlockTimings(t) if t.stage == "Connect block" => {
                f.connect_us = Some(t.duration_us);
                f.connect_block = self.log.tip.as_ref().map(|t| (t.hash.clone(), t.height));
            }
            EventBody::NodeStart(_) => {
                f.started = self.new_start(config, !zmq, &e.envelope.source.stream, at);
                if !zmq {
                    self.log.pending = None;
                }
                self.zmq = Walk::default();
            }
            _ => {}
        }
        self.flush_held_invalid(config, node, at, &mut f);
        f
    }

    /// Whether a start from `stream` at `at` is a new restart. The log's start line tells every
    /// restart, so where the node has a log a ZMQ topic's sequence reset (seen only at the
    /// topic's first message after the restart, which may come much later) is never a new one.
    /// Without a log, resets of different topics within `restart_merge_us` are one restart; a log
    /// start line that follows a restart told so is that restart.
    fn new_start(&mut self, config: &NodeConfig, from_log: bool, stream: &str, at: i64) -> bool {
        if !from_log && self.log_starts {
            return false;
        }
        self.log_starts |= from_log;
        if let Some((since, streams)) = self.start.as_mut()
            && (at - *since).abs() <= config.restart_merge_us
            && !streams.contains(stream)
            && !(from_log && streams.contains("log"))
        {
            streams.insert(stream.to_owned());
            return false;
        }
        self.start = Some((at, [stream.to_owned()].into()));
        true
    }

    fn invalid_block(&mut self, node: &str, b: &InvalidBlock, at: i64, f: &mut Findings) {
        match (&b.hash, b.origin.as_str(), b.reason.is_empty()) {
            (Some(hash), "InvalidChainFound", _) => {
                if let Some(p) =
                    self.pending_invalid.replace(PendingInvalid { hash: hash.clone(), height: b.height, at_us: at })
                {
                    f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
                }
            }
            (Some(hash), origin, false) => {
                let pending = self.pending_invalid.take_if(|p| &p.hash == hash);
                let height = pending.as_ref().and_then(|p| p.height);
                let seen = pending.as_ref().map_or(at, |p| p.at_us);
                // `bad-cb-amount, coinbase pays too much (…)`: the reason is the token.
                let reason = b.reason.split(", ").next().unwrap_or_default();
                f.invalid = self.report_invalid(node, Some(hash.clone()), height.or(b.height), reason, origin, seen);
            }
            // A reason without a hash (`ConnectBlock(): …`): the hash comes with the next line.
            _ => {}
        }
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
        let Moved::To(done) = self.log.move_to(config.keep_blocks, hash, height, block_time_us, at) else {
            return; // the same tip again: nothing moved
        };
        let header_seen = self.headers.iter().find(|(x, _)| x == hash).map(|(_, t)| *t);
        f.header_to_tip_us = header_seen.map(|t| (at - t).max(0));
        f.tip_changed = true;
        if let Some(p) = done {
            self.complete(config, node, p, "log", at, f);
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

    /// Notes `hash` as reported invalid (bounded).
    pub(super) fn remember_invalid(&mut self, hash: &str) {
        if !self.invalid.iter().any(|h| h == hash) {
            self.invalid.push_back(hash.to_owned());
            if self.invalid.len() > KEEP_SEEN {
                self.invalid.pop_front();
            }
        }
    }

    /// The reorg `p` is complete: its event, unless another source reported it, and a
    /// selfish-mining suspicion if the winning blocks all arrived within the span.
    pub(super) fn complete(
        &mut self,
        config: &NodeConfig,
        node: &str,
        p: Pending,
        source: &str,
        at: i64,
        f: &mut Findings,
    ) {
        let depth = p.old_height - p.fork_height;
        if depth < 1 {
            return; // back on the old branch: no reorg
        }
        if !p.connected.is_empty() && p.connected.iter().all(|(h, x)| p.old_branch.get(h) == Some(x)) {
            return; // back up the very blocks it left (reconsiderblock): no reorg
        }
        let connected: Vec<String> = p.connected.iter().map(|(_, h)| h.clone()).collect();
        let (new_height, new_tip) = p.connected.last().cloned().unwrap_or((p.old_height, p.old_tip.clone()));
        let seen = self.reorgs.iter().position(|(old, d, _)| *old == p.old_tip && *d == depth);
        if seen.is_none() {
            self.reorgs.push_back((p.old_tip.clone(), depth, false));
            if self.reorgs.len() > KEEP_REORGS {
                self.reorgs.pop_front();
            }
            f.reorgs.push(ChainReorg {
                node_id: node.to_owned(),
                network: self.network.clone(),
                old_tip: p.old_tip.clone(),
                old_height: p.old_height,
                new_tip: new_tip.clone(),
                new_height,
                fork_height: p.fork_height,
                fork_hash: self.log.recent.get(&p.fork_height).or(self.zmq.recent.get(&p.fork_height)).cloned(),
                depth,
                disconnected: p.old_branch.range(p.fork_height + 1..).map(|(_, h)| h.clone()).collect(),
                connected: connected.clone(),
                source: source.to_owned(),
                detected_at_us: at,
            });
        }
        // The heuristic needs the winning branch, which only a walk knows, and the arrival (first
        // sighting) of each of its blocks: the connection times of a reorg are always
        // milliseconds apart. It judges a reorg once, from the first source that has both.
        let Some(judged) = self.reorgs.iter_mut().rev().find(|(old, d, _)| *old == p.old_tip && *d == depth) else {
            return;
        };
        if source == "getchaintips" || judged.2 {
            return;
        }
        let Some(arrivals) = connected
            .iter()
            .map(|h| self.headers.iter().find(|(x, _)| x == h).map(|(_, t)| *t))
            .collect::<Option<Vec<i64>>>()
        else {
            return;
        };
        judged.2 = true;
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

    /// A stale-tip event for the current tip at `now_us`.
    fn stale_event(&self, node: &str, config: &NodeConfig, now_us: i64) -> StaleTip {
        let tip = self.log.tip.clone().unwrap_or(Tip {
            hash: String::new(),
            height: 0,
            block_time_us: None,
            changed_at_us: 0,
        });
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
        self.flush_held(config, node, now_us, &mut f);
        let last = self.last_event_us;
        if let Some(p) = self.log.done_at_height() {
            self.complete(config, node, p, "log", last, &mut f);
        }
        if let Some(p) = self.zmq.done_at_height() {
            self.complete(config, node, p, "zmq", last, &mut f);
        }
        if let Some(p) = self.pending_invalid.take() {
            f.invalid = self.report_invalid(node, Some(p.hash), p.height, "", "InvalidChainFound", p.at_us);
        }
        if let Some(tip) = &self.log.tip
            && let Some(bt) = tip.block_time_us
            && !self.catching_up
            && now_us - bt > config.stale_after_us
            && self.stale_reported.as_deref() != Some(tip.hash.as_str())
        {
            self.stale_reported = Some(tip.hash.clone());
            f.stale = Some(self.stale_event(node, config, now_us));
        }
        self.flush_held_invalid(config, node, now_us, &mut f);
        f
    }

    pub(super) fn report_invalid(
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
            self.remember_invalid(h);
        }
        if let Some(h) = height {
            self.invalid_heights.push_back(h);
            if self.invalid_heights.len() > KEEP_SEEN {
                self.invalid_heights.pop_front();
            }
        }
        // No validation failure, right after the log showed an `invalidateblock` call: the
        // operator marked it.
        let operator_marked = reason.is_empty()
            && origin == "InvalidChainFound"
            && self.invalidate_call_us.is_some_and(|t| (0..=OPERATOR_CALL_US).contains(&(at - t)));
        let reason = match (reason, operator_marked) {
            (_, true) => "invalidateblock",
            ("", false) => "unknown",
            (r, false) => r,
        };
        Some(ChainInvalidBlock {
            node_id: node.to_owned(),
            network: self.network.clone(),
            hash,
            height,
            reason: reason.to_owned(),
            origin: origin.to_owned(),
            operator_marked,
            seen_at_us: at,
        })
    }
}
