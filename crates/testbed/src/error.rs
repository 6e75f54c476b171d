use std::path::PathBuf;
use std::time::Duration;

/// Why the test bed could not do something.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A tool is not installed where the install scripts put it.
    #[error("{tool} not found at {path}: run `make tools` first")]
    MissingTool {
        /// Tool name.
        tool: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No free block of ports in the configured range.
    #[error("no free block of {size} ports in {range:?}; is another run holding them all?")]
    NoPorts {
        /// The range searched.
        range: (u16, u16),
        /// Block size.
        size: u16,
    },
    /// A started process exited early.
    #[error("{name} exited with {status} during start-up; last log lines:\n{log_tail}")]
    Exited {
        /// Process name.
        name: String,
        /// Exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A node's RPC call failed.
    #[error("{node}: RPC {method} failed: {message}")]
    Rpc {
        /// Node name.
        node: String,
        /// RPC method.
        method: String,
        /// The error.
        message: String,
    },
    /// A condition did not become true in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
}

impl TestbedError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestbedError {
        let what = what.into();
        move |source| TestbedError::Io { what, source }
    }
}
