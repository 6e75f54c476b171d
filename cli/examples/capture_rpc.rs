//! Captures real RPC results from the test bed into `tests/fixtures/rpc`, for the typed views'
//! golden tests (`processors/tests/rpc_views.rs`).
//!
//! For each implementation (Core v31.99, BSV 1.0.13, Litecoin 0.21) it starts two connected
//! regtest nodes, mines, forks once (so getchaintips has a side branch), leaves transactions in the
//! mempool, and saves node 0's answers to getblockchaininfo, getchaintips, getmempoolinfo,
//! getblocktemplate, gettxoutsetinfo and getpeerinfo, with the parameters the producer uses, as
//! `<implementation>-<version>-regtest-<method>.json`.
//!
//! Run: `cargo run -p bmon --example capture_rpc [core|bsv|litecoin]` (after `make tools`). The
//! files are checked in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A capture script: fail loudly.

use std::path::PathBuf;

use bmon_producer::config::{Implementation as Impl, TxOutSetHash};
use bmon_producer::rpc::PollPlan;
use bmon_producer::rpc::plan::txoutset_call;
use bmon_testbed::{Implementation, TestBed};
use serde_json::Value;

fn capture(implementation: Implementation, version: &str) {
    let mut bed = TestBed::new().unwrap();
    let n = bed.start_network(implementation, 2).unwrap();
    let net = bed.network(n);
    net.mine(1, 2).unwrap();
    net.mine(0, 1).unwrap();
    let reorg = net.reorg(0, 1).unwrap();
    eprintln!("{}: reorg {:?} -> {}", implementation.as_str(), reorg.orphaned, reorg.new_tip);
    for _ in 0..3 {
        net.send_tx(0).unwrap();
    }
    let which = match implementation {
        Implementation::Core => Impl::Core,
        Implementation::Bsv => Impl::Bsv,
        Implementation::Litecoin => Impl::Litecoin,
    };
    let plan = PollPlan::new(which);
    let mut calls: Vec<_> = plan
        .calls()
        .filter(|c| {
            ["getblockchaininfo", "getchaintips", "getmempoolinfo", "getblocktemplate", "getpeerinfo"]
                .contains(&c.method)
        })
        .cloned()
        .collect();
    calls.push(txoutset_call(which, TxOutSetHash::None, false));
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/rpc"));
    std::fs::create_dir_all(&dir).unwrap();
    for call in calls {
        let result: Value = net.node(0).call(call.method, &call.params).unwrap();
        let path = dir.join(format!("{}-{version}-regtest-{}.json", implementation.as_str(), call.method));
        std::fs::write(&path, serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
        eprintln!("wrote {}", path.display());
    }
}

fn main() {
    let which = std::env::args().nth(1);
    for (implementation, version) in
        [(Implementation::Core, "v31.99"), (Implementation::Bsv, "1.0.13"), (Implementation::Litecoin, "0.21")]
    {
        if which.as_deref().is_none_or(|w| w == implementation.as_str()) {
            capture(implementation, version);
        }
    }
}
