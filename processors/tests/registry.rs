//! The registry builds each processor from its section and topology.yaml, and refuses settings
//! that need more history than the store's window replays, naming both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bmon_processors::registry::{self, BuildContext, BuildError};

#[test]
fn every_processor_is_registered_and_builds_with_defaults() {
    let t = registry::builtin_topology().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in registry::REGISTRY {
        let declared = t.processor_named(entry.name).unwrap();
        // State goes to a temporary directory (every stateful processor honours the override),
        // never to the working directory.
        let built = (entry.build)(&BuildContext { topology: &t, declared, section: None, state_dir: Some(dir.path()) });
        assert!(built.is_ok(), "{}: {:?}", entry.name, built.err());
        assert!(!entry.telemetry.metrics.is_empty(), "{} declares its metrics", entry.name);
    }
    assert!(registry::find("chain").is_some(), "the chain processor is one folder and one registry line");
    assert!(registry::find("no-such-processor").is_none());
}

#[test]
fn settings_needing_more_than_the_window_fail_naming_both() {
    let t = registry::builtin_topology().unwrap();
    let entry = registry::find("propagation").unwrap();
    let section: toml::Value = toml::from_str("closed_retention_s = 3600").unwrap();
    let ctx = BuildContext {
        topology: &t,
        declared: t.processor_named("propagation").unwrap(),
        section: Some(&section),
        state_dir: None,
    };
    let err = (entry.build)(&ctx).err().unwrap();
    assert!(matches!(err, BuildError::Window { needed_s: 7200, window_s: 4200, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("tx_timeout_s + closed_retention_s"), "{msg}");
    assert!(msg.contains("processors.propagation.state_stores.windows.window"), "{msg}");
}

#[test]
fn an_unknown_setting_is_named() {
    let t = registry::builtin_topology().unwrap();
    let entry = registry::find("logparse").unwrap();
    let section: toml::Value = toml::from_str("log_topic = \"x\"").unwrap();
    let ctx = BuildContext {
        topology: &t,
        declared: t.processor_named("logparse").unwrap(),
        section: Some(&section),
        state_dir: None,
    };
    let msg = (entry.build)(&ctx).err().unwrap().to_string();
    assert!(msg.contains("log_topic"), "a config may not name a topic: {msg}");
}
