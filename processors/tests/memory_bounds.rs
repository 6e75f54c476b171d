//! Per-node state stays bounded: 1000 restarts (epochs) of one node and 50 nodes that leave.
//!
//! logparse: the dedup ranges keep at most `MAX_EPOCHS` epochs per (node, stream), and nodes
//! unseen for `node_idle_s` are forgotten (trackers and dedup). propagation: the alive table and
//! the clock estimates forget nodes unseen for `alive_s`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bmon_processors::logparse::dedup::MAX_EPOCHS;
use bmon_processors::logparse::wiring::{LogParseProcessor, LogParseTopics};
use bmon_processors::logparse::{LogParse, LogParseConfig};
use bmon_processors::propagation::window::{WindowConfig, Windows};
use bmon_processors::registry::builtin_topology;
use bmon_processors::runtime::{Input, Processor};
use bmon_schemas::samples::envelope;
use bmon_schemas::{Codec, FactKey, LogLineFact, ObjectKind, Observation, ObservationSource, Stage};

const T0: i64 = 1_800_000_000_000_000;
const SECOND: i64 = 1_000_000;

/// An UpdateTip line of `node` in file epoch `epoch` at byte `offset`, received at `at`.
fn tip_line(node: &str, epoch: &str, offset: i64, at: i64, hash: u64) -> Vec<u8> {
    let mut e = envelope(node, "log", offset);
    e.source.epoch = epoch.to_owned();
    e.received_at_us = at;
    let line = format!(
        "2027-01-15T08:00:00.000000Z [msghand] UpdateTip: new best={hash:064x} height=1 version=0x20000000 log2_work=2.000000 tx=2 date='2027-01-15T08:00:00Z' progress=1.000000 cache=0.3MiB(1txo)"
    );
    let end = offset + line.len() as i64 + 1;
    Codec::default()
        .encode(&LogLineFact {
            envelope: e,
            path: "debug.log".into(),
            line: line.into_bytes(),
            truncated: false,
            end_offset: end,
            backlog: false,
        })
        .unwrap()
}

#[test]
fn logparse_state_is_bounded_across_restarts_and_departures() {
    let config = LogParseConfig { node_idle_s: 3600, ..LogParseConfig::default() };
    let topics = LogParseTopics::bind(&builtin_topology().unwrap(), "logparse").unwrap();
    let mut p = LogParseProcessor::new(LogParse::new(config), topics, Duration::from_secs(600));
    let mut offset = 0;
    let mut feed = |p: &mut LogParseProcessor, payload: Vec<u8>| {
        let input = Input {
            topic: "bmon.node.log",
            partition: 0,
            offset,
            key: None,
            payload: &payload,
            timestamp_ms: None,
            replay: false,
            replay_id: None,
        };
        offset += 1;
        let mut out = Vec::new();
        p.process(&input, &mut out).unwrap();
        out.len()
    };
    // 50 nodes report once at T0, then leave.
    for n in 0..50 {
        assert!(feed(&mut p, tip_line(&format!("gone-{n}"), "e", 0, T0, n)) > 0);
    }
    // One node restarts 1000 times (a new file epoch each), over two hours.
    for epoch in 0..1000u64 {
        let at = T0 + epoch as i64 * 8 * SECOND;
        for line in 0..5u64 {
            feed(&mut p, tip_line("restarting", &epoch.to_string(), line as i64 * 200, at, 1_000 + epoch * 5 + line));
        }
    }
    let sizes = p.state_size();
    assert_eq!(sizes.len(), 1, "one input partition");
    let [nodes, objects, streams, epochs, ranges] = sizes[0].1;
    assert_eq!(nodes, 1, "the 50 departed nodes were forgotten");
    assert!(objects <= 5_000, "objects remembered: {objects}");
    assert_eq!(streams, 1);
    assert_eq!(epochs, MAX_EPOCHS, "only the newest epochs are kept");
    assert!(ranges <= MAX_EPOCHS, "each epoch's lines merged into one range: {ranges}");
}

fn obs(node: &str, hash: u64, at: i64) -> Observation {
    Observation {
        hash: format!("{hash:064x}"),
        object: ObjectKind::Block,
        stage: Stage::Tip,
        node_id: node.into(),
        network: "regtest".into(),
        observed_at_us: at,
        source: ObservationSource::Log,
        height: None,
        fact: FactKey { stream: "log".into(), epoch: "e".into(), offset: at },
        received_at_us: Some(at + 1_000),
        received_late: false,
    }
}

#[test]
fn propagation_forgets_departed_nodes() {
    let config = WindowConfig {
        block_timeout_us: 600 * SECOND,
        tx_timeout_us: 3600 * SECOND,
        closed_retention_us: 3600 * SECOND,
        alive_us: 1800 * SECOND,
        fleet: BTreeMap::new(),
        correction_threshold_us: SECOND,
        clock_outlier_us: 120 * SECOND,
        baseline: Default::default(),
    };
    let mut w = Windows::new(config);
    let mut out: Vec<bmon_schemas::PropagationSummary> = Vec::new();
    for n in 0..50 {
        w.observe(&obs(&format!("gone-{n}"), n, T0), &mut out);
    }
    assert_eq!(w.clocks().len(), 50);
    // Three hours of one node's blocks, one a minute.
    for i in 0..180u64 {
        w.observe(&obs("stays", 1_000 + i, T0 + i as i64 * 60 * SECOND), &mut out);
    }
    assert_eq!(w.clocks().len(), 1, "departed nodes' clock estimates are gone");
    assert_eq!(w.alive().values().map(BTreeMap::len).sum::<usize>(), 1, "and their alive entries");
    assert!(w.len() <= 70, "windows are retired after the closed retention: {}", w.len());
}
