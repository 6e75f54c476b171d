//! Connects the pure windows to the runtime: decoding, per-partition state with RocksDB
//! checkpoints, metrics, summaries and anomaly events.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_schemas::{
    CloseReason, Codec, ObjectKind, Observation, PropagationAnomaly, PropagationSummary, Record, Stage,
};
use bmon_topology::{BindError, Topology};

use super::Hasher;
use super::baseline::BaselineConfig;
use super::config::PropagationConfig;
use super::store::{Checkpoint, Store, StoreError, key_of};
use super::telemetry as t;
use super::telemetry::label;
use super::window::{Judged, Outcome, WindowConfig, Windows};
use crate::runtime::{Input, KeyFields, KeyKind, Output, OutputTopic, Processor, RecordError};

/// propagation's output topics, from topology.yaml. Summaries and anomalies are keyed by
/// network and hash (or hash, or network): one object's records stay in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationTopics {
    /// Where summaries go.
    pub summaries: OutputTopic,
    /// Where anomaly events go.
    pub anomalies: OutputTopic,
}

impl PropagationTopics {
    /// Binds the topics of topology processor `name` (its input must carry observations).
    pub fn bind(t: &Topology, name: &str) -> Result<PropagationTopics, BindError> {
        let p = t.processor_named(name)?;
        t.input_of(p, Observation::FAMILY)?;
        let keys = [KeyKind::NetworkObject, KeyKind::ObjectHash, KeyKind::Network];
        Ok(PropagationTopics {
            summaries: OutputTopic::bind(t, p, PropagationSummary::FAMILY, &keys)?,
            anomalies: OutputTopic::bind(t, p, PropagationAnomaly::FAMILY, &keys)?,
        })
    }
}

/// Metric label of a stage.
fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Header => "header",
        Stage::Block => "block",
        Stage::Tip => "tip",
        Stage::TxAccept => "txaccept",
        Stage::ZmqBlock => "zmqblock",
        Stage::ZmqTx => "zmqtx",
        Stage::Unknown => "unknown",
    }
}

/// Metric label of an object kind.
fn object_label(o: ObjectKind) -> &'static str {
    match o {
        ObjectKind::Block => "block",
        ObjectKind::Tx => "tx",
        ObjectKind::Unknown => "unknown",
    }
}

/// Metric label of a close reason.
fn reason_label(r: CloseReason) -> &'static str {
    match r {
        CloseReason::AllReported => "all_reported",
        CloseReason::Timeout => "timeout",
        CloseReason::Amended => "amended",
        CloseReason::Unknown => "unknown",
    }
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Summaries whose metrics this process already recorded, by (network, stage, hash, revision):
/// a summary published again (after a failed delivery, a restart of the consumer loop or a
/// rebalance) is published again, with the same anomaly verdict (the windows judge it from the
/// restored baseline), but not counted twice. Keys are kept as 64-bit hashes (a collision among
/// the 200 000 kept is about a one-in-10^9 chance, and would leave one summary uncounted).
/// Bounded; the oldest go first.
#[derive(Debug, Default)]
struct Recorded {
    keys: HashSet<u64, Hasher>,
    order: VecDeque<u64>,
    seed: Hasher,
}

impl Recorded {
    const CAPACITY: usize = 200_000;

    fn key(&self, s: &PropagationSummary) -> u64 {
        self.seed.hash_one((&s.network, s.stage, &s.hash, s.revision))
    }

    /// Notes that `s`'s revision is recorded; false if it was already.
    fn first_time(&mut self, s: &PropagationSummary) -> bool {
        let key = self.key(s);
        if !self.keys.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        true
    }
}

/// Metrics for a summary this process publishes for the first time.
fn record(j: &Judged) {
    let s = &j.summary;
    let (stage, object) = (stage_label(s.stage), object_label(s.object));
    let net = s.network.clone();
    if s.revision == 0 {
        t::SPREAD
            .with_histogram([label("network", net.clone()), label("object", object), label("stage", stage)])
            .record(secs(s.spread_us));
        for l in &s.lags {
            t::NODE_LAG
                .with_histogram([
                    label("network", net.clone()),
                    label("object", object),
                    label("stage", stage),
                    label("node", l.node_id.clone()),
                ])
                .record(secs(l.lag_us));
        }
        for m in &s.missing_nodes {
            t::MISSING
                .with_counter([label("network", net.clone()), label("stage", stage), label("node", m.clone())])
                .increment(1);
        }
        if j.anomaly_threshold_us.is_some() {
            t::ANOMALIES.with_counter([label("network", net.clone()), label("stage", stage)]).increment(1);
        }
    } else if let Some(l) = s.lags.iter().rev().find(|l| l.late) {
        t::LATE
            .with_counter([label("network", net), label("stage", stage), label("node", l.node_id.clone())])
            .increment(1);
    }
    t::SUMMARIES.with_counter([label("close_reason", reason_label(s.close_reason))]).increment(1);
    t::SUMMARY_LATENCY.histogram0().record(secs(now_us() - s.closed_at_us.max(s.first_seen_us)));
}

