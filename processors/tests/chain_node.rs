//! The pure per-node chain logic: reorgs from every log pattern counted once, the selfish-mining
//! heuristic and its control, restarts mid-reorg, a node first seen mid-chain, invalid blocks
//! and stale tips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bmon_processors::chain::node::{Findings, NodeChain, NodeConfig};
use bmon_schemas::{
    BlockConnected, BlockDisconnected, ChainTipEntry, ChainTips, EventBody, HeaderSeen, InvalidBlock, NodeEvent,
    NodeStart, RpcCall, UpdateTip, samples,
};
use proptest::prelude::*;

const T0: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;

/// Block hashes: branch `b` at height `h`.
fn hash(branch: u8, h: i64) -> String {
    format!("{branch:02x}{h:062x}")
}

fn ev(at: i64, event: EventBody) -> NodeEvent {
    NodeEvent {
        envelope: samples::envelope("n0", "log", at),
        index: 0,
        logged_at_us: Some(at),
        thread: None,
        category: None,
        event,
    }
}

fn tip(branch: u8, h: i64, at: i64) -> NodeEvent {
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

fn header(branch: u8, h: i64, at: i64) -> NodeEvent {
    ev(at, EventBody::HeaderSeen(HeaderSeen { hash: hash(branch, h), height: Some(h), peer: None, compact: false }))
}

fn disconnected(branch: u8, h: i64, at: i64) -> NodeEvent {
    ev(at, EventBody::BlockDisconnected(BlockDisconnected { hash: Some(hash(branch, h)), height: Some(h) }))
}

/// A ZMQ `sequence` notification as logparse turns it into an event: no height, no log time.
fn zmq(branch: u8, h: i64, label: char, at: i64) -> NodeEvent {
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
fn zmq_reorg(top: i64, depth: i64, wins: i64) -> Vec<NodeEvent> {
    let at = T0 + (top + 1) * 10 * SEC;
    let fork = top - depth;
    let down = (fork + 1..=top).rev().map(|h| zmq(0, h, 'D', at));
    down.chain((fork + 1..=fork + wins).map(|h| zmq(1, h, 'C', at))).collect()
}

/// A getchaintips result as netviews publishes it: the active tip, and `valid-fork` tips as
/// (branch, height, branchlen).
fn chain_tips(at: i64, active: (u8, i64), forks: &[(u8, i64, i64)]) -> NodeEvent {
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

fn run(chain: &mut NodeChain, events: &[NodeEvent]) -> Vec<Findings> {
    events.iter().map(|e| chain.apply(&NodeConfig::default(), e)).collect()
}

fn reorgs(f: &[Findings]) -> Vec<&bmon_schemas::ChainReorg> {
    f.iter().flat_map(|f| f.reorgs.iter()).collect()
}

/// Branch 0 from `from` to `to`, a block every 10 s.
fn main_chain(from: i64, to: i64) -> Vec<NodeEvent> {
    (from..=to).map(|h| tip(0, h, T0 + h * 10 * SEC)).collect()
}

/// A reorg of `depth` at tip height `top`, won by `wins` blocks of branch 1, as Core logs it:
/// optionally `BlockDisconnected` lines (-debug=validation), UpdateTip down to the fork, then up
/// the new branch (headers first, `gap` apart).
fn reorg_events(top: i64, depth: i64, wins: i64, validation: bool, gap: i64) -> Vec<NodeEvent> {
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

#[test]
fn a_straight_chain_has_no_reorg_and_moves_the_tip() {
    let mut c = NodeChain::new("regtest");
    let f = run(&mut c, &main_chain(100, 120));
    assert!(reorgs(&f).is_empty());
    assert!(f.iter().all(|f| f.tip_changed));
    assert_eq!(c.tip().map(|t| t.height), Some(120));
}

#[test]
fn depth_one_and_three_reorgs_are_reported_once_with_their_branches() {
    for (depth, validation) in [(1, false), (1, true), (3, false), (3, true)] {
        let mut c = NodeChain::new("regtest");
        run(&mut c, &main_chain(100, 110));
        let f = run(&mut c, &reorg_events(110, depth, depth + 1, validation, 60 * SEC));
        let r = reorgs(&f);
        assert_eq!(r.len(), 1, "depth {depth}, validation lines {validation}: {r:?}");
        let r = r[0];
        assert_eq!((r.depth, r.old_height, r.fork_height), (depth, 110, 110 - depth));
        assert_eq!(r.old_tip, hash(0, 110));
        assert_eq!(r.fork_hash, Some(hash(0, 110 - depth)));
        let old: Vec<String> = (111 - depth..=110).map(|h| hash(0, h)).collect();
        assert_eq!(r.disconnected, old, "the old branch from the fork up");
        let new: Vec<String> = (111 - depth..=111).map(|h| hash(1, h)).collect();
        assert_eq!(r.connected, new, "the new branch, up to where it passed the old height");
        assert_eq!(c.tip().map(|t| t.hash.clone()), Some(hash(1, 111)));
    }
}

#[test]
fn a_node_that_jumps_onto_another_branch_without_walking_down_is_a_reorg() {
    // BSV without bench lines: a rollback line (a disconnection), then the new branch.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let events = [
        ev(T0 + 200 * SEC, EventBody::BlockDisconnected(BlockDisconnected { hash: Some(hash(0, 110)), height: None })),
        tip(1, 109, T0 + 201 * SEC),
        tip(1, 110, T0 + 202 * SEC),
        tip(1, 111, T0 + 203 * SEC),
    ];
    let f = run(&mut c, &events);
    let r = reorgs(&f);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].depth, r[0].fork_height), (2, 108));
}

