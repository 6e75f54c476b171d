//! Two networks that share a genesis block keep their windows apart.
//!
//! Bitcoin Core and the BSV node both start regtest from the same genesis block (`0f9188f1…`),
//! and both log it when they start. Two Core nodes (network `regtest-core`) and one BSV node
//! (`regtest-bsv`) run with their producers, logparse and propagation. The genesis tip-stage
//! window of each network holds exactly that network's nodes. Before windows were keyed by
//! network, one window held all three (`make demo` showed the genesis row with every node).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bmon_schemas::{PropagationSummary, Stage};
use bmon_testbed::{Implementation, TestBed};
use common::*;

const GENESIS: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

#[test]
fn core_and_bsv_regtest_genesis_windows_stay_apart() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let core = bed.start_nodes(Implementation::Core, 2).unwrap();
    let bsv = bed.start_nodes(Implementation::Bsv, 1).unwrap();
    let mut producers = Vec::new();
    for (net, network, implementation) in [(core, "regtest-core", "core"), (bsv, "regtest-bsv", "bsv")] {
        for node in bed.network(net).nodes() {
            let sources = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", node.log_path().display());
            producers.push(start_producer_in(network, &bed, node.name(), implementation, &sources, &brokers));
        }
    }
    let names =
        |net: usize| -> BTreeSet<String> { bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect() };
    let (core_nodes, bsv_nodes) = (names(core), names(bsv));
    let list = |s: &BTreeSet<String>| s.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest-core = [{}]\nregtest-bsv = [{}]\n",
        bed.dir().join("propagation-state").display(),
        list(&core_nodes),
        list(&bsv_nodes)
    );
    let _logparse = start_processor(&bed, "logparse", "0", "", &brokers, 0);
    let _propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, 0);

    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let genesis = |s: &[PropagationSummary], network: &str| -> Option<PropagationSummary> {
        s.iter().rfind(|x| x.hash == GENESIS && x.stage == Stage::Tip && x.network == network).cloned()
    };
    let complete = |s: &[PropagationSummary]| {
        genesis(s, "regtest-core").is_some_and(|x| x.lags.len() == 2) && genesis(s, "regtest-bsv").is_some()
    };
    assert!(reader.read_until(Duration::from_secs(120), complete), "a genesis tip summary on each network");
    // Anything still on its way (a late amendment mixing networks) would show up meanwhile.
    reader.read_until(Duration::from_secs(3), |_| false); // an observation window for absence, not synchronisation
    for (network, want) in [("regtest-core", &core_nodes), ("regtest-bsv", &bsv_nodes)] {
        let s = genesis(&reader.facts, network).unwrap();
        let got: BTreeSet<String> = s.lags.iter().map(|l| l.node_id.clone()).collect();
        assert_eq!(&got, want, "{network}'s genesis window holds exactly its own nodes");
        assert!(s.missing_nodes.is_empty(), "{network}: missing {:?}", s.missing_nodes);
    }
    drop(producers);
}
