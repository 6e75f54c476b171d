//! Property tests of the pure propagation windows: arrival order, duplicates, late data, a
//! missing node and timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bmon_processors::propagation::baseline::BaselineConfig;
use bmon_processors::propagation::window::{Judged, WindowConfig, Windows};
use bmon_schemas::{CloseReason, FactKey, ObjectKind, Observation, ObservationSource, PropagationSummary, Stage};
use proptest::prelude::*;

const TIMEOUT: i64 = 600_000_000;
const T0: i64 = 1_700_000_000_000_000;

fn config(nodes: usize) -> WindowConfig {
    WindowConfig {
        block_timeout_us: TIMEOUT,
        tx_timeout_us: 3_600_000_000,
        closed_retention_us: 3_600_000_000,
        alive_us: 1_800_000_000,
        fleet: std::collections::BTreeMap::from([(
            "regtest".to_owned(),
            (0..nodes).map(|i| format!("n{i}")).collect(),
        )]),
        correction_threshold_us: 1_000_000,
        clock_outlier_us: 120_000_000,
        baseline: Default::default(),
    }
}

fn obs(hash: &str, node: usize, at: i64) -> Observation {
    obs_recv(hash, node, at, at)
}

/// An observation whose node clock says `at` and whose producer received it at `recv`.
fn obs_recv(hash: &str, node: usize, at: i64, recv: i64) -> Observation {
    Observation {
        hash: hash.into(),
        object: ObjectKind::Block,
        stage: Stage::Tip,
        node_id: format!("n{node}"),
        network: "regtest".into(),
        observed_at_us: at,
        source: ObservationSource::Log,
        height: Some(1),
        fact: FactKey { stream: "log".into(), epoch: "e".into(), offset: at },
        received_at_us: Some(recv),
        received_late: false,
    }
}

fn run(windows: &mut Windows, input: &[Observation]) -> Vec<PropagationSummary> {
    let mut out = Vec::new();
    for o in input {
        windows.observe(o, &mut out);
    }
    out
}

