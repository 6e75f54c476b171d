//! Following one log file across rotation (rename and create) and copytruncate.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::tail::lines::{Line, LineSplitter};

/// How many bytes before the read position are remembered to detect copytruncate.
const FINGERPRINT_BYTES: usize = 64;
const CHUNK: usize = 64 * 1024;
/// At most this many lines are returned by one poll (bounds memory while catching up).
const MAX_LINES_PER_POLL: usize = 10_000;

/// Identity of one file: device, inode, and how many times it was truncated under us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Truncation generation: bumped on each copytruncate, so offsets never repeat in one epoch.
    pub generation: u32,
}

impl FileId {
    /// The epoch string of facts from this file: `dev:ino:generation`.
    pub fn epoch(&self) -> String {
        format!("{}:{}:{}", self.dev, self.ino, self.generation)
    }

    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId { dev: meta.dev(), ino: meta.ino(), generation: 0 }
    }

    fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }
}

/// Lines read in one poll, with the file they came from.
#[derive(Debug)]
pub struct Batch {
    /// The file's identity.
    pub file: FileId,
    /// Complete lines, in order.
    pub lines: Vec<Line>,
    /// The file's length when the previous read of it ended, or when it was opened: its lines
    /// that end within it were there already, and are backlog.
    pub seen: u64,
}

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The file.
    pub file: FileId,
    /// Offset of the next unread byte.
    pub offset: u64,
}

/// Follows `path`: reads what was appended, notices rotation and truncation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<(File, FileId)>,
    offset: u64,
    splitter: LineSplitter,
    max_line: usize,
    fingerprint: Vec<u8>,
    /// The last poll stopped at its line cap with bytes left to read.
    backlog: bool,
    /// The file and its length when the last poll ended (or when it was opened): lines that end
    /// within it were already there and are backlog when read later (see [`super::Stamp`]).
    seen_len: Option<(FileId, u64)>,
}

impl Follower {
    /// Opens `path`, resuming at `resume` when it names this file (or, after a rotation while we
    /// were down, a sibling in the same directory that still exists); otherwise from the start.
    pub fn open(path: &Path, resume: Option<Position>, max_line: usize) -> Follower {
        let mut f = Follower {
            path: path.to_owned(),
            file: None,
            offset: 0,
            splitter: LineSplitter::new(0, max_line),
            max_line,
            fingerprint: Vec::new(),
            backlog: false,
            seen_len: None,
        };
        if let Some(pos) = resume {
            let candidate = std::fs::metadata(path)
                .ok()
                .filter(|m| pos.file.same_file(m))
                .map(|_| path.to_owned())
                .or_else(|| find_sibling(path, pos.file));
            if let Some(file) = candidate.and_then(|p| File::open(p).ok()) {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let offset = if len >= pos.offset { pos.offset } else { 0 };
                f.attach(
                    file,
                    if len >= pos.offset {
                        pos.file
                    } else {
                        FileId { generation: pos.file.generation + 1, ..pos.file }
                    },
                    offset,
                );
            }
        }
        f
    }

    fn attach(&mut self, mut file: File, id: FileId, offset: u64) {
        let _ = file.seek(SeekFrom::Start(offset));
        self.seen_len = file.metadata().ok().map(|m| (id, m.len()));
        self.fingerprint = read_before(&file, offset);
        self.offset = offset;
        self.splitter = LineSplitter::new(offset, self.max_line);
        self.file = Some((file, id));
    }

    /// The position just past the last complete line returned so far.
    pub fn position(&self) -> Option<Position> {
        self.file.as_ref().map(|(_, id)| Position { file: *id, offset: self.splitter.committed_offset() })
    }

    /// The followed file's identity and current size, read now (for [`super::Stamp`]); `None`
    /// when no file is open or the path now names another file.
    pub fn size_now(&self) -> Option<(FileId, u64)> {
        let (file, id) = self.file.as_ref()?;
        let meta = file.metadata().ok()?;
        let current = std::fs::metadata(&self.path).ok()?;
        (id.same_file(&meta) && id.same_file(&current)).then_some((*id, meta.len()))
    }

    /// Whether the last poll left bytes unread (it stopped at its line cap): poll again at once
    /// rather than waiting for the next interval.
    pub fn has_backlog(&self) -> bool {
        self.backlog
    }

