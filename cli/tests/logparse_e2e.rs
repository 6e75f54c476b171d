//! End to end on the test bed: Core and BSV nodes, a producer per node, and `bmon process
//! logparse`. Every node's observations of each mined block (header, block, tip) and each sent
//! transaction (tx accept; BSV also ZMQ) reach the observation topic keyed by hash, exactly once;
//! a record that is not a fact goes to the dead-letter topic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bmon_schemas::{DeadLetter, NodeEvent, Observation, Stage};
use bmon_testbed::{Implementation, TestBed};
use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const OBSERVATIONS: &str = "bmon.observations";

#[test]
fn every_node_observes_each_block_and_tx_exactly_once() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let core = bed.start_network(Implementation::Core, 3).unwrap();
    let bsv = bed.start_network(Implementation::Bsv, 2).unwrap();
    let mut producers = Vec::new();
    let mut nodes: Vec<(String, bool)> = Vec::new(); // (node id, has ZMQ)
    for net in [core, bsv] {
        for node in bed.network(net).nodes() {
            let id = node.name().to_owned();
            let mut sources = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", node.log_path().display());
            if let Some(endpoint) = node.zmq_endpoint() {
                sources
                    .push_str(&format!("[zmq]\nendpoints = [\"{endpoint}\"]\ntopics = [\"hashblock\", \"hashtx\"]\n"));
            }
            let implementation = if net == core { "core" } else { "bsv" };
            producers.push(start_producer_with(&bed, &id, implementation, &sources, &brokers));
            nodes.push((id, node.zmq_endpoint().is_some()));
        }
    }
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);

    // Drive: per network, two rounds of one transaction from node 0 and one block from node 1.
    let mut blocks: Vec<(usize, String)> = Vec::new();
    let mut txs: Vec<(usize, String)> = Vec::new();
    for net in [core, bsv] {
        for _ in 0..2 {
            txs.push((net, bed.network(net).send_tx(0).unwrap()));
            blocks.extend(bed.network(net).mine(1, 1).unwrap().into_iter().map(|h| (net, h)));
        }
    }
    let mut expected: BTreeSet<(String, String, Stage)> = BTreeSet::new();
    for (net, hash) in &blocks {
        for node in bed.network(*net).nodes() {
            let zmq = node.zmq_endpoint().is_some();
            for stage in [Stage::Header, Stage::Block, Stage::Tip] {
                expected.insert((node.name().to_owned(), hash.clone(), stage));
            }
            if zmq {
                expected.insert((node.name().to_owned(), hash.clone(), Stage::ZmqBlock));
            }
        }
    }
    for (net, txid) in &txs {
        for node in bed.network(*net).nodes() {
            expected.insert((node.name().to_owned(), txid.clone(), Stage::TxAccept));
            if node.zmq_endpoint().is_some() {
                expected.insert((node.name().to_owned(), txid.clone(), Stage::ZmqTx));
            }
        }
    }

    let mut reader = TopicReader::<Observation>::new(&brokers, OBSERVATIONS, 12);
    let seen = |obs: &[Observation]| -> BTreeSet<(String, String, Stage)> {
        obs.iter().map(|o| (o.node_id.clone(), o.hash.clone(), o.stage)).collect()
    };
    let complete = reader.read_until(Duration::from_secs(120), |obs| expected.is_subset(&seen(obs)));
    let got = seen(&reader.facts);
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(complete, "observations missing: {missing:?}");
    // Nothing in the topic, read to its end, nor whatever else arrives in the next seconds (a
    // window for absence, not synchronisation) may repeat anything.
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(3), |_| false);

    let mut counts: BTreeMap<(String, String, Stage), usize> = BTreeMap::new();
    for (o, key) in reader.facts.iter().zip(&reader.keys) {
        assert_eq!(key, o.hash.as_bytes(), "observation keyed by its hash");
        *counts.entry((o.node_id.clone(), o.hash.clone(), o.stage)).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "observations repeated: {repeated:?}");
    for (node, _) in &nodes {
        assert!(counts.keys().any(|(n, _, _)| n == node), "{node} produced no observations");
    }

    // Typed events arrive too, keyed by node.
    let mut events = TopicReader::<NodeEvent>::new(&brokers, "bmon.node.events", 6);
    assert!(events.read_until(Duration::from_secs(30), |e| {
        nodes
            .iter()
            .all(|(n, _)| e.iter().any(|x| &x.envelope.node_id == n && bmon_logparse::kind(&x.event) == "update_tip"))
    }));

    // A record that is not a fact is dead-lettered with its reason, and processing goes on.
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    producer.send(BaseRecord::to("bmon.node.log").key("garbage").payload("not avro")).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let mut dead = TopicReader::<DeadLetter>::new(&brokers, "bmon.deadletter", 1);
    assert!(dead.read_until(Duration::from_secs(60), |d| {
        d.iter().any(|x| x.topic == "bmon.node.log" && x.payload == b"not avro" && x.error_class == "decode")
    }));
    let hash = bed.network(core).mine(0, 1).unwrap().pop().unwrap();
    assert!(reader.read_until(Duration::from_secs(60), |obs| obs.iter().any(|o| o.hash == hash)));
}
