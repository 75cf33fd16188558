//! A quorum-confirmed answer to "who leads this group?": ask every voter whose promise
//! it holds. A leader needs unexpired promises from a quorum, so:
//! - when a quorum of voters names the same holder and term, that holder leads (it
//!   held a quorum of promises while they answered);
//! - when no holder can reach a quorum whatever the voters still silent say, nobody
//!   leads;
//! - otherwise the answer waits, and gives up ([`QueryError::NoQuorum`]) at its
//!   deadline.

use std::collections::BTreeMap;

use super::lease::quorum;
use super::voter::Term;
use crate::wire::NodeId;

/// Why a leader query gave no answer.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    /// Too few voters answered in time to confirm a leader or its absence.
    #[error("no quorum of voters answered in time")]
    NoQuorum,
    /// Elections are off (no voters configured).
    #[error("elections are off: the cluster config names no voters")]
    Disabled,
    /// Too many queries are pending.
    #[error("too many leader queries pending")]
    Busy,
}

/// What a query found: `Some((leader, term))`, or `None` when no node leads.
pub type Confirmed = Option<(NodeId, Term)>;

/// The answers to one query.
#[derive(Clone, Debug)]
pub struct QueryTally {
    voters: usize,
    answers: BTreeMap<NodeId, Option<(NodeId, Term)>>,
}

impl QueryTally {
    /// A query to `voters` voters.
    pub fn new(voters: usize) -> Self {
        QueryTally {
            voters,
            answers: BTreeMap::new(),
        }
    }

    /// Records `voter`'s answer; returns the result once it is decided.
    pub fn record(&mut self, voter: NodeId, holder: Option<(NodeId, Term)>) -> Option<Confirmed> {
        self.answers.insert(voter, holder);
        let need = quorum(self.voters);
        let mut counts: BTreeMap<(NodeId, Term), usize> = BTreeMap::new();
        for h in self.answers.values().flatten() {
            *counts.entry(*h).or_default() += 1;
        }
        if let Some((h, _)) = counts.iter().find(|(_, c)| **c >= need) {
            return Some(Some(*h));
        }
        let silent = self.voters.saturating_sub(self.answers.len());
        let best = counts.values().copied().max().unwrap_or(0);
        (best + silent < need).then_some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_naming_one_holder_confirms_it() {
        let mut q = QueryTally::new(3);
        let a = Some((NodeId(1), 4));
        assert_eq!(q.record(NodeId(10), a), None);
        assert_eq!(q.record(NodeId(11), a), Some(a));
    }

    #[test]
    fn nobody_leads_once_no_holder_can_reach_a_quorum() {
        let mut q = QueryTally::new(3);
        assert_eq!(
            q.record(NodeId(10), None),
            None,
            "two silent voters may name one"
        );
        assert_eq!(q.record(NodeId(11), Some((NodeId(2), 1))), None);
        assert_eq!(q.record(NodeId(12), None), Some(None));
        let mut q = QueryTally::new(5);
        q.record(NodeId(10), None);
        q.record(NodeId(11), None);
        assert_eq!(q.record(NodeId(12), None), Some(None));
    }

    #[test]
    fn different_terms_do_not_add_up() {
        let mut q = QueryTally::new(3);
        q.record(NodeId(10), Some((NodeId(1), 4)));
        assert_eq!(q.record(NodeId(11), Some((NodeId(1), 5))), None);
        assert_eq!(
            q.record(NodeId(12), Some((NodeId(1), 5))),
            Some(Some((NodeId(1), 5)))
        );
    }
}
