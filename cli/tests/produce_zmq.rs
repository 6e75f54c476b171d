//! `bmon produce` publishes ZMQ notifications of a real BSV node, detects node restarts, and detects
//! sequence gaps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bmon_schemas::{ZmqFact, ZmqPayload};
use bmon_testbed::{Implementation, Managed, TestBed, poll_until};
use common::*;

const ZMQ_TOPIC: &str = "bmon.node.zmq";
const ZMQ_PARTITIONS: i32 = 6;

fn zmq_section(endpoint: &str, topics: &[&str]) -> String {
    let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
    format!("[zmq]\nendpoints = [\"{endpoint}\"]\ntopics = [{}]\n", topics.join(", "))
}

fn hash_of(f: &ZmqFact) -> Option<&str> {
    match &f.payload {
        ZmqPayload::Hash(h) => Some(&h.hash),
        ZmqPayload::RawBlock(b) => Some(&b.hash),
        ZmqPayload::RawTx(t) => Some(&t.txid),
        _ => None,
    }
}

/// Mines until a hashblock fact for the mined block arrives: the subscriber is connected.
fn warm_up(bed: &TestBed, net: usize, reader: &mut TopicReader<ZmqFact>) {
    poll_until("the producer's ZMQ subscription", Duration::from_secs(60), Duration::from_millis(10), || {
        let hash = bed.network(net).mine(0, 1).ok()?.pop()?;
        reader.read_until(Duration::from_secs(2), |f| f.iter().any(|x| hash_of(x) == Some(&hash))).then_some(())
    })
    .unwrap();
}

/// Every mined block and every sent transaction of a BSV node becomes ZMQ facts, with contiguous
/// sequence numbers and no gaps; a node restart is reported as a reset, not a gap.
#[test]
fn bsv_blocks_and_transactions_become_zmq_facts() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Bsv, 2).unwrap();
    let endpoint = bed.network(net).node(0).zmq_endpoint().unwrap();
    let sources = zmq_section(&endpoint, &["hashblock", "hashtx", "rawblock", "rawtx"]);
    let _producer = start_producer_with(&bed, "bsv-0", "bsv", &sources, &brokers);
    let mut reader = TopicReader::<ZmqFact>::new(&brokers, ZMQ_TOPIC, ZMQ_PARTITIONS);
    warm_up(&bed, net, &mut reader);

    let mut blocks = bed.network(net).mine(1, 3).unwrap();
    let txids: Vec<String> = (0..3).map(|_| bed.network(net).send_tx(0).unwrap()).collect();
    blocks.extend(bed.network(net).mine(0, 1).unwrap());
    let seen =
        |facts: &[ZmqFact], topic: &str, hash: &str| facts.iter().any(|f| f.topic == topic && hash_of(f) == Some(hash));
    let all_there = |f: &[ZmqFact]| {
        blocks.iter().all(|b| seen(f, "hashblock", b) && seen(f, "rawblock", b))
            && txids.iter().all(|t| seen(f, "hashtx", t) && seen(f, "rawtx", t))
    };
    assert!(reader.read_until(Duration::from_secs(60), all_there), "missing block or tx facts");
    for b in &blocks {
        let raw: Vec<&ZmqFact> =
            reader.facts.iter().filter(|f| f.topic == "rawblock" && hash_of(f) == Some(b)).collect();
        assert_eq!(raw.len(), 1, "rawblock {b} published once");
        // The node's own count: BSV's getblockheader has no nTx, so count getblock's txids.
        let block: serde_json::Value =
            bed.network(net).node(0).call("getblock", &[b.clone().into(), 1.into()]).unwrap();
        let ZmqPayload::RawBlock(rb) = &raw[0].payload else { unreachable!() };
        let n_tx = block["tx"].as_array().expect("getblock lists its transactions").len() as i64;
        assert_eq!(rb.tx_count, n_tx);
    }
    // Sequence numbers per topic are contiguous, and no gap was reported.
    let mut per_topic: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for f in reader.facts.iter().filter(|f| f.envelope.source.stream.starts_with("zmq:")) {
        per_topic.entry(&f.topic).or_default().push(f.zmq_sequence.unwrap());
    }
    for (topic, seqs) in &per_topic {
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{topic} sequence not contiguous: {seqs:?}");
    }
    assert!(!reader.facts.iter().any(|f| matches!(f.payload, ZmqPayload::Gap(_))), "spurious gap");
    // Every fact's receive time is a real µs wall-clock stamp.
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    assert!(reader.facts.iter().all(|f| (now_us - f.envelope.received_at_us) < 600_000_000));

    // Restart the node: its sequences start over. That is a reset, not a gap.
    bed.network_mut(net).nodes_mut()[0].restart().unwrap();
    // The subscriber reconnects on its own; blocks mined before that are not seen by anyone.
    poll_until("ZMQ facts after the restart", Duration::from_secs(60), Duration::from_millis(10), || {
        let hash = bed.network(net).node(0).mine(1).ok()?.pop()?;
        reader.read_until(Duration::from_secs(2), |f| seen(f, "hashblock", &hash)).then_some(())
    })
    .unwrap();
    let resets = reader.facts.iter().filter(|f| matches!(f.payload, ZmqPayload::SequenceReset(_))).count();
    assert!(resets >= 1, "the restart was not reported");
    assert!(!reader.facts.iter().any(|f| matches!(f.payload, ZmqPayload::Gap(_))), "restart reported as a gap");
}

