//! The pure per-node chain logic: reorgs from every log pattern counted once, the selfish-mining
//! heuristic and its control, restarts mid-reorg, a node first seen mid-chain, invalid blocks
//! stale tips, and walks that go back or start over. Other sources: `chain_node_sources.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bmon_processors::chain::node::{NodeChain, NodeConfig};
use bmon_schemas::{BlockDisconnected, EventBody, NodeEvent, NodeStart};
use common::*;
use proptest::prelude::*;

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
