//! The propagation processor as the runtime drives it (decode, windows, outputs, RocksDB): an
//! anomalous spread is published as an anomaly event besides its summary, and a checkpoint
//! restores the open windows in a new instance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bmon_processors::propagation::PropagationConfig;
use bmon_processors::propagation::wiring::{ANOMALY_KIND, PropagationProcessor, SUMMARY_KIND};
use bmon_processors::runtime::{Input, Output, Processor};
use bmon_schemas::{Codec, FactKey, ObjectKind, Observation, ObservationSource, PropagationSummary, Stage};

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

fn feed(p: &mut PropagationProcessor, offset: i64, payload: &[u8]) -> Vec<Output> {
    let input = Input {
        topic: "bmon.observations",
        partition: 0,
        offset,
        key: None,
        payload,
        timestamp_ms: None,
        replay: false,
    };
    let mut out = Vec::new();
    p.process(&input, &mut out).unwrap();
    out
}

#[test]
fn anomalous_spread_is_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
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
        let keys: Vec<&[u8]> = last.iter().map(|o| o.key.as_slice()).collect();
        if i < 30 {
            assert_eq!(keys, vec![SUMMARY_KIND.as_bytes()], "block {i}: one summary, no anomaly");
        }
    }
    let keys: Vec<&[u8]> = last.iter().map(|o| o.key.as_slice()).collect();
    assert_eq!(keys, vec![ANOMALY_KIND.as_bytes(), SUMMARY_KIND.as_bytes()]);
    let s: PropagationSummary = Codec::default().decode(&last[0].payload).unwrap();
    assert_eq!(s.spread_us, 5_000_000);
    assert!(last.iter().all(|o| o.topic == "bmon.events"));
}

#[test]
fn checkpoint_restores_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let hash = format!("{:064x}", 7);
    {
        let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
        assert!(feed(&mut p, 0, &obs(&hash, "a", T0)).is_empty());
        p.checkpoint(&[("bmon.observations".into(), 0, 1)]);
    }
    let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
    assert_eq!(p.restore("bmon.observations", 0, 1), Some(1), "resumes after the checkpointed record");
    assert_eq!(p.restore("bmon.observations", 1, 0), None, "no state for another partition");
    let out = feed(&mut p, 1, &obs(&hash, "b", T0 + 250_000));
    assert_eq!(out.len(), 1);
    let s: PropagationSummary = Codec::default().decode(&out[0].payload).unwrap();
    assert_eq!(s.lags.len(), 2, "the restored window had a's sighting");
    assert_eq!(s.spread_us, 250_000);
}

#[test]
fn stale_local_state_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
        feed(&mut p, 0, &obs(&format!("{:064x}", 1), "a", T0));
        p.checkpoint(&[("bmon.observations".into(), 0, 1)]);
    }
    let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
    assert_eq!(p.restore("bmon.observations", 0, 5), None, "the group is past the checkpoint: replay instead");
    assert_eq!(p.restore("bmon.observations", 0, 1), None, "and the stale copy was dropped");
}

#[test]
fn bad_records_are_dead_letter_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PropagationProcessor::open(config(dir.path())).unwrap();
    let input = Input {
        topic: "bmon.observations",
        partition: 0,
        offset: 0,
        key: None,
        payload: b"garbage",
        timestamp_ms: None,
        replay: false,
    };
    let mut out = Vec::new();
    assert!(p.process(&input, &mut out).is_err());
    assert!(out.is_empty());
}
