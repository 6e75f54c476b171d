//! End-to-end producer benchmark against the real test bed. Prints figures for BENCHMARKS.md.
//!
//! 1. Catch-up: a 1M-line debug.log built from real Core log line shapes (fresh hashes per line)
//!    is published from scratch; lines/s until the checkpoint reaches the end of the file.
//! 2. Steady load at mainnet-like rates: 100 log lines/s, 10 ZMQ messages/s, RPC polling every
//!    10 s of a real Core node; the producer's CPU and RSS over 60 s.
//!
//! Run: `cargo run --release -p bmon --example bench_producer` (after `make tools`). It also
//! prints the steady window's CPU per producer thread. `BENCH_PRODUCER_BIN` names another
//! producer binary to measure (an A/B comparison against an older build).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bmon_logparse::synth::vary;
use bmon_testbed::{Implementation, Managed, TestBed, poll_until};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/bitcoin-core-logs");

fn bmon_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("bmon")
}

/// Real line shapes from the shared fixtures.
fn shapes() -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt" || e == "log") {
            lines.extend(std::fs::read_to_string(&path).unwrap().lines().filter(|l| l.len() > 20).map(String::from));
        }
    }
    lines
}

fn producer(bed: &TestBed, id: &str, sources: &str, brokers: &str) -> (Managed, PathBuf) {
    let state = bed.dir().join(format!("bench-{id}"));
    std::fs::create_dir_all(&state).unwrap();
    let config = state.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = \"{id}\"\nnetwork = \"regtest\"\nimplementation = \"core\"\n{sources}\
             [kafka]\nbrokers = \"{brokers}\"\n{}\n[state]\ndir = \"{}\"\n[service]\nlisten = \"127.0.0.1:0\"\n",
            std::env::var("BENCH_KAFKA_EXTRA").unwrap_or_default(),
            state.display()
        ),
    )
    .unwrap();
    // The slim producer binary, as deployed beside each node (`bmon produce` runs the same code).
    // `BENCH_PRODUCER_BIN` runs another build instead (an A/B comparison on the same machine).
    let bin = std::env::var_os("BENCH_PRODUCER_BIN")
        .map_or_else(|| bmon_bin().with_file_name("bmon-producer"), PathBuf::from);
    let mut cmd = Command::new(bin);
    cmd.args(["--config", config.to_str().unwrap()]).env("RUST_LOG", "warn");
    (Managed::spawn(&format!("bench-{id}"), cmd, &bed.pid_dir(), &state.join("producer.log")).unwrap(), state)
}