/// Messages lost between publisher and producer become a gap fact with the right count. The
/// publisher is a real libzmq PUB socket speaking the node's wire format, skipping two numbers.
#[test]
fn a_sequence_gap_becomes_a_gap_fact() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let endpoint = format!("tcp://127.0.0.1:{}", bed.service_port(1));
    let ctx = zmq::Context::new();
    let publisher = ctx.socket(zmq::PUB).unwrap();
    publisher.bind(&endpoint).unwrap();
    let _producer = start_producer_with(&bed, "gappy", "bsv", &zmq_section(&endpoint, &["hashblock"]), &brokers);
    let mut reader = TopicReader::<ZmqFact>::new(&brokers, ZMQ_TOPIC, ZMQ_PARTITIONS);
    let send = |seq: u32| {
        publisher.send_multipart([b"hashblock".to_vec(), vec![seq as u8; 32], seq.to_le_bytes().to_vec()], 0).unwrap();
    };
    // Publish in order until the producer has received one (it is subscribed from then on).
    let mut seq = 0u32;
    poll_until("the subscription", Duration::from_secs(60), Duration::from_millis(1), || {
        send(seq);
        seq += 1;
        reader.read_until(Duration::from_millis(300), |f| !f.is_empty()).then_some(())
    })
    .unwrap();
    send(seq);
    send(seq + 3); // seq+1 and seq+2 are lost
    assert!(reader.read_until(Duration::from_secs(30), |f| f.iter().any(|x| matches!(x.payload, ZmqPayload::Gap(_)))));
    let gap = reader
        .facts
        .iter()
        .find_map(|f| if let ZmqPayload::Gap(g) = &f.payload { Some(g.clone()) } else { None })
        .unwrap();
    assert_eq!((gap.expected, gap.received, gap.missed), (i64::from(seq + 1), i64::from(seq + 3), 2));
}

