//! `bmon produce` publishes every debug.log line of real nodes exactly once, through rotation,
//! copytruncate and crashes, to the real broker.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bmon_testbed::{Implementation, TestBed};
use common::*;

const LOG_TOPIC: &str = "bmon.node.log";
const LOG_PARTITIONS: i32 = 6;

/// One node each of Core v31.99, BSV v1.0.13 and Litecoin 0.21: every line each wrote, from start-up
/// through mining to shutdown, arrives once, in order.
#[test]
fn core_bsv_and_litecoin_logs_arrive_exactly_once() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let mut nets = Vec::new();
    for implementation in [Implementation::Core, Implementation::Bsv, Implementation::Litecoin] {
        nets.push(bed.start_network(implementation, 1).unwrap());
    }
    let mut producers = Vec::new();
    for &n in &nets {
        let node = bed.network(n).node(0);
        producers.push(start_producer(&bed, node.name(), node.implementation().as_str(), &node.log_path(), &brokers));
    }
    for &n in &nets {
        bed.network(n).mine(0, 3).unwrap();
    }
    let mut expected = Vec::new();
    for &n in &nets {
        let node = &mut bed.network_mut(n).nodes_mut()[0];
        node.shutdown();
        expected.push((node.name().to_owned(), file_lines(&node.log_path())));
    }
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
    let done = |facts: &[bmon_schemas::LogLineFact]| {
        expected.iter().all(|(id, lines)| facts.iter().filter(|f| &f.envelope.node_id == id).count() >= lines.len())
    };
    assert!(reader.read_until(Duration::from_secs(90), done), "not every line arrived");
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    for (id, lines) in &expected {
        assert!(lines.len() > 20, "{id} logged only {} lines", lines.len());
        assert_exactly_once(&reader.of(id), lines, id);
    }
    drop(producers);
}

