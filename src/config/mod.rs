//! Protocol configuration: every timing and every bound, with presets in the spirit of
//! memberlist's LAN / WAN / local profiles ([`Config`]; the election's part in
//! [`election`]).
//!
//! A config is checked once, where it enters: [`crate::Engine::new`] turns it into a
//! [`Validated`] config ([`Config::validated`]), and the layers below
//! (`Swim::new`, `Election::new`) take only that, so
//! an invalid config never reaches a running node and nothing checks it twice.

pub mod election;

use std::time::Duration;

pub use election::{ElectionConfig, Timing};

use crate::wire::{NodeId, MAX_CLUSTER_NAME};

/// A configuration its `validate` accepted: only [`Config::validated`] and
/// [`ElectionConfig::validated`] make one, and nothing changes it afterwards (it
/// derefs to the config, read-only).
#[derive(Clone, Debug, PartialEq)]
pub struct Validated<T>(T);

impl<T> Validated<T> {
    /// The config itself.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Validated<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl Validated<Config> {
    /// The election's settings, validated with the rest.
    pub fn election(&self) -> Validated<ElectionConfig> {
        Validated(self.0.election.clone())
    }
}

/// Membership (SWIM + Lifeguard) configuration.
///
/// Start from a preset ([`Config::lan`], [`Config::wan`], [`Config::local`]) and change
/// fields; [`Config::validate`] says what is wrong, field by field. The struct is
/// `#[non_exhaustive]` so that a new setting is not a breaking change: build it from a
/// preset and assign fields (`let mut c = Config::lan(); c.probe_interval = …;`), not
/// with a struct literal.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Cluster name carried in every frame; frames of another cluster are refused.
    /// Default `"quorate"`. At most 64 bytes.
    pub cluster_name: String,
    /// Time between two probes of one member. Default (LAN) 200 ms. Shorter detects
    /// failures sooner at the cost of more packets per second (one ping + ack per period).
    pub probe_interval: Duration,
    /// How long a direct ping waits for its ack before indirect probes start. Default
    /// (LAN) 100 ms. Must exceed the network's round-trip time with margin; must be
    /// shorter than `probe_interval`.
    pub probe_timeout: Duration,
    /// Members asked to probe indirectly (`k` of SWIM). Default 3. More members make a
    /// false suspicion under loss less likely at the cost of more packets on failure.
    pub indirect_checks: usize,
    /// Suspicion timeout multiplier: the shortest suspicion lasts
    /// `suspicion_mult * max(1, log10(n)) * probe_interval`. Default (LAN) 3.
    pub suspicion_mult: u32,
    /// Lifeguard: a suspicion starts at `suspicion_max_mult` times the shortest timeout
    /// and shrinks toward it as independent confirmations arrive. Default 6. Larger values
    /// give a falsely suspected member more time to refute, but a lone accuser's suspicion
    /// takes longer to become a death.
    pub suspicion_max_mult: u32,
    /// When a direct ping gets no ack within `probe_timeout`, also ping the member over
    /// a reliable stream while the indirect probes run (memberlist's TCP fallback).
    /// Default true. A stream is retransmitted, so datagram loss alone cannot make a
    /// live member look dead; the cost is one stream message each way per failed direct
    /// probe, and a member whose datagrams are blocked but streams pass stays alive.
    pub fallback_ping: bool,
    /// Lifeguard on (local health multiplier, dynamic suspicion timeout, nacks, buddy
    /// system). Default true. Turning it off gives plain SWIM, for comparison only.
    pub lifeguard: bool,
    /// Lifeguard's local health multiplier ceiling: a node that misses its own deadlines
    /// stretches its probe interval and timeout up to `(awareness_max + 1)` times.
    /// Default 8.
    pub awareness_max: u32,
    /// Each update is gossiped `retransmit_mult * ceil(log2(n + 1))` times. Default 3.
    /// Higher values spread updates more reliably under loss, at more bytes per packet.
    pub retransmit_mult: u32,
    /// Time between gossip rounds (updates sent to `gossip_nodes` random members besides
    /// the piggybacking on probes). Rounds run only while there is news to spread, so
    /// an idle node wakes only to probe. Default (LAN) 100 ms; zero disables gossip
    /// rounds.
    pub gossip_interval: Duration,
    /// Members each gossip round sends to. Default 3.
    pub gossip_nodes: usize,
    /// Dead members still receive gossip for this long (so a falsely declared member
    /// learns about it and refutes). Default (LAN) 10 s.
    pub gossip_to_the_dead: Duration,
    /// Time between anti-entropy exchanges with one random member, stretched for
    /// clusters above 32 members. An exchange sends a summary of the member table
    /// (4 bytes per 16 members) and then only the records where the two tables differ;
    /// one that brings members is followed by another five probe periods later.
    /// Shorter heals lost gossip sooner, at a summary per exchange. Default (LAN) 15 s;
    /// zero disables them.
    pub push_pull_interval: Duration,
    /// Time between attempts to reach one dead member (or the seeds, when alone), so that
    /// a healed partition merges by itself. Default (LAN) 5 s.
    pub reconnect_interval: Duration,
    /// A connection to a peer that carries nothing for this long is closed (QUIC idle
    /// timeout). No keep-alive traffic flows meanwhile, so an idle connection costs no
    /// bytes and a node's background traffic stays flat as the cluster grows. Longer
    /// keeps connections of large clusters (where a pair talks about once per probe
    /// round) from being re-established, at the cost of memory per connection.
    /// Default (LAN) 30 s.
    pub connection_idle: Duration,
    /// Time between join attempts while no seed has answered. Default (LAN) 1 s.
    pub join_retry_interval: Duration,
    /// Dead members are remembered (and retried) this long, then forgotten.
    /// Default 1 h.
    pub dead_retention: Duration,
    /// Members that left are remembered this long. Default 60 s.
    pub left_retention: Duration,
    /// Most members the table holds, this node included. New members beyond it are
    /// refused (counted in stats) unless a dead or departed record can be dropped.
    /// Default 16 384.
    pub max_members: usize,
    /// Largest metadata a member may publish, in bytes. Default 4096. Metadata that does
    /// not fit a datagram travels as a digest and is fetched over a stream.
    pub max_metadata_bytes: usize,
    /// Largest datagram sent (probes, acks, gossip). Default 1150, under QUIC's minimum
    /// path MTU of 1200 less its own overhead.
    pub max_datagram_bytes: usize,
    /// Largest stream message sent or accepted (push-pull state). Default 32 MiB.
    pub max_stream_bytes: usize,
    /// Most pending gossip updates kept; the oldest are dropped first. Default 4096.
    pub max_broadcasts: usize,
    /// Most indirect probes this node runs for others at once; extra requests are
    /// dropped. Default 256.
    pub max_pending_indirect: usize,
    /// Most application events buffered inside the engine before the oldest are
    /// dropped (and counted). Default 65 536.
    pub max_events: usize,
    /// Most groups the cluster's registry holds (deleted groups count until forgotten),
    /// and most groups one node joins or runs for. Default 1024. A create beyond it is
    /// refused with [`crate::GroupError::TooManyGroups`].
    pub max_groups: usize,
    /// Largest group state a node publishes, in bytes: the groups it joined with their
    /// capabilities, its candidacies and leaderships, and the group creations it made.
    /// Default 4096. It travels with the node's metadata (as a digest and a stream
    /// fetch when large), so every node knows every group; more bytes cost more gossip.
    pub max_group_state_bytes: usize,
    /// Most read-your-writes barriers (`Node::sync`, and every group write when the
    /// cluster has voters) waiting for their answers at once; more are refused as
    /// busy. Default 64. Each sends this node's whole member table to every voter.
    pub max_barriers: usize,
    /// Leader election: the voters and the lease timings. With no voters (the
    /// default) the node does not take part in elections and campaigns are refused.
    pub election: ElectionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self::lan()
    }
}

