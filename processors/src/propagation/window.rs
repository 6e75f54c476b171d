//! Pure window logic: one window per (network, stage, hash), closed when every expected node
//! reported or at its timeout (event time), amended by late observations. No I/O.
//!
//! Event time is each sighting's time on the host clock's scale: a log line's node timestamp,
//! corrected by the node's estimated clock offset (see [`super::clock`]) when that exceeds the
//! threshold, or the
//! producer's receive time when the node's clock is an outlier (further from its host's clock
//! than `clock_outlier_us`). One bad clock therefore cannot move the watermark, and the
//! correction is fixed when the sighting is recorded, so amendments, restarts and replays give
//! the same lags for the same input.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bmon_schemas::{CloseReason, NodeLag, ObjectKind, Observation, ObservationSource, PropagationSummary, Stage};
use serde::{Deserialize, Serialize};

use super::Hasher;
use super::baseline::{Baseline, BaselineConfig, BaselineState};
use super::clock::ClockEstimator;

/// A window's identity: network, stage and hash. Two networks can share an object (Core and
/// BSV regtest share their genesis block; BCH and BSV share pre-fork history), so the network
/// is part of the key.
/// The network is interned (a fleet has a handful), so a key costs one allocation, the hash.
pub type WindowKey = (Arc<str>, Stage, String);

/// Window settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// Block window timeout, µs.
    pub block_timeout_us: i64,
    /// Transaction window timeout, µs.
    pub tx_timeout_us: i64,
    /// How long a closed window takes late observations, µs.
    pub closed_retention_us: i64,
    /// How long after its last observation a node is still expected, µs.
    pub alive_us: i64,
    /// Always-expected nodes per network (networks not listed: the nodes seen alive).
    pub fleet: BTreeMap<String, Vec<String>>,
    /// Offsets larger than this (µs) are corrected.
    pub correction_threshold_us: i64,
    /// A log time further than this (µs) from its producer's receive time is a clock outlier:
    /// the receive time stands in for it, and it is not sampled for the offset estimate.
    pub clock_outlier_us: i64,
    /// The anomaly baseline's settings.
    pub baseline: BaselineConfig,
}

/// A summary with its anomaly verdict: the baseline threshold its spread exceeded, if it did
/// (judged once, when the window first closes; amendments carry none).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The summary.
    pub summary: PropagationSummary,
    /// The threshold exceeded, µs.
    pub anomaly_threshold_us: Option<i64>,
}

/// Where the windows put the summaries they make: a plain list, or one with verdicts.
pub trait SummaryOut {
    /// Takes one summary and its verdict.
    fn push_summary(&mut self, summary: PropagationSummary, anomaly_threshold_us: Option<i64>);
}

impl SummaryOut for Vec<PropagationSummary> {
    fn push_summary(&mut self, summary: PropagationSummary, _: Option<i64>) {
        self.push(summary);
    }
}

impl SummaryOut for Vec<Judged> {
    fn push_summary(&mut self, summary: PropagationSummary, anomaly_threshold_us: Option<i64>) {
        self.push(Judged { summary, anomaly_threshold_us });
    }
}

/// One object's window at one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Block hash or txid.
    pub hash: String,
    /// Block or tx.
    pub object: ObjectKind,
    /// Stage.
    pub stage: Stage,
    /// Network.
    pub network: String,
    /// Event time at which it times out, µs.
    pub deadline_us: i64,
    /// Nodes expected to report.
    pub expected: BTreeSet<String>,
    /// Each reporting node's first sighting, µs (host-clock scale, see the module doc).
    pub seen: BTreeMap<String, i64>,
    /// Nodes whose sighting time was corrected (offset, or receive time for an outlier).
    #[serde(default)]
    pub corrected: BTreeSet<String>,
    /// Nodes that reported after the close.
    pub late: BTreeSet<String>,
    /// Close reason and time, once closed.
    pub closed: Option<(CloseReason, i64)>,
    /// 0 at close, +1 per amendment.
    pub revision: i32,
}

/// The windows of one input partition, with the fleet knowledge they need.
#[derive(Debug, Clone)]
pub struct Windows {
    config: WindowConfig,
    windows: HashMap<WindowKey, Window, Hasher>,
    /// Open windows by deadline; closed ones by retirement time.
    deadlines: BTreeSet<(i64, WindowKey)>,
    retire: BTreeSet<(i64, WindowKey)>,
    alive: BTreeMap<String, BTreeMap<String, i64>>,
    clocks: ClockEstimator,
    watermark_us: i64,
    /// The event-time minute (`now / PRUNE_EVERY_US`) of the last pruning of departed nodes.
    pruned_us: i64,
    /// Interned network names, for [`WindowKey`].
    networks: HashMap<String, Arc<str>, Hasher>,
    /// Windows changed since the last [`Windows::take_dirty`].
    dirty: HashSet<WindowKey, Hasher>,
    /// Spreads of this partition's closes, for anomaly verdicts.
    baseline: Baseline,
    /// The baseline changed since the last [`Windows::take_baseline`].
    baseline_dirty: bool,
}

