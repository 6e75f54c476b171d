//! Mempool and template divergence on real beds: producers (log, RPC and, on BSV, ZMQ),
//! logparse, netviews and mempool, with the bed's Prometheus evaluating
//! `prometheus/rules/mempool.rules.yml` over mempool's real metrics.
//!
//! - `fee_floor_and_double_spend_on_a_core_bed`, 3 Core nodes:
//!   1. core-2 runs with `-blockmintxfee=0.01` (1 000 sat/vB, far above the wallet's fee):
//!      (the polling skew, `template_skew_s = 10`, spans Core's template cache: a template is
//!      rebuilt for new transactions only once it is 5 s old)
//!      five transactions core-0 sends are in core-2's mempool but not in its template, a
//!      template divergence (event and alert) while its mempool is no divergence at all;
//!   2. a double spend (same fee, so neither replaces the other) sent to core-0 and core-1 one
//!      right after the other, well inside the relay's inventory delay: each refuses the other's
//!      spend (its `mempool_reject` event), each refusal is counted with its reason, both are
//!      reported as conflicts, and neither counts as a missing or extra transaction.
//! - `bsv_rejections_by_zmq_and_divergence_by_polling`, 2 BSV nodes: a double spend refused by
//!   both, told by BSV's `invalidtx` ZMQ as well as the log and counted once; then bsv-1 cut off
//!   while bsv-0 takes three transactions: bsv-0's mempool diverges (extra), through the
//!   getrawmempool polling path (BSV has no `sequence` topic).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_processors::mempool::rejections::reason_label;
use bmon_schemas::{EventBody, MempoolConflict, MempoolDivergence, NodeEvent, TemplateDivergence};
use bmon_testbed::{Implementation, Managed, TestBed, poll_until};
use common::*;

const EVENTS: &str = "bmon.events";
const WAIT: Duration = Duration::from_secs(90);
const SETTINGS: &str =
    "mempool_span_s = 5\nmempool_min_txs = 3\nmempool_every_s = 2\ntemplate_skew_s = 10\ntemplate_min_txs = 3\n";

