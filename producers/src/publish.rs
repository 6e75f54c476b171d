//! Publishing log lines as facts, and recovering the published position from the broker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_kafka::{Ack, AckingProducer, ClientSettings, partition_count, partition_for};
use bmon_schemas::{Codec, Envelope, LogLineFact, NodeImplementation, SourceSeq};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::recovery::{Landed, LandedLine};
use crate::tail::{FileId, Line, Position, Stamp};

/// Publishing failures. All are retryable: the file is still there, so the caller backs off and
/// resumes from the broker's position.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Settings or client creation failed.
    #[error("kafka client: {0}")]
    Client(String),
    /// The topic is missing or has no partitions.
    #[error("topic `{0}` does not exist: run `bmon topology apply`")]
    NoTopic(String),
    /// The broker did not acknowledge a fact.
    #[error("delivery to {topic} failed: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// rdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Reading back the partition failed.
    #[error("reading back {topic}/{partition}: {source}")]
    ReadBack {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// rdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A fact could not be encoded (a bug, not bad input).
    #[error("encoding a fact: {0}")]
    Encode(String),
}

/// One librdkafka producer shared by every source of the process (fewer threads and buffers than
/// one per source). If it fails fatally (e.g. the broker lost idempotence state), the next
/// [`SharedProducer::get`] builds a fresh one.
#[derive(Clone)]
pub struct SharedProducer {
    settings: ClientSettings,
    current: std::sync::Arc<std::sync::Mutex<Option<AckingProducer>>>,
}

impl SharedProducer {
    /// A holder that creates its producer on first use.
    pub fn new(settings: &ClientSettings) -> SharedProducer {
        SharedProducer { settings: settings.clone(), current: Default::default() }
    }

    /// The client settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Drops the producer so the next [`SharedProducer::get`] builds a fresh one (with a new
    /// producer id). Called after delivery failures: a broker that restarted may not know the old
    /// id (tansu 0.6.0 even fails hard on it).
    pub fn reset(&self) {
        if let Ok(mut slot) = self.current.lock() {
            *slot = None;
        }
    }

    /// The producer and `key`'s partition of `topic` (Kafka's murmur2 of the key, as the Java
    /// client picks it). Blocks for the metadata lookup, up to 10 s.
    pub fn route(&self, topic: &str, key: &str) -> Result<(AckingProducer, i32), PublishError> {
        let producer = self.get()?;
        let partitions = partition_count(producer.client(), topic, Duration::from_secs(10))
            .map_err(|e| PublishError::Client(e.to_string()))?
            .ok_or_else(|| PublishError::NoTopic(topic.to_owned()))?;
        Ok((producer, partition_for(key.as_bytes(), partitions)))
    }

    /// The producer, rebuilt if it failed fatally.
    pub fn get(&self) -> Result<AckingProducer, PublishError> {
        let mut slot = self.current.lock().map_err(|_| PublishError::Client("producer lock poisoned".into()))?;
        if let Some(p) = slot.as_ref().filter(|p| p.client().fatal_error().is_none()) {
            return Ok(p.clone());
        }
        let mut cfg = self.settings.producer_config().map_err(|e| PublishError::Client(e.to_string()))?;
        // Idempotence keeps each partition's facts in order with no gaps across retries.
        cfg.set("enable.idempotence", "true");
        let producer = AckingProducer::new(&cfg).map_err(|e| PublishError::Client(e.to_string()))?;
        *slot = Some(producer.clone());
        Ok(producer)
    }
}

/// Who the facts are about.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Node id (the record key).
    pub node_id: String,
    /// Network.
    pub network: String,
    /// Node software.
    pub implementation: NodeImplementation,
    /// Its version string, shared by the node's sources.
    pub version: NodeVersion,
}

/// A node's version string, shared by its sources (clones share it): `[node] version` when
/// configured, else what the node says in getnetworkinfo's `subversion` (for example
/// `Satoshi:31.99.0`), learned by the RPC source, and followed across upgrades. Empty until then.
#[derive(Debug, Clone, Default)]
pub struct NodeVersion {
    value: std::sync::Arc<std::sync::RwLock<String>>,
    configured: bool,
}

