//! The runtime every processor shares: consume, process, publish, then store offsets.

pub mod bounded;
mod consumer;
mod health;
pub mod inprocess;
pub mod keys;
mod output;
pub mod pace;
mod partitions;
pub mod read_ahead;
pub mod resolve;
pub mod sink;
pub mod snapshot;
pub mod telemetry;

use std::time::Duration;

pub use consumer::run;
pub use health::Health;
pub use keys::{KeyFields, KeyKind, OutputTopic};
pub use output::Outputs;
pub use sink::{Ack, KafkaSink, MemorySink, Sink, SinkError};
pub use snapshot::{PartitionStates, Rows, SnapshotError, SnapshotStore};

/// One input record, as a processor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub payload: &'a [u8],
    /// Broker timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// True while state is being rebuilt from records whose outputs were already published:
    /// update state, and any outputs are discarded.
    pub replay: bool,
    /// The record's [`REPLAY_ID_HEADER`]: it was published by `bmon replay --out-topic`.
    pub replay_id: Option<&'a str>,
}

/// The header `bmon replay --out-topic` gives each record it publishes: the replay's id.
pub const REPLAY_ID_HEADER: &str = "bmon-replay-id";

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Destination topic.
    pub topic: String,
    /// Record key (it picks the partition, as Kafka's default partitioner does).
    pub key: Vec<u8>,
    /// Encoded value.
    pub payload: Vec<u8>,
}

/// Why a record could not be processed. Every variant is a dead letter: the record is published
/// to the dead-letter topic with the reason, its offset is stored, and processing goes on.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a record of the expected schema.
    #[error("undecodable record: {0}")]
    Undecodable(String),
    /// Decoded, but its content cannot be processed.
    #[error("invalid record: {0}")]
    Invalid(String),
}

/// A stateful stream operator. Implementations are pure: no rdkafka and no I/O beyond their own
/// state store.
pub trait Processor: Send {
    /// Processes one record, appending what to publish.
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError>;

    /// Called about once a second with the wall clock (µs since the epoch). `idle` lists the
    /// partitions the wall clock may move on: live (not replaying), caught up with the end of
    /// the partition, and without a record since the last tick. Partitions that are replaying or
    /// catching up are never in it, so their windows close in event time only.
    fn tick(&mut self, _now_us: i64, _idle: &[(&str, i32)], _out: &mut Vec<Output>) {}

    /// A partition was assigned to this instance (its state is about to be rebuilt by replay).
    fn assigned(&mut self, _topic: &str, _partition: i32) {}

    /// A partition was taken away: drop its state, local store included.
    fn revoked(&mut self, _topic: &str, _partition: i32) {}

    /// The consumer loop restarts after a failure: drop the partition's in-memory state, which
    /// may have advanced past outputs that were never acknowledged. A local store written by
    /// [`Processor::checkpoint`] (only ever after acknowledgement) may stay. The partition is
    /// then restored or replayed as on a new assignment. Defaults to [`Processor::revoked`].
    fn reset(&mut self, topic: &str, partition: i32) {
        self.revoked(topic, partition);
    }

    /// How far back to replay an assigned partition to rebuild state; `None` for no replay.
    fn replay_window(&self) -> Option<Duration> {
        None
    }

    /// Loads a partition's state from a local store, if it has one; returns the offset that
    /// state has consumed up to (exclusive). `first` is the offset the group will deliver first:
    /// a local state behind it is stale and must not be used.
    fn restore(&mut self, _topic: &str, _partition: i32, _first: i64) -> Option<i64> {
        None
    }

    /// Sinks other than Kafka that this processor's outputs go to (the Loki sink, say), built
    /// afresh for each consumer session; each output goes to the first sink that accepts its
    /// topic, and Kafka takes the rest (dead letters among them).
    fn sinks(&mut self, _runtime: &RuntimeConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(Vec::new())
    }

    /// Whether [`Processor::checkpoint`] does anything. The tick waits for every output in
    /// flight before it checkpoints; a processor without state to save (the Loki sink, whose
    /// acknowledgements wait for Loki) says false, and the loop never waits on its sinks.
    fn checkpoints(&self) -> bool {
        true
    }

    /// Saves state: every output of every input up to each position (the next offset to consume,
    /// per topic and partition) has been acknowledged. Called about once a second while records
    /// flow.
    fn checkpoint(&mut self, _positions: &[(String, i32, i64)]) {}
}

/// A boxed processor (as the registry builds them) is a processor.
impl<P: Processor + ?Sized> Processor for Box<P> {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        (**self).process(input, out)
    }
    fn tick(&mut self, now_us: i64, idle: &[(&str, i32)], out: &mut Vec<Output>) {
        (**self).tick(now_us, idle, out)
    }
    fn assigned(&mut self, topic: &str, partition: i32) {
        (**self).assigned(topic, partition)
    }
    fn revoked(&mut self, topic: &str, partition: i32) {
        (**self).revoked(topic, partition)
    }
    fn reset(&mut self, topic: &str, partition: i32) {
        (**self).reset(topic, partition)
    }
    fn replay_window(&self) -> Option<Duration> {
        (**self).replay_window()
    }
    fn restore(&mut self, topic: &str, partition: i32, first: i64) -> Option<i64> {
        (**self).restore(topic, partition, first)
    }
    fn sinks(&mut self, runtime: &RuntimeConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        (**self).sinks(runtime)
    }
    fn checkpoints(&self) -> bool {
        (**self).checkpoints()
    }
    fn checkpoint(&mut self, positions: &[(String, i32, i64)]) {
        (**self).checkpoint(positions)
    }
}

/// Runtime settings shared by every processor.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Brokers and client settings.
    pub kafka: bmon_kafka::ClientSettings,
    /// Consumer group.
    pub group: String,
    /// Input topics.
    pub inputs: Vec<String>,
    /// Dead-letter topic.
    pub dead_letter: String,
    /// Consumer session timeout.
    pub session_timeout: Duration,
    /// Most input records whose outputs may await acknowledgement at once.
    pub max_in_flight: usize,
    /// Processor name for logs and metric labels.
    pub name: &'static str,
    /// How long, after shutdown is asked for, outputs may still be awaited before the rest is
    /// left to be consumed again by the next start.
    pub shutdown_grace: Duration,
}
