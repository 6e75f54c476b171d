//! A bounded source: every record of some topics whose broker time is in `[from, to)`.
//!
//! Offsets are resolved per partition with `offsets_for_times` ([`super::resolve`]), and the
//! partitions are read by manual assignment with a throwaway group id, never subscribed and never
//! committed: a live consumer group is never touched. Records come out merged across partitions
//! in (timestamp, topic, partition, offset) order, so a run over the same range sees the same
//! sequence.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmon_kafka::ClientSettings;
use rdkafka::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::resolve::resolve_all;

/// A time range, ms since the Unix epoch: `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First millisecond in the range.
    pub from_ms: i64,
    /// First millisecond after it.
    pub to_ms: i64,
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The broker could not answer.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Client settings could not be read.
    #[error("settings: {0}")]
    Settings(#[from] std::io::Error),
    /// A partition stopped delivering before its end offset.
    #[error("{topic}[{partition}]: no record for {waited:?} at offset {at}, before the range's end {end}")]
    Stalled {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset expected.
        at: i64,
        /// The range's end offset there.
        end: i64,
        /// How long it waited.
        waited: Duration,
    },
    /// The thread reading ahead ([`super::read_ahead`]) could not be started.
    #[error("starting the thread that reads the range: {0}")]
    Spawn(std::io::Error),
    /// The thread reading ahead ([`super::read_ahead`]) stopped without saying why.
    #[error("the thread reading the range stopped unexpectedly")]
    ReaderStopped,
}

/// One record read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Broker timestamp, ms.
    pub timestamp_ms: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub payload: Vec<u8>,
}

/// Where one partition's part of the range starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First offset in the range.
    pub start: i64,
    /// First offset after it.
    pub end: i64,
}

/// Records librdkafka fetches ahead per partition when not paced (`queued.min.messages`). Each
/// partition is read from a queue of its own (`split_partition_queue`), so a partition that runs
/// ahead of the time-ordered merge stops being fetched once this much is queued, without a
/// pause (a pause drops the prefetched records, and a resume fetches them again). In the replay
/// bench, logparse's read loop ran at 54–57 % of a plain consumer with 20 000 queued and
/// 86–91 % with 200 000 (BENCHMARKS.md). librdkafka's byte limit on a partition's queue
/// (`queued.max.messages.kbytes`, [`QUEUE_KB`]) bounds the memory.
const QUEUE: u64 = 200_000;
/// The most a partition's prefetch may hold, KiB (librdkafka's default, set so it is explicit):
/// with queues split per partition the limit applies to each.
const QUEUE_KB: u64 = 65_536;
/// The most a paced read asks for in one fetch, bytes, until a record proves larger
/// ([`WIDEN_AFTER`]). A broker may answer with far more than a partition's queue needs: tansu
/// counts the limit against what it has encoded, not what it read, so at 1 MB one fetch
/// brought tens of thousands of records (BENCHMARKS.md, "Sixth run").
pub const PACED_FETCH_BYTES: u64 = 256 << 10;
/// How long a paced read's partition may go without a record before its fetches are widened to
/// the topics' largest record. Kafka and Redpanda return a record larger than the limit anyway
/// (KIP-74), so there this never fires for a large record; tansu never returns one, so there a
/// partition holding one would wait for good.
const WIDEN_AFTER: Duration = Duration::from_secs(5);
/// How long a partition may go without a record before the read fails.
const STALL: Duration = Duration::from_secs(30);

/// A partition being read.
struct Part {
    span: Span,
    /// The next offset expected.
    next: i64,
    /// Records read but not yet taken (the head of the partition, for the merge; more only when
    /// some came through the consumer's own queue before the partition's was split).
    queued: VecDeque<Record>,
    /// The partition's own queue, while it is being read.
    queue: Option<PartitionQueue<DefaultConsumerContext>>,
}

impl Part {
    fn done(&self) -> bool {
        self.next >= self.span.end
    }

    /// Takes `msg` if it is the partition's next record in the range; true if it was.
    fn accept(&mut self, msg: &BorrowedMessage<'_>, lost: &mut u64) -> bool {
        if msg.offset() < self.next || msg.offset() >= self.span.end {
            return false; // before the range (a refetch) or after it
        }
        *lost += u64::try_from(msg.offset() - self.next).unwrap_or(0);
        self.next = msg.offset() + 1;
        self.queued.push_back(Record {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
        });
        true
    }
}

/// The records of `topics` in `range`, merged in time order.
pub struct BoundedSource {
    consumer: Arc<BaseConsumer>,
    parts: BTreeMap<(String, i32), Part>,
    /// Under a pace, the partitions not yet assigned, with their start offsets, and the one
    /// assigned last ([`BoundedSource::open`]).
    waiting: VecDeque<((String, i32), i64)>,
    started_last: Option<(String, i32)>,
    /// Under a pace, while fetches are smaller than the largest record the topics take: the
    /// config of a consumer whose fetches are not ([`BoundedSource::widen`]).
    wide: Option<ClientConfig>,
    /// Offsets skipped because the broker no longer had them when read.
    lost: u64,
}

