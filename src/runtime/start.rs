//! Starting a node: what it takes ([`NodeConfig`]), how it can fail ([`StartError`]),
//! and the wiring: the socket and QUIC endpoint, the engine restored from the data
//! directory, the channels between the driver and the tasks around it, and the spawned
//! driver and accept loop. What comes out is a [`RuntimeHandle`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quinn::{AsyncUdpSocket, Endpoint, Runtime, TokioRuntime};
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, mpsc, watch};

use super::validity::OwnExpiry;
use super::driver::{Driver, Inputs, Outputs};
use super::elect::Elections;
use super::faults::{Faults, FaultySocket};
use super::handle::RuntimeHandle;
use super::identity::{Identity, IdentityError};
use super::shared::{Limits, Shared, Snapshot, Timings};
use super::terms::TermStore;
use super::transport::{client_config, endpoint_config, server_config, Transport};
use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::wire::NodeId;

/// Capacity of the frame channel from the connection tasks to the driver.
const FRAME_CHANNEL: usize = 1024;
/// Capacity of the connection-event channel.
const CONN_CHANNEL: usize = 256;

/// Why a node could not start. In every case nothing was started and nothing was sent:
/// no task runs, and the socket (bound by the node, or handed over by the caller) is
/// closed again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
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
    /// corrupt: `reason` says where); nothing was started, though the directory may
    /// have been created.
    #[error("data directory: {path}: {reason}")]
    DataDir {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
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
    /// Events buffered per event subscriber before the oldest are dropped. Default 1024.
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
    /// Where to serve Prometheus metrics (`GET /metrics`, plain HTTP over TCP), or
    /// `None` (the default) for no endpoint. Every counter and gauge of
    /// `Node::metrics`, each group's gossiped leader and term and whether this node
    /// leads it, and the voters alive in its view. Bind it to an address only the
    /// monitoring network reaches: it has no authentication. A port that cannot be
    /// bound fails [`start`](crate::Node::start) with `StartError::Bind`.
    pub metrics: Option<SocketAddr>,
    /// Most metrics scrapes served at once (each bounded to 10 s); at least 1.
    /// Default 4. Others wait in the listen backlog.
    pub max_metrics_scrapes: usize,
    /// How long a group write (`Node::create_group`, `join_group`, ...) waits, when the
    /// cluster has voters, for a quorum of them to hold the change, so that a read on
    /// any node after its own `Node::sync` sees it. Default 5 s. A write whose quorum
    /// does not answer in time is still made and spreads by gossip; the call says so
    /// (`GroupOpError::Unconfirmed`). Shorter fails sooner when voters are away.
    pub write_timeout: Duration,
    /// The application watchdog: when set, the application must call
    /// `Node::heartbeat` at least this often, or the node leaves every group it
    /// joined and resigns every campaign, leadership and lock (it stays a member).
    /// SWIM alone proves the node's runtime alive, not the application: this catches
    /// a program whose own threads hang (tooz's session timeout). Default none. A
    /// shorter timeout catches a hang sooner and costs more heartbeat calls.
    pub heartbeat_timeout: Option<Duration>,
    /// Seeds by name (`host:port`), besides [`NodeConfig::seeds`]: resolved when the
    /// node starts, and again every `Config::join_retry_interval` while it has not
    /// joined or has no live member left, so a seed host that moved (or whose name did
    /// not resolve yet) is found without a restart. A name that does not resolve is
    /// left out until it does. Default none.
    pub seed_names: Vec<String>,
    /// How long ahead of its own certificate's expiry the node starts warning (a
    /// `tracing` warning at start, on reload and hourly; the metric
    /// `certificate_expiry_timestamp_seconds` is there all along). Default 30 days:
    /// time to renew by hand; automated renewals can use less.
    pub cert_expiry_warning: Duration,
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
            metrics: None,
            max_metrics_scrapes: 4,
            write_timeout: Duration::from_secs(5),
            heartbeat_timeout: None,
            cert_expiry_warning: Duration::from_secs(30 * 24 * 3600),
            seed_names: Vec::new(),
        }
    }
}

/// Bytes of stream frames read at once: two of the largest frames (so one large frame
/// never waits for itself), within what a semaphore counts.
fn stream_budget(cfg: &Config) -> usize {
    cfg.max_stream_bytes
        .saturating_mul(2)
        .min(u32::MAX as usize)
}

