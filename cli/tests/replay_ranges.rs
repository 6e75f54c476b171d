//! `bmon replay`'s ranges against tansu, with a log topic whose retention is 30 s (logparse's
//! window, and so the warm-up, 20 s) and a broker
//! that applies retention every second:
//!
//! - an empty range (a quiet gap between two batches of lines) gives an empty, complete report,
//!   not an error; the warm-up before it was read and what it produced left out;
//! - a range that ends an hour in the future, replayed while lines keep arriving, stops at the
//!   end offsets it resolved at start: it reads exactly the records of its resolved spans, its
//!   ends are below the partition's end afterwards, and time is moved no later than its start;
//! - `--max-rate` reads the same records, no faster than the rate asked;
//! - without a terminal, progress comes as JSON lines on stderr, the last one with the totals;
//! - once retention has deleted the first records, a range that starts before them fails, and
//!   names the earliest time still held (bounded by the first retained record's time read just
//!   before and just after the replay, since retention runs on meanwhile).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_report::Report;
use bmon_testbed::{TestBed, poll_until};
use bmon_topology::Retention;
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

const TOPIC: &str = "bmon.node.log";
const RETENTION_MS: i64 = 30_000;
const WAIT: Duration = Duration::from_secs(120);

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Appends `n` Core-style lines stamped now.
fn append(log: &Path, n: usize, tag: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    for i in 0..n {
        let stamp = bmon_logparse::time::format_us(now_us());
        writeln!(f, "{stamp} [net] received: ping ({tag} {i}) peer=0").unwrap();
    }
}

fn consumer(brokers: &str) -> BaseConsumer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "replay-ranges-probe")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap()
}

/// (low, high) of every partition of the log topic.
fn watermarks(c: &BaseConsumer) -> Vec<(i64, i64)> {
    (0..6).map(|p| c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).unwrap()).collect()
}

/// The broker timestamp of the first retained record of `partition`, ms.
fn first_retained_ms(c: &BaseConsumer, partition: i32) -> i64 {
    let (low, _) = c.fetch_watermarks(TOPIC, partition, Duration::from_secs(10)).unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, partition, rdkafka::Offset::Offset(low)).unwrap();
    c.assign(&tpl).unwrap();
    let t = poll_until("the first retained record", WAIT, Duration::from_millis(1), || {
        let m = c.poll(Duration::from_millis(200))?.ok()?;
        (m.offset() >= low).then(|| m.timestamp().to_millis().unwrap())
    })
    .unwrap();
    c.unassign().unwrap();
    t
}

fn replay(config: &Path, from: &str, to: &str, out: &Path) -> (bool, String, String) {
    replay_with(config, from, to, out, &[])
}

/// `bmon replay --processors logparse` of the range, with `extra` arguments.
fn replay_with(config: &Path, from: &str, to: &str, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let args = ["replay", "--config", config.to_str().unwrap(), "--processors", "logparse", "--from", from];
    let args: Vec<&str> =
        args.into_iter().chain(["--to", to, "--out", out.to_str().unwrap()]).chain(extra.iter().copied()).collect();
    bmon(&args)
}