impl Config {
    /// A local network: sub-millisecond round trips, fast detection. The default.
    pub fn lan() -> Self {
        Config {
            cluster_name: "quorate".to_owned(),
            probe_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(100),
            indirect_checks: 3,
            suspicion_mult: 3,
            suspicion_max_mult: 6,
            fallback_ping: true,
            lifeguard: true,
            awareness_max: 8,
            retransmit_mult: 3,
            gossip_interval: Duration::from_millis(100),
            gossip_nodes: 3,
            gossip_to_the_dead: Duration::from_secs(10),
            push_pull_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(5),
            connection_idle: Duration::from_secs(30),
            join_retry_interval: Duration::from_secs(1),
            dead_retention: Duration::from_secs(3600),
            left_retention: Duration::from_secs(60),
            max_members: 16_384,
            max_metadata_bytes: 4096,
            max_datagram_bytes: 1150,
            max_stream_bytes: 32 << 20,
            max_broadcasts: 4096,
            max_pending_indirect: 256,
            max_events: 65_536,
            max_groups: 1024,
            max_group_state_bytes: 4096,
            max_barriers: 64,
            election: ElectionConfig::lan(Vec::new()),
        }
    }

    /// A wide-area network: round trips of tens to hundreds of milliseconds.
    pub fn wan() -> Self {
        Config {
            probe_interval: Duration::from_secs(3),
            probe_timeout: Duration::from_secs(2),
            suspicion_mult: 6,
            retransmit_mult: 4,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            gossip_to_the_dead: Duration::from_secs(60),
            push_pull_interval: Duration::from_secs(60),
            reconnect_interval: Duration::from_secs(30),
            connection_idle: Duration::from_secs(120),
            join_retry_interval: Duration::from_secs(5),
            election: ElectionConfig::wan(Vec::new()),
            ..Self::lan()
        }
    }

