//! Replay progress, per input topic: bars on a TTY (records read of the total, records/s, ETA),
//! JSON lines on stderr otherwise, one per topic at most once a second.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
enum Mode {
    Bars(MultiProgress, BTreeMap<String, ProgressBar>),
    Json { last: Instant },
}

/// Progress of one replay.
pub struct Progress {
    mode: Mode,
    started: Instant,
    read: BTreeMap<String, u64>,
    totals: BTreeMap<String, u64>,
}

impl Progress {
    /// Progress over `totals` (records to read per topic): bars if stderr is a terminal.
    pub fn new(totals: BTreeMap<String, u64>) -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let style =
                ProgressStyle::with_template("{prefix:>20} {bar:30} {human_pos}/{human_len} {per_sec:>12} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bars = totals
                .iter()
                .map(|(t, n)| {
                    let bar = multi.add(ProgressBar::new(*n).with_style(style.clone()).with_prefix(t.clone()));
                    (t.clone(), bar)
                })
                .collect();
            Mode::Bars(multi, bars)
        } else {
            Mode::Json { last: Instant::now() }
        };
        Progress { mode, started: Instant::now(), read: BTreeMap::new(), totals }
    }

    /// One record of `topic` was read.
    pub fn record(&mut self, topic: &str) {
        match self.read.get_mut(topic) {
            Some(n) => *n += 1,
            None => {
                self.read.insert(topic.to_owned(), 1);
            }
        }
        match &mut self.mode {
            Mode::Bars(_, bars) => {
                if let Some(bar) = bars.get(topic) {
                    bar.inc(1);
                }
            }
            Mode::Json { last } => {
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    self.print_json(false);
                }
            }
        }
    }

    fn print_json(&self, done: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        for (topic, total) in &self.totals {
            let read = self.read.get(topic).copied().unwrap_or(0);
            let rate = read as f64 / secs;
            let eta = if rate > 0.0 { (total.saturating_sub(read)) as f64 / rate } else { f64::NAN };
            let line = serde_json::json!({
                "progress": topic, "read": read, "total": total, "records_per_s": rate.round(),
                "eta_s": if eta.is_finite() { serde_json::json!(eta.round()) } else { serde_json::Value::Null },
                "done": done,
            });
            eprintln!("{line}");
        }
    }

    /// The replay ended (`complete`: every topic was read to its end).
    pub fn finish(self, complete: bool) {
        match self.mode {
            Mode::Bars(multi, bars) => {
                for bar in bars.values() {
                    if complete { bar.finish() } else { bar.abandon() }
                }
                let _ = multi.clear();
            }
            Mode::Json { .. } => self.print_json(true),
        }
    }
}
