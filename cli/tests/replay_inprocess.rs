//! Replaying a recorded run in process gives exactly the summaries the live pipeline published.
//!
//! Three Core nodes, their producers, logparse and propagation run live while blocks are mined
//! and transactions sent. Then logparse → propagation are chained in this process over the log
//! and ZMQ facts of the run's time range (a bounded source: manual assignment, no group), with
//! state in a temporary directory and metrics in the pipeline's own recorder.
//!
//! - The replay's summaries, by (network, stage, hash, revision), equal the live ones (live
//!   repeats after a redelivery are byte-identical, so the live set is well defined).
//! - The live groups' committed offsets are the same before and after the replay.
//! - The replay counted its records in its own recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_processors::registry::builtin_topology;
use bmon_processors::replay::{self, ReplaySpec};
use bmon_processors::runtime::bounded::Range;
use bmon_schemas::{Codec, PropagationSummary, Record, Stage};
use bmon_testbed::{Implementation, TestBed};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};

type Key = (String, Stage, String, i32);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn by_key<'a>(s: impl Iterator<Item = &'a PropagationSummary>) -> BTreeMap<Key, PropagationSummary> {
    let mut m = BTreeMap::new();
    for x in s {
        if let Some(prev) = m.insert((x.network.clone(), x.stage, x.hash.clone(), x.revision), x.clone()) {
            assert_eq!(&prev, x, "a repeated summary differs");
        }
    }
    m
}

/// The committed offsets of `group` on `topic`'s `partitions`.
fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<String> {
    let c: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements().iter().map(|e| format!("{}:{:?}", e.partition(), e.offset())).collect()
}

#[test]
fn an_in_process_replay_equals_the_live_run() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let from = Range { from_ms: now_ms() - 1, to_ms: 0 }.from_ms;
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let mut producers = Vec::new();
    for node in bed.network(net).nodes() {
        producers.push(start_producer(&bed, node.name(), "core", &node.log_path(), &brokers));
    }
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| format!("\"{}\"", n.name())).collect();
    let section = format!("fleet = {{ regtest = [{}] }}\n", names.join(", "));
    let extra = format!("[propagation]\nstate_dir = \"{}\"\n{section}", bed.dir().join("propagation-state").display());
    let logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, 0);

    let mut blocks = Vec::new();
    let mut txs = Vec::new();
    for _ in 0..4 {
        txs.push(bed.network(net).send_tx(0).unwrap());
        blocks.extend(bed.network(net).mine(0, 1).unwrap());
    }
    let mut live = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let complete = |s: &[PropagationSummary], h: &String, stage: Stage| {
        s.iter().any(|x| &x.hash == h && x.stage == stage && x.lags.len() == 3)
    };
    assert!(
        live.read_until(Duration::from_secs(120), |s| {
            blocks.iter().all(|b| complete(s, b, Stage::Tip)) && txs.iter().all(|t| complete(s, t, Stage::TxAccept))
        }),
        "live summaries with all three nodes for every block and transaction"
    );
    drop(producers);
    let to = now_ms() + 1;
    // Whatever else the live run published up to now (other stages, genesis) is read too, and
    // the live processors stop (committing their offsets), so the offsets below stay put.
    live.read_until(Duration::from_secs(3), |_| false);
    for mut p in [propagation, logparse] {
        p.terminate(Duration::from_secs(10)).expect("a live processor stops on SIGTERM");
    }
    let live = by_key(live.facts.iter());

    let groups = ["bmon-logparse", "bmon-propagation"];
    let before: Vec<Vec<String>> = groups
        .iter()
        .zip([("bmon.node.log", 6), ("bmon.observations", 12)])
        .map(|(g, (t, n))| committed(&brokers, g, t, n))
        .collect();

    let topology = builtin_topology().unwrap();
    let sections = BTreeMap::from([("propagation".to_owned(), toml_table(&section))]);
    let state = tempfile::tempdir().unwrap();
    let spec = ReplaySpec {
        topology: &topology,
        sections: &sections,
        processors: &["logparse", "propagation"],
        state_dir: state.path(),
        filter: &replay::Filter::default(),
        max_rate: None,
    };
    let settings = bmon_kafka::ClientSettings::plaintext(brokers.clone());
    let outcome = replay::run(&settings, &spec, Range { from_ms: from, to_ms: to }, now_ms()).unwrap();
    let codec = Codec::default();
    let replayed: Vec<PropagationSummary> = outcome
        .outputs
        .iter()
        .map(|e| &e.output)
        .filter(|o| o.topic == "bmon.events")
        .filter(|o| codec.writer_version(&o.payload).unwrap().family == PropagationSummary::FAMILY)
        .map(|o| codec.decode(&o.payload).unwrap())
        .collect();
    let replayed = by_key(replayed.iter());
    eprintln!("{} live summaries, {} replayed; counts {:?}", live.len(), replayed.len(), outcome.counts);
    let only_live: Vec<&Key> = live.keys().filter(|k| !replayed.contains_key(*k)).collect();
    let only_replay: Vec<&Key> = replayed.keys().filter(|k| !live.contains_key(*k)).collect();
    assert!(only_live.is_empty() && only_replay.is_empty(), "live only: {only_live:?}; replay only: {only_replay:?}");
    for (k, s) in &live {
        assert_eq!(&replayed[k], s, "{k:?} differs");
    }

    let after: Vec<Vec<String>> = groups
        .iter()
        .zip([("bmon.node.log", 6), ("bmon.observations", 12)])
        .map(|(g, (t, n))| committed(&brokers, g, t, n))
        .collect();
    assert_eq!(before, after, "the replay moved a live group's offsets");
    assert!(
        outcome.metrics.contains("bmon_propagation_summaries_total"),
        "the replay's own recorder has its metrics:\n{}",
        outcome.metrics
    );
}

fn toml_table(text: &str) -> toml::Value {
    toml::from_str(text).unwrap()
}
