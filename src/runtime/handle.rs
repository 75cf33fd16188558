//! The handle on a running node: the driver's command channel, the event and snapshot
//! channels it publishes on, and its task. The public API ([`crate::Node`] and the
//! election and lock handles) is a thin layer over it; everything here speaks the
//! runtime's own terms: a command either gets the engine's answer or finds the driver
//! gone ([`Stopped`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::driver::Command;
pub(crate) use super::driver::GroupOp;
pub(crate) use super::elect::{Seat, Started};
use super::shared::{Shared, Snapshot, TransportStats};
use crate::election::{CampaignError, Confirmed, QueryError, Term, Timing};
use crate::engine::{BarrierError, Event};
use crate::groups::GroupError;
use crate::stats::Metric;
use crate::swim::{MetadataError, Stats};
use crate::wire::NodeId;

/// The driver is gone (the node shut down, left, or its task ended): the command was
/// not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stopped;

/// The sending side of the driver's command channel. The driver runs until the last
/// one is dropped (or it is told to stop).
#[derive(Debug)]
pub(crate) struct Commands(mpsc::UnboundedSender<Command>);

impl From<mpsc::UnboundedSender<Command>> for Commands {
    fn from(tx: mpsc::UnboundedSender<Command>) -> Self {
        Commands(tx)
    }
}

impl Commands {
    /// Sends the command `make` builds around a reply channel, and waits for the reply.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.0.send(make(reply)).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Has the driver present and check with these TLS configs from now on.
    pub async fn reload_tls(
        &self,
        server: quinn::ServerConfig,
        client: quinn::ClientConfig,
    ) -> Result<(), Stopped> {
        let (server, client) = (Box::new(server), Box::new(client));
        self.ask(|reply| Command::ReloadTls {
            server,
            client,
            reply,
        })
        .await
    }

    /// Has the driver close every connection whose peer certificate `rev` revokes.
    pub async fn close_revoked(
        &self,
        rev: super::revocation::Revocation,
    ) -> Result<usize, Stopped> {
        self.ask(|reply| Command::CloseRevoked { rev, reply }).await
    }

    /// A read-your-writes barrier with a quorum of voters.
    pub async fn barrier(&self) -> Result<Result<(), BarrierError>, Stopped> {
        self.ask(|reply| Command::Barrier { reply }).await
    }

    /// Publishes new metadata.
    pub async fn set_metadata(&self, meta: Vec<u8>) -> Result<Result<(), MetadataError>, Stopped> {
        self.ask(|reply| Command::SetMetadata { meta, reply }).await
    }

    /// A group operation on `group`.
    pub async fn group(&self, group: &str, op: GroupOp) -> Result<Result<(), GroupError>, Stopped> {
        let group = group.to_owned();
        self.ask(|reply| Command::Group { group, op, reply }).await
    }

    /// Starts running for `group` (`once`: a lock's campaign, ended with its first
    /// leadership).
    pub async fn campaign(
        &self,
        group: &str,
        once: bool,
    ) -> Result<Result<Started, CampaignError>, Stopped> {
        let group = group.to_owned();
        self.ask(|reply| Command::Campaign { group, once, reply })
            .await
    }

    /// Every counter and gauge of the engine, read by the driver now.
    pub async fn engine_metrics(&self) -> Result<Vec<Metric>, Stopped> {
        self.ask(|reply| Command::Metrics { reply }).await
    }

    /// This node's leaderships: group and the lease left now.
    pub async fn leases(&self) -> Result<Vec<(String, Duration)>, Stopped> {
        self.ask(|reply| Command::Leases { reply }).await
    }

    /// Asks the voters who leads `group`.
    pub async fn query_leader(
        &self,
        group: &str,
    ) -> Result<Result<Confirmed, QueryError>, Stopped> {
        let group = group.to_owned();
        self.ask(|reply| Command::QueryLeader { group, reply })
            .await
    }

