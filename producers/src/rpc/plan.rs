//! Which calls a poll round makes, per implementation, and which to stop making. Pure.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::config::{Implementation, TxOutSetHash};

/// One RPC call of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Method name.
    pub method: &'static str,
    /// Parameters.
    pub params: Vec<Value>,
}

/// The methods polled each round, and those the node turned out not to have.
#[derive(Debug, Clone)]
pub struct PollPlan {
    calls: Vec<Call>,
    missing: BTreeSet<&'static str>,
}

/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;

impl PollPlan {
    /// The standard snapshot set for `implementation` (gettxoutsetinfo runs on its own
    /// schedule: [`txoutset_call`]).
    pub fn new(implementation: Implementation) -> PollPlan {
        let gbt_rules = match implementation {
            Implementation::Core => vec![json!({ "rules": ["segwit"] })],
            Implementation::Litecoin => vec![json!({ "rules": ["mweb", "segwit"] })],
            Implementation::Bsv => vec![],
        };
        let call = |method, params| Call { method, params };
        PollPlan {
            // getnetworkinfo first: the node's version, when not configured, is learned from it
            // before the round's other facts go out.
            calls: vec![
                call("getnetworkinfo", vec![]),
                call("getblockchaininfo", vec![]),
                call("getchaintips", vec![]),
                call("getmempoolinfo", vec![]),
                call("getrawmempool", vec![]),
                call("getblocktemplate", gbt_rules),
                call("getpeerinfo", vec![]),
                call("uptime", vec![]),
            ],
            missing: BTreeSet::new(),
        }
    }

    /// The calls to make this round.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter().filter(|c| !self.missing.contains(c.method))
    }

    /// Records that the node does not know `method`; true the first time (log it once).
    pub fn mark_missing(&mut self, method: &'static str) -> bool {
        self.missing.insert(method)
    }
}

/// The gettxoutsetinfo call for `implementation`: the cheapest hash asked for, and the
/// coinstatsindex when the node has a synced one (Core ≥ 22; then the call answers at once).
/// Litecoin 0.21 takes only the hash type, BSV no parameter.
pub fn txoutset_call(implementation: Implementation, hash: TxOutSetHash, use_index: bool) -> Call {
    let name = |serialized: &'static str| match hash {
        TxOutSetHash::None => "none",
        TxOutSetHash::Muhash => "muhash",
        TxOutSetHash::HashSerialized => serialized,
    };
    let params = match implementation {
        Implementation::Core => vec![json!(name("hash_serialized_3")), Value::Null, json!(use_index)],
        Implementation::Litecoin => vec![json!(name("hash_serialized_2"))],
        Implementation::Bsv => vec![],
    };
    Call { method: "gettxoutsetinfo", params }
}

/// Whether a getindexinfo result shows a synced coinstatsindex.
pub fn has_coinstatsindex(getindexinfo: &Value) -> bool {
    getindexinfo.get("coinstatsindex").and_then(|i| i.get("synced")).and_then(Value::as_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_version_follows_the_node_and_a_configured_one_stays() {
        let learned = crate::publish::NodeVersion::new("");
        let shared = learned.clone();
        assert!(learned.learn("/Satoshi:31.99.0/"));
        assert_eq!(shared.get(), "Satoshi:31.99.0", "clones share it");
        assert!(!learned.learn("/Satoshi:31.99.0/"));
        assert!(learned.learn("/Satoshi:32.0.0/"), "an upgrade");
        let configured = crate::publish::NodeVersion::new("v31.99.0");
        assert!(!configured.learn("/Satoshi:32.0.0/"));
        assert_eq!(configured.get(), "v31.99.0");
    }

    #[test]
    fn missing_methods_are_dropped_once() {
        let mut p = PollPlan::new(Implementation::Bsv);
        let n = p.calls().count();
        assert!(p.mark_missing("getblocktemplate"));
        assert!(!p.mark_missing("getblocktemplate"));
        assert_eq!(p.calls().count(), n - 1);
    }

    #[test]
    fn txoutset_parameters_follow_the_implementation() {
        let c = txoutset_call(Implementation::Core, TxOutSetHash::None, true);
        assert_eq!(c.params, vec![json!("none"), Value::Null, json!(true)]);
        let c = txoutset_call(Implementation::Core, TxOutSetHash::HashSerialized, false);
        assert_eq!(c.params[0], json!("hash_serialized_3"));
        assert_eq!(txoutset_call(Implementation::Litecoin, TxOutSetHash::Muhash, true).params, vec![json!("muhash")]);
        assert!(txoutset_call(Implementation::Bsv, TxOutSetHash::None, false).params.is_empty());
    }

    #[test]
    fn coinstatsindex_counts_only_when_synced() {
        assert!(has_coinstatsindex(&json!({ "coinstatsindex": { "synced": true, "best_block_height": 5 } })));
        assert!(!has_coinstatsindex(&json!({ "coinstatsindex": { "synced": false } })));
        assert!(!has_coinstatsindex(&json!({ "txindex": { "synced": true } })));
        assert!(!has_coinstatsindex(&json!([])));
    }

    #[test]
    fn template_rules_follow_the_implementation() {
        let gbt = |i| PollPlan::new(i).calls().find(|c| c.method == "getblocktemplate").unwrap().params.clone();
        assert_eq!(gbt(Implementation::Bsv), Vec::<Value>::new());
        assert_eq!(gbt(Implementation::Core), vec![json!({ "rules": ["segwit"] })]);
    }
}
