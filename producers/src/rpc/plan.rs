//! Which calls a poll round makes, per implementation, and which to stop making. Pure.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::config::Implementation;

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
    /// Also call gettxoutsetinfo when the tip changes (expensive on mainnet).
    pub txoutset_on_new_tip: bool,
    last_tip: Option<String>,
}

/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;

impl PollPlan {
    /// The standard snapshot set for `implementation`.
    pub fn new(implementation: Implementation, txoutset_on_new_tip: bool) -> PollPlan {
        let gbt_rules = match implementation {
            Implementation::Core => vec![json!({ "rules": ["segwit"] })],
            Implementation::Litecoin => vec![json!({ "rules": ["mweb", "segwit"] })],
            Implementation::Bsv => vec![],
        };
        let call = |method, params| Call { method, params };
        PollPlan {
            calls: vec![
                call("getblockchaininfo", vec![]),
                call("getchaintips", vec![]),
                call("getmempoolinfo", vec![]),
                call("getrawmempool", vec![]),
                call("getblocktemplate", gbt_rules),
                call("getpeerinfo", vec![]),
                call("getnetworkinfo", vec![]),
                call("uptime", vec![]),
            ],
            missing: BTreeSet::new(),
            txoutset_on_new_tip,
            last_tip: None,
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

    /// Feeds a getblockchaininfo result; returns the gettxoutsetinfo call when the tip changed and
    /// txoutset snapshots are on.
    pub fn after_chain_info(&mut self, result: &Value) -> Option<Call> {
        let tip = result.get("bestblockhash").and_then(Value::as_str).map(String::from);
        let changed = tip.is_some() && tip != self.last_tip;
        self.last_tip = tip;
        (changed && self.txoutset_on_new_tip && !self.missing.contains("gettxoutsetinfo"))
            .then(|| Call { method: "gettxoutsetinfo", params: vec![] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_methods_are_dropped_once() {
        let mut p = PollPlan::new(Implementation::Bsv, false);
        let n = p.calls().count();
        assert!(p.mark_missing("getblocktemplate"));
        assert!(!p.mark_missing("getblocktemplate"));
        assert_eq!(p.calls().count(), n - 1);
    }

    #[test]
    fn txoutset_only_on_a_new_tip_when_enabled() {
        let mut p = PollPlan::new(Implementation::Core, true);
        let info = json!({ "bestblockhash": "aa" });
        assert!(p.after_chain_info(&info).is_some());
        assert!(p.after_chain_info(&info).is_none());
        assert!(p.after_chain_info(&json!({ "bestblockhash": "bb" })).is_some());
        let mut off = PollPlan::new(Implementation::Core, false);
        assert!(off.after_chain_info(&info).is_none());
    }

    #[test]
    fn template_rules_follow_the_implementation() {
        let gbt = |i| PollPlan::new(i, false).calls().find(|c| c.method == "getblocktemplate").unwrap().params.clone();
        assert_eq!(gbt(Implementation::Bsv), Vec::<Value>::new());
        assert_eq!(gbt(Implementation::Core), vec![json!({ "rules": ["segwit"] })]);
    }
}
