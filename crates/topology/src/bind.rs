//! Finding topics by what they carry, so that no config and no code names a topic.
//!
//! Producers and processors know the schema families they read and write, never topic names:
//! each family is carried by at most one topic (validation checks this), so "the topic of
//! `log_line_fact`" is unambiguous, and renaming a topic in topology.yaml renames it everywhere.
//! A processor's topics are looked up among its own declared inputs and outputs, so a topology
//! that does not wire a processor to a topic fails at start-up with the field to fix.

use std::time::Duration;

use crate::{Processor, Topic, Topology};

/// Why a topic could not be found for a schema family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// No topic declares the family in its `value_schemas`.
    #[error("no topic in topology.yaml carries `{family}` records (add it to a topic's value_schemas)")]
    NoTopic {
        /// The schema family.
        family: String,
    },
    /// The family's topic is not among the processor's inputs or outputs.
    #[error("processor `{processor}` does not list topic `{topic}` (carrying `{family}`) in its {role}")]
    NotWired {
        /// The processor.
        processor: String,
        /// `inputs` or `outputs`.
        role: &'static str,
        /// The topic carrying the family.
        topic: String,
        /// The schema family.
        family: String,
    },
    /// The topic's key is not one the record can be keyed by.
    #[error("topic `{topic}` is keyed by `{key}`, but {what} records can be keyed only by {supported}")]
    Key {
        /// The topic.
        topic: String,
        /// Its declared key.
        key: String,
        /// What is published there.
        what: String,
        /// The keys that would work.
        supported: String,
    },
    /// The processor is not declared.
    #[error("topology.yaml has no processor `{0}`")]
    NoProcessor(String),
}

impl Topology {
    /// The topic whose values are `family` records.
    pub fn topic_of(&self, family: &str) -> Result<&Topic, BindError> {
        self.topics
            .iter()
            .find(|t| t.value_schemas.iter().any(|f| f == family))
            .ok_or_else(|| BindError::NoTopic { family: family.to_owned() })
    }

    /// The processor named `name`, or an error saying it is not declared.
    pub fn processor_named(&self, name: &str) -> Result<&Processor, BindError> {
        self.processor(name).ok_or_else(|| BindError::NoProcessor(name.to_owned()))
    }

    /// The input topic of processor `p` that carries `family`.
    pub fn input_of(&self, p: &Processor, family: &str) -> Result<&Topic, BindError> {
        self.wired(p, family, "inputs", &p.inputs)
    }

    /// The output topic of processor `p` that carries `family`.
    pub fn output_of(&self, p: &Processor, family: &str) -> Result<&Topic, BindError> {
        self.wired(p, family, "outputs", &p.outputs)
    }

    fn wired(&self, p: &Processor, family: &str, role: &'static str, list: &[String]) -> Result<&Topic, BindError> {
        let topic = self.topic_of(family)?;
        if list.contains(&topic.name) {
            Ok(topic)
        } else {
            Err(BindError::NotWired {
                processor: p.name.clone(),
                role,
                topic: topic.name.clone(),
                family: family.to_owned(),
            })
        }
    }
}

impl Topology {
    /// The topology as YAML (what [`Topology::parse`] reads).
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// Renames every topic by `f`, wherever it is named (topics, processors' inputs, outputs,
    /// dead letters and changelogs): a copy of the topology under other names, e.g. with a prefix
    /// per tenant or per test.
    pub fn rename_topics(&mut self, f: impl Fn(&str) -> String) {
        for t in &mut self.topics {
            t.name = f(&t.name);
        }
        for p in &mut self.processors {
            for n in p.inputs.iter_mut().chain(p.outputs.iter_mut()) {
                *n = f(n);
            }
            p.dead_letter = f(&p.dead_letter);
            for s in &mut p.state_stores {
                if let Some(c) = s.changelog_topic.as_mut() {
                    *c = f(c);
                }
            }
        }
    }
}

impl Processor {
    /// How far back its state reaches: the longest `window` of its replay-recovered stores.
    pub fn replay_window(&self) -> Option<Duration> {
        self.state_stores
            .iter()
            .filter_map(|s| s.window.as_ref())
            .filter_map(|w| u64::try_from(w.kafka_ms()).ok().map(Duration::from_millis))
            .max()
    }
}
