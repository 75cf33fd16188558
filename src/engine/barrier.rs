//! Read-your-writes across nodes: a barrier exchanges this node's whole state with
//! every voter ([`crate::wire::Message::Barrier`]) and completes once a quorum of them
//! answered. A voter answers only after merging what it got, so:
//!
//! - after a write's barrier completed, a quorum of voters holds the write;
//! - after a reader's barrier completed, the reader holds everything a quorum of
//!   voters held when they answered.
//!
//! Any two quorums share a voter, so a read whose barrier started after a write's
//! barrier completed sees that write. This node counts for itself when it is a voter.
//! The barriers are bounded (`Config::max_barriers`); the runtime gives each a
//! deadline and cancels it when the deadline passes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Engine;
use crate::election::quorum;
use crate::wire::NodeId;

/// Why a barrier could not start. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierError {
    /// The cluster config names no voters: there is no quorum to meet.
    #[error("the cluster config names no voters")]
    Disabled,
    /// `Config::max_barriers` barriers are waiting already.
    #[error("too many barriers pending")]
    Busy,
}

/// The barriers of one node.
#[derive(Debug, Default)]
pub(super) struct Barriers {
    next: u32,
    /// Each pending barrier: the voters that answered so far.
    pending: BTreeMap<u32, BTreeSet<NodeId>>,
    /// Barriers completed, in order, for [`Engine::poll_barrier`].
    done: VecDeque<u32>,
}

impl Engine {
    /// Starts a barrier: sends this node's state to every voter; its number comes
    /// back from [`Engine::poll_barrier`] once a quorum of voters answered.
    pub fn begin_barrier(&mut self) -> Result<u32, BarrierError> {
        let voters = self.swim.config().election.voters.clone();
        if voters.is_empty() {
            return Err(BarrierError::Disabled);
        }
        if self.barriers.pending.len() >= self.swim.config().max_barriers {
            return Err(BarrierError::Busy);
        }
        self.barriers.next = self.barriers.next.wrapping_add(1);
        let id = self.barriers.next;
        let mut heard = BTreeSet::new();
        if voters.contains(&self.id()) {
            heard.insert(self.id());
        }
        self.barriers.pending.insert(id, heard);
        let me = self.id();
        for v in voters.iter().filter(|v| **v != me) {
            match self.swim.addr_of(*v).or_else(|| self.voter_addrs.get(v).copied()) {
                Some(addr) => self.swim.send_barrier(addr, *v, id),
                None => self.stats.election_misrouted += 1,
            }
        }
        self.check_barrier(id, voters.len());
        Ok(id)
    }

    /// Forgets barrier `id` (its deadline passed); late answers are ignored.
    pub fn cancel_barrier(&mut self, id: u32) {
        self.barriers.pending.remove(&id);
    }

    /// The next barrier that completed.
    pub fn poll_barrier(&mut self) -> Option<u32> {
        self.barriers.done.pop_front()
    }

    /// Counts the barrier answers membership received.
    pub(super) fn drain_barrier_answers(&mut self) {
        let voters = self.swim.config().election.voters.len();
        while let Some((id, from)) = self.swim.poll_barrier_answer() {
            let is_voter = self.swim.config().election.voters.contains(&from);
            if let (true, Some(heard)) = (is_voter, self.barriers.pending.get_mut(&id)) {
                heard.insert(from);
                self.check_barrier(id, voters);
            }
        }
    }

    fn check_barrier(&mut self, id: u32, voters: usize) {
        let met = self
            .barriers
            .pending
            .get(&id)
            .is_some_and(|h| h.len() >= quorum(voters));
        if met {
            self.barriers.pending.remove(&id);
            self.barriers.done.push_back(id);
        }
    }
}
