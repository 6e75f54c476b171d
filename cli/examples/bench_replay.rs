//! `bmon replay` throughput against a plain consumer, `bmon lookup` latency, and what a replay
//! costs a live processor, on the test bed's broker. Prints figures for BENCHMARKS.md.
//!
//! Input, loaded once: `BENCH_OBJECTS` objects × 8 nodes of observations (default 25 000 × 8 =
//! 200 000) on `bmon.observations`, stamped over the last `BENCH_SPREAD_MIN` minutes (default
//! 120: about 3.5 objects a second, a mainnet fleet's rate), and `BENCH_LINES` log-line facts
//! (default 300 000, real Core line shapes) on `bmon.node.log`.
//!
//! 1. Each round: `bmon replay --processors propagation` over the observations (observations/s),
//!    a plain consumer of the same topic (records/s); `bmon replay --processors logparse` over
//!    the facts (facts/s), and a plain consumer of that topic. Each replay writes its JSON
//!    report; the wall time of the whole command is what is timed.
//! 2. `bmon lookup` of 20 objects, each a fresh process, `--around` the time its records were
//!    stamped: wall time and records read per lookup, by default and with `--window 2h`.
//! 3. A live `bmon process propagation` with a fresh group over the observations, timed to its
//!    last commit, alone, with a `bmon replay --processors logparse` running beside it, and with
//!    one held to `--max-rate BENCH_MAX_RATE` (default 5 000 records/s), in turn. A replay
//!    beside it is stopped once the live run is timed.
//! 4. That live propagation caught up and fed `BENCH_STEADY_RATE` fresh observations a second
//!    (default 2 000) for `BENCH_STEADY_S` seconds (default 20): its lag (observations sent and not
//!    yet committed, in ms of input) sampled every 250 ms, alone, beside a replay of all of
//!    `bmon.node.log`, beside a paced one, and beside a replay of propagation over the last
//!    `BENCH_RECENT_MIN` minutes (default 10; its 70 min warm-up before them), unpaced and paced,
//!    in turn (`BENCH_LAG_TRACE=1` prints each sample in order). On tansu what a replay costs
//!    the live run grows with the records from its start to each partition's end, so the
//!    recent phases depend on `BENCH_SPREAD_MIN` and on the feed of the phases before them.
//!
//! Run: `cargo build --release -p bmon --bins --examples && target/release/examples/bench_replay`;
//! `BENCH_BASELINE=/path/to/older/bmon` runs that build's replays too, in turn with this one's
//! (in section 4, its paced replay as a fourth phase);
//! `BENCH_PARTS` picks among `replay,lookup,live,steady` (default: all four); `BENCH_PHASES=1`
//! with `RUST_LOG=bmon=debug` prints when each replay finished reading, built its report,
//! evaluated the alerts and wrote the report; `BENCH_REPLAY_MAX_RATE=N` paces section 1's
//! replays (not for section 4, which paces its own).

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

/// Which range a replay beside the steady live run reads.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// Everything `bmon.node.log` holds (`logparse`, from the epoch): each input partition read
    /// from its first record.
    Whole,
    /// The last `BENCH_RECENT_MIN` minutes of `bmon.observations` (`propagation`, its warm-up
    /// before them): an investigation of something recent.
    Recent,
}
use Span::{Recent, Whole};
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
    replay_command_of(&run_bmon::bmon_bin(), bed, brokers, processors, 0)
}

/// The same with the `bmon` at `bin`, from `from_s` (Unix seconds) on.
fn replay_command_of(bin: &std::path::Path, bed: &TestBed, brokers: &str, processors: &str, from_s: u64) -> Command {
    let cfg = config(bed, brokers, "replay", "");
    let out = bed.dir().join(format!("replay-{processors}.json"));
    let mut cmd = Command::new(bin);
    cmd.args(["replay", "--config", cfg.to_str().unwrap(), "--processors", processors]).args([
        "--from",
        &format!("@{from_s}"),
        "--to",
        &format!("@{}", now_s() + 1),
        "--out",
        out.to_str().unwrap(),
    ]);
    // `BENCH_REPLAY_MAX_RATE=N`: section 1's replays paced too.
    if let Ok(rate) = std::env::var("BENCH_REPLAY_MAX_RATE") {
        cmd.args(["--max-rate", &rate]);
    }
    cmd
}

