//! Whether the broker still holds a replay's range: a partition whose first records were deleted
//! (its low watermark is past 0) holds nothing before its first record's time, and a range that
//! starts earlier would come out partial. Such a range fails, naming the earliest time every
//! input still holds; a warm-up that reaches before it is cut to it and reported.

use std::time::Duration;

use bmon_topology::Topology;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::runtime::bounded::SourceError;
use crate::runtime::resolve::first_timestamps;

/// Where one partition's retained records begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStart {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Low watermark: the first retained offset.
    pub low: i64,
    /// High watermark.
    pub high: i64,
    /// The first retained record's timestamp, ms (when one is retained and records were deleted).
    pub first_ms: Option<i64>,
    /// The topic's retention, ms (from topology.yaml), if finite.
    pub retention_ms: Option<i64>,
}

impl PartitionStart {
    /// The earliest time this partition answers for, ms: `None` if nothing was ever deleted.
    /// With every record deleted, it is the retention horizon (`now - retention`), or now when
    /// the retention is unknown.
    pub fn earliest_ms(&self, now_ms: i64) -> Option<i64> {
        if self.low <= 0 {
            return None;
        }
        match self.first_ms {
            Some(t) if self.low < self.high => Some(t),
            _ => Some(self.retention_ms.map_or(now_ms, |r| now_ms.saturating_sub(r))),
        }
    }
}

/// A range that starts before what the broker still holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the range starts at {from} but {topic}[{partition}] holds nothing before {earliest} (its first {low} records are deleted by retention); the earliest time every input still holds is {all}: start there or later",
    from = bmon_logparse::time::format_us(from_ms.saturating_mul(1000)),
    earliest = bmon_logparse::time::format_us(partition_earliest_ms.saturating_mul(1000)),
    all = bmon_logparse::time::format_us(earliest_ms.saturating_mul(1000))
)]
pub struct OutsideRetention {
    /// The range's start, ms.
    pub from_ms: i64,
    /// The first partition found short.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its low watermark.
    pub low: i64,
    /// Its earliest time, ms.
    pub partition_earliest_ms: i64,
    /// The earliest start every input holds, ms.
    pub earliest_ms: i64,
}

/// Checks a range starting at `from_ms` against `starts`; on success returns where the warm-up
/// can begin: `warm_from_ms`, or later where retention cut it (never after `from_ms`).
pub fn judge(starts: &[PartitionStart], from_ms: i64, warm_from_ms: i64, now_ms: i64) -> Result<i64, OutsideRetention> {
    let earliest: Vec<(&PartitionStart, i64)> =
        starts.iter().filter_map(|s| s.earliest_ms(now_ms).map(|e| (s, e))).collect();
    let all = earliest.iter().map(|(_, e)| *e).max();
    if let Some((short, e)) = earliest.iter().find(|(_, e)| *e > from_ms) {
        return Err(OutsideRetention {
            from_ms,
            topic: short.topic.clone(),
            partition: short.partition,
            low: short.low,
            partition_earliest_ms: *e,
            earliest_ms: all.unwrap_or(*e),
        });
    }
    Ok(all.map_or(warm_from_ms, |a| a.max(warm_from_ms)).min(from_ms))
}

/// Reads where each partition of `topics` (name, partition count) begins, with `consumer`.
pub fn starts(
    consumer: &BaseConsumer,
    topology: &Topology,
    topics: &[(String, i32)],
) -> Result<Vec<PartitionStart>, SourceError> {
    let timeout = Duration::from_secs(10);
    let mut out = Vec::new();
    for (topic, count) in topics {
        let retention_ms = topology.topic(topic).map(|t| t.retention.kafka_ms()).filter(|ms| *ms >= 0);
        for partition in 0..*count {
            let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
            out.push(PartitionStart { topic: topic.clone(), partition, low, high, first_ms: None, retention_ms });
        }
    }
    // The first records' times where retention deleted some, all read in one assignment.
    let deleted: Vec<((String, i32), i64)> =
        out.iter().filter(|s| s.low > 0 && s.low < s.high).map(|s| ((s.topic.clone(), s.partition), s.low)).collect();
    let firsts = first_timestamps(consumer, &deleted)?;
    for s in &mut out {
        s.first_ms = firsts.get(&(s.topic.clone(), s.partition)).copied();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(low: i64, high: i64, first_ms: Option<i64>) -> PartitionStart {
        PartitionStart { topic: "t".into(), partition: 2, low, high, first_ms, retention_ms: Some(1_000) }
    }

    #[test]
    fn nothing_deleted_means_any_range_is_whole() {
        let s = [start(0, 10, None), start(0, 0, None)];
        assert_eq!(judge(&s, 5_000, 1_000, 9_000), Ok(1_000), "the warm-up is kept");
    }

    #[test]
    fn a_range_before_the_first_retained_record_fails_with_the_earliest_time() {
        let s = [start(4, 10, Some(6_000)), start(1, 3, Some(7_000)), start(0, 5, None)];
        let e = judge(&s, 5_000, 1_000, 9_000).unwrap_err();
        assert_eq!((e.partition_earliest_ms, e.earliest_ms, e.low), (6_000, 7_000, 4));
        assert!(e.to_string().contains("1970-01-01T00:00:07.000000Z"), "{e}");
    }

    #[test]
    fn a_warm_up_that_reaches_before_retention_is_cut() {
        let s = [start(4, 10, Some(3_000))];
        assert_eq!(judge(&s, 5_000, 1_000, 9_000), Ok(3_000));
    }

    #[test]
    fn a_partition_whose_records_all_expired_answers_from_the_retention_horizon() {
        let s = [start(10, 10, None)];
        assert_eq!(judge(&s, 8_500, 0, 9_000), Ok(8_000));
        assert_eq!(judge(&s, 7_000, 0, 9_000).unwrap_err().earliest_ms, 8_000);
    }
}