impl BoundedSource {
    /// Resolves `range` on every partition of `topics` (name, partition count) and starts
    /// reading.
    ///
    /// Every partition is read from a queue of its own, and librdkafka fetches a partition only
    /// while its queue holds less than [`QUEUE`] records (with `max_rate`, records a second for
    /// every partition together: a second's worth, shared out, so a partition's queue outlasts
    /// the round trips of a paced fetch's small answers), so the broker is asked for no more
    /// than the merge takes, and a paced reader does not start by reading the whole range at the
    /// broker's full speed; a paced fetch asks for at most [`PACED_FETCH_BYTES`].
    /// `largest_record` is the largest record the topics take (their `max.message.bytes`),
    /// bytes: what a paced read's fetches widen to if a partition stalls ([`WIDEN_AFTER`]).
    pub fn open(
        settings: &ClientSettings,
        topics: &[(String, i32)],
        range: Range,
        max_rate: Option<NonZeroU64>,
        largest_record: u64,
    ) -> Result<Self, SourceError> {
        let mut config = settings.client_config()?;
        config
            .set("group.id", format!("bmon-bounded-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("queued.max.messages.kbytes", QUEUE_KB.to_string());
        let partitions: i32 = topics.iter().map(|(_, n)| *n).sum();
        let prefetch = match max_rate {
            Some(rate) => (rate.get() / u64::try_from(partitions.max(1)).unwrap_or(1)).clamp(10, QUEUE),
            None => QUEUE,
        };
        config.set("queued.min.messages", prefetch.to_string());
        let mut wide = None;
        if max_rate.is_some() {
            // Fuller fetches, though a partition before its range's end always has records, so
            // the wait only bounds an empty answer.
            config.set("fetch.wait.max.ms", "100").set("fetch.min.bytes", "65536");
            // And small ones: a broker may answer a fetch with up to `fetch.max.bytes` of one
            // partition whatever its queue's needs (tansu does, capped at 5 MB), which at the
            // start is most of a short partition at full speed. The limit goes up to the
            // largest record the topics take only if a partition stalls ([`WIDEN_AFTER`]).
            let limit = |config: &mut ClientConfig, bytes: u64| {
                let bytes = bytes.to_string();
                config.set("fetch.max.bytes", &bytes).set("message.max.bytes", &bytes);
            };
            if largest_record > PACED_FETCH_BYTES {
                let mut config = config.clone();
                limit(&mut config, largest_record);
                wide = Some(config);
            }
            limit(&mut config, PACED_FETCH_BYTES);
        }
        let consumer: Arc<BaseConsumer> = Arc::new(config.create()?);
        let all: Vec<(String, i32)> =
            topics.iter().flat_map(|(topic, count)| (0..*count).map(|p| (topic.clone(), p))).collect();
        let mut parts = BTreeMap::new();
        let mut waiting = VecDeque::new();
        for ((topic, p), span) in resolve_all(&consumer, &all, range)? {
            if span.end > span.start {
                waiting.push_back(((topic.clone(), p), span.start));
            }
            parts.insert((topic, p), Part { span, next: span.start, queued: VecDeque::new(), queue: None });
        }
        let mut source = BoundedSource { consumer, parts, waiting, started_last: None, wide, lost: 0 };
        if max_rate.is_some() {
            source.start_next()?;
        } else {
            let mut tpl = TopicPartitionList::new();
            for ((topic, p), start) in std::mem::take(&mut source.waiting) {
                tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
            }
            source.consumer.assign(&tpl)?;
            // After the assignment: assigning deactivates the queues split before it.
            for ((topic, p), part) in &mut source.parts {
                if !part.done() {
                    part.queue = source.consumer.split_partition_queue(topic, *p);
                }
            }
        }
        Ok(source)
    }

    /// Assigns the next partition waiting, if any, and splits its queue. A queue librdkafka
    /// does not split, or deactivates, leaves the records on the consumer's own queue, which
    /// [`BoundedSource::read`] serves too.
    fn start_next(&mut self) -> Result<(), SourceError> {
        let Some(((topic, p), start)) = self.waiting.pop_front() else { return Ok(()) };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
        self.consumer.incremental_assign(&tpl)?;
        if let Some(part) = self.parts.get_mut(&(topic.clone(), p)) {
            part.queue = self.consumer.split_partition_queue(&topic, p);
        }
        self.started_last = Some((topic, p));
        Ok(())
    }

    /// Replaces the consumer with one whose fetches take the topics' largest record, reading on
    /// from each started partition's next offset: a partition stalled under a paced fetch's
    /// limit may hold a record larger than it. Records already taken stay; none is read twice.
    fn widen(&mut self) -> Result<(), SourceError> {
        let Some(config) = self.wide.take() else { return Ok(()) };
        tracing::info!(
            "bounded read: a partition stalled under the paced fetch limit; fetching up to the largest record"
        );
        let mut tpl = TopicPartitionList::new();
        for ((topic, p), part) in &mut self.parts {
            part.queue = None; // the old consumer's
            let waiting = self.waiting.iter().any(|((t, q), _)| t == topic && q == p);
            if !part.done() && !waiting {
                tpl.add_partition_offset(topic, *p, Offset::Offset(part.next))?;
            }
        }
        self.consumer = Arc::new(config.create()?);
        self.consumer.assign(&tpl)?;
        for ((topic, p), part) in &mut self.parts {
            if tpl.find_partition(topic, *p).is_some() {
                part.queue = self.consumer.split_partition_queue(topic, *p);
            }
        }
        Ok(())
    }

    /// Records of the spans the broker no longer had when they were read (retention deleted
    /// them meanwhile; reading went on from the partition's new start).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Each partition's span of the range.
    pub fn spans(&self) -> impl Iterator<Item = (&str, i32, Span)> {
        self.parts.iter().map(|((t, p), part)| (t.as_str(), *p, part.span))
    }

    /// The next record in (timestamp, topic, partition, offset) order; `None` when every
    /// partition reached its end.
    pub fn next_record(&mut self) -> Result<Option<Record>, SourceError> {
        let mut waited_since = Instant::now();
        loop {
            // A partition that is not done and has nothing queued must be read first: its next
            // record may be the oldest.
            let waiting = |k: &(String, i32)| self.waiting.iter().any(|(w, _)| w == k);
            let hungry = self
                .parts
                .iter()
                .filter(|(_, p)| !p.done() && p.queued.is_empty())
                .min_by_key(|(k, _)| waiting(k))
                .map(|(k, _)| k.clone())
                // Not assigned yet: read the partition started last, whose record starts it.
                .map(|k| if waiting(&k) { self.started_last.clone().unwrap_or(k) } else { k });
            let Some(key) = hungry else {
                let oldest = self
                    .parts
                    .iter()
                    .filter_map(|(k, p)| p.queued.front().map(|r| (r.timestamp_ms, k)))
                    .min()
                    .map(|(_, k)| k.clone());
                let Some(key) = oldest else { return Ok(None) };
                return Ok(self.parts.get_mut(&key).and_then(|p| p.queued.pop_front()));
            };
            if self.read(&key)? {
                waited_since = Instant::now();
            } else if self.wide.is_some() && waited_since.elapsed() > WIDEN_AFTER {
                self.widen()?;
                waited_since = Instant::now();
            } else if waited_since.elapsed() > STALL {
                let part = &self.parts[&key];
                return Err(SourceError::Stalled {
                    topic: key.0,
                    partition: key.1,
                    at: part.next,
                    end: part.span.end,
                    waited: STALL,
                });
            }
        }
    }

    /// Reads the next record of the partition `key` into its queue, waiting up to 100 ms; true
    /// if one came. Serves the consumer's own queue first: its events, and any records fetched
    /// before the partitions' queues were split (all older than those in the split queues).
    fn read(&mut self, key: &(String, i32)) -> Result<bool, SourceError> {
        let mut came = false;
        while let Some(took) = self.poll_own(key, Duration::ZERO)? {
            came |= took;
        }
        let Some(part) = self.parts.get_mut(key) else { return Ok(came) };
        if !came {
            match part.queue.take() {
                Some(queue) => {
                    if let Some(msg) = queue.poll(Duration::from_millis(100)) {
                        came = part.accept(&msg?, &mut self.lost);
                    }
                    part.queue = Some(queue);
                }
                // Not split (librdkafka did not know the partition): its records come through
                // the consumer's own queue.
                None => came = self.poll_own(key, Duration::from_millis(100))?.unwrap_or(false),
            }
        }
        // Under a pace the next partition starts once the one started last has a record.
        if self
            .started_last
            .as_ref()
            .is_some_and(|k| self.parts.get(k).is_some_and(|p| !p.queued.is_empty() || p.done()))
        {
            self.started_last = None;
            self.start_next()?;
        }
        if let Some(part) = self.parts.get_mut(key).filter(|p| p.done() && p.queue.is_some()) {
            // Nothing more is wanted from it: stop fetching past the range's end.
            part.queue = None;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&key.0, key.1);
            self.consumer.pause(&tpl)?;
        }
        Ok(came)
    }

    /// Polls the consumer's own queue up to `wait` and gives a record to its partition:
    /// `Some(true)` if it was the next record of `key`, `None` if nothing came.
    fn poll_own(&mut self, key: &(String, i32), wait: Duration) -> Result<Option<bool>, SourceError> {
        let consumer = Arc::clone(&self.consumer);
        let Some(msg) = consumer.poll(wait) else { return Ok(None) };
        let msg = msg?;
        let hit = (msg.topic(), msg.partition()) == (key.0.as_str(), key.1);
        let part = self.parts.get_mut(&(msg.topic().to_owned(), msg.partition()));
        Ok(Some(part.is_some_and(|part| part.accept(&msg, &mut self.lost)) && hit))
    }
}
