//! Ground truth on the test bed: three Core nodes, where `core-2` reaches the others only through
//! a TCP proxy that holds every byte for 300 ms in each direction. Producers, logparse and
//! propagation run as in production; a real Prometheus scrapes the propagation processor.
//!
//! - `core-2`'s header-stage lag matches the injected delay. A new block's header reaches a peer
//!   in one hop (a compact block or a `headers` announcement), so the expected lag is 300 ms plus
//!   loopback and message-handling time (a few ms). The first sighting is the miner's, whose
//!   header stage is implied at its own tip time, about a millisecond after it sent the block, so
//!   the measured lag may be slightly under 300 ms. Tolerance: the median over the blocks must lie
//!   in [280 ms, 450 ms].
//! - The directly connected `core-1` lags by less than 100 ms (median).
//! - Prometheus: the tip-stage spread histogram counts one sample per block (genesis included, as
//!   every node logs it at start-up), and each node's lag series exists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bmon_schemas::{PropagationSummary, Stage};
use bmon_testbed::{DelayProxy, Implementation, TestBed, poll_until};
use common::*;

const BLOCKS: usize = 8;
const DELAY: Duration = Duration::from_millis(300);

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn injected_delay_is_measured_and_exported() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_nodes(Implementation::Core, 3).unwrap();
    let proxy_port = bed.service_port(1);
    let metrics_port = bed.service_port(2);
    let target = bed.network(net).node(0).p2p_addr().parse().unwrap();
    let proxy = DelayProxy::start(proxy_port, target, DELAY).unwrap();
    bed.network(net).link(1, &bed.network(net).node(0).p2p_addr(), 1).unwrap();
    bed.network(net).link(2, &proxy.addr().to_string(), 1).unwrap();
    bed.network(net).mine_initial().unwrap();

    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let mut producers = Vec::new();
    for node in bed.network(net).nodes() {
        producers.push(start_producer(&bed, node.name(), "core", &node.log_path(), &brokers));
    }
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let state = bed.dir().join("propagation-state");
    let nodes: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\n",
        state.display(),
        nodes.join(", ")
    );
    let _propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, metrics_port);
    let rules = repo_root().join("prometheus/rules/propagation.rules.yml");
    let rule_files = if rules.exists() { vec![rules] } else { Vec::new() };
    bed.prometheus(&[("propagation".into(), format!("127.0.0.1:{metrics_port}"))], &rule_files).unwrap();

    let mut mined = Vec::new();
    for _ in 0..BLOCKS {
        mined.extend(bed.network(net).mine(0, 1).unwrap());
    }
    let height = bed.network(net).node(0).height().unwrap();

    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let header_summaries = |s: &[PropagationSummary]| -> BTreeMap<String, PropagationSummary> {
        s.iter().filter(|x| x.stage == Stage::Header && x.revision == 0).map(|x| (x.hash.clone(), x.clone())).collect()
    };
    assert!(
        reader.read_until(Duration::from_secs(120), |s| {
            let h = header_summaries(s);
            mined.iter().all(|b| h.get(b).is_some_and(|x| x.lags.len() == 3))
        }),
        "header summaries with all three nodes for every mined block"
    );
    // bmon.events is keyed by network and hash: summaries spread over its partitions, each in
    // the one its key hashes to (so a consumer of one block's events reads one partition). The
    // check needs every partition read to its end: the wait above can hold before the reader has
    // fetched one of them.
    reader.drain(Duration::from_secs(30));
    for ((s, key), p) in reader.facts.iter().zip(&reader.keys).zip(&reader.partitions) {
        assert_eq!(key, format!("{}/{}", s.network, s.hash).as_bytes(), "summary key");
        assert_eq!(*p, bmon_kafka::partition_for(key, 3), "summary of {} in partition {p}", s.hash);
    }
    let spread: std::collections::BTreeSet<i32> = reader.partitions.iter().copied().collect();
    assert_eq!(spread.len(), 3, "{} summaries over partitions {spread:?}", reader.facts.len());
    let h = header_summaries(&reader.facts);
    let lag_of = |node: &str| -> Vec<i64> {
        mined.iter().map(|b| h[b].lags.iter().find(|l| l.node_id == node).unwrap().lag_us).collect()
    };
    let (direct, delayed) = (lag_of(&names[1]), lag_of(&names[2]));
    eprintln!("header lags µs: {} direct {direct:?}; {} via proxy {delayed:?}", names[1], names[2]);
    let m = median(delayed);
    assert!((280_000..=450_000).contains(&m), "median lag through the 300 ms proxy was {m} µs");
    let d = median(direct);
    assert!(d < 100_000, "median lag of the direct peer was {d} µs");

    // Prometheus: one tip-stage spread sample per block (genesis to tip) and every node's lags.
    let tip_windows = height as f64 + 1.0;
    let prom = bed.prometheus(&[], &[]).unwrap();
    let count = poll_until(
        "Prometheus to scrape every tip window",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || {
            let r = prom.query("sum(bmon_propagation_spread_seconds_count{stage=\"tip\",object=\"block\"})").ok()?;
            let v: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
            (v >= tip_windows).then_some(v)
        },
    )
    .unwrap();
    assert_eq!(count, tip_windows, "spread histogram count equals the number of blocks");
    for node in &names {
        let r =
            prom.query(&format!("bmon_propagation_node_lag_seconds_count{{node=\"{node}\",stage=\"tip\"}}")).unwrap();
        assert!(!r.is_empty(), "no lag series for {node}");
    }
    drop(proxy);
}
