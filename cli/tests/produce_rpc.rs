//! `bmon produce` publishes RPC snapshots of real Core, BSV and Litecoin nodes, and stays up, saying
//! why, when the RPC endpoint is wrong, down or silent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::path::Path;
use std::time::Duration;

use bmon_schemas::{RpcOutcome, RpcSnapshotFact};
use bmon_testbed::{Implementation, TestBed, poll_until};
use common::*;

const RPC_TOPIC: &str = "bmon.node.rpc";
const RPC_PARTITIONS: i32 = 6;

fn ok_methods<'a>(facts: &[&'a RpcSnapshotFact]) -> std::collections::BTreeSet<&'a str> {
    facts.iter().filter(|f| matches!(f.outcome, RpcOutcome::Ok(_))).map(|f| f.method.as_str()).collect()
}

fn json_of(f: &RpcSnapshotFact) -> serde_json::Value {
    let RpcOutcome::Ok(ok) = &f.outcome else { panic!("{} failed", f.method) };
    serde_json::from_str(&ok.json).unwrap()
}

#[test]
fn core_bsv_and_litecoin_rpc_snapshots() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let mut nodes = Vec::new();
    for implementation in [Implementation::Core, Implementation::Bsv, Implementation::Litecoin] {
        let net = bed.start_network(implementation, 1).unwrap();
        let node = bed.network(net).node(0);
        let sources = format!(
            "[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 1\ntxoutset_interval_s = 1\n",
            node.rpc_url(),
            node.cookie_path().display()
        );
        nodes.push((
            net,
            node.name().to_owned(),
            start_producer_with(&bed, node.name(), implementation.as_str(), &sources, &brokers),
        ));
    }
    let mut reader = TopicReader::<RpcSnapshotFact>::new(&brokers, RPC_TOPIC, RPC_PARTITIONS);
    // Every implementation answers these; the rest may be missing on one of them.
    let common = [
        "getblockchaininfo",
        "getchaintips",
        "getmempoolinfo",
        "getrawmempool",
        "getpeerinfo",
        "getnetworkinfo",
        "gettxoutsetinfo",
    ];
    let names: Vec<String> = nodes.iter().map(|(_, n, _)| n.clone()).collect();
    let complete = |facts: &[RpcSnapshotFact]| {
        names.iter().all(|n| {
            let mine: Vec<&RpcSnapshotFact> = facts.iter().filter(|f| &f.envelope.node_id == n).collect();
            common.iter().all(|m| ok_methods(&mine).contains(m))
        })
    };
    assert!(reader.read_until(Duration::from_secs(60), complete), "not every snapshot arrived");
    for (net, name, _) in &nodes {
        let facts = reader.of(name);
        let tip = bed.network(*net).node(0).tip().unwrap();
        let tips =
            facts.iter().rev().find(|f| f.method == "getchaintips" && matches!(f.outcome, RpcOutcome::Ok(_))).unwrap();
        assert!(
            json_of(tips).as_array().unwrap().iter().any(|t| t["hash"] == tip.as_str()),
            "{name}: tip not in getchaintips"
        );
        assert!(facts.iter().all(|f| f.envelope.source.stream == format!("rpc:{}", f.method)));
        // gettxoutsetinfo on its own schedule, with the cheapest hash each implementation takes
        // (regtest nodes have no coinstatsindex).
        let txoutset = facts.iter().find(|f| f.method == "gettxoutsetinfo" && matches!(f.outcome, RpcOutcome::Ok(_)));
        let params = &txoutset.unwrap().params;
        let want = match bed.network(*net).implementation() {
            Implementation::Core => r#"["none",null,false]"#,
            Implementation::Litecoin => r#"["none"]"#,
            Implementation::Bsv => "[]",
        };
        assert_eq!(params, want, "{name}: gettxoutsetinfo params");
        assert!(json_of(txoutset.unwrap()).get("txouts").is_some(), "{name}: a UTXO set summary");
        // No `[node] version` here: the node's own, from getnetworkinfo, goes on the facts after it.
        let info = facts.iter().find(|f| f.method == "getnetworkinfo" && matches!(f.outcome, RpcOutcome::Ok(_)));
        let subversion = json_of(info.unwrap())["subversion"].as_str().unwrap().trim_matches('/').to_owned();
        assert!(!subversion.is_empty(), "{name}: a subversion");
        let last = facts.last().unwrap();
        assert_eq!(last.envelope.node_version, subversion, "{name}: the learned version");
        // A method the node lacks is tried once and then left alone.
        for f in facts.iter().filter(|f| matches!(&f.outcome, RpcOutcome::Err(e) if e.code == Some(-32601))) {
            assert_eq!(facts.iter().filter(|g| g.method == f.method).count(), 1, "{name}: {} retried", f.method);
        }
    }
}