#[test]
fn a_branch_back_at_the_old_height_wins_when_the_node_goes_quiet_or_moves_on() {
    // More work at equal height (a difficulty change): not over while lines keep coming, since
    // any line may be logged in the middle of the switch.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = reorg_events(110, 2, 2, false, SEC);
    events.push(header(7, 111, T0 + 999 * SEC));
    assert!(reorgs(&run(&mut c, &events)).is_empty(), "not over yet");
    let r = c.idle(&NodeConfig::default(), "n0", T0 + 2000 * SEC).reorgs.pop().unwrap();
    assert_eq!((r.new_tip, r.depth), (hash(1, 110), 2));
    // Or the next block passes the old height.
    let mut busy = NodeChain::new("regtest");
    run(&mut busy, &main_chain(100, 110));
    run(&mut busy, &reorg_events(110, 1, 1, false, SEC));
    let r = run(&mut busy, &[tip(1, 111, T0 + 3000 * SEC)]);
    assert_eq!(reorgs(&r)[0].connected, vec![hash(1, 110), hash(1, 111)]);
}

#[test]
fn disconnection_lines_logged_after_the_switch_are_no_second_reorg() {
    // Core logs the validation callbacks from a background thread: the old branch's
    // BlockDisconnected lines may come after the new branch's UpdateTips.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = reorg_events(110, 3, 4, false, SEC);
    let at = T0 + 5000 * SEC;
    events.extend((108..=110).rev().map(|h| disconnected(0, h, at)));
    events.push(tip(1, 112, at + SEC));
    let f = run(&mut c, &events);
    assert_eq!(reorgs(&f).len(), 1, "{:?}", reorgs(&f));
}

#[test]
fn a_withheld_branch_released_at_once_is_a_selfish_mining_suspect() {
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let f = run(&mut c, &reorg_events(110, 1, 2, false, 200_000));
    let s: Vec<_> = f.iter().filter_map(|f| f.selfish.as_ref()).collect();
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].branch_length, s[0].depth, s[0].arrival_gaps_us.clone()), (2, 1, vec![200_000]));
}

#[test]
fn without_the_winning_headers_no_suspect_is_raised() {
    // Arrival times unknown (no header lines): the connection times alone are no evidence.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let events: Vec<NodeEvent> = reorg_events(110, 1, 2, false, 1000)
        .into_iter()
        .filter(|e| !matches!(e.event, EventBody::HeaderSeen(_)))
        .collect();
    let f = run(&mut c, &events);
    assert_eq!(reorgs(&f).len(), 1);
    assert!(f.iter().all(|f| f.selfish.is_none()));
}

