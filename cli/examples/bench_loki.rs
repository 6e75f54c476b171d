//! Loki sink and `bmon grep` benchmark on the test bed (tansu and VictoriaLogs). Prints
//! figures for BENCHMARKS.md.
//!
//! 1. Backlog: 1M log-line facts from 10 nodes (real Core line shapes, fresh hashes) are
//!    written to `bmon.node.log`, then `bmon process loki` starts: lines/s until Loki
//!    (VictoriaLogs) has accepted them all (the sink's own counter).
//! 2. Steady: 100 lines/s per node × 10 nodes for 60 s: the sink's CPU per 1 000 lines.
//! 3. `bmon grep` over the whole backlog (a pattern that matches 1 line in ~100), against a
//!    plain consumer reading the same records without looking at them, in the same run.
//!
//! Run: `cargo run --release -p bmon --example bench_loki` (after `make tools`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/log_facts.rs"]
mod log_facts;
#[path = "common/run_bmon.rs"]
mod run_bmon;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use bmon_testbed::{TestBed, poll_until};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The sink's accepted-entry counter, from its /metrics.
fn accepted(port: u16) -> u64 {
    let Ok(r) = minreq::get(format!("http://127.0.0.1:{port}/metrics")).with_timeout(2).send() else { return 0 };
    r.as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("bmon_loki_entries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// CPU seconds (user + system) of a process so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A plain consumer reading every record of the topic, all partitions in parallel (one thread
/// each, as `bmon grep` does), touching nothing; returns the records read.
fn plain_read(brokers: &str) -> u64 {
    let handles: Vec<_> = (0..6)
        .map(|p| {
            let brokers = brokers.to_owned();
            std::thread::spawn(move || {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("group.id", "bench-plain")
                    .set("enable.partition.eof", "true")
                    .set("fetch.wait.max.ms", "10")
                    .set("fetch.max.bytes", "52428800")
                    .set("max.partition.fetch.bytes", "8388608")
                    .set("queued.min.messages", "200000")
                    .create()
                    .unwrap();
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset("bmon.node.log", p, Offset::Beginning).unwrap();
                c.assign(&tpl).unwrap();
                let mut n = 0u64;
                let mut bytes = 0usize;
                loop {
                    match c.poll(Duration::from_millis(500)) {
                        Some(Ok(m)) => {
                            n += 1;
                            bytes += m.payload().map_or(0, <[u8]>::len);
                        }
                        Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                        _ => {}
                    }
                }
                std::hint::black_box(bytes);
                n
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

fn main() {
    let backlog: usize = std::env::var("BENCH_LINES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let (ok, _, err) = {
        let out = Command::new(run_bmon::bmon_bin())
            .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        (out.status.success(), (), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert!(ok, "topology apply: {err}");
    let vlogs = bed.victoria_logs(&[]).unwrap();
    let (vl_url, vl_path) = (vlogs.url(), vlogs.push_path());

    let mut writer = log_facts::Writer::new(&brokers);
    let started = Instant::now();
    writer.write(backlog);
    println!("backlog: {backlog} lines written in {:.1} s", started.elapsed().as_secs_f64());

    // 1. The sink drains the backlog into VictoriaLogs.
    let port = bed.service_port(1);
    let config = format!(
        "topology = \"{}/../topology.yaml\"\n[kafka]\nbrokers = \"{brokers}\"\n[service]\nlisten = \"127.0.0.1:{port}\"\n\
         [runtime]\nsession_timeout_ms = 6000\n[loki]\nurl = \"{vl_url}\"\npush_path = \"{vl_path}\"\nstate_dir = \"{}\"\n",
        env!("CARGO_MANIFEST_DIR"),
        bed.dir().join("loki-state").display()
    );
    let sink = run_bmon::spawn(&bed, "loki", &["process", "loki"], &config);
    let started = Instant::now();
    poll_until("the sink to push the backlog", Duration::from_secs(1800), Duration::from_millis(250), || {
        (accepted(port) >= backlog as u64).then_some(())
    })
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sink backlog: {backlog} lines to VictoriaLogs in {secs:.1} s = {:.0} lines/s (sink CPU {:.1} s)",
        backlog as f64 / secs,
        cpu_s(sink.pid())
    );

    // 2. Steady: 1 000 lines/s in all for 60 s.
    let cpu0 = cpu_s(sink.pid());
    let base = accepted(port);
    let started = Instant::now();
    for s in 0..60u32 {
        writer.write(1000);
        let next = Duration::from_secs(u64::from(s) + 1);
        std::thread::sleep(next.saturating_sub(started.elapsed())); // pacing the load
    }
    poll_until("the steady lines to be pushed", Duration::from_secs(60), Duration::from_millis(100), || {
        (accepted(port) >= base + 60_000).then_some(())
    })
    .unwrap();
    let cpu = cpu_s(sink.pid()) - cpu0;
    println!(
        "sink steady: 60000 lines at 100 lines/s x 10 nodes: {cpu:.2} CPU s = {:.2} ms CPU per 1000 lines ({:.2} % of a core)",
        cpu / 60.0 * 1000.0,
        cpu / started.elapsed().as_secs_f64() * 100.0
    );

    // 3. grep against a plain consumer, each twice, interleaved.
    let total = backlog as u64 + 60_000;
    for round in 0..2 {
        let t = Instant::now();
        let n = plain_read(&brokers);
        let plain = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = Command::new(run_bmon::bmon_bin())
            .args(["grep", "UpdateTip: new best=0000000000000000000[0-4]", "--since", "1d", "--brokers", &brokers])
            .output()
            .unwrap();
        let grep = t.elapsed().as_secs_f64();
        let summary = String::from_utf8_lossy(&out.stderr);
        let hits: BTreeSet<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        println!(
            "round {round}: plain consumer {n} records in {plain:.2} s = {:.0} records/s; bmon grep {} hits in {grep:.2} s = {:.0} records/s ({:.2}x the plain read); {}",
            n as f64 / plain,
            hits.len(),
            total as f64 / grep,
            grep / plain,
            summary.trim()
        );
    }
    drop(sink);
}
