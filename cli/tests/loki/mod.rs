//! What the Loki tests share: the sink's config, the entries every node's files call for, and
//! what VictoriaLogs holds.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bmon_testbed::VictoriaLogs;

/// One entry as it should be (from the node's file) or is (in VictoriaLogs): stream labels,
/// time in ns (`None` for a line without a timestamp of its own: it takes the producer's
/// receive time, which the file does not show), line.
pub type Key = (BTreeMap<String, String>, Option<i128>, String);

/// The time a line's entry must carry, if the line shows it.
fn line_time(line: &str, ns: i128) -> Option<i128> {
    bmon_logparse::split_line(line).logged_at_us.map(|_| ns)
}

/// The `[loki]` section pushing to `v`.
pub fn section(v: &VictoriaLogs, state: &Path, extra: &str) -> String {
    format!(
        "[loki]\nurl = \"{}\"\npush_path = \"{}\"\nstate_dir = \"{}\"\nbatch_wait_ms = 200\n{extra}",
        v.url(),
        v.push_path(),
        state.display()
    )
}

/// The entries a node's log file calls for: each line with the node's labels and its timestamp
/// (the node's µs, and the line's byte offset modulo 1000 as the ns digits).
pub fn expected(path: &Path, node: &str, network: &str, implementation: &str) -> Vec<Key> {
    let bytes = std::fs::read(path).unwrap();
    let labels: BTreeMap<String, String> =
        [("network", network), ("node", node), ("implementation", implementation), ("source", "log")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    let mut out = Vec::new();
    let mut offset = 0usize;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        if !raw.ends_with(b"\n") {
            break; // still being written: the producer waits for its newline
        }
        let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
        let ts =
            bmon_logparse::split_line(&line).logged_at_us.map(|us| i128::from(us) * 1000 + (offset % 1000) as i128);
        out.push((labels.clone(), ts, line));
        offset += raw.len();
    }
    out
}

/// `2026-12-02T01:07:44.166162038Z` as ns since the epoch.
pub fn parse_time(s: &str) -> i128 {
    let whole = format!("{}Z", &s[..19.min(s.len())]);
    let stamp = bmon_logparse::parse_stamp(whole.as_bytes()).map(|st| st.micros).expect("an RFC 3339 time");
    let secs_us = i128::from(stamp);
    let frac = s.get(20..s.len() - 1).unwrap_or("");
    let ns: i128 = format!("{frac:0<9}")[..9].parse().unwrap_or(0);
    secs_us * 1000 + ns
}

/// The stream labels of a VictoriaLogs entry (its `_stream`, `{a="b",…}`), read back as the
/// sink rendered them.
pub fn stream_labels(entry: &serde_json::Value) -> BTreeMap<String, String> {
    let rendered = entry["_stream"].as_str().unwrap_or_default();
    bmon_processors::loki::push::parse_labels(rendered)
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Every entry VictoriaLogs holds for `query`, as keys.
pub fn held(v: &VictoriaLogs, query: &str) -> Vec<Key> {
    v.query(query)
        .unwrap()
        .iter()
        .map(|e| {
            let mut line = e["_msg"].as_str().unwrap().to_owned();
            // VictoriaLogs stores an empty line (Core logs some at startup) as this placeholder.
            if line.starts_with("missing _msg field; see ") {
                line.clear();
            }
            (stream_labels(e), line_time(&line, parse_time(e["_time"].as_str().unwrap())), line)
        })
        .collect()
}

/// Sorted, for comparing multisets.
pub fn sorted(mut keys: Vec<Key>) -> Vec<Key> {
    keys.sort();
    keys
}

/// Polls until VictoriaLogs holds exactly `want` for `query` (as a multiset) or `timeout`
/// passes; returns what it held last.
pub fn wait_held(v: &VictoriaLogs, query: &str, want: &[Key], timeout: Duration) -> Vec<Key> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let got = sorted(held(v, query));
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500)); // poll interval, not synchronisation
    }
}

/// What differs between two sorted multisets: (missing from `got`, extra in `got`), at most 5
/// of each, for failure messages.
pub fn diff(want: &[Key], got: &[Key]) -> (Vec<Key>, Vec<Key>) {
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                missing.push(a.clone());
                i += 1;
            }
            (Some(_), None) => {
                missing.push(want[i].clone());
                i += 1;
            }
            _ => {
                extra.push(got[j].clone());
                j += 1;
            }
        }
    }
    missing.truncate(5);
    extra.truncate(5);
    (missing, extra)
}
