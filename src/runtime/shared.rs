//! State shared between the driver and the tasks it spawns: counters, the membership
//! snapshot, and the channels into the driver.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::config::Config;
use crate::election::Term;
use crate::swim::Member;
use crate::wire::{Incarnation, NodeId};

/// A frame read from a peer, on its way to the engine.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// The connection it came on (`quinn::Connection::stable_id`).
    pub conn: usize,
    /// The peer's address (its listen address: one endpoint per node).
    pub from: SocketAddr,
    /// The node id from the peer's certificate.
    pub peer: NodeId,
    /// Read from a stream rather than a datagram.
    pub reliable: bool,
    /// The frame.
    pub bytes: Bytes,
}

/// A change in the set of connections.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A handshake completed with node `peer` (dialed by us when `dial` is set).
    Up {
        conn: quinn::Connection,
        peer: NodeId,
        initiator: NodeId,
        dial: Option<u64>,
    },
    /// Our dial `dial` to `to` failed.
    DialFailed { to: SocketAddr, dial: u64 },
    /// Connection `id` to `addr` closed.
    Down { addr: SocketAddr, id: usize },
}

/// What the driver publishes after each change: the node's view.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub addr: SocketAddr,
    pub incarnation: Incarnation,
    pub members: Vec<Member>,
    /// Groups and gossiped leaders (rebuilt only when they change).
    pub groups: Arc<GroupView>,
    /// Whether a seed (or any member) has answered this node's join.
    pub joined: bool,
}

impl Snapshot {
    /// How many of `voters` are alive in this view.
    pub fn voters_alive(&self, voters: &[NodeId]) -> usize {
        let alive = |v: &&NodeId| {
            self.members
                .iter()
                .any(|m| m.id == **v && m.state == crate::wire::State::Alive)
        };
        voters.iter().filter(alive).count()
    }
}

/// The groups as this node sees them.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupView {
    /// Every existing group with its members and their capabilities, by id.
    pub groups: BTreeMap<String, Vec<(NodeId, Vec<u8>)>>,
    /// The gossiped leader of every group that has one (lock groups included).
    pub leaders: BTreeMap<String, (NodeId, Term)>,
    /// The live candidates of every group someone runs for, by id.
    pub candidates: BTreeMap<String, Vec<NodeId>>,
}

impl GroupView {
    /// The view of `engine`.
    pub fn of(engine: &crate::engine::Engine) -> Self {
        let groups = engine
            .group_list()
            .into_iter()
            .filter_map(|g| engine.group_members(&g).ok().map(|m| (g, m)))
            .collect();
        GroupView {
            groups,
            leaders: engine.groups().leaders(),
            candidates: engine.groups().all_candidates(),
        }
    }
}

