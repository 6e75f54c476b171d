//! Where a time range lies in each partition of some topics: offsets resolved with
//! `offsets_for_times`, for every partition in one request per bound, not one per partition.
//!
//! tansu answers `offsets_for_times` with a partition's first offset for a time past its end,
//! where Kafka and Redpanda answer "none". On such a broker an answer of the first offset is
//! checked against the first record's timestamp, read for every partition that needs one in one
//! assignment ([`first_timestamps`]). That read is dear on tansu, whose fetch reads the whole
//! rest of the partition whatever its size limit, so it is made only where the answer could be
//! either.
//!
//! [`offset_for`] is the decision, pure; the rest asks the broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::bounded::{Range, SourceError, Span};

/// How long each request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A topic's partition.
pub type Partition = (String, i32);

/// The first offset of a partition holding `[low, high)` whose record is stamped at or after
/// `t_ms`, from the broker's answer (`None`: it found none) and, when the answer is `low`, the
/// first record's time (which tells Kafka's true answer from tansu's answer past the end).
pub fn offset_for(low: i64, high: i64, answer: Option<i64>, t_ms: i64, first_ms: Option<i64>) -> i64 {
    match answer {
        Some(o) if o > low => o.min(high),
        Some(o) if o == low => match first_ms {
            Some(first) if first < t_ms => high,
            _ => low,
        },
        _ => high,
    }
}

/// A `to_ms` that reads each partition to its end as it is when resolved, without asking the
/// broker for a time (a range that ends now or later).
pub const OPEN_END: i64 = i64::MAX;

/// A time later than any record's (9999-12-31): Kafka and Redpanda find no offset for it, and a
/// broker that answers one (tansu) gives past-the-end answers that must be checked.
const FAR_FUTURE_MS: i64 = 253_402_300_799_000;

/// The span of `range` on each of `partitions`, looked up with `consumer` (any consumer outside
/// a group; it is left unassigned).
///
/// Requests: the watermarks per partition, then one `offsets_for_times` per bound for every
/// partition at once (none for a start at or before the epoch, which is each partition's
/// first offset, nor for an [`OPEN_END`]). Where an answer is a partition's first offset, one
/// more request at [`FAR_FUTURE_MS`] tells whether the broker answers "none" past the end; only
/// where it does not are the first records read ([`first_timestamps`]), all in one assignment.
pub fn resolve_all(
    consumer: &BaseConsumer,
    partitions: &[Partition],
    range: Range,
) -> Result<BTreeMap<Partition, Span>, SourceError> {
    let mut marks = BTreeMap::new();
    for (topic, p) in partitions {
        marks.insert((topic.clone(), *p), consumer.fetch_watermarks(topic, *p, TIMEOUT)?);
    }
    let filled: Vec<&Partition> = marks.iter().filter(|(_, (low, high))| low < high).map(|(k, _)| k).collect();
    let (from, from_asked) = if range.from_ms <= 0 {
        (filled.iter().map(|k| ((*k).clone(), Some(marks[*k].0))).collect(), false)
    } else {
        (offsets_at(consumer, &filled, range.from_ms)?, true)
    };
    let (to, to_asked) = if range.to_ms == OPEN_END {
        (filled.iter().map(|k| ((*k).clone(), None)).collect(), false)
    } else {
        (offsets_at(consumer, &filled, range.to_ms)?, true)
    };
    // An answer of the first offset is either true or a past-the-end answer; tell them apart.
    let at_low = |answers: &BTreeMap<Partition, Option<i64>>, k: &Partition| answers.get(k) == Some(&Some(marks[k].0));
    let unsure: Vec<&Partition> =
        filled.iter().copied().filter(|k| (from_asked && at_low(&from, k)) || (to_asked && at_low(&to, k))).collect();
    let past_end = offsets_at(consumer, &unsure, FAR_FUTURE_MS)?;
    let check: Vec<(Partition, i64)> = unsure
        .iter()
        .filter(|k| past_end.get(**k).is_some_and(Option::is_some))
        .map(|k| ((*k).clone(), marks[*k].0))
        .collect();
    let firsts = first_timestamps(consumer, &check)?;
    let mut spans = BTreeMap::new();
    for (k, (low, high)) in marks {
        let span = if low >= high {
            Span { start: high, end: high } // empty (tansu would still answer its first offset)
        } else {
            let first = firsts.get(&k).copied();
            let start = offset_for(low, high, from.get(&k).copied().flatten(), range.from_ms, first).clamp(low, high);
            let end = offset_for(low, high, to.get(&k).copied().flatten(), range.to_ms, first).clamp(start, high);
            Span { start, end }
        };
        spans.insert(k, span);
    }
    Ok(spans)
}