    /// One machine (loopback, tests, demos): aggressive timings.
    pub fn local() -> Self {
        Config {
            probe_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_millis(50),
            suspicion_mult: 3,
            retransmit_mult: 2,
            gossip_interval: Duration::from_millis(50),
            gossip_to_the_dead: Duration::from_secs(5),
            push_pull_interval: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(2),
            connection_idle: Duration::from_secs(10),
            join_retry_interval: Duration::from_millis(500),
            left_retention: Duration::from_secs(30),
            election: ElectionConfig::local(Vec::new()),
            ..Self::lan()
        }
    }

    /// Metered links (cellular, satellite, radio backhaul): about a tenth of
    /// [`Config::lan`]'s bytes, with detection in seconds.
    ///
    /// Each probe is a ping, its ack and QUIC's acknowledgement of the ack, about 210
    /// bytes on the wire with IP and UDP headers; probing every 2.2 s makes about 95
    /// bytes per node per second in a quiet cluster of 20 (`quorate bench --wire
    /// --preset edge`), the same at any size since a node probes one member per
    /// interval. Gossip rounds run only while there is news, anti-entropy goes by
    /// digest every 5 minutes, and connections stay open 5 minutes unused, so that a
    /// pair that talks once per probe round (`2.2 s * members`) keeps its connection up
    /// to about 60 members instead of paying a handshake (kilobytes of certificates)
    /// each time; dead members are retried every 2 minutes.
    ///
    /// Detection: no Lifeguard stretch of suspicions (`suspicion_mult` 1: 2.9 s at 20
    /// members), so a crash reaches every member of 20 in 6.7 s at the median and
    /// within 11.5 s for nine runs in ten (the simulator, 100 seeds); most of it is the
    /// wait until some member probes the crashed one. The probe timeout (1 s) allows
    /// round trips of several hundred milliseconds, and a failed direct probe is
    /// retried over a stream, so 10% datagram loss declared no live member dead in 100
    /// simulated runs of 5 minutes.
    pub fn edge() -> Self {
        Config {
            probe_interval: Duration::from_millis(2200),
            probe_timeout: Duration::from_secs(1),
            suspicion_mult: 1,
            gossip_interval: Duration::from_millis(250),
            gossip_to_the_dead: Duration::from_secs(60),
            push_pull_interval: Duration::from_secs(300),
            reconnect_interval: Duration::from_secs(120),
            connection_idle: Duration::from_secs(300),
            join_retry_interval: Duration::from_secs(5),
            election: ElectionConfig::wan(Vec::new()),
            ..Self::lan()
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_timings()?;
        self.validate_bounds()?;
        self.election.validate()
    }

    /// The name and every timing of membership.
    fn validate_timings(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.cluster_name.is_empty() || self.cluster_name.len() > MAX_CLUSTER_NAME {
            return bad(
                "cluster_name",
                format!("must be 1..={MAX_CLUSTER_NAME} bytes"),
            );
        }
        if self.probe_interval < Duration::from_millis(10) {
            return bad("probe_interval", "must be at least 10ms".into());
        }
        if self.probe_timeout.is_zero() || self.probe_timeout >= self.probe_interval {
            return bad(
                "probe_timeout",
                format!(
                    "must be positive and shorter than probe_interval ({:?})",
                    self.probe_interval
                ),
            );
        }
        if self.indirect_checks > 16 {
            return bad("indirect_checks", "must be at most 16".into());
        }
        if self.suspicion_mult == 0 {
            return bad("suspicion_mult", "must be at least 1".into());
        }
        if self.suspicion_max_mult == 0 {
            return bad("suspicion_max_mult", "must be at least 1".into());
        }
        if self.awareness_max > 64 {
            return bad("awareness_max", "must be at most 64".into());
        }
        if self.retransmit_mult == 0 {
            return bad("retransmit_mult", "must be at least 1".into());
        }
        if !self.gossip_interval.is_zero() && self.gossip_nodes == 0 {
            return bad(
                "gossip_nodes",
                "must be at least 1 when gossip_interval is set".into(),
            );
        }
        if self.reconnect_interval.is_zero() {
            return bad("reconnect_interval", "must be positive".into());
        }
        if self.connection_idle < (self.probe_interval * 4).max(Duration::from_secs(1)) {
            return bad(
                "connection_idle",
                "must be at least 1s and four probe intervals".into(),
            );
        }
        if self.join_retry_interval.is_zero() {
            return bad("join_retry_interval", "must be positive".into());
        }
        Ok(())
    }

    /// Every size and count bound.
    fn validate_bounds(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.max_members < 2 {
            return bad("max_members", "must be at least 2".into());
        }
        if self.max_datagram_bytes < 512 || self.max_datagram_bytes > 65_000 {
            return bad("max_datagram_bytes", "must be within 512..=65000".into());
        }
        if self.max_metadata_bytes > 1 << 20 {
            return bad("max_metadata_bytes", "must be at most 1 MiB".into());
        }
        if self.max_stream_bytes < self.max_datagram_bytes.max(self.max_metadata_bytes + 1024) {
            return bad(
                "max_stream_bytes",
                "must hold a datagram and one member's metadata with its record".into(),
            );
        }
        if self.max_broadcasts == 0 || self.max_pending_indirect == 0 || self.max_events == 0 {
            return bad(
                "max_broadcasts/max_pending_indirect/max_events",
                "must be at least 1".into(),
            );
        }
        if self.max_barriers == 0 {
            return bad("max_barriers", "must be at least 1".into());
        }
        if self.max_groups == 0 {
            return bad("max_groups", "must be at least 1".into());
        }
        if self.max_group_state_bytes < 256 || self.max_group_state_bytes > 1 << 20 {
            return bad("max_group_state_bytes", "must be within 256..=1 MiB".into());
        }
        if self.max_stream_bytes < self.node_state_limit() + 1024 {
            return bad(
                "max_stream_bytes",
                "must hold one member's metadata and group state with its record".into(),
            );
        }
        Ok(())
    }

    /// This config, checked once ([`Config::validate`]) for the layers that take it as
    /// it is.
    pub fn validated(self) -> Result<Validated<Config>, ConfigError> {
        self.validate()?;
        Ok(Validated(self))
    }

    /// Largest node state a member publishes: its metadata and its group state, with
    /// their framing.
    pub fn node_state_limit(&self) -> usize {
        self.max_metadata_bytes + self.max_group_state_bytes + 16
    }

    /// Refuses initial metadata of `len` bytes over `limit` (named `what`).
    pub(crate) fn check_metadata(len: usize, limit: usize, what: &str) -> Result<(), ConfigError> {
        if len > limit {
            return Err(ConfigError::Invalid {
                field: "metadata",
                reason: format!("{len} bytes exceeds {what} ({limit})"),
            });
        }
        Ok(())
    }

    /// This config with `voters` as the election's voter set.
    pub fn with_voters(mut self, voters: Vec<NodeId>) -> Self {
        self.election.voters = voters;
        self
    }

    /// The smallest suspicion timeout for a cluster of `n` members.
    pub fn suspicion_min(&self, n: usize) -> Duration {
        let scale = (n.max(1) as f64).log10().max(1.0);
        self.probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * scale)
    }