/// The propagation operator as the runtime runs it.
pub struct PropagationProcessor {
    config: PropagationConfig,
    topics: PropagationTopics,
    replay: Duration,
    window_config: WindowConfig,
    /// Windows per input partition (the processor has one input topic).
    partitions: HashMap<i32, Windows, Hasher>,
    recorded: Recorded,
    /// Nodes with a clock-offset gauge, so a departed node's gauge can be cleared.
    gauged: BTreeSet<String>,
    store: Store,
    codec: Codec,
    summaries: Vec<Judged>,
}

impl PropagationProcessor {
    /// Opens the state store under `config.state_dir`; publishes to `topics`, and rebuilds
    /// state from `replay` of input (topology.yaml's store window; see
    /// [`PropagationConfig::history_needed`]).
    pub fn open(
        config: PropagationConfig,
        topics: PropagationTopics,
        replay: Duration,
    ) -> Result<PropagationProcessor, StoreError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", config.state_dir.display())))?;
        let store = Store::open(&config.state_dir)?;
        let s = |x: u64| i64::try_from(x).unwrap_or(i64::MAX / 2_000_000).saturating_mul(1_000_000);
        let window_config = WindowConfig {
            block_timeout_us: s(config.block_timeout_s),
            tx_timeout_us: s(config.tx_timeout_s),
            closed_retention_us: s(config.closed_retention_s),
            alive_us: s(config.alive_s),
            fleet: config.fleet.clone(),
            correction_threshold_us: config.clock_correction_threshold_ms.saturating_mul(1000),
            clock_outlier_us: s(config.clock_outlier_s),
            baseline: BaselineConfig {
                size: config.baseline_size,
                min_samples: config.baseline_min,
                quantile: config.anomaly_quantile,
            },
        };
        Ok(PropagationProcessor {
            topics,
            replay,
            config,
            window_config,
            partitions: HashMap::default(),
            recorded: Recorded::default(),
            gauged: BTreeSet::new(),
            store,
            codec: Codec::default(),
            summaries: Vec::new(),
        })
    }

    /// A summary's output records: the summary, and its anomaly event if it is one. The first
    /// time this process publishes the revision, its metrics are recorded.
    fn publish(&mut self, j: &Judged, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let s = &j.summary;
        let encode = |e: bmon_schemas::CodecError| RecordError::Invalid(e.to_string());
        let payload = self.codec.encode(s).map_err(encode)?;
        if self.recorded.first_time(s) {
            record(j);
        }
        let fields = KeyFields { node_id: &s.first_node, network: &s.network, hash: &s.hash };
        if let Some(threshold_us) = j.anomaly_threshold_us {
            let anomaly = PropagationAnomaly {
                hash: s.hash.clone(),
                object: s.object,
                stage: s.stage,
                network: s.network.clone(),
                revision: s.revision,
                spread_us: s.spread_us,
                threshold_us,
                quantile: self.config.anomaly_quantile,
                first_node: s.first_node.clone(),
                last_node: s.lags.iter().max_by_key(|l| l.lag_us).map(|l| l.node_id.clone()).unwrap_or_default(),
            };
            out.push(self.topics.anomalies.output(&fields, self.codec.encode(&anomaly).map_err(encode)?));
        }
        out.push(self.topics.summaries.output(&fields, payload));
        Ok(())
    }

    /// Sets each node's clock-offset gauge from the partition with the most samples of it, and
    /// clears (NaN) the gauges of nodes no partition holds any more.
    fn clock_gauges(&mut self) {
        let mut best: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
        for w in self.partitions.values() {
            for (node, off, n) in w.clocks().offsets() {
                let e = best.entry(node).or_insert((n, off));
                if n > e.0 {
                    *e = (n, off);
                }
            }
        }
        for (node, (_, off)) in &best {
            t::CLOCK_OFFSET.with_gauge([label("node", (*node).to_owned())]).set(secs(*off));
        }
        let now: BTreeSet<String> = best.keys().map(|n| (*n).to_owned()).collect();
        for gone in self.gauged.difference(&now) {
            t::CLOCK_OFFSET.with_gauge([label("node", gone.clone())]).set(f64::NAN);
        }
        self.gauged = now;
    }

    fn open_windows(&self) -> usize {
        self.partitions.values().map(Windows::open_count).sum()
    }
}

