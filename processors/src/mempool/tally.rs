//! Per-node counts of one mempool comparison (`presence::Presence::compare`): sizes, the
//! intersection and union with the majority, and the smallest missing and extra txids as a
//! stable sample.

use super::txid::Txid;

/// Per-node counts of one comparison, beyond the transactions every node holds.
#[derive(Debug, Clone, Default)]
pub(super) struct Tally {
    pub(super) inter: i64,
    pub(super) union: i64,
    pub(super) size: i64,
    pub(super) missing: i64,
    pub(super) extra: i64,
    pub(super) conflicts: i64,
    /// The smallest txids, as a max-heap of at most `samples` (so the sample does not depend on
    /// the map's iteration order).
    pub(super) missing_sample: std::collections::BinaryHeap<Txid>,
    pub(super) extra_sample: std::collections::BinaryHeap<Txid>,
}

/// Keeps the `n` smallest txids in `heap`.
fn keep_smallest(heap: &mut std::collections::BinaryHeap<Txid>, t: &Txid, n: usize) {
    if heap.len() < n {
        heap.push(*t);
    } else if heap.peek().is_some_and(|max| t < max) {
        heap.pop();
        heap.push(*t);
    }
}

impl Tally {
    /// Counts `t` for a node that does (`has`) or does not hold it, against whether the
    /// majority does.
    pub(super) fn add(&mut self, t: &Txid, has: bool, in_majority: bool, samples: usize) {
        self.size += i64::from(has);
        self.union += i64::from(has || in_majority);
        self.inter += i64::from(has && in_majority);
        if in_majority && !has {
            self.missing += 1;
            keep_smallest(&mut self.missing_sample, t, samples);
        } else if !in_majority && has {
            self.extra += 1;
            keep_smallest(&mut self.extra_sample, t, samples);
        }
    }
}
