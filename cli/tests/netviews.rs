//! Typed views of every node's RPC snapshots meet, per network, in one partition.
//!
//! Two Core nodes (network `regtest-core`) and one BSV node (`regtest-bsv`), their producers
//! polling RPC every second, and the `netviews` processor. On `bmon.network.views`:
//! - every view is in the partition its network's key picks, so both Core nodes' views share one;
//! - each node's getchaintips view parses as the typed view and holds that node's active tip;
//! - a template view carries its transactions' sizes but not their raw data.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::time::Duration;

use bmon_kafka::partition_for;
use bmon_processors::views::{BlockTemplate, TipStatus, chain_tips};
use bmon_schemas::{Codec, NodeView};
use bmon_testbed::{Implementation, TestBed};
use common::*;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TOPIC: &str = "bmon.network.views";
const PARTITIONS: i32 = 3;

#[test]
fn views_of_one_network_meet_in_one_partition() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let core = bed.start_network(Implementation::Core, 2).unwrap();
    let bsv = bed.start_network(Implementation::Bsv, 1).unwrap();
    bed.network(core).send_tx(0).unwrap();
    let mut producers = Vec::new();
    let mut nodes = Vec::new();
    for (net, network, implementation) in [(core, "regtest-core", "core"), (bsv, "regtest-bsv", "bsv")] {
        for node in bed.network(net).nodes() {
            let sources = format!(
                "[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 1\ntxoutset_interval_s = 0\n",
                node.rpc_url(),
                node.cookie_path().display()
            );
            producers.push(start_producer_in(network, &bed, node.name(), implementation, &sources, &brokers));
            nodes.push((node.name().to_owned(), network, node.tip().unwrap()));
        }
    }
    let _netviews = start_processor(&bed, "netviews", "0", "", &brokers, 0);

    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "test-views").create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let codec = Codec::default();
    let mut views: Vec<(i32, NodeView)> = Vec::new();
    let has = |views: &[(i32, NodeView)], node: &str, method: &str| {
        views.iter().any(|(_, v)| v.envelope.node_id == node && v.method == method)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    // A lone BSV node may refuse getblocktemplate, so templates are checked on Core.
    while !(nodes.iter().all(|(n, _, _)| has(&views, n, "getchaintips"))
        && has(&views, &nodes[0].0, "getblocktemplate"))
    {
        assert!(std::time::Instant::now() < deadline, "views missing; have {}", views.len());
        let Some(m) = consumer.poll(Duration::from_millis(500)) else { continue };
        let m = m.unwrap();
        let v: NodeView = codec.decode(m.payload().unwrap()).unwrap();
        assert_eq!(m.key().unwrap(), v.envelope.network.as_bytes(), "keyed by network");
        views.push((m.partition(), v));
    }
    for (p, v) in &views {
        assert_eq!(*p, partition_for(v.envelope.network.as_bytes(), PARTITIONS), "{}: partition", v.envelope.node_id);
    }
    for (node, network, tip) in &nodes {
        let (_, v) = views.iter().find(|(_, v)| &v.envelope.node_id == node && v.method == "getchaintips").unwrap();
        assert_eq!(v.envelope.network, *network);
        let tips = chain_tips(&v.view_json).unwrap();
        let active = tips.iter().find(|t| t.status == Some(TipStatus::Active)).unwrap();
        assert_eq!(active.hash.as_deref(), Some(tip.as_str()), "{node}: its active tip");
    }
    let (_, t) =
        views.iter().find(|(_, v)| v.method == "getblocktemplate" && v.envelope.node_id == nodes[0].0).unwrap();
    let template = BlockTemplate::parse(&t.view_json).unwrap();
    assert!(!template.txs().is_empty(), "the mempool transaction is in the template");
    assert!(template.txs().iter().all(|x| x.data.is_none() && x.size().is_some_and(|s| s > 0)));
    drop(producers);
}
