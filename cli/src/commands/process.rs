//! `bmon process <logparse|propagation> --config FILE`: run one stream processor.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bmon_processors::config::ProcessorFile;
use bmon_processors::logparse::LogParse;
use bmon_processors::logparse::wiring::LogParseProcessor;
use bmon_processors::runtime::{self, Health, RuntimeConfig};
use bmon_topology::Topology;
use clap::{Args, ValueEnum};

/// Which processor to run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Which {
    /// Facts to node events and observations.
    Logparse,
    /// Observations to propagation summaries, metrics and anomalies.
    Propagation,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Logparse => "logparse",
            Which::Propagation => "propagation",
        }
    }
}

/// Arguments of `bmon process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The processor.
    #[arg(value_enum)]
    which: Which,
    /// Processor config (TOML).
    #[arg(long, short)]
    config: PathBuf,
}

/// The runtime settings for `which`, from topology.yaml and the config file.
fn runtime_config(which: Which, file: &ProcessorFile) -> anyhow::Result<(RuntimeConfig, Duration)> {
    let topology = Topology::load(&file.topology)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("loading {}", file.topology.display()))?;
    let p =
        topology.processor(which.name()).ok_or_else(|| anyhow!("topology.yaml has no processor {}", which.name()))?;
    let window = p
        .state_stores
        .iter()
        .filter_map(|s| s.window.as_ref())
        .filter_map(|w| u64::try_from(w.kafka_ms()).ok().map(Duration::from_millis))
        .max()
        .unwrap_or(Duration::from_secs(600));
    let config = RuntimeConfig {
        kafka: file.kafka.clone(),
        group: file.runtime.group.clone().unwrap_or_else(|| p.consumer_group.clone()),
        inputs: p.inputs.clone(),
        dead_letter: p.dead_letter.clone(),
        session_timeout: file.runtime.session_timeout(),
        max_in_flight: file.runtime.max_in_flight,
        name: which.name(),
        shutdown_grace: file.runtime.shutdown_grace(),
    };
    Ok((config, window))
}

/// Runs the processor until SIGTERM or SIGINT; then drains outputs for at most the shutdown
/// grace, commits what was stored and exits 0. A watchdog ends the process a second after the
/// grace if the broker client still holds it: offsets are stored only after acknowledgement, so
/// whatever was not acknowledged is consumed again by the next start.
pub fn run(args: ProcessArgs) -> anyhow::Result<()> {
    let file = ProcessorFile::load(&args.config)?;
    let (config, window) = runtime_config(args.which, &file)?;
    let rt = tokio::runtime::Runtime::new().context("start async runtime")?;
    rt.block_on(async {
        let rx = super::shutdown_on_signals()?;
        bmon_service::exit_after_shutdown(rx.clone(), config.shutdown_grace + Duration::from_secs(1));
        let buckets = bmon_processors::propagation::metrics_buckets();
        let metrics = bmon_service::install_recorder(&buckets).map_err(|e| anyhow!("metrics recorder: {e}"))?;
        let health = Health::new(file.runtime.stall_timeout());
        let listen = file.service.listen;
        let server = tokio::spawn(bmon_service::serve(listen, metrics, health.probes(), rx.clone()));
        tracing::info!(%listen, processor = config.name, group = %config.group, "serving /metrics, /healthz, /readyz");
        let result = match args.which {
            Which::Logparse => {
                let mut p = LogParseProcessor::new(LogParse::new(file.logparse.clone()), window);
                runtime::run(&config, &mut p, &health, rx).await
            }
            Which::Propagation => {
                let mut p = bmon_processors::propagation::wiring::PropagationProcessor::open(file.propagation.clone())
                    .context("opening propagation state")?;
                runtime::run(&config, &mut p, &health, rx).await
            }
        };
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, %listen, "metrics listener failed"),
            Err(e) => tracing::error!(error = %e, "metrics listener panicked"),
            Ok(Ok(())) => {}
        }
        result.map_err(|e| anyhow!("{}: {e}", config.name))
    })
}
