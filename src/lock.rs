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
//! Whether a lock is free is decided by the voters, not by gossip: a release returns
//! once a quorum of voters dropped it, and [`Lock::try_acquire`] asks them.
//!
//! Waiting nodes are served lowest node id first, not in arrival order. A lock is not
//! reentrant: the handles of one lock on one node exclude each other like handles on
//! different nodes (a second [`Lock::acquire`] waits for the first guard's release,
//! [`Lock::try_acquire`] returns `None`).

use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::election::{CampaignError, Term, Timing};
use crate::leader::{
    start_campaign, Campaign, Leadership, LeadershipError, ResignError, StartCampaignError,
};
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
    /// Shared by every handle of this lock on this node: they exclude each other.
    local: Arc<Mutex<()>>,
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

    /// Waits until this node holds the lock, at most `timeout`. Another handle of
    /// this node holding the lock (or waiting for it) is waited for first. Errors:
    /// [`LockError::Timeout`] when it is still held then (this node no longer waits
    /// for it), [`LockError::Refused`] (elections off, bad name), [`LockError::Stopped`].
    pub async fn acquire(&self, timeout: Duration) -> Result<LockGuard, LockError> {
        let timed_out = || LockError::Timeout {
            name: self.name.clone(),
            waited: timeout,
        };
        let start = tokio::time::Instant::now();
        let local = tokio::time::timeout(timeout, self.local.clone().lock_owned())
            .await
            .map_err(|_| timed_out())?;
        let mut campaign = self.campaign().await?;
        let left = timeout.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, campaign.leadership()).await {
            Ok(Ok(lead)) => Ok(self.guard(campaign, lead, local)),
            Ok(Err(e)) => Err(self.ended(e)),
            Err(_) => {
                // Not granted: whatever the voters still hold for this round is
                // released; an unconfirmed release only delays the next holder.
                let _ = campaign.resign().await;
                Err(timed_out())
            }
        }
    }

    /// Takes the lock if it is free, as the voters decide, not gossip: `None` when a
    /// quorum of voters names another holder, when another handle of this node holds
    /// it, or when the voters do not grant it within two election rounds (held
    /// elsewhere meanwhile, voters unreachable or just restarted). A lock released
    /// elsewhere (its [`LockGuard::release`] returned) is free at once. Errors as
    /// [`Lock::acquire`]'s.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, LockError> {
        let Ok(local) = self.local.clone().try_lock_owned() else {
            return Ok(None);
        };
        let cmds = self.cmds.upgrade().ok_or(LockError::Stopped)?;
        let asked = cmds.query_leader(&self.group).await;
        drop(cmds);
        match asked {
            Ok(Ok(Some((holder, _)))) if holder != self.me => return Ok(None),
            Err(crate::runtime::handle::Stopped) => return Err(LockError::Stopped),
            // Free, held by a campaign of this node's that just ended, or no quorum
            // answered: the round below decides.
            Ok(_) => {}
        }
        let mut campaign = self.campaign().await?;
        let window = self.timing.round_timeout * 2 + self.timing.rank_backoff;
        match tokio::time::timeout(window, campaign.leadership()).await {
            Ok(Ok(lead)) => Ok(Some(self.guard(campaign, lead, local))),
            Ok(Err(e)) => Err(self.ended(e)),
            Err(_) => {
                let _ = campaign.resign().await;
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

    fn guard(&self, campaign: Campaign, lead: Leadership, local: OwnedMutexGuard<()>) -> LockGuard {
        LockGuard {
            name: self.name.clone(),
            campaign,
            lead,
            _local: local,
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
    /// This node's other handles of the lock wait for it (dropped last: after the
    /// campaign's resignation was sent).
    _local: OwnedMutexGuard<()>,
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
    /// within a round trip. Returns once a quorum of voters confirmed the release, so
    /// that a [`Lock::try_acquire`] anywhere afterwards finds the lock free;
    /// [`ResignError::Unconfirmed`] when they did not within a lease (the
    /// lock is released all the same, and frees at the latest when its lease ends).
    pub async fn release(self) -> Result<(), ResignError> {
        self.campaign.resign().await
    }
}

impl Node {
    /// The lock `name` (group `lock/<name>`, see [`LOCK_PREFIX`]). The name follows
    /// group name rules once prefixed; a bad one is refused when acquiring
    /// ([`LockError::Refused`] with [`crate::CampaignError::BadName`]).
    pub fn lock(&self, name: &str) -> Lock {
        Lock {
            local: self.local_lock(name),
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
