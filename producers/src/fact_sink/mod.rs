//! Durable, non-blocking publishing of facts that cannot be re-read (ZMQ, RPC).
//!
//! Every fact is appended to a disk [`Spool`] first. While the broker is reachable and nothing
//! older waits unsent, the source's own thread then hands the fact to librdkafka at once, and the
//! delivery report, on the producer's poll thread, removes it from the spool's head: no other
//! thread wakes for it. Whatever could not go that way (facts spooled before a restart, a
//! backlog from an outage, everything after a failed delivery) is sent by a drainer task from the
//! spool's head, in order, in windows. A broker outage, or a producer restart during one, loses
//! nothing; when the spool is full the fact is refused and the caller counts it as dropped.

pub mod ledger;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bmon_kafka::AckingProducer;
use bmon_schemas::{Codec, Record};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;

use crate::publish::{PublishError, SharedProducer};
use crate::spool::{Spool, SpoolError};
use crate::telemetry;
use crate::telemetry::label;
use ledger::{Delivery, Ledger};

/// Records the drainer sends in one window before waiting for their reports.
const WINDOW: usize = 500;

/// How long an idle drainer sleeps without a wake-up (a safety net: wake-ups are not lost).
const IDLE_RECHECK: Duration = Duration::from_secs(10);

/// Where this source's facts go, once connected.
struct Link {
    producer: AckingProducer,
    topic: String,
    partition: i32,
    key: String,
}

/// The spool and what of it is with the broker, under one lock.
struct State {
    spool: Spool,
    ledger: Ledger,
    link: Option<Link>,
}

struct Inner {
    state: Mutex<State>,
    codec: Codec,
    source: &'static str,
    /// Wakes the drainer: a fact it must send, or the last report of a window or after a failure.
    wake: tokio::sync::Notify,
}

/// What the drainer does next.
enum Step {
    /// Build a connection (the first, or after a failure).
    Connect,
    /// A delivery failed and every record in flight was reported: drop the producer, back off,
    /// then send the spool again from its head.
    Recover,
    /// Records are in flight: wait for their reports.
    Busy,
    /// Nothing could be sent just now (librdkafka's queue is full): try again shortly.
    Retry,
    /// Nothing waits.
    Idle,
}

/// The appending side, used by sources on any thread.
#[derive(Clone)]
pub struct FactSink {
    inner: Arc<Inner>,
}

impl FactSink {
    /// Opens the spool in `dir` (at most `capacity` bytes) for facts of `source` (`zmq`, `rpc`).
    pub fn open(dir: &Path, capacity: u64, source: &'static str) -> Result<FactSink, SpoolError> {
        let spool = Spool::open(dir, capacity)?;
        if !spool.is_empty() {
            tracing::info!(source, records = spool.len(), "spooled facts from before a restart will be sent first");
        }
        let state = State { spool, ledger: Ledger::default(), link: None };
        let inner = Inner { state: Mutex::new(state), codec: Codec::default(), source, wake: Default::default() };
        if let Ok(st) = inner.state.lock() {
            inner.gauges(&st);
        }
        Ok(FactSink { inner: Arc::new(inner) })
    }

    /// Spools `fact`, and sends it at once when nothing older waits; false if it could not be
    /// stored (spool full or disk error), which the caller counts as dropped.
    pub fn send<T: Record>(&self, fact: &T) -> bool {
        let Ok(bytes) = self.inner.codec.encode(fact) else { return false };
        let Ok(mut st) = self.inner.state.lock() else { return false };
        if let Err(e) = st.spool.append(&bytes) {
            tracing::warn!(source = self.inner.source, error = %e, "fact not spooled");
            return false;
        }
        telemetry::QUEUED.with_gauge([label("source", self.inner.source)]).set(st.spool.len() as f64);
        let direct = st.link.is_some() && st.ledger.may_send_next(st.spool.len());
        if !direct {
            self.inner.wake.notify_one();
        } else if let Err(e) = self.inner.dispatch(&mut st, &bytes) {
            // Left unsent: the drainer sends it (or drops it, if the broker can never take it)
            // when it reaches the head. Any other failure means the producer cannot send at all.
            if !matches!(classify_send(&e), SendError::QueueFull | SendError::Unsendable) {
                st.ledger.fail();
            }
            self.inner.wake.notify_one();
        }
        true
    }

