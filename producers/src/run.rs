//! The producer's main loop for the log source.

use std::time::Duration;

use tokio::sync::watch;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::ProducerConfig;
use crate::config::LogSection;
use crate::fact_sink::FactSink;
use crate::in_flight::{InFlight, Refill, Sent};
use crate::publish::{LogPublisher, NodeIdentity, PublishError, SharedProducer, now_us};
use crate::recovery::{self, Resume};
use crate::rpc::{PollPlan, RpcSettings, TxOutSetSchedule, run_rpc_source, run_txoutset_source};
use crate::stop::Stop;
use crate::tail::{Checkpoint, Follower, Line, LogWatch, Position, ReadPacer, Stamp, Wake};
use crate::telemetry::{self, Health};
use crate::zmq::run_zmq_source;
use crate::zmq::subscriber::ZmqSettings;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// After SIGTERM, how long the sources still await the broker's acknowledgements (within the
/// service's [`crate::service::SHUTDOWN_LIMIT`]). What is left is re-read or resent next time.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

fn identity(config: &ProducerConfig) -> NodeIdentity {
    NodeIdentity {
        node_id: config.node.id.clone(),
        network: config.node.network.clone(),
        implementation: config.node.implementation.into(),
        version: crate::publish::NodeVersion::new(&config.node.version),
    }
}

/// A blocking source thread and the drainer of its spool.
struct SpooledSource {
    stop: Arc<Stop>,
    thread: tokio::task::JoinHandle<()>,
    drainer: tokio::task::JoinHandle<()>,
}

impl SpooledSource {
    /// Opens the spool `name` under the state dir, starts its drainer to `topic`, and runs `body`
    /// (the receive or poll loop) on a blocking thread.
    fn start(
        config: &ProducerConfig,
        shared: &SharedProducer,
        name: &'static str,
        topic: &str,
        shutdown: &watch::Receiver<bool>,
        body: impl FnOnce(&FactSink, &Stop) + Send + 'static,
    ) -> Result<SpooledSource, PublishError> {
        let dir = config.state.dir.join("spool").join(name);
        let capacity = config.state.spool_capacity_mb.saturating_mul(1024 * 1024);
        let sink = FactSink::open(&dir, capacity, name).map_err(|e| PublishError::Client(e.to_string()))?;
        let (drain_sink, shared, topic, key) = (sink.clone(), shared.clone(), topic.to_owned(), config.node.id.clone());
        let rx = shutdown.clone();
        let drainer = tokio::spawn(async move {
            drain_sink.drain(&shared, &topic, &key, rx, SHUTDOWN_WAIT).await;
            let left = drain_sink.queued();
            if left > 0 {
                tracing::warn!(source = name, left, "facts still spooled at shutdown; they are sent after the restart");
            }
        });
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let thread = tokio::task::spawn_blocking(move || body(&sink, &s));
        Ok(SpooledSource { stop, thread, drainer })
    }

    async fn finish(self, name: &str) {
        self.stop.request();
        if let Err(e) = self.thread.await {
            tracing::error!(source = name, error = %e, "source thread panicked");
        }
        if let Err(e) = self.drainer.await {
            tracing::error!(source = name, error = %e, "drainer panicked");
        }
    }
}