#[test]
fn a_block_received_without_its_own_header_line_counts_as_arrived() {
    // Core logs `Saw new header` for the last header of a message only: the first withheld
    // block shows up as `received block`.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = reorg_events(110, 1, 2, false, 1000);
    let first = events.iter().position(|e| matches!(e.event, EventBody::HeaderSeen(_))).unwrap();
    let at = events[first].logged_at_us.unwrap();
    events[first] = ev(at, EventBody::BlockReceived(bmon_schemas::BlockReceived { hash: hash(1, 110), peer: Some(0) }));
    let f = run(&mut c, &events);
    assert_eq!(f.iter().filter(|f| f.selfish.is_some()).count(), 1);
}

#[test]
fn a_race_won_at_a_normal_pace_raises_no_suspect() {
    // The control: the winning branch's blocks reached the node 60 s apart.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let f = run(&mut c, &reorg_events(110, 1, 2, false, 60 * SEC));
    assert_eq!(reorgs(&f).len(), 1);
    assert!(f.iter().all(|f| f.selfish.is_none()));
}

#[test]
fn a_restart_mid_reorg_and_a_node_first_seen_mid_chain_invent_nothing() {
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = reorg_events(110, 2, 3, true, 60 * SEC);
    // The node dies after walking down; it restarts on the new branch.
    let cut =
        events.iter().position(|e| matches!(&e.event, EventBody::UpdateTip(u) if u.hash.starts_with("01"))).unwrap();
    events.insert(cut, ev(T0 + 500 * SEC, EventBody::NodeStart(NodeStart { version: "v31.99".into() })));
    let f = run(&mut c, &events);
    assert!(reorgs(&f).is_empty(), "a restart forgets the reorg it cannot finish: {:?}", reorgs(&f));
    assert!(f.iter().any(|f| f.started));

    let mut fresh = NodeChain::new("regtest");
    let f = run(&mut fresh, &main_chain(500, 505));
    assert!(reorgs(&f).is_empty(), "the first tip seen is no reorg");
}

#[test]
fn the_same_tip_twice_is_no_reorg() {
    let mut c = NodeChain::new("regtest");
    let mut events = main_chain(100, 110);
    events.push(tip(0, 110, T0 + 999 * SEC));
    events.extend(main_chain(111, 112));
    assert!(reorgs(&run(&mut c, &events)).is_empty());
}

fn invalid(hash: Option<String>, height: Option<i64>, reason: &str, origin: &str, at: i64) -> NodeEvent {
    ev(at, EventBody::InvalidBlock(InvalidBlock { hash, height, reason: reason.into(), origin: origin.into() }))
}

#[test]
fn an_invalid_block_is_reported_once_with_its_height_and_reason() {
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 101));
    let bad = hash(9, 102);
    let f = run(
        &mut c,
        &[
            invalid(None, None, "bad-cb-amount", "ConnectBlock", T0),
            invalid(Some(bad.clone()), Some(102), "", "InvalidChainFound", T0 + 1),
            // Core's second line, and another thread's, between the two reports.
            ev(
                T0 + 1,
                EventBody::Unknown(bmon_schemas::Unknown {
                    category: None,
                    message: "InvalidChainFound:  current best=…".into(),
                }),
            ),
            invalid(
                Some(bad.clone()),
                None,
                "bad-cb-amount, coinbase pays too much (actual=5000000001 vs limit=5000000000)",
                "ConnectTip",
                T0 + 2,
            ),
            invalid(Some(bad.clone()), Some(102), "", "InvalidChainFound", T0 + 3),
            tip(0, 102, T0 + 4),
        ],
    );
    let found: Vec<_> = f.iter().filter_map(|f| f.invalid.as_ref()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].hash.as_deref(), found[0].height, found[0].reason.as_str(), found[0].seen_at_us),
        (Some(bad.as_str()), Some(102), "bad-cb-amount", T0 + 1)
    );
    // InvalidChainFound with no validation failure after it (invalidateblock, say): reported
    // when the next event comes, reason unknown.
    let other = hash(9, 103);
    let f =
        run(&mut c, &[invalid(Some(other.clone()), Some(103), "", "InvalidChainFound", T0 + 5), tip(0, 103, T0 + 6)]);
    let found: Vec<_> = f.iter().filter_map(|f| f.invalid.as_ref()).collect();
    assert_eq!((found.len(), found[0].reason.as_str()), (1, "unknown"));
}

