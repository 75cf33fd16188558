//! The public async API: start a [`Node`], watch the membership, publish metadata,
//! manage groups, leave. Elections and locks on the same handle are in
//! [`crate::leader`] and [`crate::lock`].
//!
//! A node is one QUIC endpoint (client and server at once) plus one tokio task, the
//! driver, that owns the protocol engine. The [`Node`] handle talks to the driver through
//! channels: reads ([`Node::members`], [`Node::groups`], [`Node::leader`],
//! [`Node::stats`]) are snapshots that never wait, commands ([`Node::set_metadata`],
//! [`Node::create_group`], [`Node::campaign`], [`Node::leave`]) wait for the driver's
//! answer. Dropping the handle stops the node as [`Node::shutdown`] does; campaign, lock
//! and leadership handles do not keep it running.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quinn::{AsyncUdpSocket, Endpoint, EndpointConfig, Runtime, TokioRuntime};
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::election::{CampaignError, QueryError};
use crate::engine::{Engine, Event};
use crate::groups::GroupError;
use crate::identity::{Identity, IdentityError};
use crate::runtime::driver::{Command, Driver, GroupOp, Inputs, Outputs};
use crate::runtime::elect::Elections;
use crate::runtime::faults::{Faults, FaultySocket};
use crate::runtime::shared::{Limits, Shared, Snapshot, Timings, TransportStats};
use crate::runtime::terms::TermStore;
use crate::runtime::transport::{client_config, server_config, Transport};
use crate::swim::{Member, MetadataError, Stats};
use crate::wire::NodeId;

pub use crate::runtime::status::{query_status, MemberStatus, StatusReport};

/// Capacity of the frame channel from the connection tasks to the driver.
const FRAME_CHANNEL: usize = 1024;
/// Capacity of the connection-event channel.
const CONN_CHANNEL: usize = 256;

/// Bytes of stream frames read at once: two of the largest frames (so one large frame
/// never waits for itself), within what a semaphore counts.
fn stream_budget(cfg: &Config) -> usize {
    cfg.max_stream_bytes
        .saturating_mul(2)
        .min(u32::MAX as usize)
}

