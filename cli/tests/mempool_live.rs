//! The mempool processor on a real 3-node Core bed: producers (log and RPC), logparse, netviews
//! and mempool, with the bed's Prometheus evaluating `prometheus/rules/mempool.rules.yml` over
//! mempool's real metrics:
//!
//! 1. core-2 runs with `-datacarrier=0`; core-0 sends five OP_RETURN transactions, which core-2
//!    refuses as they reach it from its peers: the rejections are counted per node and bounded
//!    reason, and, at least `spike_floor = 3` in one minute with no baseline, are a spike: the
//!    event and the alert; and each of them, accepted by core-0 and core-1, is a policy
//!    divergence naming core-2, its version and `datacarrier`: the event and the alert; and the
//!    five are missing from core-2's mempool (a mempool divergence: event, gauge, alert pending)
//!    and from its template (a template divergence: event and alert);
//! 2. core-1 restarted with `-persistmempool=0` while the others hold transactions: its empty
//!    mempool is reported after `empty_after_s = 3` (event, gauge, alert pending), and over when
//!    it holds a transaction again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_schemas::{MempoolDivergence, MempoolEmpty, MempoolRejectionSpike, PolicyDivergence, TemplateDivergence};
use bmon_testbed::{Implementation, TestBed, poll_until};
use common::*;

const EVENTS: &str = "bmon.events";
const WAIT: Duration = Duration::from_secs(60);

