//! The pure per-node chain logic's other sources: ZMQ `sequence`, getchaintips (reorgs and
//! invalid tips, held for the log), restarts told by the log and by ZMQ resets, and operator
//! marks (`invalidateblock` in the log). The same reorg from three sources is counted once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bmon_processors::chain::node::{NodeChain, NodeConfig};
use bmon_schemas::{ChainTipEntry, EventBody, NodeEvent, NodeStart, RpcCall};
use common::*;
use proptest::prelude::*;

proptest! {
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
