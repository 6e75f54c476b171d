//! When to read the log again: a token bucket over reads (pure; the caller supplies the time).
//!
//! A node logs a block as a burst of lines a few milliseconds apart. Reading once per poll
//! interval after the burst's first line would hold the rest, the tip update among them, for a
//! whole interval. The bucket lets a quiet log be read as each line lands, up to `burst` reads in
//! a row, and holds a busy log to one read per interval, in batches, as before: its steady cost
//! does not change.

use std::time::{Duration, Instant};

/// A token bucket of reads: `burst` tokens, one more every `every`.
#[derive(Debug, Clone)]
pub struct ReadPacer {
    every: Duration,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl ReadPacer {
    /// A full bucket at `now`. `every` must be positive; `burst` of at least 1.
    pub fn new(every: Duration, burst: u32, now: Instant) -> ReadPacer {
        let burst = f64::from(burst.max(1));
        ReadPacer { every: every.max(Duration::from_micros(1)), burst, tokens: burst, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / self.every.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.burst);
        self.at = self.at.max(now);
    }

    /// Notes a read at `now`. Reads without a token (catching up on a backlog) leave no debt.
    pub fn took(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    /// How long from `now` until the next read may be: zero while a token is left, so a change
    /// of the file can be read at once.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 { Duration::ZERO } else { self.every.mul_f64(1.0 - self.tokens) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_quiet_log_gets_its_burst_at_once_then_one_read_per_interval() {
        let t0 = Instant::now();
        let mut p = ReadPacer::new(200 * MS, 4, t0);
        for i in 0..4 {
            let now = t0 + i * MS;
            assert_eq!(p.wait(now), Duration::ZERO, "read {i} of the burst waits");
            p.took(now);
        }
        let now = t0 + 4 * MS;
        let wait = p.wait(now);
        assert!(wait > 195 * MS && wait <= 200 * MS, "the fifth read waits for a token: {wait:?}");
        p.took(now + wait);
        assert!(p.wait(now + wait) > 195 * MS);
    }

    #[test]
    fn a_busy_log_is_read_once_per_interval() {
        let t0 = Instant::now();
        let mut p = ReadPacer::new(200 * MS, 4, t0);
        let mut now = t0;
        let mut reads = 0;
        // Lines land all the time: read whenever allowed, for 10 s.
        while now < t0 + Duration::from_secs(10) {
            now += p.wait(now);
            p.took(now);
            reads += 1;
        }
        assert!((50..=55).contains(&reads), "4 at once, then 5 a second: {reads}");
    }

    #[test]
    fn tokens_refill_up_to_the_burst_only() {
        let t0 = Instant::now();
        let mut p = ReadPacer::new(10 * MS, 3, t0);
        p.took(t0);
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(p.wait(later), Duration::ZERO);
            p.took(later);
        }
        assert!(p.wait(later) > Duration::ZERO, "an hour of quiet earns no more than the burst");
    }

    #[test]
    fn reads_without_tokens_leave_no_debt() {
        let t0 = Instant::now();
        let mut p = ReadPacer::new(100 * MS, 1, t0);
        for _ in 0..50 {
            p.took(t0); // catching up: read again at once
        }
        assert_eq!(p.wait(t0 + 100 * MS), Duration::ZERO);
    }
}
