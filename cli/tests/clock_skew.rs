//! Lags stay true when node clocks are off, and one wild clock closes no one else's windows.
//!
//! Four "nodes" write Core v31 UpdateTip lines to debug.log files that real producers follow
//! (their host clock is right): one with a right clock, one 2 s ahead, one 2 s behind, and one
//! an hour ahead. Every block is "seen" by the nodes at lags of about 0, 40, 80 and 120 ms (the
//! writes are paced so, and each write's true host time is noted), and each line carries its
//! node's skewed clock. logparse and propagation run as in production.
//!
//! - The ±2 s nodes' lags equal the true lags (from the noted write times) within 5 ms, the
//!   issue's bound; runs on this bed measure about 0.15 ms. Their offsets are estimated from the
//!   producer's receive times (taken at the change notification, see `producers/src/tail/stamp.rs`);
//!   what remains is the smallest tailing delay each estimate saw.
//! - The hour-ahead node is an outlier: its sightings take the receive time (within 50 ms of the
//!   truth), it is counted in `bmon_propagation_clock_outliers_total`, and every window still
//!   closes as complete (revision 0), not as a timeout forced by a watermark an hour ahead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_schemas::{CloseReason, PropagationSummary, Stage};
use bmon_testbed::{TestBed, poll_until};
use common::*;

/// (node, clock skew µs, true lag µs).
const NODES: [(&str, i64, i64); 4] =
    [("right", 0, 0), ("ahead", 2_000_000, 40_000), ("behind", -2_000_000, 80_000), ("hour", 3_600_000_000, 120_000)];
/// Blocks before the measured ones, so that the observation partitions' clock estimates have
/// samples (a real fleet's transactions give them thousands).
const WARM_UP: usize = 10;
const BLOCKS: usize = 20;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn tip_line(at_us: i64, hash: &str, height: usize) -> String {
    format!(
        "{} [msghand] UpdateTip: new best={hash} height={height} version=0x20000000 log2_work=2.000000 tx=2 date='2026-11-25T01:00:18Z' progress=1.000000 cache=0.3MiB(1txo)\n",
        bmon_logparse::time::format_us(at_us)
    )
}

