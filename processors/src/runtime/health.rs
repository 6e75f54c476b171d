//! Liveness and readiness of the consumer loop, as `/healthz` and `/readyz` report them. The
//! loop writes atomics; the listener only reads them, so the probes answer during any outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Shared health of one processor's consumer loop.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    /// Milliseconds after `epoch` of the loop's last turn (a record, a tick or an event).
    last_turn_ms: AtomicI64,
    /// The loop has joined its group and received an assignment (possibly empty).
    joined: AtomicBool,
    /// Assigned partitions not yet restored (pending or replaying).
    restoring: AtomicUsize,
    stall: Duration,
}

impl Health {
    /// Health whose `/healthz` fails when the loop has not turned for `stall`.
    pub fn new(stall: Duration) -> Arc<Health> {
        Arc::new(Health {
            epoch: Instant::now(),
            last_turn_ms: AtomicI64::new(0),
            joined: AtomicBool::new(false),
            restoring: AtomicUsize::new(0),
            stall,
        })
    }

    /// `/healthz`: the loop turned within the stall limit.
    pub fn live(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as i64;
        now - self.last_turn_ms.load(Ordering::Relaxed) <= self.stall.as_millis() as i64
    }

    /// `/readyz`: joined, every assigned partition restored, and live.
    pub fn ready(&self) -> bool {
        self.joined.load(Ordering::Relaxed) && self.restoring.load(Ordering::Relaxed) == 0 && self.live()
    }

    /// Probes for the service listener.
    pub fn probes(self: &Arc<Self>) -> bmon_service::Probes {
        let (a, b) = (Arc::clone(self), Arc::clone(self));
        bmon_service::Probes { live: Arc::new(move || a.live()), ready: Arc::new(move || b.ready()) }
    }

    pub(crate) fn turned(&self) {
        self.last_turn_ms.store(self.epoch.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    pub(crate) fn assignment(&self, joined: bool, restoring: usize) {
        self.joined.store(joined, Ordering::Relaxed);
        self.restoring.store(restoring, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_joined_and_restored() {
        let h = Health::new(Duration::from_secs(60));
        h.turned();
        assert!(h.live());
        assert!(!h.ready(), "not joined yet");
        h.assignment(true, 2);
        assert!(!h.ready(), "two partitions still restoring");
        h.assignment(true, 0);
        assert!(h.ready());
    }

    #[test]
    fn stalls_after_the_limit() {
        let h = Health::new(Duration::ZERO);
        h.last_turn_ms.store(-10, Ordering::Relaxed);
        assert!(!h.live());
        assert!(!h.ready());
    }
}
