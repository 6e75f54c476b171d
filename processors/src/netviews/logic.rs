//! One RPC snapshot to one typed view. Pure.

use bmon_schemas::{NodeView, RpcOutcome, RpcSnapshotFact};

use crate::views::{self, BlockTemplate, BlockchainInfo, MempoolInfo, TxOutSetInfo, ViewError};

/// The methods a view exists for.
pub const METHODS: [&str; 6] =
    ["getblockchaininfo", "getchaintips", "getmempoolinfo", "getblocktemplate", "gettxoutsetinfo", "getpeerinfo"];

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
        "getblocktemplate" => encode(serde_json::to_string(&BlockTemplate::parse(json)?.without_data()))?,
        "gettxoutsetinfo" => encode(serde_json::to_string(&TxOutSetInfo::parse(json)?))?,
        "getpeerinfo" => encode(serde_json::to_string(&views::peer_info(json)?))?,
        _ => return Ok(Outcome::Skipped),
    };
    Ok(Outcome::View(NodeView { envelope: fact.envelope.clone(), method: fact.method.clone(), view_json }))
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
}
