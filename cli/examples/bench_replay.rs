//! `bmon replay` throughput against a plain consumer, `bmon lookup` latency, and what a replay
//! costs a live processor, on the test bed's broker. Prints figures for BENCHMARKS.md.
//!
//! Input, loaded once: `BENCH_OBJECTS` objects × 8 nodes of observations (default 25 000 × 8 =
//! 200 000) on `bmon.observations`, and `BENCH_LINES` log-line facts (default 300 000, real
//! Core line shapes) on `bmon.node.log`.
//!
//! 1. Each round: `bmon replay --processors propagation` over the observations (observations/s),
//!    a plain consumer of the same topic (records/s); `bmon replay --processors logparse` over
//!    the facts (facts/s), and a plain consumer of that topic. Each replay writes its JSON
//!    report; the wall time of the whole command is what is timed.
//! 2. `bmon lookup` of 20 objects, each a fresh process: wall time per lookup.
//! 3. A live `bmon process propagation` with a fresh group over the observations, timed to its
//!    last commit, alone and with a `bmon replay --processors logparse` running beside it,
//!    alternately.
//!
//! Run: `cargo build --release -p bmon --bins --examples && target/release/examples/bench_replay`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/bench_input.rs"]
mod bench_input;
#[path = "common/broker.rs"]
mod broker;
#[path = "common/log_facts.rs"]
mod log_facts;
#[path = "common/run_bmon.rs"]
mod run_bmon;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_testbed::TestBed;

const NODES: usize = 8;
const LOG: (&str, i32) = ("bmon.node.log", 6);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A config with the broker and propagation's fleet; returns its path.
fn config(bed: &TestBed, brokers: &str, name: &str, extra: &str) -> std::path::PathBuf {
    let fleet: Vec<String> = (0..NODES).map(|n| format!("\"node-{n}\"")).collect();
    let path = bed.dir().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "topology = \"{}/../topology.yaml\"\n[kafka]\nbrokers = \"{brokers}\"\n[propagation.fleet]\nmain = [{}]\n{extra}",
            env!("CARGO_MANIFEST_DIR"),
            fleet.join(", ")
        ),
    )
    .unwrap();
    path
}

/// `bmon replay` of everything so far through `processors`; returns the wall time.
fn replay_command(bed: &TestBed, brokers: &str, processors: &str) -> Command {
    let cfg = config(bed, brokers, "replay", "");
    let out = bed.dir().join(format!("replay-{processors}.json"));
    let mut cmd = Command::new(run_bmon::bmon_bin());
    cmd.args(["replay", "--config", cfg.to_str().unwrap(), "--processors", processors]).args([
        "--from",
        "@0",
        "--to",
        &format!("@{}", now_s() + 1),
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd
}

fn replay(bed: &TestBed, brokers: &str, processors: &str) -> Duration {
    let t = Instant::now();
    let out = replay_command(bed, brokers, processors).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t.elapsed()
}

/// A live propagation with a fresh group, timed from start to the commit covering `total`.
fn live(bed: &TestBed, brokers: &str, name: &str, total: i64) -> Duration {
    let group = format!("bench-live-{name}");
    let state = bed.dir().join(&group);
    let extra = format!(
        "[service]\nlisten = \"127.0.0.1:0\"\n[runtime]\ngroup = \"{group}\"\n[kafka.consumer]\n\"auto.commit.interval.ms\" = \"100\"\n[propagation]\nstate_dir = \"{}\"\n",
        state.display()
    );
    let cfg = std::fs::read_to_string(config(bed, brokers, &group, ""))
        .unwrap()
        .replace("[propagation.fleet]", &format!("{extra}[propagation.fleet]"));
    let t = Instant::now();
    let _p = run_bmon::spawn(bed, &group, &["process", "propagation"], &cfg);
    let (topic, parts) = broker::OBSERVATIONS;
    while broker::committed(brokers, &group, topic, parts) < total {
        assert!(t.elapsed() < Duration::from_secs(900), "{name}: not done after 15 min");
        std::thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
    }
    t.elapsed()
}

fn main() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let out = Command::new(run_bmon::bmon_bin())
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = Instant::now();
    let observations = broker::load_observations(&brokers, env("BENCH_OBJECTS", 25_000), NODES) as i64;
    let lines = env("BENCH_LINES", 300_000);
    log_facts::Writer::new(&brokers).write(lines);
    println!("loaded {observations} observations and {lines} log facts in {:.1} s", t.elapsed().as_secs_f64());

    let (obs_topic, obs_parts) = broker::OBSERVATIONS;
    for round in 0..env("BENCH_ROUNDS", 3) {
        let r = replay(&bed, &brokers, "propagation").as_secs_f64();
        let raw = broker::raw_consume(&brokers, obs_topic, obs_parts, observations).as_secs_f64();
        println!(
            "round {round}: bmon replay --processors propagation {:.0} observations/s ({r:.2} s); plain consumer {:.0} records/s ({raw:.2} s); {:.0} %",
            observations as f64 / r,
            observations as f64 / raw,
            raw / r * 100.0
        );
        let r = replay(&bed, &brokers, "logparse").as_secs_f64();
        let raw = broker::raw_consume(&brokers, LOG.0, LOG.1, lines as i64).as_secs_f64();
        println!(
            "round {round}: bmon replay --processors logparse {:.0} facts/s ({r:.2} s); plain consumer {:.0} records/s ({raw:.2} s); {:.0} %",
            lines as f64 / r,
            lines as f64 / raw,
            raw / r * 100.0
        );
    }

    let objects = bench_input::observations(env("BENCH_OBJECTS", 25_000), NODES);
    let mut took: Vec<f64> = Vec::new();
    for sightings in objects.iter().step_by((objects.len() / 20).max(1)).take(20) {
        let hash = &sightings[0].hash;
        let t = Instant::now();
        let out = Command::new(run_bmon::bmon_bin())
            .args(["lookup", hash, "--brokers", &brokers, "--window", "2h", "--json"])
            .output()
            .unwrap();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(out.status.success(), "lookup {hash}: {}", String::from_utf8_lossy(&out.stderr));
    }
    took.sort_by(f64::total_cmp);
    println!(
        "bmon lookup, 20 objects, each a fresh process: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        took[took.len() / 2],
        took[took.len() * 9 / 10],
        took[took.len() - 1]
    );

    for round in 0..env("BENCH_ROUNDS", 3) {
        let alone = live(&bed, &brokers, &format!("alone-{round}"), observations).as_secs_f64();
        let mut beside = replay_command(&bed, &brokers, "logparse").spawn().unwrap();
        let with = live(&bed, &brokers, &format!("beside-{round}"), observations).as_secs_f64();
        let _ = beside.wait();
        println!(
            "round {round}: live propagation over {observations} observations alone {alone:.2} s, beside a replay {with:.2} s ({:+.0} %)",
            (with / alone - 1.0) * 100.0
        );
    }
}
