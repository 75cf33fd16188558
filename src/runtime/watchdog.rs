//! The application watchdog (`NodeConfig::heartbeat_timeout`, `Node::heartbeat`).
//!
//! SWIM proves that a node's runtime is alive, not that the application above it is: a
//! program whose own threads hang keeps answering probes. With a heartbeat timeout, the
//! application must call `Node::heartbeat` at least that often; when it does not, the
//! driver leaves every group the node joined and resigns every campaign, leadership
//! and lock it holds, as if the node had failed, while staying a member (tooz's
//! session semantics). The next heartbeat re-arms the watchdog and says it had expired;
//! the application joins and campaigns again if it wants to.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One node's watchdog: when the application last beat, and whether it expired.
#[derive(Debug)]
pub(crate) struct Watchdog {
    timeout: Duration,
    origin: Instant,
    /// Milliseconds from `origin` to the last beat.
    last_beat: AtomicU64,
    expired: AtomicBool,
}

impl Watchdog {
    /// A watchdog that expires `timeout` after the last beat (the first beat is now).
    pub fn new(timeout: Duration) -> Self {
        Watchdog {
            timeout,
            origin: Instant::now(),
            last_beat: AtomicU64::new(0),
            expired: AtomicBool::new(false),
        }
    }

    /// Records a beat now; `false` when the watchdog had expired since the last one.
    pub fn beat(&self) -> bool {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_beat.store(ms, Ordering::Relaxed);
        !self.expired.swap(false, Ordering::AcqRel)
    }

    /// Whether the watchdog expires at `now`: `true` once per silence longer than the
    /// timeout (the driver then drops the node's groups and leaderships).
    pub fn check(&self, now: Instant) -> bool {
        let last = self.origin + Duration::from_millis(self.last_beat.load(Ordering::Relaxed));
        if now.saturating_duration_since(last) <= self.timeout {
            return false;
        }
        !self.expired.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_expires_once_per_silence_and_a_beat_says_so() {
        let w = Watchdog::new(Duration::from_secs(10));
        let at = |secs: u64| Instant::now() + Duration::from_secs(secs);
        assert!(!w.check(at(0)));
        assert!(!w.check(at(9)), "beaten (started) 9 s before");
        assert!(w.beat(), "no expiry yet");
        assert!(w.check(at(11)), "silent for 11 s");
        assert!(!w.check(at(12)), "reported once");
        assert!(!w.beat(), "the beat learns it had expired");
        assert!(w.beat());
        assert!(!w.check(at(5)));
    }
}