    /// The longest a crash can take to reach every healthy member of an `n`-member
    /// cluster when nothing confirms the suspicion early: one full probe round until
    /// some member probes the dead one, that probe's period, the longest suspicion
    /// (Lifeguard starts it at `suspicion_max_mult` times the shortest), and
    /// `ceil(log2 n) + 2` gossip rounds to spread the death. Slow members (Lifeguard's
    /// health score above 0) stretch their own probing beyond it.
    pub fn detection_bound(&self, n: usize) -> Duration {
        let n = n.max(2);
        let mult = if self.lifeguard {
            self.suspicion_max_mult
        } else {
            1
        };
        let rounds = usize::BITS - (n - 1).leading_zeros() + 2;
        let spread = if self.gossip_interval.is_zero() {
            self.probe_interval * rounds
        } else {
            self.gossip_interval * rounds
        };
        self.probe_interval * (n as u32 + 1) + self.suspicion_min(n) * mult + spread
    }

    /// How many times each update is gossiped in a cluster of `n` members:
    /// `retransmit_mult * ceil(log2(n + 1))`.
    pub fn retransmit_limit(&self, n: usize) -> u32 {
        let log = usize::BITS - n.leading_zeros(); // ceil(log2(n+1)) for n >= 0
        self.retransmit_mult * log.max(1)
    }

