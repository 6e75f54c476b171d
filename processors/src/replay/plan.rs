//! Which processors a replay runs, and which topics it reads from the broker (pure).
//!
//! A topic some chosen processor produces is fed in process, not read. When a chosen processor
//! reads a topic that a chosen processor and an unchosen one both produce (chain reads
//! `bmon.node.events`, from logparse and from netviews), reading it from the broker would mix
//! live records with replayed ones and leaving it out would starve the reader; the unchosen
//! producers are therefore added, until no such topic is left. The closure can be wide (mempool
//! shares `bmon.network.views` with netviews, which shares `bmon.node.events` with logparse),
//! but never wrong; the report names what was added.

use std::collections::BTreeSet;
use std::time::Duration;

use bmon_topology::Topology;

use crate::registry::{self, REGISTRY};

/// The processors and topics of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Every processor to run, in registry (pipeline) order.
    pub processors: Vec<&'static str>,
    /// Those among them that were added because a chosen one needs their output.
    pub added: Vec<&'static str>,
    /// The topics read from the broker (no chosen processor produces them), with partition
    /// counts, sorted.
    pub external: Vec<(String, i32)>,
    /// How far before the range the broker is read, so that state is warm at its start: the
    /// longest state-store window of the processors run.
    pub warmup: Duration,
}

/// Why a selection is not possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A name is not registered.
    #[error("no processor `{0}` (known: {known})", known = registry::names())]
    Unknown(String),
    /// A registered processor is missing from topology.yaml.
    #[error("topology.yaml declares no processor `{0}`")]
    Undeclared(String),
    /// A sink (a processor without output topics) cannot be replayed.
    #[error("`{0}` is a sink (it has no output topics): a replay runs processors that produce records")]
    Sink(String),
}

/// The default: every registered processor that produces records.
pub fn default_processors(topology: &Topology) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| topology.processor(e.name).is_some_and(|p| !p.outputs.is_empty()))
        .map(|e| e.name)
        .collect()
}

/// Chooses the processors for `requested` (registry names) and the topics they read.
pub fn select(topology: &Topology, requested: &[&str]) -> Result<Selection, SelectError> {
    let mut chosen = BTreeSet::new();
    for name in requested {
        let entry = registry::find(name).ok_or_else(|| SelectError::Unknown((*name).to_owned()))?;
        let declared = topology.processor(entry.name).ok_or_else(|| SelectError::Undeclared(entry.name.to_owned()))?;
        if declared.outputs.is_empty() {
            return Err(SelectError::Sink(entry.name.to_owned()));
        }
        chosen.insert(entry.name);
    }
    let mut added = Vec::new();
    loop {
        let missing = producers_missing(topology, &chosen);
        if missing.is_empty() {
            break;
        }
        for name in missing {
            chosen.insert(name);
            added.push(name);
        }
    }
    let processors: Vec<&'static str> = REGISTRY.iter().map(|e| e.name).filter(|n| chosen.contains(n)).collect();
    added.sort_by_key(|n| processors.iter().position(|p| p == n));
    let declared: Vec<&bmon_topology::Processor> = processors.iter().filter_map(|n| topology.processor(n)).collect();
    let produced: BTreeSet<&str> = declared.iter().flat_map(|p| p.outputs.iter().map(String::as_str)).collect();
    let read: BTreeSet<&str> = declared.iter().flat_map(|p| p.inputs.iter().map(String::as_str)).collect();
    let external = read
        .into_iter()
        .filter(|t| !produced.contains(t))
        .map(|t| (t.to_owned(), topology.topic(t).map_or(1, |topic| topic.partitions)))
        .collect();
    let warmup = declared.iter().filter_map(|p| p.replay_window()).max().unwrap_or(Duration::ZERO);
    Ok(Selection { processors, added, external, warmup })
}

/// Unchosen processors that produce a topic a chosen one reads and a chosen one produces.
fn producers_missing(topology: &Topology, chosen: &BTreeSet<&'static str>) -> Vec<&'static str> {
    let is_chosen = |p: &bmon_topology::Processor| chosen.contains(p.name.as_str());
    let mut missing = BTreeSet::new();
    for reader in topology.processors.iter().filter(|p| is_chosen(p)) {
        for topic in &reader.inputs {
            let producers: Vec<&bmon_topology::Processor> =
                topology.processors.iter().filter(|p| p.outputs.contains(topic)).collect();
            if producers.iter().any(|p| is_chosen(p)) {
                missing.extend(
                    producers.iter().filter(|p| !is_chosen(p)).filter_map(|p| registry::find(&p.name)).map(|e| e.name),
                );
            }
        }
    }
    missing.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn topology() -> Topology {
        registry::builtin_topology().unwrap()
    }

    fn names(v: &[(String, i32)]) -> Vec<&str> {
        v.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn the_default_is_every_processor_but_the_sink() {
        assert_eq!(default_processors(&topology()), ["logparse", "propagation", "netviews", "chain", "mempool"]);
    }

    #[test]
    fn the_whole_pipeline_reads_only_the_producers_facts() {
        let t = topology();
        let s = select(&t, &default_processors(&t)).unwrap();
        assert!(s.added.is_empty());
        assert_eq!(names(&s.external), ["bmon.node.log", "bmon.node.rpc", "bmon.node.zmq"]);
        assert_eq!(s.warmup, Duration::from_secs(70 * 60), "propagation's window is the longest");
    }

    #[test]
    fn a_topic_with_a_chosen_and_an_unchosen_producer_brings_the_other_in() {
        let t = topology();
        let s = select(&t, &["logparse", "chain"]).unwrap();
        // chain reads node events from logparse and from netviews; then the views, from netviews
        // and from mempool (its conflict markers).
        assert_eq!(s.processors, ["logparse", "netviews", "chain", "mempool"]);
        assert_eq!(s.added, ["netviews", "mempool"]);
        let s = select(&t, &["mempool"]).unwrap();
        assert_eq!(s.added, ["logparse", "netviews"], "mempool's conflict markers share a topic with netviews' views");
        assert_eq!(names(&s.external), ["bmon.node.log", "bmon.node.rpc", "bmon.node.zmq"]);
        let s = select(&t, &["chain"]).unwrap();
        assert!(s.added.is_empty(), "no chosen producer of chain's inputs but chain itself");
        assert_eq!(names(&s.external), ["bmon.network.views", "bmon.node.events"]);
    }

    #[test]
    fn a_downstream_processor_alone_reads_its_inputs_from_the_broker() {
        let t = topology();
        let s = select(&t, &["propagation"]).unwrap();
        assert_eq!(names(&s.external), ["bmon.observations"]);
        assert_eq!(s.warmup, Duration::from_secs(70 * 60));
    }

    #[test]
    fn unknown_names_and_sinks_are_refused() {
        let t = topology();
        assert_eq!(select(&t, &["nope"]), Err(SelectError::Unknown("nope".into())));
        assert_eq!(select(&t, &["loki"]), Err(SelectError::Sink("loki".into())));
    }
}