    /// Reads everything appended since the last poll. Returns the batches in order: more than one
    /// when the file was rotated (the old file's tail first).
    pub fn poll(&mut self) -> io::Result<Vec<Batch>> {
        let mut batches = Vec::new();
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => {
                    let id = FileId::of(&file.metadata()?);
                    self.attach(file, id, 0);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(batches),
                Err(e) => return Err(e),
            }
        }
        self.check_truncated(&mut batches)?;
        batches.push(self.read_to_end()?);
        // Rotated: the path names another file. The writer keeps appending to the old one until it
        // reopens (Core: on SIGHUP), and it stops writing there before it writes to the new one, so
        // the old file is complete once the new one has data: drain it, then switch.
        // Not while the old file still has a backlog: it is drained first, over several polls.
        let new_has_data = !self.backlog
            && match std::fs::metadata(&self.path) {
                Ok(meta) => self.file.as_ref().is_some_and(|(_, id)| !id.same_file(&meta)) && meta.len() > 0,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
        if new_has_data {
            let mut last = self.read_to_end()?;
            if self.backlog {
                batches.push(last);
                batches.retain(|b| !b.lines.is_empty());
                return Ok(batches);
            }
            last.lines.extend(self.splitter.finish());
            batches.push(last);
            self.file = None;
            if let Ok(file) = File::open(&self.path) {
                let id = FileId::of(&file.metadata()?);
                self.attach(file, id, 0);
                batches.push(self.read_to_end()?);
            }
        }
        batches.retain(|b| !b.lines.is_empty());
        self.seen_len = self.file.as_ref().and_then(|(f, id)| f.metadata().ok().map(|m| (*id, m.len())));
        Ok(batches)
    }

    /// copytruncate: the bytes before our position are no longer what we read. What was appended
    /// since our last read went into the copy, at the same offsets: drain it from the copy, then
    /// read the truncated file from 0 with the next generation, so offsets stay unique per epoch.
    fn check_truncated(&mut self, batches: &mut Vec<Batch>) -> io::Result<()> {
        let Some((file, id)) = self.file.as_ref() else { return Ok(()) };
        if self.offset == 0 {
            return Ok(());
        }
        let len = file.metadata()?.len();
        if len >= self.offset && read_before(file, self.offset) == self.fingerprint {
            return Ok(());
        }
        let (old_id, offset) = (*id, self.offset);
        if let Some(copy) = find_copy(&self.path, old_id, offset, &self.fingerprint) {
            let mut copy = copy;
            copy.seek(SeekFrom::Start(offset))?;
            let mut rest = Vec::new();
            copy.read_to_end(&mut rest)?;
            let mut lines = self.splitter.push(&rest);
            lines.extend(self.splitter.finish());
            // Drained from the copy: every byte was there before this read.
            batches.push(Batch { file: old_id, lines, seen: u64::MAX });
        }
        let next = FileId { generation: old_id.generation + 1, ..old_id };
        tracing::info!(path = %self.path.display(), generation = next.generation, "log truncated; reading from the start");
        if let Some((file, _)) = self.file.take() {
            self.attach(file, next, 0);
        }
        Ok(())
    }

    fn read_to_end(&mut self) -> io::Result<Batch> {
        let Some((file, id)) = self.file.as_mut() else {
            return Ok(Batch { file: FileId { dev: 0, ino: 0, generation: 0 }, lines: vec![], seen: 0 });
        };
        let id = *id;
        let seen = self.seen_len.filter(|(f, _)| *f == id).map_or(0, |(_, len)| len);
        let mut lines = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        self.backlog = false;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            lines.extend(self.splitter.push(&buf[..n]));
            // Bound memory per poll; the rest is read on the next one.
            if lines.len() >= MAX_LINES_PER_POLL {
                self.backlog = true;
                break;
            }
        }
        self.fingerprint = read_before(file, self.offset);
        Ok(Batch { file: id, lines, seen })
    }
}

/// Up to `FINGERPRINT_BYTES` bytes just before `offset`.
fn read_before(file: &File, offset: u64) -> Vec<u8> {
    let n = (offset as usize).min(FINGERPRINT_BYTES);
    let mut buf = vec![0u8; n];
    match file.read_exact_at(&mut buf, offset - n as u64) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// A file in `path`'s directory with identity `id` (the rotated-away log), if one exists.
fn find_sibling(path: &Path, id: FileId) -> Option<PathBuf> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| id.same_file(&m)))
}

