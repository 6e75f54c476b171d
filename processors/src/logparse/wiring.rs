//! Connects the pure logparse logic to the runtime: decoding, de-duplication by envelope key,
//! encoding and keys.

use std::collections::HashMap;
use std::time::Duration;

use bmon_schemas::{Codec, Envelope, LogLineFact, ZmqFact};

use super::logic::{Derived, LogParse};
use crate::runtime::{Input, Output, Processor, RecordError};

/// The logparse operator as the runtime runs it.
#[derive(Debug)]
pub struct LogParseProcessor {
    logic: LogParse,
    codec: Codec,
    /// Highest source offset handled per (node, stream, epoch): a node's facts arrive in order on
    /// one partition, so anything at or below it is a redelivery and yields nothing.
    done: HashMap<(String, String, String), i64>,
    replay: Duration,
}

impl LogParseProcessor {
    /// Wraps `logic`; state is rebuilt from `replay` of input after an assignment.
    pub fn new(logic: LogParse, replay: Duration) -> LogParseProcessor {
        LogParseProcessor { logic, codec: Codec::default(), done: HashMap::new(), replay }
    }

    /// True if the fact was not handled before (and marks it handled).
    fn first_time(&mut self, e: &Envelope) -> bool {
        let key = (e.node_id.clone(), e.source.stream.clone(), e.source.epoch.clone());
        match self.done.get(&key) {
            Some(last) if *last >= e.source.offset => false,
            _ => {
                self.done.insert(key, e.source.offset);
                true
            }
        }
    }

    fn encode(&self, derived: Derived, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let cfg = self.logic.config();
        for e in &derived.events {
            let payload = self.codec.encode(e).map_err(|e| RecordError::Invalid(e.to_string()))?;
            out.push(Output { topic: cfg.events_topic.clone(), key: e.envelope.node_id.as_bytes().to_vec(), payload });
        }
        for o in &derived.observations {
            let payload = self.codec.encode(o).map_err(|e| RecordError::Invalid(e.to_string()))?;
            out.push(Output { topic: cfg.observations_topic.clone(), key: o.hash.as_bytes().to_vec(), payload });
        }
        Ok(())
    }
}

impl Processor for LogParseProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let derived = if input.topic == self.logic.config().log_topic {
            let fact: LogLineFact =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            if !self.first_time(&fact.envelope) {
                return Ok(());
            }
            self.logic.log_fact(&fact)
        } else if input.topic == self.logic.config().zmq_topic {
            let fact: ZmqFact =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            if !self.first_time(&fact.envelope) {
                return Ok(());
            }
            self.logic.zmq_fact(&fact)
        } else {
            return Err(RecordError::Invalid(format!("logparse does not read topic {}", input.topic)));
        };
        self.encode(derived, out)
    }

    fn replay_window(&self) -> Option<Duration> {
        Some(self.replay)
    }
}
