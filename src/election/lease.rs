//! Lease arithmetic: the quorum size and how long a candidate may lead on its own
//! clock after a quorum of voters granted its request.
//!
//! Why the deadline is safe. A voter that grants at real time `r` (after the request was
//! sent at real time `t_s`, so `r >= t_s`) promises for `L` on its own clock; its clock
//! runs at a rate within `[1 - ρ, 1 + ρ]`, so the promise lasts at least `L / (1 + ρ)` of
//! real time, i.e. until at least `t_s + L / (1 + ρ)`. The candidate leads for `D` on its
//! own clock from `s` (its reading at `t_s`), which lasts at most `D / (1 - ρ)` of real
//! time. With `D = L (1 - ρ) / (1 + ρ) - margin`, the leadership ends strictly before
//! every granting voter's promise; any later quorum shares a voter with this one, which
//! refuses everyone else until its promise ends. Hence at most one leader at any real
//! instant. The margin absorbs timer lateness and processing time.

use std::time::{Duration, Instant};

// The settings' side of the arithmetic lives with the settings it validates.
pub use crate::config::election::{safe_duration, UnsafeVariant};

/// The restart quarantine in force under `variant`.
pub fn quarantine_for(quarantine: Duration, variant: Option<UnsafeVariant>) -> Duration {
    match variant {
        Some(UnsafeVariant::NoQuarantine) => Duration::ZERO,
        _ => quarantine,
    }
}

/// Votes needed out of `voters`: a strict majority.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// The leader's deadline on its own clock for a request sent at `sent_at`.
pub fn leader_deadline(
    sent_at: Instant,
    lease: Duration,
    drift: f64,
    margin: Duration,
) -> Option<Instant> {
    safe_duration(lease, drift, margin).map(|d| sent_at + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 3);
    }

    #[test]
    fn deadline_shrinks_for_drift_and_margin() {
        let l = Duration::from_secs(1);
        let d = safe_duration(l, 0.01, Duration::from_millis(20)).unwrap();
        // 1 * 0.99 / 1.01 - 0.02 = 0.960198...
        assert!((d.as_secs_f64() - (0.99 / 1.01 - 0.02)).abs() < 1e-9);
        assert_eq!(safe_duration(l, 0.0, Duration::ZERO), Some(l));
        assert_eq!(safe_duration(l, 0.5, Duration::from_millis(400)), None);
        assert_eq!(safe_duration(l, 1.0, Duration::ZERO), None);
    }

    #[test]
    fn unsafe_variants_by_name_and_quarantine() {
        for v in UnsafeVariant::ALL {
            assert_eq!(UnsafeVariant::from_name(v.name()), Some(v));
        }
        assert_eq!(UnsafeVariant::from_name("safe"), None);
        let q = Duration::from_millis(900);
        assert_eq!(quarantine_for(q, None), q);
        assert_eq!(
            quarantine_for(q, Some(UnsafeVariant::GossipQuorum)),
            q,
            "only no-quarantine drops it"
        );
        assert_eq!(
            quarantine_for(q, Some(UnsafeVariant::NoQuarantine)),
            Duration::ZERO
        );
    }

    #[test]
    fn leader_ends_before_any_voter_promise_in_real_time() {
        // Worst case: candidate clock slow (1 - ρ), voter clock fast (1 + ρ), the voter
        // grants the instant the request leaves.
        let (l, rho, m) = (Duration::from_millis(1500), 0.05, Duration::from_millis(10));
        let d = safe_duration(l, rho, m).unwrap().as_secs_f64();
        let leader_real_end = d / (1.0 - rho);
        let voter_real_end = l.as_secs_f64() / (1.0 + rho);
        assert!(leader_real_end < voter_real_end);
    }
}
