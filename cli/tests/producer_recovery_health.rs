//! The producer's probes answer during its recovery scan, and it is not ready before the scan ends.
//!
//! A producer that starts without a local checkpoint finds its resume position by reading its
//! partition of the log topic backwards until it meets its own newest fact (up to
//! `MAX_RECOVERY_SCAN` records). Here that partition holds 20 000 records of another node, so the
//! scan takes seconds on tansu. Meanwhile:
//! - every `/healthz` and `/readyz` answers within 100 ms (the scan runs off the listener's
//!   thread);
//! - `/readyz` is 503 until the scan is over (the producer says "following log"), then 200, and
//!   the node's lines are published.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use bmon_kafka::partition_for;
use bmon_testbed::{TestBed, poll_until};
use common::*;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "bmon.node.log";
const PARTITIONS: i32 = 6;
const FILLER: usize = 20_000;

#[test]
fn probes_answer_during_the_recovery_scan_and_ready_waits_for_it() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let node = "scanned";
    let partition = partition_for(node.as_bytes(), PARTITIONS);
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .unwrap();
    // Another node's log facts, on the same partition.
    let mut fact = bmon_schemas::samples::log_line();
    fact.envelope.node_id = "filler".into();
    let payload = bmon_schemas::Codec::default().encode(&fact).unwrap();
    for _ in 0..FILLER {
        producer.send(BaseRecord::to(TOPIC).partition(partition).key("filler").payload(&payload)).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).unwrap();

    let dir = bed.dir().join("node-scanned");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let mut file = std::fs::File::create(&log).unwrap();
    let port = bed.service_port(1);
    let sources =
        format!("[log]\npath = \"{}\"\npoll_ms = 50\n[service]\nlisten = \"127.0.0.1:{port}\"\n", log.display());
    let started = Instant::now();
    let proc = start_producer_with(&bed, node, "core", &sources, &brokers);
    let producer_log = bed.dir().join(format!("producer-{node}")).join("producer.log");
    let following = || std::fs::read_to_string(&producer_log).unwrap_or_default().contains("following log");

    // Probe until the scan is over: each answer within 100 ms, and never ready before it.
    let (mut probes, mut not_ready) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !following() {
        assert!(Instant::now() < deadline, "the recovery scan did not end");
        for path in ["healthz", "readyz"] {
            let t = Instant::now();
            let Some((code, _)) = http_get(&format!("http://127.0.0.1:{port}/{path}")) else {
                continue; // the listener is not up yet
            };
            let took = t.elapsed();
            assert!(took < Duration::from_millis(100), "/{path} took {took:?} during the scan");
            probes += 1;
            if path == "readyz" {
                // Read the log after the answer: a 200 while it does not yet say "following" is
                // a readiness that came before the scan ended.
                assert!(code != 200 || following(), "/readyz said ready before the scan ended");
                not_ready += usize::from(code != 200);
            }
        }
        std::thread::sleep(Duration::from_millis(20)); // probe spacing, not synchronisation
    }
    let scan = started.elapsed();
    eprintln!("recovery scan over {FILLER} records: ~{scan:?}; {probes} probes, {not_ready} not ready");
    assert!(not_ready >= 3, "the scan was too short to probe ({scan:?}, {not_ready} not-ready answers)");

    poll_until("ready after the scan", Duration::from_secs(30), Duration::from_millis(50), || {
        http_get(&format!("http://127.0.0.1:{port}/readyz")).filter(|(c, _)| *c == 200)
    })
    .unwrap();
    let line = b"2026-12-01T10:00:00.000001Z [msghand] after the scan\n";
    file.write_all(line).unwrap();
    file.flush().unwrap();
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, TOPIC, PARTITIONS);
    assert!(
        reader.read_until(Duration::from_secs(60), |f| f.iter().any(|x| x.envelope.node_id == node)),
        "the node's line is published after the scan"
    );
    drop(proc);
}
