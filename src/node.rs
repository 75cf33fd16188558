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
//!
//! The wiring (socket, QUIC endpoint, channels, the driver task) is the runtime's
//! (the crate's `runtime` module); this module is a thin layer over the handle it returns.
//!
//! Each operation that can fail has its own error, whose variants say what state was
//! left behind: [`StartError`] ([`Node::start`]), [`SetMetadataError`],
//! [`GroupOpError`] (the tooz group operations), [`LeaveError`], [`MetricsError`]
//! ([`Node::metrics`]) and [`StatusError`] ([`query_status`]); the snapshots
//! ([`Node::group_members`], [`Node::member_capabilities`]) return the protocol's own
//! [`GroupError`]. Elections and locks have theirs in [`crate::leader`] and
//! [`crate::lock`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use quinn::{AsyncUdpSocket, Runtime};
use tokio::sync::broadcast;

use crate::engine::Event;
use crate::groups::GroupError;
use crate::runtime::handle::{GroupOp, RuntimeHandle, Stopped};
use crate::runtime::identity::Identity;
use crate::runtime::TransportStats;
use crate::stats::Metric;
use crate::swim::{Member, MetadataError, Stats};
use crate::wire::NodeId;

use crate::runtime::revocation::{RevocationApplied, RevocationError};
pub use crate::runtime::{
    query_confirmed_leader, query_status, send_revocation, GroupMember, GroupStatus, MemberStatus,
    NodeConfig, StartError, StatusError, StatusReport,
};