#[test]
fn a_tip_two_hours_old_is_stale_once_and_a_quiet_one_when_it_ages() {
    let config = NodeConfig::default();
    let mut c = NodeChain::new("regtest");
    let mut old = tip(0, 100, T0);
    if let EventBody::UpdateTip(u) = &mut old.event {
        u.block_time_us = Some(T0 - 2 * 3600 * SEC);
    }
    let f = c.apply(&config, &old);
    assert_eq!(f.stale.as_ref().map(|s| s.age_us), Some(2 * 3600 * SEC));
    assert!(c.idle(&config, "n0", T0 + SEC).stale.is_none(), "reported once per tip");
    let mut fresh = NodeChain::new("regtest");
    fresh.apply(&config, &tip(0, 100, T0));
    assert!(fresh.idle(&config, "n0", T0 + 80 * 60 * SEC).stale.is_none());
    let s = fresh.idle(&config, "n0", T0 + 91 * 60 * SEC).stale.unwrap();
    assert_eq!(s.age_us, 91 * 60 * SEC);
}

#[test]
fn a_tip_older_than_a_day_is_initial_block_download_not_a_stale_tip() {
    // A fresh regtest node's first tip is the 2011 genesis block.
    let config = NodeConfig::default();
    let mut c = NodeChain::new("regtest");
    let mut genesis = tip(0, 0, T0);
    if let EventBody::UpdateTip(u) = &mut genesis.event {
        u.block_time_us = Some(1_296_688_602_000_000);
    }
    assert!(c.apply(&config, &genesis).stale.is_none());
    assert!(c.idle(&config, "n0", T0 + 3600 * SEC).stale.is_none());
}

proptest! {
    /// Any depth and winning length, with or without the validation lines, any UpdateTip line
    /// repeated: exactly one reorg of the right depth, and a state restored from its JSON
    /// (a checkpoint) anywhere in the middle finds the same.
    #[test]
    fn one_reorg_of_the_right_depth_whatever_the_log_shows(
        depth in 1i64..8,
        extra in 0i64..3,
        validation in any::<bool>(),
        repeat in proptest::option::of(0usize..30),
        cut in 0usize..40,
    ) {
        let mut events = main_chain(100, 120);
        events.extend(reorg_events(120, depth, depth + extra, validation, 60 * SEC));
        // The next block ends a switch that stopped at the old height.
        events.push(tip(1, 120 - depth + depth + extra + 1, T0 + 9_999 * SEC));
        if let Some(i) = repeat.map(|r| r % events.len())
            && matches!(events[i].event, EventBody::UpdateTip(_))
        {
            let again = events[i].clone();
            events.insert(i + 1, again);
        }
        let mut straight = NodeChain::new("regtest");
        let all = run(&mut straight, &events);
        let r = reorgs(&all);
        prop_assert_eq!(r.len(), 1);
        prop_assert_eq!(r[0].depth, depth);
        let cut = cut.min(events.len());
        let mut first = NodeChain::new("regtest");
        let mut found = run(&mut first, &events[..cut]);
        let mut second: NodeChain = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        found.extend(run(&mut second, &events[cut..]));
        prop_assert_eq!(found, all);
    }

    /// The same reorg told by the log, by ZMQ `sequence` and by getchaintips, interleaved in any
    /// order (each source in its own order, as logparse and netviews read them from different
    /// topics): exactly one reorg, of the right depth, and one selfish-mining suspect exactly
    /// when the winning blocks arrived within the span, whichever source came first.
    #[test]
    fn the_same_reorg_from_three_sources_is_counted_once(
        depth in 1i64..5,
        quick in any::<bool>(),
        order in proptest::collection::vec(0u8..3, 150),
        cut in 0usize..150,
    ) {
        let top = 120;
        let wins = depth + 1;
        let gap = if quick { 200_000 } else { 60 * SEC };
        let mut log = main_chain(100, top);
        log.extend(reorg_events(top, depth, wins, false, gap));
        let mut zmq_events: Vec<NodeEvent> = (100..=top).map(|h| zmq(0, h, 'C', T0 + h * 10 * SEC)).collect();
        zmq_events.extend(zmq_reorg(top, depth, wins));
        let late = T0 + 9_000 * SEC;
        // Polled just after the switch, whose log lines start at (top + 1) × 10 s: any log line
        // 5 s later ends the result's grace, so in some orders getchaintips reports first.
        let polled = T0 + (top + 1) * 10 * SEC;
        let tips = vec![
            chain_tips(T0, (0, 100), &[]),
            chain_tips(polled, (1, top - depth + wins), &[(0, top, depth)]),
            chain_tips(late + SEC, (1, top - depth + wins), &[(0, top, depth)]),
        ];
        let mut sources = [log.into_iter(), zmq_events.into_iter(), tips.into_iter()];
        let mut events = Vec::new();
        for pick in order.iter().map(|o| *o as usize).chain((0..3).cycle().take(300)) {
            if let Some(e) = sources[pick].next() {
                events.push(e);
            }
        }
        prop_assert!(sources.iter_mut().all(|s| s.next().is_none()));
        // A checkpoint (the state through JSON) anywhere in the middle changes nothing.
        let cut = cut.min(events.len());
        let mut first = NodeChain::new("regtest");
        let mut found = run(&mut first, &events[..cut]);
        let mut second: NodeChain = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        found.extend(run(&mut second, &events[cut..]));
        found.push(second.idle(&NodeConfig::default(), "n0", late + 10 * SEC));
        let r = reorgs(&found);
        prop_assert_eq!(r.len(), 1, "{:?}", r);
        prop_assert_eq!((r[0].depth, r[0].old_tip.clone()), (depth, hash(0, top)));
        let suspects = found.iter().filter(|f| f.selfish.is_some()).count();
        prop_assert_eq!(suspects, usize::from(quick));
    }
}