    /// Push-pull interval stretched for large clusters (as memberlist does): doubles the
    /// interval for every doubling beyond 32 members, so a member's state transfer load
    /// stays bounded.
    pub fn push_pull_interval_for(&self, n: usize) -> Duration {
        if n <= 32 {
            return self.push_pull_interval;
        }
        let extra = ((n as f64).log2() - 5.0).ceil().max(0.0) as u32;
        self.push_pull_interval * (extra + 1)
    }
}

/// A configuration was refused. Nothing was started.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value that cannot work.
    #[error("invalid config: {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        Config::lan().validate().unwrap();
        Config::wan().validate().unwrap();
        Config::local().validate().unwrap();
        Config::edge().validate().unwrap();
    }

    #[test]
    fn edge_keeps_connections_through_a_probe_round_of_sixty() {
        let e = Config::edge();
        // Each of a pair probes the other once per round (`probe_interval * members`);
        // the pool closes a connection unused for three quarters of `connection_idle`.
        assert!(e.connection_idle * 3 / 4 >= e.probe_interval * 60);
        assert!(e.probe_interval >= Config::lan().probe_interval * 10);
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut c = Config::lan();
        c.probe_timeout = c.probe_interval;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "probe_timeout",
                ..
            })
        ));
        let mut c = Config::lan();
        c.cluster_name = "x".repeat(65);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "cluster_name",
                ..
            })
        ));
        let mut c = Config::lan();
        c.max_datagram_bytes = 100;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_datagram_bytes"));
    }

    #[test]
    fn retransmit_limit_is_mult_times_ceil_log2() {
        let c = Config {
            retransmit_mult: 4,
            ..Config::lan()
        };
        // ceil(log2(n+1)): n=0 -> 0 (clamped to 1), 1 -> 1, 2 -> 2, 3 -> 2, 4 -> 3, 7 -> 3, 8 -> 4
        let expect = [
            (0, 4),
            (1, 4),
            (2, 8),
            (3, 8),
            (4, 12),
            (7, 12),
            (8, 16),
            (1000, 40),
        ];
        for (n, want) in expect {
            assert_eq!(c.retransmit_limit(n), want, "n={n}");
        }
    }

    #[test]
    fn suspicion_min_scales_with_log10() {
        let c = Config::lan(); // 200ms * 3
        assert_eq!(c.suspicion_min(1), Duration::from_millis(600));
        assert_eq!(c.suspicion_min(10), Duration::from_millis(600));
        assert_eq!(c.suspicion_min(100), Duration::from_millis(1200));
    }

    #[test]
    fn detection_bound_adds_round_suspicion_and_spread() {
        let c = Config::lan();
        // 6 probe periods + 600ms * 6 + 5 gossip rounds of 100ms.
        assert_eq!(
            c.detection_bound(5),
            Duration::from_millis(1200 + 3600 + 500)
        );
        let plain = Config {
            lifeguard: false,
            ..Config::lan()
        };
        assert!(plain.detection_bound(5) < c.detection_bound(5));
    }

    #[test]
    fn push_pull_interval_stretches_beyond_32() {
        let c = Config::lan();
        assert_eq!(c.push_pull_interval_for(32), c.push_pull_interval);
        assert_eq!(c.push_pull_interval_for(64), c.push_pull_interval * 2);
        assert_eq!(c.push_pull_interval_for(1000), c.push_pull_interval * 6);
    }
}