/// Why [`Node::set_metadata`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetMetadataError {
    /// The metadata was refused (too large); the node keeps publishing its previous
    /// metadata, nothing was gossiped.
    #[error(transparent)]
    Refused(#[from] MetadataError),
    /// The node has stopped (shut down, left, or its task ended); nothing was done.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a group operation ([`Node::create_group`], [`Node::delete_group`],
/// [`Node::join_group`], [`Node::leave_group`], [`Node::update_capabilities`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupOpError {
    /// The operation was refused (tooz's error cases); no group changed, nothing was
    /// gossiped, and the node keeps running.
    #[error(transparent)]
    Refused(#[from] GroupError),
    /// The change was made on this node and spreads by gossip, but a quorum of voters
    /// did not confirm holding it within [`NodeConfig::write_timeout`]: a read on
    /// another node may not see it yet, even after that node's [`Node::sync`].
    #[error("the change was made but not confirmed by a quorum of voters: {0}")]
    Unconfirmed(SyncError),
    /// The node has stopped (shut down, left, or its task ended); nothing was done.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Node::sync`] failed. Nothing changed on this node; what it learned from the
/// voters that did answer is kept.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A quorum of voters did not answer within the wait (voters down or cut off).
    #[error("a quorum of voters did not answer within {waited:?}")]
    NoQuorum {
        /// How long the call waited.
        waited: Duration,
    },
    /// The cluster config names no voters: there is no quorum to synchronise with.
    #[error("the cluster config names no voters")]
    Disabled,
    /// `Config::max_barriers` synchronisations are waiting already; retry later.
    #[error("too many synchronisations pending")]
    Busy,
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Node::wait_joined`] failed. The node keeps running and keeps retrying its
/// seeds in the background.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// No seed answered within the wait.
    #[error(
        "no seed answered within {waited:?} (seeds: {}){}",
        addr_list(seeds),
        refusal_list(refused)
    )]
    Timeout {
        /// The seeds tried.
        seeds: Vec<SocketAddr>,
        /// How long the call waited.
        waited: Duration,
        /// Seeds whose last handshake failed over a certificate, and why (this node's
        /// certificate expired, revoked or of another cluster, or theirs).
        refused: Vec<(SocketAddr, String)>,
    },
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

fn refusal_list(refused: &[(SocketAddr, String)]) -> String {
    refused
        .iter()
        .map(|(a, why)| format!("; {a}: {why}"))
        .collect()
}

fn addr_list(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    list.join(", ")
}

/// Why [`Node::metrics`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The node has stopped (shut down, left, or its task ended): its engine is gone.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Node::reload_identity`] failed. The node kept its previous identity in every
/// case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new identity is not this node's (its certificate binds another node id, or
    /// none).
    #[error("the identity binds {cert:?}, not node {id}")]
    Mismatch {
        /// This node's id.
        id: NodeId,
        /// What the certificate binds.
        cert: Option<NodeId>,
    },
    /// The identity cannot be used to build TLS.
    #[error(transparent)]
    Identity(#[from] crate::runtime::identity::IdentityError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Node::leave`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// The node had already stopped (its task ended): no departure was announced, so
    /// peers detect a failure.
    #[error("the node has stopped")]
    Stopped,
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
    /// Where the node counts events lost by all its subscribers (`events_lagged`).
    shared: std::sync::Arc<crate::runtime::shared::Shared>,
}

impl EventStream {
    fn new(
        rx: broadcast::Receiver<Event>,
        shared: std::sync::Arc<crate::runtime::shared::Shared>,
    ) -> Self {
        EventStream {
            rx,
            lagged: 0,
            shared,
        }
    }

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
        crate::runtime::shared::add(&self.shared.counters.events_lagged, n);
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
    pub(crate) rt: RuntimeHandle,
    /// Each lock's local mutex, shared by its handles on this node (see
    /// [`crate::Lock`]); entries whose handles are all gone are swept as it grows.
    locks: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl Node {
    /// Binds `cfg.listen`, starts the node and begins joining through `cfg.seeds`
    /// (retried in the background until a seed answers). Must run inside a tokio
    /// runtime.
    pub async fn start(cfg: NodeConfig) -> Result<Node, StartError> {
        Ok(Node::new(crate::runtime::start(cfg).await?))
    }

    /// Starts the node on a socket and a quinn runtime of the caller's (a simulated
    /// network, for instance); `cfg.listen` is ignored, `cfg.faults` still applies. The
    /// driver itself runs on the current tokio runtime.
    pub async fn start_with_socket(
        cfg: NodeConfig,
        socket: Arc<dyn AsyncUdpSocket>,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Node, StartError> {
        Ok(Node::new(
            crate::runtime::start_with_socket(cfg, socket, runtime).await?,
        ))
    }

    fn new(rt: RuntimeHandle) -> Self {
        Node {
            rt,
            locks: Default::default(),
        }
    }

    /// The mutex that the handles of lock `name` on this node share.
    pub(crate) fn local_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = locks.get(name).and_then(Weak::upgrade) {
            return m;
        }
        if locks.len() >= 64 && locks.len().is_power_of_two() {
            locks.retain(|_, m| m.strong_count() > 0);
        }
        let m = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(name.to_owned(), Arc::downgrade(&m));
        m
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.rt.id()
    }

    /// Waits until a seed has answered this node's join (at once for a node started
    /// without seeds), at most `timeout`: the "is it connected?" check that
    /// [`Node::start`] does not make (it returns as soon as the socket is bound).
    /// Errors: [`JoinError::Timeout`] naming the seeds; the node keeps retrying them.
    pub async fn wait_joined(&self, timeout: Duration) -> Result<(), JoinError> {
        let mut snapshot = self.rt.snapshot().clone();
        let joined = async move { snapshot.wait_for(|s| s.joined).await.map(|_| ()) };
        match tokio::time::timeout(timeout, joined).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(JoinError::Stopped),
            Err(_) => Err(JoinError::Timeout {
                seeds: self.rt.seeds().to_vec(),
                waited: timeout,
                refused: self.rt.refusals(),
            }),
        }
    }

    /// Tells the application watchdog that the application is alive (see
    /// [`NodeConfig::heartbeat_timeout`]; without one this does nothing and returns
    /// `true`). Returns `false` when the watchdog had expired since the last call: the
    /// node then left every group and resigned every campaign, leadership and lock;
    /// join and campaign again to take part. Never waits.
    pub fn heartbeat(&self) -> bool {
        self.rt.watchdog().map_or(true, |w| w.beat())
    }

    /// Synchronises with a quorum of voters (read-your-writes across nodes): once it
    /// returns, this node's snapshots ([`Node::groups`], [`Node::group_members`],
    /// [`Node::members`], ...) hold every group write that any node completed before
    /// this call began. It exchanges this node's whole member table with every voter
    /// (one round trip on a stream). Errors: [`SyncError::NoQuorum`] after `timeout`,
    /// [`SyncError::Disabled`] without voters.
    pub async fn sync(&self, timeout: Duration) -> Result<(), SyncError> {
        let ask = self.rt.commands().barrier();
        match tokio::time::timeout(timeout, ask).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(crate::engine::BarrierError::Busy))) => Err(SyncError::Busy),
            Ok(Ok(Err(_))) => Err(SyncError::Disabled),
            Ok(Err(Stopped)) => Err(SyncError::Stopped),
            Err(_) => Err(SyncError::NoQuorum { waited: timeout }),
        }
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.rt.local_addr()
    }

    /// Presents `identity` (a renewed certificate and key of this node, under the same
    /// cluster CA) in every handshake from now on, both as server and as client,
    /// without leaving the cluster: connections already open keep the identity they
    /// were made with until they close (idle ones close after
    /// `Config::connection_idle`). `quorate node` calls it on SIGHUP.
    pub async fn reload_identity(&self, identity: Identity) -> Result<(), ReloadError> {
        if identity.node_id() != Some(self.rt.id()) {
            return Err(ReloadError::Mismatch {
                id: self.rt.id(),
                cert: identity.node_id(),
            });
        }
        match self.rt.reload_identity(&identity).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(Stopped) => Err(ReloadError::Stopped),
        }
    }

    /// Puts a revocation list (PEM or DER, made by [`ClusterCa::revoke`] or `quorate
    /// cert revoke`) in force and sends it to every live member: from then on no member
    /// completes a handshake with a revoked certificate, connections with one are
    /// closed, and the revoked node is declared failed within the detection bound. A
    /// node that was away gets the list on its next connection with a member that has
    /// it; with a data directory the node keeps the list across restarts.
    ///
    /// Returns whether the list was newer than the one held, and the number held now
    /// (an older or equal list changes nothing). Errors:
    /// [`RevocationError::NotSignedByCa`] for a list the cluster CA did not sign (a
    /// forgery: nothing changes, and `revocations_refused` counts it).
    ///
    /// [`ClusterCa::revoke`]: crate::ClusterCa::revoke
    pub async fn apply_revocation(
        &self,
        list: &[u8],
    ) -> Result<RevocationApplied, RevocationError> {
        self.rt.apply_revocation(list).await
    }

    /// The address the Prometheus endpoint ([`NodeConfig::metrics`]) is bound to, or
    /// `None` without one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.rt.metrics_addr()
    }

    /// The address peers know this node by.
    pub fn advertised_addr(&self) -> SocketAddr {
        self.rt.snapshot().borrow().addr
    }

    /// The member list as this node sees it (itself included), with states and
    /// metadata. A snapshot: it never waits.
    pub fn members(&self) -> Vec<Member> {
        self.rt.snapshot().borrow().members.clone()
    }

    /// One member's record in this node's view.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        self.rt
            .snapshot()
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
        EventStream::new(self.rt.first_events(), self.rt.shared())
    }

    /// Publishes new metadata (gossiped with a raised incarnation).
    pub async fn set_metadata(&self, meta: Vec<u8>) -> Result<(), SetMetadataError> {
        match self.rt.commands().set_metadata(meta).await {
            Ok(result) => Ok(result?),
            Err(Stopped) => Err(SetMetadataError::Stopped),
        }
    }

    /// Leaves gracefully: `Left` is announced (sent reliably to a few members and
    /// gossiped for a few rounds), then the node stops. Peers report it as left, not
    /// failed.
    pub async fn leave(self) -> Result<(), LeaveError> {
        self.rt.leave().await.map_err(|Stopped| LeaveError::Stopped)
    }

    /// Stops at once, without announcing anything: peers will detect a failure.
    pub async fn shutdown(self) {
        self.rt.shutdown().await;
    }

    /// Publishes that this node leads `group` at `term`, though no voter granted it:
    /// a lying member, for tests only (`quorate node --unsafe-claim-leadership`). The
    /// claim is gossiped like a real leadership until this node leaves; the other
    /// nodes must treat it as the hint it is. Never call it in production. Fails only
    /// with [`GroupOpError::Stopped`].
    #[doc(hidden)]
    pub async fn claim_leadership_unsafe(
        &self,
        group: &str,
        term: crate::election::Term,
    ) -> Result<(), GroupOpError> {
        let cmds = self.rt.commands();
        cmds.claim_leadership_unsafe(group, term)
            .await
            .map_err(|Stopped| GroupOpError::Stopped)
    }

    /// A new subscription to events from now on (never the start-up one).
    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream::new(self.rt.subscribe(), self.rt.shared())
    }

    // ---- groups (tooz) ----

    /// Creates `group` (tooz `create_group`). Every node learns it through gossip.
    ///
    /// Every group write returns once a quorum of voters holds the change (when the
    /// cluster has voters): a read on another node after its [`Node::sync`] sees it.
    /// [`GroupOpError::Unconfirmed`] when they do not answer within
    /// [`NodeConfig::write_timeout`] (the change is made all the same).
    pub async fn create_group(&self, group: &str) -> Result<(), GroupOpError> {
        self.group_op(group, GroupOp::Create).await
    }

    /// Deletes `group` (tooz `delete_group`); refused while it has members in this
    /// node's view.
    pub async fn delete_group(&self, group: &str) -> Result<(), GroupOpError> {
        self.group_op(group, GroupOp::Delete).await
    }

    /// Joins `group` with `capabilities` (tooz `join_group`). The group must exist.
    /// The membership lasts until [`Node::leave_group`], or until this node leaves or
    /// fails.
    pub async fn join_group(&self, group: &str, capabilities: Vec<u8>) -> Result<(), GroupOpError> {
        self.group_op(group, GroupOp::Join(capabilities)).await
    }

    /// Leaves `group` (tooz `leave_group`).
    pub async fn leave_group(&self, group: &str) -> Result<(), GroupOpError> {
        self.group_op(group, GroupOp::Leave).await
    }

    /// Replaces this node's capabilities in `group` (tooz `update_capabilities`).
    pub async fn update_capabilities(
        &self,
        group: &str,
        capabilities: Vec<u8>,
    ) -> Result<(), GroupOpError> {
        self.group_op(group, GroupOp::Update(capabilities)).await
    }

    async fn group_op(&self, group: &str, op: GroupOp) -> Result<(), GroupOpError> {
        match self.rt.commands().group(group, op).await {
            Ok(result) => result?,
            Err(Stopped) => return Err(GroupOpError::Stopped),
        }
        match self.sync(self.rt.write_timeout()).await {
            Ok(()) | Err(SyncError::Disabled) => Ok(()),
            Err(SyncError::Stopped) => Err(GroupOpError::Stopped),
            Err(e) => Err(GroupOpError::Unconfirmed(e)),
        }
    }

    /// Every existing group (tooz `get_groups`), in name order. A snapshot: it never
    /// waits, and it includes this node's own changes once their call returned.
    pub fn groups(&self) -> Vec<String> {
        self.rt
            .snapshot()
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
    pub fn group_members(&self, group: &str) -> Result<Vec<(NodeId, Vec<u8>)>, GroupError> {
        self.rt
            .snapshot()
            .borrow()
            .groups
            .groups
            .get(group)
            .cloned()
            .ok_or_else(|| GroupError::NotCreated(group.to_owned()))
    }

    /// One member's capabilities in `group` (tooz `get_member_capabilities`). A
    /// snapshot: [`GroupError::NotCreated`] or [`GroupError::NotJoined`] when the group
    /// or the member is not in this node's view.
    pub fn member_capabilities(&self, group: &str, member: NodeId) -> Result<Vec<u8>, GroupError> {
        self.group_members(group)?
            .into_iter()
            .find(|(id, _)| *id == member)
            .map(|(_, caps)| caps)
            .ok_or_else(|| GroupError::NotJoined(group.to_owned()))
    }

    /// The protocol's counters (frames, drops, impersonations, ...).
    pub fn stats(&self) -> Stats {
        self.rt.stats()
    }

    /// The transport's counters (connections, handshakes, stream frames, ...).
    pub fn transport_stats(&self) -> TransportStats {
        self.rt.transport_stats()
    }

    /// Every counter and gauge of the node, by name: the protocol's counters
    /// ([`Node::stats`]), the engine's gauges ([`crate::Gauges`]: members by state,
    /// groups, campaigns, leaderships, queues) and the transport's counters
    /// ([`Node::transport_stats`]). Asks the driver (the gauges are read now), so it
    /// waits; names are unique and stable, for an exporter to loop over.
    pub async fn metrics(&self) -> Result<Vec<Metric>, MetricsError> {
        self.rt
            .metrics()
            .await
            .map_err(|Stopped| MetricsError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Node>();
        send_sync::<EventStream>();
        send_sync::<SetMetadataError>();
        send_sync::<GroupOpError>();
        send_sync::<LeaveError>();
        send_sync::<MetricsError>();
    }
}
