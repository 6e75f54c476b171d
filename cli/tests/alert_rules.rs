#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
//! The Prometheus alert rules in prometheus/rules: `promtool check rules` accepts them, their
//! `promtool test rules` unit tests pass, and every alert has a firing and a quiet test case.

use std::path::PathBuf;
use std::process::Command;

/// Each rules file, its unit tests, and the alerts it must define.
const FILES: &[(&str, &str, &[&str])] = &[
    (
        "propagation.rules.yml",
        "propagation.rules.test.yml",
        &["BmonPropagationSpreadAnomalous", "BmonNodeLagging", "BmonNodeMissingFromWindows", "BmonNodeClockOffset"],
    ),
    (
        "chain.rules.yml",
        "chain.rules.test.yml",
        &[
            "BmonChainReorg",
            "BmonChainDeepReorg",
            "BmonChainSelfishMiningSuspect",
            "BmonChainStaleTip",
            "BmonChainNetworkStaleTip",
            "BmonChainInvalidBlock",
            "BmonChainNodeBehind",
            "BmonChainSplit",
            "BmonChainInflation",
            "BmonChainSlowBlockConnect",
        ],
    ),
    (
        "mempool.rules.yml",
        "mempool.rules.test.yml",
        &[
            "BmonMempoolRejectionSpike",
            "BmonMempoolPolicyDivergence",
            "BmonMempoolEmpty",
            "BmonMempoolDivergence",
            "BmonTemplateDivergence",
        ],
    ),
    ("loki.rules.yml", "loki.rules.test.yml", &["BmonLokiStalled", "BmonLokiRefusedEntries"]),
];

fn rules_dir() -> PathBuf {
    // At run time: a test binary cached from another checkout must read this one's files.
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("../prometheus/rules")
}

fn read(name: &str) -> String {
    let path = rules_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs `promtool args` in the rules directory (`PROMTOOL` if set, else `promtool` on PATH) and
/// asserts it succeeds.
fn promtool(args: &[&str]) {
    let bin = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let out = Command::new(&bin).args(args).current_dir(rules_dir()).output().unwrap_or_else(|e| {
        panic!("cannot run {bin:?} ({e}): run `make tools` (installs Debian's prometheus package) or set PROMTOOL")
    });
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_rules() {
    for (rules, _, _) in FILES {
        promtool(&["check", "rules", rules]);
    }
}

#[test]
fn promtool_unit_tests_pass() {
    for (_, tests, _) in FILES {
        promtool(&["test", "rules", tests]);
    }
}

#[test]
fn every_alert_is_defined() {
    for (file, _, alerts) in FILES {
        let rules = read(file);
        for name in *alerts {
            assert!(rules.lines().any(|l| l.trim() == format!("- alert: {name}")), "{file} lacks alert {name}");
        }
    }
}

/// Splits the unit tests into cases (from one `alertname:` to the next) and records, per case,
/// whether it expects no alert (`exp_alerts: []`) or some (`exp_labels:`).
#[test]
fn every_alert_has_firing_and_quiet_cases() {
    for (_, tests, alerts) in FILES {
        cases_of(tests, alerts);
    }
}

fn cases_of(file: &str, alerts: &[&str]) {
    let tests = read(file);
    let mut cases: Vec<(String, bool, bool)> = Vec::new();
    for line in tests.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some((_, rest)) = line.split_once("alertname: ") {
            let name = rest.split([',', '}', ' ']).next().unwrap_or_default();
            cases.push((name.to_owned(), false, false));
        }
        if let Some((_, quiet, firing)) = cases.last_mut() {
            *quiet |= line.contains("exp_alerts: []");
            *firing |= line.contains("exp_labels:");
        }
    }
    for name in alerts {
        let of = || cases.iter().filter(|(n, _, _)| n == name);
        assert!(of().any(|c| c.2), "{file}: no case where {name} fires");
        assert!(of().any(|c| c.1), "{file}: no `exp_alerts: []` case for {name}");
    }
}
