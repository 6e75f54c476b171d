//! `bmon process <logparse|propagation> --config FILE`: run one stream processor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use bmon_processors::config::ProcessorFile;
use bmon_processors::logparse::LogParse;
use bmon_processors::logparse::wiring::LogParseProcessor;
use bmon_processors::runtime::{self, RuntimeConfig};
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
    };
    Ok((config, window))
}

/// Runs the processor until SIGTERM or SIGINT; then drains outputs, commits and exits 0.
pub fn run(args: ProcessArgs) -> anyhow::Result<()> {
    let file = ProcessorFile::load(&args.config)?;
    let (config, window) = runtime_config(args.which, &file)?;
    let rt = tokio::runtime::Runtime::new().context("start async runtime")?;
    rt.block_on(async {
        let rx = super::shutdown_on_signals()?;
        let buckets = bmon_processors::propagation::metrics_buckets();
        let metrics = bmon_service::install_recorder(&buckets).map_err(|e| anyhow!("metrics recorder: {e}"))?;
        let ready = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ready);
        let listen = file.service.listen;
        let server =
            tokio::spawn(bmon_service::serve(listen, metrics, Arc::new(move || r.load(Ordering::Relaxed)), rx.clone()));
        tracing::info!(%listen, processor = config.name, group = %config.group, "serving /metrics, /healthz, /readyz");
        ready.store(true, Ordering::Relaxed);
        let result = match args.which {
            Which::Logparse => {
                let mut p = LogParseProcessor::new(LogParse::new(file.logparse.clone()), window);
                runtime::run(&config, &mut p, rx).await
            }
            Which::Propagation => {
                let mut p = bmon_processors::propagation::wiring::PropagationProcessor::open(file.propagation.clone())
                    .context("opening propagation state")?;
                runtime::run(&config, &mut p, rx).await
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
