//! Distributed locks on the election's leases (tooz `get_lock`, etcd `lock`).
//!
//! A lock named `n` is the leadership of the group `lock/n` ([`LOCK_PREFIX`]): holding
//! the lock is leading that group, so a lock is held by at most one node at any
//! instant, comes with a fencing token ([`LockGuard::fencing_token`], higher than every
//! earlier holder's), and is freed when its holder releases it, drops its guard,
//! leaves, or stops (a crashed holder's lock frees when its lease runs out, about one
//! lease later). Lock groups are ordinary election groups: [`Node::leader`] with the
//! prefixed name tells who holds one, and they show up in [`Node::leader_changes`].
//!
//! Waiting holders are served lowest node id first, not in arrival order. A lock is not
//! reentrant: a second acquisition of a held (or awaited) lock by the same node fails
//! with [`LockError::Refused`] ([`crate::CampaignError::AlreadyRunning`]).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::election::{CampaignError, Term, Timing};
use crate::leader::{start_campaign, Campaign, Leadership, LeadershipError, StartCampaignError};
use crate::node::Node;
use crate::runtime::handle::WeakCommands;
use crate::runtime::shared::Snapshot;
use crate::wire::NodeId;

/// Prefix of the election groups that carry locks: lock `n` is group `lock/n`.
pub const LOCK_PREFIX: &str = "lock/";

/// Why [`Lock::acquire`] or [`Lock::try_acquire`] failed. In every case the call took
/// nothing: no guard was made and the call no longer waits for the lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock was still held elsewhere when the wait ended ([`Lock::acquire`] only);
    /// this node no longer waits for it.
    #[error("lock {name:?} still held elsewhere after {waited:?}")]
    Timeout {
        /// The lock.
        name: String,
        /// How long this node waited.
        waited: Duration,
    },
    /// The node refused to run for the lock (elections off, bad name, this node already
    /// holds or awaits it, ...); nothing changed: a guard or a wait this node already
    /// has for the lock is unaffected.
    #[error(transparent)]
    Refused(#[from] CampaignError),
    /// The lock was granted, but its lease ended before this node could take it; this
    /// node no longer waits for it.
    #[error("lock {name:?} was lost as soon as it was granted")]
    Lost {
        /// The lock.
        name: String,
    },
    /// The node has stopped (shut down, left, or its task ended); it holds no lock.
    #[error("the node has stopped")]
    Stopped,
}

/// A named lock of the cluster (see [`Node::lock`]). Cheap to create; it holds
/// nothing until acquired, and does not keep the node running.
#[derive(Debug, Clone)]
pub struct Lock {
    name: String,
    group: String,
    me: NodeId,
    cmds: WeakCommands,
    snapshot: watch::Receiver<std::sync::Arc<Snapshot>>,
    timing: Timing,
}

impl Lock {
    /// The lock's name (without [`LOCK_PREFIX`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The holder and its fencing token as gossip says (fast, may lag a change by a
    /// gossip round).
    pub fn holder(&self) -> Option<(NodeId, Term)> {
        self.snapshot
            .borrow()
            .groups
            .leaders
            .get(&self.group)
            .copied()
    }

    /// Waits until this node holds the lock, at most `timeout`. Errors:
    /// [`LockError::Timeout`] when it is still held elsewhere then (this node no
    /// longer waits for it), [`LockError::Refused`] (elections off, bad name, this
    /// node already holds or awaits it), [`LockError::Stopped`].
    pub async fn acquire(&self, timeout: Duration) -> Result<LockGuard, LockError> {
        let mut campaign = self.campaign().await?;
        match tokio::time::timeout(timeout, campaign.leadership()).await {
            Ok(Ok(lead)) => Ok(self.guard(campaign, lead)),
            Ok(Err(e)) => Err(self.ended(e)),
            Err(_) => {
                campaign.resign().await;
                Err(LockError::Timeout {
                    name: self.name.clone(),
                    waited: timeout,
                })
            }
        }
    }

