use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const S: i64 = 1_000_000;

fn tx(i: u8) -> String {
    format!("{:064x}", i)
}

fn full(txids: &[u8]) -> MempoolTxids {
    MempoolTxids::Full { chunk: 0, chunks: 1, txids: txids.iter().map(|i| tx(*i)).collect() }
}

fn config() -> PresenceConfig {
    PresenceConfig {
        span_us: 30 * S,
        alive_us: 600 * S,
        min_txs: 1,
        every_us: 0,
        samples: 3,
        conflict_keep_us: 3600 * S,
    }
}

/// One step of a node's feed: a full snapshot in `chunks` chunks, a delta, or a lost fact.
#[derive(Debug, Clone)]
enum Step {
    Full(BTreeSet<u8>, u32),
    Delta(BTreeSet<u8>),
    Lost,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (proptest::collection::btree_set(0u8..40, 0..20), 1u32..4).prop_map(|(s, c)| Step::Full(s, c)),
        proptest::collection::btree_set(0u8..40, 0..20).prop_map(Step::Delta),
        Just(Step::Lost),
    ]
}

proptest! {
    /// Whatever the order of full snapshots, deltas and lost facts, a node whose list is known
    /// holds exactly its last list, and one after a gap is unknown until its next snapshot; and
    /// the rows written at each checkpoint restore the same state.
    #[test]
    fn each_node_s_list_is_its_last_one_and_rows_restore_it(
        steps in proptest::collection::vec((0usize..3, step()), 1..40),
    ) {
        let nodes = ["a", "b", "c"];
        let mut p = Presence::default();
        let mut seq = [0i64; 3];
        let mut model: [Option<BTreeSet<u8>>; 3] = Default::default();
        let mut now: [BTreeSet<u8>; 3] = Default::default();
        let mut gap = [false; 3];
        let mut restored = Presence::default();
        for (i, (n, s)) in steps.into_iter().enumerate() {
            let at = i as i64 * S;
            match s {
                Step::Full(set, chunks) => {
                    let v: Vec<u8> = set.iter().copied().collect();
                    let per = v.len().div_ceil(chunks as usize).max(1);
                    let parts: Vec<&[u8]> = if v.is_empty() { vec![&[][..]] } else { v.chunks(per).collect() };
                    let k = parts.len() as u32;
                    for (c, part) in parts.iter().enumerate() {
                        let f = MempoolTxids::Full { chunk: c as u32, chunks: k, txids: part.iter().map(|t| tx(*t)).collect() };
                        p.apply(nodes[n], "e", seq[n], &f, at);
                        seq[n] += 1;
                    }
                    model[n] = Some(set.clone());
                    gap[n] = false;
                    now[n] = set;
                }
                Step::Delta(set) => {
                    let added = set.difference(&now[n]).map(|t| tx(*t)).collect();
                    let removed = now[n].difference(&set).map(|t| tx(*t)).collect();
                    p.apply(nodes[n], "e", seq[n], &MempoolTxids::Delta { added, removed }, at);
                    seq[n] += 1;
                    // A lost fact is noticed at the next: the list is then unknown.
                    model[n] = model[n].take().filter(|_| !gap[n]).map(|_| set.clone());
                    now[n] = set;
                }
                Step::Lost => {
                    seq[n] += 1;
                    gap[n] = true;
                }
            }
            for (k, node) in nodes.iter().enumerate() {
                let want = model[k].as_ref().map(|s| s.iter().map(|t| parse_txid(&tx(*t)).unwrap()).collect::<Vec<_>>());
                let got = p.held_by(node);
                // A node never heard from has no list either way.
                if want.is_some() || got.is_some() {
                    prop_assert_eq!(got, want, "node {}", node);
                }
            }
            prop_assert!(p.checkpointable());
            for (k, v) in p.take_rows() {
                match v {
                    Some(v) => prop_assert!(restored.put_row(&k, &v)),
                    None => { restored.entries.remove(&Txid::try_from(k.as_slice()).unwrap()); }
                }
            }
            restored.feeds = p.feeds.clone();
            restored.markers = p.markers.clone();
            prop_assert_eq!(&restored, &p);
        }
    }

    /// With lists that stay put past the span, missing and extra are what a brute-force
    /// majority count gives, and similarity is the Jaccard index to the majority set.
    #[test]
    fn settled_lists_give_the_brute_force_majority_figures(
        sets in proptest::collection::vec(proptest::collection::btree_set(0u8..30, 0..25), 2..6),
    ) {
        let c = config();
        let mut p = Presence::default();
        let names: Vec<String> = (0..sets.len()).map(|i| format!("n{i}")).collect();
        for (name, set) in names.iter().zip(&sets) {
            p.apply(name, "e", 0, &full(&set.iter().copied().collect::<Vec<_>>()), 0);
        }
        p.compare(&c, "regtest", S);
        let later = 100 * S;
        for (name, set) in names.iter().zip(&sets) {
            p.apply(name, "e", 1, &MempoolTxids::Delta { added: vec![], removed: vec![] }, later);
            let _ = set;
        }
        let got = p.compare(&c, "regtest", later);
        let n = sets.len();
        let all: BTreeSet<u8> = sets.iter().flatten().copied().collect();
        let majority: BTreeSet<u8> = all.iter().copied().filter(|t| 2 * sets.iter().filter(|s| s.contains(t)).count() > n).collect();
        for (f, set) in got.figures.iter().zip(&sets) {
            prop_assert_eq!(f.missing, majority.difference(set).count() as i64);
            prop_assert_eq!(f.extra, set.difference(&majority).count() as i64);
            let union = set.union(&majority).count();
            let want = if union == 0 { 1.0 } else { set.intersection(&majority).count() as f64 / union as f64 };
            prop_assert!((f.similarity - want).abs() < 1e-9);
        }
    }
}

