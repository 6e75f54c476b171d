//! The propagation processor's state survives kill -9 and partition moves.
//!
//! One input stream of observations (three nodes; complete windows, windows with a missing node,
//! late sightings that amend closed windows) is published to the real broker and consumed by
//! three independent runs of `bmon process propagation`, each in its own consumer group with its
//! own output topic:
//! - straight through;
//! - killed with SIGKILL mid-stream and restarted on the same state directory (it resumes from
//!   its RocksDB checkpoint);
//! - two instances in one group, one of which leaves mid-stream so the other takes over its
//!   partitions (and rebuilds their state by replay).
//!
//! All three must publish exactly the summaries the pure window logic computes for the same input
//! (redeliveries may repeat a summary, identically; none may be missing or different).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_kafka::partition_for;
use bmon_processors::propagation::clock::ClockEstimator;
use bmon_processors::propagation::window::{WindowConfig, Windows};
use bmon_schemas::{Codec, FactKey, ObjectKind, Observation, ObservationSource, PropagationSummary, Stage};
use bmon_testbed::{Managed, TestBed};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PARTITIONS: i32 = 12;
const OBJECTS: i64 = 240;
const NODES: [&str; 3] = ["n0", "n1", "n2"];

fn hash(i: i64) -> String {
    format!("{:064x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn obs(h: &str, node: &str, at: i64) -> Observation {
    Observation {
        hash: h.to_owned(),
        object: ObjectKind::Block,
        stage: Stage::Tip,
        node_id: node.to_owned(),
        network: "regtest".into(),
        observed_at_us: at,
        source: ObservationSource::Log,
        height: None,
        fact: FactKey { stream: "log".into(), epoch: "test".into(), offset: at },
        received_at_us: Some(at),
    }
}

/// The input in publishing order, in three batches: sightings (every tenth object misses n2),
/// one far-later sighting per partition that moves event time past every deadline, then late n2
/// sightings for half of the incomplete windows.
fn input(t0: i64) -> Vec<Vec<Observation>> {
    let mut main = Vec::new();
    for i in 0..OBJECTS {
        for (j, node) in NODES.iter().enumerate() {
            if j == 2 && i % 10 == 7 {
                continue;
            }
            main.push(obs(&hash(i), node, t0 + i * 1_000_000 + ((i * 31 + j as i64 * 17) % 500) * 1000));
        }
    }
    let mut sweep = Vec::new();
    let mut k = 10_000;
    for p in 0..PARTITIONS {
        while partition_for(hash(k).as_bytes(), PARTITIONS) != p {
            k += 1;
        }
        sweep.push(obs(&hash(k), "n0", t0 + 2_000_000_000));
        k += 1;
    }
    let late = (0..OBJECTS).filter(|i| i % 20 == 7).map(|i| obs(&hash(i), "n2", t0 + 2_100_000_000)).collect();
    vec![main, sweep, late]
}

fn window_config() -> WindowConfig {
    WindowConfig {
        block_timeout_us: 600_000_000,
        tx_timeout_us: 3_600_000_000,
        closed_retention_us: 3_600_000_000,
        alive_us: 1_800_000_000,
        fleet: BTreeMap::from([("regtest".to_owned(), NODES.iter().map(|n| n.to_string()).collect())]),
        correction_threshold_us: 1_000_000,
    }
}

type Key = (String, i32);

/// What the pure logic makes of the input, partition by partition.
fn expected(batches: &[Vec<Observation>]) -> BTreeMap<Key, PropagationSummary> {
    let mut windows: BTreeMap<i32, Windows> = BTreeMap::new();
    let mut out = Vec::new();
    for o in batches.iter().flatten() {
        let p = partition_for(o.hash.as_bytes(), PARTITIONS);
        windows.entry(p).or_insert_with(|| Windows::new(window_config())).observe(
            o,
            &ClockEstimator::default(),
            &mut out,
        );
    }
    out.into_iter().map(|s| ((s.hash.clone(), s.revision), s)).collect()
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn create_topics(brokers: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let topics: Vec<NewTopic> = names.iter().map(|n| NewTopic::new(n, 3, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt.block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap();
    for r in results {
        r.unwrap();
    }
}

fn publish(producer: &BaseProducer, batch: &[Observation]) {
    let codec = Codec::default();
    for o in batch {
        let payload = codec.encode(o).unwrap();
        let p = partition_for(o.hash.as_bytes(), PARTITIONS);
        producer
            .send(BaseRecord::to("bmon.observations").partition(p).key(o.hash.as_bytes()).payload(&payload))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn start(bed: &TestBed, instance: &str, group: &str, topic: &str, brokers: &str) -> Managed {
    let state = bed.dir().join(format!("propagation-state-{instance}"));
    let extra = format!(
        "group = \"{group}\"\n[propagation]\nevents_topic = \"{topic}\"\nstate_dir = \"{}\"\n\
         [propagation.fleet]\nregtest = [\"n0\", \"n1\", \"n2\"]\n",
        state.display()
    );
    start_processor(bed, "propagation", instance, &extra, brokers, 0)
}

/// Summaries read so far on `reader`, by (hash, revision); panics if a repeat differs.
fn summaries(reader: &TopicReader<PropagationSummary>) -> BTreeMap<Key, PropagationSummary> {
    let mut got: BTreeMap<Key, PropagationSummary> = BTreeMap::new();
    for (s, key) in reader.facts.iter().zip(&reader.keys) {
        if key != b"propagation_summary" {
            continue;
        }
        if let Some(prev) = got.insert((s.hash.clone(), s.revision), s.clone()) {
            assert_eq!(&prev, s, "a repeated summary differs");
        }
    }
    got
}

#[test]
fn summaries_survive_kill_and_rebalance() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    create_topics(&brokers, &["out.straight", "out.killed", "out.rebalance"]);
    let batches = input(now_us());
    let want = expected(&batches);
    assert_eq!(want.len() as i64, OBJECTS + OBJECTS / 20, "one summary per object plus one per amendment");

    let _straight = start(&bed, "straight", "g-straight", "out.straight", &brokers);
    let mut killed = start(&bed, "killed", "g-killed", "out.killed", &brokers);
    let mut leaver = start(&bed, "rebalance-a", "g-rebalance", "out.rebalance", &brokers);
    let _stayer = start(&bed, "rebalance-b", "g-rebalance", "out.rebalance", &brokers);
    let mut readers: Vec<TopicReader<PropagationSummary>> =
        ["out.straight", "out.killed", "out.rebalance"].iter().map(|t| TopicReader::new(&brokers, t, 3)).collect();

    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let (first, rest) = batches[0].split_at(batches[0].len() / 3);
    publish(&producer, first);
    // Mid-stream: once the killed run and the rebalance group have published some summaries.
    for r in &mut readers[1..] {
        assert!(r.read_until(Duration::from_secs(90), |s| s.len() >= 10), "no summaries before the disruption");
    }
    killed.kill_hard();
    leaver.stop(Duration::from_secs(30));
    publish(&producer, rest);
    // The restarted instance resumes from its RocksDB checkpoint (which carries its own offset).
    // It joins a fresh group: tansu 0.6.0 does not reliably evict a SIGKILLed member, and a group
    // that still lists it never finishes rebalancing (Kafka and Redpanda expire it after the
    // session timeout).
    let killed_again = start(&bed, "killed", "g-killed-restarted", "out.killed", &brokers);
    publish(&producer, &batches[1]);
    publish(&producer, &batches[2]);

    for (reader, run) in readers.iter_mut().zip(["straight", "killed", "rebalance"]) {
        reader.read_until(Duration::from_secs(180), |s| {
            s.iter().map(|x| (x.hash.clone(), x.revision)).collect::<BTreeSet<_>>().len() >= want.len()
        });
        let got = summaries(reader);
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
        assert!(missing.is_empty(), "{run}: missing summaries, e.g. {missing:?}");
        for (k, s) in &want {
            assert_eq!(&got[k], s, "{run}: summary {k:?} differs");
        }
        assert_eq!(got.len(), want.len(), "{run}: unexpected extra summaries");
    }
    drop(killed_again);
}
