//! Leader election on the async API: run for a group's leadership ([`Node::campaign`]),
//! hold it ([`Leadership`], with its fencing token and deadline), watch who leads
//! ([`Node::leader`], [`Node::confirmed_leader`], [`Node::leader_changes`]), or run a
//! task only while leading ([`Node::run`], kazoo's `Election.run`).
//!
//! A leadership is a lease granted by a quorum of the configured voters
//! ([`crate::Config::with_voters`]); among live candidates the lowest node id runs
//! first. The deadline a [`Leadership`] reports lies before every granting voter's
//! promise ends, so when [`Leadership::lost`] completes no other node can lead yet: stop
//! acting as leader then, and pass [`Leadership::term`] (a fencing token that only
//! rises) with every side effect so that a resource can refuse a deposed leader.
//!
//! Errors, one per operation: [`StartCampaignError`] ([`Node::campaign`]),
//! [`LeadershipError`] ([`Campaign::leadership`]), [`LeaderQueryError`]
//! ([`Node::confirmed_leader`]) and [`RunError`] ([`Node::run`]).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::election::{CampaignError, QueryError, Term};
use crate::engine::Event;
use crate::groups::LeaderChange;
use crate::node::{EventStream, Node};
use crate::runtime::handle::{Commands, Seat, Stopped, WeakCommands};
use crate::wire::NodeId;

/// Why [`Node::campaign`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartCampaignError {
    /// The candidacy was refused (elections off, bad name, already running for the
    /// group, ...); no campaign started and nothing was gossiped (a campaign this node
    /// already runs for the group goes on).
    #[error(transparent)]
    Refused(#[from] CampaignError),
    /// The node has stopped (shut down, left, or its task ended); nothing was done.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Campaign::leadership`] returned without a leadership.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeadershipError {
    /// The campaign was resigned (through its [`Leadership`]): this node no longer runs
    /// for the group and does not lead it.
    #[error("the campaign for group {0:?} was resigned")]
    Resigned(String),
    /// The node left or stopped: the campaign ended with it, and this node does not
    /// lead the group.
    #[error("the node has stopped")]
    Stopped,
}

/// Why [`Node::confirmed_leader`] gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaderQueryError {
    /// No quorum of voters answered in time (or elections are off, or too many queries
    /// are pending); nothing changed, and the query may be asked again.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The node has stopped (shut down, left, or its task ended); nothing was asked.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a resignation ([`Campaign::resign`], [`Leadership::resign`],
/// [`crate::LockGuard::release`]) was not confirmed. This node stepped down and sent the
/// releases in every case; only the voters' confirmation is missing.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ResignError {
    /// A quorum of voters still named this node as the holder, or did not answer,
    /// when the wait ended: a voter that missed the release holds its promise until
    /// it runs out (at most one lease), so the next leader may take that long.
    #[error("the voters did not confirm the release within {waited:?}")]
    Unconfirmed {
        /// How long the call waited for the confirmation.
        waited: Duration,
    },
}

/// Ends campaign `id` of `group` through `cmds`, then waits until a quorum of voters no
/// longer names this node as the holder (at once when elections are off or the node
/// stopped).
pub(crate) async fn resign_confirmed(
    cmds: &WeakCommands,
    group: &str,
    id: u64,
) -> Result<(), ResignError> {
    cmds.resign_confirmed(group, id)
        .await
        .map_err(|waited| ResignError::Unconfirmed { waited })
}

/// Why [`Node::run`] did not return the task's result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The candidacy was refused (elections off, bad name, already running for the
    /// group, ...); the task never ran and no campaign started (a campaign this node
    /// already runs for the group goes on).
    #[error(transparent)]
    Refused(#[from] CampaignError),
    /// The node left or stopped before this node was elected; the task never ran.
    #[error("the node has stopped")]
    Stopped,
    /// The leadership ended (lease not renewed, node stopped) before the task
    /// finished; the task was dropped and the campaign resigned.
    #[error("leadership of group {group:?} (term {term}) was lost")]
    Lost {
        /// The group.
        group: String,
        /// The term that ended.
        term: Term,
    },
}