/// What went wrong. Each variant says what state was left behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The protocol configuration (or the initial metadata) was refused; nothing was
    /// started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity cannot be used to build TLS; nothing was started.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The identity is not the certificate of this node id (or is a client identity);
    /// nothing was started.
    #[error("the identity binds {cert:?}, not node {id}")]
    IdentityMismatch {
        /// The id the node was configured with.
        id: NodeId,
        /// The node id in the certificate (`None`: a client certificate).
        cert: Option<NodeId>,
    },
    /// The address could not be bound (or the socket could not be used); nothing was
    /// started.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The address to advertise to peers is a wildcard; nothing was started. Set
    /// [`NodeConfig::advertise`].
    #[error("cannot advertise {0}: set NodeConfig::advertise to an address peers can reach")]
    Advertise(SocketAddr),
    /// The data directory or the terms file in it cannot be used (unreadable, or
    /// corrupt: `reason` says where); nothing was started.
    #[error("data directory: {path}: {reason}")]
    DataDir {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The metadata was refused; nothing changed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The node has stopped (shut down, left, or its task ended); nothing was done.
    #[error("the node has stopped")]
    Stopped,
    /// A group operation was refused (tooz's error cases); nothing changed.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A campaign could not start; nothing changed.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// A quorum-confirmed leader query gave no answer; nothing changed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The campaign for this group was resigned (through its [`crate::Leadership`]):
    /// this node no longer runs for it.
    #[error("the campaign for group {0:?} was resigned")]
    Resigned(String),
    /// The lock was still held elsewhere when the wait ended; this node no longer
    /// waits for it.
    #[error("lock {name:?} still held elsewhere after {waited:?}")]
    LockTimeout {
        /// The lock.
        name: String,
        /// How long this node waited.
        waited: std::time::Duration,
    },
    /// The leadership ended (lease not renewed, node stopped) before the task run
    /// under it finished ([`Node::run`]); the task was dropped and the campaign
    /// resigned.
    #[error("leadership of group {group:?} (term {term}) was lost")]
    Lost {
        /// The group.
        group: String,
        /// The term that ended.
        term: crate::election::Term,
    },
    /// A status query could not connect (unreachable, or not of the same cluster CA).
    #[error("cannot query {addr}: {reason}")]
    Connect {
        /// The node queried.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The node queried refused to answer (another cluster name or status version).
    #[error("{addr} refused the status query: {reason}")]
    Refused {
        /// The node queried.
        addr: SocketAddr,
        /// Its reason.
        reason: String,
    },
    /// The node queried sent an answer that could not be read.
    #[error("bad status answer from {addr}: {reason}")]
    Protocol {
        /// The node queried.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The status query got no answer in time.
    #[error("no status answer from {addr} in time")]
    Timeout {
        /// The node queried.
        addr: SocketAddr,
    },
}

/// Everything needed to start a node. Start from [`NodeConfig::new`] and set fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's id; must be the id bound to [`NodeConfig::identity`].
    pub id: NodeId,
    /// The UDP address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The address peers reach this node at. Default: the bound address, which must then
    /// be a concrete IP (not `0.0.0.0` / `::`).
    pub advertise: Option<SocketAddr>,
    /// Addresses of existing members to join through (empty: start a new cluster).
    pub seeds: Vec<SocketAddr>,
    /// This node's certificate and key, and the cluster CA.
    pub identity: Identity,
    /// Protocol configuration. Default [`Config::lan`].
    pub config: Config,
    /// Initial metadata published with this node (at most `config.max_metadata_bytes`).
    pub metadata: Vec<u8>,
    /// Events buffered per [`EventStream`] before the oldest are dropped. Default 1024.
    pub event_capacity: usize,
    /// Fault injection on this node's socket (tests). Default none.
    pub faults: Option<Faults>,
    /// A directory for the node's durable state (created if missing). Default none.
    /// A voter records there the highest term it granted per group (the file `terms`,
    /// at most `config.election.max_groups` groups), and after a restart never grants
    /// a term at or below one it granted before. Without it the restart quarantine
    /// and gossip still protect the common cases, but a voter restarted while nobody
    /// leads could grant a term again.
    pub data_dir: Option<PathBuf>,
    /// Most connections from clients (peers presenting a client certificate, as
    /// `quorate status` does) open at once; at least 1. Default 16. A client beyond it
    /// is closed right after its handshake with the application code 6 (busy) and may
    /// retry. Each open connection holds QUIC and TLS state and buffers (tens of KiB),
    /// so a higher cap serves more concurrent admin tools at that memory each.
    pub max_client_connections: usize,
    /// How long a client connection may stay open; at least 1 ms. Default 10 s, the
    /// bound of a whole status query. Without it, a client that keeps its connections
    /// alive would hold the client slots for good; shorter frees slots sooner but cuts
    /// off a client that queries over a slow link.
    pub client_lifetime: Duration,
    /// Most connections with other nodes open at once (pooled, both directions); at
    /// least 1. Default 4096. An incoming node connection beyond it is closed right
    /// after its handshake with the application code 6 (busy); this node's own dials
    /// are not refused. Connections close after `Config::connection_idle` unused, so a
    /// node holds about as many as peers it talked to within that time (a few hundred
    /// in a cluster of thousands); a lower cap bounds memory lower, at the risk of
    /// refusing peers that have something to say.
    pub max_node_connections: usize,
    /// Most incoming handshakes under way at once, before the peer's certificate says
    /// whether it is a node or a client; at least 1. Default 64. A connection attempt
    /// beyond it is refused before any TLS work (the peer sees the connection refused
    /// and retries). A handshake lasts at most ten probe intervals (at least 1 s), so
    /// the cap also bounds the handshake rate an attacker can make this node pay for.
    pub max_handshakes: usize,
}

impl NodeConfig {
    /// Node `id` listening on `listen` with `identity`: [`Config::lan`], no seeds, no
    /// metadata, 1024 buffered events, no data directory, and the default connection
    /// limits (16 clients for 10 s each, 4096 nodes, 64 handshakes).
    pub fn new(id: NodeId, listen: SocketAddr, identity: Identity) -> Self {
        NodeConfig {
            id,
            listen,
            advertise: None,
            seeds: Vec::new(),
            identity,
            config: Config::lan(),
            metadata: Vec::new(),
            event_capacity: 1024,
            faults: None,
            data_dir: None,
            max_client_connections: 16,
            client_lifetime: Duration::from_secs(10),
            max_node_connections: 4096,
            max_handshakes: 64,
        }
    }
}

/// A stream of events for one subscriber (see [`Node::events`]).
///
/// Overflow policy: each subscriber has its own buffer of
/// [`NodeConfig::event_capacity`] events. When it falls that far behind, its oldest
/// events are dropped (counted by [`EventStream::lagged`]); the node itself never waits
/// for a subscriber. Read [`Node::members`] to resynchronise after a loss.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
    lagged: u64,
}

