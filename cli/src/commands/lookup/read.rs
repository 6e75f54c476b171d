//! One key's records in one partition, read with one consumer a window at a time: a wider
//! window fetches only the offsets the narrower ones did not.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::commands::scan;

/// How long a partition may go without a record before the read fails.
const STALL: Duration = Duration::from_secs(10);

/// One record of the key: broker time (µs) and value.
#[derive(Debug, Clone)]
pub struct Found {
    /// Broker timestamp, µs.
    pub at_us: i64,
    /// The record's value.
    pub payload: Vec<u8>,
}

/// The records of `key` in one partition of a topic.
pub struct KeyReader<'c> {
    consumer: &'c BaseConsumer,
    topic: String,
    partition: i32,
    key: Vec<u8>,
    /// The offsets read so far, `[from, to)`.
    done: Option<(i64, i64)>,
    /// Records read, of every key.
    pub read: u64,
    /// The key's records found, in offset order within each read.
    pub found: Vec<Found>,
}

impl<'c> KeyReader<'c> {
    /// A reader of `key` in `topic`'s partition `partition`, with `consumer` (outside any
    /// group, with partition ends not reported: one from an earlier assignment could end a
    /// later read early; it is assigned and unassigned here).
    pub fn new(consumer: &'c BaseConsumer, topic: &str, partition: i32, key: Vec<u8>) -> KeyReader<'c> {
        KeyReader { consumer, topic: topic.to_owned(), partition, key, done: None, read: 0, found: Vec::new() }
    }

    /// The partition read.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Reads the records stamped in `[since_us, until_us]` that no earlier call read.
    pub fn cover(&mut self, since_us: i64, until_us: i64) -> anyhow::Result<()> {
        let Some(span) = scan::span(self.consumer, &self.topic, self.partition, since_us / 1000, until_us / 1000)?
        else {
            return Ok(());
        };
        match self.done {
            None => self.read_offsets(span.from, span.to)?,
            Some((from, to)) => {
                if span.from < from {
                    self.read_offsets(span.from, from.min(span.to))?;
                }
                if span.to > to {
                    self.read_offsets(to.max(span.from), span.to)?;
                }
            }
        }
        self.done = Some(match self.done {
            None => (span.from, span.to),
            Some((from, to)) => (from.min(span.from), to.max(span.to)),
        });
        Ok(())
    }

    /// Reads offsets `[from, to)`.
    fn read_offsets(&mut self, from: i64, to: i64) -> anyhow::Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(from))?;
        self.consumer.assign(&tpl)?;
        let mut next = from;
        let mut idle = Instant::now();
        while next < to {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    idle = Instant::now();
                    if m.partition() != self.partition || m.topic() != self.topic || m.offset() < next {
                        continue; // an earlier assignment's record, or a refetch
                    }
                    if m.offset() >= to {
                        break;
                    }
                    next = m.offset() + 1;
                    self.read += 1;
                    if m.key() == Some(self.key.as_slice()) {
                        let at_us = m.timestamp().to_millis().unwrap_or(0).saturating_mul(1000);
                        self.found.push(Found { at_us, payload: m.payload().unwrap_or_default().to_vec() });
                    }
                }
                Some(Err(e)) => return Err(anyhow!("reading {}/{}: {e}", self.topic, self.partition)),
                None if idle.elapsed() > STALL => {
                    return Err(anyhow!("{}/{}: no record for {STALL:?} at offset {next}", self.topic, self.partition));
                }
                None => {}
            }
        }
        self.consumer.unassign()?;
        Ok(())
    }
}