/// Declares [`TransportStats`] through [`crate::stats::metrics`] and its live twin
/// [`Counters`] (one atomic per field), from one list.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct TransportStats {
            $( $(#[doc = $doc:literal])+ $field:ident : $kind:ident, )*
        }
    ) => {
        crate::stats::metrics! {
            $(#[$meta])*
            pub struct TransportStats {
                $( $(#[doc = $doc])+ $field: $kind, )*
            }
        }

        /// The live counters behind [`TransportStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters { $(pub $field: AtomicU64,)* }

        impl Counters {
            pub fn snapshot(&self) -> TransportStats {
                TransportStats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Counters of the transport (the protocol's own are in [`crate::Stats`]).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct TransportStats {
        /// Connections established, both directions.
        connections_opened: Counter,
        /// Connections this node closed because they were idle.
        idle_closed: Counter,
        /// Connections this node closed because a connection to the same peer won the
        /// one-connection-per-pair tie-break, or another node took over the address.
        duplicates_closed: Counter,
        /// Connections open now (pooled, active and standby).
        open_connections: Gauge,
        /// Outgoing handshakes that failed (peer unreachable, not of our CA, wrong node id).
        dials_failed: Counter,
        /// Incoming handshakes refused (certificate not from the cluster CA, no identity).
        handshakes_refused: Counter,
        /// Stream frames refused (over `max_stream_bytes`, truncated).
        malformed_streams: Counter,
        /// Frames not sent: dial failed or queue full, stream send failed or too many at once.
        send_dropped: Counter,
        /// Datagrams sent.
        datagrams_out: Counter,
        /// Datagrams received.
        datagrams_in: Counter,
        /// Stream frames sent (acknowledged by the peer).
        streams_out: Counter,
        /// Stream frames received.
        streams_in: Counter,
        /// Status queries answered.
        status_queries: Counter,
        /// Client connections (client certificates, as `quorate status` uses) open now.
        client_connections: Gauge,
        /// Incoming connections refused because a limit was reached: handshakes under
        /// way, client connections or node connections (see [`super::NodeConfig`]).
        refused_busy: Counter,
        /// UDP bytes sent (QUIC headers, handshakes, acknowledgements and retransmissions
        /// included) by the connections open now and by those this node closed; refreshed
        /// at every housekeeping sweep.
        udp_bytes_out: Counter,
        /// Packets this node's socket sent, every kind (handshakes, QUIC acknowledgements,
        /// closes included); refreshed at every housekeeping sweep.
        wire_packets_out: Counter,
        /// Bytes this node's socket sent with their IP and UDP headers (28 bytes per
        /// packet over IPv4, 48 over IPv6; link framing excluded); refreshed at every
        /// housekeeping sweep.
        wire_bytes_out: Counter,
        /// Times the application watchdog expired (`NodeConfig::heartbeat_timeout`):
        /// the node left its groups and resigned its leaderships and locks.
        watchdog_expiries: Counter,
        /// Revocation lists put in force (newer than the one held).
        revocations_applied: Counter,
        /// Revocation lists refused: not signed by the cluster CA, or malformed.
        revocations_refused: Counter,
        /// Events lost by this node's event subscribers (`Node::events`) that fell
        /// behind, all subscribers together.
        events_lagged: Counter,
    }
}

/// Adds one to a counter.
pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Everything the connection tasks need.
#[derive(Debug)]
pub(crate) struct Shared {
    pub me: NodeId,
    pub cluster: String,
    /// The voters of the cluster's elections (empty: elections off).
    pub voters: Vec<NodeId>,
    /// The driver's command channel, weak: what holds it does not keep the driver
    /// alive (status queries that ask the voters use it).
    pub commands: mpsc::WeakUnboundedSender<super::driver::Command>,
    pub max_stream_bytes: usize,
    /// Bytes of stream frames being read at once, all connections together.
    pub stream_budget: tokio::sync::Semaphore,
    pub timings: Timings,
    pub counters: Counters,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The node's events, for watches to subscribe to (never read itself).
    pub events: tokio::sync::broadcast::Receiver<crate::engine::Event>,
    pub frames: mpsc::Sender<Inbound>,
    pub conn_events: mpsc::Sender<ConnEvent>,
    pub limits: Limits,
    /// The application watchdog, when `NodeConfig::heartbeat_timeout` is set.
    pub watchdog: Option<Arc<super::watchdog::Watchdog>>,
    /// This node's own certificate's end, warned about ahead of it.
    pub own_expiry: super::validity::OwnExpiry,
    /// The last certificate refusal per peer address.
    pub refusals: super::validity::Refusals,
    /// The identity the node's handshakes use now (with its revocation list).
    pub identity: std::sync::Mutex<super::identity::Identity>,
    /// Held while a revocation list is applied, one at a time.
    pub revoking: tokio::sync::Mutex<()>,
    /// What TLS configs are built with: the protocol config and the handshake bound.
    pub tls_params: (crate::config::Config, usize),
    /// The node's data directory, if it has one.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Shared {
    /// The identity the node's handshakes use now.
    pub fn current_identity(&self) -> super::identity::Identity {
        self.identity.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The server and client TLS configs of `identity` for this node.
    pub fn tls_configs(
        &self,
        identity: &super::identity::Identity,
    ) -> Result<(quinn::ServerConfig, quinn::ClientConfig), super::identity::IdentityError> {
        let (cfg, max_handshakes) = &self.tls_params;
        let server = super::transport::server_config(identity, cfg, *max_handshakes)?;
        Ok((server, super::transport::client_config(identity, cfg)?))
    }

    /// Records the identity the driver was just given.
    pub fn set_identity(&self, identity: super::identity::Identity) {
        *self.identity.lock().unwrap_or_else(|e| e.into_inner()) = identity;
    }
}

/// The bounds on incoming connections (see their fields in [`super::NodeConfig`]).
#[derive(Debug)]
pub(crate) struct Limits {
    /// One permit per incoming handshake under way.
    pub handshakes: Arc<Semaphore>,
    /// One permit per open client connection.
    pub clients: Arc<Semaphore>,
    /// How long a client connection may stay open.
    pub client_lifetime: Duration,
    /// Most node connections open at once.
    pub nodes: u64,
}

impl Limits {
    /// The limits of `cfg` (each at least 1).
    pub fn of(cfg: &super::NodeConfig) -> Self {
        Limits {
            handshakes: Arc::new(Semaphore::new(cfg.max_handshakes.max(1))),
            clients: Arc::new(Semaphore::new(cfg.max_client_connections.max(1))),
            client_lifetime: cfg.client_lifetime.max(Duration::from_millis(1)),
            nodes: cfg.max_node_connections.max(1) as u64,
        }
    }
}

/// Transport timings, all derived from the SWIM configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timings {
    /// QUIC idle timeout: `Config::connection_idle`. No keep-alive is sent, so a
    /// connection nobody uses costs nothing and ends after this long.
    pub quic_idle: Duration,
    /// Bound on a handshake: ten probe intervals, at least 1 s.
    pub handshake: Duration,
    /// A pooled connection without frames either way for this long is closed (with the
    /// IDLE code, before QUIC's own idle timer fires): three quarters of `quic_idle`.
    pub pool_idle: Duration,
    /// Two connections of one pair established within this window are a dial race,
    /// settled by node id; a loser is closed this long after it lost. Two probe
    /// intervals, at least 500 ms.
    pub race: Duration,
    /// Bound on one stream send (open, write, acknowledgement).
    pub send_timeout: Duration,
    /// Housekeeping period of the driver (sweeps, snapshot refresh).
    pub tick: Duration,
    /// After `leave`, the node keeps gossiping at least this long (three gossip
    /// intervals, at least one probe interval)...
    pub leave_linger: Duration,
    /// ...and at most this long while reliable sends are still in flight.
    pub leave_timeout: Duration,
}

impl Timings {
    /// The timings for `cfg`.
    pub fn new(cfg: &Config) -> Self {
        let p = cfg.probe_interval;
        let quic_idle = cfg.connection_idle;
        let handshake = (p * 10).max(Duration::from_secs(1));
        Timings {
            quic_idle,
            handshake,
            pool_idle: quic_idle * 3 / 4,
            race: (p * 2).max(Duration::from_millis(500)),
            send_timeout: handshake * 2,
            tick: p.clamp(Duration::from_millis(20), Duration::from_secs(1)),
            leave_linger: (cfg.gossip_interval * 3).max(p),
            leave_timeout: (p * 10).clamp(Duration::from_secs(1), Duration::from_secs(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MetricKind;

    #[test]
    fn transport_counters_are_listed_once_with_their_values() {
        let c = Counters::default();
        add(&c.datagrams_out, 7);
        inc(&c.open_connections);
        let all: Vec<_> = c.snapshot().metrics().collect();
        assert_eq!(all.len(), 22);
        let mut names = std::collections::HashSet::new();
        for m in &all {
            assert!(names.insert(m.name), "{} twice", m.name);
            assert!(!m.help.is_empty(), "{}", m.name);
        }
        let find = |n: &str| all.iter().find(|m| m.name == n).copied().unwrap();
        assert_eq!(find("datagrams_out").value, 7);
        assert_eq!(find("datagrams_out").kind, MetricKind::Counter);
        assert_eq!(find("open_connections").value, 1);
        assert_eq!(find("open_connections").kind, MetricKind::Gauge);
        assert_eq!(find("client_connections").kind, MetricKind::Gauge);
        // No name is also one of the engine's.
        let engine = crate::Stats::default().metrics();
        for m in engine.chain(crate::Gauges::default().metrics()) {
            assert!(!names.contains(m.name), "{} also in the engine", m.name);
        }
    }
}
