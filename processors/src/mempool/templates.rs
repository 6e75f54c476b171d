//! Template divergence: each node's latest getblocktemplate compared with those of the other
//! nodes of its network on the same previous block. Pure.
//!
//! A transaction counts only if it was first seen (in any node's mempool list or template) at
//! least `skew_us` before the oldest of the compared templates was made, so a transaction that
//! arrived between two nodes' polls is no divergence. A node's *missing* are counted
//! transactions in the majority of the compared templates that its template lacks, its *extra*
//! the reverse; its totals (fees, weight, transaction count, coinbase value) stand beside the
//! medians. With at least `min_txs` missing and extra, a [`TemplateDivergence`] event, once per
//! node and previous block.
//!
//! Each node's template is persisted as a row of its own (txids as 32 bytes, with when each was
//! first seen), written only when that node's template changed ([`Templates::take_rows`]), so a
//! restarted processor compares exactly as one that never stopped.

use std::collections::{BTreeMap, HashMap};

use bmon_schemas::TemplateDivergence;
use serde::{Deserialize, Serialize};

use super::presence::{Txid, parse_txid, txid_hex};
use crate::views::BlockTemplate;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateConfig {
    /// The polling skew: transactions first seen later than this before the oldest compared
    /// template are not counted, µs.
    pub skew_us: i64,
    /// Templates older than this are not compared, µs.
    pub alive_us: i64,
    /// A template diverges with at least this many missing and extra transactions.
    pub min_txs: i64,
    /// Txids listed per sample.
    pub samples: usize,
    /// The network's templates are compared at most this often (event time), µs.
    pub every_us: i64,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig { skew_us: 15_000_000, alive_us: 60_000_000, min_txs: 5, samples: 10, every_us: 10_000_000 }
    }
}

/// One node's latest template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NodeTemplate {
    previous: String,
    height: i64,
    at_us: i64,
    #[serde(skip)]
    txids: Vec<Txid>,
    fees: i64,
    weight: i64,
    coinbase: i64,
}

impl NodeTemplate {
    /// The row: the scalars as JSON (length-prefixed), then each txid and its first sighting.
    fn to_row(&self, first_seen: &HashMap<Txid, i64, crate::propagation::Hasher>) -> Vec<u8> {
        let head = serde_json::to_vec(self).unwrap_or_default();
        let mut row = Vec::with_capacity(8 + head.len() + self.txids.len() * 40);
        row.extend_from_slice(&(head.len() as u64).to_be_bytes());
        row.extend_from_slice(&head);
        for t in &self.txids {
            row.extend_from_slice(t);
            row.extend_from_slice(&first_seen.get(t).copied().unwrap_or(self.at_us).to_be_bytes());
        }
        row
    }

    fn from_row(row: &[u8]) -> Option<(NodeTemplate, Vec<(Txid, i64)>)> {
        let n = usize::try_from(u64::from_be_bytes(row.get(..8)?.try_into().ok()?)).ok()?;
        let end = n.checked_add(8)?;
        let mut t: NodeTemplate = serde_json::from_slice(row.get(8..end)?).ok()?;
        let rest = row.get(end..)?;
        if rest.len() % 40 != 0 {
            return None;
        }
        let seen: Vec<(Txid, i64)> = rest
            .chunks_exact(40)
            .filter_map(|c| Some((c[..32].try_into().ok()?, i64::from_be_bytes(c[32..].try_into().ok()?))))
            .collect();
        t.txids = seen.iter().map(|(x, _)| *x).collect();
        Some((t, seen))
    }
}

/// One network's templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Templates {
    #[serde(skip)]
    nodes: BTreeMap<String, NodeTemplate>,
    #[serde(skip)]
    first_seen: HashMap<Txid, i64, crate::propagation::Hasher>,
    /// The previous block each node's divergence was last reported on.
    reported: BTreeMap<String, String>,
    /// When the templates were last compared, µs.
    #[serde(default)]
    last_compared_us: i64,
    /// Nodes whose row changed since the last [`Templates::take_rows`].
    #[serde(skip)]
    dirty: std::collections::BTreeSet<String>,
}

