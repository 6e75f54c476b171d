//! Metric names, readiness, and the producer's use of the shared `/metrics`, `/healthz`, `/readyz`
//! listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
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
/// Facts not published: the spool was full, or the broker refuses them for good (too large or
/// invalid), by source (counter).
pub const DROPPED: &str = "bmon_producer_dropped_total";
/// Spooled facts whose delivery failed, by source (counter); they stay spooled and are sent again.
pub const DELIVERY_FAILURES: &str = "bmon_producer_delivery_failures_total";
/// Facts spooled and not yet acknowledged by the broker (gauge): the spool depth.
pub const QUEUED: &str = "bmon_producer_queued_facts";
/// Age of the oldest spooled fact, seconds (gauge).
pub const SPOOL_AGE: &str = "bmon_producer_spool_age_seconds";
/// RPC calls, by method and outcome (counter).
pub const RPC_CALLS: &str = "bmon_producer_rpc_calls_total";
/// RPC call duration (histogram).
pub const RPC_SECONDS: &str = "bmon_producer_rpc_call_seconds";

/// Installs the global Prometheus recorder with explicit histogram buckets.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    bmon_service::install_recorder(&[])
}

/// Readiness of each source: set once it has reached the broker (and, for RPC, the node).
#[derive(Debug, Default)]
pub struct Health {
    /// Log source following and publishing (its resume position recovered from the broker).
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

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    bmon_service::serve(addr, metrics, bmon_service::Probes::ready_only(Arc::new(move || health.ready())), shutdown)
        .await
}
