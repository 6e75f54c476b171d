//! The chain processor on a real 3-node Core bed: producers (log and RPC), logparse, netviews
//! and chain, with the bed's Prometheus evaluating `prometheus/rules/chain.rules.yml` over
//! chain's real metrics. One scenario after another, each checked by its event on `bmon.events`
//! and its alert (firing, or pending where the rule has a `for:` longer than a test):
//!
//! 1. a withheld branch: core-2, cut off, mines 2 blocks within a second while core-0 mines 1; on
//!    reconnection core-0 and core-1 reorg (depth 1) and raise a selfish-mining suspect;
//! 2. the control: a race won at a normal pace (the winning blocks reach the others 6 s apart,
//!    with `selfish_span_s = 5`) is a reorg and no suspect; the two tips at one height meanwhile
//!    are a chain split (`split_after_s = 3`), over when the race is; the three nodes' times to
//!    connect the race's last block are compared, the slowest named;
//! 3. core-2 cut off while the others mine 3 blocks enters lagging; it then mines 4 of its own,
//!    and on reconnection the others reorg 3 deep and core-2 leaves lagging; the network's stale
//!    blocks are the 5 the reorgs so far left behind;
//! 4. a block paying one satoshi too much, sent with `submitblock`, is an invalid block
//!    (`bad-cb-amount`); core-0's tip marked with `invalidateblock` (and reconsidered) is an
//!    invalid block the operator marked, which the log shows with `-debug=rpc`;
//! 5. a gettxoutsetinfo fact with an inflated total, injected on the rpc topic, is inflation;
//!    320 real blocks, two halvings included, are checked without a false alarm;
//! 6. core-1 restarted while the others mine: reported as a start, and held back from the
//!    reorg, stale and lagging alerts while it catches up.
//!
//! And, each on a bed of its own: a chain mined under `setmocktime` two hours in the past is a
//! stale tip; and a BSV bed's reorg, invalid block and restart (`chain_events_on_a_bsv_bed`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_schemas::{
    BlockConnectComparison, ChainInvalidBlock, ChainReorg, ChainSplit, Codec, Envelope, Inflation, NodeImplementation,
    NodeLagging, RpcOk, RpcOutcome, RpcSnapshotFact, SelfishMiningSuspect, SourceSeq, StaleTip, ZmqFact, ZmqPayload,
};
use bmon_testbed::{Implementation, PromQuery, TestBed, poll_until};
use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const EVENTS: &str = "bmon.events";
const WAIT: Duration = Duration::from_secs(60);

/// Readers of each chain event kind on bmon.events.
struct Events {
    reorgs: TopicReader<ChainReorg>,
    selfish: TopicReader<SelfishMiningSuspect>,
    lagging: TopicReader<NodeLagging>,
    invalid: TopicReader<ChainInvalidBlock>,
    inflation: TopicReader<Inflation>,
    splits: TopicReader<ChainSplit>,
    connects: TopicReader<BlockConnectComparison>,
}

impl Events {
    fn new(brokers: &str) -> Events {
        Events {
            reorgs: TopicReader::new(brokers, EVENTS, 3),
            selfish: TopicReader::new(brokers, EVENTS, 3),
            lagging: TopicReader::new(brokers, EVENTS, 3),
            invalid: TopicReader::new(brokers, EVENTS, 3),
            inflation: TopicReader::new(brokers, EVENTS, 3),
            splits: TopicReader::new(brokers, EVENTS, 3),
            connects: TopicReader::new(brokers, EVENTS, 3),
        }
    }
}

/// Waits until chain's tip gauge of every node in `names` is at `height` or above.
fn wait_tips(prom: &PromQuery, names: &[String], height: u64) {
    for n in names {
        poll_until(&format!("{n}'s tip height"), WAIT, Duration::from_millis(500), || {
            (metric(prom, &format!("bmon_chain_tip_height{{node=\"{n}\"}}"))? >= height as f64).then_some(())
        })
        .unwrap();
    }
}

/// Cuts `i` off from its peers and waits until the others no longer count it.
fn cut_off(bed: &TestBed, net: usize, i: usize) {
    let n = bed.network(net);
    n.node(i).set_network_active(false).unwrap();
    poll_until("the cut-off node to have no peers", WAIT, Duration::from_millis(100), || {
        (n.node(i).peer_count().ok()? == 0).then_some(())
    })
    .unwrap();
}