#[test]
fn zmq_alone_reports_a_reorg_with_its_branches() {
    // The log stopped (or lags far behind) after the main chain: ZMQ tells the reorg, with the
    // heights the log gave.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events: Vec<NodeEvent> = (100..=110).map(|h| zmq(0, h, 'C', T0 + h * 10 * SEC)).collect();
    events.extend(zmq_reorg(110, 3, 4));
    let f = run(&mut c, &events);
    let r = reorgs(&f);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].source.as_str(), r[0].depth, r[0].fork_height), ("zmq", 3, 107));
    assert_eq!(r[0].fork_hash, Some(hash(0, 107)));
    assert_eq!(r[0].disconnected, (108..=110).map(|h| hash(0, h)).collect::<Vec<_>>());
    assert_eq!(r[0].connected, (108..=111).map(|h| hash(1, h)).collect::<Vec<_>>());
}

#[test]
fn getchaintips_alone_reports_a_new_fork_but_not_old_ones() {
    let mut c = NodeChain::new("regtest");
    // The first result is a baseline: its forks are history.
    let f = run(&mut c, &[chain_tips(T0, (0, 110), &[(5, 50, 2)])]);
    assert!(reorgs(&f).is_empty());
    let f = run(&mut c, &[chain_tips(T0 + SEC, (1, 112), &[(5, 50, 2), (0, 111, 2)])]);
    assert!(reorgs(&f).is_empty(), "held for the log or ZMQ to report it with its branches");
    let f = [c.idle(&NodeConfig::default(), "n0", T0 + 7 * SEC)];
    let r = reorgs(&f);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].source.as_str(), r[0].depth, r[0].fork_height), ("getchaintips", 2, 109));
    assert_eq!((r[0].old_tip.clone(), r[0].new_tip.clone()), (hash(0, 111), hash(1, 112)));
    // The same fork in the next result is no second reorg.
    let next = run(&mut c, &[chain_tips(T0 + 8 * SEC, (1, 113), &[(0, 111, 2)])]);
    assert!(reorgs(&next).is_empty());
    assert!(reorgs(&[c.idle(&NodeConfig::default(), "n0", T0 + 20 * SEC)]).is_empty());
}