/// One node's figures at a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateFigures {
    /// The node.
    pub node_id: String,
    /// Jaccard similarity to the majority's transactions.
    pub similarity: f64,
    /// Missing transactions.
    pub missing: i64,
    /// Extra transactions.
    pub extra: i64,
}

/// What a template's arrival found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplatesCompared {
    /// Figures of every compared node.
    pub figures: Vec<TemplateFigures>,
    /// Divergences found.
    pub divergences: Vec<TemplateDivergence>,
}

impl Templates {
    /// `node`'s template, received at `at_us`; `mempool_first` tells when a transaction was
    /// first held by any node's mempool, if known. Compares it with the others on its block.
    pub fn add(
        &mut self,
        c: &TemplateConfig,
        network: &str,
        node: &str,
        t: &BlockTemplate,
        at_us: i64,
        mempool_first: impl Fn(&Txid) -> Option<i64>,
    ) -> TemplatesCompared {
        let Some(previous) = t.previousblockhash.clone() else { return TemplatesCompared::default() };
        let mut txids: Vec<Txid> =
            t.txs().iter().filter_map(|x| x.txid.as_deref().or(x.hash.as_deref()).and_then(parse_txid)).collect();
        txids.sort_unstable();
        txids.dedup();
        for x in &txids {
            let first = mempool_first(x).map_or(at_us, |m| m.min(at_us));
            let seen = self.first_seen.entry(*x).or_insert(first);
            *seen = (*seen).min(first);
        }
        let weight = t
            .txs()
            .iter()
            .map(|x| x.weight.or_else(|| x.size().map(|s| s.saturating_mul(4))).unwrap_or(0))
            .fold(0i64, |w, x| w.saturating_add(i64::try_from(x).unwrap_or(i64::MAX)));
        self.nodes.insert(
            node.to_owned(),
            NodeTemplate {
                previous: previous.clone(),
                height: t.height.and_then(|h| i64::try_from(h).ok()).unwrap_or(0),
                at_us,
                txids,
                fees: t.total_fees(),
                weight,
                coinbase: t.coinbasevalue.unwrap_or(0),
            },
        );
        self.dirty.insert(node.to_owned());
        let dirty = &mut self.dirty;
        let before = self.nodes.len();
        self.nodes.retain(|id, n| {
            let keep = at_us - n.at_us <= c.alive_us;
            if !keep {
                dirty.insert(id.clone());
            }
            keep
        });
        let due = at_us - self.last_compared_us >= c.every_us;
        // First sightings of transactions in no template go when a template expires (so that the
        // rows, which hold the sightings of the templates kept, restore the same map) or at a
        // comparison.
        if due || self.nodes.len() < before {
            let nodes = &self.nodes;
            self.first_seen.retain(|x, _| nodes.values().any(|n| n.txids.binary_search(x).is_ok()));
        }
        if !due {
            return TemplatesCompared::default();
        }
        self.last_compared_us = at_us;
        self.compare(c, network, &previous)
    }

