//! A bounded, durable, in-order queue of encoded facts on local disk.
//!
//! Sources append; a drainer reads from the head, publishes, and advances the head only after the
//! broker acknowledged. Segments are files `<n>.seg`; the head position is the file `head`
//! (`<segment> <offset>`, fixed width, rewritten in place: one small write, no rename, so advancing
//! costs one system call). Drained segments are deleted. On open, a torn record at
//! the end of the last segment (a crash mid-append) is cut off.

pub mod frame;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use frame::Frame;

const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const MAX_RECORD: usize = 64 * 1024 * 1024;

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool is at capacity: the record was not stored.
    #[error("spool full ({0} bytes)")]
    Full(u64),
    /// Disk I/O failed.
    #[error("spool I/O in {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The queue. Not shared between threads: wrap it in a mutex.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    capacity: u64,
    /// Segment numbers present, oldest first.
    segments: Vec<u64>,
    head: (u64, u64),
    /// The open `head` file.
    head_file: File,
    /// The segment last read from, kept open (reads are at the head, which moves slowly), with
    /// its length once it is no longer the tail.
    reader: std::cell::RefCell<Option<(u64, File, Option<u64>)>>,
    tail: File,
    tail_len: u64,
    bytes: u64,
    records: u64,
    /// When the tail segment was last fsynced.
    synced_at: std::time::Instant,
}

