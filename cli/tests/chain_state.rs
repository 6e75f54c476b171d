//! The chain processor's state survives kill -9 in the same consumer group.
//!
//! A recorded-style history of three nodes' events (blocks, headers, reorgs of depth 1 and 3, a
//! restart, an invalid block, a stale tip) is published to `bmon.node.events`, and `bmon process
//! chain` is killed with SIGKILL at five points and restarted each time in the same group on the
//! same state directory. Its events must be exactly the ones the same processor makes in process
//! over the same input, record by record: nothing lost, nothing invented. Tolerated: an event
//! published again (its input's offset was not stored when the process died), and then it must
//! be byte-identical to the first copy. The input is built so that no wall-clock tick changes
//! the outcome (every reorg passes the old height, every invalid block is followed by a tip).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bmon_kafka::partition_for;
use bmon_processors::chain::ChainConfig;
use bmon_processors::chain::wiring::{ChainProcessor, ChainTopics};
use bmon_processors::registry::builtin_topology;
use bmon_processors::runtime::{Input, Processor};
use bmon_schemas::{
    BlockDisconnected, Codec, EventBody, HeaderSeen, InvalidBlock, NodeEvent, NodeStart, UpdateTip, samples,
};
use bmon_testbed::{Managed, TestBed};
use common::*;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "bmon.node.events";
const PARTITIONS: i32 = 6;
const OUT: &str = "out.chain";
const SEC: i64 = 1_000_000;

fn hash(node: usize, branch: u8, h: i64) -> String {
    format!("{node:02x}{branch:02x}{h:060x}")
}

fn ev(node: usize, at: i64, event: EventBody) -> NodeEvent {
    let mut envelope = samples::envelope(&format!("n{node}"), "log", at);
    envelope.network = "regtest".into();
    NodeEvent { envelope, index: 0, logged_at_us: Some(at), thread: None, category: None, event }
}

fn tip(node: usize, branch: u8, h: i64, at: i64, block_time: i64) -> NodeEvent {
    ev(
        node,
        at,
        EventBody::UpdateTip(UpdateTip {
            hash: hash(node, branch, h),
            height: h,
            log2_work: None,
            tx_count: None,
            block_time_us: Some(block_time),
            progress: None,
            cache_mib: None,
            cache_txo: None,
            warning: None,
        }),
    )
}

/// Each node's history: 60 blocks, a depth-1 reorg at 20 (won by a 2-block branch released at
/// once: a selfish suspect), a depth-3 reorg at 40 (with validation lines), n1 restarts at 30, n2
/// rejects a block at 50, and n0's block 55 is two hours old when it arrives (a stale tip).
fn history(t0: i64) -> Vec<NodeEvent> {
    let mut all = Vec::new();
    for node in 0..3 {
        let mut at = t0;
        let mut branch = 0u8;
        let mut h = 0;
        while h < 60 {
            h += 1;
            at += 10 * SEC;
            if h == 21 || h == 41 {
                let depth = if h == 21 { 1 } else { 3 };
                let fork = h - 1 - depth;
                let new = branch + 1;
                let wins = depth + 1;
                for k in 1..=wins {
                    all.push(ev(
                        node,
                        at,
                        EventBody::HeaderSeen(HeaderSeen {
                            hash: hash(node, new, fork + k),
                            height: Some(fork + k),
                            peer: None,
                            compact: false,
                        }),
                    ));
                    at += if depth == 1 { 1000 } else { 60 * SEC };
                }
                for d in (fork + 1..h).rev() {
                    if depth == 3 {
                        all.push(ev(
                            node,
                            at,
                            EventBody::BlockDisconnected(BlockDisconnected {
                                hash: Some(hash(node, branch, d)),
                                height: Some(d),
                            }),
                        ));
                    }
                    all.push(tip(node, branch, d - 1, at, at));
                    at += 1000;
                }
                for k in 1..=wins {
                    all.push(tip(node, new, fork + k, at, at));
                    at += 1000;
                }
                branch = new;
                h = fork + wins;
                continue;
            }
            if node == 1 && h == 30 {
                all.push(ev(node, at, EventBody::NodeStart(NodeStart { version: "Bitcoin Core v31.99".into() })));
            }
            if node == 2 && h == 50 {
                let bad = Some(hash(node, 9, h));
                all.push(ev(
                    node,
                    at,
                    EventBody::InvalidBlock(InvalidBlock {
                        hash: bad.clone(),
                        height: Some(h),
                        reason: String::new(),
                        origin: "InvalidChainFound".into(),
                    }),
                ));
                all.push(ev(
                    node,
                    at + 1,
                    EventBody::InvalidBlock(InvalidBlock {
                        hash: bad,
                        height: None,
                        reason: "bad-cb-amount".into(),
                        origin: "ConnectTip".into(),
                    }),
                ));
            }
            let block_time = if node == 0 && h == 55 { at - 2 * 3600 * SEC } else { at };
            all.push(tip(node, branch, h, at, block_time));
        }
    }
    all
}

