//! Rolling baseline of spreads per network and stage, for anomaly detection.
//!
//! One baseline per input partition, fed by the partition's own closes in input order: a pure
//! function of the input, so a replay or a restart from the checkpointed [`BaselineState`]
//! judges every summary as the live run did.

use std::collections::{BTreeMap, VecDeque};

use bmon_schemas::Stage;
use serde::{Deserialize, Serialize};

/// Baseline settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineConfig {
    /// Spreads kept per network and stage.
    pub size: usize,
    /// Spreads needed before any is judged.
    pub min_samples: usize,
    /// A spread above this quantile of the kept ones is anomalous.
    pub quantile: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { size: 200, min_samples: 20, quantile: 0.99 }
    }
}

/// A baseline's kept spreads, for checkpoints: per network and stage, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineState(pub Vec<(String, Stage, Vec<i64>)>);

/// Recent spreads per (network, stage).
#[derive(Debug, Clone)]
pub struct Baseline {
    size: usize,
    min_samples: usize,
    quantile: f64,
    /// Per (network, stage): spreads in arrival order, and the same values sorted.
    spreads: BTreeMap<(String, Stage), (VecDeque<i64>, Vec<i64>)>,
}

impl Baseline {
    /// Keeps `size` spreads; judges once `min_samples` exist; anomalous above `quantile`.
    pub fn new(size: usize, min_samples: usize, quantile: f64) -> Baseline {
        Baseline { size: size.max(1), min_samples, quantile: quantile.clamp(0.0, 1.0), spreads: BTreeMap::new() }
    }

    /// An empty baseline with `config`.
    pub fn with_config(config: BaselineConfig) -> Baseline {
        Baseline::new(config.size, config.min_samples, config.quantile)
    }

    /// The kept spreads, for a checkpoint.
    pub fn state(&self) -> BaselineState {
        BaselineState(
            self.spreads.iter().map(|((n, s), (q, _))| (n.clone(), *s, q.iter().copied().collect())).collect(),
        )
    }

    /// Replaces the kept spreads with `state` (a checkpoint's), keeping the newest `size` of each.
    pub fn restore(&mut self, state: BaselineState) {
        self.spreads.clear();
        for (network, stage, spreads) in state.0 {
            let keep = spreads.len().saturating_sub(self.size);
            let q: VecDeque<i64> = spreads.into_iter().skip(keep).collect();
            let mut sorted: Vec<i64> = q.iter().copied().collect();
            sorted.sort_unstable();
            self.spreads.insert((network, stage), (q, sorted));
        }
    }

    /// The threshold a spread must exceed to be anomalous, if the baseline is ready.
    pub fn threshold(&self, network: &str, stage: Stage) -> Option<i64> {
        let (_, sorted) = self.spreads.get(&(network.to_owned(), stage))?;
        if sorted.len() < self.min_samples.max(1) {
            return None;
        }
        let idx = ((sorted.len() - 1) as f64 * self.quantile).round() as usize;
        sorted.get(idx.min(sorted.len() - 1)).copied()
    }

    /// Judges `spread` against the baseline so far, then adds it. The threshold it exceeded, if
    /// anomalous.
    pub fn judge_and_add(&mut self, network: &str, stage: Stage, spread_us: i64) -> Option<i64> {
        let anomalous = self.threshold(network, stage).filter(|t| spread_us > *t);
        let (q, sorted) = self.spreads.entry((network.to_owned(), stage)).or_default();
        if q.len() == self.size
            && let Some(old) = q.pop_front()
            && let Ok(i) = sorted.binary_search(&old)
        {
            sorted.remove(i);
        }
        q.push_back(spread_us);
        let at = sorted.partition_point(|v| *v < spread_us);
        sorted.insert(at, spread_us);
        anomalous
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn quiet_until_ready_then_flags_outliers() {
        let mut b = Baseline::new(100, 10, 0.99);
        for i in 0..10 {
            assert!(b.judge_and_add("regtest", Stage::Tip, 1_000 + i).is_none());
        }
        assert!(b.judge_and_add("regtest", Stage::Tip, 1_005).is_none());
        assert!(b.judge_and_add("regtest", Stage::Tip, 50_000).is_some());
        assert!(b.judge_and_add("main", Stage::Tip, 50_000).is_none(), "another network has its own baseline");
    }

    #[test]
    fn a_restored_baseline_judges_as_the_original() {
        let mut a = Baseline::new(50, 10, 0.9);
        for i in 0..80 {
            a.judge_and_add("regtest", Stage::Block, (i * 7919) % 1000);
        }
        let mut b = Baseline::new(50, 10, 0.9);
        b.restore(serde_json::from_slice(&serde_json::to_vec(&a.state()).unwrap()).unwrap());
        for spread in [10, 950, 999, 2000, 500] {
            assert_eq!(
                a.judge_and_add("regtest", Stage::Block, spread),
                b.judge_and_add("regtest", Stage::Block, spread)
            );
        }
        assert_eq!(a.state(), b.state());
    }
}
