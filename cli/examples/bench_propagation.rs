//! Propagation benchmarks. Prints figures for BENCHMARKS.md.
//!
//! 1. Throughput: 1M encoded observations (125k objects × 8 nodes, mostly transactions, a block
//!    every 200 objects, arrival order shuffled within each object) through the propagation
//!    processor's `process`: decoding, windows, summaries and their encoding, with a RocksDB
//!    checkpoint every 50k records, as the runtime does about once a second, and the Prometheus
//!    recorder installed.
//! 2. Live latency on the test bed: three Core nodes, their producers (log poll 10 ms), logparse
//!    and propagation on tansu. For every tip-stage summary: the summary record's broker
//!    timestamp minus the last node's log time for that block (the sighting that closed the
//!    window); p50, p99, max.
//!
//! Run: `cargo run --release -p bmon --example bench_propagation` (after `make tools`);
//! `-- throughput` or `-- latency` runs one part.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark script: fail loudly.

#[path = "common/bench_input.rs"]
mod bench_input;
#[path = "common/feed.rs"]
mod feed;
#[path = "common/run_bmon.rs"]
mod run_bmon;

use std::process::Command;
use std::time::{Duration, Instant};

use bmon_processors::propagation::PropagationConfig;
use bmon_processors::propagation::wiring::PropagationProcessor;
use bmon_schemas::{Codec, Observation, PropagationSummary, Stage};
use bmon_testbed::{Implementation, TestBed, poll_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const OBJECTS: usize = 125_000;
const NODES: usize = 8;
/// The processors' `fetch.wait.max.ms` in the latency run (`BENCH_FETCH_WAIT_MS`, default 5).
static FETCH_WAIT_MS: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_FETCH_WAIT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5));

/// The processors' `linger.ms` in the latency run (`BENCH_LINGER_MS`, default 1, as in production).
static LINGER_MS: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_LINGER_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1));
/// The node producers' log poll interval in the latency run (`BENCH_LOG_POLL_MS`, default 10).
static LOG_POLL_MS: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_LOG_POLL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10));
/// The node producers' `linger.ms` in the latency run (`BENCH_PRODUCER_LINGER_MS`, default
/// `BENCH_LINGER_MS`).
static PRODUCER_LINGER_MS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    std::env::var("BENCH_PRODUCER_LINGER_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(*LINGER_MS)
});