/// While facts are backing up (earlier ones still unacknowledged when another is appended), appends
/// are fsynced at most this often (group commit). A healthy broker acknowledges each fact within
/// milliseconds, before it would be worth an fsync, so then none is done: the broker has it. A
/// process crash loses nothing (the data is in the page cache). An OS crash or power loss can lose
/// what was appended since the last fsync: while backing up at most this long, otherwise what the
/// kernel has not yet written back (its dirty expiry, 30 s by default) and the broker has not
/// acknowledged.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `capacity` bytes.
    pub fn open(dir: &Path, capacity: u64) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        segments.sort_unstable();
        if segments.is_empty() {
            segments.push(0);
        }
        let head_path = dir.join("head");
        let head_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&head_path)
            .map_err(io(&head_path))?;
        let head = std::fs::read_to_string(&head_path)
            .ok()
            .and_then(|s| {
                let (a, b) = s.trim().split_once(' ')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .filter(|(seg, _)| segments.contains(seg))
            .unwrap_or((segments[0], 0));
        // Segments before the head were drained but not yet deleted.
        for seg in segments.iter().filter(|s| **s < head.0) {
            let _ = std::fs::remove_file(dir.join(format!("{seg}.seg")));
        }
        segments.retain(|s| *s >= head.0);
        let last = *segments.last().unwrap_or(&head.0);
        let last_path = dir.join(format!("{last}.seg"));
        let valid = valid_length(&last_path)?;
        let tail = OpenOptions::new().create(true).append(true).open(&last_path).map_err(io(&last_path))?;
        tail.set_len(valid).map_err(io(&last_path))?;
        let mut spool = Spool {
            dir: dir.to_owned(),
            capacity,
            segments,
            head,
            head_file,
            reader: std::cell::RefCell::new(None),
            tail,
            tail_len: valid,
            bytes: 0,
            records: 0,
            synced_at: std::time::Instant::now(),
        };
        spool.recount()?;
        Ok(spool)
    }

    fn seg_path(&self, seg: u64) -> PathBuf {
        self.dir.join(format!("{seg}.seg"))
    }

    fn recount(&mut self) -> Result<(), SpoolError> {
        let (mut bytes, mut records) = (0, 0);
        for &seg in &self.segments {
            let data = std::fs::read(self.seg_path(seg)).map_err(io(&self.seg_path(seg)))?;
            let mut at = if seg == self.head.0 { self.head.1 as usize } else { 0 };
            while let Some((_, n)) = data.get(at..).and_then(|b| frame::decode(b, MAX_RECORD)) {
                at += n;
                bytes += n as u64;
                records += 1;
            }
        }
        self.bytes = bytes;
        self.records = records;
        Ok(())
    }

    /// Appends a record (written at once; fsynced at most every [`SYNC_EVERY`] while a backlog
    /// builds). Fails with `Full` at capacity.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), SpoolError> {
        let framed = frame::encode(now_us(), payload);
        if self.bytes + framed.len() as u64 > self.capacity {
            return Err(SpoolError::Full(self.capacity));
        }
        if self.tail_len + framed.len() as u64 > SEGMENT_BYTES && self.tail_len > 0 {
            let full = self.seg_path(*self.segments.last().unwrap_or(&0));
            self.tail.sync_data().map_err(io(&full))?;
            let next = self.segments.last().copied().unwrap_or(0) + 1;
            let path = self.seg_path(next);
            self.tail = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
            self.segments.push(next);
            self.tail_len = 0;
        }
        let path = self.seg_path(*self.segments.last().unwrap_or(&0));
        self.tail.write_all(&framed).map_err(io(&path))?;
        let backlog = self.records > 0;
        if backlog && self.synced_at.elapsed() >= SYNC_EVERY {
            self.tail.sync_data().map_err(io(&path))?;
            self.synced_at = std::time::Instant::now();
        }
        self.tail_len += framed.len() as u64;
        self.bytes += framed.len() as u64;
        self.records += 1;
        Ok(())
    }

    /// The intact record at `offset` of segment `seg`, with its framed length; `None` at the
    /// segment's end (for the tail segment, the end of the last complete append) or at a torn or
    /// corrupt record. Reads that record only, through the kept-open reader.
    fn frame_at(&self, seg: u64, offset: u64) -> Result<Option<(Frame, u64)>, SpoolError> {
        use std::os::unix::fs::FileExt;
        let path = self.seg_path(seg);
        let mut reader = self.reader.borrow_mut();
        if reader.as_ref().map(|r| r.0) != Some(seg) {
            *reader = Some((seg, File::open(&path).map_err(io(&path))?, None));
        }
        let Some((_, file, sealed_len)) = reader.as_mut() else { return Ok(None) };
        let end = if self.segments.last() == Some(&seg) {
            self.tail_len
        } else {
            // A segment before the tail no longer grows: its length is read once.
            match sealed_len {
                Some(len) => *len,
                None => *sealed_len.insert(file.metadata().map_err(io(&path))?.len()),
            }
        };
        let mut header = [0u8; frame::HEADER];
        if offset + frame::HEADER as u64 > end {
            return Ok(None);
        }
        file.read_exact_at(&mut header, offset).map_err(io(&path))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_RECORD || offset + (frame::HEADER + len) as u64 > end {
            return Ok(None);
        }
        let mut framed = vec![0u8; frame::HEADER + len];
        file.read_exact_at(&mut framed, offset).map_err(io(&path))?;
        Ok(frame::decode(&framed, MAX_RECORD).map(|(f, n)| (f, n as u64)))
    }

    /// Up to `max` records from the head, oldest first, without removing them.
    pub fn peek(&self, max: usize) -> Result<Vec<Frame>, SpoolError> {
        let mut out = Vec::new();
        let (mut seg_i, mut offset) = (0, self.head.1);
        while out.len() < max && seg_i < self.segments.len() {
            match self.frame_at(self.segments[seg_i], offset)? {
                Some((frame, len)) => {
                    out.push(frame);
                    offset += len;
                }
                // This segment is exhausted (or only a corrupt remainder is left): the next one.
                None => (seg_i, offset) = (seg_i + 1, 0),
            }
        }
        Ok(out)
    }

    /// Deletes head segments before the tail that hold nothing readable past the head (drained, or
    /// only a corrupt remainder is left), moving the head to the next one.
    fn drop_drained_segments(&mut self) -> Result<(), SpoolError> {
        let mut lost = false;
        while self.segments.len() > 1 && self.frame_at(self.head.0, self.head.1)?.is_none() {
            let path = self.seg_path(self.head.0);
            lost |= std::fs::metadata(&path).is_ok_and(|m| m.len() > self.head.1);
            self.reader.borrow_mut().take();
            let _ = std::fs::remove_file(&path);
            self.segments.remove(0);
            self.head = (self.segments[0], 0);
        }
        if lost {
            // Records behind a corrupt one went with their segment: count what is left.
            self.recount()?;
        }
        Ok(())
    }

    /// Removes `n` records from the head (they were acknowledged) and persists the new head.
    pub fn advance(&mut self, n: usize) -> Result<(), SpoolError> {
        for _ in 0..n {
            self.drop_drained_segments()?;
            let Some((_, len)) = self.frame_at(self.head.0, self.head.1)? else { break };
            self.head.1 += len;
            self.bytes -= len;
            self.records -= 1;
        }
        self.drop_drained_segments()?;
        let record = format!("{:020} {:020}\n", self.head.0, self.head.1);
        let head_path = self.dir.join("head");
        std::os::unix::fs::FileExt::write_all_at(&self.head_file, record.as_bytes(), 0).map_err(io(&head_path))
    }

    /// Records waiting.
    pub fn len(&self) -> u64 {
        self.records
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Age of the oldest waiting record in seconds (0 when empty).
    pub fn age_seconds(&self) -> f64 {
        if self.records == 0 {
            return 0.0;
        }
        self.peek(1)
            .ok()
            .and_then(|v| v.first().map(|f| (now_us() - f.appended_at_us).max(0) as f64 / 1e6))
            .unwrap_or(0.0)
    }
}

