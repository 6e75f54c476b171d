//! `bmon metrics list [--json]`: every metric bmon can export, from the components' declarations.

use bmon_service::telemetry::{Component, Kind};
use clap::{Args, Subcommand};

/// `bmon metrics` subcommands.
#[derive(Debug, Subcommand)]
pub enum MetricsCmd {
    /// Print every metric bmon can export: name, type, unit, labels, component and help.
    List(ListArgs),
}

/// Arguments of `bmon metrics list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// One JSON object per metric, one per line.
    #[arg(long)]
    json: bool,
}

/// Every component: the producer, the processors' shared runtime, and each registered processor.
pub fn components() -> Vec<Component> {
    let mut all = vec![bmon_producer::telemetry::COMPONENT];
    all.extend(bmon_processors::registry::telemetry());
    all
}

/// Runs a `bmon metrics` subcommand.
pub fn run(cmd: MetricsCmd) -> anyhow::Result<()> {
    let MetricsCmd::List(args) = cmd;
    for c in components() {
        for m in c.metrics {
            if args.json {
                let mut v = serde_json::to_value(m)?;
                v["component"] = c.name.into();
                println!("{v}");
            } else {
                let kind = match m.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                    Kind::Histogram => "histogram",
                };
                println!("{:<48} {kind:<9} {:<12} {{{}}}  {}", m.name, c.name, m.labels.join(","), m.help);
            }
        }
    }
    Ok(())
}
