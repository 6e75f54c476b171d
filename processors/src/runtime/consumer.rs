//! The consumer loop: rebalance handling, restore or replay on assignment, ordered offset
//! storing, event-time ticks, and a bounded shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_schemas::{Codec, DeadLetter};
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;

use super::health::Health;
use super::output::{Outputs, SinkError};
use super::partitions::{Partitions, Phase};
use super::sink::KafkaSink;
use super::telemetry::label;
use super::{Input, Output, Processor, REPLAY_ID_HEADER, RecordError, RuntimeConfig, telemetry};

/// How long a live, caught-up partition must go without records before the wall clock may move
/// its state on.
const QUIET: Duration = Duration::from_secs(1);

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

impl ClientContext for RebalanceLog {
    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition comes as an error event too; the loop acts on it (below).
        if matches!(error, KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)) {
            return;
        }
        tracing::error!("librdkafka: {error}: {reason}");
    }
}

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
            // An empty assignment still means the group was joined.
            if assigned && list.count() == 0 {
                changes.push(Change::Assigned(String::new(), -1));
            }
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

/// Runs `processor` until `shutdown` turns true. Broker failures restart the loop from the last
/// stored offsets after a backoff, with the processor's in-memory state reset first (it may have
/// advanced past outputs that were never acknowledged); only bad settings are returned as errors.
pub async fn run<P: Processor>(
    config: &RuntimeConfig,
    processor: &mut P,
    health: &Health,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SinkError> {
    let mut backoff = Duration::from_millis(500);
    while !*shutdown.borrow() {
        let result = match Session::start(config, health, processor) {
            Ok(mut session) => {
                let result = session.run(processor, &mut shutdown).await;
                if result.is_ok() {
                    session.state.finish(&session.consumer, processor).await;
                    return Ok(());
                }
                for (t, p) in session.state.partitions.keys() {
                    processor.reset(&t, p);
                }
                session.state.sink.abandon();
                // Closing the consumer waits for the broker, which may be away.
                tokio::task::block_in_place(|| drop(session));
                result
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(SinkError::Settings(e)) => return Err(SinkError::Settings(e)),
            Err(e) => {
                health.assignment(false, 0);
                telemetry::RESTARTS.with_counter([label("processor", config.name)]).increment(1);
                tracing::warn!(processor = config.name, error = %e, retry_in = ?backoff, "consumer loop failed; state reset, resuming from the stored offsets");
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

type Member = StreamConsumer<RebalanceLog>;

/// One consumer session: a group member and the loop's state.
struct Session<'a> {
    consumer: Member,
    state: State<'a>,
}

/// The loop's state beside the consumer (records borrow the consumer while the state changes).
struct State<'a> {
    config: &'a RuntimeConfig,
    health: &'a Health,
    changes: Arc<Mutex<Vec<Change>>>,
    sink: Outputs,
    partitions: Partitions,
    codec: Codec,
    outputs: Vec<Output>,
    /// Next offset per partition since the last checkpoint.
    positions: std::collections::HashMap<(String, i32), i64>,
    joined: bool,
}

impl<'a> Session<'a> {
    fn start<P: Processor>(
        config: &'a RuntimeConfig,
        health: &'a Health,
        processor: &mut P,
    ) -> Result<Session<'a>, SinkError> {
        let log = RebalanceLog::default();
        let changes = Arc::clone(&log.changes);
        let mut client = config.kafka.consumer_config(&config.group, config.session_timeout)?;
        // The end of a partition tells the loop it has caught up (ticks) or has nothing to read
        // (restore without a first record).
        client.set("enable.partition.eof", "true");
        let consumer: StreamConsumer<RebalanceLog> = client.create_with_context(log).map_err(SinkError::Kafka)?;
        let topics: Vec<&str> = config.inputs.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(SinkError::Kafka)?;
        let mut sinks = processor.sinks(config)?;
        sinks.push(Box::new(KafkaSink::new(&config.kafka)?));
        let state = State {
            config,
            health,
            changes,
            sink: Outputs::new(sinks),
            partitions: Partitions::default(),
            codec: Codec::default(),
            outputs: Vec::new(),
            positions: Default::default(),
            joined: false,
        };
        Ok(Session { consumer, state })
    }

    async fn run<P: Processor>(
        &mut self,
        processor: &mut P,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), SinkError> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let (consumer, state) = (&self.consumer, &mut self.state);
        loop {
            state.apply_changes(processor);
            state.health.turned();
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { return Ok(()); }
                }
                _ = tick.tick() => state.tick(consumer, processor).await?,
                msg = consumer.recv() => {
                    match msg {
                        Ok(m) => state.record(consumer, processor, &m).await?,
                        Err(KafkaError::PartitionEOF(p)) => state.at_end(consumer, processor, p)?,
                        Err(e) => tracing::warn!(processor = state.config.name, error = %e, "consume error"),
                    }
                }
            }
        }
    }
}