/// The records of `history` per partition, in order.
fn partitioned(history: &[NodeEvent]) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let codec = Codec::default();
    history
        .iter()
        .map(|e| {
            let key = e.envelope.node_id.as_bytes().to_vec();
            (partition_for(&key, PARTITIONS), key, codec.encode(e).unwrap())
        })
        .collect()
}

/// What the processor makes of the records in process: (key, payload) of every output.
fn expected(records: &[(i32, Vec<u8>, Vec<u8>)]) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let config = ChainConfig { state_dir: dir.path().join("state"), selfish_span_s: 5, ..ChainConfig::default() };
    let mut topology = builtin_topology().unwrap();
    topology.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() });
    let topics = ChainTopics::bind(&topology, "chain").unwrap();
    let mut p = ChainProcessor::open(&config, topics, Duration::from_secs(1800)).unwrap();
    let mut offsets = [0i64; PARTITIONS as usize];
    let mut out = Vec::new();
    for (partition, key, payload) in records {
        let offset = &mut offsets[*partition as usize];
        let input = Input {
            topic: TOPIC,
            partition: *partition,
            offset: *offset,
            key: Some(key),
            payload,
            timestamp_ms: None,
            replay: false,
            replay_id: None,
        };
        *offset += 1;
        p.process(&input, &mut out).unwrap();
    }
    out.into_iter().map(|o| (o.key, o.payload)).collect()
}

fn start(bed: &TestBed, brokers: &str) -> Managed {
    let state = bed.dir().join("chain-state-killed");
    let extra =
        format!("group = \"g-chain-killed\"\n[chain]\nselfish_span_s = 5\nstate_dir = \"{}\"\n", state.display());
    let topology = write_topology(&bed.dir().join("topology-chain"), |t| {
        t.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() })
    });
    start_processor_on(bed, "chain", "killed", &extra, brokers, 0, &topology)
}

/// A record read back: key and payload.
type Rec = (Vec<u8>, Vec<u8>);
type Got = Vec<Rec>;

/// Reads `consumer` into `got` until `until` holds or `timeout` passes; whether it holds.
fn read(consumer: &BaseConsumer, got: &mut Got, until: &dyn Fn(&[Rec]) -> bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline && !until(got) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push((m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    until(got)
}

#[test]
fn chain_events_survive_kill_minus_nine_in_the_same_group() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let records = partitioned(&history(t0 - 3600 * SEC));
    let want = expected(&records);
    let codec = Codec::default();
    let kinds: BTreeSet<&str> =
        want.iter().filter_map(|(_, p)| codec.writer_version(p).ok()).map(|v| v.family.as_str()).collect();
    assert!(
        ["chain_reorg", "selfish_mining_suspect", "stale_tip", "invalid_block"].iter().all(|k| kinds.contains(k)),
        "the input covers every node-side kind: {kinds:?}"
    );
    // The output topic, with topology.yaml's partitions.
    let topology = write_topology(&bed.dir().join("topology-chain"), |t| {
        t.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() })
    });
    apply_topology_file(&brokers, &topology);

    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let publish = |part: &[(i32, Vec<u8>, Vec<u8>)]| {
        for (p, key, payload) in part {
            producer.send(BaseRecord::to(TOPIC).partition(*p).key(key).payload(payload)).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    };
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "test-chain-out")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(OUT, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut killed = start(&bed, &brokers);
    // Five cut points through the input, spread by a fixed xorshift so a failure reproduces.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let span = records.len() / 6;
    let mut from = 0;
    for k in 0..5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cut = span * (k + 1) + (x as usize % (span / 2));
        publish(&records[from..cut]);
        from = cut;
        let before = got.len();
        assert!(
            read(&consumer, &mut got, &|g| g.len() > before, Duration::from_secs(60)),
            "round {k}: no new events before the kill"
        );
        killed.kill_hard();
        killed = start(&bed, &brokers);
    }
    publish(&records[from..]);
    let done = |g: &[(Vec<u8>, Vec<u8>)]| want.iter().all(|w| g.contains(w));
    let complete = read(&consumer, &mut got, &done, Duration::from_secs(120));
    read(&consumer, &mut got, &|_| false, Duration::from_secs(3));
    let set: BTreeSet<(Vec<u8>, Vec<u8>)> = got.iter().cloned().collect();
    let missing = want.difference(&set).count();
    assert!(complete && missing == 0, "{missing} of {} events missing after five kills", want.len());
    let extra: Vec<_> = set.difference(&want).collect();
    assert!(extra.is_empty(), "{} events no straight run makes (or a repeat that differs)", extra.len());
    drop(killed);
}
