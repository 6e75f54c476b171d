//! Connects the pure logparse logic to the runtime: decoding, de-duplication by envelope key,
//! encoding and keys.
//!
//! State is per input partition (a node's facts live in one partition of each input topic), so
//! a revoked partition's state goes with it, and a reset partition is rebuilt by replay: the
//! once-only and dedup state then holds exactly the facts whose outputs were acknowledged.

use std::collections::HashMap;
use std::time::Duration;

use bmon_schemas::{Codec, Envelope, LogLineFact, NodeEvent, Observation, Record, ZmqFact};
use bmon_topology::{BindError, Topology};

use super::dedup::{Dedup, Verdict};
use super::logic::{Derived, LogParse};
use super::telemetry as t;
use super::telemetry::label;
use crate::runtime::{Input, KeyFields, KeyKind, Output, OutputTopic, Processor, RecordError};

/// logparse's topics, from topology.yaml: the inputs carrying log and ZMQ facts, and the outputs
/// for node events and observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogParseTopics {
    /// Log facts.
    pub log: String,
    /// ZMQ facts.
    pub zmq: String,
    /// Typed node events (keyed by node or network).
    pub events: OutputTopic,
    /// Arrival observations (keyed by hash, or network and hash: each object's sightings must
    /// meet in one partition).
    pub observations: OutputTopic,
}

impl LogParseTopics {
    /// Binds the topics of topology processor `name`.
    pub fn bind(t: &Topology, name: &str) -> Result<LogParseTopics, BindError> {
        let p = t.processor_named(name)?;
        Ok(LogParseTopics {
            log: t.input_of(p, LogLineFact::FAMILY)?.name.clone(),
            zmq: t.input_of(p, ZmqFact::FAMILY)?.name.clone(),
            events: OutputTopic::bind(t, p, NodeEvent::FAMILY, &[KeyKind::NodeId, KeyKind::Network])?,
            observations: OutputTopic::bind(t, p, Observation::FAMILY, &[KeyKind::ObjectHash, KeyKind::NetworkObject])?,
        })
    }
}

/// How often (in records) a partition forgets departed nodes.
const PRUNE_EVERY: u64 = 4096;

/// One input partition's state.
#[derive(Debug)]
struct Part {
    logic: LogParse,
    dedup: Dedup,
    records: u64,
    /// Latest producer receive time seen, µs: the partition's event time.
    now_us: i64,
}

/// The logparse operator as the runtime runs it.
#[derive(Debug)]
pub struct LogParseProcessor {
    template: LogParse,
    topics: LogParseTopics,
    codec: Codec,
    parts: HashMap<(String, i32), Part>,
    replay: Duration,
}

impl LogParseProcessor {
    /// Wraps `logic` (the template of every partition's state), reading and writing `topics`;
    /// state is rebuilt from `replay` of input after an assignment.
    pub fn new(logic: LogParse, topics: LogParseTopics, replay: Duration) -> LogParseProcessor {
        LogParseProcessor { template: logic, topics, codec: Codec::default(), parts: HashMap::new(), replay }
    }

    /// Per partition: (nodes tracked, objects remembered, dedup (node, stream) pairs, epochs,
    /// ranges), for memory bounds.
    pub fn state_size(&self) -> Vec<((String, i32), [usize; 5])> {
        let mut v: Vec<_> = self
            .parts
            .iter()
            .map(|(k, p)| {
                let (nodes, objects) = p.logic.size();
                let (streams, epochs, ranges) = p.dedup.size();
                (k.clone(), [nodes, objects, streams, epochs, ranges])
            })
            .collect();
        v.sort();
        v
    }

    fn part(&mut self, topic: &str, partition: i32) -> &mut Part {
        let key = (topic.to_owned(), partition);
        let template = &self.template;
        self.parts.entry(key).or_insert_with(|| Part {
            logic: LogParse::new(template.config().clone()),
            dedup: Dedup::default(),
            records: 0,
            now_us: i64::MIN,
        })
    }

    fn encode(&self, derived: Derived, out: &mut Vec<Output>) -> Result<(), RecordError> {
        for e in &derived.events {
            let payload = self.codec.encode(e).map_err(|e| RecordError::Invalid(e.to_string()))?;
            let fields = KeyFields { node_id: &e.envelope.node_id, network: &e.envelope.network, hash: "" };
            out.push(self.topics.events.output(&fields, payload));
        }
        for o in &derived.observations {
            let payload = self.codec.encode(o).map_err(|e| RecordError::Invalid(e.to_string()))?;
            let fields = KeyFields { node_id: &o.node_id, network: &o.network, hash: &o.hash };
            out.push(self.topics.observations.output(&fields, payload));
        }
        Ok(())
    }
}

impl Part {
    /// True if the fact at `[offset, end)` was not handled before (and marks it handled).
    fn first_time(&mut self, e: &Envelope, end: i64, idle_us: i64, replay: bool) -> bool {
        self.now_us = self.now_us.max(e.received_at_us);
        self.records += 1;
        if self.records.is_multiple_of(PRUNE_EVERY) {
            let before = self.now_us.saturating_sub(idle_us);
            self.logic.forget_before(before);
            self.dedup.forget_before(before);
        }
        let s = &e.source;
        let verdict = self.dedup.check(&e.node_id, &s.stream, &s.epoch, s.offset, end, e.received_at_us);
        if verdict == Verdict::Duplicate && !replay {
            t::DUPLICATES.with_counter([label("stream", if s.stream == "log" { "log" } else { "zmq" })]).increment(1);
        }
        verdict == Verdict::New
    }
}

impl Processor for LogParseProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let cfg = self.template.config();
        let idle_us = i64::try_from(cfg.node_idle_s).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000);
        let derived = if input.topic == self.topics.log {
            let fact: LogLineFact =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            let part = self.part(input.topic, input.partition);
            if !part.first_time(&fact.envelope, fact.end_offset, idle_us, input.replay) {
                return Ok(());
            }
            part.logic.log_fact(&fact)
        } else if input.topic == self.topics.zmq {
            let fact: ZmqFact =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            let part = self.part(input.topic, input.partition);
            let end = fact.envelope.source.offset.saturating_add(1);
            if !part.first_time(&fact.envelope, end, idle_us, input.replay) {
                return Ok(());
            }
            part.logic.zmq_fact(&fact)
        } else {
            return Err(RecordError::Invalid(format!("logparse does not read topic {}", input.topic)));
        };
        self.encode(derived, out)
    }

    fn assigned(&mut self, topic: &str, partition: i32) {
        self.parts.remove(&(topic.to_owned(), partition));
    }

    fn revoked(&mut self, topic: &str, partition: i32) {
        self.parts.remove(&(topic.to_owned(), partition));
    }

    fn replay_window(&self) -> Option<Duration> {
        Some(self.replay)
    }
}
