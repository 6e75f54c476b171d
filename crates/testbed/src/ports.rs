//! Blocks of loopback ports claimed under a file lock, so concurrent runs never collide.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::{TestbedError, stop_pid_files};

/// Ports in one block: enough for a broker, tools and a dozen nodes (p2p, rpc, zmq each).
pub const BLOCK_SIZE: u16 = 100;
const DEFAULT_RANGE: (u16, u16) = (20000, 29999);

/// A claimed block of ports `[start, start + BLOCK_SIZE)`, plus a working directory that belongs
/// to it. Held until dropped; the lock dies with the process, so a crashed owner frees it.
#[derive(Debug)]
pub struct PortBlock {
    start: u16,
    dir: PathBuf,
    _lock: File,
}

impl PortBlock {
    /// Claims the first free block in `$BMON_PORT_RANGE` (`lo-hi`, default 20000-29999).
    ///
    /// Before a block is reused, processes recorded in its directory's PID files by an earlier
    /// owner that died without cleaning up are stopped, and the directory is emptied.
    pub fn acquire(state_root: &Path) -> Result<PortBlock, TestbedError> {
        let range = std::env::var("BMON_PORT_RANGE")
            .ok()
            .and_then(|r| {
                let (lo, hi) = r.split_once('-')?;
                Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
            })
            .unwrap_or(DEFAULT_RANGE);
        // Locks are machine-wide (not per cache), so runs with different caches cannot collide.
        let locks = std::env::temp_dir().join("bmon-ports");
        let dirs = state_root.join("ports");
        for d in [&locks, &dirs] {
            std::fs::create_dir_all(d).map_err(TestbedError::io(format!("create {}", d.display())))?;
        }
        let mut start = range.0;
        while u32::from(start) + u32::from(BLOCK_SIZE) - 1 <= u32::from(range.1) {
            if let Some(block) = Self::try_claim(&locks, &dirs, start)? {
                return Ok(block);
            }
            start += BLOCK_SIZE;
        }
        Err(TestbedError::NoPorts { range, size: BLOCK_SIZE })
    }

    fn try_claim(locks: &Path, dirs: &Path, start: u16) -> Result<Option<PortBlock>, TestbedError> {
        let path = locks.join(format!("{start}.lock"));
        let file = File::create(&path).map_err(TestbedError::io(format!("open {}", path.display())))?;
        if file.try_lock().is_err() {
            return Ok(None);
        }
        let dir = dirs.join(format!("{start}.d"));
        // A previous owner died without cleaning up: stop what it recorded, then start afresh.
        stop_pid_files(&dir.join("pids"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(TestbedError::io(format!("clean {}", dir.display())))?;
        }
        // Ports held by something outside our control make the block unusable.
        let all_free = (start..start + BLOCK_SIZE).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if !all_free {
            return Ok(None);
        }
        std::fs::create_dir_all(dir.join("pids")).map_err(TestbedError::io(format!("create {}", dir.display())))?;
        Ok(Some(PortBlock { start, dir, _lock: file }))
    }

    /// The `i`th port of the block.
    ///
    /// # Panics
    /// If `i >= BLOCK_SIZE`: a programming error in the caller's port plan.
    pub fn port(&self, i: u16) -> u16 {
        assert!(i < BLOCK_SIZE, "port index {i} outside the block");
        self.start + i
    }

    /// The block's working directory (data dirs, logs, PID files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where PID files of processes started in this block go.
    pub fn pid_dir(&self) -> PathBuf {
        self.dir.join("pids")
    }
}
