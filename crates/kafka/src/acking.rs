//! A producer whose sends return futures of their acknowledgements, polled by a thread of our own.
//!
//! rust-rdkafka's `BaseProducer::poll(t)` keeps polling until `t` has passed, and in its last
//! sub-millisecond spins on `rd_kafka_queue_poll(0)`; `FutureProducer` calls it every 100 ms, about
//! 1 % of a core while idle. This producer's thread calls it with [`POLL_SPAN`] instead (delivery
//! reports still wake it at once), so the spin happens once per span.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::oneshot;

/// The broker's answer for one record, or for every record of a [`Batch`].
pub type Ack = oneshot::Receiver<Result<(), KafkaError>>;

/// Who waits for a record's delivery report.
pub enum Waiter {
    /// The record's own future.
    One(oneshot::Sender<Result<(), KafkaError>>),
    /// A batch's shared future, completed by its last report (or its first failure).
    Batch(Arc<BatchState>),
    /// A function called with the report, on the poll thread: no other thread wakes.
    Call(Box<dyn FnOnce(Result<(), KafkaError>) + Send + Sync>),
}

/// A batch's outstanding count and its future.
pub struct BatchState {
    left: std::sync::atomic::AtomicUsize,
    tx: std::sync::Mutex<Option<oneshot::Sender<Result<(), KafkaError>>>>,
}

impl BatchState {
    fn complete(&self, result: Result<(), KafkaError>) {
        if let Ok(mut tx) = self.tx.lock()
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(result);
        }
    }

    /// One record's report: a failure completes the batch at once, the last success completes it.
    fn report(&self, result: Result<(), KafkaError>) {
        let last = self.left.fetch_sub(1, Ordering::AcqRel) == 1;
        if result.is_err() || last {
            self.complete(result);
        }
    }
}

/// Completes each record's waiter from the delivery report.
///
/// When a record times out in librdkafka's queue (`message.timeout.ms`), every record still
/// queued behind it is purged at once (it fails too, and is reported). Without that, a record
/// queued later could still be delivered after an earlier one failed, leaving a gap that its
/// sender's resend would fill out of order (librdkafka's "message timeout considerations"). With
/// it, the failures form a suffix of what was sent, so a sender that resends from its first
/// failure publishes every record once and in order. Records already on the wire are not purged:
/// they are answered by the broker.
#[derive(Default)]
pub struct AckContext {
    producer: OnceLock<Weak<BaseProducer<AckContext>>>,
}

impl ClientContext for AckContext {}

impl AckContext {
    fn purge_queued(&self) {
        if let Some(p) = self.producer.get().and_then(Weak::upgrade) {
            // Non-blocking: a sweep may time out thousands of records, each calling this.
            p.purge(PurgeConfig::default().queue().non_blocking());
        }
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Waiter>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiter: Self::DeliveryOpaque) {
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone());
        if let Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)) = &result {
            self.purge_queued();
        }
        match *waiter {
            Waiter::One(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Batch(state) => state.report(result),
            Waiter::Call(f) => f(result),
        }
    }
}

/// Records queued together with one future for all of them: one wake-up when the broker has
/// acknowledged the last, instead of one per record.
pub struct Batch<'p> {
    producer: &'p AckingProducer,
    state: Arc<BatchState>,
    rx: Ack,
}

impl Batch<'_> {
    /// Queues one record of the batch. Fails at once when the local queue is full; the records
    /// queued before still count.
    pub fn send(&mut self, topic: &str, partition: i32, key: &[u8], payload: &[u8]) -> Result<(), KafkaError> {
        self.state.left.fetch_add(1, Ordering::AcqRel);
        let waiter = Box::new(Waiter::Batch(Arc::clone(&self.state)));
        let record = BaseRecord::with_opaque_to(topic, waiter).partition(partition).key(key).payload(payload);
        self.producer.producer.send(record).map_err(|(e, _)| {
            self.state.left.fetch_sub(1, Ordering::AcqRel);
            e
        })
    }

    /// The future of the whole batch: `Ok` once every record sent through it was acknowledged, or
    /// the first failure.
    pub fn finish(self) -> Ack {
        // The batch's own count (taken in `AckingProducer::batch`) is released last, so the
        // future cannot complete while records are still being added.
        self.state.report(Ok(()));
        self.rx
    }
}

/// How long one call of the poll thread polls for.
const POLL_SPAN: Duration = Duration::from_secs(5);

