//! A pace of at most so many records a second (pure): `bmon replay --max-rate` holds its
//! reading to one, so that it leaves the broker and the host to a live pipeline beside it.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// A pace of at most `rate` records a second since the start: record `n` is not taken before
/// `n / rate` seconds have passed. A pause that left the replay behind is not made up with a
/// burst beyond one second's worth.
#[derive(Debug)]
pub struct Pace {
    rate: NonZeroU64,
    started: Instant,
    taken: u64,
}

impl Pace {
    /// A pace of `rate` records a second, starting at `now`.
    pub fn new(rate: NonZeroU64, now: Instant) -> Pace {
        Pace { rate, started: now, taken: 0 }
    }

    /// When record `n` is due, after the start.
    fn due(&self, n: u64) -> Duration {
        let ns = u128::from(n) * 1_000_000_000 / u128::from(self.rate.get());
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Counts one record taken at `now`; returns how long to wait before the next one.
    pub fn take(&mut self, now: Instant) -> Duration {
        let mut elapsed = now.saturating_duration_since(self.started);
        if elapsed > self.due(self.taken) + Duration::from_secs(1) {
            // Behind by more than a second (a slow step, a stalled broker): start again from here.
            self.started = now;
            self.taken = 0;
            elapsed = Duration::ZERO;
        }
        self.taken += 1;
        self.due(self.taken).saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_each_record_is_due() {
        let t0 = Instant::now();
        let mut pace = Pace::new(NonZeroU64::new(1000).unwrap(), t0);
        // The first record is due at 1 ms.
        assert_eq!(pace.take(t0), Duration::from_millis(1));
        // Taken at 1 ms, the second is due at 2 ms.
        assert_eq!(pace.take(t0 + Duration::from_millis(1)), Duration::from_millis(1));
        // Taken late, at 2.5 ms: the third is due at 3 ms.
        assert_eq!(pace.take(t0 + Duration::from_micros(2500)), Duration::from_micros(500));
    }

    #[test]
    fn a_long_pause_is_not_made_up_with_a_burst() {
        let t0 = Instant::now();
        let mut pace = Pace::new(NonZeroU64::new(10).unwrap(), t0);
        assert_eq!(pace.take(t0), Duration::from_millis(100));
        // Ten seconds later the pace restarts: the next record waits its own 100 ms again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pace.take(later), Duration::from_millis(100));
        assert_eq!(pace.take(later + Duration::from_millis(100)), Duration::from_millis(100));
    }

    #[test]
    fn a_short_lag_is_caught_up_without_waiting() {
        let t0 = Instant::now();
        let mut pace = Pace::new(NonZeroU64::new(100).unwrap(), t0);
        // Five records taken at 500 ms, due by 50 ms: no waits, since behind by under a second.
        let at = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            assert_eq!(pace.take(at), Duration::ZERO);
        }
    }
}