/// Length of the intact prefix of a segment file (0 if absent).
fn valid_length(path: &Path) -> Result<u64, SpoolError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(SpoolError::Io { path: path.to_owned(), source: e }),
    };
    let mut at = 0;
    while let Some((_, n)) = data.get(at..).and_then(|b| frame::decode(b, MAX_RECORD)) {
        at += n;
    }
    Ok(at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(frames: &[Frame]) -> Vec<Vec<u8>> {
        frames.iter().map(|f| f.payload.clone()).collect()
    }

    #[test]
    fn fifo_across_reopen_and_advance() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..5u8 {
            s.append(&[i; 10]).unwrap();
        }
        assert_eq!(s.len(), 5);
        s.advance(2).unwrap();
        drop(s);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&s.peek(10).unwrap()), vec![vec![2u8; 10], vec![3; 10], vec![4; 10]]);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn full_spool_refuses_and_recovers_room_after_advance() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 100).unwrap();
        s.append(&[0; 40]).unwrap();
        assert!(matches!(s.append(&[1; 60]), Err(SpoolError::Full(100))));
        s.advance(1).unwrap();
        s.append(&[1; 60]).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.append(b"whole").unwrap();
        drop(s);
        let seg = dir.path().join("0.seg");
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&frame::encode(1, b"torn")[..10]).unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.len(), 1);
        s.append(b"next").unwrap();
        assert_eq!(payloads(&s.peek(10).unwrap()), vec![b"whole".to_vec(), b"next".to_vec()]);
    }

    #[test]
    fn segments_roll_and_drained_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = vec![9u8; 6 * 1024 * 1024];
        for _ in 0..4 {
            s.append(&big).unwrap();
        }
        let count = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
                .count()
        };
        assert!(count() >= 2);
        s.advance(4).unwrap();
        assert!(s.is_empty());
        assert_eq!(count(), 1);
        drop(s);
        assert!(Spool::open(dir.path(), 1 << 30).unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_record_in_a_sealed_segment_skips_to_the_next_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 30).unwrap();
        let big = vec![7u8; 6 * 1024 * 1024];
        s.append(b"first").unwrap();
        s.append(&big).unwrap();
        s.append(&big).unwrap();
        s.append(&big).unwrap(); // rolls into segment 1
        s.append(b"after").unwrap();
        assert_eq!(s.segments.len(), 2);
        // Flip a payload byte of the second record of segment 0.
        let seg0 = dir.path().join("0.seg");
        let at = (frame::HEADER + 5 + frame::HEADER + 10) as u64;
        let f = OpenOptions::new().read(true).write(true).open(&seg0).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[0xff], at).unwrap();
        let sizes: Vec<usize> = s.peek(10).unwrap().iter().map(|f| f.payload.len()).collect();
        assert_eq!(sizes, [5, big.len(), 5], "the corrupt remainder of segment 0 is skipped");
        s.advance(3).unwrap();
        assert!(!seg0.exists(), "the drained segment is deleted");
        assert!(s.peek(10).unwrap().is_empty());
        assert!(s.is_empty(), "the records lost behind the corrupt one are no longer counted");
    }
}
