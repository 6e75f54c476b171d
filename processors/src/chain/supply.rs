//! Subsidy schedules: what a chain may have minted by a height. Pure.

use bmon_schemas::NodeImplementation;

/// Satoshis per coin.
pub const COIN: i64 = 100_000_000;

/// A network's subsidy schedule: 50 coins, halved every `interval` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Blocks between halvings.
    pub interval: i64,
}

impl Schedule {
    /// The schedule of `network` as `implementation` runs it: Bitcoin and BSV halve every
    /// 210 000 blocks, Litecoin every 840 000, and every regtest every 150.
    pub fn of(implementation: NodeImplementation, network: &str) -> Schedule {
        let interval = match (implementation, network) {
            (_, "regtest") => 150,
            (NodeImplementation::Litecoin, _) => 840_000,
            _ => 210_000,
        };
        Schedule { interval }
    }

    /// The subsidy of the block at `height`, satoshis.
    pub fn subsidy(&self, height: i64) -> i64 {
        let halvings = height.max(0) / self.interval;
        if halvings >= 63 { 0 } else { (50 * COIN) >> halvings }
    }

    /// Subsidies of the blocks `from..=to`, satoshis (0 if the range is empty).
    pub fn subsidies(&self, from: i64, to: i64) -> i64 {
        let (mut h, mut sum) = (from.max(0), 0i64);
        while h <= to {
            // The rest of this era, at its subsidy.
            let era_end = (h / self.interval + 1) * self.interval - 1;
            let end = era_end.min(to);
            sum = sum.saturating_add((end - h + 1).saturating_mul(self.subsidy(h)));
            h = end + 1;
        }
        sum
    }

    /// Everything the blocks `0..=height` may have minted, satoshis: the most a UTXO set at that
    /// height can hold (the genesis output is not spendable, and burnt coins only lower it).
    pub fn supply(&self, height: i64) -> i64 {
        self.subsidies(0, height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_supply_approaches_21_million() {
        let s = Schedule::of(NodeImplementation::Core, "main");
        assert_eq!(s.subsidy(0), 50 * COIN);
        assert_eq!(s.subsidy(210_000), 25 * COIN);
        assert_eq!(s.subsidy(840_000), 3 * COIN + COIN / 8);
        assert_eq!(s.supply(209_999), 210_000 * 50 * COIN);
        assert_eq!(s.supply(7_000_000), 2_099_999_997_690_000, "the well-known cap");
    }

    #[test]
    fn regtest_halves_every_150_blocks_and_litecoin_every_840000() {
        let r = Schedule::of(NodeImplementation::Core, "regtest");
        assert_eq!((r.subsidy(149), r.subsidy(150), r.subsidy(300)), (50 * COIN, 25 * COIN, 1_250_000_000));
        assert_eq!(r.subsidies(149, 150), 75 * COIN);
        assert_eq!(r.subsidies(5, 4), 0);
        let l = Schedule::of(NodeImplementation::Litecoin, "main");
        assert_eq!((l.subsidy(839_999), l.subsidy(840_000)), (50 * COIN, 25 * COIN));
        assert_eq!(Schedule::of(NodeImplementation::Litecoin, "regtest").interval, 150);
    }

    #[test]
    fn range_sums_agree_with_block_by_block() {
        let r = Schedule::of(NodeImplementation::Bsv, "regtest");
        for (from, to) in [(0, 0), (0, 320), (140, 460), (151, 151), (299, 301)] {
            assert_eq!(r.subsidies(from, to), (from..=to).map(|h| r.subsidy(h)).sum::<i64>(), "{from}..={to}");
        }
    }
}
