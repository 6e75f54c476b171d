//! Prometheus (Debian's package) scraping targets on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Managed, TestbedError, poll_until};

const BINARY: &str = "/usr/bin/prometheus";

/// A running Prometheus server.
#[derive(Debug)]
pub struct Prometheus {
    port: u16,
    _process: Managed,
}

/// The scrape configuration: one job per `(job, host:port)` target, scraped every second.
pub(crate) fn config(self_port: u16, targets: &[(String, String)], rule_files: &[PathBuf]) -> String {
    let mut c = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
    if !rule_files.is_empty() {
        c.push_str("rule_files:\n");
        for f in rule_files {
            c.push_str(&format!("  - {}\n", f.display()));
        }
    }
    c.push_str(&format!(
        "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{self_port}']\n"
    ));
    for (job, target) in targets {
        c.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"));
    }
    c
}

impl Prometheus {
    /// Starts Prometheus on `port` with data in `dir`, scraping `targets` (`(job, host:port)`) and
    /// evaluating `rule_files`; waits for `/-/ready`.
    pub(crate) fn start(
        dir: &Path,
        port: u16,
        targets: &[(String, String)],
        rule_files: &[PathBuf],
        pid_dir: &Path,
    ) -> Result<Prometheus, TestbedError> {
        if !Path::new(BINARY).is_file() {
            return Err(TestbedError::MissingTool { tool: "prometheus", path: BINARY.into() });
        }
        std::fs::create_dir_all(dir).map_err(TestbedError::io(format!("create {}", dir.display())))?;
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config(port, targets, rule_files)).map_err(TestbedError::io("write prometheus.yml"))?;
        let mut cmd = Command::new(BINARY);
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir);
        let mut process = Managed::spawn("prometheus", cmd, pid_dir, &dir.join("prometheus.log"))?;
        let url = format!("http://127.0.0.1:{port}/-/ready");
        poll_until("prometheus /-/ready", Duration::from_secs(60), Duration::from_millis(200), || {
            if process.check_alive().is_err() {
                return Some(());
            }
            minreq::get(&url).with_timeout(2).send().ok().filter(|r| r.status_code == 200).map(|_| ())
        })?;
        process.check_alive()?;
        Ok(Prometheus { port, _process: process })
    }

    /// Base URL, e.g. `http://127.0.0.1:20002`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs an instant PromQL query and returns `data.result`.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, TestbedError> {
        self.client().query(promql)
    }

    /// A query client that does not borrow the bed (for tests that use both).
    pub fn client(&self) -> PromQuery {
        PromQuery { url: self.url() }
    }
}

/// Instant PromQL queries against a bed's Prometheus.
#[derive(Debug, Clone)]
pub struct PromQuery {
    url: String,
}

impl PromQuery {
    /// Runs an instant PromQL query and returns `data.result`.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, TestbedError> {
        let err = |m: String| TestbedError::Rpc { node: "prometheus".into(), method: "query".into(), message: m };
        let resp = minreq::get(format!("{}/api/v1/query", self.url))
            .with_param("query", promql)
            .with_timeout(10)
            .send()
            .map_err(|e| err(e.to_string()))?;
        let body: Value = resp.json().map_err(|e| err(e.to_string()))?;
        if body["status"] != "success" {
            return Err(err(body.to_string()));
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_target_and_rule_file() {
        let c = config(9, &[("bmon".into(), "127.0.0.1:1".into())], &[PathBuf::from("/r.yml")]);
        assert!(c.contains("- /r.yml"));
        assert!(c.contains("job_name: bmon") && c.contains("'127.0.0.1:1'"));
        assert!(c.contains("'127.0.0.1:9'"));
    }
}