impl NodeVersion {
    /// `configured` if not empty; otherwise learned later.
    pub fn new(configured: &str) -> NodeVersion {
        NodeVersion {
            value: std::sync::Arc::new(std::sync::RwLock::new(configured.to_owned())),
            configured: !configured.is_empty(),
        }
    }

    /// The version now.
    pub fn get(&self) -> String {
        self.value.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// The node's getnetworkinfo `subversion` (`/Satoshi:31.99.0/`); ignored when configured.
    /// True if the version changed.
    pub fn learn(&self, subversion: &str) -> bool {
        let v = subversion.trim_matches('/');
        if self.configured || v.is_empty() {
            return false;
        }
        match self.value.write() {
            Ok(mut cur) if *cur != v => {
                *cur = v.to_owned();
                true
            }
            _ => false,
        }
    }
}

/// Sends log facts for one node to its partition of the log topic.
pub struct LogPublisher {
    producer: AckingProducer,
    settings: ClientSettings,
    topic: String,
    partition: i32,
    codec: Codec,
    node: NodeIdentity,
    path: String,
}

/// Now, µs since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl LogPublisher {
    /// Connects, looks up the topic's partition count and picks this node's partition
    /// (Kafka's murmur2 of the node id).
    pub fn new(shared: &SharedProducer, topic: &str, node: NodeIdentity, path: &str) -> Result<Self, PublishError> {
        let (producer, partition) = shared.route(topic, &node.node_id)?;
        Ok(LogPublisher {
            producer,
            settings: shared.settings().clone(),
            topic: topic.to_owned(),
            partition,
            codec: Codec::default(),
            node,
            path: path.to_owned(),
        })
    }

    /// The partition this node's facts go to.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The fact for one line, received at `received_at_us`, `backlog` if it was there already at
    /// the previous read.
    pub fn fact(&self, file: FileId, line: &Line, received_at_us: i64, backlog: bool) -> LogLineFact {
        LogLineFact {
            envelope: Envelope {
                node_id: self.node.node_id.clone(),
                network: self.node.network.clone(),
                implementation: self.node.implementation,
                node_version: self.node.version.get(),
                received_at_us,
                source: SourceSeq { stream: "log".into(), epoch: file.epoch(), offset: line.start as i64 },
            },
            path: self.path.clone(),
            line: line.bytes.clone(),
            truncated: line.truncated,
            end_offset: line.end as i64,
            backlog,
        }
    }

    /// Sends `lines` of `file`. The future completes when the broker has acknowledged every
    /// line that was queued, or at the first failure. It comes back also when not every line
    /// could be queued (the error says why): the caller must still await the ones that were.
    pub fn send(&self, file: FileId, lines: &[Line], stamp: &Stamp) -> (Ack, Result<(), PublishError>) {
        // One acknowledgement future for the whole batch: one wake-up, not one per line.
        let mut batch = self.producer.batch();
        let queued = lines.iter().try_for_each(|line| {
            let bytes = self
                .codec
                .encode(&self.fact(file, line, stamp.received_at_us(file, line.end), stamp.backlog(file, line.end)))
                .map_err(|e| PublishError::Encode(e.to_string()))?;
            batch
                .send(&self.topic, self.partition, self.node.node_id.as_bytes(), &bytes)
                .map_err(|e| self.delivery_error(e))
        });
        (batch.finish(), queued)
    }

    /// The error for a failed delivery to the log topic.
    pub fn delivery_error(&self, source: KafkaError) -> PublishError {
        PublishError::Delivery { topic: self.topic.clone(), source }
    }

