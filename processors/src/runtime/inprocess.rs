//! In-process chaining: several processors in one process, each stage's outputs fed straight to
//! the stages that read their topic, without crossing the broker.
//!
//! Used over a [`super::bounded::BoundedSource`] to re-run the pipeline on a past time range.
//! Everything that depends on time is driven by the input: the clock is an injectable
//! [`Clock`], by default the event clock (the newest input timestamp), and ticks reach a stage's
//! partitions the way the live runtime's do, once per second of that clock, for partitions
//! without a record in the last second. Metrics go to the pipeline's own recorder, so a replay
//! inside a live process never touches the live metrics.
//!
//! A stage's output goes to every stage that reads its topic, earlier ones and the producing one
//! included (chain and mempool read back what they publish, and mempool's conflict markers share
//! a topic with netviews' views, as they do live through the broker); a chain of such hand-offs
//! deeper than [`MAX_DEPTH`] is refused, so a processor that feeds itself forever cannot
//! overflow the stack.
//!
//! An internal topic's records get the partition their key picks (murmur2, as Kafka's default
//! partitioner) among the topic's partition count in topology.yaml, and consecutive offsets per
//! partition, so processors keyed by partition see what they would see live.

use std::collections::{BTreeMap, HashMap};

use bmon_kafka::partition_for;
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

use super::bounded::Record;
use super::{Input, Output, Processor, RecordError};

/// How long a partition goes without records before the clock may move it (as live).
const QUIET_US: i64 = 1_000_000;
/// How many in-process hand-offs one input may lead to, one after another.
pub const MAX_DEPTH: usize = 16;

/// A record that left the pipeline, with the broker time (ms) of the input or tick it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// The input's broker timestamp, or the tick's clock time, ms.
    pub timestamp_ms: i64,
    /// The record.
    pub output: Output,
}

/// Where the pipeline's time comes from.
pub trait Clock: Send {
    /// Notes an input record's broker timestamp (ms).
    fn observe(&mut self, timestamp_ms: i64);
    /// Now, µs since the epoch.
    fn now_us(&self) -> i64;
}

/// The event clock: the newest input timestamp seen.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventClock {
    now_us: i64,
}

impl Clock for EventClock {
    fn observe(&mut self, timestamp_ms: i64) {
        self.now_us = self.now_us.max(timestamp_ms.saturating_mul(1000));
    }
    fn now_us(&self) -> i64 {
        self.now_us
    }
}

/// One processor in the chain, with the topics it reads.
pub struct Stage {
    /// Its registry name.
    pub name: &'static str,
    /// The processor.
    pub processor: Box<dyn Processor>,
    /// The topics it reads.
    pub inputs: Vec<String>,
}

/// What a run through the pipeline counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Input records fed, per stage name.
    pub records: BTreeMap<&'static str, u64>,
    /// Records a stage could not process (they would be dead letters live), per stage name.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Records that left the pipeline (no stage reads their topic), per topic.
    pub outputs: BTreeMap<String, u64>,
    /// Hand-offs refused because they went deeper than [`MAX_DEPTH`].
    pub too_deep: u64,
}

/// Processors chained in one process.
pub struct Pipeline {
    stages: Vec<Stage>,
    /// Partition counts of the topics stages read.
    partitions: HashMap<String, i32>,
    next_offset: HashMap<(String, i32), i64>,
    /// Per stage, per topic and partition: the clock time of its last record, µs.
    last_record: Vec<BTreeMap<String, BTreeMap<i32, i64>>>,
    clock: Box<dyn Clock>,
    last_tick_us: i64,
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    counts: Counts,
    /// Internal topics whose records are also copied out ([`Pipeline::tap`]).
    tap: Vec<String>,
    tapped: Vec<Emitted>,
}

impl Pipeline {
    /// Chains `stages` (in order: a stage's outputs go to the later stages that read them);
    /// `partitions` gives the partition count of every topic a stage reads, and `recorder` is the
    /// pipeline's own (see [`bmon_service::local_recorder`]).
    pub fn new(
        stages: Vec<Stage>,
        partitions: HashMap<String, i32>,
        clock: Box<dyn Clock>,
        recorder: PrometheusRecorder,
    ) -> Pipeline {
        let handle = recorder.handle();
        let last_record = stages.iter().map(|_| BTreeMap::new()).collect();
        Pipeline {
            stages,
            partitions,
            next_offset: HashMap::new(),
            last_record,
            clock,
            last_tick_us: i64::MIN,
            recorder,
            handle,
            counts: Counts::default(),
            tap: Vec::new(),
            tapped: Vec::new(),
        }
    }

    /// Copies the records of the internal topics `topics` (those a later stage reads, which do
    /// not leave the pipeline) out as well, for [`Pipeline::take_tapped`]: a report reads each
    /// node's events so.
    pub fn tap(&mut self, topics: &[&str]) {
        self.tap = topics.iter().map(|t| (*t).to_owned()).collect();
    }