/// Turns `i`'s network back on and connects it to every other node at once.
fn network_on(bed: &TestBed, net: usize, i: usize) {
    let n = bed.network(net);
    n.node(i).set_network_active(true).unwrap();
    for (j, other) in n.nodes().iter().enumerate() {
        if j != i {
            n.node(i).connect_now(&other.p2p_addr()).unwrap();
        }
    }
}

/// Reconnects `i` and waits until every node shares one tip.
fn reconnect(bed: &TestBed, net: usize, i: usize) -> String {
    network_on(bed, net, i);
    bed.network(net).wait_synced().unwrap()
}

/// Waits until nodes `among` (other than `miner`) have `miner`'s tip.
fn wait_for_tip(bed: &TestBed, net: usize, among: &[usize]) -> String {
    let n = bed.network(net);
    poll_until("the connected nodes to share one tip", WAIT, Duration::from_millis(100), || {
        let tips: Vec<String> = among.iter().filter_map(|i| n.node(*i).tip().ok()).collect();
        (tips.len() == among.len() && tips.windows(2).all(|w| w[0] == w[1])).then(|| tips[0].clone())
    })
    .unwrap()
}

#[test]
fn chain_events_and_alerts_on_a_core_bed() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let producers = start_log_and_rpc_feeds(&bed, net, "txoutset_interval_s = 1\n", &brokers);
    let settings = "selfish_span_s = 5\nsplit_after_s = 3\nconnect_window_s = 3\n";
    let (_chain, prom) = start_with_prometheus(&mut bed, "chain", settings, &brokers);
    let mut ev = Events::new(&brokers);
    // Every node's tip reaches chain (and Prometheus) before the scenarios start.
    wait_tips(&prom, &names, bed.network(net).node(0).height().unwrap());

    // 1. A withheld branch released at once.
    cut_off(&bed, net, 2);
    let honest = bed.network(net).node(0).mine(1).unwrap();
    wait_for_tip(&bed, net, &[0, 1]);
    let withheld = bed.network(net).node(2).mine(2).unwrap();
    assert_eq!(reconnect(&bed, net, 2), withheld[1], "the longer branch wins");
    let reorged = |r: &[ChainReorg], node: &str, tip: &str| r.iter().any(|x| x.node_id == node && x.old_tip == tip);
    assert!(
        ev.reorgs.read_until(WAIT, |r| reorged(r, &names[0], &honest[0]) && reorged(r, &names[1], &honest[0])),
        "reorg events for core-0 and core-1: {:?}",
        ev.reorgs.facts
    );
    for n in &names[..2] {
        let r = ev.reorgs.facts.iter().find(|r| &r.node_id == n).unwrap();
        assert_eq!((r.depth, r.disconnected.clone(), r.connected.clone()), (1, honest.clone(), withheld.clone()));
    }
    assert!(
        ev.selfish.read_until(WAIT, |s| names[..2].iter().all(|n| s.iter().any(|x| &x.node_id == n))),
        "selfish-mining suspects: {:?}",
        ev.selfish.facts
    );
    assert!(ev.selfish.facts.iter().all(|s| s.branch_length == 2 && s.winning == withheld));
    for n in &names[..2] {
        assert_eq!(wait_alert(&prom, "BmonChainReorg", n), "firing");
        assert_eq!(wait_alert(&prom, "BmonChainSelfishMiningSuspect", n), "firing");
    }
    assert!(alert_active(&prom, "BmonChainDeepReorg", &names[0]).is_none(), "depth 1 is not deep");

    // 2. The control: a race won at a normal pace.
    cut_off(&bed, net, 2);
    let ours = bed.network(net).node(0).mine(1).unwrap();
    wait_for_tip(&bed, net, &[0, 1]);
    let theirs = bed.network(net).node(2).mine(1).unwrap();
    network_on(&bed, net, 2);
    // Both branches are one block long: each side keeps its own, the others have core-2's header.
    poll_until("core-2 to reconnect", WAIT, Duration::from_millis(100), || {
        (bed.network(net).node(2).peer_count().ok()? >= 2).then_some(())
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(6)); // the normal pace being simulated: longer than the 5 s span
    let split_height = bed.network(net).node(0).height().unwrap() as i64;
    assert!(
        ev.splits.read_until(WAIT, |s| s.iter().any(|x| x.split && x.height == split_height)),
        "the race's two tips at {split_height} are a split: {:?}",
        ev.splits.facts
    );
    let split = ev.splits.facts.iter().find(|x| x.split).unwrap();
    let tips: std::collections::BTreeSet<&str> = split.tips.iter().map(|t| t.hash.as_str()).collect();
    assert_eq!(tips, [ours[0].as_str(), theirs[0].as_str()].into_iter().collect(), "{split:?}");
    assert_eq!(wait_alert(&prom, "BmonChainSplit", "regtest"), "firing");
    let next = bed.network(net).node(2).mine(1).unwrap();
    assert_eq!(bed.network(net).wait_synced().unwrap(), next[0]);
    assert!(
        ev.reorgs.read_until(WAIT, |r| names[..2].iter().all(|n| reorged(r, n, &ours[0]))),
        "the race's reorgs: {:?}",
        ev.reorgs.facts
    );
    assert!(ev.splits.read_until(WAIT, |s| s.iter().any(|x| !x.split)), "the split ends with the race");
    let race: Vec<&ChainReorg> = ev.reorgs.facts.iter().filter(|r| r.old_tip == ours[0]).collect();
    assert!(race.iter().all(|r| r.depth == 1 && r.connected == [theirs[0].clone(), next[0].clone()]), "{race:?}");
    ev.selfish.read_until(Duration::from_secs(3), |_| false);
    assert_eq!(ev.selfish.facts.len(), 2, "no suspect for a race won at a normal pace: {:?}", ev.selfish.facts);
    // Every node connected the race's last block: their times compared, the slowest named.
    let compared = |c: &[BlockConnectComparison]| c.iter().find(|x| x.hash == next[0]).cloned();
    assert!(ev.connects.read_until(WAIT, |c| compared(c).is_some()), "no comparison: {:?}", ev.connects.facts);
    let cmp = compared(&ev.connects.facts).unwrap();
    let nodes: std::collections::BTreeSet<&str> = cmp.nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(nodes, names.iter().map(String::as_str).collect(), "{cmp:?}");
    assert_eq!((cmp.slowest_node.as_str(), cmp.ratio), (cmp.nodes[0].node_id.as_str(), cmp.nodes[0].ratio));
    assert!(cmp.ratio >= 1.0 && cmp.nodes.windows(2).all(|w| w[0].connect_us >= w[1].connect_us), "{cmp:?}");
    assert_eq!(ev.connects.facts.iter().filter(|x| x.hash == next[0]).count(), 1, "one comparison per block");

    // 3. Lagging, then a 3-deep reorg.
    cut_off(&bed, net, 2);
    let mut main = Vec::new();
    for _ in 0..3 {
        main.extend(bed.network(net).node(0).mine(1).unwrap());
    }
    wait_for_tip(&bed, net, &[0, 1]);
    assert!(
        ev.lagging.read_until(WAIT, |l| l.iter().any(|x| x.node_id == names[2] && x.lagging)),
        "core-2 enters lagging: {:?}",
        ev.lagging.facts
    );
    let entered = ev.lagging.facts.iter().find(|x| x.node_id == names[2] && x.lagging).unwrap();
    assert!(entered.blocks_behind >= 3, "{entered:?}");
    let side = bed.network(net).node(2).mine(4).unwrap();
    assert_eq!(reconnect(&bed, net, 2), side[3]);
    assert!(
        ev.reorgs.read_until(WAIT, |r| names[..2].iter().all(|n| reorged(r, n, &main[2]))),
        "3-deep reorgs: {:?}",
        ev.reorgs.facts
    );
    for r in ev.reorgs.facts.iter().filter(|r| r.old_tip == main[2]) {
        assert_eq!((r.depth, &r.disconnected, r.connected.len()), (3, &main, 4), "{r:?}");
    }
    assert!(
        ev.lagging.read_until(WAIT, |l| l.iter().any(|x| x.node_id == names[2] && !x.lagging)),
        "core-2 leaves lagging: {:?}",
        ev.lagging.facts
    );
    assert_eq!(wait_alert(&prom, "BmonChainDeepReorg", &names[0]), "firing");
    // Stale blocks so far, from core-0's and core-1's getchaintips (the same forks, counted once):
    // the honest block, the race's loser and the 3 blocks of the main branch.
    let stale = "bmon_chain_stale_blocks{network=\"regtest\",window=\"1008\"}";
    let counted =
        poll_until("5 stale blocks", WAIT, Duration::from_millis(500), || (metric(&prom, stale)? == 5.0).then_some(()));
    assert!(counted.is_ok(), "stale blocks: {:?}", metric(&prom, stale));

    // 4. An invalid block.
    let (bad, answer) = bed.network(net).node(0).submit_overpaying_block().unwrap();
    assert_eq!(answer, "bad-cb-amount", "submitblock's answer");
    // core-0 rejects it, and so may its peers: a compact block is relayed before it is validated.
    let of =
        |i: &[ChainInvalidBlock]| i.iter().find(|x| x.hash.as_deref() == Some(&bad) && x.node_id == names[0]).cloned();
    assert!(ev.invalid.read_until(WAIT, |i| of(i).is_some()), "invalid block event: {:?}", ev.invalid.facts);
    let inv = of(&ev.invalid.facts).unwrap();
    assert_eq!(inv.reason, "bad-cb-amount", "{inv:?}");
    assert!(ev.invalid.facts.iter().all(|x| x.reason == "bad-cb-amount"), "{:?}", ev.invalid.facts);
    assert_eq!(wait_alert(&prom, "BmonChainInvalidBlock", &names[0]), "firing");
    // The operator marks core-0's tip invalid, then takes it back: the log shows the call
    // (-debug=rpc), so the event says the operator marked it.
    let node0 = bed.network(net).node(0);
    let tip = node0.tip().unwrap();
    node0.call::<serde_json::Value>("invalidateblock", &[tip.clone().into()]).unwrap();
    let marked = |i: &[ChainInvalidBlock]| i.iter().find(|x| x.hash.as_deref() == Some(&tip)).cloned();
    assert!(ev.invalid.read_until(WAIT, |i| marked(i).is_some()), "invalidateblock: {:?}", ev.invalid.facts);
    let m = marked(&ev.invalid.facts).unwrap();
    assert!(m.operator_marked && m.reason == "invalidateblock" && m.node_id == names[0], "{m:?}");
    node0.call::<serde_json::Value>("reconsiderblock", &[tip.clone().into()]).unwrap();
    assert_eq!(bed.network(net).wait_synced().unwrap(), tip);

    // 5. No false alarm over 320 blocks (halvings at 150 and 300), checked as the snapshots come.
    let checks = || metric(&prom, "sum(bmon_chain_supply_checks_total{result=\"ok\"})").unwrap_or(0.0);
    for _ in 0..8 {
        bed.network(net).mine(0, 40).unwrap();
        let before = checks();
        poll_until("a UTXO-set check after the blocks", WAIT, Duration::from_millis(500), || {
            (checks() > before).then_some(())
        })
        .unwrap();
    }
    assert!(bed.network(net).node(0).height().unwrap() > 300);
    assert!(
        !ev.inflation.read_until(Duration::from_secs(2), |f| !f.is_empty()),
        "false alarm: {:?}",
        ev.inflation.facts
    );
    // The detection path: an inflated total injected as a node's gettxoutsetinfo.
    let height = bed.network(net).node(0).height().unwrap();
    inject_txoutset(&brokers, "inflator", height, 21_000_000.0);
    assert!(ev.inflation.read_until(WAIT, |f| f.iter().any(|x| x.node_id == "inflator")), "no inflation event");
    let inf = &ev.inflation.facts[0];
    assert_eq!((inf.check.as_str(), inf.to_height), ("supply", height as i64), "{inf:?}");
    assert!(inf.excess_sat > 0);
    assert_eq!(wait_alert(&prom, "BmonChainInflation", "inflator"), "firing");

    // 6. A restart while the others mine: core-1 comes back without peers, 3 blocks behind.
    let restarted = names[1].clone();
    bed.network_mut(net).nodes_mut()[1].restart().unwrap();
    bed.network(net).node(1).set_network_active(false).unwrap();
    let reorgs_before = ev.reorgs.facts.len();
    bed.network(net).node(0).mine(3).unwrap();
    let held = format!("bmon:chain_catching_up{{node=\"{restarted}\"}}");
    let seen = poll_until("core-1 held back as catching up", WAIT, Duration::from_millis(500), || {
        (metric(&prom, &held)? == 1.0).then_some(())
    });
    let show = |m: &str| metric(&prom, &format!("{m}{{node=\"{restarted}\"}}"));
    assert!(
        seen.is_ok(),
        "not held back: start {:?}, behind {:?}, time {:?}",
        show("bmon_chain_node_start_timestamp_seconds"),
        show("bmon_chain_blocks_behind"),
        metric(&prom, "time()")
    );
    assert!(
        metric(&prom, &format!("bmon_chain_node_starts_total{{node=\"{restarted}\"}}")).is_some_and(|n| n >= 1.0),
        "the restart is counted"
    );
    assert!(
        metric(&prom, &format!("bmon_chain_blocks_behind{{node=\"{restarted}\"}}")).is_some_and(|b| b >= 2.0),
        "it is behind"
    );
    network_on(&bed, net, 1);
    bed.network(net).wait_synced().unwrap();
    poll_until("core-1 caught up", WAIT, Duration::from_millis(500), || metric(&prom, &held).is_none().then_some(()))
        .unwrap();
    ev.reorgs.read_until(Duration::from_secs(3), |_| false);
    let after: Vec<&ChainReorg> = ev.reorgs.facts[reorgs_before..].iter().collect();
    assert!(after.is_empty(), "a restart and catch-up is no reorg: {after:?}");
    for alert in ["BmonChainStaleTip", "BmonChainNodeBehind"] {
        assert_eq!(alert_active(&prom, alert, &restarted), None, "{alert} for the restarted node");
    }
    drop(producers);
}