fn throughput() {
    // As in production: metrics are recorded (histograms with their buckets).
    let _handle = bmon_service::install_recorder(&bmon_processors::propagation::metrics_buckets()).unwrap();
    let codec = Codec::default();
    let payloads: Vec<Vec<u8>> =
        bench_input::observations(OBJECTS, NODES).iter().flatten().map(|o| codec.encode(o).unwrap()).collect();
    let one = run_instance(&payloads, 0);
    println!(
        "throughput, one instance: {} observations, {} summary records, {:.2} s, {:.0} observations/s (one core, RocksDB checkpoints and metrics included)",
        payloads.len(),
        one.0,
        one.1.as_secs_f64(),
        payloads.len() as f64 / one.1.as_secs_f64()
    );
    // Two instances, one per core, each owning half the objects (as two replicas owning half the
    // partitions each). An object's observations are consecutive in `payloads`.
    let half: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|k| payloads.chunks(NODES).enumerate().filter(|(i, _)| i % 2 == k).flat_map(|(_, c)| c.to_vec()).collect())
        .collect();
    let start = Instant::now();
    let results: Vec<(usize, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            half.iter().enumerate().map(|(k, p)| s.spawn(move || run_instance(p, k as i32 + 1))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = start.elapsed();
    println!(
        "throughput, two instances in parallel: {} observations, {} summary records, {:.2} s, {:.0} observations/s",
        payloads.len(),
        results.iter().map(|r| r.0).sum::<usize>(),
        took.as_secs_f64(),
        payloads.len() as f64 / took.as_secs_f64()
    );
}

/// Runs one processor over `payloads` (partition `k`); returns (output records, time).
fn run_instance(payloads: &[Vec<u8>], k: i32) -> (usize, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = PropagationConfig {
        state_dir: dir.path().join("state"),
        fleet: std::collections::BTreeMap::from([(
            "main".to_owned(),
            (0..NODES).map(|n| format!("node-{n}")).collect(),
        )]),
        ..PropagationConfig::default()
    };
    let topology = bmon_processors::registry::builtin_topology().unwrap();
    let topics = bmon_processors::propagation::wiring::PropagationTopics::bind(&topology, "propagation").unwrap();
    let mut p = PropagationProcessor::open(config, topics, Duration::from_secs(4200)).unwrap();
    feed::feed(&mut p, "bmon.observations", k, payloads)
}

fn latency() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let mut topology = concat!(env!("CARGO_MANIFEST_DIR"), "/../topology.yaml").to_owned();
    let partitions = std::env::var("BENCH_PARTITIONS").ok().and_then(|v| v.parse::<i32>().ok());
    if let Some(n) = partitions {
        // A small fleet's topology: every topic with n partitions.
        let text = std::fs::read_to_string(&topology).unwrap();
        let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/avro");
        let re: String = text
            .lines()
            .map(|l| match l.trim_start() {
                t if t.starts_with("partitions:") => format!("    partitions: {n}\n"),
                t if t.starts_with("schema_dir:") => format!("schema_dir: {schemas}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        topology = bed.dir().join("topology.yaml").to_string_lossy().into_owned();
        std::fs::write(&topology, re).unwrap();
    }
    let topology = topology.as_str();
    let ok = Command::new(run_bmon::bmon_bin())
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1", "--file", topology])
        .status()
        .unwrap();
    assert!(ok.success());
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let mut keep = Vec::new();
    let mut names = Vec::new();
    let mut producer_ports = Vec::new();
    for (i, node) in bed.network(net).nodes().iter().enumerate() {
        let port = bed.service_port(3 + i as u16);
        producer_ports.push((format!("producer-{}", node.name()), port));
        let state = bed.dir().join(format!("state-{}", node.name()));
        let cfg = format!(
            "[node]\nid = \"{}\"\nnetwork = \"regtest\"\nimplementation = \"core\"\n[log]\npath = \"{}\"\npoll_ms = {}\n\
             [kafka]\nbrokers = \"{brokers}\"\nproducer = {{ \"linger.ms\" = \"{}\" }}\n[state]\ndir = \"{}\"\n[service]\nlisten = \"127.0.0.1:{port}\"\n",
            node.name(),
            node.log_path().display(),
            *LOG_POLL_MS,
            *PRODUCER_LINGER_MS,
            state.display()
        );
        keep.push(run_bmon::spawn(&bed, &format!("producer-{}", node.name()), &["produce"], &cfg));
        names.push(format!("\"{}\"", node.name()));
    }
    // tansu answers every fetch only when fetch.wait.max.ms has run out (Kafka and Redpanda answer
    // as soon as data arrives), so the processors poll with a short wait here.
    let common = |port: u16| {
        format!(
            "topology = \"{topology}\"\n[kafka]\nbrokers = \"{brokers}\"\nconsumer = {{ \"fetch.wait.max.ms\" = \"{}\" }}\n\
             producer = {{ \"linger.ms\" = \"{}\" }}\n[service]\nlisten = \"127.0.0.1:{port}\"\n[runtime]\nsession_timeout_ms = 6000\n",
            *FETCH_WAIT_MS, *LINGER_MS
        )
    };
    let (lp_port, prop_port) = (bed.service_port(1), bed.service_port(2));
    keep.push(run_bmon::spawn(&bed, "logparse", &["process", "logparse"], &common(lp_port)));
    let common = common(prop_port);
    let prop = format!(
        "{common}[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\n",
        bed.dir().join("prop-state").display(),
        names.join(", ")
    );
    keep.push(run_bmon::spawn(&bed, "propagation", &["process", "propagation"], &prop));

    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "bench-latency")
        // Latencies come from the records' create times, so this reader need not be quick; a long
        // wait keeps its polling from loading the broker under measurement.
        .set("fetch.wait.max.ms", "200")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions.unwrap_or(3) {
        tpl.add_partition_offset("bmon.events", p, Offset::Beginning).unwrap();
    }
    for p in 0..partitions.unwrap_or(12) {
        tpl.add_partition_offset("bmon.observations", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let codec = Codec::default();
    // Per (block, node): when the producer read the tip line and when logparse emitted its
    // observation. Per block: the node whose sighting closed the window, its log time, and when
    // propagation emitted the summary. All µs.
    let mut obs_at = std::collections::HashMap::<(String, String), (i64, i64)>::new();
    let mut seen = std::collections::HashMap::<String, (String, i64, i64)>::new();
    let drain = |obs_at: &mut std::collections::HashMap<(String, String), (i64, i64)>,
                 seen: &mut std::collections::HashMap<String, (String, i64, i64)>| {
        while let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let created_us = m.timestamp().to_millis().unwrap_or(0) * 1000;
            if m.topic() == "bmon.observations" {
                let o: Observation = codec.decode(m.payload().unwrap()).unwrap();
                if o.stage == Stage::Tip {
                    let read_us = o.received_at_us.unwrap_or(o.observed_at_us);
                    obs_at.insert((o.hash, o.node_id), (read_us, created_us));
                }
                continue;
            }
            if m.key() != Some(b"propagation_summary".as_slice()) {
                continue;
            }
            let s: PropagationSummary = codec.decode(m.payload().unwrap()).unwrap();
            if s.stage == Stage::Tip && s.revision == 0 && s.missing_nodes.is_empty() {
                let last = s.lags.iter().max_by_key(|l| l.observed_at_us).unwrap();
                seen.insert(s.hash.clone(), (last.node_id.clone(), last.observed_at_us, created_us));
            }
        }
    };
    // Warm-up: the pipeline has caught up with the bootstrap blocks.
    let tip = bed.network(net).node(0).tip().unwrap();
    poll_until("the pipeline to catch up", Duration::from_secs(120), Duration::from_millis(100), || {
        drain(&mut obs_at, &mut seen);
        seen.contains_key(&tip).then_some(())
    })
    .unwrap();
    let mut blocks = Vec::new();
    let count = std::env::var("BENCH_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    for i in 0..count {
        blocks.extend(bed.network(net).mine(i % 3, 1).unwrap());
        std::thread::sleep(Duration::from_millis(250)); // block pacing, not synchronisation
    }
    // Every block's summary, and the closing node's observation (another topic, read apart).
    poll_until("every block's summary", Duration::from_secs(120), Duration::from_millis(100), || {
        drain(&mut obs_at, &mut seen);
        blocks
            .iter()
            .all(|b| seen.get(b).is_some_and(|(node, _, _)| obs_at.contains_key(&(b.clone(), node.clone()))))
            .then_some(())
    })
    .unwrap();
    let stages: Vec<(i64, i64, i64)> = blocks
        .iter()
        .map(|b| {
            let (node, t, summary) = &seen[b];
            let (read, observed) = obs_at[&(b.clone(), node.clone())];
            (read - t, observed - t, summary - t)
        })
        .collect();
    let report = |what: &str, mut lat: Vec<i64>| {
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
        println!(
            "latency, {what}, {} blocks: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            q(0.5),
            q(0.99),
            q(1.0)
        );
    };
    report("last node's log line -> read by its producer", stages.iter().map(|s| s.0).collect());
    report("last node's log line -> its observation emitted by logparse", stages.iter().map(|s| s.1).collect());
    report("last node's log line -> summary emitted by propagation", stages.iter().map(|s| s.2).collect());
    // Each producer's publish time (lines sent until the broker acknowledged them).
    for (name, port) in &producer_ports {
        let body = minreq::get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap();
        let text = body.as_str().unwrap_or_default();
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("bmon_producer_log_publish_seconds")).collect();
        println!("{name} publish histogram:\n  {}", series.join("\n  "));
    }
    // Each processor's own view: how old its input records were (broker timestamp to processing).
    for (name, port) in [("logparse", lp_port), ("propagation", prop_port)] {
        let body = minreq::get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap();
        let text = body.as_str().unwrap_or_default();
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("bmon_processor_record_age_seconds")).collect();
        println!("{name} record age histogram:\n  {}", series.join("\n  "));
    }
}

/// The broker's own share: produce → fetch latency of single records on an empty topic, with
/// the same client settings as the pipeline (acks=all, lz4, linger 1 ms; fetch wait 5 ms).
fn broker() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let topology = concat!(env!("CARGO_MANIFEST_DIR"), "/../topology.yaml");
    let ok = Command::new(run_bmon::bmon_bin())
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1", "--file", topology])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let settings = bmon_kafka::ClientSettings::plaintext(brokers.clone());
    let linger = std::env::var("BENCH_LINGER_MS").unwrap_or_else(|_| "1".into());
    let wait = std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "5".into());
    let producer =
        bmon_kafka::AckingProducer::new(settings.producer_config().unwrap().set("linger.ms", &linger)).unwrap();
    println!("broker: linger.ms {linger}, fetch.wait.max.ms {wait}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acked: Vec<i64> = (0..60)
        .map(|i| {
            let sent = Instant::now();
            rt.block_on(producer.send("bmon.events", 0, b"k", format!("ack-{i}").as_bytes()).unwrap())
                .unwrap()
                .unwrap();
            let took = sent.elapsed().as_micros() as i64;
            std::thread::sleep(Duration::from_millis(20)); // pacing, not synchronisation
            took
        })
        .collect();
    acked.sort_unstable();
    println!(
        "broker, send -> acknowledged: p50 {:.1} ms, p99 {:.1} ms",
        acked[30] as f64 / 1e3,
        acked[59] as f64 / 1e3
    );
    for (topic, partitions) in [("bmon.events", 1), ("bmon.observations", 12)] {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "bench-broker")
            .set("fetch.wait.max.ms", &wait)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut fetch = Vec::new();
        for i in 0..60 {
            let body = format!("{topic}-{i}");
            let sent = Instant::now();
            let a = producer.send(topic, 0, b"k", body.as_bytes()).unwrap();
            let deadline = sent + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(1))
                    && m.payload() == Some(body.as_bytes())
                {
                    fetch.push(sent.elapsed().as_micros() as i64);
                    break;
                }
            }
            rt.block_on(a).unwrap().unwrap();
            std::thread::sleep(Duration::from_millis(100)); // pacing, not synchronisation
        }
        fetch.sort_unstable();
        let q = |p: f64| fetch[((fetch.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
        println!(
            "broker, send -> a consumer of {partitions} partition(s) has it, {} records: p50 {:.1} ms, p99 {:.1} ms",
            fetch.len(),
            q(0.5),
            q(0.99)
        );
    }
    // The same through a group member (subscribe, StreamConsumer), as the processors consume.
    let _guard = rt.enter();
    let stream: rdkafka::consumer::StreamConsumer = settings
        .consumer_config("bench-stream", Duration::from_secs(6))
        .unwrap()
        .set("fetch.wait.max.ms", &wait)
        .create()
        .unwrap();
    stream.subscribe(&["bmon.observations"]).unwrap();
    let mut fetch = Vec::new();
    rt.block_on(async {
        // Join the group first.
        let _ = producer.send("bmon.observations", 0, b"k", b"warm-up").unwrap().await;
        let _ = tokio::time::timeout(Duration::from_secs(30), stream.recv()).await;
        for i in 0..60 {
            let body = format!("stream-{i}");
            let sent = Instant::now();
            let a = producer.send("bmon.observations", i % 12, b"k", body.as_bytes()).unwrap();
            while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(10), stream.recv()).await {
                if m.payload() == Some(body.as_bytes()) {
                    fetch.push(sent.elapsed().as_micros() as i64);
                    break;
                }
            }
            let _ = a.await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    fetch.sort_unstable();
    let q = |p: f64| fetch[((fetch.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    println!(
        "broker, send -> a group member (StreamConsumer) of 12 partitions has it, {} records: p50 {:.1} ms, p99 {:.1} ms",
        fetch.len(),
        q(0.5),
        q(0.99)
    );
}

fn main() {
    let which = std::env::args().nth(1);
    if which.as_deref() == Some("broker") {
        broker();
        return;
    }
    if which.as_deref().is_none_or(|w| w == "throughput") {
        throughput();
    }
    if which.as_deref().is_none_or(|w| w == "latency") {
        latency();
    }
}
