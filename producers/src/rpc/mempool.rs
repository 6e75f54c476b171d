//! The mempool's transaction list, published as deltas with periodic chunked full snapshots, so
//! that no fact outgrows the topic at mainnet scale (300 000 txids are about 20 MB of JSON).
//! Pure: a getrawmempool result in, the facts' JSON out.
//!
//! Each fact of the `rpc:getrawmempool` stream carries its place in the stream as its source
//! offset (`seq`), counted per poller session:
//! - a full snapshot is `chunks` facts in a row, `{"encoding": "bmon-mempool-v1", "kind": "full",
//!   "chunk": i, "chunks": n, "txids": [...]}`: the node's whole list when the last is read;
//! - a delta is `{"encoding": "bmon-mempool-v1", "kind": "delta", "added": [...], "removed":
//!   [...]}`: the change since the fact at `seq - 1`.
//!
//! A consumer applies a delta only on top of the fact before it in the same session; after a
//! gap it waits for the next full snapshot. The encoding is lossless: the node's list at every
//! round is the last full snapshot with the deltas after it applied (docs/design.md, "Mempool").

use std::collections::HashSet;

use serde_json::{Value, json};

/// The `encoding` field of the facts.
pub const ENCODING: &str = "bmon-mempool-v1";

/// Room left in a fact for its envelope and framing, bytes.
const ENVELOPE_ROOM: usize = 4096;

/// Keeps the last published list and turns each new one into facts.
#[derive(Debug, Clone)]
pub struct MempoolEncoder {
    held: HashSet<String>,
    next_seq: i64,
    rounds_since_full: u32,
    full_every: u32,
    max_bytes: usize,
    need_full: bool,
}

impl MempoolEncoder {
    /// A full snapshot every `full_every` rounds (and first); no fact's JSON over `max_bytes`.
    pub fn new(full_every: u32, max_bytes: usize) -> MempoolEncoder {
        MempoolEncoder {
            held: HashSet::new(),
            next_seq: 0,
            rounds_since_full: 0,
            full_every: full_every.max(1),
            max_bytes: max_bytes.saturating_sub(ENVELOPE_ROOM).max(1024),
            need_full: true,
        }
    }

    /// A fact was not published (the spool refused it): the next round is a full snapshot.
    pub fn lost(&mut self) {
        self.need_full = true;
    }

    /// The facts of one getrawmempool result, as (seq, JSON); None if it is not a list of txids
    /// (then it is published as the node sent it). An unchanged list gives an empty delta, so
    /// that consumers know the node was polled.
    pub fn encode(&mut self, result: &Value) -> Option<Vec<(i64, String)>> {
        let list = result.as_array()?;
        let now: HashSet<String> = list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        self.rounds_since_full += 1;
        let facts = if self.need_full || self.rounds_since_full >= self.full_every {
            self.full(&now)
        } else {
            let mut added: Vec<&str> = now.difference(&self.held).map(String::as_str).collect();
            let mut removed: Vec<&str> = self.held.difference(&now).map(String::as_str).collect();
            added.sort_unstable();
            removed.sort_unstable();
            let delta =
                json!({ "encoding": ENCODING, "kind": "delta", "added": added, "removed": removed }).to_string();
            if delta.len() > self.max_bytes { self.full(&now) } else { vec![delta] }
        };
        self.held = now;
        Some(facts.into_iter().map(|f| (self.take_seq(), f)).collect())
    }

    /// A failed call, or an answer that was not a list: its fact's seq. The next list goes out
    /// in full, since consumers do not apply a delta across a fact they cannot read.
    pub fn failed(&mut self) -> i64 {
        self.need_full = true;
        self.take_seq()
    }

    fn take_seq(&mut self) -> i64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    fn full(&mut self, now: &HashSet<String>) -> Vec<String> {
        self.need_full = false;
        self.rounds_since_full = 0;
        let mut txids: Vec<&str> = now.iter().map(String::as_str).collect();
        txids.sort_unstable();
        let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
        let mut bytes = 0;
        // A txid costs its length, two quotes and a comma; the rest of a chunk is under 200 bytes.
        let budget = self.max_bytes.saturating_sub(200);
        for t in txids {
            if bytes + t.len() + 3 > budget && chunks.last().is_some_and(|c| !c.is_empty()) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += t.len() + 3;
            if let Some(c) = chunks.last_mut() {
                c.push(t);
            }
        }
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                json!({ "encoding": ENCODING, "kind": "full", "chunk": i, "chunks": n, "txids": c }).to_string()
            })
            .collect()
    }
}