/// The copy a copytruncate left beside `path`: another file whose bytes just before `offset` are
/// the ones we read last.
fn find_copy(path: &Path, id: FileId, offset: u64, fingerprint: &[u8]) -> Option<File> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && !id.same_file(&m) && m.len() >= offset))
        .filter_map(|p| File::open(p).ok())
        .find(|f| read_before(f, offset) == fingerprint)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    fn texts(batches: &[Batch]) -> Vec<String> {
        batches.iter().flat_map(|b| b.lines.iter().map(|l| String::from_utf8_lossy(&l.bytes).into_owned())).collect()
    }

    #[test]
    fn follows_appends_and_holds_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        let mut f = Follower::open(&log, None, 1000);
        assert!(f.poll().unwrap().is_empty(), "no file yet");
        append(&log, "a\nb");
        assert_eq!(texts(&f.poll().unwrap()), ["a"]);
        append(&log, "c\n");
        assert_eq!(texts(&f.poll().unwrap()), ["bc"]);
        assert_eq!(f.position().unwrap().offset, 5);
    }

    #[test]
    fn rename_rotation_drains_the_old_file_before_switching() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        append(&log, "1\n");
        let mut f = Follower::open(&log, None, 1000);
        assert_eq!(texts(&f.poll().unwrap()), ["1"]);
        std::fs::rename(&log, dir.path().join("debug.log.1")).unwrap();
        append(&dir.path().join("debug.log.1"), "2\n");
        append(&log, "");
        // New file empty: the writer has not reopened yet, keep reading the old one.
        assert_eq!(texts(&f.poll().unwrap()), ["2"]);
        append(&dir.path().join("debug.log.1"), "3");
        append(&log, "4\n");
        let batches = f.poll().unwrap();
        assert_eq!(texts(&batches), ["3", "4"]);
        assert_ne!(batches[0].file, batches[1].file);
    }

    #[test]
    fn a_backlog_is_read_over_several_polls_and_drained_before_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        let n = MAX_LINES_PER_POLL * 2 + 5;
        let text: String = (0..n).map(|i| format!("{i}\n")).collect();
        append(&log, &text);
        let mut f = Follower::open(&log, None, 1000);
        let first = texts(&f.poll().unwrap());
        assert!(first.len() >= MAX_LINES_PER_POLL && first.len() < n, "{}", first.len());
        assert!(f.has_backlog());
        // Rotated while the old file still holds a backlog.
        std::fs::rename(&log, dir.path().join("debug.log.1")).unwrap();
        append(&log, "new\n");
        let mut all = first;
        while all.last().map(String::as_str) != Some("new") {
            all.extend(texts(&f.poll().unwrap()));
        }
        assert!(!f.has_backlog());
        let expected: Vec<String> = (0..n).map(|i| i.to_string()).chain(["new".to_owned()]).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn copytruncate_reads_the_copy_then_the_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        append(&log, "one\n");
        let mut f = Follower::open(&log, None, 1000);
        assert_eq!(texts(&f.poll().unwrap()), ["one"]);
        append(&log, "two\n");
        std::fs::copy(&log, dir.path().join("debug.log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        append(&log, "three-is-longer\n");
        let batches = f.poll().unwrap();
        assert_eq!(texts(&batches), ["two", "three-is-longer"]);
        assert_eq!(batches[1].file.generation, batches[0].file.generation + 1);
        assert_eq!(batches[1].lines[0].start, 0);
    }

    #[test]
    fn resumes_at_a_position_and_finds_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("debug.log");
        append(&log, "a\nb\n");
        let mut f = Follower::open(&log, None, 1000);
        f.poll().unwrap();
        let pos = Position { file: f.position().unwrap().file, offset: 2 };
        drop(f);
        std::fs::rename(&log, dir.path().join("old.log")).unwrap();
        append(&log, "c\n");
        let mut f = Follower::open(&log, Some(pos), 1000);
        assert_eq!(texts(&f.poll().unwrap()), ["b", "c"]);
    }
}
