//! Re-running registered processors over a past time range, in process.
//!
//! The chosen processors ([`plan::select`]) are chained ([`crate::runtime::inprocess`]) in
//! registry order, each built from its config section with its local state in an isolated
//! directory. The pipeline is fed the records of its external inputs (topics no chosen
//! processor produces) from a [`BoundedSource`] opened a warm-up before the range (the longest
//! state-store window), so state is warm at the range's start; what leaves the pipeline before
//! the start is counted and dropped. No consumer group is joined and no offset is committed;
//! metrics go to the pipeline's own recorder.
//!
//! A range the broker no longer holds in full fails ([`retention`]); a range that ends in the
//! future ends at the offsets resolved when the replay opened, and time is moved no later than
//! that moment. [`Replay::step`] feeds one record at a time, so a caller can show progress and
//! stop early; [`Replay::finish`] says whether the range was read to its end.
//!
//! - [`plan`]: which processors and topics (pure);
//! - [`retention`]: whether the broker still holds the range;
//! - [`filter`]: `--nodes` and `--network`.

pub mod filter;
pub mod plan;
pub mod retention;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bmon_kafka::ClientSettings;
use bmon_schemas::Codec;
use bmon_topology::Topology;
use rdkafka::consumer::BaseConsumer;

pub use filter::Filter;
pub use plan::{Selection, default_processors};

use crate::registry::{self, BuildContext, BuildError};
use crate::runtime::Output;
use crate::runtime::bounded::{BoundedSource, Range, SourceError, Span};
use crate::runtime::inprocess::{Counts, Emitted, EventClock, Pipeline, Stage};
use crate::runtime::read_ahead::ReadAhead;
use crate::runtime::resolve::OPEN_END;

/// What to replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySpec<'a> {
    /// The topology (topics, keys, partition counts, windows).
    pub topology: &'a Topology,
    /// Processor config sections by name (absent: defaults).
    pub sections: &'a BTreeMap<String, toml::Value>,
    /// The processors, by registry name (others they need are added, see [`plan`]).
    pub processors: &'a [&'a str],
    /// Where their state goes (a fresh directory: live state is never written).
    pub state_dir: &'a Path,
    /// Which input records are fed.
    pub filter: &'a Filter,
    /// Read at most this many records a second (every input together), with little fetched
    /// ahead: a replay beside a live pipeline leaves it the broker. `None`: as fast as they come.
    pub max_rate: Option<std::num::NonZeroU64>,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The processors asked for cannot be run.
    #[error("{0}")]
    Select(#[from] plan::SelectError),
    /// A processor could not be built.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// Reading the range failed.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The broker no longer holds the whole range.
    #[error("{0}")]
    Retention(#[from] retention::OutsideRetention),
    /// The replay's own metrics recorder could not be built.
    #[error("metrics recorder: {0}")]
    Recorder(String),
}

/// How far before the range the replay read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmup {
    /// Where the longest state-store window would start, ms.
    pub wanted_from_ms: i64,
    /// Where reading started, ms: later than wanted when retention cut it.
    pub from_ms: i64,
}

/// What a replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Records that left the pipeline in the range, in the order produced.
    pub outputs: Vec<Emitted>,
    /// Records fed and produced, per stage and topic (warm-up included).
    pub counts: Counts,
    /// Each input partition's span, warm-up included.
    pub spans: Vec<(String, i32, Span)>,
    /// The pipeline's own metrics, Prometheus text.
    pub metrics: String,
    /// The processors run, in pipeline order.
    pub selection: Selection,
    /// The warm-up read.
    pub warmup: Warmup,
    /// Input records read, per topic.
    pub read: BTreeMap<String, u64>,
    /// Input records left out by the filter.
    pub filtered: u64,
    /// Records that left the pipeline during the warm-up (dropped).
    pub warmup_outputs: u64,
    /// Tapped records not yet taken ([`Replay::take_tapped`]).
    pub tapped: Vec<Emitted>,
    /// Records the broker no longer had when they were read (retention deleted them under
    /// the reader): the range is then incomplete.
    pub lost: u64,
    /// Where time was moved to at the end, ms: the range's end, or the moment the replay opened
    /// if that is earlier, or the last record's time after an early stop.
    pub end_ms: i64,
    /// The whole range was read.
    pub complete: bool,
}

