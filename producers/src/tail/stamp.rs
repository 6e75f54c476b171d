//! Receive times for lines: when the producer first knew each line was in the file.
//!
//! A change notification wakes the reader, which then waits a moment (the read settle) so that the
//! rest of a burst lands, and reads. Stamping every line with the read time would add that settle
//! (2–3 ms with the timer's granularity) to every line's tailing delay, and with it the
//! propagation processor's clock-offset estimates. So at the wake the file's size is noted: lines
//! that end within it were in the file at the wake, and take the wake time; lines written during
//! the settle take the read time. Neither is earlier than the line's write, so a receive time
//! never precedes its line.

use super::FileId;

/// What the reader knew of the file at a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The file being followed at the wake (its truncation generation included).
    pub file: FileId,
    /// Its size then.
    pub size: u64,
    /// The wake time, µs since the Unix epoch.
    pub at_us: i64,
}

/// The receive times of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The wake before the read, if a change notification caused it.
    pub wake: Option<Wake>,
    /// The read time, µs since the Unix epoch.
    pub read_us: i64,
    /// The file and its length when the previous read ended: lines within it were there already
    /// (a first read of a log with history, a catch-up, a read cut at the line cap), so their
    /// receive time says when they were read, not written.
    pub seen_before: Option<(FileId, u64)>,
}

impl Stamp {
    /// Whether the line of `file` that ends at `end` is backlog (see [`Stamp::seen_before`]).
    pub fn backlog(&self, file: FileId, end: u64) -> bool {
        matches!(self.seen_before, Some((f, len)) if f == file && end <= len)
    }

    /// The receive time of the line of `file` that ends at `end`.
    pub fn received_at_us(&self, file: FileId, end: u64) -> i64 {
        match self.wake {
            Some(w) if w.file == file && end <= w.size => w.at_us.min(self.read_us),
            _ => self.read_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FileId = FileId { dev: 1, ino: 2, generation: 0 };

    #[test]
    fn lines_in_the_file_at_the_wake_take_its_time() {
        let s = Stamp { wake: Some(Wake { file: F, size: 100, at_us: 1_000 }), read_us: 3_500, seen_before: None };
        assert_eq!(s.received_at_us(F, 100), 1_000);
        assert_eq!(s.received_at_us(F, 101), 3_500, "written during the settle");
        assert_eq!(s.received_at_us(FileId { generation: 1, ..F }, 50), 3_500, "truncated since");
        assert_eq!(s.received_at_us(FileId { ino: 3, ..F }, 50), 3_500, "rotated since");
        assert_eq!(Stamp { wake: None, read_us: 7, seen_before: None }.received_at_us(F, 1), 7);
    }

    #[test]
    fn lines_that_were_there_at_the_previous_read_are_backlog() {
        let s = Stamp { wake: None, read_us: 7, seen_before: Some((F, 500)) };
        assert!(s.backlog(F, 500) && !s.backlog(F, 501));
        assert!(!s.backlog(FileId { generation: 1, ..F }, 10), "another generation: new lines");
        assert!(!Stamp { wake: None, read_us: 7, seen_before: None }.backlog(F, 1));
    }
}
