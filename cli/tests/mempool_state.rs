//! The mempool processor's state survives kill -9 in the same consumer group.
//!
//! A recorded-style history of two networks' views (three nodes each: their mempool lists as the
//! producer's encoder publishes them, deltas with a full snapshot every ten rounds; their
//! templates; and conflict markers) is published to `bmon.network.views`, and `bmon process
//! mempool` is killed with SIGKILL at five points and restarted each time in the same group on
//! the same state directory (the lists' transactions come back from their RocksDB rows). Its
//! events must be exactly the ones the same processor makes in process over the same input,
//! record by record: nothing lost, nothing invented. Tolerated: an event published again (its
//! input's offset was not stored when the process died), and then it must be byte-identical to
//! the first copy. Every comparison runs on the views' receive times, never the wall clock, so a
//! straight run and a killed one see the same input alike.
//!
//! In process, the same history in another arrival order (markers late, each round's nodes
//! reversed, within `order_bound_s`) gives the same events, and applied on arrival it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bmon_kafka::partition_for;
use bmon_processors::mempool::MempoolConfig;
use bmon_processors::mempool::wiring::{MempoolProcessor, MempoolTopics};
use bmon_processors::registry::builtin_topology;
use bmon_processors::runtime::{Input, Processor};
use bmon_producer::rpc::mempool::MempoolEncoder;
use bmon_schemas::{Codec, NodeView, TxConflict, samples};
use bmon_testbed::{Managed, TestBed};
use common::*;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

const TOPIC: &str = "bmon.network.views";
const PARTITIONS: i32 = 3;
const OUT: &str = "out.mempool";
const SEC: i64 = 1_000_000;
const SETTINGS: &str =
    "mempool_span_s = 30\nmempool_min_txs = 3\nmempool_every_s = 10\ntemplate_skew_s = 5\ntemplate_min_txs = 2\n";

fn txid(network: usize, i: u32) -> String {
    format!("{network:02x}{i:062x}")
}

fn view(network: &str, node: &str, method: &str, offset: i64, at: i64, json: String) -> NodeView {
    let mut envelope = samples::envelope(node, &format!("rpc:{method}"), offset);
    envelope.network = network.to_owned();
    envelope.received_at_us = at;
    envelope.source.epoch = format!("session-{node}");
    NodeView { envelope, method: method.to_owned(), view_json: json }
}

/// A record of the views topic: its key (the network) and payload.
type Record = (i32, Vec<u8>, Vec<u8>);

