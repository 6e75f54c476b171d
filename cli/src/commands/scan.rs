//! Reading one topic's records in a time range, every partition in parallel: the range is
//! resolved for every partition by `runtime::resolve` (`offsets_for_times`, with tansu's
//! past-the-end answer checked), so records outside it are never fetched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use bmon_processors::runtime::bounded::Range;
use bmon_processors::runtime::resolve;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long a broker round trip may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The offsets `[from, to)` of one partition that hold records stamped in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The partition.
    pub partition: i32,
    /// First offset to read.
    pub from: i64,
    /// Offset to stop before.
    pub to: i64,
}

/// The settings of a consumer outside any group (nothing is committed), tuned for reading a
/// backlog; partition ends are reported.
pub fn config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "bmon-grep")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.min.messages", "200000")
        .set("enable.partition.eof", "true");
    config
}

/// A consumer of [`config`].
pub fn consumer(brokers: &str) -> anyhow::Result<BaseConsumer> {
    config(brokers).create().context("creating a consumer")
}

/// The span of one partition of `topic` stamped in `[since_ms, until_ms]` (empty: `None`).
pub fn span(
    c: &BaseConsumer,
    topic: &str,
    partition: i32,
    since_ms: i64,
    until_ms: i64,
) -> anyhow::Result<Option<Span>> {
    let range = Range { from_ms: since_ms, to_ms: until_ms.saturating_add(1) };
    let span = resolve::resolve(c, topic, partition, range)?;
    Ok((span.start < span.end).then_some(Span { partition, from: span.start, to: span.end }))
}

/// The spans of every partition of `topic` stamped in `[since_ms, until_ms]`.
pub fn spans(brokers: &str, topic: &str, since_ms: i64, until_ms: i64) -> anyhow::Result<Vec<Span>> {
    let c = consumer(brokers)?;
    let meta = c.fetch_metadata(Some(topic), TIMEOUT).context("fetching metadata")?;
    let t = meta.topics().first().ok_or_else(|| anyhow!("no topic {topic}"))?;
    if t.partitions().is_empty() {
        return Err(anyhow!("topic {topic} does not exist (run `bmon topology apply`)"));
    }
    let partitions: Vec<(String, i32)> = t.partitions().iter().map(|p| (topic.to_owned(), p.id())).collect();
    let range = Range { from_ms: since_ms, to_ms: until_ms.saturating_add(1) };
    Ok(resolve::resolve_all(&c, &partitions, range)?
        .into_iter()
        .filter(|(_, s)| s.start < s.end)
        .map(|((_, partition), s)| Span { partition, from: s.start, to: s.end })
        .collect())
}

/// Reads every span on a thread of its own, calling `each(partition, offset, key, payload)`
/// for every record; returns what each thread's `each` gathered. `read` counts records.
pub fn read<T: Send + 'static>(
    brokers: &str,
    topic: &str,
    spans: &[Span],
    read: &Arc<AtomicU64>,
    each: impl Fn(i32, i64, Option<&[u8]>, &[u8], &mut Vec<T>) + Send + Sync + 'static,
) -> anyhow::Result<Vec<T>> {
    let each = Arc::new(each);
    let handles: Vec<_> = spans
        .iter()
        .map(|&span| {
            let (brokers, topic, each, read) =
                (brokers.to_owned(), topic.to_owned(), Arc::clone(&each), Arc::clone(read));
            std::thread::spawn(move || -> anyhow::Result<Vec<T>> {
                let c = consumer(&brokers)?;
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, span.partition, Offset::Offset(span.from))?;
                c.assign(&tpl)?;
                let mut out = Vec::new();
                let mut next = span.from;
                let mut idle = std::time::Instant::now();
                while next < span.to {
                    match c.poll(Duration::from_millis(200)) {
                        Some(Ok(m)) => {
                            idle = std::time::Instant::now();
                            if m.offset() < next {
                                continue;
                            }
                            next = m.offset() + 1;
                            if m.offset() >= span.to {
                                break;
                            }
                            read.fetch_add(1, Ordering::Relaxed);
                            each(span.partition, m.offset(), m.key(), m.payload().unwrap_or_default(), &mut out);
                        }
                        // The end came before `to` (records deleted under the reader): done.
                        Some(Err(KafkaError::PartitionEOF(_))) => break,
                        Some(Err(e)) => return Err(anyhow!("reading {topic}/{}: {e}", span.partition)),
                        None if idle.elapsed() > TIMEOUT => {
                            return Err(anyhow!(
                                "{topic}/{}: no record for {TIMEOUT:?} at offset {next}",
                                span.partition
                            ));
                        }
                        None => {}
                    }
                }
                Ok(out)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| anyhow!("a reader thread panicked"))??);
    }
    Ok(all)
}