#[test]
fn rejections_spikes_and_an_empty_mempool_on_a_core_bed() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let producers = start_log_and_rpc_feeds(&bed, net, "", &brokers);
    let settings = "spike_floor = 3\nempty_after_s = 3\ndivergence_window_s = 15\nmempool_span_s = 5\n\
        mempool_min_txs = 3\nmempool_every_s = 2\ntemplate_skew_s = 10\ntemplate_min_txs = 3\n";
    let (_mempool, prom) = start_with_prometheus(&mut bed, "mempool", settings, &brokers);

    // 1. core-2 refuses OP_RETURN outputs (`-datacarrier=0`); core-0 sends five such
    // transactions, which reach core-2 through its peers and are refused there.
    bed.network_mut(net).nodes_mut()[2].restart_with(&["-datacarrier=0"]).unwrap();
    let n = bed.network(net);
    for other in [0, 1] {
        n.node(2).connect_now(&n.node(other).p2p_addr()).unwrap();
    }
    poll_until("core-2 back among its peers", WAIT, Duration::from_millis(200), || {
        (n.node(2).peer_count().ok()? >= 2).then_some(())
    })
    .unwrap();
    let op_returns: Vec<String> =
        (0..5).map(|i| n.node(0).send_op_return(&format!("626d6f6e{i:02x}")).unwrap()).collect();
    let refused = format!("sum(bmon_mempool_rejections_total{{node=\"{}\"}})", names[2]);
    let counted = poll_until("5 rejections counted", WAIT, Duration::from_millis(500), || {
        (metric(&prom, &refused)? >= 5.0).then_some(())
    });
    let node_log = std::fs::read_to_string(n.node(2).log_path()).unwrap_or_default();
    let rej: Vec<&str> = node_log.lines().filter(|l| l.contains("not accepted")).take(5).collect();
    assert!(
        counted.is_ok(),
        "rejections: {:?}; core-2's log: {rej:#?}",
        prom.query("bmon_mempool_rejections_total").ok()
    );
    let mut spikes: TopicReader<MempoolRejectionSpike> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(spikes.read_until(WAIT, |s| !s.is_empty()), "no spike event");
    let s = &spikes.facts[0];
    assert!(s.count >= 3 && s.baseline == 0.0 && s.node_id == names[2], "{s:?}");
    assert!(["datacarrier", "scriptpubkey"].contains(&s.reason.as_str()), "{s:?}");
    assert_eq!(wait_alert(&prom, "BmonMempoolRejectionSpike", &s.node_id), "firing");
    // The same refusals are policy divergences: core-0 and core-1 accepted each transaction.
    // (The window, 15 s, spans the relay's inventory delays; each verdict carries its node's
    // version, which the producer learns from getnetworkinfo, `[node] version` being unset.)
    let mut divergences: TopicReader<PolicyDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(divergences.read_until(WAIT, |d| d.len() >= 5), "policy divergences: {:?}", divergences.facts);
    for d in &divergences.facts {
        let rejected: Vec<(&str, &str)> =
            d.rejected_by.iter().map(|r| (r.node_id.as_str(), r.reason.as_str())).collect();
        assert_eq!(rejected, [(names[2].as_str(), "datacarrier")], "{d:?}");
        assert!(d.rejected_by[0].node_version.starts_with("Satoshi:"), "the learned version: {d:?}");
        let accepted: Vec<&str> = d.accepted_by.iter().map(|a| a.node_id.as_str()).collect();
        assert_eq!(accepted, [names[0].as_str(), names[1].as_str()], "{d:?}");
    }
    assert_eq!(wait_alert(&prom, "BmonMempoolPolicyDivergence", &names[2]), "firing");
    // ... and missing from core-2's mempool and from its template.
    let mut pools: TopicReader<MempoolDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    let lacks = |d: &MempoolDivergence| {
        d.node_id == names[2] && d.diverged && op_returns.iter().all(|t| d.missing_sample.contains(t))
    };
    assert!(pools.read_until(WAIT, |d| d.iter().any(lacks)), "mempool divergences: {:?}", pools.facts);
    let state = wait_alert(&prom, "BmonMempoolDivergence", &names[2]);
    assert!(state == "pending" || state == "firing", "{state}: its `for:` is 5 min");
    let mut templates: TopicReader<TemplateDivergence> = TopicReader::new(&brokers, EVENTS, 3);
    let left_out =
        |d: &TemplateDivergence| d.node_id == names[2] && op_returns.iter().all(|t| d.missing_sample.contains(t));
    assert!(templates.read_until(WAIT, |d| d.iter().any(left_out)), "template divergences: {:?}", templates.facts);
    assert_eq!(wait_alert(&prom, "BmonTemplateDivergence", &names[2]), "firing");

    // 2. An empty mempool while the others hold transactions.
    bed.network(net).node(0).send_tx().unwrap();
    let held = poll_until("core-0 and core-1 hold transactions", WAIT, Duration::from_millis(500), || {
        let n = bed.network(net);
        (n.node(0).mempool_size().ok()? > 0 && n.node(1).mempool_size().ok()? > 0).then_some(())
    });
    assert!(held.is_ok());
    let empty_node = names[1].clone();
    let restarted_at = now_us();
    bed.network_mut(net).nodes_mut()[1].restart_with(&["-persistmempool=0"]).unwrap();
    let mut empties: TopicReader<MempoolEmpty> = TopicReader::new(&brokers, EVENTS, 3);
    // Only this spell (a fresh bed's mempools start empty and fill, which is reported too).
    let entered =
        |e: &[MempoolEmpty]| e.iter().any(|x| x.node_id == empty_node && x.empty && x.since_us >= restarted_at);
    assert!(empties.read_until(WAIT, entered), "no empty event: {:?}", empties.facts);
    let e = empties.facts.iter().find(|x| x.node_id == empty_node && x.empty && x.since_us >= restarted_at).unwrap();
    assert!(e.others_max_size > 0 && e.at_us - e.since_us >= 3_000_000, "{e:?}");
    let gauge = format!("bmon_mempool_empty{{node=\"{empty_node}\"}}");
    let set = poll_until("the empty gauge", WAIT, Duration::from_millis(500), || {
        (metric(&prom, &gauge)? == 1.0).then_some(())
    });
    assert!(set.is_ok(), "gauge {:?}", metric(&prom, &gauge));
    let state = wait_alert(&prom, "BmonMempoolEmpty", &empty_node);
    assert!(state == "pending" || state == "firing", "{state}: its `for:` is 5 min");
    assert!(alert_active(&prom, "BmonMempoolEmpty", &names[0]).is_none(), "core-0 holds transactions");
    // It holds a transaction again: over.
    // (core-1 has no coins of its own, and core-0's spend unconfirmed outputs: confirm them.)
    let n = bed.network(net);
    n.node(1).connect_now(&n.node(0).p2p_addr()).unwrap();
    n.node(0).mine(1).unwrap();
    n.wait_synced().unwrap();
    let (tx, _) = n.node(0).conflicting_pair().unwrap();
    n.node(1).send_raw(&tx).unwrap();
    let this = |x: &&MempoolEmpty| x.node_id == empty_node && x.since_us >= restarted_at;
    let left = |e: &[MempoolEmpty]| e.iter().filter(this).any(|x| !x.empty);
    assert!(empties.read_until(WAIT, left), "no end of the empty spell: {:?}", empties.facts);
    assert_eq!(empties.facts.iter().filter(this).filter(|x| x.empty).count(), 1, "entered once");
    drop(producers);
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}
