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

use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use crate::election::Term;
use crate::groups::LeaderChange;
use crate::node::{EventStream, Node, NodeError};
use crate::runtime::driver::Command;
use crate::runtime::elect::Seat;
use crate::wire::NodeId;
use crate::Event;

/// A running candidacy for one group (see [`Node::campaign`]).
///
/// It runs until [`Campaign::resign`], or until it is dropped (which resigns without
/// waiting), or until the node leaves or stops. It does not keep the node running: once
/// the [`Node`] is gone its methods return [`NodeError::Stopped`].
#[derive(Debug)]
pub struct Campaign {
    group: String,
    id: u64,
    seat: watch::Receiver<Seat>,
    cmds: mpsc::WeakUnboundedSender<Command>,
    ended: bool,
}

impl Campaign {
    pub(crate) fn new(
        group: String,
        id: u64,
        seat: watch::Receiver<Seat>,
        cmds: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
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
    /// call waits for the next one. Errors: [`NodeError::Resigned`] when the campaign
    /// was resigned through its [`Leadership`], [`NodeError::Stopped`] when the node
    /// left or stopped.
    pub async fn leadership(&mut self) -> Result<Leadership, NodeError> {
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
                Seat::Resigned => return Err(NodeError::Resigned(self.group.clone())),
                Seat::Stopped => return Err(NodeError::Stopped),
                Seat::Running | Seat::Leading { .. } => {}
            }
            if self.seat.changed().await.is_err() && *self.seat.borrow() == seat {
                return Err(NodeError::Stopped);
            }
        }
    }

    /// Whether this node leads the group now (its lease is running).
    pub fn is_leader(&self) -> bool {
        matches!(*self.seat.borrow(), Seat::Leading { deadline, .. } if deadline > now())
    }

    /// Stops running; a leader steps down first and releases its voters, so the next
    /// candidate takes over within a round trip. Returns once the node has done so (at
    /// once when the node has stopped).
    pub async fn resign(mut self) {
        self.ended = true;
        resign(&self.cmds, &self.group, self.id).await;
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Some(cmds) = self.cmds.upgrade() {
            let _ = cmds.send(Command::Resign {
                group: std::mem::take(&mut self.group),
                id: self.id,
                reply: None,
            });
        }
    }
}

/// Starts a campaign through the driver's command channel (`once`: a lock's).
pub(crate) async fn start_campaign(
    cmds: &mpsc::UnboundedSender<Command>,
    group: &str,
    once: bool,
) -> Result<Campaign, NodeError> {
    let (reply, rx) = oneshot::channel();
    let group = group.to_owned();
    let cmd = Command::Campaign {
        group: group.clone(),
        once,
        reply,
    };
    cmds.send(cmd).map_err(|_| NodeError::Stopped)?;
    let (id, seat) = rx.await.map_err(|_| NodeError::Stopped)??;
    Ok(Campaign::new(group, id, seat, cmds.downgrade()))
}

async fn resign(cmds: &mpsc::WeakUnboundedSender<Command>, group: &str, id: u64) {
    let Some(cmds) = cmds.upgrade() else {
        return;
    };
    let (reply, rx) = oneshot::channel();
    let cmd = Command::Resign {
        group: group.to_owned(),
        id,
        reply: Some(reply),
    };
    if cmds.send(cmd).is_ok() {
        drop(cmds);
        let _ = rx.await;
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
    cmds: mpsc::WeakUnboundedSender<Command>,
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
    /// [`Campaign::leadership`] then returns [`NodeError::Resigned`]). The voters are
    /// released at once, so the next candidate takes over within a round trip.
    pub async fn resign(self) {
        resign(&self.cmds, &self.group, self.id).await;
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
    /// [`Campaign`]. Errors: [`NodeError::Campaign`] (elections off, bad name, already
    /// running for it, ...), [`NodeError::Stopped`].
    pub async fn campaign(&self, group: &str) -> Result<Campaign, NodeError> {
        start_campaign(&self.cmds, group, false).await
    }

    /// The live candidates for `group`'s leadership, by id (kazoo's
    /// `Election.contenders`): the lowest runs first. A snapshot of the gossiped state.
    pub fn candidates(&self, group: &str) -> Vec<NodeId> {
        let snap = self.snapshot.borrow();
        snap.groups
            .candidates
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// The leader of `group` and its term as gossip says (tooz `get_leader`): fast, may
    /// lag a change by a gossip round. A snapshot: it never waits.
    pub fn leader(&self, group: &str) -> Option<(NodeId, Term)> {
        self.snapshot.borrow().groups.leaders.get(group).copied()
    }

    /// The leader of `group` as a quorum of voters confirms it (`None`: nobody leads),
    /// asked by any node, candidate or not. Takes a round trip to the voters, at most
    /// two round timeouts. Errors: [`NodeError::Query`] (no quorum answered in time,
    /// elections off), [`NodeError::Stopped`].
    pub async fn confirmed_leader(&self, group: &str) -> Result<Option<(NodeId, Term)>, NodeError> {
        let (reply, rx) = oneshot::channel();
        let group = group.to_owned();
        self.command(Command::QueryLeader { group, reply }).await?;
        Ok(rx.await.map_err(|_| NodeError::Stopped)??)
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
    /// is [`NodeError::Lost`]. Use [`Leadership::term`] as the fencing token of every
    /// side effect.
    ///
    /// ```no_run
    /// # async fn demo(node: &quorate::Node) -> Result<(), quorate::NodeError> {
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
    pub async fn run<F, Fut, T>(&self, group: &str, f: F) -> Result<T, NodeError>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let mut campaign = self.campaign(group).await?;
        let lead = campaign.leadership().await?;
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
            () = watch.lost() => Err(NodeError::Lost {
                group: group.to_owned(),
                term,
            }),
        };
        campaign.resign().await;
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
    }
}
