//! What every bmon process serves: the Prometheus recorder with explicit histogram buckets (the
//! exporter renders summaries otherwise), and `/metrics`, `/healthz` and `/readyz` on one axum
//! listener with graceful shutdown.

pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::sync::watch;

/// Buckets for sub-second latencies, seconds.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A Prometheus builder with explicit buckets: every metric ending in `_seconds` gets
/// [`LATENCY_BUCKETS`] unless `buckets` names it (by full name) with buckets of its own.
fn builder(buckets: &[(&str, &[f64])]) -> Result<PrometheusBuilder, String> {
    let mut builder = PrometheusBuilder::new();
    for (name, b) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), b).map_err(|e| e.to_string())?;
    }
    builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS).map_err(|e| e.to_string())
}

/// Installs the global Prometheus recorder, with `buckets` as in [`local_recorder`].
pub fn install_recorder(buckets: &[(&str, &[f64])]) -> Result<PrometheusHandle, String> {
    builder(buckets)?.install_recorder().map_err(|e| e.to_string())
}

/// A recorder of its own, not installed globally (for `metrics::with_local_recorder`: a replay
/// inside a live process never touches the live metrics). Explicit buckets as the global one.
pub fn local_recorder(buckets: &[(&str, &[f64])]) -> Result<PrometheusRecorder, String> {
    Ok(builder(buckets)?.build_recorder())
}

/// A probe: whether the process is ready (`/readyz`) or alive (`/healthz`). It must answer at
/// once (read atomics; never wait on a broker), so the listener answers during any outage.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// The two probes the listener answers.
#[derive(Clone)]
pub struct Probes {
    /// `/healthz`: false when the process is stuck (Kubernetes then restarts it).
    pub live: Readiness,
    /// `/readyz`: false until the process does its work (restored state, joined its group).
    pub ready: Readiness,
}

impl Probes {
    /// Probes with `ready`, and a `/healthz` that answers "ok" while the listener runs.
    pub fn ready_only(ready: Readiness) -> Probes {
        Probes { live: Arc::new(|| true), ready }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    probes: Probes,
}

fn answer(ok: bool, yes: &'static str, no: &'static str) -> (StatusCode, &'static str) {
    if ok { (StatusCode::OK, yes) } else { (StatusCode::SERVICE_UNAVAILABLE, no) }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    probes: Probes,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|State(s): State<AppState>| async move { s.metrics.render() }))
        .route("/healthz", get(|State(s): State<AppState>| async move { answer((s.probes.live)(), "ok", "stalled") }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move { answer((s.probes.ready)(), "ready", "not ready") }),
        )
        .with_state(AppState { metrics, probes });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

/// Logs to stderr at `RUST_LOG` (default `info`), in colour only on a terminal. Every bmon binary
/// calls it first.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Ends the process (exit status 0) `after` the shutdown signal, whatever still runs: a broker
/// client that waits on close for an unreachable broker must not hold the exit. Call it only
/// where everything unacknowledged is recovered on the next start (bmon stores offsets, spool
/// heads and log checkpoints only after acknowledgement).
pub fn exit_after_shutdown(mut shutdown: watch::Receiver<bool>, after: std::time::Duration) {
    tokio::spawn(async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
        tokio::time::sleep(after).await;
        tracing::warn!(
            ?after,
            "shutdown took too long; exiting (what was not acknowledged is sent again on the next start)"
        );
        std::process::exit(0);
    });
}

/// A receiver that turns true on SIGTERM or SIGINT (the first one logs "shutting down"). Call it
/// inside a tokio runtime.
pub fn shutdown_on_signals() -> std::io::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    Ok(rx)
}
