//! A stop request that blocking source threads check between steps and can sleep on.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Set once, by the owner, when the source should finish. Sleeping on it wakes at once when it is
/// set, so a poll loop can wait out its interval in one sleep rather than many short ones.
#[derive(Debug, Default)]
pub struct Stop {
    requested: Mutex<bool>,
    changed: Condvar,
}

impl Stop {
    /// Asks the source to finish and wakes it if it sleeps.
    pub fn request(&self) {
        let mut r = self.requested.lock().unwrap_or_else(|p| p.into_inner());
        *r = true;
        self.changed.notify_all();
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        *self.requested.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `d`, or until a stop is requested; true if it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut r = self.requested.lock().unwrap_or_else(|p| p.into_inner());
        while !*r {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            r = self.changed.wait_timeout(r, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        *r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn sleep_runs_out_without_a_request() {
        let stop = Stop::default();
        let t0 = Instant::now();
        assert!(!stop.sleep(Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert!(!stop.requested());
    }

    #[test]
    fn a_request_wakes_a_sleeper_at_once() {
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let sleeper = std::thread::spawn(move || {
            let t0 = Instant::now();
            (s.sleep(Duration::from_secs(600)), t0.elapsed())
        });
        stop.request();
        let (woken, took) = sleeper.join().unwrap();
        assert!(woken);
        assert!(took < Duration::from_secs(600));
        assert!(stop.sleep(Duration::from_secs(600)), "already requested: returns at once");
    }
}
