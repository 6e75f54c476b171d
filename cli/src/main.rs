//! `bmon`: one command line in front of every bmon component.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// bmon: a Bitcoin network monitor built on a Kafka-style log.
#[derive(Debug, Parser)]
#[command(name = "bmon", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate or apply topology.yaml.
    #[command(subcommand)]
    Topology(commands::topology::TopologyCmd),
    /// Publish one node's facts (debug.log lines) to the brokers.
    Produce(commands::produce::ProduceArgs),
    /// The whole pipeline on the local test bed, printing each block's lag per node.
    Demo(commands::demo::DemoArgs),
    /// List every metric bmon can export.
    #[command(subcommand)]
    Metrics(commands::metrics::MetricsCmd),
    /// Run a stream processor (logparse, propagation, netviews, chain, mempool, loki).
    Process(commands::process::ProcessArgs),
    /// Search every node's log lines (and derived events) straight from the log topic.
    Grep(commands::grep::GrepArgs),
    /// Re-run the processors over a past time range, with a report (HTML, JSON) or a topic.
    Replay(commands::replay::ReplayArgs),
    /// When did each node see this block or transaction?
    Lookup(commands::lookup::LookupArgs),
    /// Parse a node's debug.log into typed events, one JSON object per line.
    ParseLog(commands::parse_log::ParseLogArgs),
    /// Bring the local test bed (broker and regtest nodes) up or down.
    #[command(subcommand)]
    Testbed(commands::testbed::TestbedCmd),
}

fn main() -> ExitCode {
    bmon_service::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topology(cmd) => commands::topology::run(cmd),
        Command::Testbed(cmd) => commands::testbed::run(cmd),
        Command::Produce(args) => commands::produce::run(args),
        Command::ParseLog(args) => commands::parse_log::run(args),
        Command::Process(args) => commands::process::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Metrics(cmd) => commands::metrics::run(cmd),
        Command::Grep(args) => commands::grep::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Lookup(args) => commands::lookup::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