/// Lags (µs after T0) of up to 6 nodes, each within the timeout.
fn lags() -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::vec(0i64..TIMEOUT / 2, 2..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Any arrival order gives the same summary: first node, lags, spread and standard deviation.
    #[test]
    fn order_does_not_matter(lags in lags(), seed in any::<u64>()) {
        let input: Vec<Observation> = lags.iter().enumerate().map(|(i, l)| obs("h", i, T0 + l)).collect();
        let mut shuffled = input.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let a = run(&mut Windows::new(config(lags.len())), &input);
        let b = run(&mut Windows::new(config(lags.len())), &shuffled);
        prop_assert_eq!(a.len(), 1);
        prop_assert_eq!(b.len(), 1);
        let (mut a, mut b) = (a[0].clone(), b[0].clone());
        a.closed_at_us = 0;
        b.closed_at_us = 0;
        prop_assert_eq!(&a, &b);
        let min = *lags.iter().min().unwrap();
        let max = *lags.iter().max().unwrap();
        prop_assert_eq!(a.spread_us, max - min);
        prop_assert_eq!(a.first_seen_us, T0 + min);
        prop_assert_eq!(a.close_reason, CloseReason::AllReported);
        prop_assert!(a.missing_nodes.is_empty());
        let mean = lags.iter().map(|l| (l - min) as f64).sum::<f64>() / lags.len() as f64;
        let var = lags.iter().map(|l| ((l - min) as f64 - mean).powi(2)).sum::<f64>() / lags.len() as f64;
        prop_assert!((a.stddev_us - var.sqrt()).abs() < 1e-3);
    }

    /// Repeated observations change nothing: one summary, the earliest sighting per node.
    #[test]
    fn duplicates_are_ignored(lags in lags(), repeat in 0usize..6, delay in 1i64..1_000_000) {
        let n = lags.len();
        let mut input: Vec<Observation> = lags.iter().enumerate().map(|(i, l)| obs("h", i, T0 + l)).collect();
        let last = input.pop().unwrap();
        let dup = obs("h", repeat % (n - 1), T0 + lags[repeat % (n - 1)] + delay);
        input.push(dup.clone());
        input.push(dup);
        input.push(last);
        let with = run(&mut Windows::new(config(n)), &input);
        let clean: Vec<Observation> = lags.iter().enumerate().map(|(i, l)| obs("h", i, T0 + l)).collect();
        let without = run(&mut Windows::new(config(n)), &clean);
        prop_assert_eq!(with.len(), 1);
        prop_assert_eq!(with[0].lags.clone(), without[0].lags.clone());
        prop_assert_eq!(with[0].spread_us, without[0].spread_us);
    }

    /// A node that never reports: the window closes at its deadline, naming it missing.
    #[test]
    fn missing_node_times_out(lags in lags()) {
        let n = lags.len();
        let mut w = Windows::new(config(n + 1));
        let mut out = run(&mut w, &lags.iter().enumerate().map(|(i, l)| obs("h", i, T0 + l)).collect::<Vec<_>>());
        prop_assert!(out.is_empty(), "closed before the deadline");
        w.advance(T0 + lags[0] + TIMEOUT, &mut out);
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(out[0].close_reason, CloseReason::Timeout);
        prop_assert_eq!(out[0].closed_at_us, T0 + lags[0] + TIMEOUT);
        prop_assert_eq!(out[0].missing_nodes.clone(), vec![format!("n{n}")]);
        prop_assert_eq!(out[0].expected_nodes, n as i32 + 1);
    }

    /// A sighting after the close amends the summary once (revision 1, marked late); a repeat of
    /// it changes nothing.
    #[test]
    fn late_data_amends_once(lags in lags(), after in 1i64..TIMEOUT) {
        let n = lags.len();
        let mut w = Windows::new(config(n + 1));
        let mut out = run(&mut w, &lags.iter().enumerate().map(|(i, l)| obs("h", i, T0 + l)).collect::<Vec<_>>());
        w.advance(T0 + lags[0] + TIMEOUT, &mut out);
        prop_assert_eq!(out.len(), 1);
        let late = obs("h", n, T0 + lags[0] + TIMEOUT + after);
        let amended = run(&mut w, &[late.clone(), late]);
        prop_assert_eq!(amended.len(), 1);
        let s = &amended[0];
        prop_assert_eq!(s.revision, 1);
        prop_assert_eq!(s.close_reason, CloseReason::Amended);
        prop_assert_eq!(s.late_count, 1);
        prop_assert!(s.missing_nodes.is_empty());
        let late_node = format!("n{n}");
        prop_assert!(s.lags.iter().any(|l| l.late && l.node_id == late_node));
    }

    /// Event time closes windows: a later observation of another object moves the watermark past
    /// an incomplete window's deadline.
    #[test]
    fn watermark_closes_other_windows(lag in 0i64..TIMEOUT) {
        let mut w = Windows::new(config(2));
        let mut out = run(&mut w, &[obs("a", 0, T0)]);
        prop_assert!(out.is_empty());
        out = run(&mut w, &[obs("b", 0, T0 + TIMEOUT + lag)]);
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(out[0].hash.as_str(), "a");
        prop_assert_eq!(out[0].close_reason, CloseReason::Timeout);
    }
}

/// A node whose log clock is 5 s behind its host has its lag corrected and the summary says so.
#[test]
fn clock_offsets_are_corrected() {
    let mut w = Windows::new(config(2));
    let out =
        run(&mut w, &[obs_recv("h", 0, T0, T0 + 1_000), obs_recv("h", 1, T0 - 5_000_000 + 300_000, T0 + 302_000)]);
    assert_eq!(out.len(), 1);
    let s = &out[0];
    assert!(s.clock_corrected);
    assert_eq!(s.first_node, "n0");
    let n1 = s.lags.iter().find(|l| l.node_id == "n1").unwrap();
    assert!(n1.corrected);
    assert_eq!(n1.lag_us, 302_000, "5 s offset removed, its 2 ms tailing delay remains");
}