impl State<'_> {
    async fn tick<P: Processor>(&mut self, consumer: &Member, processor: &mut P) -> Result<(), SinkError> {
        for (topic, partition) in self.partitions.end_unresolved() {
            self.start_at_end(consumer, processor, &topic, partition)?;
        }
        self.outputs.clear();
        let idle = self.partitions.idle(Instant::now(), QUIET);
        processor.tick(now_us(), &idle, &mut self.outputs);
        if !self.outputs.is_empty() {
            self.sink.send(None, &self.outputs)?;
        }
        if !processor.checkpoints() {
            self.positions.clear();
            self.store_completed(consumer, false).await?;
        } else if !self.positions.is_empty() {
            while self.sink.in_flight() > 0 {
                self.store_completed(consumer, true).await?;
            }
            let list: Vec<(String, i32, i64)> = self.positions.drain().map(|((t, p), o)| (t, p, o)).collect();
            processor.checkpoint(&list);
        }
        Ok(())
    }

    async fn record<P: Processor>(
        &mut self,
        consumer: &Member,
        processor: &mut P,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), SinkError> {
        // The rebalance callback runs inside `recv`, so an assignment may arrive together with
        // its partition's first record: apply it before looking at the record.
        self.apply_changes(processor);
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        if self.partitions.phase(topic, partition) == Some(Phase::Pending)
            && self.start(consumer, processor, topic, partition, offset)?
        {
            // Seeked elsewhere: this record comes again in its turn.
            return Ok(());
        }
        let replaying = self.partitions.record(topic, partition, offset, Instant::now());
        let input = Input {
            topic,
            partition,
            offset,
            key: msg.key(),
            payload: msg.payload().unwrap_or_default(),
            timestamp_ms: msg.timestamp().to_millis(),
            replay: replaying,
            replay_id: replay_id(msg),
        };
        self.outputs.clear();
        let result = processor.process(&input, &mut self.outputs);
        if replaying {
            telemetry::REPLAYED.with_counter([label("processor", self.config.name)]).increment(1);
            return Ok(());
        }
        telemetry::RECORDS
            .with_counter([label("processor", self.config.name), label("topic", topic.to_owned())])
            .increment(1);
        if let Some(ms) = input.timestamp_ms {
            let age = (now_us() - ms * 1000).max(0) as f64 / 1e6;
            telemetry::RECORD_AGE.with_histogram([label("processor", self.config.name)]).record(age);
        }
        self.positions.insert((topic.to_owned(), partition), offset + 1);
        if let Err(e) = result {
            self.outputs.clear();
            self.outputs.push(dead_letter(&self.codec, self.config, &input, &e));
        }
        self.sink.send(Some((topic.to_owned(), partition, offset)), &self.outputs)?;
        self.store_completed(consumer, false).await?;
        while self.sink.in_flight() > self.config.max_in_flight {
            self.store_completed(consumer, true).await?;
        }
        Ok(())
    }

    /// Partition number `p` of some input reached its end. (librdkafka names only the number:
    /// with several inputs, a partition of that number in another topic that has consumed is
    /// marked too, until its next record clears the mark; that only matters to ticks.)
    fn at_end<P: Processor>(&mut self, consumer: &Member, processor: &mut P, p: i32) -> Result<(), SinkError> {
        self.apply_changes(processor);
        let positions = consumer.position().ok();
        for (topic, partition) in self.partitions.with_number(p) {
            let position = positions
                .as_ref()
                .and_then(|l| l.find_partition(&topic, partition))
                .and_then(|e| if let Offset::Offset(o) = e.offset() { Some(o) } else { None });
            let consumed = position.is_some();
            match self.partitions.phase(&topic, partition) {
                // Replayed up to the end: there is no live record to end the replay, so the end does.
                Some(Phase::Replaying(until)) if position.is_some_and(|o| o >= until) => {
                    self.partitions.set_phase(&topic, partition, Phase::Live);
                    self.partitions.at_end(&topic, partition);
                }
                // Nothing consumed since the assignment: restore now if there is nothing to
                // consume, so an idle partition is restored (and ready) too.
                Some(Phase::Pending) => self.start_at_end(consumer, processor, &topic, partition)?,
                Some(_) if consumed || self.partitions.never_delivered(&topic, partition) => {
                    self.partitions.at_end(&topic, partition);
                }
                _ => {}
            }
        }
        self.report_health();
        Ok(())
    }

    /// Restores a pending partition that reached its end, if there is nothing to consume. When
    /// the look-up fails, it is retried on each tick (the end is reported only once).
    fn start_at_end<P: Processor>(
        &mut self,
        consumer: &Member,
        processor: &mut P,
        topic: &str,
        partition: i32,
    ) -> Result<(), SinkError> {
        match tokio::task::block_in_place(|| end_position(consumer, topic, partition)) {
            Ok(Some(first)) => {
                self.partitions.set_end_unresolved(topic, partition, false);
                self.partitions.at_end(topic, partition);
                self.start(consumer, processor, topic, partition, first)?;
            }
            Ok(None) => self.partitions.set_end_unresolved(topic, partition, false),
            Err(e) => {
                tracing::warn!(processor = self.config.name, topic, partition, error = %e, "cannot look up the partition's end; retrying");
                self.partitions.set_end_unresolved(topic, partition, true);
            }
        }
        Ok(())
    }

    /// Restores a pending partition whose first offset to consume is `first`: from the
    /// processor's local store, or by replaying its window. Returns true if it seeked.
    fn start<P: Processor>(
        &mut self,
        consumer: &Member,
        processor: &mut P,
        topic: &str,
        partition: i32,
        first: i64,
    ) -> Result<bool, SinkError> {
        let name = self.config.name;
        let restored = tokio::task::block_in_place(|| processor.restore(topic, partition, first));
        let (phase, seek_to) = match restored {
            Some(next) => (Phase::Live, (next != first).then_some(next)),
            None => match tokio::task::block_in_place(|| rewind_to(consumer, processor, topic, partition, first))? {
                Some(from) => {
                    tracing::info!(
                        processor = name,
                        topic,
                        partition,
                        from,
                        until = first,
                        "replaying to rebuild state"
                    );
                    (Phase::Replaying(first), None)
                }
                None => (Phase::Live, None),
            },
        };
        self.partitions.set_phase(topic, partition, phase);
        self.report_health();
        if let Some(next) = seek_to {
            tokio::task::block_in_place(|| {
                consumer.seek(topic, partition, Offset::Offset(next), Duration::from_secs(10))
            })
            .map_err(SinkError::Kafka)?;
            tracing::info!(processor = name, topic, partition, next, "state restored from the local store");
        }
        // `rewind_to` seeked when it started a replay.
        Ok(seek_to.is_some() || matches!(phase, Phase::Replaying(_)))
    }

    fn apply_changes<P: Processor>(&mut self, processor: &mut P) {
        let list: Vec<Change> = match self.changes.lock() {
            Ok(mut l) => l.drain(..).collect(),
            Err(_) => return,
        };
        if list.is_empty() {
            return;
        }
        for change in list {
            match change {
                Change::Assigned(t, p) if p < 0 && t.is_empty() => {}
                Change::Assigned(t, p) => {
                    processor.assigned(&t, p);
                    self.partitions.assign(&t, p);
                }
                Change::Revoked(t, p) => {
                    processor.revoked(&t, p);
                    self.partitions.revoke(&t, p);
                    self.positions.remove(&(t, p));
                }
            }
        }
        self.joined = true;
        self.report_health();
        telemetry::ASSIGNED.with_gauge([label("processor", self.config.name)]).set(self.partitions.len() as f64);
    }

    fn report_health(&self) {
        self.health.assignment(self.joined, self.partitions.restoring());
    }

    async fn store_completed(&mut self, consumer: &Member, wait: bool) -> Result<(), SinkError> {
        while let Some(done) = self.sink.complete_front(wait).await? {
            for topic in &done.topics {
                telemetry::OUTPUTS
                    .with_counter([label("processor", self.config.name), label("topic", topic.clone())])
                    .increment(1);
            }
            if let Some((topic, partition, offset)) = done.source {
                // A revoked partition refuses the store; its new owner consumes the record again.
                if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                    tracing::debug!(processor = self.config.name, %topic, partition, offset, error = %e, "offset not stored");
                }
            }
            if wait {
                break;
            }
        }
        Ok(())
    }

    /// After shutdown was asked for: awaits outstanding outputs for at most the grace period,
    /// checkpoints if every one was acknowledged, and commits what was stored. What is left
    /// unacknowledged is consumed again by the next start, so nothing is lost.
    async fn finish<P: Processor>(&mut self, consumer: &Member, processor: &mut P) {
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        let mut acked = true;
        while self.sink.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, self.store_completed(consumer, true)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(processor = self.config.name, error = %e, "outputs failed at shutdown; those inputs are consumed again");
                    acked = false;
                    break;
                }
                Err(_) => {
                    tracing::warn!(
                        processor = self.config.name,
                        pending = self.sink.in_flight(),
                        "outputs unacknowledged at shutdown; those inputs are consumed again"
                    );
                    acked = false;
                    break;
                }
            }
        }
        self.sink.abandon();
        if acked && !self.positions.is_empty() {
            let list: Vec<(String, i32, i64)> = self.positions.drain().map(|((t, p), o)| (t, p, o)).collect();
            processor.checkpoint(&list);
        }
        // Stored offsets go in an asynchronous commit: a broker that is away cannot hold the exit.
        if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Async) {
            tracing::debug!(error = %e, "final commit");
        }
    }
}