/// How often (event time, µs) departed nodes are pruned from the alive table and the clocks.
const PRUNE_EVERY_US: i64 = 60_000_000;

/// When a sighting happened, as the windows use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// Event time, µs.
    pub at_us: i64,
    /// Corrected from the node's own timestamp.
    pub corrected: bool,
    /// The node's clock was an outlier (its receive time was used).
    pub outlier: bool,
}

/// What an observation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Opened or extended an open window.
    Recorded,
    /// The node had already reported for this window.
    Duplicate,
    /// Arrived after the close and amended it.
    Late,
}

impl Windows {
    /// Empty state.
    pub fn new(config: WindowConfig) -> Windows {
        Windows {
            baseline: Baseline::with_config(config.baseline),
            config,
            windows: HashMap::default(),
            deadlines: BTreeSet::new(),
            retire: BTreeSet::new(),
            alive: BTreeMap::new(),
            clocks: ClockEstimator::default(),
            watermark_us: i64::MIN,
            pruned_us: i64::MIN,
            networks: HashMap::default(),
            dirty: HashSet::default(),
            baseline_dirty: false,
        }
    }

    /// Open windows.
    pub fn open_count(&self) -> usize {
        self.deadlines.len()
    }

    /// The highest event time seen.
    pub fn watermark_us(&self) -> i64 {
        self.watermark_us
    }

    /// A window, open or recently closed.
    pub fn get(&self, network: &str, stage: Stage, hash: &str) -> Option<&Window> {
        self.windows.get(&(Arc::from(network), stage, hash.to_owned()))
    }

    /// The interned name of `network`.
    fn network(&mut self, network: &str) -> Arc<str> {
        match self.networks.get(network) {
            Some(n) => Arc::clone(n),
            None => {
                let n: Arc<str> = Arc::from(network);
                self.networks.insert(network.to_owned(), Arc::clone(&n));
                n
            }
        }
    }

    /// The clock estimates of this partition's nodes.
    pub fn clocks(&self) -> &ClockEstimator {
        &self.clocks
    }

    /// Windows held, open or closed (for memory bounds).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// True when no window is held.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The event time of `o`, sampling the node's clock on the way (see the module doc).
    fn sighting(&mut self, o: &Observation) -> Sighting {
        let plain = Sighting { at_us: o.observed_at_us, corrected: false, outlier: false };
        let (ObservationSource::Log, Some(recv)) = (o.source, o.received_at_us) else { return plain };
        if o.received_late {
            // Read as backlog: the receive time is when it was read, so it is no sample of the
            // node's clock, and only a node time ahead of it (a line cannot be written after it
            // was read) marks an outlier. The node's estimate, if any, still applies.
            if o.observed_at_us.saturating_sub(recv) > self.config.clock_outlier_us {
                return Sighting { at_us: recv, corrected: true, outlier: true };
            }
            return match self.clocks.correction_us(&o.node_id, self.config.correction_threshold_us) {
                Some(off) => Sighting { at_us: o.observed_at_us + off, corrected: true, outlier: false },
                None => plain,
            };
        }
        if recv.saturating_sub(o.observed_at_us).saturating_abs() > self.config.clock_outlier_us {
            return Sighting { at_us: recv, corrected: true, outlier: true };
        }
        self.clocks.sample(&o.node_id, o.observed_at_us, recv);
        match self.clocks.correction_us(&o.node_id, self.config.correction_threshold_us) {
            Some(off) => Sighting { at_us: o.observed_at_us + off, corrected: true, outlier: false },
            None => plain,
        }
    }