#[test]
fn skewed_clocks_give_true_lags_and_an_hour_ahead_closes_nothing() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let mut files = Vec::new();
    let mut producers = Vec::new();
    for (name, _, _) in NODES {
        let dir = bed.dir().join(format!("node-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("debug.log");
        files.push(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap());
        producers.push(start_producer(&bed, name, "core", &log, &brokers));
    }
    let port = bed.service_port(1);
    let fleet: Vec<String> = NODES.iter().map(|(n, _, _)| format!("\"{n}\"")).collect();
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\n",
        bed.dir().join("propagation-state").display(),
        fleet.join(", ")
    );
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let _propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, port);
    poll_until("propagation ready", Duration::from_secs(90), Duration::from_millis(100), || {
        http_get(&format!("http://127.0.0.1:{port}/readyz")).filter(|(c, _)| *c == 200)
    })
    .unwrap();

    let mut hashes = Vec::new();
    // Each line's true write time on the host clock, by (block, node): the lags to compare with.
    let mut written: BTreeMap<(usize, &str), i64> = BTreeMap::new();
    for k in 0..WARM_UP + BLOCKS {
        let hash = format!("{:064x}", 0xb10c_0000_u64 + k as u64);
        let start = now_us();
        for ((name, skew, lag), file) in NODES.iter().zip(&mut files) {
            let wait = start + lag - now_us();
            if wait > 0 {
                std::thread::sleep(Duration::from_micros(wait as u64)); // the injected lag, not synchronisation
            }
            let at = now_us();
            written.insert((k, name), at);
            file.write_all(tip_line(at + skew, &hash, k + 1).as_bytes()).unwrap();
            file.flush().unwrap();
        }
        hashes.push(hash);
        std::thread::sleep(Duration::from_millis(300)); // block spacing, not synchronisation
    }

    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let tips = |s: &[PropagationSummary]| -> BTreeMap<String, PropagationSummary> {
        s.iter().filter(|x| x.stage == Stage::Tip && x.revision == 0).map(|x| (x.hash.clone(), x.clone())).collect()
    };
    assert!(
        reader.read_until(Duration::from_secs(120), |s| hashes.iter().all(|h| tips(s).contains_key(h))),
        "a tip summary for every block"
    );
    let got = tips(&reader.facts);
    let mut worst = 0;
    for (k, hash) in hashes.iter().enumerate().skip(WARM_UP) {
        let s = &got[hash];
        assert_eq!(s.close_reason, CloseReason::AllReported, "{hash}: closed as {:?}", s.close_reason);
        assert!(s.missing_nodes.is_empty(), "{hash}: missing {:?}", s.missing_nodes);
        let lag_of = |n: &str| s.lags.iter().find(|l| l.node_id == n).unwrap();
        let base = lag_of("right").lag_us;
        for (name, _, _) in NODES {
            let measured = lag_of(name).lag_us - base;
            let truth = written[&(k, name)] - written[&(k, "right")];
            let tolerance = if name == "hour" { 50_000 } else { 5_000 };
            if name != "hour" {
                worst = worst.max((measured - truth).abs());
            }
            assert!(
                (measured - truth).abs() <= tolerance,
                "{hash}: {name} lag {measured} µs, true {truth} µs (±{tolerance})"
            );
        }
        assert!(lag_of("ahead").corrected && lag_of("behind").corrected && lag_of("hour").corrected);
    }
    eprintln!("largest lag error of the ±2 s nodes: {worst} µs");
    let (_, metrics) = http_get(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
    // Every exported series is declared, and outputs are counted once acknowledged.
    assert_declared(&metrics);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("bmon_processor_outputs_total{") && l.contains("processor=\"propagation\"")),
        "bmon_processor_outputs_total is recorded"
    );
    let outliers: f64 = metrics
        .lines()
        .find(|l| l.starts_with("bmon_propagation_clock_outliers_total") && l.contains("node=\"hour\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(outliers >= BLOCKS as f64, "the hour-ahead node is reported: {outliers} outliers");
    assert!(
        !metrics.contains("bmon_propagation_clock_outliers_total{node=\"ahead\""),
        "±2 s is corrected, not an outlier"
    );
    drop(producers);
}

/// A log's history, read late by a producer that starts after it was written, is no clock offset.
///
/// Two right-clocked "nodes" have 8 blocks' UpdateTip lines in their logs, written 30 s before
/// their producers start, with the second node 50 ms behind the first; then 4 more blocks are
/// written live. The history's facts are marked backlog on the log topic (the live ones are not),
/// and every block's tip summary has the second node 50 ms behind, uncorrected. Before backlog was
/// marked, the 30 s read delay looked like a clock offset and the history was "corrected" by it.
#[test]
fn history_read_late_is_not_a_clock_offset() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let names = ["early", "late"];
    let mut files = Vec::new();
    let mut logs = Vec::new();
    for name in names {
        let dir = bed.dir().join(format!("node-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("debug.log");
        files.push(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap());
        logs.push(log);
    }
    let hash = |k: usize| format!("{:064x}", 0xbac0_0000_u64 + k as u64);
    let t0 = now_us() - 30_000_000;
    for k in 0..8 {
        for (i, file) in files.iter_mut().enumerate() {
            let at = t0 + k as i64 * 1_000_000 + i as i64 * 50_000;
            file.write_all(tip_line(at, &hash(k), k + 1).as_bytes()).unwrap();
        }
    }
    let mut producers = Vec::new();
    for (name, log) in names.iter().zip(&logs) {
        producers.push(start_producer(&bed, name, "core", log, &brokers));
    }
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [\"early\", \"late\"]\n",
        bed.dir().join("propagation-state").display()
    );
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let _propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, 0);
    let mut facts = TopicReader::<bmon_schemas::LogLineFact>::new(&brokers, "bmon.node.log", 6);
    assert!(facts.read_until(Duration::from_secs(60), |f| f.len() >= 16), "the history is published");
    for k in 8..12 {
        let start = now_us();
        for (i, file) in files.iter_mut().enumerate() {
            let wait = start + i as i64 * 50_000 - now_us();
            if wait > 0 {
                std::thread::sleep(Duration::from_micros(wait as u64)); // the injected lag, not synchronisation
            }
            file.write_all(tip_line(start + i as i64 * 50_000, &hash(k), k + 1).as_bytes()).unwrap();
            file.flush().unwrap();
        }
        std::thread::sleep(Duration::from_millis(300)); // block spacing, not synchronisation
    }
    assert!(facts.read_until(Duration::from_secs(60), |f| f.len() >= 24), "the live lines are published");
    for f in &facts.facts {
        let line = String::from_utf8_lossy(&f.line);
        let live = (8..12).any(|k| line.contains(&hash(k)));
        assert_eq!(f.backlog, !live, "backlog flag of {line}");
    }
    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let tips = |s: &[PropagationSummary]| -> BTreeMap<String, PropagationSummary> {
        s.iter().filter(|x| x.stage == Stage::Tip && x.revision == 0).map(|x| (x.hash.clone(), x.clone())).collect()
    };
    assert!(reader.read_until(Duration::from_secs(120), |s| (0..12).all(|k| tips(s).contains_key(&hash(k)))));
    let got = tips(&reader.facts);
    for k in 0..12 {
        let s = &got[&hash(k)];
        let late = s.lags.iter().find(|l| l.node_id == "late").unwrap();
        assert!(!late.corrected && !s.clock_corrected, "block {k}: corrected: {s:?}");
        // History: exactly as written. Live: as written, the injected 50 ms within the writer's pacing.
        let tolerance = if k < 8 { 0 } else { 5_000 };
        assert!((late.lag_us - 50_000).abs() <= tolerance, "block {k}: lag {} µs", late.lag_us);
    }
    drop(producers);
}
