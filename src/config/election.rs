//! Election settings: the voters and the timings ([`ElectionConfig`], [`Timing`]),
//! with LAN, WAN and local presets, and the lease arithmetic their validation needs
//! ([`safe_duration`]; the election's `lease` module tells why it is safe).

use std::time::Duration;

use super::{ConfigError, Validated};
use crate::wire::NodeId;

/// Election settings shared by every node of the cluster.
///
/// `#[non_exhaustive]`: start from [`ElectionConfig::lan`] (or a preset's `election`)
/// and assign fields.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
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
    pub unsafe_variant: Option<UnsafeVariant>,
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
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &str| {
            Err(ConfigError::Invalid {
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
        if safe_duration(t.lease, t.drift, t.margin).is_none() {
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

    /// These settings, checked once ([`ElectionConfig::validate`]) for the layers
    /// that take them as they are.
    pub fn validated(self) -> Result<Validated<ElectionConfig>, ConfigError> {
        self.validate()?;
        Ok(Validated(self))
    }
}

/// Timing of a candidacy (a subset of the election config).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Timing {
    /// Lease asked for (`L`).
    pub lease: Duration,
    /// Time between renewals (about `L / 3`).
    pub renew_interval: Duration,
    /// Clock-rate drift bound `ρ`.
    pub drift: f64,
    /// Safety margin subtracted from every deadline.
    pub margin: Duration,
    /// Back-off per rank: the candidate of rank `r` waits `r * rank_backoff` before
    /// asking, so the lowest id tries first.
    pub rank_backoff: Duration,
    /// A round undecided after this long is abandoned and retried.
    pub round_timeout: Duration,
}

impl Timing {
    /// This timing under an unsafe `variant` (simulation only): without drift
    /// correction and margin for [`UnsafeVariant::NoDriftMargin`], unchanged otherwise.
    #[doc(hidden)]
    pub fn for_variant(&self, variant: Option<UnsafeVariant>) -> Timing {
        match variant {
            Some(UnsafeVariant::NoDriftMargin) => Timing {
                drift: 0.0,
                margin: Duration::ZERO,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

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

/// How long a leadership granted for `lease` lasts on the candidate's clock, for clock
/// rates within `±drift` and a safety `margin`; `None` when nothing is left.
pub fn safe_duration(lease: Duration, drift: f64, margin: Duration) -> Option<Duration> {
    if !(0.0..1.0).contains(&drift) {
        return None;
    }
    let d = lease.as_secs_f64() * (1.0 - drift) / (1.0 + drift) - margin.as_secs_f64();
    (d > 0.0).then(|| Duration::from_secs_f64(d))
}
