//! quorate: embedded membership and leader election for edge clusters.
//!
//! A set of machines with no coordination service of their own learns who is in the
//! cluster, notices who failed (and tells a failure from a graceful departure), and
//! shares small per-node metadata. Nodes gossip with SWIM and the Lifeguard extensions
//! over QUIC; every connection is mutual TLS under one cluster CA, and a node's id is
//! bound to its certificate.
//!
//! # Tutorial
//!
//! **Identities.** A cluster has one CA ([`ClusterCa`]); each node gets a certificate
//! that binds its [`NodeId`] ([`ClusterCa::issue_node`]). In production, make them once
//! (the `quorate` CLI, or [`ClusterCa::save`] / [`Identity::save`]) and load the PEM
//! files on each machine with [`Identity::load`]. A node presenting a certificate of
//! another CA is refused at the handshake; a frame claiming another sender than the
//! certificate's is dropped.
//!
//! **Starting.** [`NodeConfig::new`] takes the id, the UDP address to listen on and the
//! identity; set `seeds` to the address of any existing member to join (the first node
//! has none), `config` to a [`Config`] preset ([`Config::lan`] by default,
//! [`Config::wan`], [`Config::local`]) and `metadata` to what the node publishes.
//! [`Node::start`] binds the socket and joins in the background.
//!
//! **Watching.** [`Node::members`] is the current member list (this node included)
//! with states and metadata; [`Node::events`] subscribes to [`MemberEvent`]s. Each
//! subscriber has a bounded buffer: one that falls behind loses its oldest events and
//! is told how many ([`EventStream::lagged`]); the protocol never waits for it.
//!
//! **Changing and leaving.** [`Node::set_metadata`] publishes new metadata;
//! [`Node::leave`] announces the departure (peers see [`MemberEvent::Left`]) and stops;
//! [`Node::shutdown`], or dropping the node, stops without a word (peers detect
//! [`MemberEvent::Failed`]).
//!
//! ```
//! use quorate::{ClusterCa, Config, Event, MemberEvent, Node, NodeConfig, NodeId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ca = ClusterCa::generate("demo")?;
//! // Start from a preset and change what differs (configs are `#[non_exhaustive]`:
//! // presets and field assignment, not struct literals).
//! let mut config = Config::local();
//! config.cluster_name = "demo".into();
//!
//! // The first node starts the cluster (no seeds); port 0 picks a free port.
//! let mut cfg = NodeConfig::new(NodeId(1), "127.0.0.1:0".parse()?, ca.issue_node(NodeId(1))?);
//! cfg.config = config.clone();
//! let first = Node::start(cfg).await?;
//! let mut events = first.events();
//!
//! // The second joins through the first, publishing metadata.
//! let mut cfg = NodeConfig::new(NodeId(2), "127.0.0.1:0".parse()?, ca.issue_node(NodeId(2))?);
//! cfg.config = config;
//! cfg.seeds = vec![first.local_addr()];
//! cfg.metadata = b"role=worker".to_vec();
//! let second = Node::start(cfg).await?;
//!
//! while let Some(event) = events.recv().await {
//!     if let Event::Member(MemberEvent::Joined(m)) = event {
//!         println!("node {} joined from {} with {:?}", m.id, m.addr, m.meta);
//!         break;
//!     }
//! }
//! for m in first.members() {
//!     println!("{}: {:?} (incarnation {})", m.id, m.state, m.incarnation);
//! }
//!
//! // Once node 2 has heard back from the cluster too (its view is a snapshot)...
//! while second.members().len() < 2 {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! // ...it departs gracefully: node 1 reports it as left, not failed.
//! second.leave().await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Member(MemberEvent::Left { id, .. }) = event {
//!         assert_eq!(id, NodeId(2));
//!         break;
//!     }
//! }
//! first.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! **Groups.** As in tooz, any node creates named groups ([`Node::create_group`]) and
//! joins them with capabilities ([`Node::join_group`], [`Node::update_capabilities`],
//! [`Node::leave_group`]); every node knows every group ([`Node::groups`],
//! [`Node::group_members`], snapshots that never wait) and sees [`GroupEvent`]s on its
//! [`Node::events`]. A member that fails or leaves the cluster leaves its groups. Refused
//! operations come back as [`GroupOpError::Refused`] with tooz's cases ([`GroupError`]).
//!
//! **Elections.** Name the voters in the cluster config ([`Config::with_voters`]; the
//! same set on every node, a majority is a quorum). Any node runs for a group's
//! leadership with [`Node::campaign`]; [`Campaign::leadership`] resolves once this node
//! leads, with a [`Leadership`] carrying the fencing token ([`Leadership::term`]) and
//! [`Leadership::lost`], which completes before any other node can lead. Resign (or drop
//! the campaign) to hand over at once; a crashed leader is replaced about a lease later.
//! Anyone asks who leads: [`Node::leader`] (gossip), [`Node::confirmed_leader`] (a
//! quorum of voters), [`Node::leader_changes`] (a stream). [`Node::run`] runs a task only
//! while leading, like kazoo's `Election.run`, and [`Node::lock`] gives locks on the same
//! leases. Give voters a [`NodeConfig::data_dir`] so a restart never reuses a term.
//!
//! ```
//! use quorate::{ClusterCa, Config, Node, NodeConfig, NodeId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ca = ClusterCa::generate("demo")?;
//! // A one-node cluster that is its own voter (a real one names three or five).
//! let config = Config::local().with_voters(vec![NodeId(1)]);
//! let mut cfg = NodeConfig::new(NodeId(1), "127.0.0.1:0".parse()?, ca.issue_node(NodeId(1))?);
//! cfg.config = config;
//! let node = Node::start(cfg).await?;
//!
//! node.create_group("workers").await?;
//! node.join_group("workers", b"gpu=1".to_vec()).await?;
//! assert_eq!(node.group_members("workers")?, vec![(NodeId(1), b"gpu=1".to_vec())]);
//!
//! // A started voter grants nothing for one lease: the election takes that long.
//! let mut campaign = node.campaign("scheduler").await?;
//! let leadership = campaign.leadership().await?;
//! println!("leading with fencing token {}", leadership.term());
//! tokio::select! {
//!     () = leadership.lost() => println!("lost the lease: stop acting as leader"),
//!     () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
//! }
//! campaign.resign().await;
//!
//! let guard = node.lock("disk").acquire(std::time::Duration::from_secs(5)).await?;
//! println!("lock held, fencing token {}", guard.fencing_token());
//! guard.release().await;
//! node.leave().await?;
//! # Ok(())
//! # }
//! ```
//!
//! An admin tool asks any node for its view with [`query_status`], using a client
//! identity ([`ClusterCa::issue_client`]) that can never become a member. Tests inject
//! loss, delay and partitions under the real QUIC stack with
//! `runtime::faults::Faults` ([`NodeConfig::faults`], with the `internals` feature).
//!
//! # Layers
//!
//! The protocol is a sans-IO state machine ([`Engine`], which routes between the
//! membership, groups and election layers, with the wire codec and [`config`] below
//! them): time and randomness come in as arguments, frames to send and events come
//! out. The `runtime` feature (on by default) adds the I/O (identities, TLS, QUIC
//! transport, the tokio driver and its wiring) and, above it, [`node`], [`leader`] and
//! [`lock`] (the async API, a thin layer over the runtime's handle). Every async
//! operation has its own error type saying what state a failure left behind
//! ([`StartError`], [`GroupOpError`], [`StartCampaignError`], [`LockError`], ...).
//! Without it (`default-features = false`) the crate is the core alone, which is what
//! the deterministic simulator drives. The inner layers (`swim`, `groups`, `election`,
//! `wire`, `engine`, `runtime`) are public modules only with the `internals` feature,
//! which the simulator, the fuzzers and the command-line tool use; they carry no
//! stability promise. ARCHITECTURE.md, at the root of the repository, says what each
//! layer may import and follows one datagram from socket to event.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Declares the protocol's inner layers: public with the `internals` feature (the
/// simulator, the fuzzers and wire-compatibility tests drive them; no stability
/// promise), crate-private otherwise, so that a user's documentation and imports are
/// the re-exports below.
macro_rules! internal_mods {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code, unused_imports)]
        mod $name;
    )*};
}

