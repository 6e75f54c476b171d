//! Every LogQL recipe bmon ships (docs/logs.md, README.md) parses with Grafana's own LogQL
//! grammar, `@grafana/lezer-logql` (installed by `make tools` under `$BMON_CACHE/npm`), run by
//! `scripts/check-logql.cjs` in Node.js.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::repo_root;

#[test]
fn every_logql_recipe_parses_with_grafanas_grammar() {
    let cache = std::env::var_os("BMON_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/bmon"));
    let modules = cache.join("npm/node_modules");
    assert!(modules.join("@grafana/lezer-logql").is_dir(), "run `make tools` first: no {}", modules.display());
    let root = repo_root();
    let out = std::process::Command::new("node")
        .arg(root.join("scripts/check-logql.cjs"))
        .arg(root.join("docs/logs.md"))
        .arg(root.join("README.md"))
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "a recipe does not parse:\n{text}");
    let count: usize = text.lines().last().and_then(|l| l.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(count >= 7, "docs/logs.md and README.md hold the recipes ({count} found)");
    // The grammar does reject what is not LogQL: the check is not vacuous.
    let bad = std::env::temp_dir().join(format!("bmon-bad-logql-{}.md", std::process::id()));
    std::fs::write(&bad, "```logql\n{source=\"log\" |= \"x\"\n```\n").unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("scripts/check-logql.cjs"))
        .arg(&bad)
        .env("NODE_PATH", &modules)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success(), "an unclosed selector is refused");
}
