//! bmon's test bed: real programs on 127.0.0.1, never mocks.
//!
//! - [`Tools`] finds the binaries the install scripts cached (`make tools`).
//! - [`PortBlock`] claims a block of ports from a range under a file lock, so two test runs on one
//!   machine never collide, and sweeps up processes a crashed earlier owner left behind.
//! - [`Managed`] is a child process recorded in a PID file and stopped by that PID on drop.
//! - [`Broker`] runs tansu with sqlite storage; [`Network`] runs N connected regtest nodes of one
//!   implementation (Bitcoin Core, BSV or Litecoin) and drives them: mine, send, reorg.
//! - [`Prometheus`] (Debian's) scrapes targets on loopback and answers PromQL.
//! - [`VictoriaLogs`] takes Loki's push API and answers LogsQL.
//! - [`TestBed`] ties one port block, one directory, a broker and networks together.

mod bed;
mod blocks;
mod broker;
mod error;
mod network;
mod node;
mod ports;
mod process;
mod prometheus;
mod proxy;
mod tools;
mod victorialogs;
mod wallet;

pub use bed::TestBed;
pub use broker::Broker;
pub use error::TestbedError;
pub use network::{Network, Reorg};
pub use node::{Implementation, Node};
pub use ports::PortBlock;
pub use process::{Managed, stop_all, stop_pid_files};
pub use prometheus::{PromQuery, Prometheus};
pub use proxy::DelayProxy;
pub use tools::Tools;
pub use victorialogs::VictoriaLogs;

/// Polls `f` every `every` until it returns `Some`, or fails with a timeout naming `what`.
pub fn poll_until<T>(
    what: &str,
    timeout: std::time::Duration,
    every: std::time::Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, TestbedError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if std::time::Instant::now() >= deadline {
            return Err(TestbedError::Timeout { what: what.to_owned(), after: timeout });
        }
        std::thread::sleep(every);
    }
}
