//! Rolling baseline of spreads per network and stage, for anomaly detection.

use std::collections::{BTreeMap, VecDeque};

use bmon_schemas::Stage;

/// Recent spreads per (network, stage).
#[derive(Debug, Clone)]
pub struct Baseline {
    size: usize,
    min_samples: usize,
    quantile: f64,
    spreads: BTreeMap<(String, Stage), VecDeque<i64>>,
}

impl Baseline {
    /// Keeps `size` spreads; judges once `min_samples` exist; anomalous above `quantile`.
    pub fn new(size: usize, min_samples: usize, quantile: f64) -> Baseline {
        Baseline { size: size.max(1), min_samples, quantile: quantile.clamp(0.0, 1.0), spreads: BTreeMap::new() }
    }

    /// The threshold a spread must exceed to be anomalous, if the baseline is ready.
    pub fn threshold(&self, network: &str, stage: Stage) -> Option<i64> {
        let q = self.spreads.get(&(network.to_owned(), stage))?;
        if q.len() < self.min_samples.max(1) {
            return None;
        }
        let mut v: Vec<i64> = q.iter().copied().collect();
        v.sort_unstable();
        let idx = ((v.len() - 1) as f64 * self.quantile).round() as usize;
        v.get(idx.min(v.len() - 1)).copied()
    }

    /// Judges `spread` against the baseline so far, then adds it. True if anomalous.
    pub fn judge_and_add(&mut self, network: &str, stage: Stage, spread_us: i64) -> bool {
        let anomalous = self.threshold(network, stage).is_some_and(|t| spread_us > t);
        let q = self.spreads.entry((network.to_owned(), stage)).or_default();
        if q.len() == self.size {
            q.pop_front();
        }
        q.push_back(spread_us);
        anomalous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_until_ready_then_flags_outliers() {
        let mut b = Baseline::new(100, 10, 0.99);
        for i in 0..10 {
            assert!(!b.judge_and_add("regtest", Stage::Tip, 1_000 + i));
        }
        assert!(!b.judge_and_add("regtest", Stage::Tip, 1_005));
        assert!(b.judge_and_add("regtest", Stage::Tip, 50_000));
        assert!(!b.judge_and_add("main", Stage::Tip, 50_000), "another network has its own baseline");
    }
}
