//! Durable, non-blocking publishing of facts that cannot be re-read (ZMQ, RPC).
//!
//! Sources append encoded facts to a disk [`Spool`]; a drainer task publishes them in order to one
//! node's partition and removes them only after the broker acknowledged. A broker outage, or a
//! producer restart during one, loses nothing; when the spool is full the fact is refused and the
//! caller counts it as dropped.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bmon_kafka::{AckingProducer, partition_count, partition_for};
use bmon_schemas::{Codec, Record};
use tokio::sync::watch;

use crate::publish::{PublishError, SharedProducer};
use crate::spool::{Spool, SpoolError};
use crate::telemetry;

/// Records sent per drain round before waiting for their acknowledgements.
const WINDOW: usize = 500;

/// The appending side, used by sources on any thread.
#[derive(Clone)]
pub struct FactSink {
    spool: Arc<Mutex<Spool>>,
    codec: Codec,
    source: &'static str,
    appended: Arc<tokio::sync::Notify>,
}

impl FactSink {
    /// Opens the spool in `dir` (at most `capacity` bytes) for facts of `source` (`zmq`, `rpc`).
    pub fn open(dir: &Path, capacity: u64, source: &'static str) -> Result<FactSink, SpoolError> {
        let spool = Spool::open(dir, capacity)?;
        if !spool.is_empty() {
            tracing::info!(source, records = spool.len(), "spooled facts from before a restart will be sent first");
        }
        metrics::gauge!(telemetry::QUEUED, "source" => source).set(spool.len() as f64);
        metrics::gauge!(telemetry::SPOOL_AGE, "source" => source).set(spool.age_seconds());
        Ok(FactSink {
            spool: Arc::new(Mutex::new(spool)),
            codec: Codec::default(),
            source,
            appended: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Spools `fact`; false if it could not be stored (spool full or disk error), which the caller
    /// counts as dropped.
    pub fn send<T: Record>(&self, fact: &T) -> bool {
        let Ok(bytes) = self.codec.encode(fact) else { return false };
        let Ok(mut spool) = self.spool.lock() else { return false };
        match spool.append(&bytes) {
            Ok(()) => {
                metrics::gauge!(telemetry::QUEUED, "source" => self.source).set(spool.len() as f64);
                self.appended.notify_one();
                true
            }
            Err(e) => {
                tracing::warn!(source = self.source, error = %e, "fact not spooled");
                false
            }
        }
    }

    /// Facts waiting to be acknowledged.
    pub fn queued(&self) -> u64 {
        self.spool.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Publishes spooled facts to `key`'s partition of `topic` until `shutdown`, then for up to
    /// `grace` more while facts remain. Broker failures are retried with backoff.
    pub async fn drain(
        &self,
        shared: &SharedProducer,
        topic: &str,
        key: &str,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut backoff = Duration::from_millis(200);
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut conn: Option<(AckingProducer, i32)> = None;
        loop {
            if deadline.is_none() && *shutdown.borrow() {
                deadline = Some(tokio::time::Instant::now() + grace);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
            if conn.is_none() {
                match connect(shared, topic, key) {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(source = self.source, error = %e, retry_in = ?backoff, "cannot reach the broker; facts stay spooled");
                        backoff = pause(&mut shutdown, backoff, deadline).await;
                        continue;
                    }
                }
            }
            let empty = self.spool.lock().map(|s| s.is_empty()).unwrap_or(true);
            if empty {
                if deadline.is_some() {
                    break;
                }
                // Idle: sleep until a source appends (the timeout only guards a missed wake-up).
                tokio::select! {
                    _ = self.appended.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let frames = self.spool.lock().ok().and_then(|s| s.peek(WINDOW).ok()).unwrap_or_default();
            let Some((producer, partition)) = conn.as_ref() else { continue };
            let acked = publish_window(producer, topic, *partition, key, &frames).await;
            if let Ok(mut spool) = self.spool.lock() {
                if let Err(e) = spool.advance(acked) {
                    tracing::error!(source = self.source, error = %e, "cannot advance the spool head");
                }
                metrics::gauge!(telemetry::QUEUED, "source" => self.source).set(spool.len() as f64);
                metrics::gauge!(telemetry::SPOOL_AGE, "source" => self.source).set(spool.age_seconds());
            }
            if acked < frames.len() {
                tracing::warn!(source = self.source, retry_in = ?backoff, "broker did not acknowledge; facts stay spooled");
                conn = None;
                shared.reset();
                backoff = pause(&mut shutdown, backoff, deadline).await;
            } else {
                backoff = Duration::from_millis(200);
            }
        }
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
        _ = shutdown.changed() => {}
    }
    (backoff * 2).min(Duration::from_secs(5))
}

fn connect(shared: &SharedProducer, topic: &str, key: &str) -> Result<(AckingProducer, i32), PublishError> {
    let producer = shared.get()?;
    let partitions = partition_count(producer.client(), topic, Duration::from_secs(10))
        .map_err(|e| PublishError::Client(e.to_string()))?
        .ok_or_else(|| PublishError::NoTopic(topic.to_owned()))?;
    Ok((producer, partition_for(key.as_bytes(), partitions)))
}

/// Sends `frames` and waits for their acknowledgements in order; returns how many, from the
/// first, were acknowledged.
async fn publish_window(
    producer: &AckingProducer,
    topic: &str,
    partition: i32,
    key: &str,
    frames: &[crate::spool::frame::Frame],
) -> usize {
    let mut pending = Vec::with_capacity(frames.len());
    for f in frames {
        match producer.send(topic, partition, key.as_bytes(), &f.payload) {
            Ok(ack) => pending.push(ack),
            Err(_) => break,
        }
    }
    let mut acked = 0;
    for ack in pending {
        match ack.await {
            Ok(Ok(())) => acked += 1,
            _ => break,
        }
    }
    acked
}