    /// The tapped records since the last call.
    pub fn take_tapped(&mut self) -> Vec<Emitted> {
        std::mem::take(&mut self.tapped)
    }

    /// Feeds one record; what leaves the pipeline is appended to `out`.
    pub fn feed(&mut self, record: &Record, out: &mut Vec<Emitted>) {
        self.clock.observe(record.timestamp_ms);
        let now = self.clock.now_us();
        if self.last_tick_us == i64::MIN {
            self.last_tick_us = now;
        } else if now - self.last_tick_us >= QUIET_US {
            self.tick(now, out);
        }
        let input = Input {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            key: record.key.as_deref(),
            payload: &record.payload,
            timestamp_ms: Some(record.timestamp_ms),
            replay: false,
            replay_id: None,
        };
        self.deliver(0, &input, 0, out);
    }

    /// Ends the run at `to_us`: every partition is moved to it, as a live, quiet run would
    /// have been by then.
    pub fn finish(&mut self, to_us: i64, out: &mut Vec<Emitted>) {
        let now = to_us.max(self.clock.now_us());
        self.tick(now, out);
    }

    /// The pipeline's own metrics, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.handle.render()
    }

    /// What was counted so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The clock now, µs.
    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    /// Gives `input` to every stage from `first` on that reads its topic; `depth` hand-offs led
    /// to it.
    fn deliver(&mut self, first: usize, input: &Input<'_>, depth: usize, out: &mut Vec<Emitted>) {
        let now = self.clock.now_us();
        for i in first..self.stages.len() {
            if !self.stages[i].inputs.iter().any(|t| t == input.topic) {
                continue;
            }
            // The topic's entry exists after its first record: no allocation per record.
            let last = &mut self.last_record[i];
            match last.get_mut(input.topic) {
                Some(parts) => {
                    parts.insert(input.partition, now);
                }
                None => {
                    last.insert(input.topic.to_owned(), BTreeMap::from([(input.partition, now)]));
                }
            }
            let stage = &mut self.stages[i];
            *self.counts.records.entry(stage.name).or_default() += 1;
            let mut produced = Vec::new();
            let result: Result<(), RecordError> =
                metrics::with_local_recorder(&self.recorder, || stage.processor.process(input, &mut produced));
            if let Err(e) = result {
                *self.counts.rejected.entry(stage.name).or_default() += 1;
                tracing::debug!(stage = stage.name, topic = input.topic, offset = input.offset, error = %e, "rejected");
            }
            self.route(produced, input.timestamp_ms, depth, out);
        }
    }

    /// Sends a stage's outputs to every stage that reads their topic, or out of the pipeline.
    fn route(&mut self, outputs: Vec<Output>, timestamp_ms: Option<i64>, depth: usize, out: &mut Vec<Emitted>) {
        for o in outputs {
            let read_later = self.stages.iter().any(|s| s.inputs.contains(&o.topic));
            let count = self.partitions.get(&o.topic).copied().filter(|n| *n > 0);
            match (read_later, count) {
                (true, Some(_)) if depth >= MAX_DEPTH => {
                    self.counts.too_deep += 1;
                    tracing::warn!(topic = %o.topic, depth, "in-process hand-off too deep; record dropped");
                }
                (true, Some(n)) => {
                    if self.tap.contains(&o.topic) {
                        let timestamp_ms = timestamp_ms.unwrap_or_else(|| self.clock.now_us() / 1000);
                        self.tapped.push(Emitted { timestamp_ms, output: o.clone() });
                    }
                    let partition = partition_for(&o.key, n);
                    let offset = self.next_offset.entry((o.topic.clone(), partition)).or_insert(0);
                    let input = Input {
                        topic: &o.topic,
                        partition,
                        offset: *offset,
                        key: Some(&o.key),
                        payload: &o.payload,
                        timestamp_ms,
                        replay: false,
                        replay_id: None,
                    };
                    *offset += 1;
                    self.deliver(0, &input, depth + 1, out);
                }
                _ => {
                    *self.counts.outputs.entry(o.topic.clone()).or_default() += 1;
                    let timestamp_ms = timestamp_ms.unwrap_or_else(|| self.clock.now_us() / 1000);
                    out.push(Emitted { timestamp_ms, output: o });
                }
            }
        }
    }

    /// Ticks every stage at `now_us`, with its partitions quiet for [`QUIET_US`].
    fn tick(&mut self, now_us: i64, out: &mut Vec<Emitted>) {
        self.last_tick_us = now_us;
        for i in 0..self.stages.len() {
            let idle: Vec<(&str, i32)> = self.last_record[i]
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |(p, last)| (t.as_str(), *p, *last)))
                .filter(|(_, _, last)| now_us - *last >= QUIET_US)
                .map(|(t, p, _)| (t, p))
                .collect();
            let mut produced = Vec::new();
            let stage = &mut self.stages[i];
            metrics::with_local_recorder(&self.recorder, || stage.processor.tick(now_us, &idle, &mut produced));
            self.route(produced, Some(now_us / 1000), 0, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the ticks it gets; echoes each record to `to`.
    struct Echo {
        ticks: std::sync::Arc<std::sync::Mutex<Vec<(i64, usize)>>>,
        to: &'static str,
    }

    impl Processor for Echo {
        fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
            out.push(Output {
                topic: self.to.into(),
                key: input.key.unwrap_or_default().to_vec(),
                payload: input.payload.to_vec(),
            });
            Ok(())
        }
        fn tick(&mut self, now_us: i64, idle: &[(&str, i32)], _out: &mut Vec<Output>) {
            if let Ok(mut t) = self.ticks.lock() {
                t.push((now_us, idle.len()));
            }
        }
    }

    /// A clock that says what the test sets.
    struct Fixed(std::sync::Arc<std::sync::atomic::AtomicI64>);

    impl Clock for Fixed {
        fn observe(&mut self, _timestamp_ms: i64) {}
        fn now_us(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    fn record(ts_ms: i64, key: &str) -> Record {
        Record {
            topic: "in".into(),
            partition: 0,
            offset: ts_ms,
            timestamp_ms: ts_ms,
            key: Some(key.into()),
            payload: b"p".to_vec(),
        }
    }

    #[test]
    fn outputs_feed_later_stages_and_an_injected_clock_drives_the_ticks() {
        let ticks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let echo = |inputs: &str, to| Stage {
            name: "echo",
            processor: Box::new(Echo { ticks: ticks.clone(), to }),
            inputs: vec![inputs.to_owned()],
        };
        let mut second = echo("mid", "out");
        second.name = "second";
        let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(10_000_000));
        let partitions = HashMap::from([("in".to_owned(), 1), ("mid".to_owned(), 4)]);
        let recorder = bmon_service::local_recorder(&[]).unwrap();
        let mut p = Pipeline::new(vec![echo("in", "mid"), second], partitions, Box::new(Fixed(now.clone())), recorder);
        let mut out = Vec::new();
        p.feed(&record(1, "a"), &mut out);
        assert_eq!(out.len(), 1, "the second stage's echo leaves the pipeline");
        assert_eq!((out[0].output.topic.as_str(), out[0].timestamp_ms), ("out", 1), "with its input's time");
        assert_eq!(p.counts().records.get("second"), Some(&1), "the first stage's output went to the second");
        assert!(ticks.lock().unwrap().is_empty(), "no tick before a second of the clock has passed");
        now.store(12_000_000, std::sync::atomic::Ordering::Relaxed);
        p.feed(&record(2, "b"), &mut out);
        let t = ticks.lock().unwrap().clone();
        assert_eq!(t.len(), 2, "each stage ticked once");
        assert_eq!(t[0], (12_000_000, 1), "at the injected time, with the quiet partition");
    }

    /// Reads `back` and `in`; for a record of `in` publishes one record to `back` (as chain
    /// publishes a connect time and reads it back), and for one of `back` publishes to `out`.
    struct ReadsBack;

    impl Processor for ReadsBack {
        fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
            let topic = if input.topic == "in" { "back" } else { "out" };
            out.push(Output { topic: topic.into(), key: b"k".to_vec(), payload: b"p".to_vec() });
            Ok(())
        }
        fn tick(&mut self, _now_us: i64, _idle: &[(&str, i32)], _out: &mut Vec<Output>) {}
    }

    #[test]
    fn a_stage_reads_back_what_it_publishes_and_an_endless_loop_is_cut() {
        let partitions = HashMap::from([("in".to_owned(), 1), ("back".to_owned(), 2), ("loop".to_owned(), 1)]);
        let stage = |inputs: &[&str], processor: Box<dyn Processor>| Stage {
            name: "s",
            processor,
            inputs: inputs.iter().map(|t| (*t).to_owned()).collect(),
        };
        let recorder = bmon_service::local_recorder(&[]).unwrap();
        let mut p = Pipeline::new(
            vec![stage(&["in", "back"], Box::new(ReadsBack))],
            partitions.clone(),
            Box::new(EventClock::default()),
            recorder,
        );
        let mut out = Vec::new();
        p.feed(&record(1, "a"), &mut out);
        assert_eq!(p.counts().records.get("s"), Some(&2), "the stage got its input and its own output back");
        assert_eq!(out.iter().map(|e| e.output.topic.as_str()).collect::<Vec<_>>(), ["out"]);

        let ticks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorder = bmon_service::local_recorder(&[]).unwrap();
        let mut p = Pipeline::new(
            vec![stage(&["in", "loop"], Box::new(Echo { ticks, to: "loop" }))],
            partitions,
            Box::new(EventClock::default()),
            recorder,
        );
        let mut out = Vec::new();
        p.feed(&record(1, "a"), &mut out);
        assert!(out.is_empty());
        assert_eq!(p.counts().too_deep, 1, "the loop was cut once");
        assert_eq!(p.counts().records.get("s"), Some(&(MAX_DEPTH as u64 + 1)), "after MAX_DEPTH hand-offs");
    }
}
