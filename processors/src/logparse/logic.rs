//! Pure logparse logic: facts to events and observations. No rdkafka, no I/O.

use std::collections::HashMap;

use bmon_logparse::Parser;
use bmon_schemas::{
    BlockConnected, BlockDisconnected, Envelope, EventBody, FactKey, LogLineFact, MempoolReject, NodeEvent, NodeStart,
    ObjectKind, Observation, ObservationSource, Stage, ZmqFact, ZmqPayload,
};

use super::config::LogParseConfig;
use super::tracker::StageTracker;

/// What one fact turns into.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Derived {
    /// Typed node events, in line order.
    pub events: Vec<NodeEvent>,
    /// Arrival observations, each once per (node, hash, stage).
    pub observations: Vec<Observation>,
}

/// Per-node state: the stages already reported, and the latest receive time (µs) of the node's
/// facts, so departed nodes can be forgotten.
#[derive(Debug)]
struct NodeState {
    tracker: StageTracker,
    last_us: i64,
}

/// The logparse operator.
#[derive(Debug)]
pub struct LogParse {
    config: LogParseConfig,
    nodes: HashMap<String, NodeState>,
}

/// The object kind and stage a typed event reports, with its hash and height.
fn arrival(event: &EventBody) -> Option<(&str, ObjectKind, Stage, Option<i64>)> {
    match event {
        EventBody::HeaderSeen(e) => Some((&e.hash, ObjectKind::Block, Stage::Header, e.height)),
        EventBody::BlockReceived(e) => Some((&e.hash, ObjectKind::Block, Stage::Block, None)),
        EventBody::CompactBlockReconstructed(e) => Some((&e.hash, ObjectKind::Block, Stage::Block, None)),
        EventBody::UpdateTip(e) => Some((&e.hash, ObjectKind::Block, Stage::Tip, Some(e.height))),
        EventBody::MempoolAccept(e) => Some((&e.txid, ObjectKind::Tx, Stage::TxAccept, None)),
        _ => None,
    }
}

impl LogParse {
    /// A logparse operator with `config`.
    pub fn new(config: LogParseConfig) -> LogParse {
        LogParse { config, nodes: HashMap::new() }
    }

    /// Its settings.
    pub fn config(&self) -> &LogParseConfig {
        &self.config
    }

    /// The stages to report for the sighting of `hash` at `stage` in the fact with `envelope`
    /// (see [`StageTracker`]).
    fn report(&mut self, envelope: &Envelope, hash: &str, stage: Stage) -> Vec<Stage> {
        let node = envelope.node_id.as_str();
        if !self.nodes.contains_key(node) {
            let tracker = StageTracker::new(self.config.tracked_objects_per_node);
            self.nodes.insert(node.to_owned(), NodeState { tracker, last_us: envelope.received_at_us });
        }
        let Some(n) = self.nodes.get_mut(node) else { return Vec::new() };
        n.last_us = n.last_us.max(envelope.received_at_us);
        n.tracker.report(hash, stage)
    }

    /// Forgets nodes whose newest fact was received before `before_us` (departed nodes).
    pub fn forget_before(&mut self, before_us: i64) {
        self.nodes.retain(|_, n| n.last_us >= before_us);
    }

    /// Nodes tracked, and objects remembered over all of them, for memory bounds.
    pub fn size(&self) -> (usize, usize) {
        (self.nodes.len(), self.nodes.values().map(|n| n.tracker.len()).sum())
    }

    /// Parses one log line fact. Its time is the node's own timestamp for the line (µs), or the
    /// producer's receive time when the line has none.
    pub fn log_fact(&mut self, fact: &LogLineFact) -> Derived {
        let text = String::from_utf8_lossy(&fact.line);
        let mut bodies = Vec::new();
        let header = Parser::new(fact.envelope.implementation).parse_line(&text, &mut bodies);
        let at = header.logged_at_us.unwrap_or(fact.envelope.received_at_us);
        let mut derived = Derived::default();
        for (index, body) in bodies.into_iter().enumerate() {
            if let Some((hash, object, stage, height)) = arrival(&body) {
                for s in self.report(&fact.envelope, hash, stage) {
                    derived.observations.push(observation(
                        &fact.envelope,
                        hash,
                        object,
                        s,
                        at,
                        height,
                        Origin::Log { late: fact.backlog },
                    ));
                }
            }
            if matches!(body, EventBody::Unknown(_)) && !self.config.emit_unknown {
                continue;
            }
            derived.events.push(NodeEvent {
                envelope: fact.envelope.clone(),
                index: index as i32,
                logged_at_us: header.logged_at_us,
                thread: header.thread.map(str::to_owned),
                category: header.category.map(str::to_owned),
                event: body,
            });
        }
        derived
    }

    /// Turns a ZMQ notification into an observation of its own stage (receive time), and a
    /// `sequence` `C` or `D` into a node event as well.
    pub fn zmq_fact(&mut self, fact: &ZmqFact) -> Derived {
        let (hash, object, stage) = match &fact.payload {
            ZmqPayload::Hash(h) if fact.topic == "hashblock" => (h.hash.as_str(), ObjectKind::Block, Stage::ZmqBlock),
            ZmqPayload::Hash(h) if fact.topic == "hashtx" => (h.hash.as_str(), ObjectKind::Tx, Stage::ZmqTx),
            ZmqPayload::RawBlock(b) => (b.hash.as_str(), ObjectKind::Block, Stage::ZmqBlock),
            ZmqPayload::RawTx(t) => (t.txid.as_str(), ObjectKind::Tx, Stage::ZmqTx),
            ZmqPayload::Sequence(s) if s.label == "C" => (s.hash.as_str(), ObjectKind::Block, Stage::ZmqBlock),
            ZmqPayload::Sequence(s) if s.label == "A" => (s.hash.as_str(), ObjectKind::Tx, Stage::ZmqTx),
            _ => return Derived { events: sequence_event(fact).into_iter().collect(), ..Derived::default() },
        };
        let mut derived = Derived::default();
        if !self.report(&fact.envelope, hash, stage).is_empty() {
            let at = fact.envelope.received_at_us;
            derived.observations.push(observation(&fact.envelope, hash, object, stage, at, None, Origin::Zmq));
        }
        derived.events.extend(sequence_event(fact));
        derived
    }
}