/// Two networks' views over 120 rounds of 10 s: one transaction enters per round and a block
/// every 20 rounds confirms all; n2 never gets every seventh transaction (missing) and its
/// template leaves out every third (a fee floor); n1 alone holds transactions of rounds 50–69
/// (extra); at round 40 n0 and n1 receive a double spend each, which the other refuses.
fn history(t0: i64) -> Vec<Record> {
    let codec = Codec::default();
    let mut out = Vec::new();
    for (k, network) in ["regtest", "signet"].into_iter().enumerate() {
        let key = network.as_bytes().to_vec();
        let partition = partition_for(&key, PARTITIONS);
        let mut push = |payload: Vec<u8>| out.push((partition, key.clone(), payload));
        let mut encoders: Vec<MempoolEncoder> = (0..3).map(|_| MempoolEncoder::new(10, 1 << 20)).collect();
        let mut rounds = [0i64; 3];
        let mut pool: Vec<u32> = Vec::new();
        let mut block = 0;
        for r in 0..120u32 {
            let at = t0 + i64::from(r) * 10 * SEC;
            if r % 20 == 19 {
                pool.clear();
                block += 1;
            }
            pool.push(r);
            for (n, encoder) in encoders.iter_mut().enumerate() {
                let node = format!("n{n}");
                let mut held: Vec<u32> = pool.iter().copied().filter(|i| n != 2 || i % 7 != 0).collect();
                if n == 1 && (50..70).contains(&r) {
                    held.push(1000 + r);
                }
                if r >= 40 && block == 2 {
                    held.push(5000 + n.min(1) as u32);
                }
                let list: Vec<String> = held.iter().map(|i| txid(k, *i)).collect();
                let at = at + n as i64 * SEC;
                for (seq, json) in encoder.encode(&json!(list)).unwrap() {
                    push(codec.encode(&view(network, &node, "getrawmempool", seq, at, json)).unwrap());
                }
                let in_template: Vec<_> = held
                    .iter()
                    .filter(|i| n != 2 || *i % 3 != 0)
                    .map(|i| json!({ "txid": txid(k, *i), "fee": 1000, "weight": 560 }))
                    .collect();
                let template = json!({
                    "previousblockhash": format!("{block:064x}"),
                    "height": block + 1,
                    "coinbasevalue": 5_000_000_000i64 + 1000 * in_template.len() as i64,
                    "transactions": in_template,
                });
                let tpl = view(network, &node, "getblocktemplate", rounds[n], at + 500_000, template.to_string());
                push(codec.encode(&tpl).unwrap());
                rounds[n] += 1;
            }
            if r == 41 {
                for (refusing, spend) in [(0, 5001), (1, 5000)] {
                    let c = TxConflict {
                        node_id: format!("n{refusing}"),
                        network: network.to_owned(),
                        node_version: "v31.99.0".into(),
                        txid: txid(k, spend),
                        reason: "txn-mempool-conflict".into(),
                        at_us: at,
                    };
                    push(codec.encode(&c).unwrap());
                }
            }
        }
    }
    out
}

fn config(state: std::path::PathBuf) -> MempoolConfig {
    MempoolConfig {
        mempool_span_s: 30,
        mempool_min_txs: 3,
        mempool_every_s: 10,
        template_skew_s: 5,
        template_min_txs: 2,
        state_dir: state,
        ..MempoolConfig::default()
    }
}

/// What the processor makes of the records in process: (key, payload) of every event.
fn expected(records: &[Record]) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    expected_with(records, MempoolConfig::default().order_bound_s)
}

/// [`expected`] with views held `order_bound_s` for event-time order.
fn expected_with(records: &[Record], order_bound_s: u64) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut topology = builtin_topology().unwrap();
    topology.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() });
    let topics = MempoolTopics::bind(&topology, "mempool").unwrap();
    let config = MempoolConfig { order_bound_s, ..config(dir.path().join("state")) };
    let mut p = MempoolProcessor::open(&config, topics, Duration::from_secs(3600)).unwrap();
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
    out.into_iter().filter(|o| o.topic == OUT).map(|o| (o.key, o.payload)).collect()
}

/// The events `want` include every kind compared from the views, so checks on them say something.
fn assert_covers_every_kind(want: &BTreeSet<(Vec<u8>, Vec<u8>)>) {
    let codec = Codec::default();
    let kinds: BTreeSet<&str> =
        want.iter().filter_map(|(_, p)| codec.writer_version(p).ok()).map(|v| v.family.as_str()).collect();
    assert!(
        ["mempool_divergence", "mempool_conflict", "template_divergence"].iter().all(|k| kinds.contains(k)),
        "the input covers every kind compared from the views: {kinds:?}"
    );
}

fn start(bed: &TestBed, brokers: &str) -> Managed {
    let state = bed.dir().join("mempool-state-killed");
    let extra = format!("group = \"g-mempool-killed\"\n[mempool]\n{SETTINGS}state_dir = \"{}\"\n", state.display());
    let topology = write_topology(&bed.dir().join("topology-mempool"), |t| {
        t.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() })
    });
    start_processor_on(bed, "mempool", "killed", &extra, brokers, 0, &topology)
}

type Rec = (Vec<u8>, Vec<u8>);