/// A running candidacy for one group (see [`Node::campaign`]).
///
/// It runs until [`Campaign::resign`], or until it is dropped (which resigns without
/// waiting), or until the node leaves or stops. It does not keep the node running: once
/// the [`Node`] is gone its methods return [`LeadershipError::Stopped`].
#[derive(Debug)]
pub struct Campaign {
    group: String,
    id: u64,
    seat: watch::Receiver<Seat>,
    cmds: WeakCommands,
    ended: bool,
}

impl Campaign {
    fn new(group: String, id: u64, seat: watch::Receiver<Seat>, cmds: WeakCommands) -> Self {
        Campaign {
            group,
            id,
            seat,
            cmds,
            ended: false,
        }
    }

    /// The group this campaign runs for.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Waits until this node leads the group, and returns the leadership (at once when
    /// it leads now). After a leadership is lost, the campaign keeps running and a later
    /// call waits for the next one. Errors: [`LeadershipError::Resigned`] when the
    /// campaign was resigned through its [`Leadership`], [`LeadershipError::Stopped`]
    /// when the node left or stopped.
    pub async fn leadership(&mut self) -> Result<Leadership, LeadershipError> {
        loop {
            let seat = *self.seat.borrow_and_update();
            match seat {
                Seat::Leading { term, deadline } if deadline > now() => {
                    return Ok(Leadership {
                        group: self.group.clone(),
                        id: self.id,
                        term,
                        last_deadline: Mutex::new(deadline),
                        seat: self.seat.clone(),
                        cmds: self.cmds.clone(),
                    });
                }
                Seat::Resigned => return Err(LeadershipError::Resigned(self.group.clone())),
                Seat::Stopped => return Err(LeadershipError::Stopped),
                Seat::Running | Seat::Leading { .. } => {}
            }
            if self.seat.changed().await.is_err() && *self.seat.borrow() == seat {
                return Err(LeadershipError::Stopped);
            }
        }
    }

    /// Whether this node leads the group now (its lease is running).
    pub fn is_leader(&self) -> bool {
        matches!(*self.seat.borrow(), Seat::Leading { deadline, .. } if deadline > now())
    }

    /// Stops running; a leader steps down first and releases its voters, so the next
    /// candidate takes over within a round trip. Returns once a quorum of voters no
    /// longer holds a promise to this node (at once when the node has stopped), so
    /// that [`Node::confirmed_leader`] asked anywhere afterwards does not name it.
    /// [`ResignError::Unconfirmed`] when the voters did not confirm within a lease;
    /// this node has stepped down all the same.
    pub async fn resign(mut self) -> Result<(), ResignError> {
        self.ended = true;
        resign_confirmed(&self.cmds, &self.group, self.id).await
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        if !self.ended {
            self.cmds
                .resign_now(std::mem::take(&mut self.group), self.id);
        }
    }
}

/// Starts a campaign through the driver's command channel (`once`: a lock's).
pub(crate) async fn start_campaign(
    cmds: &Commands,
    group: &str,
    once: bool,
) -> Result<Campaign, StartCampaignError> {
    match cmds.campaign(group, once).await {
        Ok(Ok((id, seat))) => Ok(Campaign::new(group.to_owned(), id, seat, cmds.downgrade())),
        Ok(Err(e)) => Err(e.into()),
        Err(Stopped) => Err(StartCampaignError::Stopped),
    }
}

/// One leadership of a group by this node: its fencing token and its lease.
///
/// It ends when the lease cannot be renewed (this node is cut off from a quorum of
/// voters), when the campaign is resigned or dropped, or when the node leaves or stops.
/// [`Leadership::lost`] tells when, in time to stop before anyone else can lead.
#[derive(Debug)]
pub struct Leadership {
    group: String,
    id: u64,
    term: Term,
    last_deadline: Mutex<Instant>,
    seat: watch::Receiver<Seat>,
    cmds: WeakCommands,
}