/// The span of `range` on one partition ([`resolve_all`] of one).
pub fn resolve(consumer: &BaseConsumer, topic: &str, partition: i32, range: Range) -> Result<Span, SourceError> {
    let key = (topic.to_owned(), partition);
    let spans = resolve_all(consumer, std::slice::from_ref(&key), range)?;
    Ok(spans.get(&key).copied().unwrap_or(Span { start: 0, end: 0 }))
}

/// The broker's answer for `t_ms` on each of `partitions`, in one request (`None`: none found).
fn offsets_at(
    consumer: &BaseConsumer,
    partitions: &[&Partition],
    t_ms: i64,
) -> Result<BTreeMap<Partition, Option<i64>>, SourceError> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(t_ms))?;
    }
    let found = consumer.offsets_for_times(tpl, TIMEOUT)?;
    Ok(partitions
        .iter()
        .map(|(topic, p)| {
            let answer = match found.find_partition(topic, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            ((topic.clone(), *p), answer)
        })
        .collect())
}

/// The timestamp of the record at each partition's given offset (its first), read with
/// `consumer` in one assignment: tansu's answer of the first offset for a time past the end is
/// told apart from a true answer so, and a replay finds where retention left a partition's start.
pub fn first_timestamps(
    consumer: &BaseConsumer,
    at: &[(Partition, i64)],
) -> Result<BTreeMap<Partition, i64>, SourceError> {
    let mut found = BTreeMap::new();
    if at.is_empty() {
        return Ok(found);
    }
    let wanted: BTreeMap<&Partition, i64> = at.iter().map(|(k, o)| (k, *o)).collect();
    let mut tpl = TopicPartitionList::new();
    for ((topic, p), offset) in at {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*offset))?;
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + TIMEOUT;
    while found.len() < wanted.len() && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else { continue };
        let msg = msg?;
        let key = (msg.topic().to_owned(), msg.partition());
        // A later offset when retention deleted the one asked for meanwhile (with
        // `auto.offset.reset` at earliest, reading goes on from the new first record).
        if wanted.get(&key).is_some_and(|o| msg.offset() >= *o) && !found.contains_key(&key) {
            found.insert(key, msg.timestamp().to_millis().unwrap_or(0));
        }
    }
    consumer.unassign()?;
    match at.iter().find(|(k, _)| !found.contains_key(k)) {
        None => Ok(found),
        Some(((topic, partition), offset)) => Err(SourceError::Stalled {
            topic: topic.clone(),
            partition: *partition,
            at: *offset,
            end: offset + 1,
            waited: TIMEOUT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::offset_for;

    #[test]
    fn a_later_answer_is_taken_as_it_is() {
        assert_eq!(offset_for(0, 10, Some(4), 1_000, None), 4);
        assert_eq!(offset_for(3, 10, Some(12), 1_000, None), 10, "never past the end");
    }

    #[test]
    fn no_answer_means_the_end() {
        assert_eq!(offset_for(2, 10, None, 1_000, Some(0)), 10);
    }

    #[test]
    fn an_answer_of_the_first_offset_is_checked_against_its_time() {
        assert_eq!(offset_for(2, 10, Some(2), 1_000, Some(1_000)), 2, "the first record is in the range");
        assert_eq!(offset_for(2, 10, Some(2), 1_000, Some(5_000)), 2, "the first record is after the time");
        assert_eq!(offset_for(2, 10, Some(2), 1_000, Some(999)), 10, "tansu's answer past the end");
    }
}