    /// Takes the lock if it is free: `None` at once when gossip says another node
    /// holds it, or when the voters do not grant it within two election rounds (held
    /// elsewhere, or voters unreachable or just restarted). Errors as
    /// [`Lock::acquire`]'s.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, LockError> {
        let me = self.me;
        let held_elsewhere = |l: Option<(NodeId, Term)>| l.is_some_and(|(id, _)| id != me);
        if held_elsewhere(self.holder()) {
            return Ok(None);
        }
        let mut campaign = self.campaign().await?;
        let mut snapshot = self.snapshot.clone();
        let window = tokio::time::sleep(self.timing.round_timeout * 2 + self.timing.rank_backoff);
        tokio::pin!(window);
        let outcome = loop {
            tokio::select! {
                lead = campaign.leadership() => break Some(lead.map_err(|e| self.ended(e))?),
                () = &mut window => break None,
                changed = snapshot.changed() => {
                    if changed.is_err() {
                        return Err(LockError::Stopped);
                    }
                    if held_elsewhere(self.holder()) {
                        break None;
                    }
                }
            }
        };
        match outcome {
            Some(lead) => Ok(Some(self.guard(campaign, lead))),
            None => {
                campaign.resign().await;
                Ok(None)
            }
        }
    }

    async fn campaign(&self) -> Result<Campaign, LockError> {
        let cmds = self.cmds.upgrade().ok_or(LockError::Stopped)?;
        start_campaign(&cmds, &self.group, true)
            .await
            .map_err(|e| match e {
                StartCampaignError::Refused(e) => LockError::Refused(e),
                StartCampaignError::Stopped => LockError::Stopped,
            })
    }

    /// The lock's campaign ended before it led: the node stopped, or (a lock's
    /// campaign ends with its first leadership) the lease ended before it was seen.
    fn ended(&self, e: LeadershipError) -> LockError {
        match e {
            LeadershipError::Resigned(_) => LockError::Lost {
                name: self.name.clone(),
            },
            LeadershipError::Stopped => LockError::Stopped,
        }
    }

    fn guard(&self, campaign: Campaign, lead: Leadership) -> LockGuard {
        LockGuard {
            name: self.name.clone(),
            campaign,
            lead,
        }
    }
}

/// A held lock. Released by [`LockGuard::release`], when dropped (without waiting),
/// and when the node leaves or stops. It can also be lost: when the node cannot renew
/// its lease (cut off from a quorum of voters), [`LockGuard::lost`] completes before
/// anyone else can take the lock, and the guard stays invalid ([`LockGuard::is_owner`]
/// false) until dropped.
#[derive(Debug)]
pub struct LockGuard {
    name: String,
    campaign: Campaign,
    lead: Leadership,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: higher than every earlier holder's. Pass it with every write
    /// the lock protects, so the resource can refuse a holder that lost the lock.
    pub fn fencing_token(&self) -> Term {
        self.lead.term()
    }

    /// Whether this node still holds the lock (not released or lost, lease running).
    pub fn is_owner(&self) -> bool {
        self.lead.is_valid()
    }

    /// The end of the current lease (renewed while held).
    pub fn deadline(&self) -> Instant {
        self.lead.deadline()
    }

    /// Completes when the lock is lost or released, before anyone else can take it.
    pub async fn lost(&self) {
        self.lead.lost().await;
    }

    /// Releases the lock: the voters are freed at once, so a waiting node takes it
    /// within a round trip.
    pub async fn release(self) {
        self.campaign.resign().await;
    }
}

impl Node {
    /// The lock `name` (group `lock/<name>`, see [`LOCK_PREFIX`]). The name follows
    /// group name rules once prefixed; a bad one is refused when acquiring
    /// ([`LockError::Refused`] with [`crate::CampaignError::BadName`]).
    pub fn lock(&self, name: &str) -> Lock {
        Lock {
            name: name.to_owned(),
            group: format!("{LOCK_PREFIX}{name}"),
            me: self.id(),
            cmds: self.rt.commands().downgrade(),
            snapshot: self.rt.snapshot().clone(),
            timing: self.rt.election_timing().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Lock>();
        send_sync::<LockGuard>();
        send_sync::<LockError>();
    }
}