fn read_report(path: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn at(ms: i64) -> String {
    format!("@{}", ms.div_euclid(1000))
}

#[test]
fn empty_future_and_expired_ranges() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker_maintained(Some(Duration::from_secs(1))).unwrap().bootstrap();
    let topology = write_topology(&bed.dir().join("topology"), |t| {
        for topic in t.topics.iter_mut().filter(|t| t.name == TOPIC) {
            topic.retention = Retention::Millis(RETENTION_MS);
        }
        // A state window must fit in its input's retention: logparse's dedup window (its
        // warm-up) shrinks to 20 s with it.
        for store in t.processors.iter_mut().filter(|p| p.name == "logparse").flat_map(|p| p.state_stores.iter_mut()) {
            store.window = Some(Retention::Millis(20_000));
        }
    });
    apply_topology_file(&brokers, &topology);
    let config = bed.dir().join("replay.toml");
    std::fs::write(&config, format!("topology = \"{}\"\n[kafka]\nbrokers = \"{brokers}\"\n", topology.display()))
        .unwrap();
    let log = bed.dir().join("debug.log");
    append(&log, 50, "a");
    let sources = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", log.display());
    let program = [env!("CARGO_BIN_EXE_bmon"), "produce"];
    let _producer = start_producer_on("regtest", &program, &bed, "node-a", "core", &sources, &brokers, Some(&topology));
    let c = consumer(&brokers);
    let total = |c: &BaseConsumer| watermarks(c).iter().map(|(_, h)| h).sum::<i64>();
    poll_until("batch a on the broker", WAIT, Duration::from_millis(100), || (total(&c) >= 50).then_some(())).unwrap();

    // A quiet gap of whole seconds (the range's ends are given in seconds), then batch b.
    let gap_from_ms = (now_us() / 1_000_000 + 1) * 1000;
    let gap_to_ms = gap_from_ms + 2000;
    poll_until("the gap to pass", Duration::from_secs(10), Duration::from_millis(50), || {
        (now_us() / 1000 > gap_to_ms).then_some(())
    })
    .unwrap();
    append(&log, 50, "b");
    poll_until("batch b on the broker", WAIT, Duration::from_millis(100), || (total(&c) >= 100).then_some(())).unwrap();

    // 1. The empty range.
    let out = bed.dir().join("empty.json");
    let (ok, stdout, stderr) = replay(&config, &at(gap_from_ms), &at(gap_to_ms), &out);
    assert!(ok, "an empty range is no error: {stderr}\n{stdout}");
    let r = read_report(&out);
    assert!(r.header.complete);
    assert!(r.header.records_produced.is_empty(), "nothing produced in the gap: {:?}", r.header.records_produced);
    assert!(r.events.is_empty());
    assert_eq!(r.header.records_read.get(TOPIC), Some(&50), "the warm-up read batch a");
    assert!(r.header.warmup_outputs > 0, "and its outputs were left out");

    // 1b. `--max-rate`: the same range read at most 40 records a second gives the same report,
    // no sooner than its records' due times (record n is due n/40 s after the start; the last
    // wait of under 2 ms may be skipped).
    // From the gap's end: batch b, and batch a in the warm-up (the range starts after every
    // record retention could delete meanwhile).
    let (ab_from, ab_to) = (at(gap_to_ms), at(now_us() / 1000 + 1000));
    let (fast_out, paced_out) = (bed.dir().join("fast.json"), bed.dir().join("paced.json"));
    let (ok, _, stderr) = replay(&config, &ab_from, &ab_to, &fast_out);
    assert!(ok, "{stderr}");
    let t = Instant::now();
    let (ok, _, stderr) = replay_with(&config, &ab_from, &ab_to, &paced_out, &["--max-rate", "40"]);
    let took = t.elapsed();
    assert!(ok, "{stderr}");
    let (fast, paced) = (read_report(&fast_out), read_report(&paced_out));
    assert_eq!(paced.header.records_read, fast.header.records_read, "the pace changes no record read");
    assert_eq!(paced.header.records_produced, fast.header.records_produced);
    let n = paced.header.records_read.values().sum::<u64>();
    assert!(n >= 50, "batch b read: {:?}", paced.header.records_read);
    let due = Duration::from_secs_f64((n - 1) as f64 / 40.0) - Duration::from_millis(2);
    assert!(took >= due, "{n} records at 40/s took {took:?}, under the {due:?} they were due by");

    // 2. A range ending in the future, while lines keep coming.
    let appending = Arc::new(AtomicBool::new(true));
    let writer = {
        let (log, appending) = (log.clone(), Arc::clone(&appending));
        std::thread::spawn(move || {
            let mut i = 0;
            while appending.load(Ordering::Relaxed) {
                append(&log, 1, &format!("c{i}"));
                i += 1;
                std::thread::sleep(Duration::from_millis(20)); // the pace of a busy node's log
            }
        })
    };
    poll_until("batch c flowing", WAIT, Duration::from_millis(100), || (total(&c) >= 150).then_some(())).unwrap();
    let started_ms = now_us() / 1000;
    let out = bed.dir().join("future.json");
    let (ok, stdout, stderr) = replay(&config, &at(gap_to_ms), &at(started_ms + 3_600_000), &out);
    assert!(ok, "{stderr}\n{stdout}");
    let after = watermarks(&c);
    let progress: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("progress").is_some())
        .collect();
    let last = progress.iter().rev().find(|v| v["progress"] == TOPIC && v["done"] == true).expect(&stderr);
    let r = read_report(&out);
    assert_eq!(
        last["read"].as_u64(),
        r.header.records_read.get(TOPIC).copied(),
        "without a TTY, progress is JSON lines"
    );
    assert_eq!(last["total"], last["read"]);
    assert!(r.header.complete);
    assert!(r.header.end_us <= now_us() && r.header.end_us / 1000 >= started_ms, "time stops when the replay starts");
    let spans: i64 = r.header.partitions.iter().map(|p| p.end - p.start).sum();
    assert_eq!(r.header.records_read.get(TOPIC).copied().unwrap_or(0) as i64, spans, "exactly its resolved spans");
    for p in &r.header.partitions {
        assert!(p.end <= after[p.partition as usize].1, "{p:?} ends within the topic");
    }
    let grown: i64 = after.iter().map(|(_, h)| h).sum::<i64>() - r.header.partitions.iter().map(|p| p.end).sum::<i64>();
    assert!(grown > 0, "lines published after the replay resolved its ends were not read");

    // 3. Retention deletes the first records: a range starting before them fails.
    let p = bmon_kafka::partition_for(b"node-a", 6);
    poll_until("retention to delete the first records", WAIT, Duration::from_millis(500), || {
        (c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).ok()?.0 > 0).then_some(())
    })
    .unwrap();
    let before_ms = first_retained_ms(&c, p);
    let t = Instant::now();
    let out = bed.dir().join("expired.json");
    let (ok, stdout, stderr) = replay(&config, &at(gap_from_ms - 60_000), &at(now_us() / 1000), &out);
    let after_ms = first_retained_ms(&c, p);
    appending.store(false, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(!ok, "a range before retention fails: {stdout}");
    assert!(!out.exists(), "and writes no partial report");
    let named = stderr.split("still holds is ").nth(1).expect(&stderr);
    let earliest = bmon_logparse::parse_stamp(named.as_bytes()).expect(named).micros / 1000;
    assert!(
        (before_ms..=after_ms).contains(&earliest),
        "the earliest time named, {earliest}, is the first retained record's ({before_ms}..={after_ms}); {stderr}"
    );
    eprintln!("replay refused in {:.2} s: {stderr}", t.elapsed().as_secs_f64());
}
