//! Wake-ups when the followed log changes (Linux inotify), so that a quiet log is read the moment
//! a line lands rather than at the next poll.
//!
//! The watch is only a hint: the follower still reads, detects rotation and truncation by itself,
//! and the caller still re-reads at a fallback interval, so a missed event (a network file
//! system, a full event queue) costs latency, never data.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use futures_util::{FutureExt, StreamExt};
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask};

/// What on the file itself means "read again": appends and truncation (`MODIFY`), and the file
/// being renamed away or deleted (rotation; the path then names a new file).
const FILE_EVENTS: WatchMask =
    WatchMask::MODIFY.union(WatchMask::ATTRIB).union(WatchMask::MOVE_SELF).union(WatchMask::DELETE_SELF);

/// What in the directory means "read again": a file of the followed name appearing there.
const DIR_EVENTS: WatchMask = WatchMask::CREATE.union(WatchMask::MOVED_TO);

/// An inotify watch on a log file and on its directory.
pub struct LogWatch {
    events: EventStream<Vec<u8>>,
    path: PathBuf,
    name: Option<OsString>,
    dir: WatchDescriptor,
    file: Option<WatchDescriptor>,
}

impl LogWatch {
    /// Watches `path` and its directory. Fails where inotify is unavailable or the directory
    /// cannot be watched; the caller then polls. Needs a Tokio runtime with I/O enabled.
    pub fn new(path: &Path) -> io::Result<Self> {
        let inotify = Inotify::init()?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let dir = inotify.watches().add(&parent, DIR_EVENTS)?;
        let mut watch = LogWatch {
            events: inotify.into_event_stream(vec![0; 4096])?,
            path: path.to_owned(),
            name: path.file_name().map(|n| n.to_owned()),
            dir,
            file: None,
        };
        watch.arm();
        Ok(watch)
    }

    /// Watches the file the path names now: after a rotation that is a new file. A missing file
    /// is not an error; the directory watch reports its creation.
    fn arm(&mut self) {
        let mut watches = self.events.watches();
        match watches.add(&self.path, FILE_EVENTS) {
            Ok(wd) => {
                if self.file.as_ref() != Some(&wd)
                    && let Some(old) = self.file.replace(wd)
                {
                    // The old file may be gone, and its watch with it.
                    let _ = watches.remove(old);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::debug!(path = %self.path.display(), error = %e, "cannot watch the log file"),
        }
    }

    /// Forgets the events so far and re-arms the file watch. Call it right before reading the
    /// file: a line written after this call wakes [`LogWatch::changed`].
    pub fn clear(&mut self) {
        self.arm();
        while let Some(Some(Ok(_))) = self.events.next().now_or_never() {}
    }

    /// Waits until the file changes or a file of its name appears in the directory.
    pub async fn changed(&mut self) -> io::Result<()> {
        loop {
            let Some(event) = self.events.next().await else {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "inotify closed"));
            };
            let event = event?;
            let relevant = if event.wd == self.dir {
                event.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                    && event.name.is_some()
                    && event.name == self.name
            } else {
                !event.mask.contains(EventMask::IGNORED)
            };
            if relevant {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Write;
    use std::time::Duration;

    /// True if `changed` returns within `within`.
    async fn wakes(watch: &mut LogWatch, within: Duration) -> bool {
        tokio::time::timeout(within, watch.changed()).await.is_ok_and(|r| r.is_ok())
    }

    #[tokio::test]
    async fn wakes_on_append_truncate_rotate_and_create_but_not_on_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("debug.log");
        std::fs::write(&path, "first\n").unwrap();
        let mut watch = LogWatch::new(&path).unwrap();
        let long = Duration::from_secs(5);
        let short = Duration::from_millis(200);

        watch.clear();
        assert!(!wakes(&mut watch, short).await, "nothing happened yet");

        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"second\n").unwrap();
        assert!(wakes(&mut watch, long).await, "append");

        watch.clear();
        std::fs::write(dir.path().join("peers.dat"), "x").unwrap();
        assert!(!wakes(&mut watch, short).await, "another file in the directory");

        watch.clear();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        assert!(wakes(&mut watch, long).await, "copytruncate");

        watch.clear();
        std::fs::rename(&path, dir.path().join("debug.log.1")).unwrap();
        assert!(wakes(&mut watch, long).await, "rename away");

        watch.clear();
        std::fs::write(&path, "new file\n").unwrap();
        assert!(wakes(&mut watch, long).await, "a new file at the path");

        // The new file is watched after the next clear, and the renamed one no longer is.
        watch.clear();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("debug.log.1"))
            .unwrap()
            .write_all(b"x\n")
            .unwrap();
        assert!(!wakes(&mut watch, short).await, "the rotated-away file");
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"more\n").unwrap();
        assert!(wakes(&mut watch, long).await, "append to the new file");
    }

    #[tokio::test]
    async fn a_missing_file_is_watched_through_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("debug.log");
        let mut watch = LogWatch::new(&path).unwrap();
        watch.clear();
        std::fs::write(&path, "hello\n").unwrap();
        assert!(wakes(&mut watch, Duration::from_secs(5)).await);
    }
}
