//! The Loki sink loses nothing and repeats nothing through a Loki outage and a broker outage.
//!
//! Two Core nodes stream transactions (one every 200 ms) and blocks through their producers to
//! the sink. Mid-stream VictoriaLogs is stopped for 60 s (the sink retries with backoff; offsets
//! are not stored meanwhile), then started again on the same data; then the broker is stopped
//! for 60 s and started again (the sink's consumer loop fails and resumes from the committed
//! offsets, the records Loki already holds skipped by their pushed offsets). At the end every
//! node is stopped and VictoriaLogs must hold every line of both files exactly once: no loss,
//! and no repeat either (VictoriaLogs, unlike Loki, keeps byte-identical repeats, so any
//! repeat would show).
//!
//! A second test kills the sink (SIGKILL) mid-stream three times. Nothing may be lost. Repeats
//! are tolerated there, and only these: entries of a batch that VictoriaLogs took in while the
//! sink was killed before it could record Loki's answer (the one window the pushed offsets
//! cannot close). Each is byte-identical to its first copy (same stream, time and line, which
//! Loki drops; VictoriaLogs keeps it), and no entry is held more than once per kill plus once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;
mod loki;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bmon_testbed::{Implementation, Managed, TestBed, stop_all};
use common::*;
use loki::*;

const OUTAGE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(240);
const KILLS: usize = 3;

/// Sends a transaction every 200 ms from node 0 and mines a block every 10, for `span`.
fn stream(bed: &TestBed, net: usize, span: Duration) {
    let end = Instant::now() + span;
    let mut i = 0;
    while Instant::now() < end {
        bed.network(net).node(0).send_tx().unwrap();
        i += 1;
        if i % 10 == 0 {
            bed.network(net).mine(i / 10 % 2, 1).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200)); // pacing the stream, not synchronisation
    }
}

fn start(bed: &mut TestBed, brokers: &str) -> (usize, Vec<Managed>, String) {
    let net = bed.start_network(Implementation::Core, 2).unwrap();
    bed.network(net).mine(0, 30).unwrap();
    let producers = bed
        .network(net)
        .nodes()
        .iter()
        .map(|n| start_producer(bed, n.name(), "core", &n.log_path(), brokers))
        .collect();
    let state = bed.dir().join("loki-state");
    let section = section(bed.victoria_logs(&[]).unwrap(), &state, "min_backoff_ms = 100\nmax_backoff_ms = 2000\n");
    (net, producers, section)
}

/// Stops the nodes (their files are final) and checks what VictoriaLogs holds against them:
/// every line at least once, and at most `1 + repeats_allowed` times, repeats byte-identical.
fn assert_every_line_held(bed: &mut TestBed, net: usize, repeats_allowed: usize) {
    let nodes: Vec<(String, std::path::PathBuf)> =
        bed.network(net).nodes().iter().map(|n| (n.name().to_owned(), n.log_path())).collect();
    for n in bed.network_mut(net).nodes_mut() {
        n.shutdown();
    }
    let v = bed.victoria_logs(&[]).unwrap();
    for (name, log) in &nodes {
        let want = sorted(expected(log, name, "regtest", "core"));
        let query = format!("_stream:{{source=\"log\",node=\"{name}\"}}");
        let counts = |keys: &[Key]| {
            let mut m: BTreeMap<Key, usize> = BTreeMap::new();
            for k in keys {
                *m.entry(k.clone()).or_default() += 1;
            }
            m
        };
        let wanted = counts(&want);
        // Every wanted entry at least as often as the file has it, at most 1 + repeats times.
        let fits = |got: &[Key]| {
            let held = counts(got);
            held.keys().all(|k| wanted.contains_key(k))
                && wanted.iter().all(|(k, n)| held.get(k).is_some_and(|h| *h >= *n && *h <= n * (1 + repeats_allowed)))
        };
        let got = if repeats_allowed == 0 {
            wait_held(v, &query, &want, WAIT)
        } else {
            let deadline = Instant::now() + WAIT;
            loop {
                let got = sorted(held(v, &query));
                if fits(&got) || Instant::now() > deadline {
                    break got;
                }
                std::thread::sleep(Duration::from_millis(500)); // poll interval
            }
        };
        let (missing, extra) = diff(&want, &got);
        assert!(fits(&got), "{name}: {} lines, {} held; missing {missing:?}; extra {extra:?}", want.len(), got.len());
        let repeats = got.len() - want.len();
        if repeats_allowed == 0 {
            assert_eq!(repeats, 0, "{name}: repeats");
            eprintln!("{name}: all {} lines held exactly once", want.len());
        } else {
            eprintln!(
                "{name}: all {} lines held; {repeats} byte-identical repeats from batches in flight at a kill",
                want.len()
            );
        }
    }
}

#[test]
fn nothing_lost_or_repeated_through_loki_and_broker_outages() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let (net, mut producers, section) = start(&mut bed, &brokers);
    let mut sink = start_processor(&bed, "loki", "0", &section, &brokers, 0);
    stream(&bed, net, Duration::from_secs(5));

    bed.victoria_logs(&[]).unwrap().stop();
    stream(&bed, net, OUTAGE);
    bed.victoria_logs(&[]).unwrap().restart().unwrap();
    stream(&bed, net, Duration::from_secs(5));
    let log = std::fs::read_to_string(sink.log()).unwrap();
    assert!(log.contains("loki push failed; retrying"), "the sink saw the outage and retried");

    bed.broker().unwrap().stop();
    let outage = Instant::now();
    stream(&bed, net, OUTAGE);
    std::thread::sleep(OUTAGE.saturating_sub(outage.elapsed())); // the outage itself
    bed.broker().unwrap().restart().unwrap();
    stream(&bed, net, Duration::from_secs(5));

    assert_every_line_held(&mut bed, net, 0);
    stop_all(producers.iter_mut().chain(std::iter::once(&mut sink)), Duration::from_secs(10));
}

#[test]
fn nothing_lost_when_the_sink_is_killed() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let (net, mut producers, section) = start(&mut bed, &brokers);
    let mut sink = start_processor(&bed, "loki", "0", &section, &brokers, 0);
    for _ in 0..KILLS {
        stream(&bed, net, Duration::from_secs(4));
        sink.kill_hard();
        stream(&bed, net, Duration::from_secs(1));
        sink = start_processor(&bed, "loki", "0", &section, &brokers, 0);
    }
    stream(&bed, net, Duration::from_secs(3));
    assert_every_line_held(&mut bed, net, KILLS);
    stop_all(producers.iter_mut().chain(std::iter::once(&mut sink)), Duration::from_secs(10));
}