/// Core and BSV regtest share a genesis block: the same hash on two networks is two windows.
#[test]
fn networks_stay_apart() {
    let mut cfg = config(2);
    cfg.fleet.insert("regtest-bsv".into(), vec!["n0".into(), "n1".into()]);
    let mut w = Windows::new(cfg);
    let mut other = obs("genesis", 1, T0 + 5);
    other.network = "regtest-bsv".into();
    let out = run(&mut w, &[obs("genesis", 0, T0), other]);
    assert!(out.is_empty(), "one sighting per network: neither window is complete");
    assert_eq!(w.get("regtest", Stage::Tip, "genesis").unwrap().seen.len(), 1);
    assert_eq!(w.get("regtest-bsv", Stage::Tip, "genesis").unwrap().seen.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Nodes whose log clocks are off by up to ±2 s from their (correct) host clocks: once each
    /// clock has a sample, the lags equal the unskewed run's within the tailing delay (≤ 5 ms).
    #[test]
    fn skewed_clocks_give_true_lags(
        lags in proptest::collection::vec(0i64..2_000_000, 3..5),
        skews in proptest::collection::vec(-2_000_000i64..2_000_000, 5),
        tail in proptest::collection::vec(0i64..5_000, 5),
    ) {
        let n = lags.len();
        let cfg = || { let mut c = config(n); c.correction_threshold_us = 0; c };
        // A first block gives every node a clock sample.
        let warm: Vec<Observation> = (0..n).map(|i| obs_recv("warm", i, T0 - skews[i], T0 + tail[i])).collect();
        let block = |i: usize, skewed: bool| {
            let t = T0 + 60_000_000 + lags[i];
            let s = if skewed { skews[i] } else { 0 };
            obs_recv("b", i, t - s, t + tail[i])
        };
        let mut skewed = Windows::new(cfg());
        run(&mut skewed, &warm);
        let a = run(&mut skewed, &(0..n).map(|i| block(i, true)).collect::<Vec<_>>());
        let b = run(&mut Windows::new(config(n)), &(0..n).map(|i| block(i, false)).collect::<Vec<_>>());
        prop_assert_eq!(a.len(), 1);
        for (x, y) in a[0].lags.iter().zip(&b[0].lags) {
            prop_assert!((x.lag_us - y.lag_us).abs() <= 5_000, "{} vs {}", x.lag_us, y.lag_us);
        }
    }
}

/// One node an hour ahead of its host: its sightings take the receive time, are marked as
/// outliers, and never move the watermark, so the other windows close on time.
#[test]
fn an_hour_ahead_does_not_close_windows() {
    let hour = 3_600_000_000;
    let mut w = Windows::new(config(3));
    let mut out: Vec<bmon_schemas::PropagationSummary> = Vec::new();
    w.observe(&obs("a", 0, T0), &mut out);
    let (_, sighting) = w.observe(&obs_recv("a", 2, T0 + 10_000 + hour, T0 + 10_000), &mut out);
    assert!(sighting.outlier);
    assert_eq!(w.watermark_us(), T0 + 10_000, "the outlier's receive time, not its clock");
    assert!(out.is_empty(), "a still waits for n1");
    w.observe(&obs("a", 1, T0 + 20_000), &mut out);
    assert_eq!(out.len(), 1);
    let lag = out[0].lags.iter().find(|l| l.node_id == "n2").unwrap();
    assert_eq!((lag.lag_us, lag.corrected), (10_000, true));
}

/// A backlog read late (the producer's first read of a log with history, or its catch-up) is no
/// clock sample: its sightings keep their log times, the node is not "corrected", and an hour-old
/// backlog is not an outlier. A backlog line an hour ahead of when it was read still is.
#[test]
fn backlog_read_late_is_no_clock_sample() {
    let late = |hash: &str, node: usize, at: i64, recv: i64| Observation {
        received_late: true,
        ..obs_recv(hash, node, at, recv)
    };
    let mut w = Windows::new(config(2));
    // Both nodes' lines were written an hour before the producers read them.
    let hour = 3_600_000_000;
    let out = run(&mut w, &[late("old", 0, T0, T0 + hour), late("old", 1, T0 + 40_000, T0 + hour + 1_000)]);
    assert_eq!(out.len(), 1);
    let lag = out[0].lags.iter().find(|l| l.node_id == "n1").unwrap();
    assert_eq!((lag.lag_us, lag.corrected), (40_000, false), "log times, uncorrected");
    assert!(w.clocks().is_empty(), "no sample taken");
    let (_, s) =
        w.observe(&late("ahead", 0, T0 + 2 * hour, T0 + hour), &mut Vec::<bmon_schemas::PropagationSummary>::new());
    assert!(s.outlier, "written an hour after it was read: a clock ahead");
}

/// A checkpoint of `w` (everything a store would write), restored into fresh windows.
fn restored(w: &mut Windows, config: WindowConfig) -> Windows {
    let windows = w.take_dirty().into_iter().filter_map(|(_, win)| win).collect();
    let baseline = w.take_baseline().unwrap_or_default();
    let mut fresh = Windows::new(config);
    fresh.restore(windows, w.alive().clone(), w.clocks().clone(), w.watermark_us(), baseline);
    fresh
}

/// Two nodes per block, the second `spread` µs after the first, blocks a minute apart.
fn spread_blocks(spreads: &[i64]) -> Vec<Observation> {
    spreads
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let at = T0 + i as i64 * 60_000_000;
            [obs(&format!("b{i}"), 0, at), obs(&format!("b{i}"), 1, at + s)]
        })
        .collect()
}

