//! The producer's `/healthz`, `/readyz` and `/metrics`, and its clean exit on SIGTERM, run as the
//! slim `bmon-producer` binary that is deployed beside each node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_testbed::{Implementation, TestBed, poll_until};
use common::*;

use common::http_get as get;

/// The value of the first sample of `name` whose labels contain `labels`.
fn sample(body: &str, name: &str, labels: &str) -> Option<f64> {
    body.lines().filter(|l| l.starts_with(name) && l.contains(labels)).find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn health_readiness_metrics_and_sigterm() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 1).unwrap();
    let node = bed.network(net).node(0);
    let port = bed.service_port(5);
    let sources = format!(
        "[log]\npath = \"{}\"\npoll_ms = 50\n[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 1\n[service]\nlisten = \"127.0.0.1:{port}\"\n",
        node.log_path().display(),
        node.rpc_url(),
        node.cookie_path().display()
    );
    let mut producer =
        start_producer_bin(&[env!("CARGO_BIN_EXE_bmon-producer")], &bed, "core-0", "core", &sources, &brokers);
    let base = format!("http://127.0.0.1:{port}");
    poll_until("/healthz", Duration::from_secs(30), Duration::from_millis(100), || {
        get(&format!("{base}/healthz")).filter(|(c, _)| *c == 200)
    })
    .unwrap();
    poll_until("/readyz", Duration::from_secs(60), Duration::from_millis(100), || {
        get(&format!("{base}/readyz")).filter(|(c, _)| *c == 200)
    })
    .unwrap();
    bed.network(net).mine(0, 2).unwrap();
    let metrics = poll_until("log and RPC metrics", Duration::from_secs(60), Duration::from_millis(200), || {
        let (_, body) = get(&format!("{base}/metrics"))?;
        let lines = sample(&body, "bmon_producer_log_lines_total", "")?;
        let rpc = sample(&body, "bmon_producer_rpc_calls_total", "method=\"getchaintips\",outcome=\"ok\"")?;
        (lines > 0.0 && rpc >= 2.0).then_some(body)
    })
    .unwrap();
    // Histograms render with the explicit buckets, not as summaries.
    assert!(metrics.contains("bmon_producer_rpc_call_seconds_bucket{"), "{metrics}");
    assert!(metrics.contains("le=\"0.005\""));
    // SIGTERM: flush and exit 0.
    let status = producer.terminate(Duration::from_secs(30)).expect("exited within 30 s");
    assert!(status.success(), "exit status {status}");
}
