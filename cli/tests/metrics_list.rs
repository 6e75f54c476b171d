//! `bmon metrics list` is the catalogue of what bmon exports, and the alert rules use only it.
//!
//! - `--json` gives one object per metric, names unique, each with help, a type and its
//!   component; the runtime's `bmon_processor_outputs_total` is among them.
//! - Every `bmon_…` metric named in the Prometheus rules is declared (histogram series by their
//!   base name).
//! - The table form lists the same names.
//!
//! That every series a running process exports is declared is checked against live `/metrics`
//! in `clock_skew.rs` (producers, logparse and propagation on the bed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn the_catalogue_is_complete_and_the_rules_use_only_declared_metrics() {
    let (ok, out, err) = bmon(&["metrics", "list", "--json"]);
    assert!(ok, "{err}");
    let mut names = BTreeSet::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = v["name"].as_str().unwrap().to_owned();
        assert!(!v["help"].as_str().unwrap().is_empty(), "{name} has no help");
        assert!(["counter", "gauge", "histogram"].contains(&v["kind"].as_str().unwrap()), "{name}: {v}");
        assert!(v["component"].as_str().is_some_and(|c| !c.is_empty()), "{name}: no component");
        assert!(names.insert(name.clone()), "{name} is declared twice");
    }
    assert!(names.contains("bmon_processor_outputs_total"));
    assert!(names.contains("bmon_propagation_spread_seconds"));
    assert!(names.contains("bmon_producer_log_lines_total"));

    let rules = std::fs::read_dir(repo_root().join("prometheus/rules")).unwrap();
    for file in rules.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yml")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for used in metric_names(&text) {
            assert!(names.contains(&used), "{} uses undeclared metric {used}", file.display());
        }
    }

    let (ok, table, _) = bmon(&["metrics", "list"]);
    assert!(ok);
    let listed: BTreeSet<String> =
        table.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    assert_eq!(listed, names);
}

/// Every metric a telemetry module declares is recorded somewhere: its definition is used
/// through one of `MetricDef`'s handle methods (`counter0`, `with_gauge`, …) outside the
/// declaration. A declared metric that nothing records would be listed, charted and alerted on,
/// and never move. (A source scan: error counters cannot all be made to fire in a test run.)
#[test]
fn every_declared_metric_is_recorded() {
    const HANDLES: [&str; 6] =
        ["counter0()", "gauge0()", "histogram0()", "with_counter(", "with_gauge(", "with_histogram("];
    let root = repo_root();
    let mut sources = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                dirs.push(path);
            } else if name.ends_with(".rs") {
                sources.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut declared = Vec::new();
    for (path, text) in sources.iter().filter(|(p, _)| p.ends_with("telemetry.rs")) {
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub static ")
                && let Some((ident, ty)) = rest.split_once(':')
                && ty.trim_start().starts_with("MetricDef")
            {
                declared.push((ident.trim().to_owned(), path.clone()));
            }
        }
    }
    assert!(declared.len() > 20, "found only {} declarations: is the scan looking in the right place?", declared.len());
    let used = |ident: &str| {
        sources.iter().any(|(_, text)| {
            text.match_indices(ident).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = &text[at + ident.len()..];
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && after.trim_start().strip_prefix('.').is_some_and(|m| HANDLES.iter().any(|h| m.starts_with(h)))
            })
        })
    };
    let unused: Vec<String> =
        declared.iter().filter(|(i, _)| !used(i)).map(|(i, p)| format!("{i} ({})", p.display())).collect();
    assert!(unused.is_empty(), "declared but never recorded: {unused:?}");
}
