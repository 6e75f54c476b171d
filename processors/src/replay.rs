//! Re-running registered processors over a past time range, in process.
//!
//! The chosen processors are chained ([`crate::runtime::inprocess`]) in registry order, each
//! built from its config section with its local state in an isolated directory. The pipeline is
//! fed the records of its external inputs (topics no chosen processor produces) in the range,
//! from a [`BoundedSource`], and what leaves it is returned. No consumer group is joined and no
//! offset is committed; metrics go to the pipeline's own recorder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bmon_kafka::ClientSettings;
use bmon_topology::Topology;

use crate::registry::{self, BuildContext, BuildError};
use crate::runtime::Output;
use crate::runtime::bounded::{BoundedSource, Range, SourceError, Span};
use crate::runtime::inprocess::{Counts, EventClock, Pipeline, Stage};

/// What to replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySpec<'a> {
    /// The topology (topics, keys, partition counts, windows).
    pub topology: &'a Topology,
    /// Processor config sections by name (absent: defaults).
    pub sections: &'a BTreeMap<String, toml::Value>,
    /// The processors, by registry name.
    pub processors: &'a [&'a str],
    /// Where their state goes (a fresh directory: live state is never written).
    pub state_dir: &'a Path,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A processor name is not registered.
    #[error("no processor `{0}` (known: {known})", known = registry::names())]
    Unknown(String),
    /// A processor could not be built.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// Reading the range failed.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The replay's own metrics recorder could not be built.
    #[error("metrics recorder: {0}")]
    Recorder(String),
}

/// What a replay produced.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Records that left the pipeline, in the order produced.
    pub outputs: Vec<Output>,
    /// Records fed and produced, per stage and topic.
    pub counts: Counts,
    /// Each input partition's span of the range.
    pub spans: Vec<(String, i32, Span)>,
    /// The pipeline's own metrics, Prometheus text.
    pub metrics: String,
}

/// Builds the pipeline of `spec`; returns it with its external inputs and their partition counts.
pub fn pipeline(spec: &ReplaySpec<'_>) -> Result<(Pipeline, Vec<(String, i32)>), ReplayError> {
    if let Some(unknown) = spec.processors.iter().find(|n| registry::find(n).is_none()) {
        return Err(ReplayError::Unknown((*unknown).to_owned()));
    }
    let mut stages = Vec::new();
    let mut produced = Vec::new();
    let mut read = Vec::new();
    let mut telemetry = vec![crate::runtime::telemetry::COMPONENT];
    for entry in registry::REGISTRY.iter().filter(|e| spec.processors.contains(&e.name)) {
        let declared = spec.topology.processor_named(entry.name).map_err(BuildError::from)?;
        let ctx = BuildContext {
            topology: spec.topology,
            declared,
            section: spec.sections.get(entry.name),
            state_dir: Some(spec.state_dir),
        };
        stages.push(Stage { name: entry.name, processor: (entry.build)(&ctx)?, inputs: declared.inputs.clone() });
        produced.extend(declared.outputs.iter().cloned());
        read.extend(declared.inputs.iter().cloned());
        telemetry.push(entry.telemetry);
    }
    let partitions: HashMap<String, i32> =
        spec.topology.topics.iter().map(|t| (t.name.clone(), t.partitions)).collect();
    let mut external: Vec<(String, i32)> = read
        .iter()
        .filter(|t| !produced.contains(t))
        .map(|t| (t.clone(), partitions.get(t).copied().unwrap_or(1)))
        .collect();
    external.sort();
    external.dedup();
    let recorder =
        bmon_service::local_recorder(&bmon_service::telemetry::buckets(&telemetry)).map_err(ReplayError::Recorder)?;
    Ok((Pipeline::new(stages, partitions, Box::new(EventClock::default()), recorder), external))
}

/// Replays `spec` over `range` of the brokers in `settings`.
pub fn run(settings: &ClientSettings, spec: &ReplaySpec<'_>, range: Range) -> Result<ReplayOutcome, ReplayError> {
    let (mut pipeline, external) = pipeline(spec)?;
    let mut source = BoundedSource::open(settings, &external, range)?;
    let spans = source.spans().map(|(t, p, s)| (t.to_owned(), p, s)).collect();
    let mut outputs = Vec::new();
    while let Some(record) = source.next_record()? {
        pipeline.feed(&record, &mut outputs);
    }
    pipeline.finish(range.to_ms.saturating_mul(1000), &mut outputs);
    Ok(ReplayOutcome { outputs, counts: pipeline.counts().clone(), spans, metrics: pipeline.render_metrics() })
}