/// Runs a replay with the `bmon` at `bin` to its end; returns its wall time and its read loop's
/// rate (records/s, every input together, from its last JSON progress lines).
fn replay(bin: &std::path::Path, bed: &TestBed, brokers: &str, processors: &str) -> (Duration, f64) {
    let t = Instant::now();
    let out = replay_command_of(bin, bed, brokers, processors, 0).output().unwrap();
    let took = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if std::env::var_os("BENCH_PHASES").is_some() {
        for line in stderr.lines().filter(|l| l.contains("replay: ") || l.contains("alerts: ")) {
            println!("    {processors}: {}", line.split("bmon::commands::replay").nth(1).unwrap_or(line).trim());
        }
    }
    let rate = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["done"] == true)
        .filter_map(|v| v["records_per_s"].as_f64())
        .sum();
    (took, rate)
}

/// Starts a live propagation with the group `bench-live-{name}`; returns it and the group.
fn start_live(bed: &TestBed, brokers: &str, name: &str) -> (bmon_testbed::Managed, String) {
    let group = format!("bench-live-{name}");
    let state = bed.dir().join(&group);
    let extra = format!(
        "[service]\nlisten = \"127.0.0.1:0\"\n[runtime]\ngroup = \"{group}\"\n[kafka.consumer]\n\"auto.commit.interval.ms\" = \"100\"\n[propagation]\nstate_dir = \"{}\"\n",
        state.display()
    );
    let cfg = std::fs::read_to_string(config(bed, brokers, &group, ""))
        .unwrap()
        .replace("[propagation.fleet]", &format!("{extra}[propagation.fleet]"));
    (run_bmon::spawn(bed, &group, &["process", "propagation"], &cfg), group)
}

/// Waits for `group`'s commits to cover `total` observations; returns the time since `t`.
fn committed_by(brokers: &str, group: &str, total: i64, t: Instant) -> Duration {
    let (topic, parts) = broker::OBSERVATIONS;
    while broker::committed(brokers, group, topic, parts) < total {
        assert!(t.elapsed() < Duration::from_secs(900), "{group}: not done after 15 min");
        std::thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
    }
    t.elapsed()
}

/// A live propagation with a fresh group, timed from start to the commit covering `total`.
fn live(bed: &TestBed, brokers: &str, name: &str, total: i64) -> Duration {
    let t = Instant::now();
    let (_p, group) = start_live(bed, brokers, name);
    committed_by(brokers, &group, total, t)
}

