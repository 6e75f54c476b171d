//! The blocking ZMQ receive loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bmon_schemas::{Envelope, SourceSeq, ZmqFact, ZmqGap, ZmqPayload, ZmqSequenceReset};

use crate::fact_sink::FactSink;
use crate::publish::NodeIdentity;
use crate::stop::Stop;
use crate::telemetry;
use crate::telemetry::label;
use crate::zmq::decode::decode;
use crate::zmq::seq::{SequenceTracker, Verdict};

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Settings of the ZMQ source.
#[derive(Debug, Clone)]
pub struct ZmqSettings {
    /// Endpoints to connect to, e.g. `tcp://127.0.0.1:28332`.
    pub endpoints: Vec<String>,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Receive high-water mark (messages queued in ZMQ before it drops).
    pub rcvhwm: i32,
}

/// How long one wait for a message lasts before the stop request is checked again, ms.
const STOP_CHECK_MS: i32 = 500;

/// Receives until `stop` is set. Runs on a blocking thread; publishing is non-blocking (rdkafka
/// queues), so receiving never waits for the broker.
pub fn run_zmq_source(
    settings: &ZmqSettings,
    node: &NodeIdentity,
    sink: &FactSink,
    stop: &Stop,
    ready: &AtomicBool,
) -> Result<(), zmq::Error> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::SUB)?;
    socket.set_rcvhwm(settings.rcvhwm)?;
    socket.set_reconnect_ivl(500)?;
    socket.set_reconnect_ivl_max(10_000)?;
    for t in &settings.topics {
        socket.set_subscribe(t.as_bytes())?;
    }
    for e in &settings.endpoints {
        socket.connect(e)?;
    }
    ready.store(true, Ordering::Relaxed);
    // One session per subscriber start; a node restart (sequence reset) starts a new epoch, so
    // (stream, epoch, offset) never repeats.
    let session = format!("{}-{}", now_us(), std::process::id());
    let mut generation = 0u32;
    let mut tracker = SequenceTracker::default();
    let envelope = |stream: String, generation: u32, offset: u32, at: i64| Envelope {
        node_id: node.node_id.clone(),
        network: node.network.clone(),
        implementation: node.implementation,
        node_version: node.version.get(),
        received_at_us: at,
        source: SourceSeq { stream, epoch: format!("{session}:{generation}"), offset: i64::from(offset) },
    };
    // A blocking receive with a timeout (fewer system calls per message than poll, then receive).
    socket.set_rcvtimeo(STOP_CHECK_MS)?;
    while !stop.requested() {
        let parts = match socket.recv_multipart(0) {
            Ok(parts) => parts,
            Err(zmq::Error::EAGAIN) => continue,
            Err(e) => return Err(e),
        };
        let at = now_us();
        let [topic, body, rest @ ..] = parts.as_slice() else { continue };
        let topic = String::from_utf8_lossy(topic).into_owned();
        let seq = rest.first().and_then(|s| s.as_slice().try_into().ok()).map(u32::from_le_bytes);
        let mut facts = Vec::with_capacity(2);
        if let Some(seq) = seq {
            match tracker.observe(&topic, seq) {
                Verdict::Gap { expected, received, missed } => {
                    telemetry::ZMQ_MISSED.with_counter([label("topic", topic.clone())]).increment(u64::from(missed));
                    tracing::warn!(%topic, expected, received, missed, "ZMQ sequence gap: messages were lost");
                    facts.push(ZmqFact {
                        envelope: envelope(format!("zmq-gap:{topic}"), generation, seq, at),
                        topic: topic.clone(),
                        zmq_sequence: Some(i64::from(seq)),
                        payload: ZmqPayload::Gap(ZmqGap {
                            expected: i64::from(expected),
                            received: i64::from(received),
                            missed: i64::from(missed),
                        }),
                    });
                }
                Verdict::Reset { previous, received } => {
                    telemetry::ZMQ_RESETS.counter0().increment(1);
                    generation += 1;
                    tracing::info!(%topic, previous, received, "ZMQ sequence reset: the node restarted");
                    facts.push(ZmqFact {
                        envelope: envelope(format!("zmq-reset:{topic}"), generation, seq, at),
                        topic: topic.clone(),
                        zmq_sequence: Some(i64::from(seq)),
                        payload: ZmqPayload::SequenceReset(ZmqSequenceReset {
                            previous: i64::from(previous),
                            received: i64::from(received),
                        }),
                    });
                }
                Verdict::First | Verdict::InOrder => {}
            }
        }
        let payload = decode(&topic, body).unwrap_or_else(|e| {
            telemetry::ZMQ_UNDECODABLE.with_counter([label("topic", topic.clone())]).increment(1);
            tracing::warn!(error = %e, "undecodable ZMQ body; publishing it raw");
            ZmqPayload::Other(bmon_schemas::ZmqOther { body: body.clone() })
        });
        facts.push(ZmqFact {
            envelope: envelope(format!("zmq:{topic}"), generation, seq.unwrap_or(0), at),
            topic: topic.clone(),
            zmq_sequence: seq.map(i64::from),
            payload,
        });
        telemetry::ZMQ_MESSAGES.with_counter([label("topic", topic.clone())]).increment(1);
        for fact in &facts {
            if !sink.send(fact) {
                telemetry::DROPPED.with_counter([label("source", "zmq")]).increment(1);
            }
        }
    }
    Ok(())
}
