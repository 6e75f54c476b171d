//! `bmon-producer --config node.toml`: the producer alone, for the node's side.
//!
//! The same as `bmon produce`, in a binary that links only what a producer needs (no RocksDB, no
//! processors, no test bed), so the process beside each bitcoind stays small.

use std::path::PathBuf;
use std::process::ExitCode;

use bmon_producer::ProducerConfig;
use bmon_producer::service::run_service;
use clap::Parser;

/// Publishes one node's debug.log lines, ZMQ notifications and RPC snapshots to the brokers.
#[derive(Debug, Parser)]
#[command(name = "bmon-producer", version, about)]
struct Args {
    /// The node's producer config (TOML).
    #[arg(long, short)]
    config: PathBuf,
}

fn main() -> ExitCode {
    bmon_service::init_logging();
    let args = Args::parse();
    let result = ProducerConfig::load(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|config| run_service(&config).map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
