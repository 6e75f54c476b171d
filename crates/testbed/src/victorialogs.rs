//! VictoriaLogs (built by `scripts/install-victorialogs.sh`): it takes Loki's push API at
//! `/insert/loki/api/v1/push` and answers LogsQL at `/select/logsql/query`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Managed, TestbedError, poll_until};

/// A running VictoriaLogs server; stop and start it again on the same data to make an outage.
#[derive(Debug)]
pub struct VictoriaLogs {
    port: u16,
    dir: PathBuf,
    binary: PathBuf,
    pid_dir: PathBuf,
    extra: Vec<String>,
    process: Option<Managed>,
}

impl VictoriaLogs {
    /// Starts it on `port` with data in `dir` and `extra` flags; waits until `/health` answers.
    pub(crate) fn start(
        binary: PathBuf,
        dir: &Path,
        port: u16,
        pid_dir: &Path,
        extra: &[&str],
    ) -> Result<VictoriaLogs, TestbedError> {
        std::fs::create_dir_all(dir).map_err(TestbedError::io(format!("create {}", dir.display())))?;
        let mut v = VictoriaLogs {
            port,
            dir: dir.to_owned(),
            binary,
            pid_dir: pid_dir.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            process: None,
        };
        v.launch()?;
        Ok(v)
    }

    fn launch(&mut self) -> Result<(), TestbedError> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.dir.join("data").display()))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=WARN")
            .args(&self.extra)
            .current_dir(&self.dir);
        let mut process = Managed::spawn("victoria-logs", cmd, &self.pid_dir, &self.dir.join("victoria-logs.log"))?;
        let url = format!("{}/health", self.url());
        poll_until("victoria-logs /health", Duration::from_secs(60), Duration::from_millis(100), || {
            if process.check_alive().is_err() {
                return Some(());
            }
            minreq::get(&url).with_timeout(2).send().ok().filter(|r| r.status_code == 200).map(|_| ())
        })?;
        process.check_alive()?;
        self.process = Some(process);
        Ok(())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Loki push path it serves.
    pub fn push_path(&self) -> &'static str {
        "/insert/loki/api/v1/push"
    }

    /// Stops it (SIGTERM; it flushes what it holds).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) -> Result<(), TestbedError> {
        self.stop();
        self.launch()
    }

    /// Every entry a LogsQL query finds (JSON objects: `_msg`, `_time`, `_stream`, fields).
    /// Entries show a second or so after they were pushed (an in-memory flush): poll.
    pub fn query(&self, logsql: &str) -> Result<Vec<Value>, TestbedError> {
        let url = format!("{}/select/logsql/query", self.url());
        let body = format!("query={}&limit=0", urlencode(logsql));
        let r = minreq::post(&url)
            .with_header("Content-Type", "application/x-www-form-urlencoded")
            .with_body(body)
            .with_timeout(60)
            .send()
            .map_err(|e| TestbedError::Rpc {
                node: "victoria-logs".into(),
                method: "logsql".into(),
                message: e.to_string(),
            })?;
        if r.status_code != 200 {
            return Err(TestbedError::Rpc {
                node: "victoria-logs".into(),
                method: "logsql".into(),
                message: format!("HTTP {}: {}", r.status_code, r.as_str().unwrap_or_default()),
            });
        }
        let text = r.as_str().map_err(|e| TestbedError::Rpc {
            node: "victoria-logs".into(),
            method: "logsql".into(),
            message: e.to_string(),
        })?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| TestbedError::Rpc {
                    node: "victoria-logs".into(),
                    method: "logsql".into(),
                    message: format!("{e}: {l}"),
                })
            })
            .collect()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
