//! Policy divergence: a transaction some nodes of a network accepted and another rejected for a
//! policy reason. Pure.
//!
//! Every node's verdict on a transaction (its `mempool_accept` or `mempool_reject` event, as a
//! [`TxVerdict`] keyed by txid) meets in one window ([`crate::windowed`]), which closes
//! `window_us` after the first. Rejections that say nothing about policy are left out: a
//! duplicate (`txn-already-in-mempool`, `txn-already-known`), a missing or spent input (an
//! orphan, a block that confirmed a conflict), a conflict (`txn-mempool-conflict`, a double
//! spend: reported by the conflict check, not here), and a node that accepted it after all.

use std::collections::BTreeMap;

use bmon_schemas::{NodeVerdict, PolicyDivergence, TxVerdict};
use serde::{Deserialize, Serialize};

use crate::windowed::{Closed, Windowed};

/// Reject reasons that are no policy difference.
const NOT_POLICY: &[&str] = &[
    "bad-txns-inputs-missingorspent",
    "missing-inputs",
    "txn-already-in-mempool",
    "txn-already-known",
    "txn-double-spend-detected",
    "txn-mempool-conflict",
    "insufficient fee, rejecting replacement",
];

/// Reject reasons (as logged, with their detail) that say the transaction conflicts with one
/// the node holds: a double spend, or a replacement the node refused.
const CONFLICT: &[&str] = &[
    "txn-mempool-conflict",
    "txn-double-spend-detected",
    "insufficient fee, rejecting replacement",
    "bip125-replacement-disallowed",
    "too many potential replacements",
    "replacement-adds-unconfirmed",
];

/// Whether a reject reason, as logged with its detail, says the transaction conflicts with one
/// the node holds.
pub fn is_conflict(logged: &str) -> bool {
    CONFLICT.iter().any(|r| logged.trim().starts_with(r))
}

/// Whether a reject reason says the node's policy differs.
pub fn is_policy(reason: &str) -> bool {
    !NOT_POLICY.iter().any(|r| reason.trim().starts_with(r))
}

/// One transaction's verdicts so far: node → (version, reason; empty when accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    accepted: BTreeMap<String, String>,
    rejected: BTreeMap<String, (String, String)>,
}

/// The open transactions of one partition.
pub type Transactions = Windowed<Verdicts>;

/// What one verdict did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Added {
    /// The verdict came after its transaction closed.
    pub late: bool,
    /// Divergences closed by the verdict's event time.
    pub closed: Vec<PolicyDivergence>,
}

/// Adds one node's verdict; closes what its event time makes due.
pub fn add(t: &mut Transactions, v: &TxVerdict, window_us: i64) -> Added {
    let late = match t.record(&v.network, &v.txid, v.at_us) {
        Some(verdicts) if v.accepted => {
            verdicts.accepted.insert(v.node_id.clone(), v.node_version.clone());
            false
        }
        Some(verdicts) => {
            if is_policy(&v.reason) {
                verdicts.rejected.entry(v.node_id.clone()).or_insert((v.node_version.clone(), v.reason.clone()));
            }
            false
        }
        None => true,
    };
    Added { late, closed: diverged(t.close_by_records(window_us), window_us) }
}

/// The divergences among transactions closed `window_us` after their first verdict.
pub fn diverged(closed: Vec<Closed<Verdicts>>, window_us: i64) -> Vec<PolicyDivergence> {
    closed.into_iter().filter_map(|c| divergence(c, window_us)).collect()
}

fn divergence(c: Closed<Verdicts>, window_us: i64) -> Option<PolicyDivergence> {
    let v = c.value;
    let rejected_by: Vec<NodeVerdict> = v
        .rejected
        .iter()
        .filter(|(node, _)| !v.accepted.contains_key(*node))
        .map(|(node, (version, reason))| NodeVerdict {
            node_id: node.clone(),
            node_version: version.clone(),
            reason: reason.clone(),
        })
        .collect();
    if v.accepted.is_empty() || rejected_by.is_empty() {
        return None;
    }
    let accepted_by = v
        .accepted
        .iter()
        .map(|(node, version)| NodeVerdict {
            node_id: node.clone(),
            node_version: version.clone(),
            reason: String::new(),
        })
        .collect();
    Some(PolicyDivergence {
        network: c.network,
        txid: c.key,
        accepted_by,
        rejected_by,
        first_at_us: c.closed_at_us - window_us,
        closed_at_us: c.closed_at_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(node: &str, tx: &str, reason: Option<&str>, at: i64) -> TxVerdict {
        TxVerdict {
            node_id: node.to_owned(),
            network: "regtest".to_owned(),
            node_version: format!("{node}-v"),
            txid: tx.to_owned(),
            accepted: reason.is_none(),
            reason: reason.unwrap_or_default().to_owned(),
            at_us: at,
        }
    }

    #[test]
    fn accepted_by_some_and_refused_by_another_for_policy_is_a_divergence() {
        let mut t = Transactions::default();
        let w = 60;
        add(&mut t, &verdict("a", "op-return", None, 0), w);
        add(&mut t, &verdict("b", "op-return", None, 1), w);
        add(&mut t, &verdict("c", "op-return", Some("datacarrier"), 2), w);
        // Not policy: a conflict, a duplicate; and a node that accepted after all.
        add(&mut t, &verdict("a", "spend", None, 3), w);
        add(&mut t, &verdict("b", "spend", Some("txn-mempool-conflict"), 4), w);
        add(&mut t, &verdict("a", "again", None, 5), w);
        add(&mut t, &verdict("a", "again", Some("txn-already-in-mempool"), 6), w);
        add(&mut t, &verdict("a", "flip", Some("dust"), 7), w);
        add(&mut t, &verdict("a", "flip", None, 8), w);
        add(&mut t, &verdict("b", "flip", None, 9), w);
        let closed = add(&mut t, &verdict("a", "later", None, 100), w).closed;
        assert_eq!(closed.len(), 1, "{closed:?}");
        let d = &closed[0];
        assert_eq!(d.txid, "op-return");
        let names = |v: &[NodeVerdict]| v.iter().map(|n| n.node_id.clone()).collect::<Vec<_>>();
        assert_eq!((names(&d.accepted_by), names(&d.rejected_by)), (vec!["a".into(), "b".into()], vec!["c".into()]));
        assert_eq!((d.rejected_by[0].reason.as_str(), d.rejected_by[0].node_version.as_str()), ("datacarrier", "c-v"));
        assert_eq!(d.first_at_us, 0);
        assert!(add(&mut t, &verdict("d", "op-return", Some("dust"), 101), w).late);
    }
}
