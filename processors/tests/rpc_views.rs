//! The typed RPC views read real answers of Core v31.99, BSV 1.0.13 and Litecoin 0.21
//! (`tests/fixtures/rpc`, captured by `cargo run -p bmon --example capture_rpc`), and tolerate
//! missing, extra and mistyped fields.
//!
//! Each capture is of node 0 of two regtest nodes after 106 blocks, a one-block fork and three
//! mempool transactions, so the expected values below are the bed's, read off the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bmon_processors::views::{
    BlockTemplate, BlockchainInfo, MempoolInfo, TipStatus, TxOutSetInfo, chain_tips, peer_info,
};

const IMPLS: [&str; 3] = ["core-v31.99", "bsv-1.0.13", "litecoin-0.21"];

fn fixture(which: &str, method: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/rpc");
    std::fs::read_to_string(format!("{dir}/{which}-regtest-{method}.json")).unwrap()
}

#[test]
fn blockchain_info_of_every_implementation() {
    for which in IMPLS {
        let v = BlockchainInfo::parse(&fixture(which, "getblockchaininfo")).unwrap();
        assert_eq!(v.chain.as_deref(), Some("regtest"), "{which}");
        assert_eq!((v.blocks, v.headers), (Some(106), Some(106)), "{which}");
        assert_eq!(v.bestblockhash.as_ref().map(String::len), Some(64), "{which}");
        assert!(v.mediantime.is_some() && v.chainwork.is_some(), "{which}");
        // Only Core sends the tip's time (since v23); BSV sends no initialblockdownload either.
        assert_eq!(v.time.is_some(), which == "core-v31.99", "{which}: time");
        assert_eq!(v.initialblockdownload.is_some(), which != "bsv-1.0.13", "{which}: ibd");
    }
    let core = BlockchainInfo::parse(&fixture("core-v31.99", "getblockchaininfo")).unwrap();
    assert_eq!(core.warning_list().len(), 1, "Core v31 sends warnings as a list");
}

#[test]
fn chain_tips_with_a_fork() {
    for which in IMPLS {
        let tips = chain_tips(&fixture(which, "getchaintips")).unwrap();
        let active: Vec<_> = tips.iter().filter(|t| t.status == Some(TipStatus::Active)).collect();
        assert_eq!(active.len(), 1, "{which}");
        assert_eq!((active[0].height, active[0].branchlen), (Some(106), Some(0)), "{which}");
        assert!(
            tips.iter().any(|t| t.status == Some(TipStatus::ValidFork) && t.branchlen == Some(1)),
            "{which}: the one-block fork"
        );
    }
}

#[test]
fn mempool_and_template_hold_the_three_transactions() {
    for which in IMPLS {
        let m = MempoolInfo::parse(&fixture(which, "getmempoolinfo")).unwrap();
        assert_eq!(m.size, Some(3), "{which}");
        assert!(m.bytes.unwrap() > 0 && m.usage.unwrap() > 0 && m.maxmempool.unwrap() > 0, "{which}");
        assert_eq!(m.loaded.is_some(), which != "bsv-1.0.13", "{which}: loaded");
        let t = BlockTemplate::parse(&fixture(which, "getblocktemplate")).unwrap();
        assert_eq!(t.height, Some(107), "{which}");
        assert_eq!(t.txs().len(), 3, "{which}");
        assert!(t.txs().iter().all(|x| x.txid.is_some() && x.fee.is_some() && x.size().unwrap() > 0), "{which}");
        assert_eq!(t.txs().iter().all(|x| x.weight.is_some()), which != "bsv-1.0.13", "{which}: weight");
        assert!(t.coinbasevalue.unwrap() > t.total_fees(), "{which}: subsidy plus fees");
        // The view netviews writes reads back strictly to the same template.
        let view = serde_json::to_string(&t.clone().without_data()).unwrap();
        assert_eq!(BlockTemplate::from_view(&view).unwrap(), t.without_data(), "{which}");
    }
}

#[test]
fn txoutset_and_peers() {
    for which in IMPLS {
        let u = TxOutSetInfo::parse(&fixture(which, "gettxoutsetinfo")).unwrap();
        assert_eq!((u.height, u.txouts), (Some(106), Some(106)), "{which}");
        assert_eq!(u.total_amount, Some(5300.0), "{which}");
        // hash_type none on Core and Litecoin; BSV takes no parameter and sends its hash.
        assert_eq!(u.hash_serialized_3.is_some(), which == "bsv-1.0.13", "{which}: hash");
        let peers = peer_info(&fixture(which, "getpeerinfo")).unwrap();
        assert_eq!(peers.len(), 1, "{which}");
        assert!(peers[0].subver.is_some() && peers[0].version.unwrap() > 70000, "{which}");
    }
}

#[test]
fn missing_extra_and_mistyped_fields_are_none_not_errors() {
    let v = BlockchainInfo::parse(r#"{"blocks": "many", "chain": null, "new_field": {"x": 1}}"#).unwrap();
    assert_eq!((v.blocks, v.chain, v.headers), (None, None, None));
    let tips = chain_tips(r#"[{"height": 5, "status": "some-future-status"}, {}]"#).unwrap();
    assert_eq!(tips[0].status, Some(TipStatus::Other("some-future-status".into())));
    assert_eq!(tips[1], Default::default());
    let t = BlockTemplate::parse(r#"{"transactions": "not a list"}"#).unwrap();
    assert!(t.txs().is_empty());
    assert!(BlockchainInfo::parse("[1, 2]").is_err(), "not an object: an error, not a panic");
    assert!(chain_tips("{}").is_err());
}

proptest::proptest! {
    /// Any text, and any mutation of a real capture, gives a view or an error, never a panic.
    #[test]
    fn arbitrary_answers_never_panic(text in ".{0,200}", cut in 0usize..2000) {
        let _ = BlockchainInfo::parse(&text);
        let _ = chain_tips(&text);
        let real = fixture("core-v31.99", "getblocktemplate");
        let cut = cut.min(real.len());
        let _ = BlockTemplate::parse(&real[..cut]);
        let _ = BlockTemplate::parse(&real.replacen("\"fee\"", "\"fee\": \"x\", \"_\"", 1));
    }
}
