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
