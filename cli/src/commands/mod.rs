//! One module per subcommand group.

pub mod demo;
pub mod grep;
pub mod lookup;
pub mod metrics;
pub mod parse_log;
pub mod process;
pub mod produce;
pub mod replay;
pub mod scan;
pub mod testbed;
pub mod topology;
pub mod when;

use anyhow::Context;
use tokio::sync::watch;

/// A receiver that turns true on SIGTERM or SIGINT. Call it inside a tokio runtime.
pub fn shutdown_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    bmon_service::shutdown_on_signals().context("install SIGTERM and SIGINT handlers")
}

/// For blocking command loops: a channel that receives once on Ctrl-C (watched by a thread of
/// its own).
pub fn ctrl_c_channel() -> anyhow::Result<std::sync::mpsc::Receiver<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let _ = tx.send(());
    });
    Ok(rx)
}