    /// Publishes a leadership of `group` at `term` that no voter granted (tests only).
    pub async fn claim_leadership_unsafe(&self, group: &str, term: Term) -> Result<(), Stopped> {
        let group = group.to_owned();
        self.ask(|reply| Command::ClaimLeadershipUnsafe { group, term, reply })
            .await
    }

    /// A sender that does not keep the driver running.
    pub fn downgrade(&self) -> WeakCommands {
        WeakCommands(self.0.downgrade())
    }
}

/// A command sender that does not keep the driver running (campaign, leadership and
/// lock handles hold one).
#[derive(Clone, Debug)]
pub(crate) struct WeakCommands(mpsc::WeakUnboundedSender<Command>);

impl WeakCommands {
    /// A sender, while the driver still runs.
    pub fn upgrade(&self) -> Option<Commands> {
        self.0.upgrade().map(Commands)
    }

    /// Ends campaign `id` for `group` without waiting (a no-op once the node stopped).
    pub fn resign_now(&self, group: String, id: u64) {
        if let Some(cmds) = self.0.upgrade() {
            let _ = cmds.send(Command::Resign {
                group,
                id,
                reply: None,
            });
        }
    }

    /// Ends campaign `id` for `group`: returns once the driver has stepped down and sent
    /// the releases (at once when the node has stopped), with what confirming the
    /// releases takes when elections are on: a command channel, this node's id and
    /// the longest wait.
    pub async fn resign(&self, group: &str, id: u64) -> Option<(Commands, NodeId, Duration)> {
        let cmds = self.0.upgrade()?;
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Resign {
            group: group.to_owned(),
            id,
            reply: Some(reply),
        };
        cmds.send(cmd).ok()?;
        // Do not keep the driver running while waiting.
        drop(cmds);
        let (me, wait) = rx.await.ok()??;
        Some((self.upgrade()?, me, wait))
    }
}

impl WeakCommands {
    /// Ends campaign `id` of `group`, then waits until a quorum of voters no longer
    /// names this node as the holder (at once when elections are off or the node
    /// stopped). `Err(waited)`: the voters did not confirm within that wait (one
    /// lease); the node stepped down and sent the releases all the same.
    pub async fn resign_confirmed(&self, group: &str, id: u64) -> Result<(), Duration> {
        let Some((cmds, me, wait)) = self.resign(group, id).await else {
            return Ok(());
        };
        let released = async {
            loop {
                // Each ask is short: a voter that had not yet handled the release when
                // it answered, with another voter down, leaves a query undecided until
                // its own deadline; asking again gets the fresh answers.
                let ask = tokio::time::timeout(wait / 8, cmds.query_leader(group));
                match ask.await {
                    Ok(Ok(Ok(Some((holder, _))))) if holder == me => {
                        tokio::time::sleep(wait / 32).await;
                    }
                    Ok(Ok(Err(QueryError::Busy))) => tokio::time::sleep(wait / 32).await,
                    Err(_) | Ok(Ok(Err(QueryError::NoQuorum))) => {}
                    // Released (another holder or none), elections off, node stopped.
                    _ => return,
                }
            }
        };
        tokio::time::timeout(wait, released).await.map_err(|_| wait)
    }
}

/// A running node, as [`super::start`] made it. Dropping it stops the driver (the
/// command channel closes), as [`RuntimeHandle::shutdown`] does.
#[derive(Debug)]
pub(crate) struct RuntimeHandle {
    pub(super) id: NodeId,
    pub(super) local_addr: SocketAddr,
    pub(super) metrics_addr: Option<SocketAddr>,
    pub(super) cmds: Commands,
    pub(super) events: broadcast::Receiver<Event>,
    /// Subscribed at start, handed to the first [`RuntimeHandle::first_events`] caller.
    pub(super) first_events: Mutex<Option<broadcast::Receiver<Event>>>,
    pub(super) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(super) stats: watch::Receiver<Stats>,
    pub(super) shared: Arc<Shared>,
    pub(super) election_timing: Timing,
    /// The seeds the node joins through (named when the join times out).
    pub(super) seeds: Vec<SocketAddr>,
    /// How long a group write waits for a quorum of voters.
    pub(super) write_timeout: std::time::Duration,
    pub(super) driver: JoinHandle<()>,
}