    /// This node's log facts in its partition since the local checkpoint: what was really
    /// published, whatever the checkpoint says, and whether anything is missing between them
    /// (see [`crate::recovery`]). Scans backwards in chunks. With a `checkpoint` (its position, and
    /// its write time in Unix ms) it stops at the fact that covers the checkpoint or at records
    /// older than the write time (this node's newer facts cannot be before it); without one, at
    /// the chunk that holds this node's newest fact. It gives up after [`MAX_RECOVERY_SCAN`]
    /// records, so a start costs what the partition received since the checkpoint, not its whole
    /// retention.
    pub fn recover_landed(
        &self,
        timeout: Duration,
        checkpoint: Option<(Position, i64)>,
    ) -> Result<Landed, PublishError> {
        let read_err = |source| PublishError::ReadBack { topic: self.topic.clone(), partition: self.partition, source };
        let consumer: BaseConsumer = self
            .settings
            .client_config()
            .map_err(|e| PublishError::Client(e.to_string()))?
            .set("group.id", "bmon-producer-recovery")
            .set("enable.auto.commit", "false")
            // Small prefetch: the scan reads a chunk at a time, and the process should stay small.
            .set("queued.max.messages.kbytes", "1024")
            // Every chunk is there to be read: do not let a broker that holds fetches for the full
            // wait (tansu does) stretch each chunk's read.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.max.bytes", "1048576")
            .set("max.partition.fetch.bytes", "1048576")
            .create()
            .map_err(|e| PublishError::Client(e.to_string()))?;
        let (low, high) = consumer.fetch_watermarks(&self.topic, self.partition, timeout).map_err(read_err)?;
        const CHUNK: i64 = 2048;
        let mut landed = Landed::default();
        let covers = |l: &LandedLine, cp: Position| l.file == cp.file && l.start < cp.offset && cp.offset <= l.end;
        let mut end = high;
        while end > low {
            let start = (end - CHUNK).max(low);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(start)).map_err(read_err)?;
            consumer.assign(&tpl).map_err(read_err)?;
            let deadline = Instant::now() + timeout;
            let mut next = start;
            let mut oldest = i64::MAX;
            let before = landed.lines.len();
            while next < end && Instant::now() < deadline {
                let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
                let msg = msg.map_err(read_err)?;
                next = msg.offset() + 1;
                if msg.offset() >= end {
                    continue;
                }
                oldest = oldest.min(msg.timestamp().to_millis().unwrap_or(i64::MAX));
                if msg.key() != Some(self.node.node_id.as_bytes()) {
                    continue;
                }
                let fact = msg.payload().and_then(|p| self.codec.decode::<LogLineFact>(p).ok());
                if let Some((fact, file)) = fact
                    .filter(|f| f.envelope.node_id == self.node.node_id && f.envelope.source.stream == "log")
                    .and_then(|f| parse_epoch(&f.envelope.source.epoch).map(|file| (f, file)))
                {
                    landed.lines.push(LandedLine {
                        at: msg.offset(),
                        file,
                        start: fact.envelope.source.offset as u64,
                        end: fact.end_offset as u64,
                    });
                }
            }
            if next < end {
                return Err(read_err(KafkaError::Canceled));
            }
            match checkpoint {
                None if landed.lines.len() > before => return Ok(landed),
                Some((cp, written_at))
                    if landed.lines[before..].iter().any(|l| covers(l, cp)) || oldest < written_at =>
                {
                    landed.reached_checkpoint = true;
                    return Ok(landed);
                }
                _ => {}
            }
            if high - start >= MAX_RECOVERY_SCAN {
                tracing::info!(
                    scanned = high - start,
                    found = landed.lines.len(),
                    "recovery scan stopped at its limit"
                );
                return Ok(landed);
            }
            end = start;
        }
        // The whole partition was read: every fact after the checkpoint is in.
        landed.reached_checkpoint = true;
        Ok(landed)
    }

    /// Waits for everything sent to be acknowledged (on shutdown).
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}

/// At most this many records are scanned back for this node's newest log fact.
pub const MAX_RECOVERY_SCAN: i64 = 100_000;

/// Parses an epoch written by [`FileId::epoch`].
pub fn parse_epoch(epoch: &str) -> Option<FileId> {
    let mut it = epoch.split(':');
    let file =
        FileId { dev: it.next()?.parse().ok()?, ino: it.next()?.parse().ok()?, generation: it.next()?.parse().ok()? };
    it.next().is_none().then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_round_trip_and_garbage_is_none() {
        let f = FileId { dev: 2049, ino: 131, generation: 2 };
        assert_eq!(parse_epoch(&f.epoch()), Some(f));
        for bad in ["", "1:2", "1:2:3:4", "a:b:c"] {
            assert_eq!(parse_epoch(bad), None);
        }
    }
}