/// Runs every configured source until `shutdown` turns true, then flushes.
pub async fn run_producer(
    config: &ProducerConfig,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), PublishError> {
    let shared = SharedProducer::new(&config.kafka);
    // One identity for every source: the version the RPC source learns reaches them all.
    let identity = identity(config);
    let zmq = match &config.zmq {
        Some(z) => {
            let settings = ZmqSettings { endpoints: z.endpoints.clone(), topics: z.topics.clone(), rcvhwm: z.rcvhwm };
            let node = identity.clone();
            let h = Arc::clone(&health);
            Some(SpooledSource::start(config, &shared, "zmq", &config.topics.zmq, &shutdown, move |sink, stop| {
                if let Err(e) = run_zmq_source(&settings, &node, sink, stop, &h.zmq) {
                    tracing::error!(error = %e, "ZMQ source failed");
                }
            })?)
        }
        None => None,
    };
    let rpc = match &config.rpc {
        Some(r) => {
            let settings = RpcSettings {
                url: r.url.clone(),
                auth: r.auth().map_err(|m| PublishError::Client(format!("rpc: {m}")))?,
                interval: Duration::from_secs(r.interval_s),
                timeout: Duration::from_secs(r.timeout_s),
                mempool_full_every: r.mempool_full_every,
            };
            let plan = PollPlan::new(config.node.implementation);
            let txoutset = (r.txoutset_interval_s > 0).then(|| {
                let schedule = TxOutSetSchedule {
                    implementation: config.node.implementation,
                    hash: r.txoutset_hash_type,
                    interval: Duration::from_secs(r.txoutset_interval_s),
                };
                (RpcSettings { timeout: Duration::from_secs(r.txoutset_timeout_s), ..settings.clone() }, schedule)
            });
            let node = identity.clone();
            let h = Arc::clone(&health);
            Some(SpooledSource::start(config, &shared, "rpc", &config.topics.rpc, &shutdown, move |sink, stop| {
                // gettxoutsetinfo on its own thread and connection: a minutes-long UTXO scan
                // never holds up the 10 s round.
                std::thread::scope(|scope| {
                    if let Some((settings, schedule)) = &txoutset {
                        scope.spawn(|| run_txoutset_source(settings, schedule, &node, sink, stop));
                    }
                    run_rpc_source(&settings, plan, &node, sink, stop, &h.rpc);
                });
            })?)
        }
        None => None,
    };
    let log = match &config.log {
        Some(log) => run_log_source(config, identity.clone(), &shared, log, &health, shutdown.clone()).await,
        None => {
            let mut s = shutdown.clone();
            while !*s.borrow() {
                if s.changed().await.is_err() {
                    break;
                }
            }
            Ok(())
        }
    };
    if let Some(r) = rpc {
        r.finish("rpc").await;
    }
    if let Some(z) = zmq {
        z.finish("zmq").await;
    }
    log
}

