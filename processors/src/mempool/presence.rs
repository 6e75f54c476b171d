//! Mempool divergence across a network's nodes. Pure: each node's txid list (the producer's
//! deltas and chunked full snapshots, [`MempoolTxids`]) and conflict markers in, divergence and
//! conflict events out.
//!
//! State is one entry per transaction held by any node: its txid as 32 bytes, a bitset of the
//! nodes holding it (at most [`MAX_NODES`] per network), when it was first held and since when
//! its holders have been split. At mainnet scale (300 000 transactions) that is about 25 MB,
//! whatever the number of nodes; the entries are persisted as rows, only those that changed
//! ([`Presence::take_rows`]).
//!
//! A transaction counts once it is *settled*: held for longer than the span, and either held by
//! every compared node or split between them for longer than the span. So a transaction still
//! relaying, or mined and not yet dropped by a node polled later, is no divergence. A node's
//! *missing* are settled transactions held by the majority of compared nodes that it lacks; its
//! *extra* those it holds and the majority lacks. One some node refused as conflicting
//! ([`TxConflict`]) is neither: it is that node's *conflict*, and a [`MempoolConflict`] event.

use std::collections::{BTreeMap, HashMap};

use bmon_schemas::{MempoolConflict, MempoolDivergence, NodeVerdict, TxConflict};
use serde::{Deserialize, Serialize};

use super::tally::Tally;
pub use super::txid::{Txid, parse_txid, txid_hex};
use crate::views::MempoolTxids;

/// Nodes per network the bitset can hold; more are left out of the comparison (and logged).
pub const MAX_NODES: usize = 64;

/// Conflict markers kept per network (they are in the partition's value, written at each
/// checkpoint).
pub const MAX_MARKERS: usize = 2_000;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// How long a transaction must be held, or split, before it counts, µs.
    pub span_us: i64,
    /// Nodes without a list for this long are not compared, µs.
    pub alive_us: i64,
    /// A node diverges with at least this many missing and extra transactions.
    pub min_txs: i64,
    /// The network is compared at most this often (event time), µs.
    pub every_us: i64,
    /// Txids listed per sample.
    pub samples: usize,
    /// Conflict markers are kept this long, µs.
    pub conflict_keep_us: i64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            span_us: 60_000_000,
            alive_us: 600_000_000,
            min_txs: 5,
            every_us: 10_000_000,
            samples: 10,
            conflict_keep_us: 3_600_000_000,
        }
    }
}

const NONE: i64 = i64::MIN;

/// One transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    bits: u64,
    /// Bits of full snapshots being read (not persisted: no checkpoint is taken mid-snapshot).
    pending: u64,
    first_us: i64,
    split_since_us: i64,
}

impl Entry {
    fn to_row(self) -> Vec<u8> {
        [self.bits.to_be_bytes(), self.first_us.to_be_bytes(), self.split_since_us.to_be_bytes()].concat()
    }

    fn from_row(v: &[u8]) -> Option<Entry> {
        let word = |i: usize| v.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok());
        Some(Entry {
            bits: u64::from_be_bytes(word(0)?),
            pending: 0,
            first_us: i64::from_be_bytes(word(1)?),
            split_since_us: i64::from_be_bytes(word(2)?),
        })
    }
}

/// One node's list feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Feed {
    bit: u8,
    epoch: String,
    last_seq: i64,
    /// Its list is known (a full snapshot, and every delta since).
    complete: bool,
    /// The next chunk expected of a full snapshot being read: (seq, chunk, chunks).
    building: Option<(i64, u32, u32)>,
    at_us: i64,
    diverged: bool,
}

/// A conflict marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    refused: BTreeMap<String, (String, String)>,
    at_us: i64,
    /// The first refusal's time: the conflict is reported `span_us` after it, so that the
    /// refusals relayed later are in the event too.
    #[serde(default)]
    first_us: i64,
    reported: bool,
}

