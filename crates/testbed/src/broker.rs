//! The tansu Kafka-protocol broker with sqlite storage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Managed, TestbedError, Tools, poll_until};

/// A running tansu broker on 127.0.0.1.
#[derive(Debug)]
pub struct Broker {
    port: u16,
    dir: PathBuf,
    tansu: PathBuf,
    process: Option<Managed>,
    pid_dir: PathBuf,
    maintenance: Option<Duration>,
}

impl Broker {
    /// Starts tansu in `dir` (its sqlite file lives there) and waits until it answers.
    /// `maintenance` is how often it applies retention (`retention.ms`) and compaction; tansu's
    /// own default is every 10 minutes.
    pub(crate) fn start(
        tools: &Tools,
        dir: &Path,
        port: u16,
        pid_dir: &Path,
        maintenance: Option<Duration>,
    ) -> Result<Broker, TestbedError> {
        let tansu = tools.tansu()?;
        std::fs::create_dir_all(dir).map_err(TestbedError::io(format!("create {}", dir.display())))?;
        let mut broker =
            Broker { port, dir: dir.to_owned(), tansu, process: None, pid_dir: pid_dir.to_owned(), maintenance };
        broker.launch()?;
        Ok(broker)
    }

    fn launch(&mut self) -> Result<(), TestbedError> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let storage = match self.maintenance {
            Some(every) => format!("sqlite://tansu.db?maintenance_interval={}ms", every.as_millis()),
            None => "sqlite://tansu.db".to_owned(),
        };
        let mut cmd = Command::new(&self.tansu);
        cmd.arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &storage])
            .env("RUST_LOG", "warn")
            .current_dir(&self.dir);
        let mut process = Managed::spawn("tansu", cmd, &self.pid_dir, &self.dir.join("tansu.log"))?;
        let tansu = self.tansu.clone();
        // Some(()) also when tansu died: the check below reports that with its log.
        poll_until("tansu to answer `topic list`", Duration::from_secs(60), Duration::from_millis(200), || {
            if process.check_alive().is_err() {
                return Some(());
            }
            let ok = Command::new("timeout")
                .args(["2", &tansu.to_string_lossy(), "topic", "list", "--broker", &url])
                .output()
                .is_ok_and(|o| o.status.success());
            ok.then_some(())
        })?;
        process.check_alive()?;
        self.process = Some(process);
        Ok(())
    }

    /// `host:port` for Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Kills the broker at once (SIGKILL), as a crash would: nothing in flight is answered or
    /// drained first, as it would be on a graceful stop. [`Broker::restart`] starts it again.
    /// (A SIGSTOP pause is no substitute here: tansu 0.6.0 stops answering for good after one.)
    pub fn crash(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill_hard();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) -> Result<(), TestbedError> {
        self.stop();
        self.launch()
    }
}
