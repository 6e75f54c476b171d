//! The producer as a process: one async thread, signal handling, the metrics listener, and the
//! sources until SIGTERM. Shared by `bmon produce` and the slim `bmon-producer` binary.

use std::sync::Arc;

use crate::ProducerConfig;
use crate::publish::PublishError;
use crate::run::run_producer;
use crate::telemetry::{Health, install_recorder, serve};

/// Why the producer process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The async runtime or the signal handlers could not be set up.
    #[error("start-up: {0}")]
    Startup(#[source] std::io::Error),
    /// The metrics recorder could not be installed.
    #[error("metrics recorder: {0}")]
    Recorder(String),
    /// A source failed for good.
    #[error("producer: {0}")]
    Producer(#[from] PublishError),
}

/// How long after SIGTERM the process may take to flush before it exits regardless. The sources
/// give up waiting for the broker before it ([`crate::run`]); what was not acknowledged is
/// re-read from the log or resent from the spool on the next start.
pub const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(4);

/// Runs the producer for `config` until SIGTERM or SIGINT, then flushes and returns.
pub fn run_service(config: &ProducerConfig) -> Result<(), ServiceError> {
    // One thread runs every async task (the log loop, the drainers, the metrics listener): at a
    // node's fact rates that is plenty, and it saves the cross-thread wake-ups of a pool. The ZMQ
    // and RPC sources block, on threads of their own.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServiceError::Startup)?;
    runtime.block_on(async {
        let rx = bmon_service::shutdown_on_signals().map_err(ServiceError::Startup)?;
        bmon_service::exit_after_shutdown(rx.clone(), SHUTDOWN_LIMIT);
        let metrics = install_recorder().map_err(ServiceError::Recorder)?;
        let health = Arc::new(Health {
            configured: (config.log.is_some(), config.zmq.is_some(), config.rpc.is_some()),
            ..Health::default()
        });
        let listen = config.service.listen;
        let server = tokio::spawn(serve(listen, metrics, Arc::clone(&health), rx.clone()));
        tracing::info!(%listen, "serving /metrics, /healthz, /readyz");
        let result = run_producer(config, health, rx).await;
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, %listen, "metrics listener failed"),
            Err(e) => tracing::error!(error = %e, "metrics listener panicked"),
            Ok(Ok(())) => {}
        }
        Ok(result?)
    })
}
