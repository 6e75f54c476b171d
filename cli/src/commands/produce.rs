//! `bmon produce --config node.toml`: the producer beside one node (also built alone as the slim
//! `bmon-producer` binary).

use std::path::PathBuf;

use anyhow::Context;
use bmon_producer::ProducerConfig;
use bmon_producer::service::run_service;
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
    run_service(&config).context("producer")
}