    /// Facts waiting to be acknowledged.
    pub fn queued(&self) -> u64 {
        self.inner.state.lock().map(|s| s.spool.len()).unwrap_or(0)
    }

    /// Connects to `key`'s partition of `topic` and sends what the sources could not, until
    /// `shutdown`, then for up to `grace` more while facts remain. Broker failures are retried
    /// with backoff.
    pub async fn drain(
        &self,
        shared: &SharedProducer,
        topic: &str,
        key: &str,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let source = self.inner.source;
        let mut backoff = Duration::from_millis(200);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if deadline.is_none() && *shutdown.borrow() {
                deadline = Some(tokio::time::Instant::now() + grace);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
            match self.inner.step() {
                // The metadata lookup blocks for up to 10 s while the broker is away: off the
                // runtime, which also runs the log source and the health listener.
                Step::Connect => match tokio::task::spawn_blocking({
                    let (shared, topic, key) = (shared.clone(), topic.to_owned(), key.to_owned());
                    move || connect(&shared, &topic, &key)
                })
                .await
                .unwrap_or_else(|e| Err(PublishError::Client(format!("connect task: {e}"))))
                {
                    Ok(link) => {
                        if let Ok(mut st) = self.inner.state.lock() {
                            st.link = Some(link);
                        }
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        tracing::warn!(source, error = %e, retry_in = ?backoff, "cannot reach the broker; facts stay spooled");
                        backoff = pause(&mut shutdown, backoff, deadline).await;
                    }
                },
                Step::Recover => {
                    tracing::warn!(source, retry_in = ?backoff, "broker did not acknowledge; facts stay spooled and are sent again");
                    shared.reset();
                    backoff = pause(&mut shutdown, backoff, deadline).await;
                }
                Step::Idle if deadline.is_some() => break,
                Step::Retry => {
                    let until = tokio::time::Instant::now() + RETRY_AFTER;
                    tokio::time::sleep_until(deadline.map_or(until, |d| until.min(d))).await;
                }
                Step::Idle | Step::Busy => {
                    let until = tokio::time::Instant::now() + IDLE_RECHECK;
                    let until = deadline.map_or(until, |d| until.min(d));
                    // Once shutting down, only reports and the deadline matter (a dropped
                    // shutdown sender would make `changed` return at once, forever).
                    let watch_shutdown = deadline.is_none();
                    tokio::select! {
                        _ = self.inner.wake.notified() => {}
                        _ = tokio::time::sleep_until(until) => {}
                        _ = shutdown.changed(), if watch_shutdown => {}
                    }
                }
            }
        }
    }
}

