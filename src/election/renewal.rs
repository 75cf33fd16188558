//! A leader's renewals: the rounds it sent and each voter's latest grant.
//!
//! A voter that grants a renewal sent at `s` (leader's clock) is bound to this leader
//! until at least `s + D` on the leader's clock (see [`super::lease`]). Each voter's
//! latest grant is kept, whichever round it answered, and the leadership lasts until
//! the `quorum`-th latest of those deadlines: every voter of that quorum is bound
//! until then, and any other candidate's quorum shares one of them. Counting each
//! round on its own instead would throw away a voter's answer to the round before
//! whenever a round misses one voter: under loss, with only a bare quorum of voters
//! up, a leader would then lose its lease though every voter kept answering.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::lease::{leader_deadline, quorum};
use crate::wire::NodeId;

/// Renewal rounds remembered (answers to older ones are ignored).
const ROUNDS_KEPT: usize = 4;

/// A leader's renewal state.
#[derive(Clone, Debug)]
pub struct Renewal {
    quorum: usize,
    /// Rounds sent, oldest first: number and sending time.
    sent: VecDeque<(u32, Instant)>,
    /// Each voter's latest grant: the deadline on this node's clock it covers.
    grants: BTreeMap<NodeId, Instant>,
    /// Voters that said they are free (`Vacant`) and have not answered since.
    freed: Vec<NodeId>,
}

impl Renewal {
    /// For `voters` voters, starting from the grants that elected the leader, each
    /// covering `deadline`.
    pub fn new(voters: usize, elected_by: impl Iterator<Item = NodeId>, deadline: Instant) -> Self {
        Renewal {
            quorum: quorum(voters),
            sent: VecDeque::new(),
            grants: elected_by.map(|v| (v, deadline)).collect(),
            freed: Vec::new(),
        }
    }

    /// Round `round` was sent at `at`.
    pub fn sent(&mut self, round: u32, at: Instant) {
        if self.sent.len() == ROUNDS_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((round, at));
    }

    /// The newest round: its number and sending time.
    pub fn newest(&self) -> Option<(u32, Instant)> {
        self.sent.back().copied()
    }

    /// `voter` granted `round` for `lease`: returns the deadline a quorum of grants
    /// now covers (`None` for a round not sent or forgotten).
    pub fn granted(
        &mut self,
        voter: NodeId,
        round: u32,
        lease: Duration,
        drift: f64,
        margin: Duration,
    ) -> Option<Instant> {
        self.answered(voter);
        let (_, at) = self.sent.iter().find(|(r, _)| *r == round)?;
        let d = leader_deadline(*at, lease, drift, margin)?;
        let e = self.grants.entry(voter).or_insert(d);
        *e = (*e).max(d);
        self.covered()
    }

    /// `voter` said it is free (its promise to another ran out, or its quarantine
    /// ended): it is asked again until it answers.
    pub fn freed(&mut self, voter: NodeId) {
        if !self.freed.contains(&voter) {
            self.freed.push(voter);
        }
    }

    /// `voter` answered (a denial too: it tells this leader when it is free again).
    pub fn answered(&mut self, voter: NodeId) {
        self.freed.retain(|v| *v != voter);
    }

    /// Voters to ask the newest round again: those whose latest grant still covered
    /// its sending (`sent`) but not as far as it would (`full`), so their promise runs
    /// out unless they answer, and those that said they are free. One voter whose
    /// renewals are lost thus does not slip to a rival while the others keep the
    /// lease; voters whose grant had already run out are left to the next round.
    pub fn lapsing(&self, sent: Instant, full: Instant) -> impl Iterator<Item = NodeId> + '_ {
        let stale = self
            .grants
            .iter()
            .filter(move |(_, d)| **d > sent && **d < full)
            .map(|(v, _)| *v)
            .filter(|v| !self.freed.contains(v));
        stale.chain(self.freed.iter().copied())
    }

    /// The `quorum`-th latest grant deadline, if a quorum granted.
    pub fn covered(&self) -> Option<Instant> {
        let mut ds: Vec<Instant> = self.grants.values().copied().collect();
        ds.sort_unstable_by(|a, b| b.cmp(a));
        ds.get(self.quorum - 1).copied()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant for the tests only
mod tests {
    use super::*;

    const L: Duration = Duration::from_millis(900);
    const M: Duration = Duration::from_millis(10);

    #[test]
    fn grants_from_different_rounds_add_up_to_a_quorum() {
        let t0 = Instant::now();
        let d0 = t0 + Duration::from_millis(800);
        let mut r = Renewal::new(5, [1, 2, 3].map(NodeId).into_iter(), d0);
        assert_eq!(r.covered(), Some(d0));
        let (s1, s2) = (t0 + L / 3, t0 + L * 2 / 3);
        r.sent(1, s1);
        r.sent(2, s2);
        let dl = |at| leader_deadline(at, L, 0.0, M).unwrap();
        // Round 1 reaches voters 1 and 2, round 2 voter 3 only: the three latest
        // grants cover round 1's deadline.
        assert_eq!(r.granted(NodeId(1), 1, L, 0.0, M), Some(d0));
        assert_eq!(r.granted(NodeId(3), 2, L, 0.0, M), Some(d0));
        assert_eq!(r.granted(NodeId(2), 1, L, 0.0, M), Some(dl(s1)));
        assert_eq!(r.granted(NodeId(1), 2, L, 0.0, M), Some(dl(s1)));
        assert_eq!(r.granted(NodeId(2), 2, L, 0.0, M), Some(dl(s2)));
        assert_eq!(r.granted(NodeId(4), 9, L, 0.0, M), None, "no such round");
    }

    #[test]
    fn voters_that_missed_the_newest_round_are_lapsing() {
        let t0 = Instant::now();
        let d0 = t0 + Duration::from_millis(800);
        let mut r = Renewal::new(5, [1, 2, 3].map(NodeId).into_iter(), d0);
        let s1 = t0 + L / 3;
        r.sent(1, s1);
        let full = leader_deadline(s1, L, 0.0, M).unwrap();
        r.granted(NodeId(1), 1, L, 0.0, M);
        r.granted(NodeId(2), 1, L, 0.0, M);
        assert_eq!(r.lapsing(s1, full).collect::<Vec<_>>(), vec![NodeId(3)]);
        // A grant that ran out before the round was sent is not chased.
        let late = d0 + Duration::from_millis(1);
        assert_eq!(r.lapsing(late, full).count(), 0);
    }

    #[test]
    fn old_rounds_are_forgotten() {
        let t0 = Instant::now();
        let mut r = Renewal::new(1, std::iter::empty(), t0);
        for k in 0..6 {
            r.sent(k, t0 + Duration::from_millis(u64::from(k)));
        }
        assert_eq!(r.granted(NodeId(1), 0, L, 0.0, M), None);
        assert!(r.granted(NodeId(1), 5, L, 0.0, M).is_some());
        assert_eq!(r.newest().map(|n| n.0), Some(5));
    }
}
