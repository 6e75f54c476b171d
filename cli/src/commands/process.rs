//! `bmon process NAME --config FILE`: run one stream processor from the registry.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bmon_processors::config::ProcessorFile;
use bmon_processors::registry::{self, BuildContext, Entry};
use bmon_processors::runtime::{self, Health, RuntimeConfig};
use bmon_topology::Topology;
use clap::Args;

/// Arguments of `bmon process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The processor: one of the registry's names (logparse, propagation, …).
    #[arg(value_parser = processor_name)]
    which: String,
    /// Processor config (TOML).
    #[arg(long, short)]
    config: PathBuf,
}

fn processor_name(name: &str) -> Result<String, String> {
    registry::find(name)
        .map(|e| e.name.to_owned())
        .ok_or_else(|| format!("no processor `{name}` (known: {})", registry::names()))
}

/// The runtime settings for `entry`, from topology.yaml and the config file.
fn runtime_config(entry: &Entry, topology: &Topology, file: &ProcessorFile) -> anyhow::Result<RuntimeConfig> {
    let p = topology.processor_named(entry.name)?;
    Ok(RuntimeConfig {
        kafka: file.kafka.clone(),
        group: file.runtime.group.clone().unwrap_or_else(|| p.consumer_group.clone()),
        inputs: p.inputs.clone(),
        dead_letter: p.dead_letter.clone(),
        session_timeout: file.runtime.session_timeout(),
        max_in_flight: file.runtime.max_in_flight,
        name: entry.name,
        shutdown_grace: file.runtime.shutdown_grace(),
    })
}

/// Runs the processor until SIGTERM or SIGINT; then drains outputs for at most the shutdown
/// grace, commits what was stored and exits 0. A watchdog ends the process a second after the
/// grace if the broker client still holds it: offsets are stored only after acknowledgement, so
/// whatever was not acknowledged is consumed again by the next start.
pub fn run(args: ProcessArgs) -> anyhow::Result<()> {
    let entry = registry::find(&args.which).ok_or_else(|| anyhow!("no processor `{}`", args.which))?;
    let file = ProcessorFile::load(&args.config)?;
    let topology = Topology::load(&file.topology)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("loading {}", file.topology.display()))?;
    let config = runtime_config(entry, &topology, &file)?;
    let ctx = BuildContext {
        topology: &topology,
        declared: topology.processor_named(entry.name)?,
        section: file.sections.get(entry.name),
        state_dir: None,
    };
    let mut processor = (entry.build)(&ctx).with_context(|| format!("{}: {}", args.config.display(), entry.name))?;
    let rt = tokio::runtime::Runtime::new().context("start async runtime")?;
    rt.block_on(async {
        let rx = super::shutdown_on_signals()?;
        bmon_service::exit_after_shutdown(rx.clone(), config.shutdown_grace + Duration::from_secs(1));
        let components = [bmon_processors::runtime::telemetry::COMPONENT, entry.telemetry];
        let buckets = bmon_service::telemetry::buckets(&components);
        let metrics = bmon_service::install_recorder(&buckets).map_err(|e| anyhow!("metrics recorder: {e}"))?;
        bmon_service::telemetry::describe(&components);
        let health = Health::new(file.runtime.stall_timeout());
        let listen = file.service.listen;
        let server = tokio::spawn(bmon_service::serve(listen, metrics, health.probes(), rx.clone()));
        tracing::info!(%listen, processor = config.name, group = %config.group, "serving /metrics, /healthz, /readyz");
        let result = runtime::run(&config, &mut processor, &health, rx).await;
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, %listen, "metrics listener failed"),
            Err(e) => tracing::error!(error = %e, "metrics listener panicked"),
            Ok(Ok(())) => {}
        }
        result.map_err(|e| anyhow!("{}: {e}", config.name))
    })
}
