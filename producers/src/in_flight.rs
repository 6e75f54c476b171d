//! Log batches sent to the broker but not yet acknowledged, oldest first.
//!
//! The log loop reads on while earlier batches await their acknowledgement, so a slow broker
//! round trip does not delay reading the next lines. The checkpoint still only moves past a batch
//! once it and every batch before it were acknowledged: the idempotent producer keeps one
//! partition's batches in order, and a failure settles everything in flight before the caller
//! recovers its position from the broker.
//!
//! A batch that times out while later ones are already on the wire can fail while those land:
//! the broker's newest fact is then past a hole. [`InFlight::refill`] says where the hole starts
//! and which later ranges did land, so the caller re-reads from the hole and sends only what is
//! missing (downstream dedup takes the out-of-order refill, see logparse's offset ranges).

use std::collections::VecDeque;
use std::time::Instant;

use bmon_kafka::Ack;
use futures_util::FutureExt;
use rdkafka::error::KafkaError;

use crate::tail::Position;
use crate::telemetry;

/// One sent batch.
pub struct Sent {
    /// Completes when the broker acknowledged the whole batch, or at its first failure.
    pub ack: Ack,
    /// The position of the batch's first line.
    pub start: Position,
    /// The position after the batch's last line.
    pub end: Position,
    /// Lines in the batch.
    pub lines: usize,
    /// Bytes in the batch.
    pub bytes: u64,
    /// When the batch was read.
    pub read_at: Instant,
}

/// A sent batch and, once in, its outcome.
struct Entry {
    sent: Sent,
    outcome: Option<Result<(), KafkaError>>,
}

/// The unacknowledged batches.
pub struct InFlight {
    queue: VecDeque<Entry>,
    max: usize,
    /// A batch failed: no later acknowledgement moves the position.
    failed: bool,
    /// Where the first failed batch started.
    first_failed: Option<Position>,
    /// Batches acknowledged after a failure: on the broker, past the hole.
    landed: Vec<(Position, Position)>,
}

/// What to send again after a failure that left a hole: read from `from`, and skip the lines in
/// `skip` (they are on the broker already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refill {
    /// The start of the hole.
    pub from: Position,
    /// Ranges that landed after it, `[start, end)` in one file each.
    pub skip: Vec<(Position, Position)>,
}

impl Refill {
    /// Whether the line of `file` at `[start, end)` is on the broker already.
    pub fn skips(&self, file: crate::tail::FileId, start: u64, end: u64) -> bool {
        self.skip.iter().any(|(a, b)| a.file == file && b.file == file && a.offset <= start && end <= b.offset)
    }

    /// Notes that reading reached `pos`: the skipped ranges it passed are dropped. Returns whether
    /// none is left, and the refill is over. (A range of a file that is never read again, one
    /// deleted after rotation, stays: it only costs a comparison per line.)
    pub fn pass(&mut self, pos: Position) -> bool {
        self.skip.retain(|(_, b)| b.file != pos.file || b.offset > pos.offset);
        self.skip.is_empty()
    }

    /// This refill, and what is left of `older` (a refill that was under way when this failure
    /// came), as one.
    pub fn merged(mut self, older: Option<Refill>) -> Refill {
        if let Some(o) = older {
            self.skip
                .extend(o.skip.into_iter().filter(|(_, b)| b.file != self.from.file || b.offset > self.from.offset));
        }
        self
    }
}

impl InFlight {
    /// At most `max` batches (at least one) stay unacknowledged before [`InFlight::reap`] waits.
    pub fn new(max: usize) -> Self {
        InFlight { queue: VecDeque::new(), max: max.max(1), failed: false, first_failed: None, landed: Vec::new() }
    }

    /// Adds a sent batch.
    pub fn push(&mut self, sent: Sent) {
        self.queue.push_back(Entry { sent, outcome: None });
    }

