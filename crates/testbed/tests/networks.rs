//! The test bed's real node networks mine, relay, send and reorganise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use bmon_testbed::{Implementation, TestBed};

/// Core v31.99: three nodes mine and relay blocks, relay a transaction, and one reorganises.
#[test]
fn core_network_mines_relays_and_reorgs() {
    let mut bed = TestBed::new().unwrap();
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let net = bed.network(net);
    for node in net.nodes() {
        assert_eq!(node.height().unwrap(), 101, "{} did not sync the bootstrap chain", node.name());
    }
    // Each node mines; every block reaches every node.
    for i in 0..3 {
        let hashes = net.mine(i, 1).unwrap();
        for node in net.nodes() {
            assert_eq!(node.tip().unwrap(), hashes[0]);
        }
    }
    // Transactions relay to every mempool (send_tx waits for that) and confirm.
    let first = net.send_tx(0).unwrap();
    let second = net.send_tx(0).unwrap();
    assert_ne!(first, second);
    let block = net.mine(1, 1).unwrap();
    let mined: serde_json::Value = net.node(2).call("getblock", &[block[0].clone().into()]).unwrap();
    let txids: Vec<&str> = mined["tx"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert!(txids.contains(&first.as_str()) && txids.contains(&second.as_str()), "{txids:?}");
    // A two-block reorg on node 2.
    let height_before = net.node(2).height().unwrap();
    let reorg = net.reorg(2, 2).unwrap();
    assert_eq!(reorg.orphaned.len(), 2);
    assert_ne!(reorg.old_tip, reorg.new_tip);
    assert_eq!(net.node(2).height().unwrap(), height_before + 3);
    let tips: Vec<serde_json::Value> = net.node(2).call("getchaintips", &[]).unwrap();
    let stale = tips.iter().find(|t| t["hash"] == reorg.old_tip.as_str()).unwrap();
    assert_eq!(stale["status"], "valid-fork");
    assert_eq!(stale["branchlen"], 2);
    // The node logged it in Core's v31 format.
    let log = std::fs::read_to_string(net.node(2).log_path()).unwrap();
    assert!(log.contains("UpdateTip: new best="), "no UpdateTip lines in {}", net.node(2).log_path().display());
}

/// BSV v1.0.13: two nodes mine and relay blocks and a wallet transaction, and one reorganises.
#[test]
fn bsv_network_mines_relays_and_reorgs() {
    let mut bed = TestBed::new().unwrap();
    let net = bed.start_network(Implementation::Bsv, 2).unwrap();
    let net = bed.network(net);
    for i in 0..2 {
        let hashes = net.mine(i, 1).unwrap();
        assert_eq!(net.node(1 - i).tip().unwrap(), hashes[0]);
    }
    let txid = net.send_tx(0).unwrap();
    assert!(net.node(1).in_mempool(&txid).unwrap());
    let reorg = net.reorg(1, 1).unwrap();
    assert_ne!(reorg.old_tip, reorg.new_tip);
    assert!(net.node(0).zmq_endpoint().is_some());
    let log = std::fs::read_to_string(net.node(1).log_path()).unwrap();
    assert!(log.contains("UpdateTip"), "no UpdateTip in {}", net.node(1).log_path().display());
}

/// Litecoin Core 0.21: two nodes mine and relay blocks and a wallet transaction.
#[test]
fn litecoin_network_mines_and_relays() {
    let mut bed = TestBed::new().unwrap();
    let net = bed.start_network(Implementation::Litecoin, 2).unwrap();
    let net = bed.network(net);
    let hashes = net.mine(1, 2).unwrap();
    assert_eq!(net.node(0).tip().unwrap(), hashes[1]);
    let txid = net.send_tx(0).unwrap();
    assert!(net.node(1).in_mempool(&txid).unwrap());
    let log = std::fs::read_to_string(net.node(0).log_path()).unwrap();
    assert!(log.contains("UpdateTip"));
}

/// Prometheus from Debian starts, scrapes a target and answers PromQL about it.
#[test]
fn prometheus_scrapes_and_answers_queries() {
    let mut bed = TestBed::new().unwrap();
    let prom = bed.prometheus(&[], &[]).unwrap();
    let up = bmon_testbed::poll_until(
        "prometheus to scrape itself",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(200),
        || prom.query("up{job=\"prometheus\"} == 1").ok().filter(|r| !r.is_empty()),
    )
    .unwrap();
    assert_eq!(up[0]["metric"]["job"], "prometheus");
}