fn checkpoint_offset(state: &Path) -> u64 {
    std::fs::read(state.join("log.checkpoint"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["offset"].as_u64())
        .unwrap_or(0)
}

/// (command name, utime + stime in clock ticks) from a `/proc/…/stat` line.
fn name_and_ticks(stat: &str) -> Option<(&str, u64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    Some((&stat[open + 1..close], f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
}

/// (utime + stime in clock ticks, RSS in kB) of `pid`.
fn cpu_and_rss(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks = name_and_ticks(&stat).unwrap().1;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    (ticks, rss)
}

/// CPU clock ticks (utime + stime) per thread name of `pid`, threads of one name summed.
fn ticks_by_thread(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((name, ticks)) = name_and_ticks(&stat) else { continue };
        *out.entry(name.to_owned()).or_default() += ticks;
    }
    out
}

fn main() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let ok = Command::new(bmon_bin())
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // 1. Catch-up on 1M lines.
    let n: usize = std::env::var("BENCH_LINES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let shapes = shapes();
    let log = bed.dir().join("catchup.log");
    let mut w = BufWriter::new(std::fs::File::create(&log).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        writeln!(w, "{}", vary(&shapes[i % shapes.len()], &mut seed)).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let size = std::fs::metadata(&log).unwrap().len();
    let t0 = Instant::now();
    let (mut p, state) = producer(&bed, "catchup", &format!("[log]\npath = \"{}\"\n", log.display()), &brokers);
    poll_until("catch-up", Duration::from_secs(1800), Duration::from_millis(100), || {
        (checkpoint_offset(&state) >= size).then_some(())
    })
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let (ticks, rss) = cpu_and_rss(p.pid());
    println!(
        "catch-up: {n} lines, {:.1} MB in {secs:.1} s = {:.0} lines/s ({:.1} MB/s), producer CPU {:.1} s, RSS {} MB",
        size as f64 / 1e6,
        n as f64 / secs,
        size as f64 / 1e6 / secs,
        ticks as f64 / 100.0,
        rss / 1024
    );
    p.terminate(Duration::from_secs(30));

    // 2. Steady mainnet-like load.
    let net = bed.start_network(Implementation::Core, 1).unwrap();
    let node = bed.network(net).node(0);
    let steady = bed.dir().join("steady.log");
    let zmq_endpoint = format!("tcp://127.0.0.1:{}", bed.service_port(1));
    let ctx = zmq::Context::new();
    let publisher = ctx.socket(zmq::PUB).unwrap();
    publisher.bind(&zmq_endpoint).unwrap();
    let sources = format!(
        "[log]\npath = \"{}\"\n[zmq]\nendpoints = [\"{zmq_endpoint}\"]\ntopics = [\"hashtx\"]\n[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\n",
        steady.display(),
        node.rpc_url(),
        node.cookie_path().display()
    );
    let (p, _) = producer(&bed, "steady", &sources, &brokers);
    let duration = Duration::from_secs(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&steady).unwrap();
    // Idle first (sources connected, nothing happening but RPC polls): the floor of timers and
    // wake-ups.
    std::thread::sleep(Duration::from_secs(5)); // start-up, not synchronisation: nothing is awaited
    let idle = Duration::from_secs(std::env::var("BENCH_IDLE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30));
    let (i1, at) = (cpu_and_rss(p.pid()).0, Instant::now());
    std::thread::sleep(idle); // the measurement window itself
    let idle_cpu = (cpu_and_rss(p.pid()).0 - i1) as f64 / 100.0 / at.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle: {:.0} s with RPC polling every 10 s and no log lines or ZMQ messages: CPU {idle_cpu:.2}% of one core",
        at.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let mut first: Option<(u64, Instant)> = None;
    let mut threads_at_start = std::collections::BTreeMap::new();
    let mut max_rss = 0;
    let mut tick = 0u64;
    while start.elapsed() < duration + Duration::from_secs(5) {
        // Every 10 ms: one log line per tick, one ZMQ message every 10 ticks (100/s and 10/s).
        writeln!(file, "{}", vary(&shapes[tick as usize % shapes.len()], &mut seed)).unwrap();
        if tick.is_multiple_of(10) {
            let seq = (tick / 10) as u32;
            publisher.send_multipart([b"hashtx".to_vec(), vec![7u8; 32], seq.to_le_bytes().to_vec()], 0).unwrap();
        }
        tick += 1;
        if first.is_none() && start.elapsed() >= Duration::from_secs(5) {
            first = Some((cpu_and_rss(p.pid()).0, Instant::now()));
            threads_at_start = ticks_by_thread(p.pid());
        }
        if tick.is_multiple_of(100) {
            max_rss = max_rss.max(cpu_and_rss(p.pid()).1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (t1, since) = first.unwrap();
    let (t2, rss) = cpu_and_rss(p.pid());
    let threads_at_end = ticks_by_thread(p.pid());
    let cpu = (t2 - t1) as f64 / 100.0 / since.elapsed().as_secs_f64() * 100.0;
    println!(
        "steady: {:.0} s at 100 log lines/s + 10 ZMQ msg/s + RPC every 10 s: CPU {cpu:.2}% of one core, RSS {} MB (max {} MB)",
        since.elapsed().as_secs_f64(),
        rss / 1024,
        max_rss.max(rss) / 1024
    );
    let secs = since.elapsed().as_secs_f64();
    for (name, end) in &threads_at_end {
        let used = end.saturating_sub(threads_at_start.get(name).copied().unwrap_or(0));
        if used > 0 {
            println!("  thread {name}: {used} ticks = {:.2}% of one core", used as f64 / 100.0 / secs * 100.0);
        }
    }
}