    /// Batches not yet taken by [`InFlight::reap`].
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing awaits acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Waits for the oldest batch whose outcome is not in yet, and notes it (counting the batch
    /// if acknowledged). Never completes while there is none: use it in a `select!` beside the
    /// caller's own waits, so acknowledgements are counted when they arrive.
    pub async fn next_outcome(&mut self) {
        match self.queue.iter_mut().find(|e| e.outcome.is_none()) {
            Some(entry) => {
                let outcome = (&mut entry.sent.ack).await.unwrap_or(Err(KafkaError::Canceled));
                if outcome.is_ok() {
                    count(&entry.sent);
                }
                entry.outcome = Some(outcome);
            }
            None => std::future::pending().await,
        }
    }

    /// Takes the acknowledged batches from the front, waiting for the oldest while more than
    /// `max` are out. Returns the position after the newest acknowledged batch, and the first
    /// failure, if any (the failed batch is dropped; later ones stay for [`InFlight::settle`]).
    pub async fn reap(&mut self) -> (Option<Position>, Result<(), KafkaError>) {
        let mut acked = None;
        loop {
            if self.queue.len() > self.max {
                self.next_outcome().await;
            }
            let Some(front) = self.queue.front_mut() else { break };
            if front.outcome.is_none() {
                let Some(outcome) = (&mut front.sent.ack).now_or_never() else { break };
                let outcome = outcome.unwrap_or(Err(KafkaError::Canceled));
                if outcome.is_ok() {
                    count(&front.sent);
                }
                front.outcome = Some(outcome);
            }
            let Some(Entry { sent, outcome: Some(outcome) }) = self.queue.pop_front() else { break };
            match outcome {
                Ok(()) if !self.failed => acked = Some(sent.end),
                Ok(()) => self.landed.push((sent.start, sent.end)),
                Err(e) => {
                    self.failed = true;
                    self.first_failed.get_or_insert(sent.start);
                    return (acked, Err(e));
                }
            }
        }
        (acked, Ok(()))
    }

    /// Waits for every batch: the position after the last of the acknowledged batches before
    /// the first failure (none after an earlier failure), and that failure if not reported yet. Afterwards nothing is in flight, so the broker's
    /// position no longer changes.
    pub async fn settle(&mut self) -> (Option<Position>, Option<KafkaError>) {
        let mut acked = None;
        let mut failure = None;
        while !self.queue.is_empty() {
            if self.queue.front().is_some_and(|e| e.outcome.is_none()) {
                self.next_outcome().await;
            }
            let Some(Entry { sent, outcome: Some(outcome) }) = self.queue.pop_front() else { continue };
            match outcome {
                Ok(()) if !self.failed => acked = Some(sent.end),
                Ok(()) => self.landed.push((sent.start, sent.end)),
                Err(e) => {
                    self.failed = true;
                    self.first_failed.get_or_insert(sent.start);
                    failure.get_or_insert(e);
                }
            }
        }
        (acked, failure)
    }

    /// After [`InFlight::settle`]: the refill a failure needs, if batches landed after it (else
    /// resuming after the broker's newest fact fills nothing in, and needs nothing).
    pub fn refill(&self) -> Option<Refill> {
        let from = self.first_failed?;
        (!self.landed.is_empty()).then(|| Refill { from, skip: self.landed.clone() })
    }
}

/// Counts an acknowledged batch (a refill's batch whose lines had all landed counts nothing).
fn count(sent: &Sent) {
    if sent.lines == 0 {
        return;
    }
    telemetry::LOG_PUBLISH_SECONDS.histogram0().record(sent.read_at.elapsed().as_secs_f64());
    telemetry::LOG_LINES.counter0().increment(sent.lines as u64);
    telemetry::LOG_BYTES.counter0().increment(sent.bytes);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tail::FileId;
    use tokio::sync::oneshot;

    type Reply = oneshot::Sender<Result<(), KafkaError>>;

    const F: FileId = FileId { dev: 1, ino: 2, generation: 0 };

    fn sent(offset: u64) -> (Sent, Reply) {
        let (tx, rx) = oneshot::channel();
        let end = Position { file: F, offset };
        let start = Position { file: F, offset: offset - 10 };
        (Sent { ack: rx, start, end, lines: 1, bytes: 10, read_at: Instant::now() }, tx)
    }

    #[tokio::test]
    async fn a_batch_that_landed_after_a_failure_is_skipped_by_the_refill() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        let (c, tc) = sent(30);
        let (d, td) = sent(40);
        for s in [a, b, c, d] {
            q.push(s);
        }
        ta.send(Ok(())).unwrap();
        tb.send(Err(KafkaError::Canceled)).unwrap(); // timed out in the queue
        tc.send(Ok(())).unwrap(); // was on the wire: landed
        td.send(Err(KafkaError::Canceled)).unwrap(); // purged behind the failure
        let (acked, _) = q.reap().await;
        assert_eq!(acked.map(|p| p.offset), Some(10));
        q.settle().await;
        let refill = q.refill().unwrap();
        assert_eq!(refill.from.offset, 10, "from the hole");
        assert!(refill.skips(F, 20, 25) && refill.skips(F, 25, 30), "c's lines are on the broker");
        assert!(!refill.skips(F, 10, 20) && !refill.skips(F, 30, 40), "b's and d's are not");
        let mut refill = refill;
        assert!(!refill.pass(Position { file: F, offset: 25 }) && refill.pass(Position { file: F, offset: 30 }));
    }

