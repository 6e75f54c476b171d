//! The propagation processor as the runtime drives it (decode, windows, outputs, RocksDB): an
//! anomalous spread is published as an anomaly event besides its summary, and a checkpoint
//! restores the open windows in a new instance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bmon_processors::propagation::PropagationConfig;
use bmon_processors::propagation::wiring::{PropagationProcessor, PropagationTopics};
use bmon_processors::registry::builtin_topology;
use bmon_processors::runtime::{Input, Output, Processor};
use bmon_schemas::{
    Codec, FactKey, ObjectKind, Observation, ObservationSource, PropagationAnomaly, PropagationSummary, Stage,
};

const T0: i64 = 1_800_000_000_000_000;

fn obs(hash: &str, node: &str, at: i64) -> Vec<u8> {
    Codec::default()
        .encode(&Observation {
            hash: hash.into(),
            object: ObjectKind::Block,
            stage: Stage::Tip,
            node_id: node.into(),
            network: "main".into(),
            observed_at_us: at,
            source: ObservationSource::Log,
            height: None,
            fact: FactKey { stream: "log".into(), epoch: "e".into(), offset: at },
            received_at_us: Some(at),
            received_late: false,
        })
        .unwrap()
}

fn config(dir: &std::path::Path) -> PropagationConfig {
    PropagationConfig {
        state_dir: dir.join("state"),
        fleet: BTreeMap::from([("main".to_owned(), vec!["a".to_owned(), "b".to_owned()])]),
        baseline_min: 20,
        ..PropagationConfig::default()
    }
}

fn open(dir: &std::path::Path) -> PropagationProcessor {
    let topics = PropagationTopics::bind(&builtin_topology().unwrap(), "propagation").unwrap();
    PropagationProcessor::open(config(dir), topics, std::time::Duration::from_secs(4200)).unwrap()
}

fn feed(p: &mut PropagationProcessor, offset: i64, payload: &[u8]) -> Vec<Output> {
    let input = Input {
        topic: "bmon.observations",
        partition: 0,
        offset,
        key: None,
        payload,
        timestamp_ms: None,
        replay: false,
        replay_id: None,
    };
    let mut out = Vec::new();
    p.process(&input, &mut out).unwrap();
    out
}

#[test]
fn anomalous_spread_is_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    let mut offset = 0;
    let mut last = Vec::new();
    // 30 blocks whose second sighting comes 10–40 ms after the first, then one 5 s late.
    for i in 0..31i64 {
        let lag = if i == 30 { 5_000_000 } else { 10_000 + (i % 4) * 10_000 };
        let hash = format!("{i:064x}");
        let t = T0 + i * 600_000_000;
        assert!(feed(&mut p, offset, &obs(&hash, "a", t)).is_empty());
        last = feed(&mut p, offset + 1, &obs(&hash, "b", t + lag));
        offset += 2;
        let key = format!("main/{hash}");
        assert!(last.iter().all(|o| o.key == key.as_bytes()), "keyed by network and hash, as topology.yaml says");
        if i < 30 {
            assert_eq!(last.len(), 1, "block {i}: one summary, no anomaly");
            let _: PropagationSummary = Codec::default().decode(&last[0].payload).unwrap();
        }
    }
    assert_eq!(last.len(), 2, "the anomaly, then its summary");
    let a: PropagationAnomaly = Codec::default().decode(&last[0].payload).unwrap();
    assert_eq!((a.spread_us, a.revision, a.last_node.as_str()), (5_000_000, 0, "b"));
    assert!(a.threshold_us < a.spread_us && a.threshold_us >= 40_000, "threshold {} µs", a.threshold_us);
    assert!(Codec::default().decode::<PropagationSummary>(&last[0].payload).is_err(), "the kind is in the schema");
    let s: PropagationSummary = Codec::default().decode(&last[1].payload).unwrap();
    assert_eq!(s.spread_us, 5_000_000);
    assert!(last.iter().all(|o| o.topic == "bmon.events"));
}

#[test]
fn checkpoint_restores_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let hash = format!("{:064x}", 7);
    {
        let mut p = open(dir.path());
        assert!(feed(&mut p, 0, &obs(&hash, "a", T0)).is_empty());
        p.checkpoint(&[("bmon.observations".into(), 0, 1)]);
    }
    let mut p = open(dir.path());
    assert_eq!(p.restore("bmon.observations", 0, 1), Some(1), "resumes after the checkpointed record");
    assert_eq!(p.restore("bmon.observations", 1, 0), None, "no state for another partition");
    let out = feed(&mut p, 1, &obs(&hash, "b", T0 + 250_000));
    assert_eq!(out.len(), 1);
    let s: PropagationSummary = Codec::default().decode(&out[0].payload).unwrap();
    assert_eq!(s.lags.len(), 2, "the restored window had a's sighting");
    assert_eq!(s.spread_us, 250_000);
}

/// The anomaly baseline is part of the checkpoint: a slow block after a restart from RocksDB is
/// judged against the spreads before the restart, as a straight run judges it.
#[test]
fn the_anomaly_baseline_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let block = |i: i64, lag: i64| {
        let hash = format!("{i:064x}");
        let t = T0 + i * 600_000_000;
        (obs(&hash, "a", t), obs(&hash, "b", t + lag))
    };
    {
        let mut p = open(dir.path());
        for i in 0..30i64 {
            let (a, b) = block(i, 10_000 + (i % 4) * 10_000);
            feed(&mut p, 2 * i, &a);
            assert_eq!(feed(&mut p, 2 * i + 1, &b).len(), 1, "block {i}: a summary, no anomaly");
        }
        p.checkpoint(&[("bmon.observations".into(), 0, 60)]);
    }
    let mut p = open(dir.path());
    assert_eq!(p.restore("bmon.observations", 0, 60), Some(60));
    let (a, b) = block(30, 5_000_000);
    feed(&mut p, 60, &a);
    let out = feed(&mut p, 61, &b);
    assert_eq!(out.len(), 2, "the anomaly and its summary, judged against the restored baseline");
    let anomaly: PropagationAnomaly = Codec::default().decode(&out[0].payload).unwrap();
    assert_eq!(anomaly.threshold_us, 40_000, "the 0.99 quantile of the 30 spreads before the restart");
}

#[test]
fn stale_local_state_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut p = open(dir.path());
        feed(&mut p, 0, &obs(&format!("{:064x}", 1), "a", T0));
        p.checkpoint(&[("bmon.observations".into(), 0, 1)]);
    }
    let mut p = open(dir.path());
    assert_eq!(p.restore("bmon.observations", 0, 5), None, "the group is past the checkpoint: replay instead");
    assert_eq!(p.restore("bmon.observations", 0, 1), None, "and the stale copy was dropped");
}

#[test]
fn bad_records_are_dead_letter_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    let input = Input {
        topic: "bmon.observations",
        partition: 0,
        offset: 0,
        key: None,
        payload: b"garbage",
        timestamp_ms: None,
        replay: false,
        replay_id: None,
    };
    let mut out = Vec::new();
    assert!(p.process(&input, &mut out).is_err());
    assert!(out.is_empty());
}
