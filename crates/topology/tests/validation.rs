//! The shipped topology is valid, and each kind of bad topology gives an error naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::path::PathBuf;

use bmon_topology::{Recovery, Topology, TopologyError};

fn repo_root() -> PathBuf {
    // At run time: a test binary cached from another checkout must read this one's files.
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

fn shipped() -> String {
    std::fs::read_to_string(repo_root().join("topology.yaml")).unwrap()
}

/// Applies `edit` to the shipped topology text and returns the resulting error.
fn error_after(edit: impl Fn(String) -> String) -> TopologyError {
    let text = edit(shipped());
    match Topology::parse(&text, &repo_root()) {
        Ok(_) => panic!("edited topology was accepted"),
        Err(e) => e,
    }
}

fn assert_problem(err: &TopologyError, field: &str, needle: &str) {
    assert!(
        err.problems().iter().any(|p| p.field == field && p.message.contains(needle)),
        "expected a problem at `{field}` mentioning `{needle}`, got: {err}"
    );
}

#[test]
fn shipped_topology_is_valid() {
    let t = Topology::load(repo_root().join("topology.yaml")).unwrap();
    assert!(t.topic("bmon.observations").is_some());
    let prop = t.processor("propagation").unwrap();
    assert_eq!(prop.state_stores[0].recovery, Recovery::Replay);
}

#[test]
fn unknown_field_is_a_syntax_error_naming_it() {
    let err = error_after(|s| s.replacen("    partitions: 6\n", "    partitons: 6\n", 1));
    let TopologyError::Syntax { message, .. } = &err else { panic!("{err}") };
    assert!(message.contains("partitons"), "{message}");
    assert!(message.contains("topics[0]"), "{message}");
}

#[test]
fn missing_required_field_is_a_syntax_error() {
    let err = error_after(|s| s.replacen("    cleanup_policy: delete\n", "", 1));
    assert!(matches!(&err, TopologyError::Syntax { message, .. } if message.contains("cleanup_policy")), "{err}");
}

#[test]
fn bad_retention_is_a_syntax_error() {
    let err = error_after(|s| s.replacen("retention: 7d", "retention: 7 days", 1));
    assert!(matches!(&err, TopologyError::Syntax { message, .. } if message.contains("not a duration")), "{err}");
}

#[test]
fn unknown_input_topic() {
    let err = error_after(|s| s.replace("inputs: [bmon.observations]", "inputs: [bmon.observatons]"));
    assert_problem(&err, "processors[1].inputs[0]", "unknown topic `bmon.observatons`");
}

#[test]
fn unknown_output_topic() {
    let err = error_after(|s| s.replace("outputs: [bmon.events]", "outputs: [bmon.evnts]"));
    assert_problem(&err, "processors[1].outputs[0]", "unknown topic");
}

#[test]
fn undeclared_key() {
    let err = error_after(|s| s.replacen("key: object_hash", "key: txid", 1));
    assert_problem(&err, "topics[4].key", "key `txid` is not declared");
}

#[test]
fn missing_schema_file() {
    let err = error_after(|s| s.replacen("value_schemas: [observation]", "value_schemas: [observaton]", 1));
    assert_problem(&err, "topics[4].value_schemas[0]", "observaton.v<N>.avsc");
}

#[test]
fn duplicate_topic_and_zero_partitions() {
    let err = error_after(|s| {
        s.replacen("name: bmon.node.zmq", "name: bmon.node.log", 1).replacen("partitions: 12", "partitions: 0", 1)
    });
    assert_problem(&err, "topics[1].name", "declared twice");
    assert_problem(&err, "topics[4].partitions", "at least 1");
}

#[test]
fn invalid_topic_name() {
    let err = error_after(|s| s.replacen("name: bmon.events\n", "name: bmon events\n", 1));
    assert_problem(&err, "topics[5].name", "not a valid Kafka topic name");
}

#[test]
fn dead_letter_topic_must_carry_dead_letters() {
    let err = error_after(|s| s.replacen("dead_letter: bmon.deadletter", "dead_letter: bmon.events", 1));
    assert_problem(&err, "processors[0].dead_letter", "does not carry `dead_letter`");
}

#[test]
fn replay_window_longer_than_input_retention() {
    let err = error_after(|s| s.replacen("window: 70m", "window: 3d", 1));
    assert_problem(&err, "processors[1].state_stores[0].window", "exceeds the retention");
}

#[test]
fn replay_store_without_window() {
    let err = error_after(|s| s.replacen("        window: 70m\n", "", 1));
    assert_problem(&err, "processors[1].state_stores[0].window", "required when recovery is `replay`");
}

#[test]
fn changelog_store_needs_a_compacted_topic() {
    let err = error_after(|s| {
        s.replacen(
            "recovery: replay\n        window: 70m",
            "recovery: changelog\n        changelog_topic: bmon.events",
            1,
        )
    });
    assert_problem(&err, "processors[1].state_stores[0].changelog_topic", "must have cleanup_policy: compact");
    let err = error_after(|s| s.replacen("recovery: replay\n        window: 70m", "recovery: changelog", 1));
    assert_problem(&err, "processors[1].state_stores[0].changelog_topic", "required");
}

#[test]
fn shared_consumer_group() {
    let err = error_after(|s| s.replacen("consumer_group: bmon-propagation", "consumer_group: bmon-logparse", 1));
    assert_problem(&err, "processors[1].consumer_group", "used by two processors");
}

#[test]
fn unsupported_version_and_missing_schema_dir() {
    let err = error_after(|s| {
        s.replacen("version: 1", "version: 2", 1).replacen("schema_dir: schemas/avro", "schema_dir: nowhere", 1)
    });
    assert_problem(&err, "version", "unsupported version 2");
    assert_problem(&err, "schema_dir", "no <family>.v<N>.avsc files");
}

#[test]
fn all_problems_are_reported_at_once() {
    let err = error_after(|s| {
        s.replace("inputs: [bmon.observations]", "inputs: [x]").replacen("key: object_hash", "key: y", 1)
    });
    assert!(err.problems().len() >= 2, "{err}");
    assert!(err.to_string().contains("problem(s)"));
}

#[test]
fn unreadable_file_is_an_io_error() {
    let err = Topology::load("/nonexistent/topology.yaml").unwrap_err();
    assert!(matches!(err, TopologyError::Io { .. }), "{err}");
}

#[test]
fn topics_are_found_by_the_family_they_carry() {
    let t = Topology::load(repo_root().join("topology.yaml")).unwrap();
    assert_eq!(t.topic_of("log_line_fact").unwrap().name, "bmon.node.log");
    let logparse = t.processor_named("logparse").unwrap();
    assert_eq!(t.input_of(logparse, "zmq_fact").unwrap().name, "bmon.node.zmq");
    assert_eq!(t.output_of(logparse, "observation").unwrap().name, "bmon.observations");
    let err = t.output_of(logparse, "propagation_summary").unwrap_err();
    assert!(err.to_string().contains("does not list topic `bmon.events`"), "{err}");
    assert!(t.topic_of("no_such_family").is_err());
    assert_eq!(
        t.processor_named("propagation").unwrap().replay_window(),
        Some(std::time::Duration::from_secs(70 * 60))
    );
}

#[test]
fn the_builtin_topology_is_the_shipped_one() {
    // The families the schemas crate embeds, read from its files (this crate does not depend on
    // it): `<family>.v<N>.avsc`.
    let families: std::collections::BTreeSet<String> = std::fs::read_dir(repo_root().join("schemas/avro"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.split_once(".v").map(|(f, _)| f.to_owned()))
        .collect();
    assert!(families.contains("chain_reorg") && families.contains("log_line_fact"), "{families:?}");
    let builtin = Topology::builtin(families.iter().map(String::as_str)).unwrap();
    let shipped = Topology::load(repo_root().join("topology.yaml")).unwrap();
    assert_eq!(builtin.to_yaml(), shipped.to_yaml());
}

#[test]
fn a_family_on_two_topics_is_refused() {
    let err = error_after(|t| t.replacen("value_schemas: [zmq_fact]", "value_schemas: [zmq_fact, log_line_fact]", 1));
    assert_problem(&err, "topics[1].value_schemas[1]", "carried by topic `bmon.node.log` already");
}

#[test]
fn renamed_topics_are_renamed_everywhere() {
    let mut t = Topology::load(repo_root().join("topology.yaml")).unwrap();
    t.rename_topics(|n| format!("x.{n}"));
    let p = t.processor_named("propagation").unwrap();
    assert_eq!(t.input_of(p, "observation").unwrap().name, "x.bmon.observations");
    assert_eq!(p.dead_letter, "x.bmon.deadletter");
}