impl Inner {
    /// Decides the drainer's next step; sends the next window from the spool's head when nothing
    /// is in flight.
    fn step(self: &Arc<Self>) -> Step {
        let Ok(mut st) = self.state.lock() else { return Step::Busy };
        if st.ledger.recover() {
            // Dropped outside the lock: the last producer handle may serve delivery reports.
            let old = st.link.take();
            drop(st);
            drop(old);
            return Step::Recover;
        }
        if st.ledger.is_broken() {
            return Step::Busy;
        }
        if st.link.is_none() {
            return Step::Connect;
        }
        if st.spool.is_empty() {
            return Step::Idle;
        }
        if st.ledger.in_flight() == 0 {
            let frames = match st.spool.peek(WINDOW) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(source = self.source, error = %e, "cannot read the spool");
                    return Step::Busy;
                }
            };
            for f in &frames {
                let Err(e) = self.dispatch(&mut st, &f.payload) else { continue };
                match classify_send(&e) {
                    // Nothing before it is in flight, so it is the head: drop it, go on.
                    SendError::Unsendable if st.ledger.in_flight() == 0 => {
                        self.dropped(&e);
                        self.remove_head(&mut st);
                        continue;
                    }
                    // Dropped when it reaches the head, once those before it are reported.
                    SendError::Unsendable => {}
                    SendError::QueueFull => {
                        tracing::debug!(source = self.source, "librdkafka's queue is full; the rest waits");
                    }
                    SendError::Other => {
                        tracing::warn!(source = self.source, error = %e, "cannot send; reconnecting");
                        st.ledger.fail();
                    }
                }
                break;
            }
            if st.ledger.in_flight() == 0 {
                return Step::Retry;
            }
        }
        Step::Busy
    }

    /// Counts and logs a fact the broker will never take.
    fn dropped(&self, e: &KafkaError) {
        telemetry::DROPPED.with_counter([label("source", self.source)]).increment(1);
        tracing::error!(source = self.source, error = %e, "the broker refuses this fact for good (too large or invalid); dropped");
    }

    /// Hands `payload`, the spooled record after those in flight, to librdkafka.
    fn dispatch(self: &Arc<Self>, st: &mut State, payload: &[u8]) -> Result<(), KafkaError> {
        let Some(link) = st.link.as_ref() else { return Err(KafkaError::Canceled) };
        let seq = st.ledger.next_seq();
        let me = Arc::clone(self);
        link.producer
            .send_then(&link.topic, link.partition, link.key.as_bytes(), payload, move |r| me.reported(seq, r))?;
        st.ledger.sent();
        Ok(())
    }

    /// The broker's report on record `seq` (on the producer's poll thread).
    fn reported(&self, seq: u64, result: Result<(), KafkaError>) {
        let Ok(mut st) = self.state.lock() else { return };
        let delivery = match &result {
            Ok(()) => Delivery::Acked,
            Err(e) if classify_send(e) == SendError::Unsendable => {
                self.dropped(e);
                Delivery::Rejected
            }
            Err(e) => {
                telemetry::DELIVERY_FAILURES.with_counter([label("source", self.source)]).increment(1);
                tracing::warn!(source = self.source, error = %e, "a fact was not acknowledged; it stays spooled");
                Delivery::Failed
            }
        };
        if st.ledger.report(seq, delivery) {
            self.remove_head(&mut st);
        }
        if st.ledger.in_flight() == 0 && (st.ledger.is_broken() || !st.spool.is_empty()) {
            self.wake.notify_one();
        }
    }

    /// Removes the spool's head record (acknowledged, or dropped for good).
    fn remove_head(&self, st: &mut State) {
        if let Err(e) = st.spool.advance(1) {
            tracing::error!(source = self.source, error = %e, "cannot advance the spool head");
        }
        if st.ledger.in_flight() == 0 {
            self.gauges(st);
        } else {
            // The age gauge reads the head record from disk: not once per acknowledgement of a
            // window, only when its last report is in.
            telemetry::QUEUED.with_gauge([label("source", self.source)]).set(st.spool.len() as f64);
        }
    }

    fn gauges(&self, st: &State) {
        telemetry::QUEUED.with_gauge([label("source", self.source)]).set(st.spool.len() as f64);
        telemetry::SPOOL_AGE.with_gauge([label("source", self.source)]).set(st.spool.age_seconds());
    }
}

/// How long the drainer waits when librdkafka's queue had no room for a window.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// What a failed send (or delivery) means for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendError {
    /// librdkafka's local queue is full: send it again shortly.
    QueueFull,
    /// The record itself is refused (too large, invalid): sending it again cannot succeed.
    Unsendable,
    /// Anything else: the producer or the broker is at fault.
    Other,
}

fn classify_send(e: &KafkaError) -> SendError {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => SendError::QueueFull,
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord,
        ) => SendError::Unsendable,
        _ => SendError::Other,
    }
}

/// Sleeps `backoff` (not past `deadline`); returns the next, doubled backoff.
async fn pause(
    shutdown: &mut watch::Receiver<bool>,
    backoff: Duration,
    deadline: Option<tokio::time::Instant>,
) -> Duration {
    let wake = tokio::time::Instant::now() + backoff;
    let wake = deadline.map_or(wake, |d| wake.min(d));
    tokio::select! {
        _ = tokio::time::sleep_until(wake) => {}
        _ = shutdown.changed(), if deadline.is_none() => {}
    }
    (backoff * 2).min(Duration::from_secs(5))
}

fn connect(shared: &SharedProducer, topic: &str, key: &str) -> Result<Link, PublishError> {
    let (producer, partition) = shared.route(topic, key)?;
    Ok(Link { producer, topic: topic.to_owned(), partition, key: key.to_owned() })
}
