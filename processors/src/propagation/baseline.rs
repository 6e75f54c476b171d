//! Rolling baseline of spreads per network and stage, for anomaly detection.

use std::collections::{BTreeMap, VecDeque};

use bmon_schemas::Stage;

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
}
