//! Election settings ([`ElectionConfig`]).

use std::time::Duration;

use super::candidate::Timing;
use crate::wire::NodeId;

/// Election settings shared by every node of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ElectionConfig {
    /// The voters (node ids); a majority of them is a quorum. Fixed cluster-wide.
    pub voters: Vec<NodeId>,
    /// Candidacy timing (lease, renew interval, drift bound, margin, back-off).
    pub timing: Timing,
    /// A restarted voter grants nothing this long (at least the lease).
    pub quarantine: Duration,
    /// Most groups a voter tracks and a node runs for.
    pub max_groups: usize,
    /// Preemption: a leader hands over to a lower-id candidate that has been running
    /// and live in its view for this long (`None`, the default: never; a leader keeps
    /// its leadership until it fails or resigns, which avoids flapping when a low id
    /// comes and goes). Checked at each renewal.
    pub preempt_after: Option<Duration>,
    /// A deliberately unsafe election, for the simulator's checkers to catch. Never set
    /// in production; neither validated nor set by any preset.
    #[doc(hidden)]
    pub unsafe_variant: Option<super::lease::UnsafeVariant>,
}

impl ElectionConfig {
    /// Defaults for a LAN: 900 ms leases renewed every 300 ms, ρ = 1%, 10 ms margin,
    /// 30 ms back-off per rank, rounds abandoned after 150 ms. A crashed leader is
    /// replaced about one lease after its last renewal.
    pub fn lan(voters: Vec<NodeId>) -> Self {
        Self::with_lease(
            voters,
            Duration::from_millis(900),
            Duration::from_millis(10),
        )
    }

    /// Defaults for a WAN: 3 s leases renewed every second, ρ = 1%, 50 ms margin,
    /// 100 ms back-off per rank, rounds abandoned after 500 ms.
    pub fn wan(voters: Vec<NodeId>) -> Self {
        let mut c = Self::with_lease(voters, Duration::from_secs(3), Duration::from_millis(50));
        c.timing.rank_backoff = Duration::from_millis(100);
        c.timing.round_timeout = Duration::from_millis(500);
        c
    }

    /// Defaults for one machine: 600 ms leases renewed every 200 ms, ρ = 1%, 10 ms
    /// margin, 20 ms back-off per rank, rounds abandoned after 100 ms.
    pub fn local(voters: Vec<NodeId>) -> Self {
        let mut c = Self::with_lease(
            voters,
            Duration::from_millis(600),
            Duration::from_millis(10),
        );
        c.timing.rank_backoff = Duration::from_millis(20);
        c.timing.round_timeout = Duration::from_millis(100);
        c
    }

    fn with_lease(voters: Vec<NodeId>, lease: Duration, margin: Duration) -> Self {
        ElectionConfig {
            voters,
            timing: Timing {
                lease,
                renew_interval: lease / 3,
                drift: 0.01,
                margin,
                rank_backoff: Duration::from_millis(30),
                round_timeout: Duration::from_millis(150),
            },
            quarantine: lease,
            max_groups: 1024,
            preempt_after: None,
            unsafe_variant: None,
        }
    }

    /// Whether elections are on (the voter set is not empty).
    pub fn enabled(&self) -> bool {
        !self.voters.is_empty()
    }

    /// Checks the settings; the first problem found is returned. An empty voter set
    /// is valid (elections off).
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |field: &'static str, reason: &str| {
            Err(crate::ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        let t = &self.timing;
        let mut ids = self.voters.clone();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.voters.len() {
            return bad("voters", "must be distinct node ids");
        }
        if !(0.0..0.5).contains(&t.drift) {
            return bad("drift", "must be within 0 and 0.5");
        }
        if super::lease::safe_duration(t.lease, t.drift, t.margin).is_none() {
            return bad("lease", "leaves no leadership time after drift and margin");
        }
        if t.renew_interval.is_zero() || t.renew_interval * 2 > t.lease {
            return bad(
                "renew_interval",
                "must be positive and at most half the lease",
            );
        }
        if t.round_timeout.is_zero() || t.round_timeout >= t.lease {
            return bad(
                "round_timeout",
                "must be positive and shorter than the lease",
            );
        }
        if self.quarantine < t.lease {
            return bad("quarantine", "must be at least the lease");
        }
        if self.max_groups == 0 {
            return bad("max_groups", "must be at least 1");
        }
        if self.preempt_after.is_some_and(|d| d < t.lease) {
            return bad("preempt_after", "must be at least the lease when set");
        }
        Ok(())
    }
}
