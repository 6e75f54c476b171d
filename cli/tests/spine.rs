//! The spine against real parts: tansu, a Bitcoin Core v31.99 network, and the `bmon` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bmon_schemas::{Codec, LogLineFact, NodeImplementation, Record, RpcOk, RpcOutcome, RpcSnapshotFact, samples};
use bmon_testbed::{Implementation, TestBed};
use bmon_topology::Topology;
use common::{bmon, repo_root};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Partition count of every topic, from broker metadata.
fn metadata(brokers: &str) -> HashMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let md = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    md.topics().iter().map(|t| (t.name().to_owned(), t.partitions().len())).collect()
}

/// Every record of `topic`, read from the beginning of each partition until `want` arrived.
fn consume_all(brokers: &str, topic: &str, partitions: usize, want: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("spine-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            got.push((m.key().unwrap_or_default().to_vec(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    got
}

/// The topic whose declared value schemas include `family`.
fn topic_for<'t>(t: &'t Topology, family: &str) -> &'t str {
    &t.topics.iter().find(|tp| tp.value_schemas.iter().any(|f| f == family)).unwrap().name
}

#[test]
fn topology_applies_and_every_record_type_round_trips_through_the_broker() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let net = bed.network(net);
    net.mine(1, 2).unwrap();
    let topology = Topology::load(repo_root().join("topology.yaml")).unwrap();

    // First apply creates every topic with its declared partitions.
    let (ok, out, err) = bmon(&["topology", "apply", "--brokers", &brokers, "--replication-factor", "1"]);
    assert!(ok, "apply failed: {err}");
    let md = metadata(&brokers);
    for topic in &topology.topics {
        assert!(out.contains(&format!("created   {}", topic.name)), "{out}");
        assert_eq!(md.get(&topic.name), Some(&(topic.partitions as usize)), "topic {} in {md:?}", topic.name);
    }

    // A second apply is idempotent: it creates nothing and reports nothing as differing.
    let (ok, out, err) = bmon(&["topology", "apply", "--brokers", &brokers, "--replication-factor", "1", "--strict"]);
    assert!(ok, "second apply failed: {err}\n{out}");
    assert!(!out.contains("created"), "{out}");
    assert_eq!(metadata(&brokers).len(), md.len());

    // Records: the codec's samples of every family and union branch, plus facts taken from the
    // live Core network (its real debug.log lines and a real getchaintips result).
    let codec = Codec::default();
    let node = net.node(0);
    let log_text = std::fs::read(node.log_path()).unwrap();
    let mut to_send: BTreeMap<&str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut push = |family: &str, key: String, bytes: Vec<u8>| {
        to_send.entry(topic_for(&topology, family)).or_default().push((key, bytes));
    };
    for (i, line) in log_text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let mut fact = samples::log_line();
        fact.envelope.node_id = node.name().to_owned();
        fact.envelope.implementation = NodeImplementation::Core;
        fact.envelope.source.offset = i as i64;
        fact.line = line.to_vec();
        push(LogLineFact::FAMILY, node.name().to_owned(), codec.encode(&fact).unwrap());
    }
    let tips: serde_json::Value = node.call("getchaintips", &[]).unwrap();
    let mut rpc = samples::rpc_facts();
    rpc.push(RpcSnapshotFact { outcome: RpcOutcome::Ok(RpcOk { json: tips.to_string() }), ..rpc[0].clone() });
    for f in &rpc {
        push(RpcSnapshotFact::FAMILY, f.envelope.node_id.clone(), codec.encode(f).unwrap());
    }
    for f in samples::zmq_facts() {
        push("zmq_fact", f.envelope.node_id.clone(), codec.encode(&f).unwrap());
    }
    for e in samples::node_events() {
        push("node_event", e.envelope.node_id.clone(), codec.encode(&e).unwrap());
    }
    let obs = samples::observation();
    push("observation", obs.hash.clone(), codec.encode(&obs).unwrap());
    let summary = samples::propagation_summary();
    push("propagation_summary", format!("{}/{}", summary.network, summary.hash), codec.encode(&summary).unwrap());
    let dl = samples::dead_letter();
    push("dead_letter", dl.topic.clone(), codec.encode(&dl).unwrap());

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("compression.type", "lz4")
        .set("acks", "all")
        .create()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (topic, records) in &to_send {
            for (key, bytes) in records {
                producer
                    .send(FutureRecord::to(topic).key(key).payload(bytes), Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
            }
        }
    });

    for (topic, records) in &to_send {
        let partitions = topology.topic(topic).unwrap().partitions as usize;
        let got = consume_all(&brokers, topic, partitions, records.len());
        assert_eq!(got.len(), records.len(), "records read back from {topic}");
        let mut sent: Vec<&(String, Vec<u8>)> = records.iter().collect();
        let mut back: Vec<(String, Vec<u8>)> =
            got.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), v)).collect();
        sent.sort();
        back.sort();
        assert!(sent.iter().zip(&back).all(|(a, b)| **a == *b), "bytes differ on {topic}");
    }
    // Decoding what came back gives the values that went in.
    let log_topic = topic_for(&topology, "log_line_fact");
    let got = consume_all(&brokers, log_topic, 6, to_send[log_topic].len());
    let facts: Vec<LogLineFact> = got.iter().map(|(_, v)| codec.decode(v).unwrap()).collect();
    assert!(facts.iter().any(|f| f.line.windows(10).any(|w| w == b"UpdateTip:")), "real Core log lines lost");
    let dl_back: bmon_schemas::DeadLetter =
        codec.decode(&consume_all(&brokers, topic_for(&topology, "dead_letter"), 1, 1)[0].1).unwrap();
    assert_eq!(dl_back, dl);
}

#[test]
fn topology_check_rejects_a_bad_file_naming_the_field() {
    let (ok, out, _) = bmon(&["topology", "check"]);
    let shipped = bmon_topology::Topology::load(repo_root().join("topology.yaml")).unwrap();
    assert!(ok && out.contains(&format!("ok ({} topics", shipped.topics.len())), "{out}");
    let dir = std::env::temp_dir().join(format!("bmon-topo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo_root().join("topology.yaml"))
        .unwrap()
        .replace("schema_dir: schemas/avro", &format!("schema_dir: {}/schemas/avro", repo_root().display()))
        .replace("inputs: [bmon.observations]", "inputs: [bmon.nope]");
    let file = dir.join("topology.yaml");
    std::fs::write(&file, text).unwrap();
    let (ok, _, err) = bmon(&["topology", "check", "--file", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("processors[1].inputs[0]: unknown topic `bmon.nope`"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
