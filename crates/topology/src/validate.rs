//! Cross-reference checks over a parsed topology. Pure apart from looking up schema files.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::{CleanupPolicy, Problem, Recovery, Retention, Topology};

/// The schema family dead-letter topics must carry.
const DEAD_LETTER_FAMILY: &str = "dead_letter";

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { field: field.into(), message: message.into() });
    }
}

/// Every problem in `t`; empty when it is consistent. `families` are the schema families that
/// exist (from `schema_dir`, or those a binary embeds).
pub(crate) fn validate(t: &Topology, families: &HashSet<String>) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    if t.version != 1 {
        p.add("version", format!("unsupported version {} (this bmon reads version 1)", t.version));
    }
    if families.is_empty() {
        p.add("schema_dir", format!("no <family>.v<N>.avsc files in {}", t.schema_dir.display()));
    }
    check_topics(t, families, &mut p);
    check_processors(t, &mut p);
    p.0
}

/// Schema families found in `dir`, from file names `<family>.v<N>.avsc`.
pub(crate) fn schema_families(dir: &Path) -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashSet::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".avsc")?;
            let (family, version) = stem.rsplit_once(".v")?;
            version.parse::<u32>().ok().map(|_| family.to_owned())
        })
        .collect()
}

fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_topics(t: &Topology, families: &HashSet<String>, p: &mut Problems) {
    let mut seen = HashSet::new();
    let mut carried = std::collections::HashMap::new();
    for (i, topic) in t.topics.iter().enumerate() {
        let at = |f: &str| format!("topics[{i}].{f}");
        if !valid_topic_name(&topic.name) {
            p.add(
                at("name"),
                format!("`{}` is not a valid Kafka topic name ([a-zA-Z0-9._-], 1-249 chars)", topic.name),
            );
        }
        if !seen.insert(topic.name.as_str()) {
            p.add(at("name"), format!("topic `{}` is declared twice", topic.name));
        }
        if !t.keys.contains_key(&topic.key) {
            p.add(
                at("key"),
                format!("key `{}` is not declared under `keys` (declared: {})", topic.key, names(&t.keys)),
            );
        }
        if topic.value_schemas.is_empty() {
            p.add(at("value_schemas"), "at least one schema family is required");
        }
        for (j, family) in topic.value_schemas.iter().enumerate() {
            if let Some(other) = carried.insert(family.as_str(), topic.name.as_str()) {
                p.add(
                    format!("topics[{i}].value_schemas[{j}]"),
                    format!("`{family}` is carried by topic `{other}` already; each family has one topic, which is how code finds it"),
                );
            }
            if !families.contains(family) {
                p.add(
                    format!("topics[{i}].value_schemas[{j}]"),
                    format!("no schema file {}/{family}.v<N>.avsc", t.schema_dir.display()),
                );
            }
        }
        if topic.partitions < 1 {
            p.add(at("partitions"), format!("must be at least 1, got {}", topic.partitions));
        }
        if let Some(rf) = topic.replication_factor.filter(|rf| *rf < 1) {
            p.add(at("replication_factor"), format!("must be at least 1, got {rf}"));
        }
        if topic.max_message_bytes < 1024 {
            p.add(at("max_message_bytes"), format!("must be at least 1024, got {}", topic.max_message_bytes));
        }
    }
}

fn names<V>(m: &BTreeMap<String, V>) -> String {
    m.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn check_processors(t: &Topology, p: &mut Problems) {
    let mut seen = HashSet::new();
    let mut groups = HashSet::new();
    for (i, proc) in t.processors.iter().enumerate() {
        let at = |f: &str| format!("processors[{i}].{f}");
        if !seen.insert(proc.name.as_str()) {
            p.add(at("name"), format!("processor `{}` is declared twice", proc.name));
        }
        if proc.consumer_group.trim().is_empty() {
            p.add(at("consumer_group"), "must not be empty");
        } else if !groups.insert(proc.consumer_group.as_str()) {
            p.add(at("consumer_group"), format!("group `{}` is used by two processors", proc.consumer_group));
        }
        if proc.inputs.is_empty() {
            p.add(at("inputs"), "a processor needs at least one input topic");
        }
        for (j, name) in proc.inputs.iter().enumerate() {
            if t.topic(name).is_none() {
                p.add(format!("processors[{i}].inputs[{j}]"), format!("unknown topic `{name}`"));
            }
        }
        for (j, name) in proc.outputs.iter().enumerate() {
            if t.topic(name).is_none() {
                p.add(format!("processors[{i}].outputs[{j}]"), format!("unknown topic `{name}`"));
            }
        }
        match t.topic(&proc.dead_letter) {
            None => p.add(at("dead_letter"), format!("unknown topic `{}`", proc.dead_letter)),
            Some(dl) if !dl.value_schemas.iter().any(|f| f == DEAD_LETTER_FAMILY) => p.add(
                at("dead_letter"),
                format!("topic `{}` does not carry `{DEAD_LETTER_FAMILY}` records", proc.dead_letter),
            ),
            Some(_) => {}
        }
        check_stores(t, i, p);
    }
}

fn check_stores(t: &Topology, i: usize, p: &mut Problems) {
    let proc = &t.processors[i];
    let mut seen = HashSet::new();
    for (k, store) in proc.state_stores.iter().enumerate() {
        let at = |f: &str| format!("processors[{i}].state_stores[{k}].{f}");
        if !seen.insert(store.name.as_str()) {
            p.add(at("name"), format!("store `{}` is declared twice", store.name));
        }
        match store.recovery {
            Recovery::Changelog => match store.changelog_topic.as_deref() {
                None => p.add(at("changelog_topic"), "required when recovery is `changelog`"),
                Some(name) => match t.topic(name) {
                    None => p.add(at("changelog_topic"), format!("unknown topic `{name}`")),
                    Some(topic) if topic.cleanup_policy != CleanupPolicy::Compact => p.add(
                        at("changelog_topic"),
                        format!("changelog topic `{name}` must have cleanup_policy: compact"),
                    ),
                    Some(_) => {}
                },
            },
            Recovery::None => {}
            Recovery::Replay => match store.window {
                None => p.add(at("window"), "required when recovery is `replay`: how far back to replay input"),
                Some(window) => {
                    for name in &proc.inputs {
                        if let Some(topic) = t.topic(name).filter(|tp| tp.retention < window) {
                            p.add(
                                at("window"),
                                format!(
                                    "replay window {window} exceeds the retention {} of input `{name}`; state could not be rebuilt",
                                    topic.retention
                                ),
                            );
                        }
                    }
                    if window == Retention::Forever {
                        p.add(at("window"), "a replay window must be finite");
                    }
                }
            },
        }
    }
}
