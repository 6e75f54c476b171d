//! Which stages of which objects one node has already reported, so each (node, hash, stage)
//! gives one observation, and a later stage implies the earlier ones it skipped.

use std::collections::{HashMap, VecDeque};

use bmon_schemas::Stage;

/// Log stages in the order a block goes through them on a node.
const BLOCK_STAGES: [Stage; 3] = [Stage::Header, Stage::Block, Stage::Tip];

fn bit(stage: Stage) -> u8 {
    match stage {
        Stage::Header => 1,
        Stage::Block => 2,
        Stage::Tip => 4,
        Stage::TxAccept => 8,
        Stage::ZmqBlock => 16,
        Stage::ZmqTx => 32,
        Stage::Unknown => 64,
    }
}

/// A bounded memory of reported stages per object (oldest objects are forgotten first).
#[derive(Debug)]
pub struct StageTracker {
    seen: HashMap<String, u8>,
    order: VecDeque<String>,
    capacity: usize,
}

impl StageTracker {
    /// Remembers up to `capacity` objects.
    pub fn new(capacity: usize) -> StageTracker {
        StageTracker { seen: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// The stages to report now that `stage` of `hash` was seen: the block stages before it that
    /// were never reported (a block this node mined has no header or block line; an old Core logs
    /// no header line), then `stage` itself; empty if already reported.
    pub fn report(&mut self, hash: &str, stage: Stage) -> Vec<Stage> {
        let bits = match self.seen.get_mut(hash) {
            Some(b) => b,
            None => {
                if self.order.len() >= self.capacity
                    && let Some(old) = self.order.pop_front()
                {
                    self.seen.remove(&old);
                }
                self.order.push_back(hash.to_owned());
                self.seen.entry(hash.to_owned()).or_insert(0)
            }
        };
        let mut out = Vec::new();
        if let Some(pos) = BLOCK_STAGES.iter().position(|s| *s == stage) {
            for s in &BLOCK_STAGES[..=pos] {
                if *bits & bit(*s) == 0 {
                    *bits |= bit(*s);
                    out.push(*s);
                }
            }
        } else if *bits & bit(stage) == 0 {
            *bits |= bit(stage);
            out.push(stage);
        }
        out
    }

    /// Objects remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_stages_imply_earlier_ones_once() {
        let mut t = StageTracker::new(10);
        assert_eq!(t.report("a", Stage::Header), vec![Stage::Header]);
        assert_eq!(t.report("a", Stage::Header), vec![]);
        assert_eq!(t.report("a", Stage::Tip), vec![Stage::Block, Stage::Tip]);
        assert_eq!(t.report("a", Stage::Block), vec![]);
        assert_eq!(t.report("b", Stage::Tip), vec![Stage::Header, Stage::Block, Stage::Tip]);
        assert_eq!(t.report("c", Stage::TxAccept), vec![Stage::TxAccept]);
        assert_eq!(t.report("c", Stage::TxAccept), vec![]);
        assert_eq!(t.report("c", Stage::ZmqTx), vec![Stage::ZmqTx]);
    }

    #[test]
    fn bounded() {
        let mut t = StageTracker::new(2);
        t.report("a", Stage::Tip);
        t.report("b", Stage::Tip);
        t.report("c", Stage::Tip);
        assert_eq!(t.len(), 2);
        assert_eq!(t.report("a", Stage::Tip).len(), 3, "a was forgotten");
    }
}
