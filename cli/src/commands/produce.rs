//! `bmon produce --config node.toml`: the producer beside one node.

use std::path::PathBuf;

use anyhow::Context;
use bmon_producer::ProducerConfig;
use bmon_producer::run::run_producer;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The node's producer config (TOML).
    #[arg(long, short)]
    config: PathBuf,
}

/// Runs the producer until SIGTERM or SIGINT, then flushes and exits 0.
pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let config = ProducerConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("start async runtime")?;
    runtime.block_on(async {
        let (tx, rx) = watch::channel(false);
        let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        run_producer(&config, rx).await.context("producer")
    })
}
