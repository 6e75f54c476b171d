//! Connects the pure entry mapping to the runtime: log-line facts and derived events in,
//! entries out to the Loki sink, records Loki already holds skipped.

use std::sync::Arc;

use bmon_schemas::{Codec, LogLineFact, Record};
use bmon_topology::{BindError, Topology};

use super::config::LokiConfig;
use super::entry::{self, Entry};
use super::pushed::Pushed;
use super::sink::{DESTINATION, LokiSink};
use super::telemetry as t;
use crate::runtime::{Input, Output, Processor, RecordError, RuntimeConfig, Sink, SinkError};

/// The loki processor's inputs, from topology.yaml: the log-line topic, and every other input
/// is read as derived events of any schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiTopics {
    /// The raw log lines.
    pub lines: String,
    /// The event topics.
    pub events: Vec<String>,
}

impl LokiTopics {
    /// Binds the topics of topology processor `name`.
    pub fn bind(t: &Topology, name: &str) -> Result<LokiTopics, BindError> {
        let p = t.processor_named(name)?;
        let lines = t.input_of(p, LogLineFact::FAMILY)?.name.clone();
        let events = p.inputs.iter().filter(|i| **i != lines).cloned().collect();
        Ok(LokiTopics { lines, events })
    }
}

/// The loki processor.
pub struct LokiProcessor {
    config: LokiConfig,
    topics: LokiTopics,
    codec: Codec,
    pushed: Arc<Pushed>,
}

impl LokiProcessor {
    /// Opens the pushed-offset store under the config's state directory.
    pub fn open(config: LokiConfig, topics: LokiTopics) -> Result<LokiProcessor, rocksdb::Error> {
        let pushed = Arc::new(Pushed::open(&config.state_dir)?);
        Ok(LokiProcessor { config, topics, codec: Codec::default(), pushed })
    }

    /// The entry of one input record.
    pub fn entry(&self, input: &Input<'_>) -> Result<Entry, RecordError> {
        // A record `bmon replay --out-topic` published names its replay (an id unfit for a
        // label is cut to one, so that replayed records never pass for live ones).
        let replay = match input.replay_id {
            Some(id) if super::config::valid_replay_id(id) => Some(id),
            Some(id) => Some(id.get(..64).unwrap_or("replay")),
            None => self.config.replay_id.as_deref(),
        };
        if input.topic == self.topics.lines {
            let fact: LogLineFact =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            Ok(entry::log_entry(&fact, replay))
        } else {
            let (family, value) =
                self.codec.decode_json(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            Ok(entry::event_entry(&family, &value, input.timestamp_ms, replay))
        }
    }
}

impl Processor for LokiProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        if input.replay {
            return Ok(());
        }
        if self.pushed.get(input.topic, input.partition).is_some_and(|done| input.offset <= done) {
            t::SKIPPED.counter0().increment(1);
            return Ok(());
        }
        let entry = self.entry(input)?;
        out.push(Output {
            topic: DESTINATION.to_owned(),
            key: entry::source_key(input.topic, input.partition, input.offset),
            payload: entry::encode(&entry),
        });
        Ok(())
    }

    fn checkpoints(&self) -> bool {
        false
    }

    fn sinks(&mut self, runtime: &RuntimeConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(LokiSink::start(&self.config, runtime, Arc::clone(&self.pushed))?)])
    }
}