/// The offset a pending partition will deliver first, if that is its end: nothing to consume.
/// Two broker round trips, once per assignment of an idle partition.
fn end_position(consumer: &Member, topic: &str, partition: i32) -> Result<Option<i64>, KafkaError> {
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(5))?;
    let next = match committed.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        // No committed offset: the group starts at the beginning (auto.offset.reset=earliest).
        _ => low,
    };
    Ok((next >= high).then_some(next))
}

/// Seeks `topic`/`partition` back to the start of the processor's replay window if that is
/// before `until`; returns the offset replay starts from, `None` when there is nothing to
/// replay. A broker error fails the session: going live with empty state would invent results.
fn rewind_to<P: Processor>(
    consumer: &Member,
    processor: &P,
    topic: &str,
    partition: i32,
    until: i64,
) -> Result<Option<i64>, SinkError> {
    let Some(window) = processor.replay_window() else { return Ok(None) };
    let since_ms = (now_us() / 1000) - window.as_millis() as i64;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(since_ms)).map_err(SinkError::Kafka)?;
    let found = consumer.offsets_for_times(tpl, Duration::from_secs(10)).map_err(SinkError::Kafka)?;
    let from = match found.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => o,
        // Nothing at or after the time: nothing to replay.
        _ => return Ok(None),
    };
    if from >= until {
        return Ok(None);
    }
    consumer.seek(topic, partition, Offset::Offset(from), Duration::from_secs(10)).map_err(SinkError::Kafka)?;
    Ok(Some(from))
}

fn dead_letter(codec: &Codec, config: &RuntimeConfig, input: &Input<'_>, error: &RecordError) -> Output {
    let class = match error {
        RecordError::Undecodable(_) => "decode",
        RecordError::Invalid(_) => "validation",
    };
    telemetry::DEAD_LETTERS.with_counter([label("processor", config.name), label("reason", class)]).increment(1);
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

/// A record's replay id header, if it has one in UTF-8.
fn replay_id<'a>(msg: &'a BorrowedMessage<'_>) -> Option<&'a str> {
    let headers = msg.headers()?;
    headers.iter().find(|h| h.key == REPLAY_ID_HEADER).and_then(|h| std::str::from_utf8(h.value?).ok())
}