/// Runs the log source until `shutdown` turns true: follow, publish, checkpoint. Broker failures
/// are logged and retried with backoff; after each, the position is re-read from the broker, so
/// nothing is lost or repeated.
pub async fn run_log_source(
    config: &ProducerConfig,
    node: NodeIdentity,
    shared: &SharedProducer,
    log: &LogSection,
    health: &Health,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), PublishError> {
    let checkpoint = Checkpoint::new(config.state.dir.join("log.checkpoint"));
    let poll = Duration::from_millis(log.poll_ms);
    let mut backoff = Duration::from_millis(500);
    let path = log.path.to_string_lossy().into_owned();
    // A hole left by a failure while later batches landed, to fill on the next attempt.
    let mut refill: Option<Refill> = None;
    while !*shutdown.borrow() {
        // The metadata lookup blocks for up to 10 s while the broker is away: off this thread,
        // which also serves the health listener.
        let built = {
            let (shared, topic, node, path) = (shared.clone(), config.topics.log.clone(), node.clone(), path.clone());
            tokio::task::spawn_blocking(move || LogPublisher::new(&shared, &topic, node, &path))
                .await
                .unwrap_or_else(|e| Err(PublishError::Client(format!("connect task: {e}"))))
        };
        let publisher = match built {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach the log topic; retrying");
                if wait(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        match follow(&publisher, &checkpoint, log, poll, health, &mut refill, &mut shutdown).await {
            Ok(()) => {
                publisher.flush(Duration::from_millis(500));
                return Ok(());
            }
            Err(e) => {
                shared.reset();
                health.log.store(false, Ordering::Relaxed);
                telemetry::LOG_RETRIES.counter0().increment(1);
                tracing::warn!(error = %e, retry_in = ?backoff, "publishing log facts failed; will resume from the broker's position");
                if wait(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    Ok(())
}

/// How often, at most, the log checkpoint file is rewritten.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Sleeps `d`; true if shutdown was requested meanwhile.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// How long a quiet, watched log goes without a re-read: a safety net for missed notifications.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// How long a read waits after a change woke it: the rest of a burst of lines lands meanwhile.
const READ_SETTLE: Duration = Duration::from_millis(2);

/// Waits `d`, or less if `changes` reports a change of the log (then [`READ_SETTLE`] more),
/// noting acknowledgements as they arrive. Returns whether shutdown was requested, and what the
/// follower's file held when a change woke the wait (for the lines' receive times); an error if
/// the change notifications failed.
async fn pause(
    shutdown: &mut watch::Receiver<bool>,
    in_flight: &mut InFlight,
    mut changes: Option<&mut LogWatch>,
    follower: &Follower,
    d: Duration,
) -> std::io::Result<(bool, Option<Wake>)> {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let changed = async {
            match changes.as_deref_mut() {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok((*shutdown.borrow(), None)),
            _ = shutdown.changed() => return Ok((true, None)),
            changed = changed => {
                changed?;
                let at_us = now_us();
                let wake = follower.size_now().map(|(file, size)| Wake { file, size, at_us });
                // A node writes one event's lines (a block's are dozens) within a millisecond
                // or so: let the burst land, so that one read takes it whole.
                return Ok((wait(shutdown, READ_SETTLE).await, wake));
            }
            () = in_flight.next_outcome() => {}
        }
    }
}

/// Where to resume: after what the broker really has, else at the local checkpoint; or, when a
/// failure left a hole after the checkpoint and the process died before refilling it, a refill
/// (see [`crate::recovery`]). The broker is scanned back only to shortly before the checkpoint
/// was written.
fn resume_plan(publisher: &LogPublisher, checkpoint: &Checkpoint) -> Result<Resume, PublishError> {
    let local = checkpoint.load().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring unreadable checkpoint");
        None
    });
    // A margin for clock steps, and for batches created before the write that landed after it
    // (within the delivery timeout).
    let written = local.zip(checkpoint.written_at_ms().map(|t| t - 60_000));
    let landed = publisher.recover_landed(Duration::from_secs(30), written)?;
    Ok(recovery::plan(local, &landed))
}

async fn follow(
    publisher: &Arc<LogPublisher>,
    checkpoint: &Checkpoint,
    log: &LogSection,
    poll: Duration,
    health: &Health,
    refill: &mut Option<Refill>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), PublishError> {
    // A hole to fill: read from its start and send only what did not land. Otherwise the broker's
    // newest fact is where to go on. The recovery scan reads the broker (seconds on a busy
    // partition): off this thread, which also serves the health listener.
    let (resume, mut skip) = match refill.take() {
        Some(r) => (Some(r.from), Some(r)),
        None => {
            let (p, c) = (Arc::clone(publisher), checkpoint.clone());
            match tokio::task::spawn_blocking(move || resume_plan(&p, &c))
                .await
                .unwrap_or_else(|e| Err(PublishError::Client(format!("recovery task: {e}"))))?
            {
                Resume::At(pos) => (pos, None),
                Resume::Refill(r) => (Some(r.from), Some(r)),
            }
        }
    };
    if let Some(r) = &skip {
        tracing::warn!(from = ?r.from, landed = r.skip.len(), "refilling the lines a failed delivery left out");
    }
    tracing::info!(path = %log.path.display(), ?resume, partition = publisher.partition(), "following log");
    // Ready once the position is known: from here every line is published.
    health.log.store(true, Ordering::Relaxed);
    let mut follower = Follower::open(&log.path, resume, log.max_line_bytes);
    // The local checkpoint is only a fallback (the broker holds the true position), so it is
    // written at most once per CHECKPOINT_EVERY, and on the way out.
    let mut unsaved: Option<Position> = None;
    let mut saved_at = std::time::Instant::now();
    let save = |pos: Option<Position>| {
        if let Some(pos) = pos
            && let Err(e) = checkpoint.store(&pos)
        {
            tracing::warn!(error = %e, "cannot write checkpoint; the broker still has the position");
        }
    };
    // Batches awaiting the broker's acknowledgement: reading goes on meanwhile. Before returning,
    // everything in flight is settled, so the broker's position no longer moves.
    let mut in_flight = InFlight::new(MAX_BATCHES_IN_FLIGHT);
    let fail = async |in_flight: &mut InFlight,
                      unsaved: Option<Position>,
                      e: PublishError,
                      left: Option<Refill>,
                      refill: &mut Option<Refill>| {
        let (acked, _) = in_flight.settle().await;
        save(acked.or(unsaved));
        *refill = match in_flight.refill() {
            Some(r) => Some(r.merged(left)),
            None => left,
        };
        Err(e)
    };
    // inotify wakes a quiet log's reader when a line lands; without it the file is re-read every
    // `poll`. Either way the follower itself detects rotation and truncation.
    let mut watch = LogWatch::new(&log.path)
        .inspect_err(|e| tracing::info!(error = %e, every = ?poll, "no file-change notifications; polling the log"))
        .ok();
    let mut pacer = ReadPacer::new(poll, log.read_burst, std::time::Instant::now());
    let mut wake = None;
    loop {
        if let Some(w) = watch.as_mut() {
            w.clear();
        }
        let read_at = tokio::time::Instant::now();
        pacer.took(read_at.into_std());
        let batches = match follower.poll() {
            Ok(b) => b,
            Err(e) => {
                let e = PublishError::Client(format!("reading {}: {e}", log.path.display()));
                return fail(&mut in_flight, unsaved, e, skip.take(), refill).await;
            }
        };
        // After the read: no line it returned was written later than this.
        let stamp = Stamp { wake: wake.take(), read_us: now_us(), seen_before: None };
        for batch in &batches {
            let (Some(first), Some(last)) = (batch.lines.first(), batch.lines.last()) else { continue };
            let (start, end) =
                (Position { file: batch.file, offset: first.start }, Position { file: batch.file, offset: last.end });
            // During a refill, lines that landed after the hole are not sent again.
            let lines: std::borrow::Cow<'_, [Line]> = match &skip {
                Some(r) => batch.lines.iter().filter(|l| !r.skips(batch.file, l.start, l.end)).cloned().collect(),
                None => std::borrow::Cow::Borrowed(&batch.lines),
            };
            let stamp = Stamp { seen_before: Some((batch.file, batch.seen)), ..stamp };
            let (ack, queued) = if lines.is_empty() {
                // All on the broker: an acknowledged no-op keeps the batches in order.
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = tx.send(Ok(()));
                (rx, Ok(()))
            } else {
                publisher.send(batch.file, &lines, &stamp)
            };
            in_flight.push(Sent {
                ack,
                start,
                end,
                lines: lines.len(),
                bytes: lines.iter().map(|l| l.end - l.start).sum(),
                read_at: read_at.into_std(),
            });
            if let Err(e) = queued {
                return fail(&mut in_flight, unsaved, e, skip.take(), refill).await;
            }
        }
        if let (Some(pos), Some(r)) = (follower.position(), skip.as_mut())
            && r.pass(pos)
        {
            tracing::info!(?pos, "hole refilled");
            skip = None;
        }
        let (acked, result) = in_flight.reap().await;
        unsaved = acked.or(unsaved);
        if let Err(e) = result {
            return fail(&mut in_flight, unsaved, publisher.delivery_error(e), skip.take(), refill).await;
        }
        if unsaved.is_some() && saved_at.elapsed() >= CHECKPOINT_EVERY {
            save(unsaved.take());
            saved_at = std::time::Instant::now();
        }
        // Read again at once while catching up. Otherwise the pacer decides: while it has a
        // token, the next change is read as it lands; without one, the next read waits for the
        // token, so that a steady trickle is published in batches of an interval, not line by
        // line.
        let stop = if follower.has_backlog() {
            false
        } else {
            let (changes, d) = match watch.as_mut() {
                Some(w) => match pacer.wait(std::time::Instant::now()) {
                    Duration::ZERO => (Some(w), poll.max(IDLE_RECHECK)),
                    d => (None, d),
                },
                None => (None, poll),
            };
            match pause(shutdown, &mut in_flight, changes, &follower, d).await {
                Ok((stop, woke)) => {
                    wake = woke;
                    stop
                }
                Err(e) => {
                    tracing::warn!(error = %e, every = ?poll, "file-change notifications failed; polling the log");
                    watch = None;
                    false
                }
            }
        };
        if stop || *shutdown.borrow() {
            // Bounded: a broker that is away must not hold the exit. Lines not acknowledged by
            // then are read again on the next start, which resumes from the broker's position.
            let Ok((acked, failure)) = tokio::time::timeout(SHUTDOWN_WAIT, in_flight.settle()).await else {
                save(unsaved);
                tracing::warn!("log facts unacknowledged at shutdown; they are read again on the next start");
                return Ok(());
            };
            save(acked.or(unsaved));
            return match failure {
                Some(e) => Err(publisher.delivery_error(e)),
                None => Ok(()),
            };
        }
    }
}

/// Most log batches (each up to 10 000 lines) awaiting acknowledgement at once; reading pauses
/// beyond it. Catching up on 1M lines: 4 gave 39.7k lines/s at 41 MB RSS; 16 flooded tansu
/// (6.7k lines/s, 68 MB); 2 gave 35k lines/s at 31 MB (BENCHMARKS.md).
const MAX_BATCHES_IN_FLIGHT: usize = 4;