    fn expected(&self, network: &str, reporter: &str) -> BTreeSet<String> {
        let mut e: BTreeSet<String> = if let Some(nodes) = self.config.fleet.get(network) {
            nodes.iter().cloned().collect()
        } else {
            self.alive
                .get(network)
                .map(|nodes| {
                    nodes
                        .iter()
                        .filter(|(_, last)| **last >= self.watermark_us.saturating_sub(self.config.alive_us))
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        e.insert(reporter.to_owned());
        e
    }

    /// Applies one observation (with the clock estimates for lags); closed or amended windows'
    /// summaries are appended to `out`.
    pub fn observe(&mut self, o: &Observation, out: &mut impl SummaryOut) -> (Outcome, Sighting) {
        let sighting = self.sighting(o);
        let at = sighting.at_us;
        let nodes = match self.alive.get_mut(&o.network) {
            Some(n) => n,
            None => self.alive.entry(o.network.clone()).or_default(),
        };
        match nodes.get_mut(&o.node_id) {
            Some(last) => *last = (*last).max(at),
            None => {
                nodes.insert(o.node_id.clone(), at);
            }
        }
        let key = (self.network(&o.network), o.stage, o.hash.clone());
        let outcome = match self.windows.get_mut(&key) {
            Some(w) if w.closed.is_some() => {
                if w.seen.contains_key(&o.node_id) {
                    Outcome::Duplicate
                } else {
                    w.seen.insert(o.node_id.clone(), at);
                    if sighting.corrected {
                        w.corrected.insert(o.node_id.clone());
                    }
                    w.late.insert(o.node_id.clone());
                    w.revision += 1;
                    let closed_at = w.closed.map_or(at, |c| c.1);
                    w.closed = Some((CloseReason::Amended, closed_at));
                    out.push_summary(summarize(w), None);
                    Outcome::Late
                }
            }
            Some(w) => {
                let first = !w.seen.contains_key(&o.node_id);
                let entry = w.seen.entry(o.node_id.clone()).or_insert(at);
                if at <= *entry {
                    *entry = at;
                    if sighting.corrected {
                        w.corrected.insert(o.node_id.clone());
                    } else {
                        w.corrected.remove(&o.node_id);
                    }
                }
                if first { Outcome::Recorded } else { Outcome::Duplicate }
            }
            None => {
                let timeout =
                    if o.object == ObjectKind::Tx { self.config.tx_timeout_us } else { self.config.block_timeout_us };
                let w = Window {
                    hash: o.hash.clone(),
                    object: o.object,
                    stage: o.stage,
                    network: o.network.clone(),
                    deadline_us: at.saturating_add(timeout),
                    expected: self.expected(&o.network, &o.node_id),
                    seen: BTreeMap::from([(o.node_id.clone(), at)]),
                    corrected: if sighting.corrected { BTreeSet::from([o.node_id.clone()]) } else { BTreeSet::new() },
                    late: BTreeSet::new(),
                    closed: None,
                    revision: 0,
                };
                self.deadlines.insert((w.deadline_us, key.clone()));
                self.windows.insert(key.clone(), w);
                Outcome::Recorded
            }
        };
        self.dirty.insert(key.clone());
        self.watermark_us = self.watermark_us.max(at);
        if outcome == Outcome::Recorded
            && let Some(w) = self.windows.get(&key)
            && w.expected.iter().all(|n| w.seen.contains_key(n))
        {
            // Complete when its last sighting happened: a time of the window's own, whatever
            // else the partition processed before (so a replay in another order agrees).
            let complete_at = w.seen.values().copied().max().unwrap_or(at);
            self.close(&key, CloseReason::AllReported, complete_at, out);
        }
        let now = self.watermark_us;
        self.advance(now, out);
        (outcome, sighting)
    }

    fn close(&mut self, key: &WindowKey, reason: CloseReason, at_us: i64, out: &mut impl SummaryOut) {
        let Some(w) = self.windows.get_mut(key) else { return };
        if w.closed.is_some() {
            return;
        }
        self.deadlines.remove(&(w.deadline_us, key.clone()));
        w.closed = Some((reason, at_us));
        self.retire.insert((at_us.saturating_add(self.config.closed_retention_us), key.clone()));
        self.dirty.insert(key.clone());
        let summary = summarize(w);
        let verdict = self.baseline.judge_and_add(&summary.network, summary.stage, summary.spread_us);
        self.baseline_dirty = true;
        out.push_summary(summary, verdict);
    }

    /// Closes windows whose deadline is at or before `now_us` and forgets closed windows past
    /// their retention. `now_us` is event time (the watermark) or, for idle partitions, the
    /// wall clock. Nodes unseen for the alive span leave the alive table and the clock
    /// estimates, so departed nodes hold no memory and no stale gauge.
    pub fn advance(&mut self, now_us: i64, out: &mut impl SummaryOut) {
        while let Some((deadline, key)) = self.deadlines.first().cloned() {
            if deadline > now_us {
                break;
            }
            self.close(&key, CloseReason::Timeout, deadline, out);
        }
        while let Some((when, key)) = self.retire.first().cloned() {
            if when > now_us {
                break;
            }
            self.retire.pop_first();
            self.windows.remove(&key);
            self.dirty.insert(key);
        }
        // Departed nodes, at most once a minute of event time: a scan of every node per
        // observation would cost more than the window update itself.
        // The cut-off is the start of the current minute, so pruning gives the same result
        // whenever in that minute it runs (after a restore, too).
        let minute = now_us.div_euclid(PRUNE_EVERY_US);
        if minute != self.pruned_us {
            self.pruned_us = minute;
            let before = (minute * PRUNE_EVERY_US).saturating_sub(self.config.alive_us);
            for nodes in self.alive.values_mut() {
                nodes.retain(|_, last| *last >= before);
            }
            self.alive.retain(|_, nodes| !nodes.is_empty());
            self.clocks.forget_before(before);
        }
    }

    /// Marks every window changed, so the next [`Windows::take_dirty`] returns them all (after
    /// a checkpoint that failed to write its batch).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.windows.keys().cloned());
        self.baseline_dirty = true;
    }

    /// Keys changed since the last call, with their current window (`None`: removed).
    pub fn take_dirty(&mut self) -> Vec<(WindowKey, Option<Window>)> {
        std::mem::take(&mut self.dirty).into_iter().map(|k| (k.clone(), self.windows.get(&k).cloned())).collect()
    }

    /// The baseline's state if it changed since the last call (for a checkpoint).
    pub fn take_baseline(&mut self) -> Option<BaselineState> {
        std::mem::take(&mut self.baseline_dirty).then(|| self.baseline.state())
    }

    /// Restores windows saved by [`Windows::take_dirty`], the alive table, clock estimates and
    /// the anomaly baseline.
    pub fn restore(
        &mut self,
        windows: Vec<Window>,
        alive: BTreeMap<String, BTreeMap<String, i64>>,
        clocks: ClockEstimator,
        watermark_us: i64,
        baseline: BaselineState,
    ) {
        self.baseline.restore(baseline);
        for w in windows {
            let key = (self.network(&w.network), w.stage, w.hash.clone());
            match w.closed {
                None => {
                    self.deadlines.insert((w.deadline_us, key.clone()));
                }
                Some((_, at)) => {
                    self.retire.insert((at.saturating_add(self.config.closed_retention_us), key.clone()));
                }
            }
            self.windows.insert(key, w);
        }
        self.alive = alive;
        self.clocks = clocks;
        self.watermark_us = watermark_us;
    }

    /// The alive table (network → node → last observation), for checkpoints.
    pub fn alive(&self) -> &BTreeMap<String, BTreeMap<String, i64>> {
        &self.alive
    }
}

/// Builds the summary of a closed window. Lags are against the earliest sighting; times were
/// corrected when recorded, so the same window always gives the same summary.
pub fn summarize(w: &Window) -> PropagationSummary {
    let times: Vec<(&String, i64, bool)> = w.seen.iter().map(|(n, t)| (n, *t, w.corrected.contains(n))).collect();
    let (first_node, first_seen) =
        times.iter().min_by_key(|(n, t, _)| (*t, (*n).clone())).map(|(n, t, _)| ((*n).clone(), *t)).unwrap_or_default();
    let lags: Vec<NodeLag> = times
        .iter()
        .map(|(n, t, corrected)| NodeLag {
            node_id: (*n).clone(),
            observed_at_us: *t,
            lag_us: t - first_seen,
            corrected: *corrected,
            late: w.late.contains(*n),
        })
        .collect();
    let max = lags.iter().map(|l| l.lag_us).max().unwrap_or(0);
    let n = lags.len().max(1) as f64;
    let mean = lags.iter().map(|l| l.lag_us as f64).sum::<f64>() / n;
    let var = lags.iter().map(|l| (l.lag_us as f64 - mean).powi(2)).sum::<f64>() / n;
    let (reason, closed_at) = w.closed.unwrap_or((CloseReason::Unknown, 0));
    PropagationSummary {
        hash: w.hash.clone(),
        object: w.object,
        stage: w.stage,
        network: w.network.clone(),
        first_node,
        first_seen_us: first_seen,
        clock_corrected: lags.iter().any(|l| l.corrected),
        lags,
        spread_us: max,
        stddev_us: var.sqrt(),
        missing_nodes: w.expected.iter().filter(|e| !w.seen.contains_key(*e)).cloned().collect(),
        expected_nodes: w.expected.len() as i32,
        late_count: w.late.len() as i32,
        close_reason: reason,
        closed_at_us: closed_at,
        revision: w.revision,
    }
}
