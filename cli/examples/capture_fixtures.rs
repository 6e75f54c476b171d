//! Captures real node logs from the test bed into `tests/fixtures`, for the log parser's golden
//! tests.
//!
//! For each implementation (Core v31.99, BSV 1.0.13, Litecoin 0.21) it starts two connected
//! regtest nodes and drives: start-up, mining, transactions relayed between the nodes, a double
//! spend (so each node rejects the other's transaction from a peer), a one-block reorg, an
//! `invalidateblock`/`reconsiderblock` pair, and a clean shutdown. The first node's log is copied
//! to `tests/fixtures/<implementation>-<version>-regtest.log`, with the data directory replaced by
//! `/data` so the file does not depend on the machine.
//!
//! Run: `cargo run -p bmon --example capture_fixtures` (after `make tools`). The captured files are
//! checked in; the golden outputs beside them are reviewed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A capture script: fail loudly.

use std::path::PathBuf;

use std::time::Duration;

use bmon_testbed::{Implementation, TestBed, poll_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"))
}

fn capture(implementation: Implementation, version: &str) {
    let mut bed = TestBed::new().unwrap();
    let n = bed.start_network(implementation, 2).unwrap();
    let net = bed.network(n);
    net.mine(1, 2).unwrap();
    for _ in 0..3 {
        net.send_tx(0).unwrap();
    }
    net.mine(0, 1).unwrap();
    // A double spend: node 1 is cut off, each node accepts one version, and after reconnecting
    // node 1 relays its version, which node 0 rejects from a peer. Node 0 gets the higher fee, so
    // Core's full RBF refuses the other as a replacement.
    let (low, high) = net.node(0).conflicting_pair().unwrap();
    let (n0, n1) = (net.node(0), net.node(1));
    let low_txid = if implementation == Implementation::Bsv {
        // BSV does not relay a resubmitted transaction; submitting both at once races the relay,
        // which BSV's batched relay loses.
        let high = n0.send_raw(&high);
        let low = n1.send_raw(&low);
        eprintln!("bsv: {high:?} {low:?}");
        low.unwrap()
    } else {
        n1.set_network_active(false).unwrap();
        poll_until("node 1 offline", WAIT, POLL, || (n0.peer_count().ok() == Some(0)).then_some(())).unwrap();
        n0.send_raw(&high).unwrap();
        let low_txid = n1.send_raw(&low).unwrap();
        n1.set_network_active(true).unwrap();
        n1.call::<Value>("addnode", &[json!(n0.p2p_addr()), json!("onetry")]).unwrap();
        poll_until("node 1 back, handshake done", WAIT, POLL, || {
            let peers: Vec<Value> = n1.call("getpeerinfo", &[]).ok()?;
            peers.iter().any(|p| p["version"].as_i64().unwrap_or(0) > 0).then_some(())
        })
        .unwrap();
        let _ = n1.send_raw(&low); // Core relays a resubmitted mempool transaction again.
        low_txid
    };
    let log = n0.log_path();
    let seen = poll_until("node 0 to log the conflicting tx", WAIT, POLL, || {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains(&low_txid)).map(|_| ())
    });
    eprintln!("{}: double spend, {low_txid} seen by node 0: {seen:?}", implementation.as_str());
    net.mine(0, 1).unwrap();
    let reorg = net.reorg(0, 1).unwrap();
    eprintln!("{}: reorg {:?} -> {}", implementation.as_str(), reorg.orphaned, reorg.new_tip);
    let tip = net.node(0).tip().unwrap();
    net.node(0).call::<Value>("invalidateblock", &[json!(tip)]).unwrap();
    net.node(0).call::<Value>("reconsiderblock", &[json!(tip)]).unwrap();
    net.mine(1, 1).unwrap();
    let log = net.node(0).log_path();
    let datadir = net.node(0).datadir().display().to_string();
    bed.network_mut(n).nodes_mut()[0].shutdown();
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).replace(&datadir, "/data");
    let home = std::env::var("HOME").unwrap_or_default();
    let text = if home.len() > 1 { text.replace(&home, "/home/user") } else { text };
    let out = fixtures_dir().join(format!("{}-{version}-regtest.log", implementation.as_str()));
    std::fs::write(&out, text).unwrap();
    println!("wrote {}", out.display());
}

fn main() {
    let only = std::env::args().nth(1);
    for (implementation, version) in
        [(Implementation::Core, "v31.99"), (Implementation::Bsv, "1.0.13"), (Implementation::Litecoin, "0.21")]
    {
        if only.as_deref().is_none_or(|o| o == implementation.as_str()) {
            capture(implementation, version);
        }
    }
}