/// ZMQ `sequence` `C` and `D` as node events: the chain processor follows a node's active chain
/// by them as well as by its log (they carry no height; the envelope's stream, `zmq:sequence`,
/// tells them apart from the log's validation lines). A sequence reset on any topic is a start.
/// BSV's `invalidtx` (a transaction the node refused, as JSON) is a `mempool_reject`.
fn sequence_event(fact: &ZmqFact) -> Option<NodeEvent> {
    let event = match &fact.payload {
        ZmqPayload::Other(o) if fact.topic == "invalidtx" => EventBody::MempoolReject(invalid_tx(&o.body)?),
        // A topic's sequence back at zero: the node restarted (chain merges it with the log's
        // start line).
        ZmqPayload::SequenceReset(_) => EventBody::NodeStart(NodeStart { version: String::new() }),
        ZmqPayload::Sequence(s) => {
            let hash = Some(s.hash.clone());
            match s.label.as_str() {
                "C" => EventBody::BlockConnected(BlockConnected { hash, height: None }),
                "D" => EventBody::BlockDisconnected(BlockDisconnected { hash, height: None }),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(NodeEvent {
        envelope: fact.envelope.clone(),
        index: 0,
        logged_at_us: None,
        thread: None,
        category: None,
        event,
    })
}

/// BSV's `invalidtx` notification as a rejection: its `txid`, `rejectionReason` and
/// `rejectionCode`. None for one that is not JSON, has no txid, or came from a block
/// (`fromBlock`: no mempool refused it).
pub fn invalid_tx(body: &[u8]) -> Option<MempoolReject> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let from_block =
        ["fromBlock", "fromblock"].iter().any(|k| v.get(*k).and_then(serde_json::Value::as_bool) == Some(true));
    if from_block {
        return None;
    }
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    let reason = text("rejectionReason").filter(|r| !r.is_empty()).unwrap_or_else(|| "unknown".to_owned());
    let (reason, detail) = match reason.split_once(", ") {
        Some((r, d)) => (r.to_owned(), Some(d.to_owned())),
        None => (reason, None),
    };
    Some(MempoolReject {
        txid: text("txid").filter(|t| !t.is_empty())?,
        wtxid: None,
        peer: v.get("nodeId").and_then(serde_json::Value::as_i64),
        reason,
        code: v.get("rejectionCode").and_then(serde_json::Value::as_i64),
        detail,
        fee_rate: None,
    })
}

/// Where an observation comes from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// A log line; `late` if the producer read it as backlog.
    Log {
        /// Read as backlog.
        late: bool,
    },
    /// A ZMQ notification (receive time).
    Zmq,
}

/// An observation of `hash` at `stage` from the fact with `envelope`, seen at `at` (µs).
fn observation(
    envelope: &Envelope,
    hash: &str,
    object: ObjectKind,
    stage: Stage,
    at: i64,
    height: Option<i64>,
    origin: Origin,
) -> Observation {
    let (source, late) = match origin {
        Origin::Log { late } => (ObservationSource::Log, late),
        Origin::Zmq => (ObservationSource::Zmq, false),
    };
    Observation {
        hash: hash.to_owned(),
        object,
        stage,
        node_id: envelope.node_id.clone(),
        network: envelope.network.clone(),
        observed_at_us: at,
        source,
        height: if stage == Stage::Tip || stage == Stage::Header { height } else { None },
        received_at_us: Some(envelope.received_at_us),
        received_late: late,
        fact: FactKey {
            stream: envelope.source.stream.clone(),
            epoch: envelope.source.epoch.clone(),
            offset: envelope.source.offset,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsv_invalidtx_is_a_rejection_unless_it_came_from_a_block() {
        let body = br#"{"fromBlock": false, "txid": "ab12", "hex": "0100", "isInvalid": false,
            "isValidationError": false, "isMissingInputs": false, "isDoubleSpendDetected": true,
            "rejectionCode": 18, "rejectionReason": "txn-double-spend-detected", "source": "p2p",
            "address": "127.0.0.1:18444", "nodeId": 3}"#;
        let r = invalid_tx(body).unwrap();
        assert_eq!(
            (r.txid.as_str(), r.reason.as_str(), r.code, r.peer),
            ("ab12", "txn-double-spend-detected", Some(18), Some(3))
        );
        let detailed = br#"{"txid": "cd", "rejectionReason": "insufficient fee, rejecting replacement"}"#;
        let r = invalid_tx(detailed).unwrap();
        assert_eq!((r.reason.as_str(), r.detail.as_deref()), ("insufficient fee", Some("rejecting replacement")));
        assert!(invalid_tx(br#"{"fromBlock": true, "txid": "ab"}"#).is_none());
        assert!(invalid_tx(b"not json").is_none());
        assert!(invalid_tx(br#"{"rejectionReason": "x"}"#).is_none(), "no txid");
    }
}