/// One network's mempools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Presence {
    feeds: BTreeMap<String, Feed>,
    markers: BTreeMap<String, Marker>,
    last_eval_us: i64,
    #[serde(skip)]
    entries: HashMap<Txid, Entry, crate::propagation::Hasher>,
    #[serde(skip)]
    dirty: std::collections::HashSet<Txid, crate::propagation::Hasher>,
}

impl PartialEq for Presence {
    fn eq(&self, o: &Self) -> bool {
        self.feeds == o.feeds && self.markers == o.markers && self.entries == o.entries
    }
}

/// One node's figures at a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFigures {
    /// The node.
    pub node_id: String,
    /// Missing, extra and conflicting transactions.
    pub missing: i64,
    /// Extra.
    pub extra: i64,
    /// Conflicts.
    pub conflicts: i64,
    /// Similarity to the majority set.
    pub similarity: f64,
}

/// What a comparison found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compared {
    /// Every compared node's figures.
    pub figures: Vec<NodeFigures>,
    /// Nodes that began or stopped diverging.
    pub changes: Vec<MempoolDivergence>,
    /// Conflicts found.
    pub conflicts: Vec<MempoolConflict>,
}

/// What became of a list fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied.
    Applied,
    /// Not in order with the node's feed (a gap, or a chunk out of place): the node's list is
    /// unknown until its next full snapshot.
    Gap,
    /// A fact already applied (delivered again): ignored.
    Duplicate,
    /// The network has [`MAX_NODES`] nodes already.
    TooManyNodes,
}

impl Presence {
    /// Applies `node`'s list fact `seq` of session `epoch`, received at `at_us`.
    pub fn apply(&mut self, node: &str, epoch: &str, seq: i64, txids: &MempoolTxids, at_us: i64) -> Applied {
        if !self.feeds.contains_key(node) {
            let used: u64 = self.feeds.values().fold(0, |m, f| m | 1 << f.bit);
            let Some(bit) = (0..MAX_NODES as u8).find(|b| used & 1 << b == 0) else { return Applied::TooManyNodes };
            self.feeds.insert(node.to_owned(), Feed { bit, ..Feed::default() });
        }
        let Some(feed) = self.feeds.get_mut(node) else { return Applied::TooManyNodes };
        let b = 1u64 << feed.bit;
        if feed.epoch == epoch && seq <= feed.last_seq {
            return Applied::Duplicate;
        }
        let in_order = feed.epoch == epoch && feed.last_seq + 1 == seq;
        feed.epoch = epoch.to_owned();
        feed.last_seq = seq;
        feed.at_us = at_us;
        match txids {
            MempoolTxids::Full { chunk, chunks, txids } => {
                let expected = match feed.building {
                    Some((_, next, n)) if in_order => *chunk == next && *chunks == n,
                    _ => *chunk == 0,
                };
                if !expected {
                    feed.building = None;
                    feed.complete = false;
                    self.abandon(b);
                    return Applied::Gap;
                }
                let last = chunk + 1 == *chunks;
                feed.building = (!last).then_some((seq, chunk + 1, *chunks));
                if *chunk == 0 {
                    self.entries.values_mut().for_each(|e| e.pending &= !b);
                }
                for t in txids.iter().filter_map(|t| parse_txid(t)) {
                    let e = self.entries.entry(t).or_insert(Entry {
                        bits: 0,
                        pending: 0,
                        first_us: at_us,
                        split_since_us: NONE,
                    });
                    e.pending |= b;
                }
                if last {
                    self.finish_snapshot(b);
                    if let Some(f) = self.feeds.get_mut(node) {
                        f.complete = true;
                    }
                }
                Applied::Applied
            }
            MempoolTxids::Delta { added, removed } => {
                if !in_order || !feed.complete || feed.building.is_some() {
                    let was_building = feed.building.take().is_some();
                    feed.complete = false;
                    if was_building {
                        self.abandon(b);
                    }
                    return Applied::Gap;
                }
                for t in removed.iter().filter_map(|t| parse_txid(t)) {
                    self.set(t, b, false, at_us);
                }
                for t in added.iter().filter_map(|t| parse_txid(t)) {
                    self.set(t, b, true, at_us);
                }
                Applied::Applied
            }
        }
    }

