//! A [`BoundedSource`] read on a thread of its own, so that fetching, copying and merging the
//! records run beside the pipeline that processes them. Records cross in batches through a
//! bounded channel: the reader runs at most [`DEPTH`] batches ahead, and the order is the
//! source's own.
//!
//! Under a pace ([`super::pace`]) the reader takes each record no sooner than it is due, and
//! runs one small batch ahead.
//!
//! Dropping a [`ReadAhead`] stops the reader at its next hand-over. It is not joined, so a
//! reader blocked on a silent broker never holds up the caller's exit.

use std::num::NonZeroU64;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use super::bounded::{BoundedSource, Record, SourceError};
use super::pace::Pace;

/// Records per hand-over: large enough that the channel costs little per record, small enough
/// that the pipeline starts at once.
const BATCH: usize = 512;
/// Batches the reader may be ahead (about `BATCH * DEPTH * 300` bytes, 2.5 MB, held).
const DEPTH: usize = 16;
/// Under a pace, records per hand-over: at most a tenth of a second's worth, so the pipeline is
/// fed evenly.
fn paced_batch(rate: NonZeroU64) -> usize {
    usize::try_from(rate.get() / 10).unwrap_or(BATCH).clamp(1, BATCH)
}
/// The shortest wait a pace sleeps: shorter debts are let add up (a sleep costs about 0.1 ms
/// more than asked).
const PACE_SLICE: Duration = Duration::from_millis(2);

/// What the reader hands over.
enum Batch {
    /// The next records, in order, and the records the broker no longer had up to them.
    Records { records: Vec<Record>, lost: u64 },
    /// Every partition reached its end; the records the broker no longer had.
    End { lost: u64 },
    /// Reading failed; nothing follows.
    Failed(SourceError),
}

/// The records of a [`BoundedSource`], read ahead on a thread.
pub struct ReadAhead {
    rx: Receiver<Batch>,
    current: std::vec::IntoIter<Record>,
    /// The source's [`BoundedSource::lost`] as of the last batch received.
    lost: u64,
    ended: bool,
}

impl ReadAhead {
    /// Starts reading `source` on a new thread, at most `max_rate` records a second if given
    /// (and then one batch ahead).
    pub fn start(source: BoundedSource, max_rate: Option<NonZeroU64>) -> Result<ReadAhead, SourceError> {
        let (tx, rx) = sync_channel(if max_rate.is_some() { 1 } else { DEPTH });
        let pace = max_rate.map(|rate| (Pace::new(rate, Instant::now()), paced_batch(rate)));
        std::thread::Builder::new()
            .name("bmon-read-ahead".into())
            .spawn(move || read(source, pace, &tx))
            .map_err(SourceError::Spawn)?;
        Ok(ReadAhead { rx, current: Vec::new().into_iter(), lost: 0, ended: false })
    }

    /// The next record in the source's order; `None` once every partition reached its end.
    pub fn next_record(&mut self) -> Result<Option<Record>, SourceError> {
        loop {
            if let Some(record) = self.current.next() {
                return Ok(Some(record));
            }
            if self.ended {
                return Ok(None);
            }
            match self.rx.recv() {
                Ok(Batch::Records { records, lost }) => {
                    self.current = records.into_iter();
                    self.lost = lost;
                }
                Ok(Batch::End { lost }) => {
                    self.lost = lost;
                    self.ended = true;
                }
                Ok(Batch::Failed(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                // The reader cannot go away without saying why, unless it panicked.
                Err(_) => {
                    self.ended = true;
                    return Err(SourceError::ReaderStopped);
                }
            }
        }
    }

    /// Records of the spans the broker no longer had when they were read: up to the records
    /// handed over so far, and all of them once [`ReadAhead::next_record`] has returned `None`
    /// (so a replay stopped early still counts the gaps it passed).
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// The reader: batches the source's records until its end, a failure, or the receiver is gone;
/// under `pace`, no record is read before it is due.
fn read(mut source: BoundedSource, mut pace: Option<(Pace, usize)>, tx: &SyncSender<Batch>) {
    let size = pace.as_ref().map_or(BATCH, |(_, size)| *size);
    let mut batch = Vec::with_capacity(size);
    loop {
        if let Some(wait) = pace.as_mut().map(|(p, _)| p.take(Instant::now())).filter(|w| *w >= PACE_SLICE) {
            std::thread::sleep(wait); // the pace asked for, not a synchronisation
        }
        match source.next_record() {
            Ok(Some(record)) => {
                batch.push(record);
                if batch.len() == size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(size));
                    if tx.send(Batch::Records { records: full, lost: source.lost() }).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                if !batch.is_empty() && tx.send(Batch::Records { records: batch, lost: source.lost() }).is_err() {
                    return;
                }
                let _ = tx.send(Batch::End { lost: source.lost() });
                return;
            }
            Err(e) => {
                let records = std::mem::take(&mut batch);
                if !records.is_empty() && tx.send(Batch::Records { records, lost: source.lost() }).is_err() {
                    return;
                }
                let _ = tx.send(Batch::Failed(e));
                return;
            }
        }
    }
}
