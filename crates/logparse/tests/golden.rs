//! Golden tests: every log in `tests/fixtures` parses to the reviewed events in
//! `tests/fixtures/golden/<fixture>.events.jsonl`. `BMON_BLESS=1` rewrites them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use bmon_logparse::{Parser, detect, event_json, kind};
use bmon_schemas::{EventBody, NodeImplementation};

fn fixtures() -> PathBuf {
    // At run time: a test binary cached from another checkout must read this one's files.
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../tests/fixtures")
}

fn expected_implementation(name: &str) -> NodeImplementation {
    match name.split('-').next() {
        Some("bsv") => NodeImplementation::Bsv,
        Some("litecoin") => NodeImplementation::Litecoin,
        _ => NodeImplementation::Core,
    }
}

/// Typed events as JSON lines, then the unknown-line count per category.
fn render(text: &str, implementation: NodeImplementation) -> String {
    let parser = Parser::new(implementation);
    let mut out = String::new();
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    let mut events = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        events.clear();
        let header = parser.parse_line(line, &mut events);
        for e in &events {
            if let EventBody::Unknown(u) = e {
                *unknown.entry(u.category.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
                continue;
            }
            out.push_str(&event_json(i as u64 + 1, &header, e).to_string());
            out.push('\n');
        }
    }
    out.push_str(&serde_json::json!({ "kind": "unknown_by_category", "counts": unknown }).to_string());
    out.push('\n');
    out
}

/// Every `.log` fixture: (file name, text with invalid UTF-8 replaced).
fn fixture_logs() -> Vec<(String, String)> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        logs.push((name, String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()));
    }
    logs.sort();
    logs
}

#[test]
fn every_fixture_matches_its_golden_events() {
    let bless = std::env::var_os("BMON_BLESS").is_some();
    let golden_dir = fixtures().join("golden");
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, text) in fixture_logs() {
        let implementation = expected_implementation(&name);
        assert_eq!(detect(text.lines().take(5000)), implementation, "{name}: implementation detection");
        let got = render(&text, implementation);
        let golden = golden_dir.join(format!("{name}.events.jsonl"));
        if bless {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&golden, &got).unwrap();
        } else {
            let want = std::fs::read_to_string(&golden).unwrap_or_default();
            if want != got {
                let first = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
                failures.push(format!(
                    "{name}: differs from {} at event {first}:\n want {}\n  got {}",
                    golden.display(),
                    want.lines().nth(first).unwrap_or("<none>"),
                    got.lines().nth(first).unwrap_or("<none>")
                ));
            }
        }
        checked += 1;
    }
    assert!(checked >= 11, "only {checked} fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every kind the parser can produce appears in at least one fixture (so each is golden-tested
/// against a real line), except the download timeout, which the shared fixtures do not contain.
#[test]
fn fixtures_cover_every_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, text) in fixture_logs() {
        let parser = Parser::new(expected_implementation(&name));
        let mut events = Vec::new();
        for line in text.lines() {
            parser.parse_line(line, &mut events);
        }
        seen.extend(events.iter().map(kind));
    }
    for k in [
        "update_tip",
        "header_seen",
        "block_received",
        "compact_block_reconstructed",
        "connect_block_timings",
        "block_connected",
        "block_disconnected",
        "invalid_block",
        "mempool_accept",
        "mempool_reject",
        "peer_connected",
        "peer_disconnected",
        "node_start",
        "unknown",
    ] {
        assert!(seen.contains(k), "no fixture produces {k}");
    }
}
