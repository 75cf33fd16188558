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

/// A deliberately unsafe election, for the simulator to show that its checkers catch
/// what the safe design prevents. Never set it outside a simulation: it is left out of
/// validation and presets on purpose.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnsafeVariant {
    /// A restarted voter grants at once instead of waiting out its quarantine, though it
    /// may have promised before it restarted.
    NoQuarantine,
    /// A leader's deadline is `s + L`, with no correction for clock drift and no margin.
    NoDriftMargin,
    /// The voters are the members this node sees live, not the fixed voter set: each
    /// side of a partition finds a "majority" of its own view.
    GossipQuorum,
    /// A voter's promise belongs to a bare node id, not to one process life: a second
    /// process with the same id takes over (or releases) the first one's promises.
    BareIdPromise,
    /// A renewal needs the voter's highest term, as a new request does: a voter that a
    /// rival's failed round took is lost to the leader, which then renews on a bare
    /// majority and loses its lease when one more voter hiccups.
    BareMajorityRenewal,
    /// Voters and candidates raise their terms to whatever a member gossips it leads
    /// with, wrapping past the largest term: one lying member disables a group.
    GossipTerms,
    /// At a vacancy the highest-id candidate asks first (ranks back off the other way
    /// round): safe, but against the Bully rule.
    HighestFirst,
}

impl UnsafeVariant {
    /// Every variant, in the order the simulator lists them.
    pub const ALL: [UnsafeVariant; 7] = [
        UnsafeVariant::NoQuarantine,
        UnsafeVariant::NoDriftMargin,
        UnsafeVariant::GossipQuorum,
        UnsafeVariant::BareIdPromise,
        UnsafeVariant::BareMajorityRenewal,
        UnsafeVariant::GossipTerms,
        UnsafeVariant::HighestFirst,
    ];

    /// Its name on the simulator's command line.
    pub fn name(self) -> &'static str {
        match self {
            UnsafeVariant::NoQuarantine => "no-quarantine",
            UnsafeVariant::NoDriftMargin => "no-drift-margin",
            UnsafeVariant::GossipQuorum => "gossip-quorum",
            UnsafeVariant::BareIdPromise => "bare-id-promise",
            UnsafeVariant::BareMajorityRenewal => "bare-majority-renewal",
            UnsafeVariant::GossipTerms => "gossip-terms",
            UnsafeVariant::HighestFirst => "highest-first",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

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

/// How long a leadership granted for `lease` lasts on the candidate's clock, for clock
/// rates within `±drift` and a safety `margin`; `None` when nothing is left.
pub fn safe_duration(lease: Duration, drift: f64, margin: Duration) -> Option<Duration> {
    if !(0.0..1.0).contains(&drift) {
        return None;
    }
    let d = lease.as_secs_f64() * (1.0 - drift) / (1.0 + drift) - margin.as_secs_f64();
    (d > 0.0).then(|| Duration::from_secs_f64(d))
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