/// A getblocktemplate result without its transactions' raw data (megabytes on mainnet), each
/// transaction's size kept in `size`. Anything else is returned unchanged.
pub fn template_without_data(mut result: Value) -> Value {
    if let Some(txs) = result.get_mut("transactions").and_then(Value::as_array_mut) {
        for t in txs.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::String(data)) = t.remove("data") {
                t.entry("size").or_insert(json!(data.len() / 2));
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn txid(i: u32) -> String {
        format!("{i:064x}")
    }

    /// Applies facts as a consumer does: the list after each fact, or None while incomplete.
    fn apply(facts: &[(i64, String)], set: &mut Option<BTreeSet<String>>, building: &mut Vec<String>) {
        for (_, f) in facts {
            let v: Value = serde_json::from_str(f).unwrap();
            let strs =
                |k: &str| v[k].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect::<Vec<_>>();
            match v["kind"].as_str().unwrap() {
                "full" => {
                    if v["chunk"] == 0 {
                        building.clear();
                    }
                    building.extend(strs("txids"));
                    if v["chunk"].as_u64().unwrap() + 1 == v["chunks"].as_u64().unwrap() {
                        *set = Some(building.drain(..).collect());
                    }
                }
                _ => {
                    let s = set.as_mut().unwrap();
                    strs("removed").iter().for_each(|t| {
                        s.remove(t);
                    });
                    s.extend(strs("added"));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn the_facts_rebuild_every_round_s_list_and_none_is_too_big(
            rounds in proptest::collection::vec(proptest::collection::btree_set(0u32..400, 0..300), 1..12),
            full_every in 1u32..5,
        ) {
            let max = 8 * 1024;
            let mut enc = MempoolEncoder::new(full_every, max);
            let (mut set, mut building, mut seq) = (None, Vec::new(), 0);
            for r in rounds {
                let list: Vec<String> = r.iter().map(|i| txid(*i)).collect();
                let facts = enc.encode(&json!(list)).unwrap();
                for (s, f) in &facts {
                    prop_assert_eq!(*s, seq, "seq counts facts");
                    prop_assert!(f.len() <= max, "a fact of {} bytes", f.len());
                    seq += 1;
                }
                apply(&facts, &mut set, &mut building);
                prop_assert_eq!(set.clone().unwrap(), list.into_iter().collect::<BTreeSet<_>>());
            }
        }
    }

    #[test]
    fn a_full_snapshot_comes_first_every_n_rounds_and_after_a_loss() {
        let mut enc = MempoolEncoder::new(3, 1 << 20);
        let kind = |facts: Vec<(i64, String)>| serde_json::from_str::<Value>(&facts[0].1).unwrap()["kind"].clone();
        let l = json!([txid(1)]);
        assert_eq!(kind(enc.encode(&l).unwrap()), "full");
        assert_eq!(kind(enc.encode(&l).unwrap()), "delta");
        assert_eq!(kind(enc.encode(&l).unwrap()), "delta");
        assert_eq!(kind(enc.encode(&l).unwrap()), "full");
        enc.lost();
        assert_eq!(kind(enc.encode(&l).unwrap()), "full");
        assert!(enc.encode(&json!({ "txids": [] })).is_none(), "not a list: published as sent");
    }

    #[test]
    fn a_template_loses_its_raw_data_but_keeps_sizes() {
        let t =
            json!({ "height": 3, "transactions": [{ "txid": "aa", "data": "00112233", "fee": 1 }, { "txid": "bb" }] });
        let out = template_without_data(t);
        assert_eq!(out["transactions"][0], json!({ "txid": "aa", "size": 4, "fee": 1 }));
        assert_eq!(out["transactions"][1], json!({ "txid": "bb" }));
        assert_eq!(template_without_data(json!(5)), json!(5));
    }
}
