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
#[path = "common/broker.rs"]
mod broker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bmon_testbed::TestBed;

const TOPIC: &str = "bmon.observations";
const PARTITIONS: i32 = 12;
const NODES: usize = 8;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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
        let c = broker::committed(brokers, &group, TOPIC, PARTITIONS);
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

/// Replays propagation over the whole topic in process; returns (time, summaries).
fn replay(brokers: &str) -> (Duration, usize) {
    use bmon_processors::replay::{ReplaySpec, run};
    use bmon_processors::runtime::bounded::Range;
    let topology = bmon_processors::registry::builtin_topology().unwrap();
    let fleet: Vec<String> = (0..NODES).map(|n| format!("\"node-{n}\"")).collect();
    let section: toml::Value = toml::from_str(&format!("fleet = {{ main = [{}] }}", fleet.join(", "))).unwrap();
    let sections = std::collections::BTreeMap::from([("propagation".to_owned(), section)]);
    let state = tempfile::tempdir().unwrap();
    let filter = bmon_processors::replay::Filter::default();
    let spec = ReplaySpec {
        topology: &topology,
        sections: &sections,
        processors: &["propagation"],
        state_dir: state.path(),
        filter: &filter,
        max_rate: None,
    };
    let settings = bmon_kafka::ClientSettings::plaintext(brokers.to_owned());
    let start = Instant::now();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let outcome = run(&settings, &spec, Range { from_ms: 0, to_ms: i64::MAX / 2 }, now_ms).unwrap();
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
    let total = broker::load_observations(&brokers, env("BENCH_OBJECTS", 25_000), NODES) as i64;
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
        let raw = broker::raw_consume(&brokers, TOPIC, PARTITIONS, total);
        println!(
            "round {round}, plain consumer of the same topic: {total} records in {:.2} s = {:.0} records/s",
            raw.as_secs_f64(),
            total as f64 / raw.as_secs_f64()
        );
    }
}
