//! Node events for the chain logic's tests: block hashes by branch and height, each source's
//! events, and runs of them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bmon_processors::chain::node::{Findings, NodeChain, NodeConfig};
use bmon_schemas::{
    BlockConnected, BlockDisconnected, ChainTipEntry, ChainTips, EventBody, HeaderSeen, InvalidBlock, NodeEvent,
    UpdateTip, samples,
};

pub const T0: i64 = 1_800_000_000_000_000;
pub const SEC: i64 = 1_000_000;

/// Block hashes: branch `b` at height `h`.
pub fn hash(branch: u8, h: i64) -> String {
    format!("{branch:02x}{h:062x}")
}

pub fn ev(at: i64, event: EventBody) -> NodeEvent {
    NodeEvent {
        envelope: samples::envelope("n0", "log", at),
        index: 0,
        logged_at_us: Some(at),
        thread: None,
        category: None,
        event,
    }
}

pub fn tip(branch: u8, h: i64, at: i64) -> NodeEvent {
    ev(
        at,
        EventBody::UpdateTip(UpdateTip {
            hash: hash(branch, h),
            height: h,
            log2_work: None,
            tx_count: None,
            block_time_us: Some(at),
            progress: None,
            cache_mib: None,
            cache_txo: None,
            warning: None,
        }),
    )
}

pub fn header(branch: u8, h: i64, at: i64) -> NodeEvent {
    ev(at, EventBody::HeaderSeen(HeaderSeen { hash: hash(branch, h), height: Some(h), peer: None, compact: false }))
}

pub fn disconnected(branch: u8, h: i64, at: i64) -> NodeEvent {
    ev(at, EventBody::BlockDisconnected(BlockDisconnected { hash: Some(hash(branch, h)), height: Some(h) }))
}

/// A ZMQ `sequence` notification as logparse turns it into an event: no height, no log time.
pub fn zmq(branch: u8, h: i64, label: char, at: i64) -> NodeEvent {
    let hash = Some(hash(branch, h));
    let event = match label {
        'C' => EventBody::BlockConnected(BlockConnected { hash, height: None }),
        _ => EventBody::BlockDisconnected(BlockDisconnected { hash, height: None }),
    };
    let mut e = ev(at, event);
    e.envelope.source.stream = "zmq:sequence".to_owned();
    e.logged_at_us = None;
    e.envelope.received_at_us = at;
    e
}

/// The ZMQ side of `reorg_events`: `D` down to the fork, `C` up the new branch.
pub fn zmq_reorg(top: i64, depth: i64, wins: i64) -> Vec<NodeEvent> {
    let at = T0 + (top + 1) * 10 * SEC;
    let fork = top - depth;
    let down = (fork + 1..=top).rev().map(|h| zmq(0, h, 'D', at));
    down.chain((fork + 1..=fork + wins).map(|h| zmq(1, h, 'C', at))).collect()
}

/// A getchaintips result as netviews publishes it: the active tip, and `valid-fork` tips as
/// (branch, height, branchlen).
pub fn chain_tips(at: i64, active: (u8, i64), forks: &[(u8, i64, i64)]) -> NodeEvent {
    let entry = |(b, h, len): (u8, i64, i64), status: &str| ChainTipEntry {
        hash: hash(b, h),
        height: h,
        branchlen: len,
        status: status.to_owned(),
    };
    let mut tips = vec![entry((active.0, active.1, 0), "active")];
    tips.extend(forks.iter().map(|f| entry(*f, "valid-fork")));
    let mut e = ev(at, EventBody::ChainTips(ChainTips { tips }));
    e.envelope.source.stream = "rpc:getchaintips".to_owned();
    e.logged_at_us = None;
    e.envelope.received_at_us = at;
    e
}

pub fn run(chain: &mut NodeChain, events: &[NodeEvent]) -> Vec<Findings> {
    events.iter().map(|e| chain.apply(&NodeConfig::default(), e)).collect()
}

pub fn reorgs(f: &[Findings]) -> Vec<&bmon_schemas::ChainReorg> {
    f.iter().flat_map(|f| f.reorgs.iter()).collect()
}

/// Branch 0 from `from` to `to`, a block every 10 s.
pub fn main_chain(from: i64, to: i64) -> Vec<NodeEvent> {
    (from..=to).map(|h| tip(0, h, T0 + h * 10 * SEC)).collect()
}

/// A reorg of `depth` at tip height `top`, won by `wins` blocks of branch 1, as Core logs it:
/// optionally `BlockDisconnected` lines (-debug=validation), UpdateTip down to the fork, then up
/// the new branch (headers first, `gap` apart).
pub fn reorg_events(top: i64, depth: i64, wins: i64, validation: bool, gap: i64) -> Vec<NodeEvent> {
    let fork = top - depth;
    let mut at = T0 + (top + 1) * 10 * SEC;
    let mut out = Vec::new();
    for h in fork + 1..=fork + wins {
        out.push(header(1, h, at));
        at += gap;
    }
    for h in (fork + 1..=top).rev() {
        if validation {
            out.push(disconnected(0, h, at));
        }
        out.push(tip(0, h - 1, at));
        at += 1000;
    }
    for h in fork + 1..=fork + wins {
        out.push(tip(1, h, at));
        at += 1000;
    }
    out
}

pub fn invalid(hash: Option<String>, height: Option<i64>, reason: &str, origin: &str, at: i64) -> NodeEvent {
    ev(at, EventBody::InvalidBlock(InvalidBlock { hash, height, reason: reason.into(), origin: origin.into() }))
}