pub mod config;
mod stats;
internal_mods! {
    election;
    engine;
    groups;
    swim;
    wire;
    #[cfg(feature = "runtime")]
    runtime;
}

#[cfg(feature = "runtime")]
pub mod leader;
#[cfg(feature = "runtime")]
pub mod lock;
#[cfg(feature = "runtime")]
pub mod node;

#[cfg(feature = "runtime")]
pub use runtime::identity;

pub use config::{Config, ConfigError, ElectionConfig};
pub use election::{CampaignError, Confirmed, ElectionEvent, QueryError, StepDown, Term};
pub use engine::{term_floor_at, Engine, Event};
pub use groups::{GroupError, GroupEvent, LeaderChange};
pub use stats::{Gauges, Metric, MetricKind, Stats};
pub use swim::{Member, MemberEvent, MetadataError, Transmit};
pub use wire::{Incarnation, NodeId, State, MAX_GROUP_NAME};

#[cfg(feature = "runtime")]
pub use identity::{ClusterCa, Identity, IdentityError};
#[cfg(feature = "runtime")]
pub use leader::{
    Campaign, LeaderChanges, LeaderQueryError, Leadership, LeadershipError, ResignError, RunError,
    StartCampaignError,
};
#[cfg(feature = "runtime")]
pub use lock::{Lock, LockError, LockGuard, LOCK_PREFIX};
#[cfg(feature = "runtime")]
pub use node::{
    query_confirmed_leader, query_status, send_revocation, EventStream, GroupMember, GroupOpError,
    GroupStatus, JoinError, LeaveError, MemberStatus, MetricsError, Node, NodeConfig, ReloadError,
    SetMetadataError, StartError, StatusError, StatusReport, SyncError,
};
#[cfg(feature = "runtime")]
pub use runtime::revocation::{Revocation, RevocationApplied, RevocationError};
#[cfg(feature = "runtime")]
pub use runtime::TransportStats;
#[cfg(feature = "runtime")]
pub use runtime::{
    campaign_through, DelegateError, DelegatedCampaign, DelegatedLeadership, DelegatedTiming,
};
#[cfg(feature = "runtime")]
pub use runtime::{watch_events, EventWatch, Watched, WatchedEvent};