fn judged(windows: &mut Windows, input: &[Observation]) -> Vec<(String, Option<i64>)> {
    let mut out: Vec<Judged> = Vec::new();
    for o in input {
        windows.observe(o, &mut out);
    }
    out.into_iter().map(|j| (j.summary.hash, j.anomaly_threshold_us)).collect()
}

fn anomaly_config() -> WindowConfig {
    WindowConfig { baseline: BaselineConfig { size: 20, min_samples: 5, quantile: 0.8 }, ..config(2) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The anomaly verdicts are a function of the partition's input: a restart from a
    /// checkpoint at any point judges every later summary as the straight run did.
    #[test]
    fn anomaly_verdicts_survive_a_restore(spreads in proptest::collection::vec(0i64..10_000_000, 10..40), cut in 0usize..80) {
        let input = spread_blocks(&spreads);
        let cut = cut.min(input.len());
        let straight = judged(&mut Windows::new(anomaly_config()), &input);
        let mut first = Windows::new(anomaly_config());
        let mut verdicts = judged(&mut first, &input[..cut]);
        let mut second = restored(&mut first, anomaly_config());
        verdicts.extend(judged(&mut second, &input[cut..]));
        prop_assert_eq!(verdicts, straight);
    }
}

#[test]
fn a_slow_block_after_a_restore_is_still_an_anomaly() {
    let mut spreads = vec![1_000_000; 12];
    spreads.push(9_000_000);
    let input = spread_blocks(&spreads);
    let mut first = Windows::new(anomaly_config());
    let before = judged(&mut first, &input[..20]);
    assert!(before.iter().all(|(_, v)| v.is_none()), "steady spreads are no anomaly: {before:?}");
    let mut second = restored(&mut first, anomaly_config());
    let after = judged(&mut second, &input[20..]);
    assert_eq!(after.last(), Some(&("b12".to_owned(), Some(1_000_000))), "{after:?}");
}
