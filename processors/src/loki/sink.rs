//! The Loki sink: entries from the processor are batched by size and time, pushed, retried
//! with backoff while Loki is away or overloaded, split when Loki refuses a batch so that only
//! the entries it refuses are dead-lettered, and acknowledged to the runtime (which then stores
//! their input offsets) only once Loki holds them or they are dead-lettered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_schemas::{Codec, DeadLetter};
use tokio::sync::{mpsc, oneshot};

use super::client::Client;
use super::config::LokiConfig;
use super::entry::{self, Entry};
use super::push::{self, Verdict};
use super::pushed::Pushed;
use super::telemetry::{self as t, label};
use crate::runtime::{Ack, KafkaSink, Output, RuntimeConfig, Sink, SinkError};

/// The output topic name the processor gives its entries; no Kafka topic has it.
pub const DESTINATION: &str = "loki";

/// One entry on its way, with its input record and the acknowledgement owed for it.
struct Item {
    entry: Entry,
    source: Option<(String, i32, i64)>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The sink half the runtime holds; the pushing happens in a task.
pub struct LokiSink {
    tx: mpsc::UnboundedSender<Item>,
    task: tokio::task::JoinHandle<()>,
    /// Entries given to the task and not yet acknowledged (the pending gauge's share of this
    /// sink, taken back when it is dropped with entries unsent).
    pending: Arc<AtomicI64>,
}

/// Whether this process has set the last-accepted gauge (to its start, so that a sink that
/// never reaches Loki still shows its age).
static STARTED: AtomicBool = AtomicBool::new(false);

impl LokiSink {
    /// Starts a sink pushing to `config`'s Loki, dead-lettering through the broker of
    /// `runtime`, and advancing `pushed`. Must be called inside a tokio runtime.
    pub fn start(config: &LokiConfig, runtime: &RuntimeConfig, pushed: Arc<Pushed>) -> Result<LokiSink, SinkError> {
        // A credential or CA file that cannot be read is a setting to fix, not a retry.
        let client = Client::new(config).map_err(|e| SinkError::Settings(std::io::Error::other(e.to_string())))?;
        let dead = KafkaSink::new(&runtime.kafka)?;
        let (tx, rx) = mpsc::unbounded_channel();
        if !STARTED.swap(true, Ordering::Relaxed) {
            t::LAST_PUSHED.gauge0().set(now_us() as f64 / 1e6);
        }
        let pending = Arc::new(AtomicI64::new(0));
        let pusher = Pusher {
            pending: Arc::clone(&pending),
            client,
            config: config.clone(),
            pushed,
            dead,
            dead_topic: runtime.dead_letter.clone(),
            codec: Codec::default(),
        };
        let task = tokio::spawn(pusher.run(rx));
        Ok(LokiSink { tx, task, pending })
    }
}

impl Drop for LokiSink {
    fn drop(&mut self) {
        self.task.abort();
        t::PENDING.gauge0().decrement(self.pending.swap(0, Ordering::Relaxed) as f64);
    }
}

impl Sink for LokiSink {
    fn name(&self) -> &'static str {
        "loki"
    }

    fn accepts(&self, topic: &str) -> bool {
        topic == DESTINATION
    }

    fn publish(&mut self, output: &Output) -> Result<Ack, SinkError> {
        let entry =
            entry::decode(&output.payload).map_err(|e| SinkError::Refused { sink: "loki", message: e.to_string() })?;
        let (ack, rx) = oneshot::channel();
        let item = Item { entry, source: entry::parse_source_key(&output.key), ack };
        self.tx.send(item).map_err(|_| SinkError::Refused { sink: "loki", message: "the push task ended".into() })?;
        t::PENDING.gauge0().increment(1.0);
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(Ack::Other("loki", rx))
    }

    fn flush(&mut self, _timeout: Duration) -> Result<(), SinkError> {
        // The runtime awaits each entry's acknowledgement; nothing is held apart from them.
        Ok(())
    }

    fn close(&mut self) {
        self.task.abort();
    }
}