/// Builds the pipeline of `selection`, with state under `spec.state_dir`.
fn pipeline(spec: &ReplaySpec<'_>, selection: &Selection) -> Result<Pipeline, ReplayError> {
    let mut stages = Vec::new();
    let mut telemetry = vec![crate::runtime::telemetry::COMPONENT];
    for name in &selection.processors {
        let Some(entry) = registry::find(name) else { continue };
        let declared = spec.topology.processor_named(entry.name).map_err(BuildError::from)?;
        let ctx = BuildContext {
            topology: spec.topology,
            declared,
            section: spec.sections.get(entry.name),
            state_dir: Some(spec.state_dir),
        };
        stages.push(Stage { name: entry.name, processor: (entry.build)(&ctx)?, inputs: declared.inputs.clone() });
        telemetry.push(entry.telemetry);
    }
    let partitions: HashMap<String, i32> =
        spec.topology.topics.iter().map(|t| (t.name.clone(), t.partitions)).collect();
    let recorder =
        bmon_service::local_recorder(&bmon_service::telemetry::buckets(&telemetry)).map_err(ReplayError::Recorder)?;
    Ok(Pipeline::new(stages, partitions, Box::new(EventClock::default()), recorder))
}

/// A replay under way: open it, [`Replay::step`] until it says the end, then [`Replay::finish`].
pub struct Replay {
    pipeline: Pipeline,
    /// The source, read on a thread of its own beside the pipeline.
    source: ReadAhead,
    selection: Selection,
    spans: Vec<(String, i32, Span)>,
    range: Range,
    warmup: Warmup,
    end_ms: i64,
    filter: Filter,
    codec: Codec,
    read: BTreeMap<String, u64>,
    filtered: u64,
    warmup_outputs: u64,
    outputs: Vec<Emitted>,
    /// Tapped topics read from the broker (the pipeline taps the internal ones).
    tap_external: Vec<String>,
    tapped: Vec<Emitted>,
    done: bool,
}