    /// The rows changed since the last call: (node, Some(row)) or (node, None) for a template
    /// no longer compared.
    pub fn take_rows(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|n| {
                let row = self.nodes.get(&n).map(|t| t.to_row(&self.first_seen));
                (n.into_bytes(), row)
            })
            .collect()
    }

    /// A row given by [`Templates::take_rows`] was not written: it is given again next time.
    pub fn row_failed(&mut self, key: &[u8]) {
        if let Ok(node) = std::str::from_utf8(key) {
            self.dirty.insert(node.to_owned());
        }
    }

    /// Restores one row written by [`Templates::take_rows`]; false if it is malformed.
    pub fn put_row(&mut self, key: &[u8], row: &[u8]) -> bool {
        let (Ok(node), Some((t, seen))) = (std::str::from_utf8(key), NodeTemplate::from_row(row)) else { return false };
        for (x, first) in seen {
            let f = self.first_seen.entry(x).or_insert(first);
            *f = (*f).min(first);
        }
        self.nodes.insert(node.to_owned(), t);
        true
    }

    fn compare(&mut self, c: &TemplateConfig, network: &str, previous: &str) -> TemplatesCompared {
        let group: Vec<(&String, &NodeTemplate)> = self.nodes.iter().filter(|(_, n)| n.previous == previous).collect();
        let mut out = TemplatesCompared::default();
        if group.len() < 2 {
            return out;
        }
        let oldest = group.iter().map(|(_, n)| n.at_us).min().unwrap_or(0);
        let counted = |x: &Txid| self.first_seen.get(x).is_some_and(|f| *f <= oldest - c.skew_us);
        let mut holders: BTreeMap<Txid, usize> = BTreeMap::new();
        for (_, n) in &group {
            for x in n.txids.iter().filter(|x| counted(x)) {
                *holders.entry(*x).or_default() += 1;
            }
        }
        let majority: Vec<Txid> = holders.iter().filter(|(_, k)| 2 * **k > group.len()).map(|(x, _)| *x).collect();
        let median = |f: fn(&NodeTemplate) -> i64| {
            let mut v: Vec<i64> = group.iter().map(|(_, n)| f(n)).collect();
            v.sort_unstable();
            v[(v.len() - 1) / 2]
        };
        let (m_count, m_fees, m_weight, m_coinbase) =
            (median(|n| n.txids.len() as i64), median(|n| n.fees), median(|n| n.weight), median(|n| n.coinbase));
        let mut reports = Vec::new();
        for (node, n) in &group {
            let mine: Vec<Txid> = n.txids.iter().copied().filter(|x| counted(x)).collect();
            let missing: Vec<Txid> = majority.iter().copied().filter(|x| mine.binary_search(x).is_err()).collect();
            let extra: Vec<Txid> = mine.iter().copied().filter(|x| majority.binary_search(x).is_err()).collect();
            let inter = mine.len() - extra.len();
            let union = majority.len() + extra.len();
            let similarity = if union == 0 { 1.0 } else { inter as f64 / union as f64 };
            out.figures.push(TemplateFigures {
                node_id: (*node).clone(),
                similarity,
                missing: missing.len() as i64,
                extra: extra.len() as i64,
            });
            let diverged = (missing.len() + extra.len()) as i64 >= c.min_txs.max(1);
            if !diverged || self.reported.get(*node).is_some_and(|p| p == previous) {
                continue;
            }
            let sample = |v: &[Txid]| v.iter().take(c.samples).map(txid_hex).collect();
            reports.push((*node).clone());
            out.divergences.push(TemplateDivergence {
                node_id: (*node).clone(),
                network: network.to_owned(),
                previous_block: previous.to_owned(),
                height: n.height,
                nodes: group.len() as i64,
                similarity,
                missing: missing.len() as i64,
                extra: extra.len() as i64,
                missing_sample: sample(&missing),
                extra_sample: sample(&extra),
                tx_count: n.txids.len() as i64,
                median_tx_count: m_count,
                fees: n.fees,
                median_fees: m_fees,
                weight: n.weight,
                median_weight: m_weight,
                coinbase_value: n.coinbase,
                median_coinbase_value: m_coinbase,
                at_us: n.at_us,
            });
        }
        for node in reports {
            self.reported.insert(node, previous.to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const S: i64 = 1_000_000;

    fn tx(i: u8) -> String {
        format!("{:064x}", i)
    }

    fn template(prev: &str, txs: &[(u8, i64)]) -> BlockTemplate {
        let transactions: Vec<_> =
            txs.iter().map(|(t, fee)| json!({ "txid": tx(*t), "fee": fee, "weight": 400 })).collect();
        let fees: i64 = txs.iter().map(|(_, f)| f).sum();
        BlockTemplate::parse(
            &json!({ "previousblockhash": prev, "height": 7, "coinbasevalue": 5_000_000_000i64 + fees, "transactions": transactions })
                .to_string(),
        )
        .unwrap()
    }

    fn config() -> TemplateConfig {
        TemplateConfig { skew_us: 10 * S, alive_us: 60 * S, min_txs: 1, samples: 5, every_us: 0 }
    }

    #[test]
    fn a_node_leaving_out_low_fee_transactions_diverges_once_per_block() {
        let c = config();
        let mut t = Templates::default();
        let seen_early = |_: &Txid| Some(0);
        let full = [(1, 5_000), (2, 4_000), (3, 100), (4, 100)];
        assert!(t.add(&c, "regtest", "a", &template("p1", &full), 60 * S, seen_early).divergences.is_empty());
        t.add(&c, "regtest", "b", &template("p1", &full), 61 * S, seen_early);
        let out = t.add(&c, "regtest", "c", &template("p1", &full[..2]), 62 * S, seen_early);
        assert_eq!(out.divergences.len(), 1, "{out:?}");
        let d = &out.divergences[0];
        assert_eq!((d.node_id.as_str(), d.missing, d.extra, d.tx_count, d.median_tx_count), ("c", 2, 0, 2, 4));
        assert_eq!((d.fees, d.median_fees), (9_000, 9_200));
        assert_eq!(d.missing_sample, vec![tx(3), tx(4)]);
        assert!((d.similarity - 0.5).abs() < 1e-9);
        let again = t.add(&c, "regtest", "c", &template("p1", &full[..2]), 72 * S, seen_early);
        assert!(again.divergences.is_empty(), "once per block");
        assert_eq!(again.figures.iter().find(|f| f.node_id == "c").map(|f| f.missing), Some(2));
    }

    #[test]
    fn templates_restored_from_their_rows_compare_as_before() {
        let c = config();
        let mut t = Templates::default();
        let first = |x: &Txid| Some(if *x == parse_txid(&tx(2)).unwrap() { 50 * S } else { 0 });
        t.add(&c, "regtest", "a", &template("p1", &[(1, 10), (2, 10), (3, 10)]), 60 * S, first);
        let mut back = Templates { reported: t.reported.clone(), ..Templates::default() };
        for (k, v) in t.take_rows() {
            assert!(back.put_row(&k, &v.unwrap()));
        }
        assert_eq!(back.nodes, t.nodes);
        assert_eq!(back.first_seen, t.first_seen);
        let next = template("p1", &[(1, 10)]);
        let (x, y) =
            (t.add(&c, "regtest", "b", &next, 70 * S, |_| None), back.add(&c, "regtest", "b", &next, 70 * S, |_| None));
        assert_eq!(x, y);
        assert!(!x.divergences.is_empty());
        assert!(!back.put_row(b"c", b"short"), "a malformed row is refused, not a panic");
    }

    #[test]
    fn a_transaction_newer_than_the_polling_skew_is_no_divergence() {
        let c = config();
        let mut t = Templates::default();
        // Transaction 9 was first seen at 58 s: b's template at 55 s could not hold it.
        let first = |x: &Txid| Some(if *x == parse_txid(&tx(9)).unwrap() { 58 * S } else { 0 });
        t.add(&c, "regtest", "b", &template("p1", &[(1, 10)]), 55 * S, first);
        let out = t.add(&c, "regtest", "a", &template("p1", &[(1, 10), (9, 10)]), 60 * S, first);
        assert!(out.divergences.is_empty(), "{out:?}");
        // Templates on other blocks, or too old, are not compared.
        let other = t.add(&c, "regtest", "c", &template("p2", &[]), 61 * S, first);
        assert!(other.figures.is_empty());
    }
}