/// Reads `consumer` into `got` until `until` holds or `timeout` passes; whether it holds.
fn read(consumer: &BaseConsumer, got: &mut Vec<Rec>, until: &dyn Fn(&[Rec]) -> bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline && !until(got) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push((m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    until(got)
}

#[test]
fn mempool_events_survive_kill_minus_nine_in_the_same_group() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let records = history(t0 - 3 * 3600 * SEC);
    let want = expected(&records);
    let codec = Codec::default();
    assert_covers_every_kind(&want);
    let topology = write_topology(&bed.dir().join("topology-mempool"), |t| {
        t.rename_topics(|n| if n == "bmon.events" { OUT.to_owned() } else { n.to_owned() })
    });
    apply_topology_file(&brokers, &topology);

    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let publish = |part: &[Record]| {
        for (p, key, payload) in part {
            producer.send(BaseRecord::to(TOPIC).partition(*p).key(key).payload(payload)).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    };
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "test-mempool-out")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(OUT, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: Vec<Rec> = Vec::new();
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
    let done = |g: &[Rec]| want.iter().all(|w| g.contains(w));
    let complete = read(&consumer, &mut got, &done, Duration::from_secs(120));
    read(&consumer, &mut got, &|_| false, Duration::from_secs(3));
    let set: BTreeSet<Rec> = got.iter().cloned().collect();
    let missing = want.difference(&set).count();
    assert!(complete && missing == 0, "{missing} of {} events missing after five kills", want.len());
    let extra: Vec<_> = set.difference(&want).collect();
    let kinds: Vec<&str> =
        extra.iter().filter_map(|(_, p)| codec.writer_version(p).ok()).map(|v| v.family.as_str()).collect();
    assert!(extra.is_empty(), "{} events no straight run makes (or a repeat that differs): {kinds:?}", extra.len());
    drop(killed);
}

/// The history's records in another arrival order: each conflict marker 5 s later than its
/// refusal, and each round's nodes reversed (node `nK`'s records 2.5·K s earlier). No record
/// arrives more than 2.5 s of event time behind one later than it, within the default
/// `order_bound_s` (10 s). (The history itself already has each marker arrive after lists 2.5 s
/// later than its refusal; the reversal is what changes the events when nothing is held.)
fn perturbed(records: &[Record]) -> Vec<Record> {
    let codec = Codec::default();
    let mut keyed: Vec<(i64, usize, Record)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = if codec.writer_version(&r.2).unwrap().family == <TxConflict as bmon_schemas::Record>::FAMILY {
                codec.decode::<TxConflict>(&r.2).unwrap().at_us + 5 * SEC
            } else {
                let v: NodeView = codec.decode(&r.2).unwrap();
                let node: i64 = v.envelope.node_id.trim_start_matches('n').parse().unwrap();
                v.envelope.received_at_us - node * 5 * SEC / 2
            };
            (key, i, r.clone())
        })
        .collect();
    keyed.sort_by_key(|(key, i, _)| (*key, *i));
    keyed.into_iter().map(|(_, _, r)| r).collect()
}

/// The views topic's records reach mempool over paths of different lengths (a marker four
/// broker hops, a list one), so their arrival order is not their event order. Held for
/// `order_bound_s`, any arrival order within it gives the same events; applied on arrival
/// (`order_bound_s = 0`), the same reordering changes them, so the check has teeth.
#[test]
fn mempool_events_do_not_depend_on_arrival_order_within_the_bound() {
    let t0 = 1_700_000_000 * SEC;
    let records = history(t0);
    let shuffled = perturbed(&records);
    assert_ne!(shuffled, records, "the arrival order differs");
    let bound = MempoolConfig::default().order_bound_s;
    let want = expected_with(&records, bound);
    assert_covers_every_kind(&want);
    assert!(expected_with(&shuffled, bound) == want, "held for order, the arrival order does not matter");
    assert!(expected_with(&shuffled, 0) != expected_with(&records, 0), "applied on arrival, it does");
}