/// Binds `cfg.listen`, starts the node and begins joining through `cfg.seeds`
/// (retried in the background until a seed answers). Must run inside a tokio runtime.
pub(crate) async fn start(cfg: NodeConfig) -> Result<RuntimeHandle, StartError> {
    let bind_err = |source| StartError::Bind {
        addr: cfg.listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(cfg.listen).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime);
    let socket = runtime.wrap_udp_socket(socket).map_err(bind_err)?;
    start_with_socket(cfg, socket, runtime).await
}

/// Starts the node on a socket and a quinn runtime of the caller's; `cfg.listen` is
/// ignored, `cfg.faults` still applies. The driver runs on the current tokio runtime.
pub(crate) async fn start_with_socket(
    cfg: NodeConfig,
    socket: Arc<dyn AsyncUdpSocket>,
    runtime: Arc<dyn Runtime>,
) -> Result<RuntimeHandle, StartError> {
    if cfg.identity.node_id() != Some(cfg.id) {
        return Err(StartError::IdentityMismatch {
            id: cfg.id,
            cert: cfg.identity.node_id(),
        });
    }
    let mut cfg = cfg;
    cfg.identity = with_kept_revocation(&cfg);
    let local = socket.local_addr().map_err(|source| StartError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let bind_err = |source| StartError::Bind {
        addr: local,
        source,
    };
    let socket: Arc<dyn AsyncUdpSocket> = match &cfg.faults {
        Some(f) => Arc::new(FaultySocket::new(socket, f.clone()).map_err(bind_err)?),
        None => socket,
    };
    let wire = Arc::new(super::wire::WireCount::default());
    let socket: Arc<dyn AsyncUdpSocket> =
        Arc::new(super::wire::CountingSocket::new(socket, wire.clone()));
    let advertise = cfg.advertise.unwrap_or(local);
    if advertise.ip().is_unspecified() || advertise.port() == 0 {
        return Err(StartError::Advertise(advertise));
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
        endpoint_config(),
        Some(server),
        socket,
        runtime,
    )
    .map_err(bind_err)?;
    let metrics = bind_metrics(cfg.metrics)?;
    let terms = restore_terms(&cfg, &mut engine)?;
    let named = super::resolve::resolve(&cfg.seed_names).await;
    engine.join(now, &[cfg.seeds.as_slice(), &named].concat());
    let elections = Elections::new(terms);
    let parts = Parts {
        engine,
        elections,
        endpoint,
        client,
        local,
        advertise,
        metrics,
        named,
        wire,
    };
    Ok(spawn(cfg, parts))
}

/// The identity with the revocation list kept in the data directory, if there is a
/// valid one (a list that does not check out is ignored, with a warning).
fn with_kept_revocation(cfg: &NodeConfig) -> Identity {
    let kept = cfg.data_dir.as_deref().and_then(super::revoke::kept);
    let Some(bytes) = kept else {
        return cfg.identity.clone();
    };
    match super::revocation::Revocation::parse(&bytes, &cfg.identity) {
        Ok(rev) => {
            if rev.revokes(&cfg.identity) {
                tracing::warn!("this node's own certificate is revoked: members refuse it");
            }
            cfg.identity.with_revocation(Some(rev))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the kept revocation list is ignored");
            cfg.identity.clone()
        }
    }
}

/// Binds the metrics endpoint's listener, if one is asked for.
fn bind_metrics(addr: Option<SocketAddr>) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let bind_err = |source| StartError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    tokio::net::TcpListener::from_std(listener)
        .map(Some)
        .map_err(bind_err)
}

/// Reads the terms this node granted before, if it has a data directory.
fn restore_terms(cfg: &NodeConfig, engine: &mut Engine) -> Result<Option<TermStore>, StartError> {
    let Some(dir) = &cfg.data_dir else {
        return Ok(None);
    };
    let store = TermStore::open(dir, cfg.config.election.max_groups)
        .map_err(|(path, reason)| StartError::DataDir { path, reason })?;
    for (group, term) in store.terms() {
        engine.restore_term(group, *term);
    }
    Ok(Some(store))
}

/// What start-up made, for [`spawn`] to wire together.
struct Parts {
    engine: Engine,
    elections: Elections,
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    local: SocketAddr,
    advertise: SocketAddr,
    metrics: Option<tokio::net::TcpListener>,
    /// What `NodeConfig::seed_names` resolved to at start.
    named: Vec<SocketAddr>,
    /// What the node's socket sent, headers included.
    wire: Arc<super::wire::WireCount>,
}

