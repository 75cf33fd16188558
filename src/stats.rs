//! The counters a node keeps of what it dropped or refused, and what it sent: every
//! layer counts its own part, and [`crate::Engine::stats`] adds them up. The gauges
//! ([`Gauges`]) are read from the engine's state when asked
//! ([`crate::Engine::gauges`]).
//!
//! Every counter and gauge is declared once, with its help text, in a `metrics!`
//! block: the declaration makes the struct field and its entry in `metrics()`, the
//! iteration an exporter or the CLI loops over as [`Metric`]s.

/// Whether a metric only grows, or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A count since the node started; it never goes down.
    Counter,
    /// A level read now (members, connections, queue lengths).
    Gauge,
}

impl MetricKind {
    /// The kind's Prometheus name: `counter` or `gauge`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// One named value of a node: a counter or a gauge, with its help text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Its stable snake_case name (unique among a node's metrics).
    pub name: &'static str,
    /// What it counts, in one sentence.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Its value.
    pub value: u64,
}

/// Declares a struct of `u64` metrics: each field with its doc comment (the help
/// text) and its kind (`Counter` or `Gauge`), and `metrics()`, which lists every field
/// as a [`Metric`] in declaration order.
macro_rules! metrics {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[doc = $doc:literal])+ $field:ident : $kind:ident, )*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[doc = $doc])+ pub $field: u64, )*
        }

        impl $name {
            /// Every field as a [`Metric`](crate::Metric), in declaration order.
            pub fn metrics(&self) -> impl Iterator<Item = $crate::stats::Metric> {
                [$(
                    $crate::stats::Metric {
                        name: stringify!($field),
                        help: concat!($($doc),+).trim_ascii(),
                        kind: $crate::stats::MetricKind::$kind,
                        value: self.$field,
                    },
                )*]
                .into_iter()
            }
        }
    };
}
// The transport's counters (`runtime/shared.rs`) are declared with it too.
#[cfg(feature = "runtime")]
pub(crate) use metrics;

metrics! {
    /// Counters of what the engine dropped or refused, and what it sent.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Stats {
        /// Frames that failed to decode (malformed or oversized).
        malformed: Counter,
        /// Frames of another cluster or protocol version.
        foreign: Counter,
        /// Frames whose claimed sender differs from the authenticated peer.
        impersonation: Counter,
        /// Pings meant for another node (a reused address).
        misrouted: Counter,
        /// New members refused because the table was full.
        table_full: Counter,
        /// Indirect probe requests refused because too many were running.
        relays_refused: Counter,
        /// Events dropped because the application did not poll them in time.
        events_dropped: Counter,
        /// Messages that could not be encoded within their limit.
        encode_failed: Counter,
        /// Frames handed out to send.
        frames_out: Counter,
        /// Bytes handed out to send.
        bytes_out: Counter,
        /// Frames received and decoded.
        frames_in: Counter,
        /// Gossip updates dropped because the broadcast queue was full.
        broadcasts_dropped: Counter,
        /// Suspicions this node raised after a failed probe.
        suspicions_raised: Counter,
        /// Times this node refuted a suspicion or death about itself.
        refutations: Counter,
        /// Early full-state exchanges: gossip had grown the member table by a quarter
        /// since the last one (a mass join or a healed partition).
        catch_ups: Counter,
        /// Anti-entropy exchanges a peer started whose summary matched our table: no
        /// record needed to travel.
        syncs_in_agreement: Counter,
        /// Times news said this node's own id was alive at another address (a restart
        /// elsewhere seen once, or another live process with this id again and again).
        claims_elsewhere: Counter,
        /// Election messages meant for another process with this node's id, dropped.
        election_misrouted: Counter,
        /// Bytes of frames received and decoded.
        bytes_in: Counter,
        /// Direct probes (pings) this node sent.
        probes_sent: Counter,
        /// Acks of this node's direct probes received in time.
        acks_received: Counter,
        /// Members this node declared failed (its own suspicion ran out unrefuted).
        deaths_declared: Counter,
        /// Changes of a group's gossiped leader seen by this node.
        leader_changes: Counter,
        /// Renewal rounds of this node's leaderships that a quorum of voters had not
        /// granted within half a round timeout (each asked again; a lease at risk).
        renewals_late: Counter,
        /// Leaderships of this node that ended because no quorum of voters renewed
        /// the lease in time (failed renewals).
        leases_expired: Counter,
    }
}