#[test]
fn a_restart_told_by_the_log_and_by_zmq_resets_is_one_start() {
    let start = |stream: &str, at: i64| {
        let mut e = ev(at, EventBody::NodeStart(NodeStart { version: String::new() }));
        e.envelope.source.stream = stream.to_owned();
        e
    };
    // With a log: the log's start line tells each restart; a topic's reset, seen at its first
    // message after the restart (for blocks, maybe long after), never counts again.
    let mut c = NodeChain::new("regtest");
    let f = run(
        &mut c,
        &[
            start("zmq-reset:hashtx", T0), // the log lagging: ZMQ first, before the node has a log start
            start("log", T0 + 2 * SEC),
            start("zmq-reset:hashblock", T0 + 700 * SEC),
            start("log", T0 + 3600 * SEC),
            start("zmq-reset:hashtx", T0 + 3601 * SEC),
        ],
    );
    let started: Vec<bool> = f.iter().map(|f| f.started).collect();
    assert_eq!(started, [true, false, false, true, false]);
    // A ZMQ reset mid-reorg leaves the log's reorg alone.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = reorg_events(110, 2, 3, false, 60 * SEC);
    events.insert(4, start("zmq-reset:hashblock", T0 + 1111 * SEC));
    assert_eq!(reorgs(&run(&mut c, &events)).len(), 1);
    // Without a log: resets of different topics close together are one restart.
    let mut z = NodeChain::new("regtest");
    let f = run(
        &mut z,
        &[
            start("zmq-reset:hashtx", T0),
            start("zmq-reset:hashblock", T0 + 90 * SEC),
            start("zmq-reset:hashtx", T0 + 95 * SEC),
        ],
    );
    assert_eq!(f.iter().map(|f| f.started).collect::<Vec<_>>(), [true, false, true]);
}

#[test]
fn an_invalidateblock_call_in_the_log_marks_the_next_reasonless_invalid_block_as_the_operators() {
    let call = ev(T0, EventBody::RpcCall(RpcCall { method: "invalidateblock".to_owned() }));
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events = vec![call, invalid(Some(hash(0, 110)), Some(110), "", "InvalidChainFound", T0 + SEC)];
    events.push(tip(0, 109, T0 + 2 * SEC));
    let f = run(&mut c, &events);
    let marked: Vec<_> = f.iter().filter_map(|f| f.invalid.as_ref()).collect();
    assert_eq!(marked.len(), 1);
    assert!(marked[0].operator_marked, "{:?}", marked[0]);
    assert_eq!(marked[0].reason, "invalidateblock");
    // Long after the call, a reasonless one is no longer the operator's.
    let later = [invalid(Some(hash(7, 1)), None, "", "InvalidChainFound", T0 + 600 * SEC), tip(0, 110, T0 + 601 * SEC)];
    let f = run(&mut c, &later);
    let other = f.iter().find_map(|f| f.invalid.as_ref()).unwrap();
    assert!(!other.operator_marked && other.reason == "unknown", "{other:?}");
}

#[test]
fn invalidating_the_tip_and_reconsidering_it_is_no_reorg() {
    // Core logs UpdateTip down to the parent, then back up to the old tip; the node then goes on
    // mining (it is never quiet, so the reorg under way must end when the old tip is back).
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    let mut events =
        vec![tip(0, 109, T0 + 2000 * SEC), disconnected(0, 110, T0 + 2000 * SEC), tip(0, 110, T0 + 2001 * SEC)];
    events.extend((111..=150).map(|h| tip(0, h, T0 + (2001 + h) * SEC)));
    assert!(reorgs(&run(&mut c, &events)).is_empty());
}

#[test]
fn an_invalid_tip_in_getchaintips_waits_for_the_log_and_is_reported_once() {
    let invalid_tip = |at: i64, b: u8| {
        let mut e = chain_tips(at, (0, 110), &[]);
        if let EventBody::ChainTips(t) = &mut e.event {
            t.tips.push(ChainTipEntry { hash: hash(b, 111), height: 111, branchlen: 1, status: "invalid".to_owned() });
        }
        e
    };
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 110));
    // The first result is history: its invalid tip is not news.
    assert!(run(&mut c, &[invalid_tip(T0, 9)]).iter().all(|f| f.invalid.is_none()));
    // A new one the log explains within the grace: the log's report, with its reason, only.
    let logged = [
        invalid_tip(T0 + 2000 * SEC, 1),
        invalid(Some(hash(1, 111)), None, "bad-cb-amount", "ConnectTip", T0 + 2001 * SEC),
    ];
    let mut found = run(&mut c, &logged);
    found.push(c.idle(&NodeConfig::default(), "n0", T0 + 2100 * SEC));
    let reports: Vec<_> = found.iter().filter_map(|f| f.invalid.as_ref()).collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!((reports[0].reason.as_str(), reports[0].origin.as_str()), ("bad-cb-amount", "ConnectTip"));
    // One the log never explains: getchaintips' own report once the grace is over.
    let quiet = run(&mut c, &[invalid_tip(T0 + 3000 * SEC, 2)]);
    assert!(quiet.iter().all(|f| f.invalid.is_none()), "held");
    let f = c.idle(&NodeConfig::default(), "n0", T0 + 3010 * SEC);
    let r = f.invalid.unwrap();
    assert_eq!((r.hash, r.height, r.origin.as_str()), (Some(hash(2, 111)), Some(111), "getchaintips"));
    assert!(c.idle(&NodeConfig::default(), "n0", T0 + 3020 * SEC).invalid.is_none(), "once");
}