fn producer_log(bed: &TestBed, node_id: &str) -> String {
    std::fs::read_to_string(bed.dir().join(format!("producer-{node_id}/producer.log"))).unwrap_or_default()
}

fn wait_for_log(bed: &TestBed, node_id: &str, needle: &str) {
    poll_until(&format!("`{needle}` in {node_id}'s log"), Duration::from_secs(60), Duration::from_millis(100), || {
        producer_log(bed, node_id).contains(needle).then_some(())
    })
    .unwrap();
}

/// Wrong credentials, a port nobody listens on, and a server that never answers: the producer
/// stays up, says which it is, and publishes the failures as facts.
#[test]
fn rpc_failures_are_explained_and_survived() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 1).unwrap();
    let url = bed.network(net).node(0).rpc_url();
    let pw = bed.dir().join("wrong-password");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let silent = std::net::TcpListener::bind(("127.0.0.1", bed.service_port(2))).unwrap();
    let cases = [
        (
            "badauth",
            format!("url = \"{url}\"\nuser = \"__cookie__\"\npassword_file = \"{}\"\n", pw.display()),
            "authentication failed",
        ),
        (
            "down",
            format!(
                "url = \"http://127.0.0.1:{}\"\ncookie_file = \"{}\"\n",
                bed.service_port(3),
                cookie(&bed, net).display()
            ),
            "connection refused",
        ),
        (
            "silent",
            format!(
                "url = \"http://127.0.0.1:{}\"\ncookie_file = \"{}\"\ntimeout_s = 1\n",
                bed.service_port(2),
                cookie(&bed, net).display()
            ),
            "timed out",
        ),
    ];
    let mut producers = Vec::new();
    for (id, section, _) in &cases {
        producers.push(start_producer_with(&bed, id, "core", &format!("[rpc]\n{section}interval_s = 1\n"), &brokers));
    }
    for (id, _, needle) in &cases {
        wait_for_log(&bed, id, needle);
    }
    let mut reader = TopicReader::<RpcSnapshotFact>::new(&brokers, RPC_TOPIC, RPC_PARTITIONS);
    let failed = |facts: &[RpcSnapshotFact]| {
        cases.iter().all(|(id, _, needle)| {
            facts.iter().any(|f| {
                &f.envelope.node_id == id && matches!(&f.outcome, RpcOutcome::Err(e) if e.message.contains(needle))
            })
        })
    };
    assert!(reader.read_until(Duration::from_secs(60), failed), "failure facts missing");
    for p in &mut producers {
        p.check_alive().expect("the producer stays up");
    }
    // The password never reaches the log.
    assert!(!producer_log(&bed, "badauth").contains("not-the-password"));
    drop(silent);
}

fn cookie(bed: &TestBed, net: usize) -> std::path::PathBuf {
    let p = bed.network(net).node(0).cookie_path();
    assert!(Path::new(&p).exists());
    p
}

/// A Core node with a synced coinstatsindex gets `gettxoutsetinfo` with `use_index` true (the
/// index answers at once, where a scan of a mainnet UTXO set takes minutes); the producer asks
/// getindexinfo to know.
#[test]
fn gettxoutsetinfo_uses_a_synced_coinstatsindex() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 1).unwrap();
    bed.network_mut(net).nodes_mut()[0].restart_with(&["-coinstatsindex=1"]).unwrap();
    let node = bed.network(net).node(0);
    poll_until("the coinstatsindex to sync", Duration::from_secs(60), Duration::from_millis(200), || {
        let info: serde_json::Value = node.call("getindexinfo", &[]).ok()?;
        info["coinstatsindex"]["synced"].as_bool().filter(|s| *s)
    })
    .unwrap();
    let sources = format!(
        "[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 1\ntxoutset_interval_s = 1\n",
        node.rpc_url(),
        node.cookie_path().display()
    );
    let _producer = start_producer_with(&bed, node.name(), "core", &sources, &brokers);
    let mut reader = TopicReader::<RpcSnapshotFact>::new(&brokers, RPC_TOPIC, RPC_PARTITIONS);
    let answered = |f: &RpcSnapshotFact| f.method == "gettxoutsetinfo" && matches!(f.outcome, RpcOutcome::Ok(_));
    assert!(reader.read_until(Duration::from_secs(60), |facts| facts.iter().any(answered)), "no gettxoutsetinfo");
    let fact = reader.facts.iter().find(|f| answered(f)).unwrap();
    assert_eq!(fact.params, r#"["none",null,true]"#, "the index is used");
    let summary = json_of(fact);
    assert_eq!(summary["height"], 101, "{summary}");
    assert!(summary.get("txouts").is_some() && summary.get("total_amount").is_some(), "{summary}");
}