metrics! {
    /// Levels of the engine's state, read when asked ([`crate::Engine::gauges`]).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct Gauges {
        /// Members in this node's table, itself included, in any state.
        members: Gauge,
        /// Members alive in this node's view, itself included.
        members_alive: Gauge,
        /// Members suspected of having failed.
        members_suspect: Gauge,
        /// Members declared failed, still in the table.
        members_dead: Gauge,
        /// Members that left gracefully, still in the table.
        members_left: Gauge,
        /// Lifeguard's local health score (0 = healthy).
        health_score: Gauge,
        /// Gossip updates waiting in the broadcast queue.
        broadcasts_queued: Gauge,
        /// Groups that exist in this node's view.
        groups: Gauge,
        /// Groups with a gossiped leader in this node's view.
        groups_led: Gauge,
        /// Groups this node runs for.
        campaigns: Gauge,
        /// Groups this node leads now.
        leaderships: Gauge,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every field, each set to a distinct value.
    fn numbered() -> Stats {
        Stats {
            malformed: 1,
            foreign: 2,
            impersonation: 3,
            misrouted: 4,
            table_full: 5,
            relays_refused: 6,
            events_dropped: 7,
            encode_failed: 8,
            frames_out: 9,
            bytes_out: 10,
            frames_in: 11,
            broadcasts_dropped: 12,
            suspicions_raised: 13,
            refutations: 14,
            catch_ups: 15,
            syncs_in_agreement: 16,
            claims_elsewhere: 17,
            election_misrouted: 18,
            bytes_in: 19,
            probes_sent: 20,
            acks_received: 21,
            deaths_declared: 22,
            leader_changes: 23,
            renewals_late: 24,
            leases_expired: 25,
        }
    }

    #[test]
    fn the_registry_lists_every_counter_once_with_its_value() {
        let s = numbered();
        let all: Vec<Metric> = s.metrics().collect();
        assert_eq!(all.len(), 25);
        let names: HashSet<_> = all.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), all.len(), "a name twice");
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.value, i as u64 + 1, "{}", m.name);
            assert_eq!(m.kind, MetricKind::Counter, "{}", m.name);
            assert!(!m.help.is_empty() && m.help == m.help.trim(), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
        }
        let value = |n| all.iter().find(|m| m.name == n).map(|m| m.value);
        assert_eq!(value("frames_out"), Some(s.frames_out));
        assert_eq!(value("election_misrouted"), Some(s.election_misrouted));
    }

    #[test]
    fn help_joins_the_lines_of_a_doc_comment() {
        let s = Stats::default();
        let m = s.metrics().find(|m| m.name == "catch_ups").unwrap();
        assert!(m.help.starts_with("Early full-state"), "{}", m.help);
        assert!(m.help.contains("quarter since"), "{}", m.help);
        assert_eq!(m.value, 0);
    }

    #[test]
    fn gauges_are_gauges_and_named_apart_from_the_counters() {
        let g = Gauges {
            members: 4,
            members_alive: 3,
            ..Gauges::default()
        };
        let counters: HashSet<_> = Stats::default().metrics().map(|m| m.name).collect();
        let mut seen = HashSet::new();
        for m in g.metrics() {
            assert_eq!(m.kind, MetricKind::Gauge, "{}", m.name);
            assert!(!m.help.is_empty(), "{}", m.name);
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(!counters.contains(m.name), "{} is also a counter", m.name);
        }
        let members = g.metrics().find(|m| m.name == "members").unwrap();
        assert_eq!(members.value, 4);
    }
}