/// A chain mined under `setmocktime` two hours in the past: its tip is stale when it arrives
/// (Core logs the real time, with the mock time beside it, which logparse skips), so the event
/// comes and the stale-tip alert is pending (its `for:` is 5 min) in the bed's Prometheus.
#[test]
fn a_tip_mined_two_hours_in_the_past_is_stale() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_nodes(Implementation::Core, 1).unwrap();
    let node = bed.network(net).node(0);
    let past = now_us() / 1_000_000 - 2 * 3600;
    node.call::<serde_json::Value>("setmocktime", &[past.into()]).unwrap();
    let sources = log_and_rpc_sources(node, "");
    let _producer = start_producer_with(&bed, node.name(), "core", &sources, &brokers);
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let (_chain, prom) = start_with_prometheus(&mut bed, "chain", "", &brokers);
    let node = bed.network(net).node(0);
    let mined = node.mine(3).unwrap();
    let mut stale: TopicReader<StaleTip> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(stale.read_until(WAIT, |s| s.iter().any(|x| x.hash == mined[2])), "stale tip: {:?}", stale.facts);
    let s = stale.facts.iter().find(|x| x.hash == mined[2]).unwrap();
    assert_eq!((s.node_id.as_str(), s.height), (node.name(), 3), "{s:?}");
    assert!((2 * 3600 - 60..2 * 3600 + 60).contains(&(s.age_us / 1_000_000)), "two hours old: {s:?}");
    assert_eq!(stale.facts.iter().filter(|x| x.hash == mined[2]).count(), 1, "once: {:?}", stale.facts);
    let state = wait_alert(&prom, "BmonChainStaleTip", node.name());
    assert!(state == "pending" || state == "firing", "{state}");
}

