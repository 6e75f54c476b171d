//! Child processes recorded in PID files and stopped by PID.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{TestbedError, poll_until};

/// A started program. Dropping it sends SIGTERM, waits up to 20 s, then SIGKILLs, and removes its
/// PID file.
#[derive(Debug)]
pub struct Managed {
    name: String,
    child: Child,
    pid_file: PathBuf,
    log: PathBuf,
}

impl Managed {
    /// Spawns `cmd` with stdout and stderr appended to `log`, recording its PID in
    /// `pid_dir/<name>.pid`. The child gets a process group of its own, so a Ctrl-C in the
    /// terminal reaches only its owner, which then stops its children in order (processors
    /// before the broker), not all of them at once.
    pub fn spawn(name: &str, mut cmd: Command, pid_dir: &Path, log: &Path) -> Result<Managed, TestbedError> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(TestbedError::io(format!("open log {}", log.display())))?;
        let err = out.try_clone().map_err(TestbedError::io("dup log handle"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(TestbedError::io(format!("spawn {name} ({:?})", cmd.get_program())))?;
        let pid_file = pid_dir.join(format!("{name}.pid"));
        std::fs::write(&pid_file, child.id().to_string())
            .map_err(TestbedError::io(format!("write {}", pid_file.display())))?;
        Ok(Managed { name: name.to_owned(), child, pid_file, log: log.to_owned() })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its combined stdout/stderr log.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// An error if the process has already exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<(), TestbedError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(TestbedError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: tail(&self.log, 20),
            }),
            Err(e) => Err(TestbedError::Io { what: format!("wait for {}", self.name), source: e }),
        }
    }

    /// Sends SIGTERM and waits up to `grace` for the exit; returns the exit status, or `None` if it
    /// had to be killed.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let status = poll_until("exit", grace, Duration::from_millis(50), || self.child.try_wait().ok().flatten()).ok();
        if status.is_none() {
            self.kill_hard();
        }
        let _ = std::fs::remove_file(&self.pid_file);
        status
    }

    /// Sends SIGKILL and reaps the process (a crash, as `kill -9` would do).
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// Stops the process: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = std::fs::remove_file(&self.pid_file);
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let exited = poll_until("exit", grace, Duration::from_millis(50), || {
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_err() {
            tracing::warn!(name = %self.name, "did not exit on SIGTERM; killing");
        }
        self.kill_hard();
    }
}

/// Stops every process in `procs` at once: SIGTERM to all, then waits up to `grace` for all of
/// them together, and SIGKILLs what is left. (One after the other, a dozen processes that each
/// take a second add up.)
pub fn stop_all<'a>(procs: impl IntoIterator<Item = &'a mut Managed>, grace: Duration) {
    let mut procs: Vec<&mut Managed> = procs.into_iter().collect();
    for p in &mut procs {
        if matches!(p.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(p.child.id() as i32), Signal::SIGTERM);
        }
    }
    let _ = poll_until("every process to exit", grace, Duration::from_millis(50), || {
        procs.iter_mut().all(|p| !matches!(p.child.try_wait(), Ok(None))).then_some(())
    });
    for p in procs {
        if matches!(p.child.try_wait(), Ok(None)) {
            tracing::warn!(name = %p.name, "did not exit on SIGTERM; killing");
        }
        p.kill_hard();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(20));
    }
}

/// The last `n` lines of a file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops every process named by a `*.pid` file in `dir` (SIGTERM, then SIGKILL after 10 s) and
/// removes the files. Used to clean up after an owner that died, and by `bmon testbed down`.
pub fn stop_pid_files(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pid") {
            let owner = dir.parent().unwrap_or(dir);
            let pid = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|pid| belongs_to(*pid, owner)) {
                let p = Pid::from_raw(pid);
                if kill(p, Signal::SIGTERM).is_ok() {
                    let gone = poll_until("exit", Duration::from_secs(10), Duration::from_millis(100), || {
                        kill(p, None).is_err().then_some(())
                    });
                    if gone.is_err() {
                        let _ = kill(p, Signal::SIGKILL);
                    }
                    stopped.push(pid as u32);
                }
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    stopped
}

/// Whether `pid` is still one of ours: its working directory or command line lies under `dir`.
/// Guards against signalling an unrelated process that reused a stale PID.
fn belongs_to(pid: i32, dir: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cwd_inside = std::fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
    let dir_text = dir.to_string_lossy();
    let cmdline_mentions = std::fs::read(proc_dir.join("cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(dir_text.as_ref()));
    cwd_inside || cmdline_mentions
}