impl Replay {
    /// Checks `range` against what the brokers of `settings` hold and opens the source; `now_ms`
    /// is the wall clock (a range ending later ends at the offsets resolved now).
    pub fn open(
        settings: &ClientSettings,
        spec: &ReplaySpec<'_>,
        range: Range,
        now_ms: i64,
    ) -> Result<Replay, ReplayError> {
        let opened = std::time::Instant::now();
        let selection = plan::select(spec.topology, spec.processors)?;
        // Negative times are Kafka's sentinels for the end and the start of a partition.
        let wanted_from_ms = range.from_ms.saturating_sub(selection.warmup.as_millis() as i64).max(0);
        let probe: BaseConsumer = settings
            .client_config()
            .map_err(SourceError::from)?
            .set("group.id", format!("bmon-replay-probe-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(SourceError::from)?;
        let starts = retention::starts(&probe, spec.topology, &selection.external)?;
        let from_ms = retention::judge(&starts, range.from_ms, wanted_from_ms, now_ms)?;
        drop(probe);
        tracing::debug!(elapsed_s = opened.elapsed().as_secs_f64(), "replay: retention checked");
        let end_ms = range.to_ms.min(now_ms).max(range.from_ms);
        // A range ending now or later ends at the partitions' ends as they are now.
        let to_ms = if range.to_ms >= now_ms { OPEN_END } else { range.to_ms.max(from_ms) };
        let read_range = Range { from_ms, to_ms };
        let largest_record = selection
            .external
            .iter()
            .filter_map(|(t, _)| spec.topology.topic(t))
            .map(|t| u64::try_from(t.max_message_bytes).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let source = BoundedSource::open(settings, &selection.external, read_range, spec.max_rate, largest_record)?;
        tracing::debug!(elapsed_s = opened.elapsed().as_secs_f64(), "replay: offsets resolved");
        let spans = source.spans().map(|(t, p, s)| (t.to_owned(), p, s)).collect();
        let pipeline = pipeline(spec, &selection)?;
        Ok(Replay {
            pipeline,
            source: ReadAhead::start(source, spec.max_rate)?,
            selection,
            spans,
            range,
            warmup: Warmup { wanted_from_ms, from_ms },
            end_ms,
            filter: spec.filter.clone(),
            codec: Codec::default(),
            read: BTreeMap::new(),
            filtered: 0,
            warmup_outputs: 0,
            outputs: Vec::new(),
            tap_external: Vec::new(),
            tapped: Vec::new(),
            done: false,
        })
    }

    /// The processors run and the topics read.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Each input partition's span (warm-up included).
    pub fn spans(&self) -> &[(String, i32, Span)] {
        &self.spans
    }

    /// Also hands out the records of these topics, whether a stage produces them or they are
    /// read from the broker ([`Replay::take_tapped`]).
    pub fn tap(&mut self, topics: &[&str]) {
        self.pipeline.tap(topics);
        self.tap_external = topics
            .iter()
            .filter(|t| self.selection.external.iter().any(|(e, _)| e == *t))
            .map(|t| (*t).to_owned())
            .collect();
    }

    /// The records that left the pipeline in the range since the last call (the rest stay for
    /// [`ReplayOutcome::outputs`]).
    pub fn take_outputs(&mut self) -> Vec<Emitted> {
        std::mem::take(&mut self.outputs)
    }

    /// The tapped internal records since the last call, warm-up ones left out.
    pub fn take_tapped(&mut self) -> Vec<Emitted> {
        let from_ms = self.range.from_ms;
        let mut tapped = std::mem::take(&mut self.tapped);
        tapped.append(&mut self.pipeline.take_tapped());
        tapped.retain(|e| e.timestamp_ms >= from_ms);
        tapped
    }

    /// The pipeline's own metrics now, Prometheus text.
    pub fn metrics(&self) -> String {
        self.pipeline.render_metrics()
    }

    /// The pipeline's clock, ms.
    pub fn now_ms(&self) -> i64 {
        self.pipeline.now_us() / 1000
    }

    /// Reads and feeds the next record. Returns its topic and broker time (ms), or `None` once
    /// every partition reached its end.
    pub fn step(&mut self) -> Result<Option<(&str, i64)>, ReplayError> {
        let Some(record) = self.source.next_record()? else {
            self.done = true;
            return Ok(None);
        };
        let topic = match self.read.get_mut(&record.topic) {
            Some(n) => {
                *n += 1;
                self.read.get_key_value(&record.topic).map(|(k, _)| k.as_str())
            }
            None => {
                self.read.insert(record.topic.clone(), 1);
                self.read.get_key_value(&record.topic).map(|(k, _)| k.as_str())
            }
        };
        if !self.filter.wants(&self.codec, &record.payload) {
            self.filtered += 1;
            return Ok(topic.map(|t| (t, record.timestamp_ms)));
        }
        if self.tap_external.contains(&record.topic) {
            let output = Output {
                topic: record.topic.clone(),
                key: record.key.clone().unwrap_or_default(),
                payload: record.payload.clone(),
            };
            self.tapped.push(Emitted { timestamp_ms: record.timestamp_ms, output });
        }
        let before = self.outputs.len();
        self.pipeline.feed(&record, &mut self.outputs);
        Self::drop_warmup(&mut self.outputs, before, self.range.from_ms, &mut self.warmup_outputs);
        Ok(topic.map(|t| (t, record.timestamp_ms)))
    }

    /// Ends the replay. Time is moved to the end ([`ReplayOutcome::end_ms`]) when the range was
    /// read to its end; after an early stop it stays at the last record's, so nothing is closed
    /// that the records read did not close.
    pub fn finish(mut self) -> ReplayOutcome {
        let end_ms = if self.done { self.end_ms } else { self.pipeline.now_us() / 1000 };
        let before = self.outputs.len();
        self.pipeline.finish(end_ms.saturating_mul(1000), &mut self.outputs);
        Self::drop_warmup(&mut self.outputs, before, self.range.from_ms, &mut self.warmup_outputs);
        let tapped = self.take_tapped();
        let lost = self.source.lost();
        ReplayOutcome {
            outputs: self.outputs,
            counts: self.pipeline.counts().clone(),
            spans: self.spans,
            metrics: self.pipeline.render_metrics(),
            selection: self.selection,
            warmup: self.warmup,
            read: self.read,
            filtered: self.filtered,
            warmup_outputs: self.warmup_outputs,
            end_ms,
            complete: self.done && lost == 0,
            tapped,
            lost,
        }
    }

    /// Drops the outputs from `from` on that came from before the range.
    fn drop_warmup(outputs: &mut Vec<Emitted>, from: usize, range_from_ms: i64, dropped: &mut u64) {
        if outputs[from..].iter().all(|o| o.timestamp_ms >= range_from_ms) {
            return;
        }
        let tail = outputs.split_off(from);
        let kept = tail.len();
        outputs.extend(tail.into_iter().filter(|o| o.timestamp_ms >= range_from_ms));
        *dropped += (kept - (outputs.len() - from)) as u64;
    }
}

/// Replays `spec` over `range` of the brokers in `settings`, to its end, keeping every output.
pub fn run(
    settings: &ClientSettings,
    spec: &ReplaySpec<'_>,
    range: Range,
    now_ms: i64,
) -> Result<ReplayOutcome, ReplayError> {
    let mut replay = Replay::open(settings, spec, range, now_ms)?;
    let mut outputs = Vec::new();
    while replay.step()?.is_some() {
        outputs.append(&mut replay.take_outputs());
    }
    let mut outcome = replay.finish();
    outputs.append(&mut outcome.outputs);
    outcome.outputs = outputs;
    Ok(outcome)
}
