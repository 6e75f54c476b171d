//! Propagation throughput through the broker, several builds side by side in one run.
//!
//! Loads `BENCH_OBJECTS` objects × 8 nodes of encoded observations (default 25 000 × 8 = 200 000;
//! a block every 200 objects, the rest transactions) onto `bmon.observations` of a fresh tansu,
//! once. Then, for each round and each build given on the command line, in turn, it starts that
//! build's `bmon process propagation` with a fresh consumer group and state directory, and times it
//! from the group's first committed offset to the offset that covers every record (offsets are
//! stored only after the outputs are acknowledged, so that is "every summary published"). The
//! time from start to the first commit (group join, first fetch) is printed apart.
//!
//! Then, in this process, it replays the same records through propagation over a bounded source
//! (`bmon_processors::replay`, as `bmon replay` will) and reads them with a plain consumer of the
//! same topic, alternately, `BENCH_ROUNDS` times: the in-process replay rate beside the raw consume
//! rate.
//!
//! Run: `cargo build --release -p bmon --bins --examples && target/release/examples/bench_propagation_broker
//! OLD_BMON NEW_BMON` (`BENCH_ROUNDS`, default 3).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/bench_input.rs"]
mod bench_input;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bmon_kafka::partition_for;
use bmon_schemas::Codec;
use bmon_testbed::TestBed;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "bmon.observations";
const PARTITIONS: i32 = 12;
const NODES: usize = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Produces the observations; returns how many.
fn load(brokers: &str, objects: usize) -> usize {
    let codec = Codec::default();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut n = 0;
    for sightings in bench_input::observations(objects, NODES) {
        for o in &sightings {
            let partition = partition_for(o.hash.as_bytes(), PARTITIONS);
            let payload = codec.encode(o).unwrap();
            loop {
                match producer.send(BaseRecord::to(TOPIC).partition(partition).key(&o.hash).payload(&payload)) {
                    Ok(()) => break,
                    Err((_, _)) => {
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
            n += 1;
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    n
}

/// The group's committed offsets, summed over the partitions (0 where none).
fn committed(brokers: &str, group: &str) -> i64 {
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let Ok(got) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else { return 0 };
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Runs `bin`'s propagation over the loaded topic; returns (start → first commit, first commit → all).
fn run(bed: &TestBed, brokers: &str, bin: &Path, name: &str, total: i64) -> (Duration, Duration) {
    let group = format!("bench-{name}");
    let dir = bed.dir().join(&group);
    let fleet: Vec<String> = (0..NODES).map(|n| format!("\"node-{n}\"")).collect();
    let config = format!(
        "topology = \"{}\"\n[kafka]\nbrokers = \"{brokers}\"\n[kafka.consumer]\n\"auto.commit.interval.ms\" = \"100\"\n\
         [service]\nlisten = \"127.0.0.1:0\"\n[runtime]\ngroup = \"{group}\"\n\
         [propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nmain = [{}]\n",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../topology.yaml"),
        dir.join("state").display(),
        fleet.join(", ")
    );
    let start = Instant::now();
    let _proc = bed.spawn_with_config(&group, bin, &["process", "propagation"], &config).unwrap();
    let mut first = None;
    loop {
        let c = committed(brokers, &group);
        if c > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if c >= total {
            let all = start.elapsed();
            let first = first.unwrap();
            return (first, all - first);
        }
        assert!(start.elapsed() < Duration::from_secs(900), "{name}: {c} of {total} after 15 min");
        std::thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
    }
}

/// Reads every record of the topic with a plain consumer (manual assignment); returns the time.
fn raw_consume(brokers: &str, total: i64) -> Duration {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.unwrap();
            n += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "raw consume stalled at {n}");
    }
    start.elapsed()
}

/// Replays propagation over the whole topic in process; returns (time, summaries).
fn replay(brokers: &str) -> (Duration, usize) {
    use bmon_processors::replay::{ReplaySpec, run};
    use bmon_processors::runtime::bounded::Range;
    let topology = bmon_processors::registry::builtin_topology().unwrap();
    let fleet: Vec<String> = (0..NODES).map(|n| format!("\"node-{n}\"")).collect();
    let section: toml::Value = toml::from_str(&format!("fleet = {{ main = [{}] }}", fleet.join(", "))).unwrap();
    let sections = std::collections::BTreeMap::from([("propagation".to_owned(), section)]);
    let state = tempfile::tempdir().unwrap();
    let spec =
        ReplaySpec { topology: &topology, sections: &sections, processors: &["propagation"], state_dir: state.path() };
    let settings = bmon_kafka::ClientSettings::plaintext(brokers.to_owned());
    let start = Instant::now();
    let outcome = run(&settings, &spec, Range { from_ms: 0, to_ms: i64::MAX / 2 }).unwrap();
    (start.elapsed(), outcome.outputs.len())
}

fn main() {
    let bins: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    assert!(!bins.is_empty(), "usage: bench_propagation_broker BMON [BMON...]");
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let topology = concat!(env!("CARGO_MANIFEST_DIR"), "/../topology.yaml");
    let ok = std::process::Command::new(&bins[0])
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1", "--file", topology])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let t = Instant::now();
    let total = load(&brokers, env("BENCH_OBJECTS", 25_000)) as i64;
    println!("loaded {total} observations in {:.1} s", t.elapsed().as_secs_f64());
    for round in 0..env("BENCH_ROUNDS", 3) {
        for (k, bin) in bins.iter().enumerate() {
            let (join, took) = run(&bed, &brokers, bin, &format!("{round}-{k}"), total);
            println!(
                "round {round}, {}: first commit after {:.1} s, then {total} observations in {:.2} s = {:.0} observations/s",
                bin.display(),
                join.as_secs_f64(),
                took.as_secs_f64(),
                total as f64 / took.as_secs_f64()
            );
        }
    }
    for round in 0..env("BENCH_ROUNDS", 3) {
        let (took, summaries) = replay(&brokers);
        println!(
            "round {round}, in-process replay: {total} observations in {:.2} s = {:.0} observations/s ({summaries} records out)",
            took.as_secs_f64(),
            total as f64 / took.as_secs_f64()
        );
        let raw = raw_consume(&brokers, total);
        println!(
            "round {round}, plain consumer of the same topic: {total} records in {:.2} s = {:.0} records/s",
            raw.as_secs_f64(),
            total as f64 / raw.as_secs_f64()
        );
    }
}