#[test]
fn a_transaction_still_relaying_is_no_divergence_but_one_left_out_is() {
    let c = config();
    let mut p = Presence::default();
    p.apply("a", "e", 0, &full(&[1, 2]), 0);
    p.apply("b", "e", 0, &full(&[1, 2]), 0);
    p.apply("c", "e", 0, &full(&[1, 2]), 0);
    // 3 reaches a and b; c never gets it.
    let add3 = MempoolTxids::Delta { added: vec![tx(3)], removed: vec![] };
    let none = MempoolTxids::Delta { added: vec![], removed: vec![] };
    p.apply("a", "e", 1, &add3, 40 * S);
    p.apply("b", "e", 1, &add3, 41 * S);
    p.apply("c", "e", 1, &none, 42 * S);
    let young = p.compare(&c, "regtest", 45 * S);
    assert!(young.changes.is_empty(), "3 is still young: {young:?}");
    assert!(young.figures.iter().all(|f| f.missing == 0 && f.similarity == 1.0));
    let old = p.compare(&c, "regtest", 80 * S);
    assert_eq!(old.changes.len(), 1, "{old:?}");
    let d = &old.changes[0];
    assert_eq!((d.node_id.as_str(), d.diverged, d.missing, d.extra), ("c", true, 1, 0));
    assert_eq!(d.missing_sample, vec![tx(3)]);
    // c gets it after all: the divergence is over.
    p.apply("c", "e", 2, &add3, 90 * S);
    let over = p.compare(&c, "regtest", 91 * S);
    assert!(over.changes.len() == 1 && !over.changes[0].diverged, "{over:?}");
}

