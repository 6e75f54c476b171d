//! Mempool benchmark at mainnet scale. Prints the figures for BENCHMARKS.md.
//!
//! Two simulated hours; the figures are the second's (steady state), and the first's time, which
//! includes writing every transaction's row once, is printed beside them.
//!
//! A synthetic network of 10 nodes, each holding a mempool of 300 000 transactions, with 7 new
//! transactions a second (node k hears each 0.3·k s after node 0) and a block every 10 minutes
//! confirming the oldest 4 200. Each node is polled every 10 s (staggered): its txid list as the
//! producer publishes it (deltas, a full snapshot in chunks of at most 1 MB every 90 rounds, the default),
//! getmempoolinfo, and a 3 000-transaction template. One simulated hour goes through the mempool
//! processor's `process` in process, with a RocksDB checkpoint every simulated second as the
//! runtime does each second, and the Prometheus recorder installed.
//!
//! Figures:
//! - the processor's time per simulated hour, summed over its `process` and `checkpoint` calls
//!   (wall time on one thread, so an upper bound of its CPU), as a share of one core;
//! - the peak RSS of the process (the generator keeps only the shared pool, a few MB);
//! - the largest fact the producer's encoder makes of a 300 000-transaction mempool, and of a
//!   block's delta, and the template's size.
//!
//! Run: `cargo run --release -p bmon --example bench_mempool`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bmon_processors::mempool::MempoolConfig;
use bmon_processors::mempool::wiring::{MempoolProcessor, MempoolTopics};
use bmon_processors::registry::builtin_topology;
use bmon_processors::runtime::{Input, Processor};
use bmon_producer::rpc::mempool::MempoolEncoder;
use bmon_schemas::{Codec, NodeView, samples};
use serde_json::json;

const NODES: usize = 10;
const POOL: u64 = 300_000;
const TX_PER_S: u64 = 7;
const BLOCK_S: i64 = 600;
const POLL_S: i64 = 10;
const FULL_EVERY: i64 = 90;
const TEMPLATE_TXS: usize = 3_000;
const HOUR_S: i64 = 3_600;
const SEC: i64 = 1_000_000;
/// Txids per full-snapshot chunk: 67 bytes each in JSON, under 1 MB.
const CHUNK: usize = 14_000;
const TOPIC: &str = "bmon.network.views";

fn txid(i: u64) -> String {
    format!("{i:064x}")
}

/// The network's pool: (tx index, when node 0 heard it, µs), oldest first.
struct Pool {
    txs: VecDeque<(u64, i64)>,
    next: u64,
}

impl Pool {
    /// When node `k` holds a transaction node 0 heard at `at`.
    fn heard(k: usize, at: i64) -> i64 {
        at + k as i64 * 300_000
    }

    fn held_by(&self, k: usize, now: i64) -> impl Iterator<Item = u64> + '_ {
        self.txs.iter().filter(move |(_, at)| Pool::heard(k, *at) <= now).map(|(i, _)| *i)
    }
}

/// One node's feed state: what it last published, as the range of the pool it held.
struct Feed {
    seq: i64,
    round: i64,
    /// The oldest and next tx index it held at its last poll.
    held: Option<(u64, u64)>,
}

struct Bench {
    codec: Codec,
    p: MempoolProcessor,
    offset: i64,
    busy: Duration,
    inputs: u64,
    /// Time by input method, and in checkpoints.
    by: std::collections::BTreeMap<String, Duration>,
}

