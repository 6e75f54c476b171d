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
        }
    }

    /// Feeds one record; what leaves the pipeline is appended to `out`.
    pub fn feed(&mut self, record: &Record, out: &mut Vec<Output>) {
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
        };
        self.deliver(0, &input, out);
    }

    /// Ends the run at `to_us`: every partition is moved to it, as a live, quiet run would
    /// have been by then.
    pub fn finish(&mut self, to_us: i64, out: &mut Vec<Output>) {
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

    /// Gives `input` to every stage from `first` on that reads its topic.
    fn deliver(&mut self, first: usize, input: &Input<'_>, out: &mut Vec<Output>) {
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
            self.route(i + 1, produced, input.timestamp_ms, out);
        }
    }

    /// Sends outputs of a stage to the stages from `next` on, or out of the pipeline.
    fn route(&mut self, next: usize, outputs: Vec<Output>, timestamp_ms: Option<i64>, out: &mut Vec<Output>) {
        for o in outputs {
            let read_later = self.stages[next.min(self.stages.len())..].iter().any(|s| s.inputs.contains(&o.topic));
            let count = self.partitions.get(&o.topic).copied().filter(|n| *n > 0);
            match (read_later, count) {
                (true, Some(n)) => {
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
                    };
                    *offset += 1;
                    self.deliver(next, &input, out);
                }
                _ => {
                    *self.counts.outputs.entry(o.topic.clone()).or_default() += 1;
                    out.push(o);
                }
            }
        }
    }

    /// Ticks every stage at `now_us`, with its partitions quiet for [`QUIET_US`].
    fn tick(&mut self, now_us: i64, out: &mut Vec<Output>) {
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
            self.route(i + 1, produced, Some(now_us / 1000), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is given and the ticks it gets; echoes each record to `out.topic`.
    struct Echo {
        ticks: std::sync::Arc<std::sync::Mutex<Vec<(i64, usize)>>>,
    }

    impl Processor for Echo {
        fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
            out.push(Output {
                topic: "mid".into(),
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
        let echo = |inputs: &str| Stage {
            name: "echo",
            processor: Box::new(Echo { ticks: ticks.clone() }),
            inputs: vec![inputs.to_owned()],
        };
        let mut second = echo("mid");
        second.name = "second";
        let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(10_000_000));
        let partitions = HashMap::from([("in".to_owned(), 1), ("mid".to_owned(), 4)]);
        let recorder = bmon_service::local_recorder(&[]).unwrap();
        let mut p = Pipeline::new(vec![echo("in"), second], partitions, Box::new(Fixed(now.clone())), recorder);
        let mut out = Vec::new();
        p.feed(&record(1, "a"), &mut out);
        assert_eq!(out.len(), 1, "the second stage's echo leaves the pipeline");
        assert_eq!(p.counts().records.get("second"), Some(&1), "the first stage's output went to the second");
        assert!(ticks.lock().unwrap().is_empty(), "no tick before a second of the clock has passed");
        now.store(12_000_000, std::sync::atomic::Ordering::Relaxed);
        p.feed(&record(2, "b"), &mut out);
        let t = ticks.lock().unwrap().clone();
        assert_eq!(t.len(), 2, "each stage ticked once");
        assert_eq!(t[0], (12_000_000, 1), "at the injected time, with the quiet partition");
    }
}