#[test]
fn a_double_spend_is_a_conflict_not_a_missing_or_extra_transaction() {
    let c = config();
    let mut p = Presence::default();
    for n in ["a", "b", "c"] {
        p.apply(n, "e", 0, &full(&[1]), 0);
    }
    // a holds 8, b and c hold 9, its double spend; a refused 9, b and c refused 8.
    let delta = |t: u8| MempoolTxids::Delta { added: vec![tx(t)], removed: vec![] };
    p.apply("a", "e", 1, &delta(8), S);
    p.apply("b", "e", 1, &delta(9), S);
    p.apply("c", "e", 1, &delta(9), S);
    let refused = |node: &str, t: u8| TxConflict {
        node_id: node.into(),
        network: "regtest".into(),
        node_version: "v31".into(),
        txid: tx(t),
        reason: "txn-mempool-conflict".into(),
        at_us: S,
    };
    p.conflict(&refused("a", 9), c.conflict_keep_us);
    p.conflict(&refused("b", 8), c.conflict_keep_us);
    let early = p.compare(&c, "regtest", 10 * S);
    assert!(early.conflicts.is_empty(), "reported a span after the first refusal: {:?}", early.conflicts);
    p.conflict(&refused("c", 8), c.conflict_keep_us);
    let out = p.compare(&c, "regtest", 100 * S);
    assert!(out.changes.is_empty(), "no divergence: {:?}", out.changes);
    let pairs: Vec<_> = out.conflicts.iter().map(|x| (x.txid.clone(), x.held_by.clone())).collect();
    assert_eq!(pairs, vec![(tx(8), vec!["a".to_owned()]), (tx(9), vec!["b".to_owned(), "c".to_owned()])]);
    let late: Vec<&str> = out.conflicts[0].refused_by.iter().map(|r| r.node_id.as_str()).collect();
    assert_eq!(late, ["b", "c"], "a refusal within the span is in the event");
    let a = out.figures.iter().find(|f| f.node_id == "a").unwrap();
    assert_eq!((a.missing, a.extra, a.conflicts), (0, 0, 1));
    assert!(p.compare(&c, "regtest", 101 * S).conflicts.is_empty(), "reported once");
}

#[test]
fn a_fact_delivered_twice_is_ignored_and_a_node_that_leaves_stops_diverging() {
    let c = config();
    let mut p = Presence::default();
    for n in ["a", "b", "c"] {
        p.apply(n, "e", 0, &full(&[1, 2, 3, 4]), 0);
    }
    let drop3 = MempoolTxids::Delta { added: vec![], removed: vec![tx(1), tx(2), tx(3)] };
    assert_eq!(p.apply("c", "e", 1, &drop3, 0), Applied::Applied);
    assert_eq!(p.apply("c", "e", 1, &drop3, 0), Applied::Duplicate, "the same fact again");
    assert_eq!(p.apply("c", "e", 0, &full(&[1, 2, 3, 4]), 0), Applied::Duplicate, "an older one");
    assert!(p.held_by("c").is_some(), "still known");
    p.compare(&c, "regtest", 50 * S);
    let out = p.compare(&c, "regtest", 100 * S);
    assert!(out.changes.iter().any(|d| d.node_id == "c" && d.diverged), "{out:?}");
    // c's next fact is lost: its list is unknown, so it no longer counts as diverged.
    let none = MempoolTxids::Delta { added: vec![], removed: vec![] };
    assert_eq!(p.apply("c", "e", 3, &none, 101 * S), Applied::Gap);
    let out = p.compare(&c, "regtest", 102 * S);
    assert!(out.changes.iter().any(|d| d.node_id == "c" && !d.diverged), "{out:?}");
}

#[test]
fn a_snapshot_cut_short_leaves_no_marks_behind() {
    let mut p = Presence::default();
    p.apply("a", "e", 0, &full(&[1]), 0);
    let part = MempoolTxids::Full { chunk: 0, chunks: 2, txids: vec![tx(7)] };
    p.apply("b", "e", 0, &part, 0);
    assert!(!p.checkpointable());
    // Its second chunk never comes; a delta does.
    let none = MempoolTxids::Delta { added: vec![], removed: vec![] };
    assert_eq!(p.apply("b", "e", 2, &none, S), Applied::Gap);
    assert!(p.checkpointable());
    assert_eq!(p.len().1, 1, "the half-read snapshot's transaction is gone");
}

#[test]
fn txids_parse_only_as_64_hex_digits() {
    let t = tx(0xab);
    assert_eq!(txid_hex(&parse_txid(&t).unwrap()), t);
    assert!(parse_txid("ab").is_none());
    assert!(parse_txid(&"zz".repeat(32)).is_none());
}
