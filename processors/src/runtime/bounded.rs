//! A bounded source: every record of some topics whose broker time is in `[from, to)`.
//!
//! Offsets are resolved per partition with `offsets_for_times` ([`super::resolve`]), and the
//! partitions are read by manual assignment with a throwaway group id, never subscribed and never
//! committed: a live consumer group is never touched. Records come out merged across partitions
//! in (timestamp, topic, partition, offset) order, so a run over the same range sees the same
//! sequence.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use bmon_kafka::ClientSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
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

/// Records queued per partition before reading it pauses. Pausing is costly: librdkafka drops
/// the partition's prefetched records (up to its `queued.min.messages`, 100 000) and fetches and
/// decompresses them again on resume. The time-ordered merge drains one partition while others
/// run ahead, so a small queue pauses often. In the replay bench, logparse's read loop ran at
/// 54–57 % of a plain consumer at 20 000 and 86–91 % at 200 000 (BENCHMARKS.md). At about
/// 300 bytes a record that is up to 60 MB for a partition far ahead of the others; a queue per
/// partition in librdkafka (`split_partition_queue`) would hold them back without dropping.
const QUEUE: usize = 200_000;
/// How long a partition may go without a record before the read fails.
const STALL: Duration = Duration::from_secs(30);

/// The records of `topics` in `range`, merged in time order.
pub struct BoundedSource {
    consumer: BaseConsumer,
    /// Per partition: its span, the next offset expected, and records read but not yet taken.
    parts: BTreeMap<(String, i32), (Span, i64, VecDeque<Record>)>,
    paused: BTreeMap<(String, i32), bool>,
    /// Under a pace, the partitions not yet assigned, with their start offsets, and the one
    /// assigned last ([`BoundedSource::open`]).
    waiting: VecDeque<((String, i32), i64)>,
    started_last: Option<(String, i32)>,
    /// Offsets skipped because the broker no longer had them when read.
    lost: u64,
}