#[test]
fn a_walk_back_down_past_a_tried_branch_keeps_the_fork() {
    // A2 → A1 → P, up to B1, back to P, then up C1..C3: one reorg of depth 2 at P.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(90, 102));
    let at = T0 + 2000 * SEC;
    let events = [
        tip(0, 101, at),
        tip(0, 100, at),
        tip(1, 101, at),
        tip(0, 100, at),
        tip(2, 101, at),
        tip(2, 102, at),
        tip(2, 103, at),
    ];
    let f = run(&mut c, &events);
    let r = reorgs(&f);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].depth, r[0].fork_height), (2, 100));
    assert_eq!(r[0].connected, [hash(2, 101), hash(2, 102), hash(2, 103)]);
}

#[test]
fn a_node_starting_over_from_a_low_height_is_no_reorg() {
    // A wiped data directory (or a bogus height): the walk starts again instead of opening a
    // reorg that never ends.
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(800_000, 800_010));
    let f = run(&mut c, &(1..=300).map(|h| tip(3, h, T0 + (900_000 + h) * SEC)).collect::<Vec<_>>());
    assert!(reorgs(&f).is_empty());
    assert_eq!(c.tip().map(|t| t.height), Some(300));
    assert!(!c.has_pending());
}

#[test]
fn getchaintips_leaves_out_old_forks_descendants_of_a_reported_invalid_block_and_bad_entries() {
    let mut c = NodeChain::new("regtest");
    run(&mut c, &main_chain(100, 1100));
    let tips_at = |at: i64, extra: Vec<ChainTipEntry>| {
        let mut e = chain_tips(at, (0, 1100), &[]);
        if let EventBody::ChainTips(t) = &mut e.event {
            t.tips.extend(extra);
        }
        e
    };
    let entry = |b: u8, h: i64, len: i64, status: &str| ChainTipEntry {
        hash: hash(b, h),
        height: h,
        branchlen: len,
        status: status.to_owned(),
    };
    run(&mut c, &[tips_at(T0 + 20_000 * SEC, vec![])]); // the baseline
    // The operator invalidates 1099 (the log says so), and getchaintips lists its child 1100 as
    // the invalid tip; an old fork far below the tip shows up (a node listing hundreds); and an
    // entry with a branch longer than its height.
    let call = ev(T0 + 20_001 * SEC, EventBody::RpcCall(RpcCall { method: "invalidateblock".to_owned() }));
    let marked = invalid(Some(hash(0, 1099)), Some(1099), "", "InvalidChainFound", T0 + 20_001 * SEC);
    let later = vec![entry(0, 1100, 2, "invalid"), entry(6, 500, 1, "valid-fork"), entry(7, 1090, 5000, "valid-fork")];
    let mut f = run(&mut c, &[call, marked, tip(0, 1098, T0 + 20_001 * SEC), tips_at(T0 + 20_002 * SEC, later)]);
    f.push(c.idle(&NodeConfig::default(), "n0", T0 + 20_100 * SEC));
    f.push(c.idle(&NodeConfig::default(), "n0", T0 + 20_200 * SEC));
    let invalid: Vec<_> = f.iter().filter_map(|f| f.invalid.as_ref()).collect();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert!(invalid[0].operator_marked);
    assert!(reorgs(&f).is_empty(), "{:?}", reorgs(&f));
}