    #[tokio::test]
    async fn a_failure_with_nothing_landed_needs_no_refill() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        q.push(a);
        q.push(b);
        ta.send(Err(KafkaError::Canceled)).unwrap();
        tb.send(Err(KafkaError::Canceled)).unwrap();
        q.settle().await;
        assert_eq!(q.refill(), None, "failures form a suffix: the broker's newest fact is the hole's start");
    }

    #[tokio::test]
    async fn reap_takes_only_the_acknowledged_prefix() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        let (c, tc) = sent(30);
        q.push(a);
        q.push(b);
        q.push(c);
        let offset = |(acked, result): (Option<Position>, Result<(), KafkaError>)| {
            result.unwrap();
            acked.map(|p| p.offset)
        };
        assert_eq!(offset(q.reap().await), None);
        // The second is acknowledged before the first: nothing moves until the first is in.
        tb.send(Ok(())).unwrap();
        assert_eq!(offset(q.reap().await), None);
        ta.send(Ok(())).unwrap();
        assert_eq!(offset(q.reap().await), Some(20));
        assert_eq!(q.len(), 1);
        tc.send(Ok(())).unwrap();
        assert_eq!(offset(q.reap().await), Some(30));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn reap_waits_for_the_oldest_beyond_the_limit() {
        let mut q = InFlight::new(1);
        let (a, ta) = sent(10);
        let (b, _tb) = sent(20);
        q.push(a);
        q.push(b);
        let reply = tokio::spawn(async move { ta.send(Ok(())).unwrap() });
        let (acked, result) = q.reap().await;
        result.unwrap();
        assert_eq!(acked.map(|p| p.offset), Some(10));
        reply.await.unwrap();
        assert_eq!(q.len(), 1);
    }

    #[tokio::test]
    async fn outcomes_noted_while_waiting_are_taken_by_reap() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        q.push(a);
        q.push(b);
        ta.send(Ok(())).unwrap();
        q.next_outcome().await;
        tb.send(Ok(())).unwrap();
        q.next_outcome().await;
        // Both noted: a further wait never completes.
        assert!(q.next_outcome().now_or_never().is_none());
        let (acked, result) = q.reap().await;
        result.unwrap();
        assert_eq!(acked.map(|p| p.offset), Some(20));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_failure_stops_the_position_and_settle_drains_the_rest() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        let (c, tc) = sent(30);
        q.push(a);
        q.push(b);
        q.push(c);
        ta.send(Ok(())).unwrap();
        tb.send(Err(KafkaError::Canceled)).unwrap();
        tc.send(Ok(())).unwrap();
        let (acked, result) = q.reap().await;
        assert_eq!(acked.map(|p| p.offset), Some(10), "the batch before the failure counts");
        assert!(result.is_err());
        let (acked, failure) = q.settle().await;
        assert_eq!(acked, None, "nothing after a failure counts");
        assert!(failure.is_none(), "the failure was already reported");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn settle_reports_the_prefix_before_the_first_failure() {
        let mut q = InFlight::new(8);
        let (a, ta) = sent(10);
        let (b, tb) = sent(20);
        let (c, tc) = sent(30);
        q.push(a);
        q.push(b);
        q.push(c);
        ta.send(Ok(())).unwrap();
        drop(tb); // the producer went away
        tc.send(Ok(())).unwrap();
        let (acked, failure) = q.settle().await;
        assert_eq!(acked.map(|p| p.offset), Some(10));
        assert!(matches!(failure, Some(KafkaError::Canceled)));
    }
}