/// Stops the poll thread when the last producer clone is dropped. Not joined: the thread finishes
/// its current span (at most [`POLL_SPAN`]) and then drops its reference to the client. Call
/// [`AckingProducer::flush`] first when outstanding records matter.
struct Poller {
    stop: Arc<AtomicBool>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A producer with acknowledgement futures. Cheap to clone; the poll thread stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct AckingProducer {
    producer: Arc<BaseProducer<AckContext>>,
    _poller: Arc<Poller>,
}

impl AckingProducer {
    /// Creates the producer from `config` and starts its poll thread.
    pub fn new(config: &ClientConfig) -> Result<AckingProducer, KafkaError> {
        let producer = Arc::new(BaseProducer::from_config_and_context(config, AckContext::default())?);
        // The poll thread holds a strong reference while it serves reports, so the context's
        // weak one upgrades whenever a report needs it.
        let _ = producer.context().producer.set(Arc::downgrade(&producer));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&producer), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("bmon-producer-poll".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    p.poll(POLL_SPAN);
                }
            })
            .map_err(|e| KafkaError::ClientCreation(format!("poll thread: {e}")))?;
        Ok(AckingProducer { producer, _poller: Arc::new(Poller { stop }) })
    }

    /// Queues one record for `partition` of `topic`; the returned future resolves when the broker
    /// acknowledged it or delivery failed. Fails at once when the local queue is full.
    pub fn send(&self, topic: &str, partition: i32, key: &[u8], payload: &[u8]) -> Result<Ack, KafkaError> {
        let (tx, rx) = oneshot::channel();
        self.queue(topic, partition, key, payload, Waiter::One(tx))?;
        Ok(rx)
    }

    fn queue(&self, topic: &str, partition: i32, key: &[u8], payload: &[u8], waiter: Waiter) -> Result<(), KafkaError> {
        let record = BaseRecord::with_opaque_to(topic, Box::new(waiter)).partition(partition).key(key).payload(payload);
        self.producer.send(record).map_err(|(e, _)| e)
    }

    /// Queues one record like [`AckingProducer::send`], but calls `on_report` with the broker's
    /// answer on the poll thread instead of completing a future. `on_report` must be quick and
    /// must not call back into this producer. Fails at once when the local queue is full; then
    /// `on_report` is dropped uncalled.
    pub fn send_then(
        &self,
        topic: &str,
        partition: i32,
        key: &[u8],
        payload: &[u8],
        on_report: impl FnOnce(Result<(), KafkaError>) + Send + Sync + 'static,
    ) -> Result<(), KafkaError> {
        self.queue(topic, partition, key, payload, Waiter::Call(Box::new(on_report)))
    }

    /// Starts a batch of records that share one acknowledgement future.
    pub fn batch(&self) -> Batch<'_> {
        let (tx, rx) = oneshot::channel();
        // One count for the batch itself, released by `Batch::finish`.
        let state =
            Arc::new(BatchState { left: std::sync::atomic::AtomicUsize::new(1), tx: std::sync::Mutex::new(Some(tx)) });
        Batch { producer: self, state, rx }
    }

    /// The underlying client (metadata, fatal errors).
    pub fn client(&self) -> &Client<AckContext> {
        self.producer.client()
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Drops the records still queued (not yet sent): their futures fail with a purge error.
    pub fn purge_queued(&self) {
        self.producer.purge(PurgeConfig::default().queue())
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaErrorCode;

    use super::*;

    fn state(records: usize) -> (Arc<BatchState>, Ack) {
        let (tx, rx) = oneshot::channel();
        // The batch's own count plus one per record, as `batch` and `Batch::send` take them.
        let s =
            BatchState { left: std::sync::atomic::AtomicUsize::new(1 + records), tx: std::sync::Mutex::new(Some(tx)) };
        (Arc::new(s), rx)
    }

    #[test]
    fn a_batch_completes_after_its_last_report_and_its_finish() {
        let (s, mut rx) = state(2);
        s.report(Ok(()));
        s.report(Ok(()));
        assert!(rx.try_recv().is_err(), "not finished yet: more records may be added");
        s.report(Ok(())); // finish
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
    }

    #[test]
    fn a_failed_record_completes_the_batch_at_once_with_its_error() {
        let (s, mut rx) = state(3);
        s.report(Ok(()));
        s.report(Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)));
        assert!(matches!(rx.try_recv(), Ok(Err(_))));
        s.report(Ok(()));
        s.report(Ok(()));
    }
}
