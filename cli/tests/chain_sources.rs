//! Reorgs from ZMQ `sequence` and from getchaintips, through the real logparse, netviews and
//! chain processors on real tansu, each reorg counted once whichever source tells it first.
//!
//! The bed's Bitcoin Core is built without ZMQ (../shared/TESTBED.md) and BSV has no `sequence`
//! topic, so no node here can publish `sequence` notifications. The closest real thing: the
//! facts a producer would publish for them (`zmq:sequence`, C and D) are put on the ZMQ topic,
//! and getchaintips results on the RPC topic, for nodes that have no log. Chain's reading of a
//! real node's getchaintips is covered by `chain_live` (every node's producer polls it there).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_schemas::{
    ChainReorg, Codec, Envelope, NodeImplementation, Record, RpcOk, RpcOutcome, RpcSnapshotFact, SourceSeq, ZmqFact,
    ZmqPayload, ZmqSequence,
};
use bmon_testbed::TestBed;
use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const WAIT: Duration = Duration::from_secs(60);
/// When the test started: the getchaintips polls' clock.
static START: std::sync::LazyLock<i64> = std::sync::LazyLock::new(now_us);

/// Block hashes: branch `b` at height `h`.
fn hash(branch: u8, h: i64) -> String {
    format!("{branch:02x}{h:062x}")
}

fn envelope(node: &str, stream: &str, offset: i64, received_at_us: i64) -> Envelope {
    Envelope {
        node_id: node.to_owned(),
        network: "regtest".to_owned(),
        implementation: NodeImplementation::Core,
        node_version: String::new(),
        received_at_us,
        source: SourceSeq { stream: stream.to_owned(), epoch: "injected".to_owned(), offset },
    }
}

/// Publishes `value` to `topic` under key `node`, as a producer would.
fn publish<T: Record>(brokers: &str, topic: &str, node: &str, value: &T) {
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let payload = Codec::default().encode(value).unwrap();
    producer.send(BaseRecord::to(topic).key(node).payload(&payload)).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// A getchaintips result of `node`, poll `round` (2 s apart): the active tip and `valid-fork`
/// tips (branch, height, len).
fn tips(brokers: &str, node: &str, round: i64, active: (u8, i64), forks: &[(u8, i64, i64)]) {
    let entry = |b: u8, h: i64, len: i64, status: &str| {
        format!(r#"{{"height": {h}, "hash": "{}", "branchlen": {len}, "status": "{status}"}}"#, hash(b, h))
    };
    let mut all = vec![entry(active.0, active.1, 0, "active")];
    all.extend(forks.iter().map(|(b, h, len)| entry(*b, *h, *len, "valid-fork")));
    let fact = RpcSnapshotFact {
        envelope: envelope(node, "rpc:getchaintips", round, *START + round * 2_000_000),
        method: "getchaintips".to_owned(),
        params: "[]".to_owned(),
        duration_us: 1,
        outcome: RpcOutcome::Ok(RpcOk { json: format!("[{}]", all.join(",")) }),
    };
    publish(brokers, "bmon.node.rpc", node, &fact);
}

/// ZMQ `sequence` notifications of `node`, (label, branch, height), from sequence `first`.
fn sequence(brokers: &str, node: &str, first: i64, notes: &[(char, u8, i64)]) {
    for (i, (label, b, h)) in notes.iter().enumerate() {
        let seq = first + i as i64;
        let fact = ZmqFact {
            envelope: envelope(node, "zmq:sequence", seq, now_us()),
            topic: "sequence".to_owned(),
            zmq_sequence: Some(seq),
            payload: ZmqPayload::Sequence(ZmqSequence {
                hash: hash(*b, *h),
                label: label.to_string(),
                mempool_sequence: None,
            }),
        };
        publish(brokers, "bmon.node.zmq", node, &fact);
    }
}

#[test]
fn reorgs_from_zmq_sequence_and_from_getchaintips_are_counted_once() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let _netviews = start_processor(&bed, "netviews", "0", "", &brokers, 0);
    let state = bed.dir().join("chain-state");
    let extra = format!("[chain]\ntips_grace_s = 1\nstate_dir = \"{}\"\n", state.display());
    let _chain = start_processor(&bed, "chain", "0", &extra, &brokers, 0);
    let mut reorgs: TopicReader<ChainReorg> = TopicReader::new(&brokers, "bmon.events", 3);
    let of = |r: &[ChainReorg], node: &str| r.iter().filter(|x| x.node_id == node).cloned().collect::<Vec<_>>();

    // A node with ZMQ and RPC but no log: getchaintips gives the height ZMQ lacks.
    let z = "zmq-only";
    tips(&brokers, z, 0, (0, 5), &[]);
    let mut events: TopicReader<bmon_schemas::NodeEvent> = TopicReader::new(&brokers, "bmon.node.events", 6);
    assert!(
        events.read_until(WAIT, |e| e.iter().any(|x| x.envelope.node_id == z)),
        "netviews publishes the chain tips as a node event"
    );
    // Two blocks, then a 2-deep reorg onto a 3-block branch.
    let notes = [('C', 0, 6), ('C', 0, 7), ('D', 0, 7), ('D', 0, 6), ('C', 1, 6), ('C', 1, 7), ('C', 1, 8)];
    sequence(&brokers, z, 0, &notes);
    assert!(reorgs.read_until(WAIT, |r| !of(r, z).is_empty()), "a reorg from ZMQ: {:?}", reorgs.facts);
    let r = &of(&reorgs.facts, z)[0];
    assert_eq!((r.source.as_str(), r.depth, r.fork_height, r.old_tip.clone()), ("zmq", 2, 5, hash(0, 7)), "{r:?}");
    assert_eq!(r.disconnected, [hash(0, 6), hash(0, 7)]);
    assert_eq!(r.connected, [hash(1, 6), hash(1, 7), hash(1, 8)]);
    // The node's next getchaintips shows the same reorg: no second event once its grace is over.
    tips(&brokers, z, 1, (1, 8), &[(0, 7, 2)]);
    tips(&brokers, z, 2, (1, 8), &[(0, 7, 2)]);

    // A node with RPC only: getchaintips alone tells its reorg, after the grace.
    let t = "tips-only";
    tips(&brokers, t, 0, (0, 5), &[]);
    tips(&brokers, t, 1, (2, 7), &[(0, 6, 1)]);
    // The grace is counted in event time: the next poll, 2 s later, reports it.
    tips(&brokers, t, 2, (2, 7), &[(0, 6, 1)]);
    assert!(reorgs.read_until(WAIT, |r| !of(r, t).is_empty()), "a reorg from getchaintips: {:?}", reorgs.facts);
    let r = &of(&reorgs.facts, t)[0];
    assert_eq!((r.source.as_str(), r.depth, r.fork_height, r.old_tip.clone()), ("getchaintips", 1, 5, hash(0, 6)));
    assert_eq!(r.new_tip, hash(2, 7));

    // Nothing more comes: each reorg once.
    reorgs.read_until(Duration::from_secs(4), |_| false);
    assert_eq!(of(&reorgs.facts, z).len(), 1, "{:?}", reorgs.facts);
    assert_eq!(of(&reorgs.facts, t).len(), 1, "{:?}", reorgs.facts);
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}
