//! Chain latency benchmark on the test bed. Prints a figure for BENCHMARKS.md.
//!
//! Three Core nodes, their producers (log poll 10 ms), logparse and chain on tansu. `ROUNDS`
//! times: core-2, cut off, mines 2 blocks while core-0 mines 1, then reconnects at once; core-0
//! and core-1 reorg onto core-2's branch. For every `chain_reorg` event: its record's broker
//! timestamp minus the node's log time of the line that completed the reorg (`detected_at_us`):
//! from the node writing the line to the event on the topic. p50, p99, max. The rounds start once
//! logparse and chain answer `/readyz` and chain has caught up with the bed's start-up backlog
//! (the times to both are printed too).
//!
//! Run: `cargo run --release -p bmon --example bench_chain_latency` (after `make tools`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/run_bmon.rs"]
mod run_bmon;
use std::process::Command;
use std::time::Duration;

use bmon_schemas::{ChainReorg, Codec, Record};
use bmon_testbed::{Implementation, TestBed, poll_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const ROUNDS: usize = 20;

fn main() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let ok = Command::new(run_bmon::bmon_bin()).args(["topology", "apply", "--brokers", &brokers]).status().unwrap();
    assert!(ok.success());
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let kafka = format!("[kafka]\nbrokers = \"{brokers}\"\nconsumer = {{ \"fetch.wait.max.ms\" = \"5\" }}\n");
    let mut running = Vec::new();
    for node in bed.network(net).nodes() {
        let cfg = format!(
            "[node]\nid = \"{}\"\nnetwork = \"regtest\"\nimplementation = \"core\"\n[log]\npath = \"{}\"\npoll_ms = 10\n\
             {kafka}[state]\ndir = \"{}\"\n[service]\nlisten = \"127.0.0.1:0\"\n",
            node.name(),
            node.log_path().display(),
            bed.dir().join(format!("state-{}", node.name())).display()
        );
        running.push(run_bmon::spawn(&bed, &format!("producer-{}", node.name()), &["produce"], &cfg));
    }
    let lp_port = bed.service_port(2);
    let lp = format!("{kafka}[service]\nlisten = \"127.0.0.1:{lp_port}\"\n");
    running.push(run_bmon::spawn(&bed, "logparse", &["process", "logparse"], &lp));
    let port = bed.service_port(3);
    let chain = format!(
        "{kafka}[service]\nlisten = \"127.0.0.1:{port}\"\n[chain]\nstate_dir = \"{}\"\n",
        bed.dir().join("chain-state").display()
    );
    running.push(run_bmon::spawn(&bed, "chain", &["process", "chain"], &chain));
    // Timed from when chain says it is ready (partitions assigned and restored), as an operator's
    // rollout waits for `/readyz`; how long that takes is printed apart.
    let started = std::time::Instant::now();
    for (what, p) in [("logparse", lp_port), ("chain", port)] {
        let ready = format!("http://127.0.0.1:{p}/readyz");
        poll_until(&format!("{what} ready"), Duration::from_secs(60), Duration::from_millis(50), || {
            (minreq::get(&ready).with_timeout(1).send().ok()?.status_code == 200).then_some(())
        })
        .unwrap();
    }
    println!("logparse and chain ready {:.1} s after chain's start", started.elapsed().as_secs_f64());
    // Then caught up with the bed's start-up backlog (thousands of log lines): a fresh block is
    // every node's tip in chain's metrics.
    let height = bed.network(net).node(0).mine(1).map(|_| bed.network(net).node(0).height().unwrap()).unwrap();
    bed.network(net).wait_synced().unwrap();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    poll_until("chain caught up", Duration::from_secs(120), Duration::from_millis(50), || {
        let body = minreq::get(&metrics).with_timeout(1).send().ok()?;
        let body = body.as_str().ok()?;
        let at_tip = body
            .lines()
            .filter(|l| l.starts_with("bmon_chain_tip_height{"))
            .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(height as f64))
            .count();
        (at_tip == 3).then_some(())
    })
    .unwrap();
    println!("caught up {:.1} s after chain's start", started.elapsed().as_secs_f64());

    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "bench").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("bmon.events", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let codec = Codec::default();
    let mut latencies_ms = Vec::new();
    let n = bed.network(net);
    for round in 0..ROUNDS {
        n.node(2).set_network_active(false).unwrap();
        poll_until("core-2 alone", Duration::from_secs(30), Duration::from_millis(20), || {
            (n.node(2).peer_count().ok()? == 0).then_some(())
        })
        .unwrap();
        n.node(0).mine(1).unwrap();
        n.node(2).mine(2).unwrap();
        n.node(2).set_network_active(true).unwrap();
        for other in [0, 1] {
            n.node(2).connect_now(&n.node(other).p2p_addr()).unwrap();
        }
        n.wait_synced().unwrap();
        let want = 2 * (round + 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while latencies_ms.len() < want && std::time::Instant::now() < deadline {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else { continue };
            let payload = m.payload().unwrap_or_default();
            if !codec.writer_version(payload).is_ok_and(|v| v.family == ChainReorg::FAMILY) {
                continue;
            }
            let r: ChainReorg = codec.decode(payload).unwrap();
            let at_ms = m.timestamp().to_millis().unwrap();
            latencies_ms.push(at_ms as f64 - r.detected_at_us as f64 / 1000.0);
        }
        assert!(latencies_ms.len() >= want, "round {round}: {} reorg events", latencies_ms.len());
    }
    let first_round = latencies_ms[..2].to_vec();
    latencies_ms.sort_by(f64::total_cmp);
    let top: Vec<String> = latencies_ms.iter().rev().take(5).map(|l| format!("{l:.0}")).collect();
    let q = |p: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "chain latency, log line to reorg event on the topic: {} reorgs, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies_ms.len(),
        q(0.5),
        q(0.99),
        latencies_ms[latencies_ms.len() - 1]
    );
    println!("the five slowest, ms: {}; the first round's: {first_round:.0?}", top.join(", "));
    drop(running);
}