impl Leadership {
    /// The group led.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The fencing token: higher than the term of every earlier leadership of the group.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The end of the current lease (this node's monotonic clock), pushed back by every
    /// renewal; once the leadership ended, the last deadline this handle saw (read
    /// while leading, or followed by [`Leadership::lost`]).
    pub fn deadline(&self) -> Instant {
        let mut last = self
            .last_deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Seat::Leading { term, deadline } = *self.seat.borrow() {
            if term == self.term {
                *last = deadline;
            }
        }
        *last
    }

    /// Whether this leadership still holds: not ended, and its deadline not reached.
    pub fn is_valid(&self) -> bool {
        matches!(*self.seat.borrow(), Seat::Leading { term, deadline }
            if term == self.term && deadline > now())
    }

    /// Completes when this leadership ends: when the node steps down (lease not
    /// renewed, resigned, left, stopped) or at the lease deadline, whichever comes first.
    /// Either way it completes before any voter's promise runs out, so before another
    /// node can be elected — even when the node's driver is stalled.
    pub async fn lost(&self) {
        let mut seat = self.seat.clone();
        loop {
            let deadline = match *seat.borrow_and_update() {
                Seat::Leading { term, deadline } if term == self.term => deadline,
                _ => return,
            };
            *self
                .last_deadline
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = deadline;
            if deadline <= now() {
                return;
            }
            tokio::select! {
                changed = seat.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline.into()) => return,
            }
        }
    }

    /// Steps down and stops running for the group (the campaign ends: its
    /// [`Campaign::leadership`] then returns [`LeadershipError::Resigned`]). The voters
    /// are released at once, so the next candidate takes over within a round trip;
    /// returns once a quorum of them confirmed it (see [`Campaign::resign`]).
    pub async fn resign(self) -> Result<(), ResignError> {
        resign_confirmed(&self.cmds, &self.group, self.id).await
    }
}

/// Leader changes of one group as this node sees them (see [`Node::leader_changes`]).
///
/// Overflow policy as [`EventStream`]'s: the stream reads the node's event stream and
/// keeps this group's [`Event::Leader`] changes; a reader that falls
/// [`crate::NodeConfig::event_capacity`] events behind (all events counted) loses the
/// oldest ones, counted by [`LeaderChanges::lagged`]. Read [`Node::leader`] to
/// resynchronise.
#[derive(Debug)]
pub struct LeaderChanges {
    group: String,
    events: EventStream,
}

impl LeaderChanges {
    /// The next change of the group's leader; `None` once the node has stopped and
    /// every change was read.
    pub async fn recv(&mut self) -> Option<LeaderChange> {
        loop {
            match self.events.recv().await? {
                Event::Leader(c) if c.group == self.group => return Some(c),
                _ => {}
            }
        }
    }

    /// The next change if one is buffered.
    pub fn try_recv(&mut self) -> Option<LeaderChange> {
        loop {
            match self.events.try_recv()? {
                Event::Leader(c) if c.group == self.group => return Some(c),
                _ => {}
            }
        }
    }

    /// Events (of any kind) this reader lost because it fell behind.
    pub fn lagged(&self) -> u64 {
        self.events.lagged()
    }
}

impl Node {
    /// Runs for the leadership of `group` (tooz `watch_elected_as_leader`, kazoo
    /// `Election`, an etcd election key). Any group name works, created or not; the
    /// candidacy starts at once and is gossiped, and it lasts as long as the returned
    /// [`Campaign`]. Errors: [`StartCampaignError::Refused`] (elections off, bad name,
    /// already running for it, ...), [`StartCampaignError::Stopped`].
    pub async fn campaign(&self, group: &str) -> Result<Campaign, StartCampaignError> {
        start_campaign(self.rt.commands(), group, false).await
    }