/// A steady writer; the test can pause it to rotate atomically with respect to its writes.
struct Writer {
    gate: Arc<Mutex<()>>,
    handle: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

fn start_writer(path: std::path::PathBuf, lines: usize, per_sec: u64, reopen: Arc<Mutex<bool>>) -> Writer {
    let gate = Arc::new(Mutex::new(()));
    let g = Arc::clone(&gate);
    let handle = std::thread::spawn(move || {
        let open = || std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut file = open();
        let mut written = Vec::new();
        for i in 0..lines {
            let _held = g.lock().unwrap();
            if std::mem::take(&mut *reopen.lock().unwrap()) {
                file = open();
            }
            // Varied lengths and a non-UTF-8 byte now and then, like real logs.
            let mut line =
                format!("2026-11-24T22:00:00.{i:06}Z [msghand] line {i} {}", "x".repeat(i % 97)).into_bytes();
            if i % 50 == 0 {
                line.push(0xff);
            }
            file.write_all(&line).unwrap();
            file.write_all(b"\n").unwrap();
            written.push(line);
            drop(_held);
            std::thread::sleep(Duration::from_micros(1_000_000 / per_sec));
        }
        written
    });
    Writer { gate, handle }
}

/// Rename rotation and copytruncate in the middle of a steady stream lose and repeat nothing.
#[test]
fn rotation_and_copytruncate_during_a_stream() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let dir = bed.dir().join("rotating");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let _producer = start_producer(&bed, "rotating", "core", &log, &brokers);
    let reopen = Arc::new(Mutex::new(false));
    let writer = start_writer(log.clone(), 3000, 1000, Arc::clone(&reopen));
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
    let at_least = |n: usize| move |f: &[bmon_schemas::LogLineFact]| f.len() >= n;
    assert!(reader.read_until(Duration::from_secs(60), at_least(800)));
    // logrotate `create` style: rename, the writer keeps appending to the old file for a while,
    // then reopens (as Core does on SIGHUP).
    std::fs::rename(&log, dir.join("debug.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    *reopen.lock().unwrap() = true;
    assert!(reader.read_until(Duration::from_secs(60), at_least(1800)));
    // copytruncate, atomic with respect to the writer (logrotate's own copy/truncate race is its
    // known limitation, not the producer's).
    {
        let _paused = writer.gate.lock().unwrap();
        std::fs::copy(&log, dir.join("debug.log.2")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
    }
    let written = writer.handle.join().unwrap();
    assert!(
        reader.read_until(Duration::from_secs(60), at_least(written.len())),
        "only {} of {}",
        reader.facts.len(),
        written.len()
    );
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    let facts = reader.of("rotating");
    assert_exactly_once(&facts, &written, "rotating log");
    let epochs: std::collections::BTreeSet<&str> = facts.iter().map(|f| f.envelope.source.epoch.as_str()).collect();
    assert_eq!(epochs.len(), 3, "original, rotated-in and truncated generations: {epochs:?}");
}

/// `kill -9` of the producer mid-stream, then a restart: every line once.
#[test]
fn producer_kill_9_and_restart_mid_stream() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let dir = bed.dir().join("crashing");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let mut producer = start_producer(&bed, "crashing", "core", &log, &brokers);
    let writer = start_writer(log.clone(), 3000, 1000, Arc::new(Mutex::new(false)));
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
    for round in 1..=2 {
        assert!(reader.read_until(Duration::from_secs(60), |f| f.len() >= 1000 * round));
        producer.kill_hard();
        drop(producer);
        std::thread::sleep(Duration::from_millis(200));
        producer = start_producer(&bed, "crashing", "core", &log, &brokers);
    }
    let written = writer.handle.join().unwrap();
    assert!(
        reader.read_until(Duration::from_secs(60), |f| f.len() >= written.len()),
        "only {} of {}",
        reader.facts.len(),
        written.len()
    );
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    assert_exactly_once(&reader.of("crashing"), &written, "crashing producer");
}

/// The broker is stopped during a stream for 8 s, longer than the producer's delivery timeout
/// (`message.timeout.ms` 2 s here), and restarted on the same storage: deliveries time out, the
/// producer retries, then resumes from the broker's position; every line once, in order, with
/// byte offsets that tile the file.
#[test]
fn broker_outage_during_a_stream() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let dir = bed.dir().join("outage");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let sources = format!(
        "[log]\npath = \"{}\"\npoll_ms = 50\n[kafka.producer]\n\"message.timeout.ms\" = \"2000\"\n",
        log.display()
    );
    let producer = start_producer_with(&bed, "outage", "core", &sources, &brokers);
    let writer = start_writer(log.clone(), 4000, 500, Arc::new(Mutex::new(false)));
    {
        let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
        assert!(reader.read_until(Duration::from_secs(60), |f| f.len() >= 1000));
    }
    bed.broker().unwrap().stop();
    std::thread::sleep(Duration::from_secs(8)); // the outage being simulated, not a synchronisation
    bed.broker().unwrap().restart().unwrap();
    let written = writer.handle.join().unwrap();
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
    assert!(
        reader.read_until(Duration::from_secs(120), |f| f.len() >= written.len()),
        "only {} of {}",
        reader.facts.len(),
        written.len()
    );
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    assert_exactly_once(&reader.of("outage"), &written, "broker outage");
    let log = std::fs::read_to_string(producer.log()).unwrap();
    assert!(log.contains("publishing log facts failed"), "no delivery timed out, so the test proved nothing: {log}");
}

/// A delivery that timed out while later batches landed leaves a hole before the broker's newest
/// fact; the producer refills it in memory, but a crash before it does leaves only the broker and
/// the local checkpoint. The hole is made here as such a failure leaves it: through the
/// producer's own publisher, lines 0..1000 and then 1500..2000 of the file land, and the
/// checkpoint holds the end of line 999 (the acknowledged prefix). Provoking a real timeout that
/// leaves a hole against tansu is not deterministic, so the hole is built, not waited for. Then
/// `bmon produce` starts on that state: every line is on the broker once, the refilled
/// 1000..1500 after the rest (so the check sorts by byte offset).
#[test]
fn a_crash_before_refilling_a_hole_loses_nothing() {
    use bmon_producer::publish::{LogPublisher, NodeIdentity, SharedProducer};
    use bmon_producer::tail::{Checkpoint, Follower, Position, Stamp};

    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let dir = bed.dir().join("holed");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("debug.log");
    let text: String =
        (0..3000).map(|i| format!("2026-12-01T00:00:00.{i:06}Z line {i} of a log with a hole\n")).collect();
    std::fs::write(&log, text).unwrap();
    let mut follower = Follower::open(&log, None, 16 * 1024);
    let batch = follower.poll().unwrap().into_iter().next().unwrap();
    assert_eq!(batch.lines.len(), 3000);
    let node = NodeIdentity {
        node_id: "holed".into(),
        network: "regtest".into(),
        implementation: bmon_schemas::NodeImplementation::Core,
        version: bmon_producer::publish::NodeVersion::new(""),
    };
    let shared = SharedProducer::new(&bmon_kafka::ClientSettings::plaintext(&brokers));
    let publisher = LogPublisher::new(&shared, LOG_TOPIC, node, &log.to_string_lossy()).unwrap();
    let stamp = Stamp { wake: None, read_us: 0, seen_before: None };
    for range in [0..1000, 1500..2000] {
        let (ack, queued) = publisher.send(batch.file, &batch.lines[range], &stamp);
        queued.unwrap();
        ack.blocking_recv().unwrap().unwrap();
    }
    let state = bed.dir().join("producer-holed");
    Checkpoint::new(state.join("log.checkpoint"))
        .store(&Position { file: batch.file, offset: batch.lines[999].end })
        .unwrap();

    let producer = start_producer(&bed, "holed", "core", &log, &brokers);
    let mut reader = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, LOG_TOPIC, LOG_PARTITIONS);
    let arrived = reader.read_until(Duration::from_secs(60), |f| f.len() >= 3000);
    // Every partition to its end (a repeat may sit past what the wait above read), then
    // read on a little: nothing more may come (a window for absence, not synchronisation).
    reader.drain(Duration::from_secs(30));
    reader.read_until(Duration::from_secs(2), |_| false);
    let mut facts = reader.of("holed");
    assert!(arrived, "only {} of 3000 lines: the hole was not refilled", facts.len());
    facts.sort_by_key(|f| f.envelope.source.offset);
    assert_exactly_once(&facts, &file_lines(&log), "refilled hole");
    let out = std::fs::read_to_string(producer.log()).unwrap();
    assert!(out.contains("refilling the lines a failed delivery left out"), "no refill was planned: {out}");
}