impl EventStream {
    /// The next event; `None` once the node has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.lost(n),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is buffered.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lost(n),
                Err(_) => return None,
            }
        }
    }

    fn lost(&mut self, n: u64) {
        self.lagged += n;
        tracing::warn!(
            lost = n,
            "event subscriber fell behind; oldest events dropped"
        );
    }

    /// Events this subscriber lost because it fell behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

/// A running cluster member. Dropping it stops the node abruptly (as
/// [`Node::shutdown`]); call [`Node::leave`] to depart gracefully.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    local_addr: SocketAddr,
    pub(crate) cmds: mpsc::UnboundedSender<Command>,
    events: broadcast::Receiver<Event>,
    /// Subscribed at start, handed to the first [`Node::events`] caller.
    first_events: std::sync::Mutex<Option<broadcast::Receiver<Event>>>,
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
    stats: watch::Receiver<Stats>,
    shared: Arc<Shared>,
    pub(crate) election_timing: crate::election::Timing,
    driver: JoinHandle<()>,
}

impl Node {
    /// Binds `cfg.listen`, starts the node and begins joining through `cfg.seeds`
    /// (retried in the background until a seed answers). Must run inside a tokio
    /// runtime.
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)] // binds the socket
    pub async fn start(cfg: NodeConfig) -> Result<Node, NodeError> {
        let bind_err = |source| NodeError::Bind {
            addr: cfg.listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(cfg.listen).map_err(bind_err)?;
        socket.set_nonblocking(true).map_err(bind_err)?;
        let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime);
        let socket = runtime.wrap_udp_socket(socket).map_err(bind_err)?;
        Self::start_with_socket(cfg, socket, runtime).await
    }

    /// Starts the node on a socket and a quinn runtime of the caller's (a simulated
    /// network, for instance); `cfg.listen` is ignored, `cfg.faults` still applies. The
    /// driver itself runs on the current tokio runtime.
    pub async fn start_with_socket(
        cfg: NodeConfig,
        socket: Arc<dyn AsyncUdpSocket>,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Node, NodeError> {
        if cfg.identity.node_id() != Some(cfg.id) {
            return Err(NodeError::IdentityMismatch {
                id: cfg.id,
                cert: cfg.identity.node_id(),
            });
        }
        let local = socket.local_addr().map_err(|source| NodeError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let socket: Arc<dyn AsyncUdpSocket> = match &cfg.faults {
            Some(f) => Arc::new(FaultySocket::new(socket, f.clone()).map_err(|source| {
                NodeError::Bind {
                    addr: local,
                    source,
                }
            })?),
            None => socket,
        };
        let advertise = cfg.advertise.unwrap_or(local);
        if advertise.ip().is_unspecified() || advertise.port() == 0 {
            return Err(NodeError::Advertise(advertise));
        }
        let now = tokio::time::Instant::now().into_std();
        let seed = rand::rngs::SmallRng::from_os_rng().random::<u64>();
        let mut engine = Engine::new(
            cfg.id,
            advertise,
            cfg.metadata.clone(),
            cfg.config.clone(),
            seed,
            now,
        )?;
        engine.set_term_floor(crate::engine::term_floor_at(unix_ms()));
        let server = server_config(&cfg.identity, &cfg.config, cfg.max_handshakes.max(1))?;
        let client = client_config(&cfg.identity, &cfg.config)?;
        let endpoint = Endpoint::new_with_abstract_socket(
            EndpointConfig::default(),
            Some(server),
            socket,
            runtime,
        )
        .map_err(|source| NodeError::Bind {
            addr: local,
            source,
        })?;
        let terms = Self::restore_terms(&cfg, &mut engine)?;
        engine.join(now, &cfg.seeds);
        let elections = Elections::new(terms);
        Ok(Self::spawn(
            cfg, engine, elections, endpoint, client, local, advertise,
        ))
    }

    /// Reads the terms this node granted before, if it has a data directory.
    fn restore_terms(
        cfg: &NodeConfig,
        engine: &mut Engine,
    ) -> Result<Option<TermStore>, NodeError> {
        let Some(dir) = &cfg.data_dir else {
            return Ok(None);
        };
        let store = TermStore::open(dir, cfg.config.election.max_groups)
            .map_err(|(path, reason)| NodeError::DataDir { path, reason })?;
        for (group, term) in store.terms() {
            engine.restore_term(group, *term);
        }
        Ok(Some(store))
    }

    fn spawn(
        cfg: NodeConfig,
        engine: Engine,
        elections: Elections,
        endpoint: Endpoint,
        client: quinn::ClientConfig,
        local: SocketAddr,
        advertise: SocketAddr,
    ) -> Node {
        // Unbounded so that a campaign handle's drop can resign without waiting, in
        // order with the commands before it; every other command awaits its answer, so
        // the queue holds at most one command per caller.
        let (cmd_tx, cmds) = mpsc::unbounded_channel();
        let (frame_tx, frames) = mpsc::channel(FRAME_CHANNEL);
        let (conn_tx, conn_events) = mpsc::channel(CONN_CHANNEL);
        let (events, events_rx) = broadcast::channel(cfg.event_capacity.max(1));
        let (snapshot, snapshot_rx) = watch::channel(Arc::new(Snapshot {
            addr: advertise,
            incarnation: 0,
            members: engine.members().collect(),
            groups: Arc::default(),
        }));
        let (stats, stats_rx) = watch::channel(engine.stats());
        let shared = Arc::new(Shared {
            me: cfg.id,
            cluster: cfg.config.cluster_name.clone(),
            max_stream_bytes: cfg.config.max_stream_bytes,
            stream_budget: tokio::sync::Semaphore::new(stream_budget(&cfg.config)),
            timings: Timings::new(&cfg.config),
            counters: Default::default(),
            snapshot: snapshot_rx.clone(),
            frames: frame_tx,
            conn_events: conn_tx,
            limits: Limits::of(&cfg),
        });
        tokio::spawn(crate::runtime::conn::accept_loop(
            endpoint.clone(),
            shared.clone(),
        ));
        let transport = Transport::new(endpoint, client, shared.clone());
        let inputs = Inputs {
            cmds,
            frames,
            conn_events,
        };
        let outputs = Outputs {
            events,
            snapshot,
            stats,
        };
        let driver = Driver::new(
            engine, advertise, transport, &shared, inputs, outputs, elections,
        );
        tracing::info!(id = %cfg.id, %local, %advertise, seeds = ?cfg.seeds, "node started");
        Node {
            id: cfg.id,
            local_addr: local,
            cmds: cmd_tx,
            first_events: std::sync::Mutex::new(Some(events_rx.resubscribe())),
            events: events_rx,
            snapshot: snapshot_rx,
            stats: stats_rx,
            shared,
            election_timing: cfg.config.election.timing.clone(),
            driver: tokio::spawn(driver.run()),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address peers know this node by.
    pub fn advertised_addr(&self) -> SocketAddr {
        self.snapshot.borrow().addr
    }

    /// The member list as this node sees it (itself included), with states and
    /// metadata. A snapshot: it never waits.
    pub fn members(&self) -> Vec<Member> {
        self.snapshot.borrow().members.clone()
    }

    /// One member's record in this node's view.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        self.snapshot
            .borrow()
            .members
            .iter()
            .find(|m| m.id == id)
            .cloned()
    }

    /// A subscription to events: membership, groups, gossiped leaders and this node's
    /// own leaderships (see [`EventStream`] for the overflow
    /// policy). The first call receives every event since the node started (joins that
    /// happen while `start` returns are not lost); later calls see events from then on.
    pub fn events(&self) -> EventStream {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        EventStream {
            rx: first.unwrap_or_else(|| self.events.resubscribe()),
            lagged: 0,
        }
    }

    /// Publishes new metadata (gossiped with a raised incarnation).
    pub async fn set_metadata(&self, meta: Vec<u8>) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::SetMetadata { meta, reply }).await?;
        rx.await
            .map_err(|_| NodeError::Stopped)?
            .map_err(Into::into)
    }

    /// Leaves gracefully: `Left` is announced (sent reliably to a few members and
    /// gossiped for a few rounds), then the node stops. Peers report it as left, not
    /// failed.
    pub async fn leave(self) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Leave { reply }).await?;
        rx.await.map_err(|_| NodeError::Stopped)?;
        let _ = self.driver.await;
        Ok(())
    }

    /// Stops at once, without announcing anything: peers will detect a failure.
    pub async fn shutdown(self) {
        let (reply, rx) = oneshot::channel();
        if self.command(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
        let _ = self.driver.await;
    }

    /// Publishes that this node leads `group` at `term`, though no voter granted it:
    /// a lying member, for tests only (`quorate node --unsafe-claim-leadership`). The
    /// claim is gossiped like a real leadership until this node leaves; the other
    /// nodes must treat it as the hint it is. Never call it in production.
    #[doc(hidden)]
    pub async fn claim_leadership_unsafe(
        &self,
        group: &str,
        term: crate::election::Term,
    ) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        let group = group.to_owned();
        self.command(Command::ClaimLeadershipUnsafe { group, term, reply })
            .await?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    pub(crate) async fn command(&self, cmd: Command) -> Result<(), NodeError> {
        self.cmds.send(cmd).map_err(|_| NodeError::Stopped)
    }

    /// A new subscription to events from now on (never the start-up one).
    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream {
            rx: self.events.resubscribe(),
            lagged: 0,
        }
    }

    // ---- groups (tooz) ----

    /// Creates `group` (tooz `create_group`). Every node learns it through gossip.
    pub async fn create_group(&self, group: &str) -> Result<(), NodeError> {
        self.group_op(group, GroupOp::Create).await
    }

    /// Deletes `group` (tooz `delete_group`); refused while it has members in this
    /// node's view.
    pub async fn delete_group(&self, group: &str) -> Result<(), NodeError> {
        self.group_op(group, GroupOp::Delete).await
    }

    /// Joins `group` with `capabilities` (tooz `join_group`). The group must exist.
    /// The membership lasts until [`Node::leave_group`], or until this node leaves or
    /// fails.
    pub async fn join_group(&self, group: &str, capabilities: Vec<u8>) -> Result<(), NodeError> {
        self.group_op(group, GroupOp::Join(capabilities)).await
    }

    /// Leaves `group` (tooz `leave_group`).
    pub async fn leave_group(&self, group: &str) -> Result<(), NodeError> {
        self.group_op(group, GroupOp::Leave).await
    }

    /// Replaces this node's capabilities in `group` (tooz `update_capabilities`).
    pub async fn update_capabilities(
        &self,
        group: &str,
        capabilities: Vec<u8>,
    ) -> Result<(), NodeError> {
        self.group_op(group, GroupOp::Update(capabilities)).await
    }

    async fn group_op(&self, group: &str, op: GroupOp) -> Result<(), NodeError> {
        let (reply, rx) = oneshot::channel();
        let group = group.to_owned();
        self.command(Command::Group { group, op, reply }).await?;
        rx.await
            .map_err(|_| NodeError::Stopped)?
            .map_err(Into::into)
    }

    /// Every existing group (tooz `get_groups`), in name order. A snapshot: it never
    /// waits, and it includes this node's own changes once their call returned.
    pub fn groups(&self) -> Vec<String> {
        self.snapshot
            .borrow()
            .groups
            .groups
            .keys()
            .cloned()
            .collect()
    }

    /// The members of `group` with their capabilities, by id (tooz `get_members`). A
    /// snapshot: it never waits. [`GroupError::NotCreated`] when the group does not
    /// exist in this node's view.
    pub fn group_members(&self, group: &str) -> Result<Vec<(NodeId, Vec<u8>)>, NodeError> {
        self.snapshot
            .borrow()
            .groups
            .groups
            .get(group)
            .cloned()
            .ok_or_else(|| GroupError::NotCreated(group.to_owned()).into())
    }

    /// One member's capabilities in `group` (tooz `get_member_capabilities`). A
    /// snapshot: [`GroupError::NotCreated`] or [`GroupError::NotJoined`] when the group
    /// or the member is not in this node's view.
    pub fn member_capabilities(&self, group: &str, member: NodeId) -> Result<Vec<u8>, NodeError> {
        self.group_members(group)?
            .into_iter()
            .find(|(id, _)| *id == member)
            .map(|(_, caps)| caps)
            .ok_or_else(|| GroupError::NotJoined(group.to_owned()).into())
    }

    /// The protocol's counters (frames, drops, impersonations, ...).
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// The transport's counters (connections, handshakes, stream frames, ...).
    pub fn transport_stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }
}

/// The wall clock in milliseconds since the Unix epoch (0 if it reads before it).
#[allow(clippy::disallowed_methods)] // the runtime reads the wall clock for term floors
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Node>();
        send_sync::<NodeConfig>();
        send_sync::<EventStream>();
        send_sync::<NodeError>();
    }

    #[test]
    fn the_stream_budget_holds_two_frames() {
        let cfg = Config::lan();
        assert_eq!(stream_budget(&cfg), cfg.max_stream_bytes * 2);
        let huge = Config {
            max_stream_bytes: usize::MAX / 2,
            ..Config::lan()
        };
        assert_eq!(stream_budget(&huge), u32::MAX as usize);
    }
}