/// The task that batches and pushes.
struct Pusher {
    pending: Arc<AtomicI64>,
    client: Client,
    config: LokiConfig,
    pushed: Arc<Pushed>,
    dead: KafkaSink,
    dead_topic: String,
    codec: Codec,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

impl Pusher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Item>) {
        let mut batch: Vec<Item> = Vec::new();
        let mut bytes = 0usize;
        loop {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(item) => {
                        bytes += item.entry.size();
                        batch.push(item);
                    }
                    None => return,
                }
            }
            let deadline = tokio::time::Instant::now() + self.config.batch_wait();
            while bytes < self.config.batch_max_bytes {
                tokio::select! {
                    biased;
                    item = rx.recv() => match item {
                        Some(item) => {
                            bytes += item.entry.size();
                            batch.push(item);
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.deliver(std::mem::take(&mut batch)).await;
            bytes = 0;
        }
    }

    /// Pushes `items` until Loki holds them, splitting refused batches down to the entries
    /// it refuses on their own, which are dead-lettered. Items keep their order.
    async fn deliver(&mut self, items: Vec<Item>) {
        let mut parts: VecDeque<Vec<Item>> = VecDeque::from([items]);
        while let Some(mut part) = parts.pop_front() {
            match self.push(&part).await {
                None => self.done(part, true),
                Some((reason, detail)) if part.len() > 1 => {
                    tracing::info!(entries = part.len(), reason, %detail, "loki refused a batch; splitting it");
                    let second = part.split_off(part.len() / 2);
                    parts.push_front(second);
                    parts.push_front(part);
                }
                Some((reason, detail)) => {
                    if let Err(e) = self.dead_letter(part, reason, &detail).await {
                        // Nothing after the failed one may advance the pushed offsets past it:
                        // all of it is consumed again.
                        for item in parts.drain(..).flatten() {
                            self.fail(item, &e);
                        }
                    }
                }
            }
        }
    }

    /// Fails one item's acknowledgement (its input is consumed again).
    fn fail(&self, item: Item, why: &str) {
        t::PENDING.gauge0().decrement(1.0);
        self.pending.fetch_sub(1, Ordering::Relaxed);
        let _ = item.ack.send(Err(why.to_owned()));
    }

    /// Pushes one batch, retrying until Loki accepts it (`None`) or refuses its content
    /// (its bounded reason and Loki's answer).
    async fn push(&self, items: &[Item]) -> Option<(&'static str, String)> {
        let body = push::body(self.config.format, items.iter().map(|i| &i.entry));
        let min = Duration::from_millis(self.config.min_backoff_ms);
        let max = Duration::from_millis(self.config.max_backoff_ms);
        let mut backoff = min;
        loop {
            let started = Instant::now();
            let result = self.client.push(body.clone()).await;
            t::PUSH_SECONDS.histogram0().record(started.elapsed().as_secs_f64());
            let reason = match result {
                Ok((status, text)) => match push::verdict(status, &text) {
                    Verdict::Accepted => {
                        t::PUSHES.with_counter([label("outcome", "accepted")]).increment(1);
                        t::BYTES.counter0().increment(body.len() as u64);
                        return None;
                    }
                    Verdict::Refused(reason) => {
                        t::PUSHES.with_counter([label("outcome", "refused")]).increment(1);
                        return Some((reason, format!("HTTP {status}: {text}")));
                    }
                    Verdict::Retry(reason) => {
                        tracing::warn!(status, reason, body = %text, retry_in = ?backoff, "loki push failed; retrying");
                        reason
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "loki push failed; retrying");
                    "transport"
                }
            };
            t::PUSHES.with_counter([label("outcome", "retry")]).increment(1);
            t::RETRIES.with_counter([label("reason", reason)]).increment(1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max);
        }
    }

    /// Loki holds `items` (`accepted`) or they were dead-lettered: advance the pushed
    /// offsets, then acknowledge.
    fn done(&self, items: Vec<Item>, accepted: bool) {
        let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
        for item in &items {
            if let Some((topic, partition, offset)) = &item.source {
                let o = offsets.entry((topic.clone(), *partition)).or_insert(*offset);
                *o = (*o).max(*offset);
            }
        }
        if let Err(e) = self.pushed.advance(&offsets) {
            // Only a repeat push after a restart follows from this, never a loss.
            tracing::warn!(error = %e, "cannot record pushed offsets");
        }
        if accepted {
            t::LAST_PUSHED.gauge0().set(now_us() as f64 / 1e6);
        }
        t::PENDING.gauge0().decrement(items.len() as f64);
        self.pending.fetch_sub(items.len() as i64, Ordering::Relaxed);
        for item in items {
            if accepted {
                let source = if item.entry.stream.contains("source=\"event\"") { "event" } else { "log" };
                t::ENTRIES.with_counter([label("source", source)]).increment(1);
            }
            let _ = item.ack.send(Ok(()));
        }
    }

    /// Loki refused `items` (one entry): publish it to the dead-letter topic, then count it
    /// as done. If the broker does not take the dead letter, the acknowledgement fails (and so
    /// do the rest of `items`, returned as the error) and the runtime consumes the records again.
    async fn dead_letter(&mut self, items: Vec<Item>, reason: &'static str, detail: &str) -> Result<(), String> {
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            t::REFUSED.with_counter([label("reason", reason)]).increment(1);
            let (topic, partition, offset) = item.source.clone().unwrap_or_default();
            tracing::warn!(%topic, partition, offset, reason, detail, "loki refused an entry; dead-lettered");
            let entry = &item.entry;
            let payload = serde_json::json!({
                "stream": entry.stream,
                "ts_ns": entry.ts_ns.to_string(),
                "line": entry.line,
                "metadata": entry.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            });
            let record = DeadLetter {
                topic: topic.clone(),
                partition,
                offset,
                key: None,
                payload: payload.to_string().into_bytes(),
                headers: Default::default(),
                reason: format!("loki refused the entry ({reason}): {detail}"),
                error_class: "refused".into(),
                processor: "loki".into(),
                failed_at_us: now_us(),
            };
            let out = Output {
                topic: self.dead_topic.clone(),
                key: topic.into_bytes(),
                payload: self.codec.encode(&record).unwrap_or_default(),
            };
            let acked = match self.dead.publish(&out) {
                Ok(mut ack) => ack.wait().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acked {
                Ok(()) => self.done(vec![item], false),
                Err(e) => {
                    let why = format!("dead letter not published: {e}");
                    self.fail(item, &why);
                    for rest in items {
                        self.fail(rest, &why);
                    }
                    return Err(why);
                }
            }
        }
        Ok(())
    }
}
