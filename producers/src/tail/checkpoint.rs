//! The durable resume position of the log tailer.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::tail::Position;

/// A checkpoint file: the position after the last line the broker acknowledged. Written atomically
/// (temporary file, rename), so a crash leaves the old or the new position, never a torn one. It is
/// not fsynced: on start the producer reads its true position back from the broker, and this file
/// is only the fallback when the broker has nothing from this node, so an OS crash that loses the
/// latest write costs nothing.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// A checkpoint stored at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpoint { path: path.into() }
    }

    /// The stored position; `None` if there is none yet. A corrupt file is reported, not trusted.
    pub fn load(&self) -> std::io::Result<Option<Position>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When the checkpoint was last written, Unix ms (`None` if there is none).
    pub fn written_at_ms(&self) -> Option<i64> {
        let modified = std::fs::metadata(&self.path).ok()?.modified().ok()?;
        modified.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as i64)
    }

    /// Stores `pos` (atomically; see the type's notes on durability).
    pub fn store(&self, pos: &Position) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = match std::fs::File::create(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
                std::fs::File::create(&tmp)?
            }
            other => other?,
        };
        f.write_all(&serde_json::to_vec(pos).map_err(std::io::Error::other)?)?;
        drop(f);
        std::fs::rename(&tmp, &self.path)
    }
}
