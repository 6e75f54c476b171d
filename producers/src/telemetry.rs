//! Metric declarations, readiness, and the producer's use of the shared `/metrics`, `/healthz`, `/readyz`
//! listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

pub use bmon_service::telemetry::label;
use bmon_service::telemetry::{Component, LATENCY, MetricDef};

/// Log lines published.
pub static LOG_LINES: MetricDef =
    MetricDef::counter("bmon_producer_log_lines_total", "Log lines published and acknowledged.", &[]);
/// Log bytes consumed.
pub static LOG_BYTES: MetricDef =
    MetricDef::counter("bmon_producer_log_bytes_total", "Log bytes published and acknowledged.", &[]);
/// Seconds from reading a batch of lines to the broker's acknowledgement.
pub static LOG_PUBLISH_SECONDS: MetricDef = MetricDef::histogram(
    "bmon_producer_log_publish_seconds",
    "Time from reading a batch of log lines to the broker's acknowledgement.",
    "seconds",
    &[],
    LATENCY,
);
/// Log publishing failures, each followed by a retry.
pub static LOG_RETRIES: MetricDef = MetricDef::counter(
    "bmon_producer_log_retries_total",
    "Log publishing failures, each followed by a retry from the broker's position.",
    &[],
);
/// ZMQ messages received.
pub static ZMQ_MESSAGES: MetricDef =
    MetricDef::counter("bmon_producer_zmq_messages_total", "ZMQ messages received, by ZMQ topic.", &["topic"]);
/// ZMQ messages lost according to sequence gaps.
pub static ZMQ_MISSED: MetricDef = MetricDef::counter(
    "bmon_producer_zmq_missed_total",
    "ZMQ messages lost according to sequence gaps, by ZMQ topic.",
    &["topic"],
);
/// ZMQ sequence resets (node restarts).
pub static ZMQ_RESETS: MetricDef =
    MetricDef::counter("bmon_producer_zmq_resets_total", "ZMQ sequence resets (node restarts).", &[]);
/// ZMQ bodies that did not fit their topic, published raw.
pub static ZMQ_UNDECODABLE: MetricDef = MetricDef::counter(
    "bmon_producer_zmq_undecodable_total",
    "ZMQ bodies that did not fit their topic, published raw, by ZMQ topic.",
    &["topic"],
);
/// Facts not published.
pub static DROPPED: MetricDef = MetricDef::counter(
    "bmon_producer_dropped_total",
    "Facts not published: the spool was full, or the broker refuses them for good, by source.",
    &["source"],
);
/// Spooled facts whose delivery failed (they stay spooled and are sent again).
pub static DELIVERY_FAILURES: MetricDef = MetricDef::counter(
    "bmon_producer_delivery_failures_total",
    "Spooled facts whose delivery failed (they stay spooled and are sent again), by source.",
    &["source"],
);
/// Facts spooled and not yet acknowledged: the spool depth.
pub static QUEUED: MetricDef = MetricDef::gauge(
    "bmon_producer_queued_facts",
    "Facts spooled and not yet acknowledged by the broker, by source.",
    "",
    &["source"],
);
/// Age of the oldest spooled fact.
pub static SPOOL_AGE: MetricDef = MetricDef::gauge(
    "bmon_producer_spool_age_seconds",
    "Age of the oldest spooled fact, by source.",
    "seconds",
    &["source"],
);
/// RPC calls.
pub static RPC_CALLS: MetricDef =
    MetricDef::counter("bmon_producer_rpc_calls_total", "RPC calls, by method and outcome.", &["method", "outcome"]);
/// RPC call duration.
pub static RPC_SECONDS: MetricDef = MetricDef::histogram(
    "bmon_producer_rpc_call_seconds",
    "RPC call duration, by method.",
    "seconds",
    &["method"],
    LATENCY,
);

/// The producer's metrics.
pub const COMPONENT: Component = Component {
    name: "producer",
    metrics: &[
        &LOG_LINES,
        &LOG_BYTES,
        &LOG_PUBLISH_SECONDS,
        &LOG_RETRIES,
        &ZMQ_MESSAGES,
        &ZMQ_MISSED,
        &ZMQ_RESETS,
        &ZMQ_UNDECODABLE,
        &DROPPED,
        &DELIVERY_FAILURES,
        &QUEUED,
        &SPOOL_AGE,
        &RPC_CALLS,
        &RPC_SECONDS,
    ],
};

/// Installs the global Prometheus recorder with explicit histogram buckets.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    let handle = bmon_service::install_recorder(&bmon_service::telemetry::buckets(&[COMPONENT]))?;
    bmon_service::telemetry::describe(&[COMPONENT]);
    Ok(handle)
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