    fn set(&mut self, t: Txid, b: u64, held: bool, at_us: i64) {
        let e = self.entries.entry(t).or_insert(Entry { bits: 0, pending: 0, first_us: at_us, split_since_us: NONE });
        let bits = if held { e.bits | b } else { e.bits & !b };
        if bits != e.bits {
            e.bits = bits;
            self.dirty.insert(t);
        }
        if e.bits == 0 && e.pending == 0 {
            self.entries.remove(&t);
            self.dirty.insert(t);
        }
    }

    /// Drops a full snapshot being read for bit `b`: its pending marks, and the entries only
    /// they held (never persisted).
    fn abandon(&mut self, b: u64) {
        self.entries.retain(|_, e| {
            e.pending &= !b;
            e.bits != 0 || e.pending != 0
        });
    }

    fn finish_snapshot(&mut self, b: u64) {
        let dirty = &mut self.dirty;
        self.entries.retain(|t, e| {
            let bits = (e.bits & !b) | (e.pending & b);
            e.pending &= !b;
            if bits != e.bits {
                e.bits = bits;
                dirty.insert(*t);
            }
            let keep = e.bits != 0 || e.pending != 0;
            if !keep {
                dirty.insert(*t);
            }
            keep
        });
    }

    /// A node refused `c.txid` as conflicting with a transaction it holds. Markers older than
    /// `keep_us` before it go, and at most [`MAX_MARKERS`] are kept (the oldest go first).
    pub fn conflict(&mut self, c: &TxConflict, keep_us: i64) {
        self.markers.retain(|_, m| c.at_us - m.at_us <= keep_us);
        while self.markers.len() >= MAX_MARKERS {
            let Some(oldest) = self.markers.iter().min_by_key(|(_, m)| m.at_us).map(|(k, _)| k.clone()) else { break };
            self.markers.remove(&oldest);
        }
        let m = self.markers.entry(c.txid.clone()).or_insert_with(|| Marker { first_us: c.at_us, ..Marker::default() });
        m.first_us = m.first_us.min(c.at_us);
        m.refused.entry(c.node_id.clone()).or_insert((c.node_version.clone(), c.reason.clone()));
        m.at_us = m.at_us.max(c.at_us);
    }

    /// Whether a comparison is due at `now_us` (event time).
    pub fn due(&self, c: &PresenceConfig, now_us: i64) -> bool {
        now_us - self.last_eval_us >= c.every_us
    }