impl BoundedSource {
    /// Resolves `range` on every partition of `topics` (name, partition count) and starts
    /// reading.
    ///
    /// With `max_rate` (records a second, every partition together) librdkafka fetches little
    /// ahead (a tenth of a second's worth per partition), so that a paced reader does not start
    /// with a burst that reads the whole range at the broker's full speed; and the partitions
    /// are assigned one at a time, each once the one before has delivered a record, so that
    /// their first fetches go to the broker one by one (on tansu each costs a scan of the
    /// partition's rest, and a request for them all held up every other client for seconds).
    pub fn open(
        settings: &ClientSettings,
        topics: &[(String, i32)],
        range: Range,
        max_rate: Option<NonZeroU64>,
    ) -> Result<Self, SourceError> {
        let mut config = settings.client_config()?;
        config
            .set("group.id", format!("bmon-bounded-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10");
        let partitions: i32 = topics.iter().map(|(_, n)| *n).sum();
        // Under a pace librdkafka fetches again only below a tenth of a second's worth per
        // partition (a fetch is still up to `max.partition.fetch.bytes`; a byte limit on the
        // prefetch, tried, made a paced replay's first record 2-3x later on tansu). The
        // source's own queue stays at [`QUEUE`]: pausing a partition drops its prefetch, and on
        // tansu every refetch reads the rest of the partition again (its fetch query sums the
        // sizes of every record from the offset asked to the end, whatever the size limit).
        let prefetch = max_rate
            .map(|rate| (rate.get() / 10 / u64::try_from(partitions.max(1)).unwrap_or(1)).clamp(10, QUEUE as u64));
        if let Some(q) = prefetch {
            config
                .set("queued.min.messages", q.to_string())
                // Fewer, fuller fetches: a broker answers each one at a cost per partition.
                .set("fetch.wait.max.ms", "500")
                .set("fetch.min.bytes", "65536");
        }
        let consumer: BaseConsumer = config.create()?;
        let all: Vec<(String, i32)> =
            topics.iter().flat_map(|(topic, count)| (0..*count).map(|p| (topic.clone(), p))).collect();
        let mut parts = BTreeMap::new();
        let mut waiting = VecDeque::new();
        for ((topic, p), span) in resolve_all(&consumer, &all, range)? {
            if span.end > span.start {
                waiting.push_back(((topic.clone(), p), span.start));
            }
            parts.insert((topic, p), (span, span.start, VecDeque::new()));
        }
        let mut source =
            BoundedSource { consumer, parts, paused: BTreeMap::new(), waiting, started_last: None, lost: 0 };
        if max_rate.is_some() {
            source.start_next()?;
        } else {
            let mut tpl = TopicPartitionList::new();
            for ((topic, p), start) in std::mem::take(&mut source.waiting) {
                tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
            }
            source.consumer.assign(&tpl)?;
        }
        Ok(source)
    }

    /// Assigns the next partition waiting, if any.
    fn start_next(&mut self) -> Result<(), SourceError> {
        let Some(((topic, p), start)) = self.waiting.pop_front() else { return Ok(()) };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
        self.consumer.incremental_assign(&tpl)?;
        self.started_last = Some((topic, p));
        Ok(())
    }

    /// Records of the spans the broker no longer had when they were read (retention deleted
    /// them meanwhile; reading went on from the partition's new start).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Each partition's span of the range.
    pub fn spans(&self) -> impl Iterator<Item = (&str, i32, Span)> {
        self.parts.iter().map(|((t, p), (span, _, _))| (t.as_str(), *p, *span))
    }

    /// The next record in (timestamp, topic, partition, offset) order; `None` when every
    /// partition reached its end.
    pub fn next_record(&mut self) -> Result<Option<Record>, SourceError> {
        let mut waited_since = Instant::now();
        loop {
            // A partition that is not done and has nothing queued must be read first: its next
            // record may be the oldest.
            let hungry = self.parts.iter().find(|(_, (span, next, q))| *next < span.end && q.is_empty());
            match hungry {
                None => {
                    let oldest = self
                        .parts
                        .iter()
                        .filter_map(|(k, (_, _, q))| q.front().map(|r| (r.timestamp_ms, k)))
                        .min()
                        .map(|(_, k)| k.clone());
                    let Some(key) = oldest else { return Ok(None) };
                    let record = self.parts.get_mut(&key).and_then(|(_, _, q)| q.pop_front());
                    self.resume_if_short(&key)?;
                    return Ok(record);
                }
                Some(((topic, partition), (span, next, _))) => {
                    if waited_since.elapsed() > STALL {
                        return Err(SourceError::Stalled {
                            topic: topic.clone(),
                            partition: *partition,
                            at: *next,
                            end: span.end,
                            waited: STALL,
                        });
                    }
                }
            }
            if self.poll()? {
                waited_since = Instant::now();
            }
        }
    }

    /// Reads one record into its partition's queue; true if one came.
    fn poll(&mut self) -> Result<bool, SourceError> {
        let Some(msg) = self.consumer.poll(Duration::from_millis(100)) else { return Ok(false) };
        let msg = msg?;
        let key = (msg.topic().to_owned(), msg.partition());
        let Some((span, next, q)) = self.parts.get_mut(&key) else { return Ok(false) };
        if msg.offset() < *next || msg.offset() >= span.end {
            return Ok(false); // before the range (a refetch) or after it
        }
        self.lost += u64::try_from(msg.offset() - *next).unwrap_or(0);
        *next = msg.offset() + 1;
        q.push_back(Record {
            topic: key.0.clone(),
            partition: key.1,
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
        });
        let full = q.len() >= QUEUE || *next >= span.end;
        if self.started_last.as_ref() == Some(&key) {
            self.started_last = None;
            self.start_next()?;
        }
        if full && !self.paused.get(&key).copied().unwrap_or(false) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&key.0, key.1);
            self.consumer.pause(&tpl)?;
            self.paused.insert(key, true);
        }
        Ok(true)
    }

    fn resume_if_short(&mut self, key: &(String, i32)) -> Result<(), SourceError> {
        let Some((span, next, q)) = self.parts.get(key) else { return Ok(()) };
        if self.paused.get(key).copied().unwrap_or(false) && q.len() < QUEUE / 2 && *next < span.end {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&key.0, key.1);
            self.consumer.resume(&tpl)?;
            self.paused.insert(key.clone(), false);
        }
        Ok(())
    }
}