/// Feeds the live `group`, whose commits cover `base` observations, `rate` fresh ones a second
/// for `secs` seconds (hashes marked with `tag`), sampling its lag (observations sent but not
/// yet committed) every 250 ms; returns the lags in ms of input (lag / rate), sorted, and how
/// many were sent, once the group has caught up.
fn steady(brokers: &str, group: &str, base: i64, tag: u8, rate: usize, secs: u64) -> (Vec<f64>, i64) {
    let codec = bmon_schemas::Codec::default();
    let producer: rdkafka::producer::BaseProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").create().unwrap();
    let (topic, parts) = broker::OBSERVATIONS;
    let mut input = bench_input::observations(rate * secs as usize / NODES + 1, NODES).into_iter().flatten();
    let (start, mut sent, mut lags) = (Instant::now(), 0i64, Vec::new());
    let mut next_sample = start;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as i64;
        while sent < due {
            let Some(mut o) = input.next() else { break };
            o.hash = format!("{tag:02x}{}", &o.hash[2..]);
            let payload = codec.encode(&o).unwrap();
            let p = bmon_kafka::partition_for(o.hash.as_bytes(), parts);
            let record = rdkafka::producer::BaseRecord::to(topic).partition(p).key(&o.hash).payload(&payload);
            if producer.send(record).is_err() {
                producer.poll(Duration::from_millis(5));
                continue;
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        if Instant::now() >= next_sample {
            next_sample += Duration::from_millis(250);
            let lag = base + sent - broker::committed(brokers, group, topic, parts);
            lags.push(lag.max(0) as f64 / rate as f64 * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(2)); // the production pace, not synchronisation
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    committed_by(brokers, group, base + sent, Instant::now());
    if std::env::var_os("BENCH_LAG_TRACE").is_some() {
        let trace: Vec<String> = lags.iter().map(|l| format!("{l:.0}")).collect();
        println!("lag every 250 ms (ms): {}", trace.join(" "));
    }
    lags.sort_by(f64::total_cmp);
    (lags, sent)
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
    let objects = env("BENCH_OBJECTS", 25_000);
    let over_ms = env("BENCH_SPREAD_MIN", 120) as i64 * 60_000;
    let loaded_ms = now_s() as i64 * 1000;
    let observations =
        broker::load_observations_over(&brokers, objects, NODES, Some(Duration::from_millis(over_ms as u64))) as i64;
    let lines = env("BENCH_LINES", 300_000);
    log_facts::Writer::new(&brokers).write(lines);
    println!("loaded {observations} observations and {lines} log facts in {:.1} s", t.elapsed().as_secs_f64());

    let (obs_topic, obs_parts) = broker::OBSERVATIONS;
    // `BENCH_PARTS=replay,lookup,live,steady` (the default): which of the four to run.
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "replay,lookup,live,steady".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    // `BENCH_BASELINE=/path/to/bmon`: an older build's replays too, in turn with this one's.
    let mut bins = vec![("this build", run_bmon::bmon_bin())];
    if let Ok(old) = std::env::var("BENCH_BASELINE") {
        bins.push(("baseline", old.into()));
    }
    for round in 0..if part("replay") { env("BENCH_ROUNDS", 3) } else { 0 } {
        for (name, bin) in &bins {
            let (r, rate) = replay(bin, &bed, &brokers, "propagation");
            let r = r.as_secs_f64();
            let raw = broker::raw_consume(&brokers, obs_topic, obs_parts, observations).as_secs_f64();
            println!(
                "round {round}, {name}: bmon replay --processors propagation {:.0} observations/s ({r:.2} s; read loop {rate:.0}/s); plain consumer {:.0} records/s ({raw:.2} s); {:.0} % (read loop {:.0} %)",
                observations as f64 / r,
                observations as f64 / raw,
                raw / r * 100.0,
                rate / (observations as f64 / raw) * 100.0
            );
            let (r, rate) = replay(bin, &bed, &brokers, "logparse");
            let r = r.as_secs_f64();
            let raw = broker::raw_consume(&brokers, LOG.0, LOG.1, lines as i64).as_secs_f64();
            println!(
                "round {round}, {name}: bmon replay --processors logparse {:.0} facts/s ({r:.2} s; read loop {rate:.0}/s); plain consumer {:.0} records/s ({raw:.2} s); {:.0} % (read loop {:.0} %)",
                lines as f64 / r,
                lines as f64 / raw,
                raw / r * 100.0,
                rate / (lines as f64 / raw) * 100.0
            );
        }
    }

    // Each object's records are stamped at its place in the spread (see `load_observations_over`).
    let inputs = bench_input::observations(objects, NODES);
    for (label, window) in
        [("default (widening from 1 min)", None), ("--window 2h", Some("2h"))].into_iter().filter(|_| part("lookup"))
    {
        let (mut took, mut read): (Vec<f64>, Vec<u64>) = (Vec::new(), Vec::new());
        for (i, sightings) in inputs.iter().enumerate().step_by((inputs.len() / 20).max(1)).take(20) {
            let hash = &sightings[0].hash;
            let at_s = (loaded_ms - over_ms + over_ms * i as i64 / objects as i64) / 1000;
            let mut cmd = Command::new(run_bmon::bmon_bin());
            cmd.args(["lookup", hash, "--brokers", &brokers, "--around", &format!("@{at_s}"), "--json"]);
            if let Some(w) = window {
                cmd.args(["--window", w]);
            }
            let t = Instant::now();
            let out = cmd.output().unwrap();
            took.push(t.elapsed().as_secs_f64() * 1000.0);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "lookup {hash}: {stderr}");
            let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                found["observations"].as_array().map(Vec::len),
                Some(NODES),
                "lookup {hash}: every node's sighting"
            );
            // "read N records of …"
            read.extend(
                stderr.split("read ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<u64>().ok()),
            );
        }
        took.sort_by(f64::total_cmp);
        read.sort_unstable();
        println!(
            "bmon lookup {label}, 20 objects, each a fresh process: median {:.0} ms, p90 {:.0} ms, max {:.0} ms; records read median {}, max {}",
            took[took.len() / 2],
            took[took.len() * 9 / 10],
            took[took.len() - 1],
            read.get(read.len() / 2).copied().unwrap_or(0),
            read.last().copied().unwrap_or(0)
        );
    }

    let max_rate = env("BENCH_MAX_RATE", 5_000).to_string();
    for round in 0..if part("live") { env("BENCH_ROUNDS", 3) } else { 0 } {
        let alone = live(&bed, &brokers, &format!("alone-{round}"), observations).as_secs_f64();
        let mut beside = replay_command(&bed, &brokers, "logparse").spawn().unwrap();
        let with = live(&bed, &brokers, &format!("beside-{round}"), observations).as_secs_f64();
        let _ = beside.kill(); // its figures are not wanted here
        let _ = beside.wait();
        let mut paced = replay_command(&bed, &brokers, "logparse");
        let mut paced = paced.args(["--max-rate", &max_rate]).spawn().unwrap();
        let slow = live(&bed, &brokers, &format!("paced-{round}"), observations).as_secs_f64();
        let _ = paced.kill();
        let _ = paced.wait();
        println!(
            "round {round}: live propagation catching up {observations} observations alone {alone:.2} s, beside a replay {with:.2} s ({:+.0} %), beside a replay --max-rate {max_rate} {slow:.2} s ({:+.0} %)",
            (with / alone - 1.0) * 100.0,
            (slow / alone - 1.0) * 100.0
        );
    }

    // 4. A live propagation that has caught up, fed a steady `BENCH_STEADY_RATE` observations/s:
    // its lag alone, beside a replay, and beside a paced one, in turn.
    if !part("steady") {
        return;
    }
    let rate = env("BENCH_STEADY_RATE", 2_000);
    let secs = env("BENCH_STEADY_S", 20) as u64;
    let t = Instant::now();
    let (_live, group) = start_live(&bed, &brokers, "steady");
    committed_by(&brokers, &group, observations, t);
    let mut base = observations;
    let mut tag = 0u8;
    let this = run_bmon::bmon_bin();
    // `BENCH_RECENT_MIN` (default 10): the recent range's length, minutes, before its warm-up.
    let recent_min = env("BENCH_RECENT_MIN", 10) as u64;
    let recent = format!("beside a replay of the last {recent_min} min (propagation, warm-up included)");
    let mut phases = vec![
        ("alone".to_owned(), &this, None),
        ("beside a replay".to_owned(), &this, Some((Whole, None))),
        ("beside a replay --max-rate".to_owned(), &this, Some((Whole, Some(&max_rate)))),
        (recent.clone(), &this, Some((Recent, None))),
        (format!("{recent} --max-rate"), &this, Some((Recent, Some(&max_rate)))),
    ];
    if let Some((_, old)) = bins.get(1) {
        phases.push(("beside a baseline replay --max-rate".to_owned(), old, Some((Whole, Some(&max_rate)))));
    }
    for round in 0..env("BENCH_ROUNDS", 3) {
        for (label, bin, replay) in &phases {
            let replay = *replay;
            let pace = replay.map(|(_, pace)| pace);
            let mut replay = replay.map(|(range, pace)| {
                let mut cmd = match range {
                    Whole => replay_command_of(bin, &bed, &brokers, "logparse", 0),
                    Recent => replay_command_of(bin, &bed, &brokers, "propagation", now_s() - recent_min * 60),
                };
                if let Some(r) = pace {
                    cmd.args(["--max-rate", r]);
                }
                cmd.spawn().unwrap()
            });
            tag = tag.wrapping_add(1);
            let (lags, sent) = steady(&brokers, &group, base, tag, rate, secs);
            base += sent;
            if let Some(r) = replay.as_mut() {
                let _ = r.kill(); // its figures are not wanted here
                let _ = r.wait();
            }
            let mean = lags.iter().sum::<f64>() / lags.len().max(1) as f64;
            println!(
                "round {round}: live propagation at {rate} observations/s for {secs} s, {label}{}: lag mean {mean:.0} ms, median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
                if pace == Some(Some(&max_rate)) { format!(" {max_rate}") } else { String::new() },
                lags[lags.len() / 2],
                lags[lags.len() * 95 / 100],
                lags[lags.len() - 1]
            );
        }
    }
}