#[test]
fn fee_floor_and_double_spend_on_a_core_bed() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let producers = start_log_and_rpc_feeds(&bed, net, "mempool_full_every = 5\n", &brokers);
    let (_mempool, prom) = start_with_prometheus(&mut bed, "mempool", SETTINGS, &brokers);

    // 1. A fee floor: core-2 keeps the transactions but leaves them out of its template.
    bed.network_mut(net).nodes_mut()[2].restart_with(&["-blockmintxfee=0.01"]).unwrap();
    let n = bed.network(net);
    for other in [0, 1] {
        n.node(2).connect_now(&n.node(other).p2p_addr()).unwrap();
    }
    poll_until("core-2 back among its peers", WAIT, Duration::from_millis(200), || {
        (n.node(2).peer_count().ok()? >= 2).then_some(())
    })
    .unwrap();
    let sent: Vec<String> = (0..5).map(|_| n.node(0).send_tx().unwrap()).collect();
    poll_until("every node holds the five", WAIT, Duration::from_millis(500), || {
        let all = (0..3).all(|i| sent.iter().all(|t| n.node(i).in_mempool(t).unwrap_or(false)));
        all.then_some(())
    })
    .unwrap();
    let mut templates: TopicReader<TemplateDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    // Templates are compared once per node and previous block, when the producers' polls land:
    // the others' templates may then hold only some of the five (the rest still relaying). The
    // event must name only the five as missing, and core-2's template hold none of them.
    let of_core2 = |d: &TemplateDivergence| {
        d.node_id == names[2] && !d.missing_sample.is_empty() && d.missing_sample.iter().all(|t| sent.contains(t))
    };
    assert!(
        templates.read_until(WAIT, |d| d.iter().any(of_core2)),
        "no template divergence of core-2 naming the five: {:?}",
        templates.facts
    );
    let d = templates.facts.iter().find(|d| of_core2(d)).unwrap();
    assert!(d.missing >= 1 && d.missing <= 5 && d.extra == 0 && d.nodes == 3, "{d:?}");
    assert!(d.tx_count < d.median_tx_count && d.fees < d.median_fees, "{d:?}");
    assert!(d.coinbase_value < d.median_coinbase_value && d.weight < d.median_weight, "{d:?}");
    assert!(templates.facts.iter().all(|x| x.node_id == names[2]), "only core-2's: {:?}", templates.facts);
    assert!(sent.iter().all(|t| n.node(2).in_mempool(t).unwrap()), "core-2's mempool still holds them");
    assert_eq!(wait_alert(&prom, "BmonTemplateDivergence", &names[2]), "firing");
    // Its mempool is like the others': compared, and nothing missing.
    let pool = |what: &str, node: &str| metric(&prom, &format!("bmon_mempool_{what}{{node=\"{node}\"}}"));
    let compared = poll_until("core-2's mempool compared", WAIT, Duration::from_millis(500), || {
        (pool("similarity", &names[2])? == 1.0).then_some(())
    });
    assert!(compared.is_ok(), "similarity {:?}", pool("similarity", &names[2]));
    assert_eq!(pool("missing_txs", &names[2]), Some(0.0));

    // 2. A double spend, one spend to core-0 and the other to core-1.
    let (a, b) = n.node(0).double_spend_pair().unwrap();
    let ta = n.node(0).send_raw(&a).unwrap();
    let tb = n.node(1).send_raw(&b).unwrap();
    let mut conflicts: TopicReader<MempoolConflict> = TopicReader::new(&brokers, EVENTS, 3);
    let told = |c: &[MempoolConflict], tx: &str, holder: &str| {
        c.iter().any(|x| x.txid == tx && x.held_by.iter().any(|h| h == holder) && !x.refused_by.is_empty())
    };
    let both = |c: &[MempoolConflict]| told(c, &ta, &names[0]) && told(c, &tb, &names[1]);
    assert!(conflicts.read_until(WAIT, both), "conflicts: {:?}", conflicts.facts);
    assert_eq!(conflicts.facts.iter().filter(|c| c.txid == ta).count(), 1, "reported once");
    // Each node's refusal of the other spend, counted with its reason. (The conflict event lists
    // the refusals of its first `mempool_span_s`; a node whose inventory came later is counted
    // here all the same.)
    let mut events: TopicReader<NodeEvent> = TopicReader::new(&brokers, "bmon.node.events", 6);
    let refusal = |e: &[NodeEvent], node: &str, tx: &str| {
        e.iter().find_map(|x| match &x.event {
            EventBody::MempoolReject(r) if x.envelope.node_id == node && r.txid == tx => Some(r.reason.clone()),
            _ => None,
        })
    };
    let refused = |e: &[NodeEvent]| refusal(e, &names[1], &ta).is_some() && refusal(e, &names[0], &tb).is_some();
    assert!(events.read_until(WAIT, refused), "no refusals of the other spend");
    for (tx, refuser) in [(&ta, &names[1]), (&tb, &names[0])] {
        let reason = refusal(&events.facts, refuser, tx).unwrap();
        let q = format!("bmon_mempool_rejections_total{{node=\"{refuser}\",reason=\"{}\"}}", reason_label(&reason));
        let counted = poll_until("the refusal counted", WAIT, Duration::from_millis(500), || {
            (metric(&prom, &q)? >= 1.0).then_some(())
        });
        assert!(counted.is_ok(), "{q}: {:?}", prom.query("bmon_mempool_rejections_total").ok());
    }
    // Neither spend is a missing or extra transaction.
    let apart = poll_until("the conflicts counted apart", WAIT, Duration::from_millis(500), || {
        let ok = [&names[0], &names[1]].iter().all(|node| {
            pool("conflicting_txs", node) == Some(1.0)
                && pool("missing_txs", node) == Some(0.0)
                && pool("extra_txs", node) == Some(0.0)
        });
        ok.then_some(())
    });
    let gauges = |what: &str| prom.query(&format!("bmon_mempool_{what}")).ok();
    assert!(apart.is_ok(), "conflicting {:?}, missing {:?}", gauges("conflicting_txs"), gauges("missing_txs"));
    let mut pools: TopicReader<MempoolDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    pools.read_until(Duration::from_secs(2), |_| false);
    let named =
        |d: &MempoolDivergence| [&ta, &tb].iter().any(|t| d.missing_sample.contains(t) || d.extra_sample.contains(t));
    assert!(!pools.facts.iter().any(named), "a spend reported as a divergence: {:?}", pools.facts);
    drop(producers);
}