impl Processor for PropagationProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let o: Observation = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        if o.hash.is_empty() || o.node_id.is_empty() {
            return Err(RecordError::Invalid("observation without hash or node".into()));
        }
        let mut summaries = std::mem::take(&mut self.summaries);
        summaries.clear();
        let cfg = &self.window_config;
        let windows = self.partitions.entry(input.partition).or_insert_with(|| Windows::new(cfg.clone()));
        let (outcome, sighting) = windows.observe(&o, &mut summaries);
        if input.replay {
            // Already published (and counted) by whoever processed these records live.
            self.summaries = summaries;
            return Ok(());
        }
        if outcome == Outcome::Duplicate {
            t::DUPLICATES.counter0().increment(1);
        }
        if sighting.outlier {
            t::CLOCK_OUTLIERS.with_counter([label("node", o.node_id.clone())]).increment(1);
        }
        for s in &summaries {
            self.publish(s, out)?;
        }
        self.summaries = summaries;
        Ok(())
    }

    fn tick(&mut self, now_us: i64, idle: &[(&str, i32)], out: &mut Vec<Output>) {
        let mut closed: Vec<Judged> = Vec::new();
        for (_, partition) in idle {
            // Live, caught-up, quiet partitions: wall-clock time moves their windows on.
            if let Some(w) = self.partitions.get_mut(partition) {
                let now = now_us.max(w.watermark_us());
                w.advance(now, &mut closed);
            }
        }
        for s in &closed {
            if let Err(e) = self.publish(s, out) {
                tracing::warn!(error = %e, "summary not published");
            }
        }
        t::OPEN_WINDOWS.gauge0().set(self.open_windows() as f64);
        self.clock_gauges();
    }

    fn assigned(&mut self, _topic: &str, partition: i32) {
        self.partitions.remove(&partition);
    }

    fn reset(&mut self, _topic: &str, partition: i32) {
        // The local store holds only acknowledged state; the partition restores from it.
        self.partitions.remove(&partition);
    }

    fn revoked(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&partition);
        // Another instance owns it now; a later return must replay, not trust this copy.
        if let Err(e) = self.store.drop_partition(topic, partition) {
            tracing::warn!(topic, partition, error = %e, "cannot drop partition state");
        }
    }

    fn replay_window(&self) -> Option<Duration> {
        Some(self.replay)
    }

    fn restore(&mut self, topic: &str, partition: i32, first: i64) -> Option<i64> {
        let saved = match self.store.load(topic, partition) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "unreadable partition state; replaying instead");
                return None;
            }
        };
        if saved.offset < first {
            tracing::info!(
                topic,
                partition,
                saved = saved.offset,
                first,
                "local state is older than the group's offset; replaying instead"
            );
            let _ = self.store.drop_partition(topic, partition);
            return None;
        }
        let mut w = Windows::new(self.window_config.clone());
        w.restore(saved.windows, saved.alive, saved.clocks, saved.watermark_us, saved.baseline);
        self.partitions.insert(partition, w);
        Some(saved.offset)
    }

    fn checkpoint(&mut self, positions: &[(String, i32, i64)]) {
        for (topic, partition, offset) in positions {
            let Some(w) = self.partitions.get_mut(partition) else { continue };
            let changed: Vec<(Vec<u8>, Option<super::window::Window>)> =
                w.take_dirty().into_iter().map(|(key, win)| (key_of(&key), win)).collect();
            let baseline = w.take_baseline();
            let c = Checkpoint {
                changed: &changed,
                alive: w.alive(),
                clocks: w.clocks(),
                baseline: baseline.as_ref(),
                watermark_us: w.watermark_us(),
                offset: *offset,
            };
            if let Err(e) = self.store.checkpoint(topic, *partition, &c) {
                // The dirty set went with this batch: a later checkpoint would save a newer offset
                // without these changes. Drop the local copy and write every window next time.
                tracing::warn!(topic, partition, error = %e, "checkpoint failed; the next one rewrites the partition");
                if let Err(e) = self.store.drop_partition(topic, *partition) {
                    tracing::warn!(topic, partition, error = %e, "cannot drop the partition's local state");
                }
                if let Some(w) = self.partitions.get_mut(partition) {
                    w.mark_all_dirty();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_revision_is_recorded_once() {
        let mut r = Recorded::default();
        let mut s = bmon_schemas::samples::propagation_summary();
        assert!(r.first_time(&s));
        assert!(!r.first_time(&s), "published again after a failure: not counted again");
        s.revision += 1;
        assert!(r.first_time(&s), "an amendment is a new revision");
        s.revision -= 1;
        s.network = "other".into();
        assert!(r.first_time(&s), "the same hash on another network is another window");
    }
}