    /// Compares the nodes' lists at `now_us`.
    pub fn compare(&mut self, c: &PresenceConfig, network: &str, now_us: i64) -> Compared {
        self.last_eval_us = now_us;
        self.markers.retain(|_, m| now_us - m.at_us <= c.conflict_keep_us);
        let stale: Vec<u64> = self
            .feeds
            .values_mut()
            .filter(|f| f.building.is_some() && now_us - f.at_us > c.alive_us)
            .map(|f| {
                f.building = None;
                f.complete = false;
                1u64 << f.bit
            })
            .collect();
        stale.into_iter().for_each(|b| self.abandon(b));
        let mut out = Compared::default();
        let leaving = self.leaving(c, now_us);
        self.forget_silent(c.alive_us.saturating_mul(6), now_us);
        let compared: Vec<(String, u64)> = self
            .feeds
            .iter()
            .filter(|(_, f)| f.complete && now_us - f.at_us <= c.alive_us)
            .map(|(n, f)| (n.clone(), 1u64 << f.bit))
            .collect();
        let mask = compared.iter().fold(0, |m, (_, b)| m | b);
        let n = compared.len();
        for node in leaving {
            out.changes.push(no_longer(node, network, n, now_us));
        }
        if n < 2 {
            // Nobody to compare with: whoever was diverged no longer is.
            let rest: Vec<String> = self.feeds.iter().filter(|(_, f)| f.diverged).map(|(k, _)| k.clone()).collect();
            for node in rest {
                if let Some(f) = self.feeds.get_mut(&node) {
                    f.diverged = false;
                }
                out.changes.push(no_longer(node, network, n, now_us));
            }
            return out;
        }
        let marked: HashMap<Txid, String, crate::propagation::Hasher> =
            self.markers.keys().filter_map(|k| Some((parse_txid(k)?, k.clone()))).collect();
        let mut tally = vec![Tally::default(); n];
        let (mut common, mut majority) = (0i64, 0i64);
        let mut found_conflicts = Vec::new();
        for (t, e) in self.entries.iter_mut() {
            let held = e.bits & mask;
            if held == 0 {
                continue;
            }
            let partial = held != mask;
            if !partial {
                if e.split_since_us != NONE {
                    e.split_since_us = NONE;
                    self.dirty.insert(*t);
                }
            } else if e.split_since_us == NONE {
                e.split_since_us = now_us;
                self.dirty.insert(*t);
            }
            if let Some(key) = marked.get(t) {
                // Someone refused it as conflicting: those lacking it have a conflict, not a
                // missing transaction, and it counts in no similarity.
                found_conflicts.push((key.clone(), held));
                for (i, (_, b)) in compared.iter().enumerate() {
                    tally[i].conflicts += i64::from(held & b == 0);
                }
                continue;
            }
            let settled = e.first_us <= now_us - c.span_us && (!partial || e.split_since_us <= now_us - c.span_us);
            if !settled {
                continue;
            }
            if !partial {
                common += 1;
                majority += 1;
                continue;
            }
            let in_majority = 2 * held.count_ones() as usize > n;
            majority += i64::from(in_majority);
            for (i, (_, b)) in compared.iter().enumerate() {
                tally[i].add(t, held & b != 0, in_majority, c.samples);
            }
        }
        for (key, held) in found_conflicts {
            let Some(m) = self.markers.get_mut(&key) else { continue };
            let refusers_lack = compared.iter().any(|(node, b)| m.refused.contains_key(node) && held & b == 0);
            if m.reported || !refusers_lack || now_us - m.first_us < c.span_us {
                continue;
            }
            m.reported = true;
            let mut held_by: Vec<String> =
                compared.iter().filter(|(_, b)| held & b != 0).map(|(node, _)| node.clone()).collect();
            held_by.sort();
            out.conflicts.push(MempoolConflict {
                network: network.to_owned(),
                txid: key,
                held_by,
                refused_by: m
                    .refused
                    .iter()
                    .map(|(node, (version, reason))| NodeVerdict {
                        node_id: node.clone(),
                        node_version: version.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
                // Its deadline, not the comparison's time (which a replay does not reproduce).
                at_us: m.first_us.saturating_add(c.span_us),
            });
        }
        out.conflicts.sort_by(|a, b| a.txid.cmp(&b.txid));
        for ((node, _), t) in compared.iter().zip(tally) {
            let inter = common + t.inter;
            let union = common + t.union;
            let similarity = if union == 0 { 1.0 } else { inter as f64 / union as f64 };
            let diverged = t.missing + t.extra >= c.min_txs.max(1);
            out.figures.push(NodeFigures {
                node_id: node.clone(),
                missing: t.missing,
                extra: t.extra,
                conflicts: t.conflicts,
                similarity,
            });
            let Some(feed) = self.feeds.get_mut(node) else { continue };
            if feed.diverged == diverged {
                continue;
            }
            feed.diverged = diverged;
            let sample = |h: std::collections::BinaryHeap<Txid>| h.into_sorted_vec().iter().map(txid_hex).collect();
            out.changes.push(MempoolDivergence {
                node_id: node.clone(),
                network: network.to_owned(),
                diverged,
                missing: t.missing,
                extra: t.extra,
                conflicts: t.conflicts,
                similarity,
                node_size: common + t.size,
                majority_size: majority,
                nodes: n as i64,
                missing_sample: sample(t.missing_sample),
                extra_sample: sample(t.extra_sample),
                at_us: now_us,
            });
        }
        out
    }

    /// The diverged nodes that drop out of the comparison now (their list unknown, or silent
    /// past `alive_us`): no longer diverged, as far as anyone can tell.
    fn leaving(&mut self, c: &PresenceConfig, now_us: i64) -> Vec<String> {
        let mut gone = Vec::new();
        for (node, f) in &mut self.feeds {
            if f.diverged && !(f.complete && now_us - f.at_us <= c.alive_us) {
                f.diverged = false;
                gone.push(node.clone());
            }
        }
        gone
    }

    /// Drops the feeds silent for longer than `after_us`, and their bits.
    fn forget_silent(&mut self, after_us: i64, now_us: i64) {
        let gone: u64 = self.feeds.values().filter(|f| now_us - f.at_us > after_us).fold(0, |m, f| m | 1 << f.bit);
        if gone == 0 {
            return;
        }
        self.feeds.retain(|_, f| now_us - f.at_us <= after_us);
        let dirty = &mut self.dirty;
        self.entries.retain(|t, e| {
            if e.bits & gone != 0 {
                dirty.insert(*t);
            }
            e.bits &= !gone;
            e.pending &= !gone;
            e.bits != 0 || e.pending != 0
        });
    }

    /// The txids `node`'s list holds, if it is known.
    pub fn held_by(&self, node: &str) -> Option<Vec<Txid>> {
        let f = self.feeds.get(node).filter(|f| f.complete)?;
        let mut v: Vec<Txid> = self.entries.iter().filter(|(_, e)| e.bits & 1 << f.bit != 0).map(|(t, _)| *t).collect();
        v.sort_unstable();
        Some(v)
    }

    /// The node count and transaction count held.
    pub fn len(&self) -> (usize, usize) {
        (self.feeds.len(), self.entries.len())
    }

    /// Whether it may be checkpointed now: not in the middle of a full snapshot (its chunks'
    /// marks are not persisted).
    pub fn checkpointable(&self) -> bool {
        self.feeds.values().all(|f| f.building.is_none())
    }

    /// The entries changed since the last call, as rows: (txid, Some(value)) or (txid, None)
    /// for one no longer held.
    pub fn take_rows(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty.into_iter().map(|t| (t.to_vec(), self.entries.get(&t).map(|e| e.to_row()))).collect()
    }

    /// A row given by [`Presence::take_rows`] was not written: it is given again next time.
    pub fn row_failed(&mut self, key: &[u8]) {
        if let Ok(t) = Txid::try_from(key) {
            self.dirty.insert(t);
        }
    }

    /// When a transaction was first held by any node, if one holds it.
    pub fn first_held(&self, t: &Txid) -> Option<i64> {
        self.entries.get(t).filter(|e| e.bits != 0).map(|e| e.first_us)
    }

    /// Restores one row written by [`Presence::take_rows`]; false if it is malformed.
    pub fn put_row(&mut self, key: &[u8], value: &[u8]) -> bool {
        let (Ok(t), Some(e)) = (Txid::try_from(key), Entry::from_row(value)) else { return false };
        self.entries.insert(t, e);
        true
    }

    /// After a restore: a snapshot that was being read is read again from its start.
    pub fn restored(&mut self) {
        for f in self.feeds.values_mut() {
            if f.building.take().is_some() {
                f.complete = false;
            }
        }
    }
}

/// The event of a node that no longer counts as diverged because it dropped out of the
/// comparison (its list unknown, silent, or alone in its network).
fn no_longer(node: String, network: &str, compared: usize, at_us: i64) -> MempoolDivergence {
    MempoolDivergence {
        node_id: node,
        network: network.to_owned(),
        diverged: false,
        missing: 0,
        extra: 0,
        conflicts: 0,
        similarity: 1.0,
        node_size: 0,
        majority_size: 0,
        nodes: compared as i64,
        missing_sample: Vec::new(),
        extra_sample: Vec::new(),
        at_us,
    }
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