impl RuntimeHandle {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The application watchdog, when the node has one.
    pub fn watchdog(&self) -> Option<&super::watchdog::Watchdog> {
        self.shared.watchdog.as_deref()
    }

    /// The seeds the node joins through.
    pub fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// How long a group write waits for a quorum of voters.
    pub fn write_timeout(&self) -> std::time::Duration {
        self.write_timeout
    }

    /// The address the node's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Builds TLS configs for `identity` and has the driver present them from now on.
    pub async fn reload_identity(
        &self,
        identity: &super::identity::Identity,
    ) -> Result<Result<(), super::identity::IdentityError>, Stopped> {
        // A renewed certificate keeps the revocation list in force.
        let _one_at_a_time = self.shared.revoking.lock().await;
        let kept = self.shared.current_identity().revocation().cloned();
        let identity = &identity.with_revocation(kept);
        let (server, client) = match self.shared.tls_configs(identity) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        self.cmds.reload_tls(server, client).await?;
        self.shared.set_identity(identity.clone());
        self.shared.own_expiry.set(identity.not_after());
        let now = (std::time::SystemTime::now(), std::time::Instant::now());
        self.shared.own_expiry.check(now.0, now.1);
        Ok(Ok(()))
    }

    /// Checks and puts in force a revocation list, and sends it to every member.
    pub async fn apply_revocation(
        &self,
        bytes: &[u8],
    ) -> Result<super::revocation::RevocationApplied, super::revocation::RevocationError> {
        super::revoke::apply(&self.shared, bytes, super::revoke::Source::Origin).await
    }

    /// What the driver shares with its tasks (counters, the view).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// The last certificate refusal of each seed that has one.
    pub fn refusals(&self) -> Vec<(SocketAddr, String)> {
        self.shared.refusals.of(&self.seeds)
    }

    /// The address the metrics endpoint is bound to, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The driver's command channel.
    pub fn commands(&self) -> &Commands {
        &self.cmds
    }

    /// The view the driver published last (and the channel it publishes on).
    pub fn snapshot(&self) -> &watch::Receiver<Arc<Snapshot>> {
        &self.snapshot
    }

    /// The election timings of the node's configuration.
    pub fn election_timing(&self) -> &Timing {
        &self.election_timing
    }

    /// The first call: the subscription made at start (every event since). Later
    /// calls: a new subscription, from now on.
    pub fn first_events(&self) -> broadcast::Receiver<Event> {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        first.unwrap_or_else(|| self.events.resubscribe())
    }

    /// A new subscription to events from now on (never the start-up one).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.resubscribe()
    }

    /// The protocol's counters.
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// The transport's counters.
    pub fn transport_stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }

    /// Every metric of the node: the engine's counters and gauges, then the
    /// transport's.
    pub async fn metrics(&self) -> Result<Vec<Metric>, Stopped> {
        let mut all = self.cmds.engine_metrics().await?;
        all.extend(self.transport_stats().metrics());
        Ok(all)
    }

    /// Announces the departure, lingers while it goes out, and waits for the driver to
    /// end.
    pub async fn leave(self) -> Result<(), Stopped> {
        self.cmds.ask(|reply| Command::Leave { reply }).await?;
        let _ = self.driver.await;
        Ok(())
    }

    /// Stops the driver at once (announcing nothing) and waits for it to end.
    pub async fn shutdown(self) {
        let _ = self.cmds.ask(|reply| Command::Shutdown { reply }).await;
        let _ = self.driver.await;
    }
}