/// The chain processor on a 2-node BSV bed (producers with log and ZMQ; BSV has no `sequence`
/// topic, so its reorgs come from the log's rollback and UpdateTip lines):
/// 1. bsv-1, cut off, mines 2 blocks while bsv-0 mines 1: on reconnection bsv-0 reorgs, depth 1;
/// 2. a block paying one satoshi too much, crafted from BSV's getblocktemplate and sent with
///    `submitblock`, is an invalid block (`bad-cb-amount`);
/// 3. bsv-0 restarted: its start line and its ZMQ topics' sequence resets are one start.
///
/// Each with its event and its alert in the bed's Prometheus.
#[test]
fn chain_events_on_a_bsv_bed() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Bsv, 2).unwrap(); // BSV gives no template without a peer
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let mut producers = Vec::new();
    for node in bed.network(net).nodes() {
        let endpoint = node.zmq_endpoint().unwrap();
        let sources = format!(
            "[log]\npath = \"{}\"\npoll_ms = 50\n[zmq]\nendpoints = [\"{endpoint}\"]\ntopics = [\"hashblock\", \"hashtx\"]\n",
            node.log_path().display()
        );
        producers.push(start_producer_with(&bed, node.name(), "bsv", &sources, &brokers));
    }
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let (_chain, prom) = start_with_prometheus(&mut bed, "chain", "", &brokers);
    let mut ev = Events::new(&brokers);
    wait_tips(&prom, &names, bed.network(net).node(0).height().unwrap());

    // 1. A reorg.
    cut_off(&bed, net, 1);
    let lost = bed.network(net).node(0).mine(1).unwrap();
    let won = bed.network(net).node(1).mine(2).unwrap();
    assert_eq!(reconnect(&bed, net, 1), won[1]);
    let of = |r: &[ChainReorg]| r.iter().filter(|x| x.node_id == names[0]).cloned().collect::<Vec<_>>();
    assert!(ev.reorgs.read_until(WAIT, |r| !of(r).is_empty()), "bsv-0's reorg: {:?}", ev.reorgs.facts);
    let r = &of(&ev.reorgs.facts)[0];
    assert_eq!((r.depth, &r.old_tip, &r.disconnected, &r.connected), (1, &lost[0], &lost, &won), "{r:?}");
    assert_eq!(wait_alert(&prom, "BmonChainReorg", &names[0]), "firing");

    // 2. An invalid block.
    let node = bed.network(net).node(0);
    let (bad, answer) = node.submit_overpaying_template_block().unwrap();
    assert!(answer.as_str().is_some_and(|a| a.contains("bad-cb-amount")), "submitblock's answer: {answer}");
    let found = |i: &[ChainInvalidBlock]| i.iter().find(|x| x.hash.as_deref() == Some(&bad)).cloned();
    assert!(ev.invalid.read_until(WAIT, |i| found(i).is_some()), "invalid block event: {:?}", ev.invalid.facts);
    let inv = found(&ev.invalid.facts).unwrap();
    assert_eq!((inv.node_id.as_str(), inv.reason.as_str()), (node.name(), "bad-cb-amount"), "{inv:?}");
    assert_eq!(wait_alert(&prom, "BmonChainInvalidBlock", node.name()), "firing");

    // 3. A restart, told by the log and by each ZMQ topic's sequence reset: one start.
    let starts = format!("bmon_chain_node_starts_total{{node=\"{}\"}}", names[0]);
    let before = metric(&prom, &starts).unwrap_or(0.0);
    bed.network_mut(net).nodes_mut()[0].restart().unwrap();
    bed.network(net).node(0).connect_now(&bed.network(net).node(1).p2p_addr()).unwrap();
    let mut zmq: TopicReader<ZmqFact> = TopicReader::new(&brokers, "bmon.node.zmq", 6);
    let reset = |z: &[ZmqFact]| {
        z.iter().any(|f| f.envelope.node_id == names[0] && matches!(f.payload, ZmqPayload::SequenceReset(_)))
    };
    // Blocks after the restart make its ZMQ topics publish again, from sequence zero.
    let seen = poll_until("a ZMQ sequence reset of bsv-0", WAIT, Duration::from_millis(500), || {
        bed.network(net).node(1).mine(1).ok()?;
        zmq.read_until(Duration::from_millis(500), reset).then_some(())
    });
    assert!(seen.is_ok(), "no reset among {} ZMQ facts", zmq.facts.len());
    let counted = poll_until("the restart counted", WAIT, Duration::from_millis(500), || {
        (metric(&prom, &starts)? >= before + 1.0).then_some(())
    });
    assert!(counted.is_ok(), "starts {:?}, before {before}", metric(&prom, &starts));
    // Every stream has told of it by now (the reset is on the topic); none counts again.
    ev.reorgs.read_until(Duration::from_secs(3), |_| false);
    assert_eq!(metric(&prom, &starts), Some(before + 1.0), "one restart, one start");
    drop(producers);
}

/// Publishes a gettxoutsetinfo snapshot of node `node` (regtest, Core) claiming `total` coins at
/// `height` to the rpc topic, as a producer would.
fn inject_txoutset(brokers: &str, node: &str, height: u64, total: f64) {
    let fact = RpcSnapshotFact {
        envelope: Envelope {
            node_id: node.to_owned(),
            network: "regtest".to_owned(),
            implementation: NodeImplementation::Core,
            node_version: String::new(),
            received_at_us: now_us(),
            source: SourceSeq { stream: "rpc:gettxoutsetinfo".into(), epoch: "injected".into(), offset: 0 },
        },
        method: "gettxoutsetinfo".to_owned(),
        params: r#"["none",null,false]"#.to_owned(),
        duration_us: 1,
        outcome: RpcOutcome::Ok(RpcOk { json: format!(r#"{{"height": {height}, "total_amount": {total:.8}}}"#) }),
    };
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let payload = Codec::default().encode(&fact).unwrap();
    producer.send(BaseRecord::to("bmon.node.rpc").key(node).payload(&payload)).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}