    /// The live candidates for `group`'s leadership, by id (kazoo's
    /// `Election.contenders`): the lowest runs first. A snapshot of the gossiped state.
    pub fn candidates(&self, group: &str) -> Vec<NodeId> {
        let snap = self.rt.snapshot().borrow();
        snap.groups
            .candidates
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// The leader of `group` and its term as gossip says (tooz `get_leader`): fast, may
    /// lag a change by a gossip round. A snapshot: it never waits.
    pub fn leader(&self, group: &str) -> Option<(NodeId, Term)> {
        self.rt
            .snapshot()
            .borrow()
            .groups
            .leaders
            .get(group)
            .copied()
    }

    /// The leader of `group` as a quorum of voters confirms it (`None`: nobody leads),
    /// asked by any node, candidate or not. Takes a round trip to the voters, at most
    /// two round timeouts. Errors: [`LeaderQueryError::Query`] (no quorum answered in
    /// time, elections off), [`LeaderQueryError::Stopped`].
    pub async fn confirmed_leader(
        &self,
        group: &str,
    ) -> Result<Option<(NodeId, Term)>, LeaderQueryError> {
        match self.rt.commands().query_leader(group).await {
            Ok(answer) => Ok(answer?),
            Err(Stopped) => Err(LeaderQueryError::Stopped),
        }
    }

    /// Every change of `group`'s leader this node sees from now on, in order (see
    /// [`LeaderChanges`] for the overflow policy). [`Node::leader`] gives the current
    /// one.
    pub fn leader_changes(&self, group: &str) -> LeaderChanges {
        LeaderChanges {
            group: group.to_owned(),
            events: self.subscribe(),
        }
    }

    /// Kazoo's `Election.run`: runs for `group`, waits until elected, then runs
    /// `f(leadership)` and resigns when it returns, handing over at once. Returns what
    /// `f` returned.
    ///
    /// `f` runs only while this node leads: if the leadership ends first (lease not
    /// renewed, node stopped), `f`'s future is dropped at its next await and the result
    /// is [`RunError::Lost`]. Use [`Leadership::term`] as the fencing token of every
    /// side effect.
    ///
    /// ```no_run
    /// # async fn demo(node: &quorate::Node) -> Result<(), quorate::RunError> {
    /// let done = node
    ///     .run("compactor", |lead| async move {
    ///         println!("leading with fencing token {}", lead.term());
    ///         // ... work, passing lead.term() to every write ...
    ///         42
    ///     })
    ///     .await?;
    /// assert_eq!(done, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<F, Fut, T>(&self, group: &str, f: F) -> Result<T, RunError>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let mut campaign = self.campaign(group).await.map_err(|e| match e {
            StartCampaignError::Refused(e) => RunError::Refused(e),
            StartCampaignError::Stopped => RunError::Stopped,
        })?;
        // Only a handle of this campaign's can resign it, and none exists before the
        // leadership below: the campaign can only end here because the node stopped.
        let lead = campaign.leadership().await.map_err(|_| RunError::Stopped)?;
        let term = lead.term();
        let watch = Leadership {
            group: lead.group.clone(),
            id: lead.id,
            term,
            last_deadline: Mutex::new(lead.deadline()),
            seat: lead.seat.clone(),
            cmds: lead.cmds.clone(),
        };
        let out = tokio::select! {
            out = f(lead) => Ok(out),
            () = watch.lost() => Err(RunError::Lost {
                group: group.to_owned(),
                term,
            }),
        };
        // The task's outcome is the answer; a release the voters did not confirm
        // only delays the next leader until the lease runs out.
        let _ = campaign.resign().await;
        out
    }
}

/// The tokio clock in std form (the engine's deadlines are on it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Campaign>();
        send_sync::<Leadership>();
        send_sync::<LeaderChanges>();
        send_sync::<StartCampaignError>();
        send_sync::<LeadershipError>();
        send_sync::<LeaderQueryError>();
        send_sync::<RunError>();
    }
}