/// Creates the channels, spawns the accept loop and the driver, and returns the handle
/// on them.
fn spawn(cfg: NodeConfig, parts: Parts) -> RuntimeHandle {
    let Parts {
        engine,
        elections,
        endpoint,
        client,
        local,
        advertise,
        metrics,
        named: parts_named,
        wire,
    } = parts;
    // Unbounded so that a campaign handle's drop can resign without waiting, in order
    // with the commands before it; every other command awaits its answer, so the queue
    // holds at most one command per caller.
    let (cmd_tx, cmds) = mpsc::unbounded_channel();
    let (frame_tx, frames) = mpsc::channel(FRAME_CHANNEL);
    let (conn_tx, conn_events) = mpsc::channel(CONN_CHANNEL);
    let (events, events_rx) = broadcast::channel(cfg.event_capacity.max(1));
    let (snapshot, snapshot_rx) = watch::channel(Arc::new(Snapshot {
        addr: advertise,
        incarnation: 0,
        members: engine.members().collect(),
        groups: Arc::default(),
        joined: engine.swim().is_joined(),
    }));
    let (stats, stats_rx) = watch::channel(engine.stats());
    let shared = Arc::new(Shared {
        me: cfg.id,
        cluster: cfg.config.cluster_name.clone(),
        voters: cfg.config.election.voters.clone(),
        commands: cmd_tx.downgrade(),
        max_stream_bytes: cfg.config.max_stream_bytes,
        stream_budget: tokio::sync::Semaphore::new(stream_budget(&cfg.config)),
        timings: Timings::new(&cfg.config),
        counters: Default::default(),
        snapshot: snapshot_rx.clone(),
        events: events_rx.resubscribe(),
        frames: frame_tx,
        conn_events: conn_tx,
        limits: Limits::of(&cfg),
        watchdog: cfg
            .heartbeat_timeout
            .map(|t| Arc::new(super::watchdog::Watchdog::new(t))),
        own_expiry: OwnExpiry::new(cfg.identity.not_after(), cfg.cert_expiry_warning),
        refusals: Default::default(),
        identity: std::sync::Mutex::new(cfg.identity.clone()),
        revoking: tokio::sync::Mutex::new(()),
        tls_params: (cfg.config.clone(), cfg.max_handshakes.max(1)),
        data_dir: cfg.data_dir.clone(),
    });
    shared
        .own_expiry
        .check(std::time::SystemTime::now(), std::time::Instant::now());
    tokio::spawn(super::conn::accept_loop(endpoint.clone(), shared.clone()));
    let metrics_addr = serve_metrics(metrics, &cmd_tx, &shared, cfg.max_metrics_scrapes);
    let transport = Transport::new(endpoint, client, shared.clone(), wire);
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
    let seeds = [cfg.seeds.as_slice(), &parts_named].concat();
    if !cfg.seed_names.is_empty() {
        let names = cfg.seed_names.clone();
        tokio::spawn(super::resolve::follow(
            move || {
                let names = names.clone();
                async move { super::resolve::resolve(&names).await }
            },
            cfg.seeds.clone(),
            parts_named,
            cfg.config.join_retry_interval,
            cmd_tx.downgrade(),
            snapshot_rx.clone(),
        ));
    }
    tracing::info!(id = %cfg.id, %local, %advertise, ?seeds, "node started");
    RuntimeHandle {
        id: cfg.id,
        local_addr: local,
        metrics_addr,
        cmds: cmd_tx.into(),
        first_events: std::sync::Mutex::new(Some(events_rx.resubscribe())),
        events: events_rx,
        snapshot: snapshot_rx,
        stats: stats_rx,
        shared,
        election_timing: cfg.config.election.timing.clone(),
        seeds,
        write_timeout: cfg.write_timeout,
        driver: tokio::spawn(driver.run()),
    }
}

/// Spawns the metrics endpoint on `listener`, if there is one, and returns where it
/// listens.
fn serve_metrics(
    listener: Option<tokio::net::TcpListener>,
    cmds: &mpsc::UnboundedSender<super::driver::Command>,
    shared: &Arc<Shared>,
    scrapes: usize,
) -> Option<SocketAddr> {
    let listener = listener?;
    let addr = listener.local_addr().ok();
    let serve = super::metrics::serve(listener, cmds.downgrade(), shared.clone(), scrapes);
    tokio::spawn(serve);
    addr
}

/// The wall clock in milliseconds since the Unix epoch (0 if it reads before it).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<NodeConfig>();
        send_sync::<StartError>();
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
