//! Metric names, the Prometheus recorder, and the `/metrics`, `/healthz`, `/readyz` listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

/// Log lines published (counter).
pub const LOG_LINES: &str = "bmon_producer_log_lines_total";
/// Log bytes consumed (counter).
pub const LOG_BYTES: &str = "bmon_producer_log_bytes_total";
/// Seconds from reading a batch of lines to the broker's acknowledgement (histogram).
pub const LOG_PUBLISH_SECONDS: &str = "bmon_producer_log_publish_seconds";
/// Log publishing failures, each followed by a retry (counter).
pub const LOG_RETRIES: &str = "bmon_producer_log_retries_total";
/// ZMQ messages received, by topic (counter).
pub const ZMQ_MESSAGES: &str = "bmon_producer_zmq_messages_total";
/// ZMQ messages lost according to sequence gaps, by topic (counter).
pub const ZMQ_MISSED: &str = "bmon_producer_zmq_missed_total";
/// ZMQ sequence resets (node restarts) (counter).
pub const ZMQ_RESETS: &str = "bmon_producer_zmq_resets_total";
/// ZMQ bodies that did not fit their topic, published raw, by topic (counter).
pub const ZMQ_UNDECODABLE: &str = "bmon_producer_zmq_undecodable_total";
/// Facts not published because the local queue was full (counter).
pub const DROPPED: &str = "bmon_producer_dropped_total";
/// Facts spooled and not yet acknowledged by the broker (gauge): the spool depth.
pub const QUEUED: &str = "bmon_producer_queued_facts";
/// Age of the oldest spooled fact, seconds (gauge).
pub const SPOOL_AGE: &str = "bmon_producer_spool_age_seconds";
/// RPC calls, by method and outcome (counter).
pub const RPC_CALLS: &str = "bmon_producer_rpc_calls_total";
/// RPC call duration (histogram).
pub const RPC_SECONDS: &str = "bmon_producer_rpc_call_seconds";

/// Buckets for sub-second latencies.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the global Prometheus recorder with explicit histogram buckets.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// Readiness of each source: set once it has reached the broker (and, for RPC, the node).
#[derive(Debug, Default)]
pub struct Health {
    /// Log source following and publishing.
    pub log: AtomicBool,
    /// ZMQ source subscribed and publishing.
    pub zmq: AtomicBool,
    /// RPC source polling.
    pub rpc: AtomicBool,
    /// Which sources are configured: (log, zmq, rpc).
    pub configured: (bool, bool, bool),
}

impl Health {
    /// True when every configured source is ready.
    pub fn ready(&self) -> bool {
        let (l, z, r) = self.configured;
        (!l || self.log.load(Ordering::Relaxed))
            && (!z || self.zmq.load(Ordering::Relaxed))
            && (!r || self.rpc.load(Ordering::Relaxed))
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Arc<Health>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|State(s): State<AppState>| async move { s.metrics.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move {
                if s.health.ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .with_state(AppState { metrics, health });
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
