//! Chain benchmark. Prints a figure for BENCHMARKS.md.
//!
//! Throughput in process: 1M encoded node events of 8 nodes, as on mainnet mostly mempool accepts
//! (95 %), with headers, tips and connect-block timings for a block every 2 500 events and a
//! depth-1 reorg every 20 blocks, through the chain processor's `process` (decoding, per-node
//! logic, metrics, event encoding), with a RocksDB checkpoint every 50k records as the runtime
//! does about once a second, and the Prometheus recorder installed. Median of three runs.
//!
//! Run: `cargo run --release -p bmon --example bench_chain`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/feed.rs"]
mod feed;

use std::time::Duration;

use bmon_processors::chain::ChainConfig;
use bmon_processors::chain::wiring::{ChainProcessor, ChainTopics};
use bmon_processors::registry::builtin_topology;
use bmon_schemas::{ConnectBlockTimings, EventBody, HeaderSeen, MempoolAccept, NodeEvent, UpdateTip, samples};

const EVENTS: usize = 1_000_000;
const NODES: usize = 8;

fn event(node: usize, at: i64, event: EventBody) -> NodeEvent {
    let mut envelope = samples::envelope(&format!("node-{node}"), "log", at);
    envelope.network = "main".into();
    NodeEvent { envelope, index: 0, logged_at_us: Some(at), thread: None, category: None, event }
}

fn tip(hash: String, height: i64, at: i64) -> EventBody {
    EventBody::UpdateTip(UpdateTip {
        hash,
        height,
        log2_work: Some(95.0),
        tx_count: Some(1_000_000_000),
        block_time_us: Some(at),
        progress: Some(1.0),
        cache_mib: Some(300.0),
        cache_txo: Some(2_000_000),
        warning: None,
    })
}

/// The input, encoded, in order.
fn input() -> Vec<Vec<u8>> {
    let codec = bmon_schemas::Codec::default();
    let mut out = Vec::with_capacity(EVENTS);
    let (mut height, mut at) = (800_000i64, 1_800_000_000_000_000i64);
    let mut i = 0usize;
    while out.len() < EVENTS {
        i += 1;
        at += 100;
        let node = i % NODES;
        let body = if i.is_multiple_of(2_500) {
            height += 1;
            let reorg = height % 20 == 0;
            let mut block = Vec::new();
            for n in 0..NODES {
                let h = format!("{height:064x}");
                block.push(event(
                    n,
                    at,
                    EventBody::HeaderSeen(HeaderSeen {
                        hash: h.clone(),
                        height: Some(height),
                        peer: Some(1),
                        compact: true,
                    }),
                ));
                if reorg {
                    block.push(event(n, at + 1, tip(format!("{:064x}", height - 2), height - 2, at)));
                    block.push(event(n, at + 2, tip(format!("f{:063x}", height - 1), height - 1, at)));
                }
                block.push(event(
                    n,
                    at + 3,
                    EventBody::ConnectBlockTimings(ConnectBlockTimings {
                        stage: "Connect block".into(),
                        duration_us: 120_000,
                        count: None,
                    }),
                ));
                block.push(event(n, at + 4, tip(h, height, at)));
            }
            out.extend(block.iter().map(|e| codec.encode(e).unwrap()));
            continue;
        } else {
            EventBody::MempoolAccept(MempoolAccept {
                txid: format!("{i:064x}"),
                wtxid: Some(format!("{i:064x}")),
                peer: Some((i % 10) as i64),
                pool_size: Some(50_000),
                pool_bytes: Some(30_000_000),
            })
        };
        out.push(codec.encode(&event(node, at, body)).unwrap());
    }
    out
}

fn run(payloads: &[Vec<u8>]) -> (Duration, usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = ChainConfig { state_dir: dir.path().join("state"), ..ChainConfig::default() };
    let topics = ChainTopics::bind(&builtin_topology().unwrap(), "chain").unwrap();
    let mut p = ChainProcessor::open(&config, topics, Duration::from_secs(1800)).unwrap();
    let (outputs, took) = feed::feed(&mut p, "bmon.node.events", 0, payloads);
    (took, outputs)
}

fn main() {
    let _handle =
        bmon_service::install_recorder(&bmon_service::telemetry::buckets(&bmon_processors::registry::telemetry()))
            .unwrap();
    let payloads = input();
    let mut runs: Vec<(Duration, usize)> = (0..3).map(|_| run(&payloads)).collect();
    runs.sort();
    let (took, outputs) = runs[1];
    println!(
        "chain throughput, one core: {} node events ({} nodes, 95% mempool accepts), {outputs} chain events, median of 3: {:.2} s, {:.0} events/s",
        payloads.len(),
        NODES,
        took.as_secs_f64(),
        payloads.len() as f64 / took.as_secs_f64()
    );
}