/// The value of the series named `series` (name and labels) at the `/metrics` URL `url`.
fn metric(url: &str, series: &str) -> Option<f64> {
    let body = minreq::get(url).with_timeout(2).send().ok()?.as_str().ok()?.to_owned();
    let line = body.lines().find(|l| l.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// A producer whose ZMQ source is a publisher of the test's own, sending `hashtx` messages with
/// consecutive sequence numbers.
struct Fed {
    bed: TestBed,
    brokers: String,
    metrics: String,
    sources: String,
    publisher: zmq::Socket,
    _ctx: zmq::Context,
    /// The sequence number of the next message.
    seq: u32,
}

impl Fed {
    /// Starts the bed, the topology and the producer `node_id`, whose config gets `extra` after
    /// its sources; returns once the subscription delivers.
    fn start(node_id: &str, extra: &str) -> (Fed, Managed) {
        let mut bed = TestBed::new().unwrap();
        let brokers = bed.broker().unwrap().bootstrap();
        apply_topology(&brokers);
        let endpoint = format!("tcp://127.0.0.1:{}", bed.service_port(1));
        let metrics = format!("http://127.0.0.1:{}/metrics", bed.service_port(2));
        let ctx = zmq::Context::new();
        let publisher = ctx.socket(zmq::PUB).unwrap();
        publisher.bind(&endpoint).unwrap();
        let sources = format!(
            "{}[service]\nlisten = \"127.0.0.1:{}\"\n{extra}",
            zmq_section(&endpoint, &["hashtx"]),
            bed.service_port(2)
        );
        let producer = start_producer_with(&bed, node_id, "bsv", &sources, &brokers);
        let mut fed = Fed { bed, brokers, metrics, sources, publisher, _ctx: ctx, seq: 0 };
        let mut reader = TopicReader::<ZmqFact>::new(&fed.brokers, ZMQ_TOPIC, ZMQ_PARTITIONS);
        poll_until("the subscription", Duration::from_secs(60), Duration::from_millis(1), || {
            fed.send(1);
            reader.read_until(Duration::from_millis(300), |f| !f.is_empty()).then_some(())
        })
        .unwrap();
        (fed, producer)
    }

    /// Publishes `n` messages, 5 ms apart.
    fn send(&mut self, n: usize) {
        for _ in 0..n {
            self.send_body(vec![(self.seq % 251) as u8; 32]);
            std::thread::sleep(Duration::from_millis(5)); // pacing, not synchronisation
        }
    }

    /// Publishes one message with `body` (a `hashtx` body that is not 32 bytes is published raw).
    fn send_body(&mut self, body: Vec<u8>) {
        let parts = [b"hashtx".to_vec(), body, self.seq.to_le_bytes().to_vec()];
        self.publisher.send_multipart(parts, 0).unwrap();
        self.seq += 1;
    }

    /// Reads the topic until every fact from sequence `since` on has arrived (at least once);
    /// returns their sequence numbers in the order they arrived.
    fn arrived_since(&self, since: u32) -> Vec<i64> {
        let mut reader = TopicReader::<ZmqFact>::new(&self.brokers, ZMQ_TOPIC, ZMQ_PARTITIONS);
        let after = |f: &ZmqFact| f.zmq_sequence.filter(|s| *s >= i64::from(since));
        let want = (self.seq - since) as usize;
        let all = |f: &[ZmqFact]| f.iter().filter_map(after).collect::<std::collections::BTreeSet<_>>().len() >= want;
        assert!(reader.read_until(Duration::from_secs(120), all), "spooled facts did not arrive");
        // Every partition to its end (a repeat may sit past what the wait above read), then
        // read on a little: nothing more may come (a window for absence, not synchronisation).
        reader.drain(Duration::from_secs(30));
        reader.read_until(Duration::from_secs(2), |_| false);
        reader.facts.iter().filter_map(after).collect()
    }
}

/// ZMQ facts that arrive while the broker is down are spooled on disk; they survive a producer
/// restart during the outage and all arrive, in order, once the broker is back.
#[test]
fn zmq_facts_survive_a_broker_outage_and_a_producer_restart() {
    let (mut fed, mut producer) = Fed::start("spooler", "");
    fed.bed.broker().unwrap().stop();
    let outage_start = fed.seq;
    fed.send(100);
    let spooled = |want: f64| {
        poll_until("facts spooled", Duration::from_secs(30), Duration::from_millis(100), || {
            (metric(&fed.metrics, "bmon_producer_queued_facts{source=\"zmq\"}")? >= want).then_some(())
        })
    };
    spooled(100.0).unwrap();
    // Restart the producer while the broker is still away: the spool is on disk.
    assert!(producer.terminate(Duration::from_secs(60)).expect("exits on SIGTERM").success());
    drop(producer);
    let _producer = start_producer_with(&fed.bed, "spooler", "bsv", &fed.sources, &fed.brokers);
    spooled(100.0).unwrap();
    fed.bed.broker().unwrap().restart().unwrap();
    let want: Vec<i64> = (i64::from(outage_start)..i64::from(fed.seq)).collect();
    assert_eq!(fed.arrived_since(outage_start), want, "every spooled fact once, in order");
}

/// When deliveries fail while the producer keeps running (an outage longer than
/// `message.timeout.ms`), the facts stay spooled and are sent again from the spool's head, in
/// order, once the broker is back; facts that arrive meanwhile queue behind them.
#[test]
fn zmq_facts_whose_delivery_failed_are_sent_again_in_order() {
    // `[kafka.producer]` before `[kafka]` (which the helper writes) is valid TOML.
    let (mut fed, _producer) = Fed::start("retrier", "[kafka.producer]\n\"message.timeout.ms\" = \"2000\"\n");
    let failures = "bmon_producer_delivery_failures_total{source=\"zmq\"}";
    assert_eq!(metric(&fed.metrics, failures), None, "no failure before the outage");
    fed.bed.broker().unwrap().stop();
    let outage_start = fed.seq;
    fed.send(50);
    poll_until("deliveries to time out", Duration::from_secs(60), Duration::from_millis(100), || {
        (metric(&fed.metrics, failures)? >= 1.0).then_some(())
    })
    .unwrap();
    // More facts while the failed ones wait to be sent again: they must queue behind them.
    fed.send(20);
    fed.bed.broker().unwrap().restart().unwrap();
    let want: Vec<i64> = (i64::from(outage_start)..i64::from(fed.seq)).collect();
    // The broker had none of them (it was down), so each arrives once, in order.
    assert_eq!(fed.arrived_since(outage_start), want, "every fact once, in order");
}

/// A fact the broker can never take (here larger than the producer's `message.max.bytes`) is
/// dropped and counted, and the facts before and after it still arrive, in order: it does not
/// block the spool.
#[test]
fn an_unsendable_zmq_fact_is_dropped_and_counted_and_the_rest_flows() {
    let extra = "[kafka.producer]\n\"message.max.bytes\" = \"100000\"\n";
    let (mut fed, _producer) = Fed::start("oversize", extra);
    let dropped = "bmon_producer_dropped_total{source=\"zmq\"}";
    let first = fed.seq;
    fed.send(10);
    let oversized = fed.seq;
    fed.send_body(vec![7; 200_000]);
    fed.send(10);
    poll_until("the oversized fact to be dropped", Duration::from_secs(60), Duration::from_millis(100), || {
        (metric(&fed.metrics, dropped)? >= 1.0).then_some(())
    })
    .unwrap();
    let want: Vec<i64> = (i64::from(first)..i64::from(fed.seq)).filter(|s| *s != i64::from(oversized)).collect();
    let mut reader = TopicReader::<ZmqFact>::new(&fed.brokers, ZMQ_TOPIC, ZMQ_PARTITIONS);
    let after = |f: &ZmqFact| f.zmq_sequence.filter(|s| *s >= i64::from(first));
    let all = |f: &[ZmqFact]| f.iter().filter_map(after).filter(|s| *s != i64::from(oversized)).count() >= want.len();
    assert!(reader.read_until(Duration::from_secs(60), all), "the facts around the oversized one did not arrive");
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    let got: Vec<i64> = reader.facts.iter().filter_map(after).collect();
    assert_eq!(got, want, "every other fact once, in order, and not the oversized one");
    assert_eq!(metric(&fed.metrics, dropped), Some(1.0), "exactly one fact dropped");
}