impl Bench {
    fn send(&mut self, node: usize, method: &str, offset: i64, at: i64, view_json: String) {
        let mut envelope = samples::envelope(&format!("node-{node}"), &format!("rpc:{method}"), offset);
        envelope.network = "main".into();
        envelope.received_at_us = at;
        envelope.source.epoch = format!("session-{node}");
        let payload = self.codec.encode(&NodeView { envelope, method: method.into(), view_json }).unwrap();
        let mut out = Vec::new();
        let input = Input {
            topic: TOPIC,
            partition: 0,
            offset: self.offset,
            key: Some(b"main"),
            payload: &payload,
            timestamp_ms: None,
            replay: false,
            replay_id: None,
        };
        self.offset += 1;
        self.inputs += 1;
        let t = Instant::now();
        self.p.process(&input, &mut out).unwrap();
        self.busy += t.elapsed();
        *self.by.entry(method.to_owned()).or_default() += t.elapsed();
    }

    fn checkpoint(&mut self) {
        let t = Instant::now();
        self.p.checkpoint(&[(TOPIC.to_owned(), 0, self.offset)]);
        self.busy += t.elapsed();
        *self.by.entry("checkpoint".to_owned()).or_default() += t.elapsed();
    }
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The largest facts the producer's encoder makes: a full snapshot of `POOL` txids, a block's
/// delta, and a `TEMPLATE_TXS` template without raw data as a node sends it (witness hash,
/// dependencies and sigops kept: the producer strips only `data`).
fn largest_facts() -> (usize, usize, usize, usize) {
    let mut enc = MempoolEncoder::new(FULL_EVERY as u32, 1_000_000);
    let list: Vec<String> = (0..POOL).map(txid).collect();
    let full = enc.encode(&json!(list)).unwrap();
    let after: Vec<String> = (4_200..POOL + 70).map(txid).collect();
    let delta = enc.encode(&json!(after)).unwrap();
    let txs: Vec<_> = (0..TEMPLATE_TXS as u64)
        .map(|i| json!({ "txid": txid(i), "hash": txid(i), "fee": 2_000, "weight": 900, "depends": [], "sigops": 4 }))
        .collect();
    let template =
        json!({ "previousblockhash": txid(0), "height": 900_000, "coinbasevalue": 318_500_000, "transactions": txs })
            .to_string();
    (full.iter().map(|(_, f)| f.len()).max().unwrap(), full.len(), delta[0].1.len(), template.len())
}

fn template_json(block: i64, txs: Vec<u64>) -> String {
    // The view netviews publishes: txid, fee, weight and size per transaction.
    let transactions: Vec<_> =
        txs.iter().map(|i| json!({ "txid": txid(*i), "fee": 2_000, "weight": 900, "size": 225 })).collect();
    json!({ "previousblockhash": format!("{block:064x}"), "height": 900_000 + block, "coinbasevalue": 312_500_000 + 2_000 * txs.len() as i64, "transactions": transactions }).to_string()
}

fn main() {
    let _handle =
        bmon_service::install_recorder(&bmon_service::telemetry::buckets(&bmon_processors::registry::telemetry()))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = MempoolConfig { state_dir: dir.path().join("state"), ..MempoolConfig::default() };
    let topics = MempoolTopics::bind(&builtin_topology().unwrap(), "mempool").unwrap();
    let p = MempoolProcessor::open(&config, topics, Duration::from_secs(3600)).unwrap();
    let rss_before = rss_kib("VmRSS:");
    let mut b =
        Bench { codec: Codec::default(), p, offset: 0, busy: Duration::ZERO, inputs: 0, by: Default::default() };
    let t0 = 1_800_000_000 * SEC;
    let mut pool = Pool { txs: (0..POOL).map(|i| (i, t0 - 3_600 * SEC)).collect(), next: POOL };
    let mut feeds: Vec<Feed> = (0..NODES).map(|_| Feed { seq: 0, round: 0, held: None }).collect();
    let mut block = 0i64;
    let wall = Instant::now();
    // A shorter run for profiling: BENCH_SECONDS (the figures are then not per hour).
    let seconds: i64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2 * HOUR_S);
    let mut first_hour = None;
    for s in 0..seconds {
        if s == HOUR_S {
            first_hour = Some((b.busy, std::mem::take(&mut b.by)));
            b.busy = Duration::ZERO;
        }
        let now = t0 + s * SEC;
        for k in 0..TX_PER_S {
            pool.txs.push_back((pool.next, now + (k as i64) * SEC / TX_PER_S as i64));
            pool.next += 1;
        }
        if s > 0 && s % BLOCK_S == 0 {
            block += 1;
            for _ in 0..(TX_PER_S as i64 * BLOCK_S) {
                pool.txs.pop_front();
            }
        }
        for (k, feed) in feeds.iter_mut().enumerate() {
            if (s + k as i64) % POLL_S != 0 {
                continue;
            }
            let at = now + k as i64 * 1_000;
            let held: Vec<u64> = pool.held_by(k, at).collect();
            let (lo, hi) = (held.first().copied().unwrap_or(0), held.last().map_or(0, |h| h + 1));
            let node = k;
            let facts: Vec<String> = match feed.held {
                Some((plo, phi)) if feed.round % FULL_EVERY != 0 => {
                    let removed: Vec<String> = (plo..lo.min(phi)).map(txid).collect();
                    let added: Vec<String> = (phi.max(lo)..hi).map(txid).collect();
                    vec![json!({ "kind": "delta", "added": added, "removed": removed }).to_string()]
                }
                _ => {
                    let chunks: Vec<&[u64]> = held.chunks(CHUNK).collect();
                    let n = chunks.len();
                    chunks
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let txids: Vec<String> = c.iter().map(|t| txid(*t)).collect();
                            json!({ "kind": "full", "chunk": i, "chunks": n, "txids": txids }).to_string()
                        })
                        .collect()
                }
            };
            for f in facts {
                b.send(node, "getrawmempool", feed.seq, at, f);
                feed.seq += 1;
            }
            feed.held = Some((lo, hi));
            let info = json!({ "size": held.len(), "bytes": held.len() * 225, "usage": held.len() * 900, "mempoolminfee": 0.00001 });
            b.send(node, "getmempoolinfo", feed.round, at, info.to_string());
            b.send(
                node,
                "getblocktemplate",
                feed.round,
                at,
                template_json(block, held.into_iter().take(TEMPLATE_TXS).collect()),
            );
            feed.round += 1;
        }
        b.checkpoint();
    }
    let share = b.busy.as_secs_f64() / HOUR_S as f64 * 100.0;
    if let Some((busy, by)) = &first_hour {
        let by: Vec<String> = by.iter().map(|(m, d)| format!("{m} {:.2} s", d.as_secs_f64())).collect();
        println!(
            "  first hour, with each node's first full list (300 000 rows written): {:.2} s ({})",
            busy.as_secs_f64(),
            by.join(", ")
        );
    }
    let (peak, end) = (rss_kib("VmHWM:"), rss_kib("VmRSS:"));
    // After the peak is read: the encoder's own 300 000-txid list is the producer's memory.
    let (full_max, chunks, delta, template) = largest_facts();
    println!(
        "mempool at mainnet scale, the second simulated hour (steady state): {NODES} nodes × {POOL} transactions, {TX_PER_S} tx/s, a block every {BLOCK_S} s, polls every {POLL_S} s ({} inputs)",
        b.inputs
    );
    println!(
        "  processor time: {:.2} s per simulated hour = {share:.3} % of one core (bench wall {:.1} s)",
        b.busy.as_secs_f64(),
        wall.elapsed().as_secs_f64()
    );
    let by: Vec<String> = b.by.iter().map(|(m, d)| format!("{m} {:.2} s", d.as_secs_f64())).collect();
    println!("  of which: {}", by.join(", "));
    println!(
        "  RSS: {} MiB peak (VmHWM), {} MiB before the processor, {} MiB at the end",
        peak / 1024,
        rss_before / 1024,
        end / 1024
    );
    println!(
        "  largest facts: full snapshot {} chunks, largest {full_max} bytes; a block's delta {delta} bytes; a {TEMPLATE_TXS}-transaction template {template} bytes",
        chunks
    );
}
