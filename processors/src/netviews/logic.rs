//! One RPC snapshot to one typed view, and getchaintips to a node event as well. Pure.

use bmon_schemas::{ChainTipEntry, ChainTips, EventBody, NodeEvent, NodeView, RpcOutcome, RpcSnapshotFact};

use crate::views::{self, BlockTemplate, BlockchainInfo, MempoolInfo, MempoolTxids, TxOutSetInfo, ViewError};

/// The methods a view exists for.
pub const METHODS: [&str; 7] = [
    "getblockchaininfo",
    "getchaintips",
    "getmempoolinfo",
    "getrawmempool",
    "getblocktemplate",
    "gettxoutsetinfo",
    "getpeerinfo",
];

/// What became of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its view.
    View(NodeView),
    /// The call failed, or its method has no view or is not wanted: nothing to publish.
    Skipped,
}

/// The view of `fact`, if `methods` wants its method and the call succeeded. JSON the view cannot
/// read at all (not an object or list) is an error, which the runtime dead-letters.
pub fn view_of(fact: &RpcSnapshotFact, methods: &[String]) -> Result<Outcome, ViewError> {
    let RpcOutcome::Ok(ok) = &fact.outcome else { return Ok(Outcome::Skipped) };
    if !methods.contains(&fact.method) {
        return Ok(Outcome::Skipped);
    }
    let json = &ok.json;
    let encode =
        |v: Result<String, serde_json::Error>| v.map_err(|e| ViewError { method: "view", message: e.to_string() });
    let view_json = match fact.method.as_str() {
        "getblockchaininfo" => encode(serde_json::to_string(&BlockchainInfo::parse(json)?))?,
        "getchaintips" => encode(serde_json::to_string(&views::chain_tips(json)?))?,
        "getmempoolinfo" => encode(serde_json::to_string(&MempoolInfo::parse(json)?))?,
        "getrawmempool" => encode(serde_json::to_string(&MempoolTxids::parse(json)?))?,
        "getblocktemplate" => encode(serde_json::to_string(&BlockTemplate::parse(json)?.without_data()))?,
        "gettxoutsetinfo" => encode(serde_json::to_string(&TxOutSetInfo::parse(json)?))?,
        "getpeerinfo" => encode(serde_json::to_string(&views::peer_info(json)?))?,
        _ => return Ok(Outcome::Skipped),
    };
    Ok(Outcome::View(NodeView { envelope: fact.envelope.clone(), method: fact.method.clone(), view_json }))
}

/// A getchaintips snapshot as a node event, keyed by its node beside the log's events: the chain
/// processor sees every source of a node's reorgs in one partition. Entries without a hash or
/// height are left out. None for other methods and failed calls.
pub fn chain_tips_event(fact: &RpcSnapshotFact) -> Result<Option<NodeEvent>, ViewError> {
    let RpcOutcome::Ok(ok) = &fact.outcome else { return Ok(None) };
    if fact.method != "getchaintips" {
        return Ok(None);
    }
    let tips = views::chain_tips(&ok.json)?
        .into_iter()
        .filter_map(|t| {
            Some(ChainTipEntry {
                hash: t.hash?,
                height: i64::try_from(t.height?).ok()?,
                branchlen: t.branchlen.and_then(|b| i64::try_from(b).ok()).unwrap_or(0),
                status: t.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Some(NodeEvent {
        envelope: fact.envelope.clone(),
        index: 0,
        logged_at_us: None,
        thread: None,
        category: None,
        event: EventBody::ChainTips(ChainTips { tips }),
    }))
}

#[cfg(test)]
mod tests {
    use bmon_schemas::{RpcErr, RpcOk, samples};

    use super::*;

    fn fact(method: &str, outcome: RpcOutcome) -> RpcSnapshotFact {
        RpcSnapshotFact { method: method.into(), outcome, ..samples::rpc_facts()[0].clone() }
    }

    fn all() -> Vec<String> {
        METHODS.iter().map(|m| (*m).to_owned()).collect()
    }

    #[test]
    fn a_template_keeps_sizes_but_not_raw_data() {
        let json = r#"{"height": 7, "transactions": [{"txid": "aa", "fee": 5, "data": "00112233"}], "extra": 1}"#;
        let f = fact("getblocktemplate", RpcOutcome::Ok(RpcOk { json: json.into() }));
        let Outcome::View(v) = view_of(&f, &all()).unwrap() else { panic!("no view") };
        let t = BlockTemplate::parse(&v.view_json).unwrap();
        assert_eq!((t.height, t.txs()[0].size(), t.txs()[0].data.as_deref()), (Some(7), Some(4), None));
        assert!(!v.view_json.contains("extra"), "unknown fields are dropped");
    }

    #[test]
    fn failures_and_unwanted_methods_give_nothing() {
        let failed = fact("getchaintips", RpcOutcome::Err(RpcErr { code: Some(-28), message: "warming up".into() }));
        assert_eq!(view_of(&failed, &all()).unwrap(), Outcome::Skipped);
        let uptime = fact("uptime", RpcOutcome::Ok(RpcOk { json: "5".into() }));
        assert_eq!(view_of(&uptime, &all()).unwrap(), Outcome::Skipped);
        let tips = fact("getchaintips", RpcOutcome::Ok(RpcOk { json: "[]".into() }));
        assert_eq!(view_of(&tips, &["getmempoolinfo".to_owned()]).unwrap(), Outcome::Skipped);
        let garbage = fact("getchaintips", RpcOutcome::Ok(RpcOk { json: "{".into() }));
        assert!(view_of(&garbage, &all()).is_err());
    }

    #[test]
    fn chain_tips_become_a_node_event() {
        let json = r#"[{"height": 7, "hash": "aa", "branchlen": 0, "status": "active"},
                       {"height": 6, "hash": "bb", "branchlen": 1, "status": "valid-fork"},
                       {"height": 5, "branchlen": 2, "status": "headers-only"}]"#;
        let f = fact("getchaintips", RpcOutcome::Ok(RpcOk { json: json.into() }));
        let e = chain_tips_event(&f).unwrap().unwrap();
        assert_eq!(e.envelope, f.envelope);
        let EventBody::ChainTips(t) = e.event else { panic!("not chain tips") };
        let got: Vec<_> = t.tips.iter().map(|x| (x.hash.as_str(), x.height, x.branchlen, x.status.as_str())).collect();
        assert_eq!(got, [("aa", 7, 0, "active"), ("bb", 6, 1, "valid-fork")], "the entry without a hash is left out");
        let other = fact("getmempoolinfo", RpcOutcome::Ok(RpcOk { json: "{}".into() }));
        assert_eq!(chain_tips_event(&other).unwrap(), None);
    }
}
