//! `bmon topology check|apply`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bmon_kafka::{ClientSettings, apply_topology};
use bmon_topology::Topology;
use clap::{Args, Subcommand};

/// Topology subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCmd {
    /// Validate topology.yaml: shape, cross-references and schema files.
    Check(FileArg),
    /// Create missing topics on the brokers; report differing ones; never delete.
    Apply(ApplyArgs),
}

/// The topology file to read.
#[derive(Debug, Args)]
pub struct FileArg {
    /// Path of topology.yaml.
    #[arg(long, short, default_value = "topology.yaml", env = "BMON_TOPOLOGY")]
    file: PathBuf,
}

/// Arguments of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    file: FileArg,
    /// Bootstrap brokers, host:port[,host:port].
    #[arg(long, env = "BMON_BROKERS")]
    brokers: String,
    /// Replication factor for topics that do not declare one.
    #[arg(long, default_value_t = 3)]
    replication_factor: i16,
    /// How long to wait for each broker request.
    #[arg(long, default_value = "30", value_name = "SECONDS")]
    timeout: u64,
    /// Exit non-zero when an existing topic differs from the declaration.
    #[arg(long)]
    strict: bool,
}

/// Runs a topology subcommand.
pub fn run(cmd: TopologyCmd) -> anyhow::Result<()> {
    match cmd {
        TopologyCmd::Check(args) => {
            let t = Topology::load(&args.file)?;
            println!(
                "{}: ok ({} topics, {} processors, {} state stores)",
                args.file.display(),
                t.topics.len(),
                t.processors.len(),
                t.processors.iter().map(|p| p.state_stores.len()).sum::<usize>()
            );
            Ok(())
        }
        TopologyCmd::Apply(args) => apply(args),
    }
}

fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let topology = Topology::load(&args.file.file)?;
    let settings = ClientSettings::plaintext(&args.brokers);
    let runtime = tokio::runtime::Runtime::new().context("start async runtime")?;
    let report = runtime
        .block_on(apply_topology(&topology, &settings, args.replication_factor, Duration::from_secs(args.timeout)))
        .with_context(|| format!("apply topology to {}", args.brokers))?;
    let plan = &report.plan;
    for name in &plan.create {
        println!("created   {name}");
    }
    for name in &plan.unchanged {
        println!("ok        {name}");
    }
    for name in &plan.unchecked {
        println!("unchecked {name} (the broker did not describe its configs)");
    }
    for d in &plan.differ {
        println!("differs   {}: {} declared {} but is {}", d.topic, d.setting, d.declared, d.actual);
    }
    if args.strict && !plan.differ.is_empty() {
        bail!("{} setting(s) differ from topology.yaml", plan.differ.len());
    }
    Ok(())
}
