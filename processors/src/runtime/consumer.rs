//! The consumer loop: rebalance handling, replay on assignment, ordered offset storing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_schemas::{Codec, DeadLetter};
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use super::output::{OutputSink, SinkError};
use super::{Input, Output, Processor, RecordError, RuntimeConfig, telemetry};

/// A partition's assignment change, recorded by the rebalance callback for the loop to act on.
#[derive(Debug)]
enum Change {
    Assigned(String, i32),
    Revoked(String, i32),
}

/// Records rebalances; the loop applies them between records.
#[derive(Default)]
struct RebalanceLog {
    changes: Arc<Mutex<Vec<Change>>>,
}

impl ClientContext for RebalanceLog {}

impl ConsumerContext for RebalanceLog {
    fn post_rebalance(&self, _c: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (list, assigned) = match rebalance {
            Rebalance::Assign(l) => (*l, true),
            Rebalance::Revoke(l) => (*l, false),
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        if let Ok(mut changes) = self.changes.lock() {
            for e in list.elements() {
                let (t, p) = (e.topic().to_owned(), e.partition());
                changes.push(if assigned { Change::Assigned(t, p) } else { Change::Revoked(t, p) });
            }
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Per-partition replay bookkeeping: `None` until the first record after assignment arrives.
#[derive(Debug, Clone, Copy)]
enum Replay {
    Pending,
    Until(i64),
    Live,
}

/// Runs `processor` until `shutdown` turns true. Broker failures restart the loop from the last
/// stored offsets after a backoff; only bad settings are returned as errors.
pub async fn run<P: Processor>(
    config: &RuntimeConfig,
    processor: &mut P,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SinkError> {
    let mut backoff = Duration::from_millis(500);
    while !*shutdown.borrow() {
        match run_once(config, processor, &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(SinkError::Settings(e)) => return Err(SinkError::Settings(e)),
            Err(e) => {
                metrics::counter!(telemetry::RESTARTS, "processor" => config.name).increment(1);
                tracing::warn!(processor = config.name, error = %e, retry_in = ?backoff, "consumer loop failed; resuming from the stored offsets");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    Ok(())
}

async fn run_once<P: Processor>(
    config: &RuntimeConfig,
    processor: &mut P,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SinkError> {
    let log = RebalanceLog::default();
    let changes = Arc::clone(&log.changes);
    let consumer: StreamConsumer<RebalanceLog> = config
        .kafka
        .consumer_config(&config.group, config.session_timeout)?
        .create_with_context(log)
        .map_err(SinkError::Kafka)?;
    let topics: Vec<&str> = config.inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(SinkError::Kafka)?;
    let mut sink = OutputSink::new(&config.kafka)?;
    let mut replay: HashMap<(String, i32), Replay> = HashMap::new();
    let codec = Codec::default();
    let mut outputs: Vec<Output> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Next offset per partition since the last checkpoint.
    let mut positions: HashMap<(String, i32), i64> = HashMap::new();
    let result = loop {
        apply_changes(&changes, processor, &mut replay, config.name);
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break Ok(()); }
            }
            _ = tick.tick() => {
                outputs.clear();
                processor.tick(now_us(), &mut outputs);
                if !outputs.is_empty() {
                    sink.send(None, &outputs)?;
                }
                if !positions.is_empty() {
                    while sink.in_flight() > 0 {
                        store_completed(&consumer, &mut sink, config, true).await?;
                    }
                    let list: Vec<(String, i32, i64)> = positions.drain().map(|((t, p), o)| (t, p, o)).collect();
                    processor.checkpoint(&list);
                }
            }
            msg = consumer.recv() => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(processor = config.name, error = %e, "consume error");
                        continue;
                    }
                };
                // The rebalance callback runs inside `recv`, so an assignment may arrive together
                // with its partition's first record: apply it before looking at the record.
                apply_changes(&changes, processor, &mut replay, config.name);
                let key = (msg.topic().to_owned(), msg.partition());
                let state = replay.get(&key).copied().unwrap_or(Replay::Pending);
                if let Replay::Pending = state {
                    let until = msg.offset();
                    // First record since assignment: resume from local state, or rewind to the
                    // replay window's start.
                    if let Some(next) = processor.restore(msg.topic(), msg.partition(), until) {
                        replay.insert(key.clone(), Replay::Live);
                        if next != until {
                            consumer.seek(msg.topic(), msg.partition(), Offset::Offset(next), Duration::from_secs(10)).map_err(SinkError::Kafka)?;
                            tracing::info!(processor = config.name, topic = msg.topic(), partition = msg.partition(), next, "state restored from the local store");
                            continue;
                        }
                    } else {
                    match rewind_to(&consumer, processor, msg.topic(), msg.partition(), until) {
                        Some(from) => {
                            replay.insert(key, Replay::Until(until));
                            tracing::info!(processor = config.name, topic = msg.topic(), partition = msg.partition(), from, until, "replaying to rebuild state");
                            continue;
                        }
                        None => { replay.insert(key.clone(), Replay::Live); }
                    }
                    }
                }
                let replaying = matches!(replay.get(&key), Some(Replay::Until(u)) if msg.offset() < *u);
                if let Some(Replay::Until(u)) = replay.get(&key) && msg.offset() >= *u {
                    replay.insert(key.clone(), Replay::Live);
                }
                let input = Input {
                    topic: msg.topic(),
                    partition: msg.partition(),
                    offset: msg.offset(),
                    key: msg.key(),
                    payload: msg.payload().unwrap_or_default(),
                    timestamp_ms: msg.timestamp().to_millis(),
                    replay: replaying,
                };
                outputs.clear();
                let result = processor.process(&input, &mut outputs);
                if replaying {
                    metrics::counter!(telemetry::REPLAYED, "processor" => config.name).increment(1);
                    continue;
                }
                metrics::counter!(telemetry::RECORDS, "processor" => config.name, "topic" => msg.topic().to_owned()).increment(1);
                if let Some(ms) = input.timestamp_ms {
                    let age = (now_us() - ms * 1000).max(0) as f64 / 1e6;
                    metrics::histogram!(telemetry::RECORD_AGE, "processor" => config.name).record(age);
                }
                positions.insert(key.clone(), msg.offset() + 1);
                if let Err(e) = result {
                    outputs.clear();
                    outputs.push(dead_letter(&codec, config, &input, &e));
                }
                sink.send(Some((msg.topic().to_owned(), msg.partition(), msg.offset())), &outputs)?;
                store_completed(&consumer, &mut sink, config, false).await?;
                while sink.in_flight() > config.max_in_flight {
                    store_completed(&consumer, &mut sink, config, true).await?;
                }
            }
        }
    };
    let mut acked = true;
    while sink.in_flight() > 0 {
        if let Err(e) = store_completed(&consumer, &mut sink, config, true).await {
            tracing::warn!(processor = config.name, error = %e, "outputs unacknowledged at shutdown; those inputs are consumed again");
            sink.abandon();
            acked = false;
        }
    }
    if acked && !positions.is_empty() {
        let list: Vec<(String, i32, i64)> = positions.drain().map(|((t, p), o)| (t, p, o)).collect();
        processor.checkpoint(&list);
    }
    sink.flush(Duration::from_secs(10));
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    result
}

fn apply_changes<P: Processor>(
    changes: &Mutex<Vec<Change>>,
    processor: &mut P,
    replay: &mut HashMap<(String, i32), Replay>,
    name: &'static str,
) {
    let Ok(mut list) = changes.lock() else { return };
    for change in list.drain(..) {
        match change {
            Change::Assigned(t, p) => {
                processor.assigned(&t, p);
                replay.insert((t, p), Replay::Pending);
            }
            Change::Revoked(t, p) => {
                processor.revoked(&t, p);
                replay.remove(&(t, p));
            }
        }
        metrics::gauge!(telemetry::ASSIGNED, "processor" => name).set(replay.len() as f64);
    }
}

/// Seeks `topic`/`partition` back to the start of the processor's replay window if that is
/// before `until`; returns the offset replay starts from.
fn rewind_to<P: Processor>(
    consumer: &StreamConsumer<RebalanceLog>,
    processor: &P,
    topic: &str,
    partition: i32,
    until: i64,
) -> Option<i64> {
    let window = processor.replay_window()?;
    let since_ms = (now_us() / 1000) - window.as_millis() as i64;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(since_ms)).ok()?;
    let found = consumer.offsets_for_times(tpl, Duration::from_secs(10)).ok()?;
    let from = match found.find_partition(topic, partition)?.offset() {
        Offset::Offset(o) => o,
        // Nothing at or after the time: nothing to replay.
        _ => return None,
    };
    if from >= until {
        return None;
    }
    consumer.seek(topic, partition, Offset::Offset(from), Duration::from_secs(10)).ok()?;
    Some(from)
}

async fn store_completed(
    consumer: &StreamConsumer<RebalanceLog>,
    sink: &mut OutputSink,
    config: &RuntimeConfig,
    wait: bool,
) -> Result<(), SinkError> {
    while let Some(done) = sink.complete_front(wait).await? {
        if let Some((topic, partition, offset)) = done.source {
            // A revoked partition refuses the store; its new owner consumes the record again.
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(processor = config.name, %topic, partition, offset, error = %e, "offset not stored");
            }
        }
        if wait {
            break;
        }
    }
    Ok(())
}

fn dead_letter(codec: &Codec, config: &RuntimeConfig, input: &Input<'_>, error: &RecordError) -> Output {
    let class = match error {
        RecordError::Undecodable(_) => "decode",
        RecordError::Invalid(_) => "validation",
    };
    metrics::counter!(telemetry::DEAD_LETTERS, "processor" => config.name, "reason" => class).increment(1);
    tracing::warn!(processor = config.name, topic = input.topic, partition = input.partition, offset = input.offset, %error, "dead letter");
    let record = DeadLetter {
        topic: input.topic.to_owned(),
        partition: input.partition,
        offset: input.offset,
        key: input.key.map(<[u8]>::to_vec),
        payload: input.payload.to_vec(),
        headers: Default::default(),
        reason: error.to_string(),
        error_class: class.to_owned(),
        processor: config.name.to_owned(),
        failed_at_us: now_us(),
    };
    Output {
        topic: config.dead_letter.clone(),
        key: input.topic.as_bytes().to_vec(),
        payload: codec.encode(&record).unwrap_or_default(),
    }
}