/// A producer (log, ZMQ and RPC) for each BSV node, and logparse and netviews.
fn bsv_feeds(bed: &TestBed, net: usize, brokers: &str) -> Vec<Managed> {
    let mut running: Vec<Managed> = bed
        .network(net)
        .nodes()
        .iter()
        .map(|node| {
            let sources = format!(
                "{}\nmempool_full_every = 5\n[zmq]\nendpoints = [\"{}\"]\n",
                log_and_rpc_sources(node, ""),
                node.zmq_endpoint().unwrap()
            );
            start_producer_with(bed, node.name(), "bsv", &sources, brokers)
        })
        .collect();
    running.push(start_processor(bed, "logparse", "0", "", brokers, 0));
    running.push(start_processor(bed, "netviews", "0", "", brokers, 0));
    running
}

#[test]
fn bsv_rejections_by_zmq_and_divergence_by_polling() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Bsv, 2).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let producers = bsv_feeds(&bed, net, &brokers);
    let (_mempool, prom) = start_with_prometheus(&mut bed, "mempool", SETTINGS, &brokers);
    let n = bed.network(net);

    // A double spend: each node refuses the other's spend, and says so on `invalidtx`.
    let (a, b) = n.node(0).double_spend_pair().unwrap();
    let ta = n.node(0).send_raw(&a).unwrap();
    let tb = n.node(1).send_raw(&b).unwrap();
    let mut events: TopicReader<NodeEvent> = TopicReader::new(&brokers, "bmon.node.events", 6);
    let by_zmq = |e: &[NodeEvent], node: &str, tx: &str| {
        e.iter().any(|x| {
            x.envelope.node_id == node
                && x.envelope.source.stream == "zmq:invalidtx"
                && matches!(&x.event, EventBody::MempoolReject(r) if r.txid == tx)
        })
    };
    let both = |e: &[NodeEvent]| by_zmq(e, &names[0], &tb) && by_zmq(e, &names[1], &ta);
    assert!(events.read_until(WAIT, both), "no invalidtx rejections among {} node events", events.facts.len());
    let logged = |node: &str, tx: &str| {
        events.facts.iter().any(|x| {
            x.envelope.node_id == node
                && x.envelope.source.stream == "log"
                && matches!(&x.event, EventBody::MempoolReject(r) if r.txid == tx)
        })
    };
    for (node, tx) in [(&names[0], &tb), (&names[1], &ta)] {
        let q = format!("sum(bmon_mempool_rejections_total{{node=\"{node}\"}})");
        let counted = poll_until("the refusal counted", WAIT, Duration::from_millis(500), || {
            (metric(&prom, &q)? >= 1.0).then_some(())
        });
        assert!(counted.is_ok(), "{q}");
        // Told by the log too (`-debug=mempoolrej`), it still counts once.
        if logged(node, tx) {
            assert_eq!(metric(&prom, &q), Some(1.0), "{node}: one refusal, two sources");
        }
    }
    let mut conflicts: TopicReader<MempoolConflict> = TopicReader::new(&brokers, EVENTS, 3);
    let told = |c: &[MempoolConflict]| [&ta, &tb].iter().all(|t| c.iter().any(|x| &&x.txid == t));
    assert!(conflicts.read_until(WAIT, told), "conflicts: {:?}", conflicts.facts);

    // bsv-1 cut off; bsv-0 alone holds three new transactions.
    n.node(1).set_network_active(false).unwrap();
    let alone: Vec<String> = (0..3).map(|_| n.node(0).send_tx().unwrap()).collect();
    let mut pools: TopicReader<MempoolDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    let extra = |d: &MempoolDivergence| {
        d.node_id == names[0] && d.diverged && d.extra >= 3 && alone.iter().all(|t| d.extra_sample.contains(t))
    };
    assert!(pools.read_until(WAIT, |d| d.iter().any(extra)), "divergences: {:?}", pools.facts);
    let d = pools.facts.iter().find(|d| extra(d)).unwrap();
    assert!(d.nodes == 2 && d.similarity < 1.0, "{d:?}");
    assert!(![&ta, &tb].iter().any(|t| d.extra_sample.contains(t)), "a spend counted as extra: {d:?}");
    let diverged = format!("bmon_mempool_diverged{{node=\"{}\"}}", names[0]);
    let set = poll_until("the diverged gauge", WAIT, Duration::from_millis(500), || {
        (metric(&prom, &diverged)? == 1.0).then_some(())
    });
    assert!(set.is_ok(), "{diverged}: {:?}", metric(&prom, &diverged));
    let state = wait_alert(&prom, "BmonMempoolDivergence", &names[0]);
    assert!(state == "pending" || state == "firing", "{state}: its `for:` is 5 min");
    drop(producers);
}
