//! `bmon produce --config node.toml`: the producer beside one node.

use std::path::PathBuf;

use anyhow::Context;
use bmon_producer::ProducerConfig;
use std::sync::Arc;

use bmon_producer::run::run_producer;
use bmon_producer::telemetry::{Health, install_recorder, serve};
use clap::Args;

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
        let rx = super::shutdown_on_signals()?;
        let metrics = install_recorder().map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
        let health = Arc::new(Health {
            configured: (config.log.is_some(), config.zmq.is_some(), config.rpc.is_some()),
            ..Health::default()
        });
        let listen = config.service.listen;
        let server = tokio::spawn(serve(listen, metrics, Arc::clone(&health), rx.clone()));
        tracing::info!(%listen, "serving /metrics, /healthz, /readyz");
        let result = run_producer(&config, health, rx).await.context("producer");
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, %listen, "metrics listener failed"),
            Err(e) => tracing::error!(error = %e, "metrics listener panicked"),
            Ok(Ok(())) => {}
        }
        result
    })
}
