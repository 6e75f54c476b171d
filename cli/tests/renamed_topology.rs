//! topology.yaml is the single source of truth: rename every topic and change every partition
//! count, and the pipeline runs on the copy without a config naming a topic.
//!
//! The copy renames `bmon.X` to `renamed.X` and gives every topic a different partition count.
//! Two Core nodes, their producers (on the copy), logparse and propagation (on the copy) run on a
//! broker that has only the copy's topics. Every mined block gets a tip summary with both nodes
//! on the renamed events topic, every observation sits in the partition its key (network/hash)
//! picks among the copy's counts, and no topic of the original names was created.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_kafka::partition_for;
use bmon_schemas::{Observation, PropagationSummary, Stage};
use bmon_testbed::{Implementation, TestBed};
use common::*;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// A new partition count for each original one, all different from the original.
fn repartition(n: i32) -> i32 {
    match n {
        1 => 2,
        3 => 4,
        6 => 5,
        12 => 7,
        n => n + 1,
    }
}

#[test]
fn the_pipeline_runs_on_a_renamed_repartitioned_topology() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let topology = write_topology(&bed.dir().join("renamed"), |t| {
        t.rename_topics(|n| n.replace("bmon.", "renamed."));
        for topic in &mut t.topics {
            topic.partitions = repartition(topic.partitions);
        }
        for p in &mut t.processors {
            p.consumer_group = format!("{}-renamed", p.consumer_group);
        }
    });
    apply_topology_file(&brokers, &topology);
    let t = bmon_topology::Topology::load(&topology).unwrap();
    let partitions = |name: &str| t.topic(name).unwrap().partitions;

    let net = bed.start_network(Implementation::Core, 2).unwrap();
    let mut producers = Vec::new();
    for node in bed.network(net).nodes() {
        let sources = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", node.log_path().display());
        let program = [env!("CARGO_BIN_EXE_bmon"), "produce"];
        producers.push(start_producer_on(
            "regtest",
            &program,
            &bed,
            node.name(),
            "core",
            &sources,
            &brokers,
            Some(&topology),
        ));
    }
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| format!("\"{}\"", n.name())).collect();
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\n",
        bed.dir().join("propagation-state").display(),
        names.join(", ")
    );
    let _logparse = start_processor_on(&bed, "logparse", "0", "", &brokers, 0, &topology);
    let _propagation = start_processor_on(&bed, "propagation", "0", &extra, &brokers, 0, &topology);

    let blocks = bed.network(net).mine(0, 3).unwrap();
    let mut summaries =
        TopicReader::<PropagationSummary>::new(&brokers, "renamed.events", partitions("renamed.events"));
    let complete = |s: &[PropagationSummary], b: &String| {
        s.iter().any(|x| &x.hash == b && x.stage == Stage::Tip && x.lags.len() == 2)
    };
    assert!(
        summaries.read_until(Duration::from_secs(120), |s| blocks.iter().all(|b| complete(s, b))),
        "a tip summary with both nodes for every block on renamed.events"
    );

    // Observations are where the copy's partition count puts their key.
    let n = partitions("renamed.observations");
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "test-check").create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut total = 0;
    for p in 0..n {
        tpl.add_partition_offset("renamed.observations", p, rdkafka::Offset::Beginning).unwrap();
        total += consumer.fetch_watermarks("renamed.observations", p, Duration::from_secs(10)).unwrap().1;
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen < total {
        assert!(std::time::Instant::now() < deadline, "read {seen} of {total} observations");
        let Some(m) = consumer.poll(Duration::from_millis(500)) else { continue };
        let m = m.unwrap();
        let o: Observation = bmon_schemas::Codec::default().decode(m.payload().unwrap()).unwrap();
        assert_eq!(m.key().unwrap(), o.hash.as_bytes(), "observations are keyed by hash");
        assert_eq!(partition_for(o.hash.as_bytes(), n), m.partition(), "{} in the partition its key picks", o.hash);
        seen += 1;
    }
    assert!(seen > 0, "observations were published");

    let md = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    let originals: Vec<&str> = md.topics().iter().map(|t| t.name()).filter(|n| n.starts_with("bmon.")).collect();
    assert!(originals.is_empty(), "topics of the original names were created: {originals:?}");
    drop(producers);
}
