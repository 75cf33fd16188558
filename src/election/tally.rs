//! A candidate's count of one acquire (or renew) round: the answers of the voters to a
//! request sent at `sent_at`. The round is won with grants from a quorum, and lost as
//! soon as enough denials make a quorum impossible; a lost round says when the next try
//! can succeed (the quorum-th earliest time voters become free) and with which term.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::lease::{leader_deadline, quorum};
use super::voter::{Denial, Term, Verdict};
use crate::wire::NodeId;

/// What one more answer did to the round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet.
    Pending,
    /// A quorum granted: lead until `deadline` (candidate's clock).
    Won {
        /// The leadership's end unless renewed.
        deadline: Instant,
    },
    /// A quorum is out of reach: release the grants, retry after `retry_after` with
    /// a term of at least `next_term`.
    Lost {
        /// When a retry can first succeed.
        retry_after: Duration,
        /// The lowest term worth asking for next.
        next_term: Term,
    },
}

/// One round's answers.
#[derive(Clone, Debug)]
pub struct Tally {
    term: Term,
    sent_at: Instant,
    voters: usize,
    answers: BTreeMap<NodeId, Verdict>,
    decided: bool,
    /// Voters that said they are free of a promise (its holder) or of their quarantine
    /// (`None`) during the round: see [`Tally::retract`].
    freed: Vec<(NodeId, Option<NodeId>)>,
}

/// A blocked voter's wait; `None` when it will never grant this candidate.
fn wait_of(d: &Denial) -> Option<Duration> {
    match d {
        Denial::Held { remaining, .. } | Denial::Quarantine { remaining } => Some(*remaining),
        Denial::StaleTerm { .. } => Some(Duration::ZERO),
        Denial::TooManyGroups => None,
    }
}

impl Tally {
    /// A round for `term` sent at `sent_at` to `voters` voters.
    pub fn new(term: Term, sent_at: Instant, voters: usize) -> Self {
        Tally {
            term,
            sent_at,
            voters,
            answers: BTreeMap::new(),
            decided: false,
            freed: Vec::new(),
        }
    }

    /// The term asked for.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether a voter other than `me` answered (granted or denied).
    pub fn answered_by_other_than(&self, me: Option<NodeId>) -> bool {
        self.answers.keys().any(|v| Some(*v) != me)
    }

    /// The shortest time left on another candidate's promise among the denials: a
    /// leader (or a rival round) holds those voters that long.
    pub fn held_for(&self) -> Option<Duration> {
        self.answers
            .values()
            .filter_map(|v| match v {
                Verdict::Denied(Denial::Held { remaining, .. }) => Some(*remaining),
                _ => None,
            })
            .min()
    }

    /// Forgets `voter`'s denial: it said it is free now of `holder`'s promise (or of
    /// its quarantine, `None`), and is asked again. A denial for that promise arriving
    /// later was sent before (datagrams reorder) and is ignored too. A round already
    /// decided stays decided.
    pub fn retract(&mut self, voter: NodeId, holder: Option<NodeId>) {
        if matches!(self.answers.get(&voter), Some(Verdict::Denied(_))) {
            self.answers.remove(&voter);
        }
        if !self.freed.contains(&(voter, holder)) {
            self.freed.push((voter, holder));
        }
    }

    /// Whether `verdict` from `voter` is for a promise (or quarantine) the voter has
    /// since said ended.
    fn outdated(&self, voter: NodeId, verdict: &Verdict) -> bool {
        let holder = match verdict {
            Verdict::Denied(Denial::Held { holder, .. }) => Some(*holder),
            Verdict::Denied(Denial::Quarantine { .. }) => None,
            _ => return false,
        };
        self.freed.contains(&(voter, holder))
    }

    /// Whether some voter has not answered.
    pub fn unanswered(&self) -> bool {
        self.answers.len() < self.voters
    }

    /// Whether `voter` granted this round.
    pub fn granted_by(&self, voter: NodeId) -> bool {
        matches!(self.answers.get(&voter), Some(Verdict::Granted { .. }))
    }

    /// Voters that granted (to release if the round is lost).
    pub fn granted(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.answers
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Granted { .. }))
            .map(|(id, _)| *id)
    }

    /// Records `voter`'s answer (a repeated answer replaces the earlier one) and says
    /// whether the round is decided. Decided rounds report `Pending` afterwards.
    pub fn record(
        &mut self,
        voter: NodeId,
        verdict: Verdict,
        drift: f64,
        margin: Duration,
    ) -> Outcome {
        if self.decided || self.outdated(voter, &verdict) {
            return Outcome::Pending;
        }
        self.answers.insert(voter, verdict);
        let need = quorum(self.voters);
        let mut min_lease: Option<Duration> = None;
        let mut denied = 0;
        for v in self.answers.values() {
            match v {
                Verdict::Granted { lease, .. } => {
                    min_lease = Some(min_lease.map_or(*lease, |m| m.min(*lease)))
                }
                Verdict::Denied(_) => denied += 1,
            }
        }
        let grants = self.answers.len() - denied;
        if grants >= need {
            self.decided = true;
            return match min_lease.and_then(|l| leader_deadline(self.sent_at, l, drift, margin)) {
                Some(deadline) => Outcome::Won { deadline },
                None => self.lost(),
            };
        }
        if self.voters - denied < need {
            self.decided = true;
            return self.lost();
        }
        Outcome::Pending
    }

    /// The lowest term worth asking for next, from the denials so far.
    pub fn next_term_hint(&self) -> Term {
        self.answers
            .values()
            .map(|v| match v {
                Verdict::Denied(Denial::Held { term, .. }) => term.saturating_add(1),
                Verdict::Denied(Denial::StaleTerm { highest }) => highest.saturating_add(1),
                _ => self.term,
            })
            .fold(self.term, Term::max)
    }

    fn lost(&self) -> Outcome {
        let need = quorum(self.voters);
        // Voters that granted or did not answer are free now; others after their wait.
        let mut waits: Vec<Duration> = vec![Duration::ZERO; self.voters - self.answers.len()];
        let mut next_term = self.term;
        for v in self.answers.values() {
            match v {
                Verdict::Granted { .. } => waits.push(Duration::ZERO),
                Verdict::Denied(d) => {
                    if let Some(w) = wait_of(d) {
                        waits.push(w);
                    }
                    next_term = next_term.max(match d {
                        Denial::Held { term, .. } => term.saturating_add(1),
                        Denial::StaleTerm { highest } => highest.saturating_add(1),
                        _ => self.term,
                    });
                }
            }
        }
        waits.sort_unstable();
        let retry_after = waits.get(need - 1).copied().unwrap_or(Duration::MAX);
        Outcome::Lost {
            retry_after,
            next_term,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant for the tests only
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(1);
    const M: Duration = Duration::from_millis(10);

    fn grant() -> Verdict {
        Verdict::Granted {
            lease: L,
            raised: true,
        }
    }

    fn held(ms: u64, term: Term) -> Verdict {
        Verdict::Denied(Denial::Held {
            holder: NodeId(1),
            term,
            remaining: Duration::from_millis(ms),
        })
    }

    #[test]
    fn wins_with_a_quorum_and_deadline_from_send_time() {
        let t0 = Instant::now();
        let mut t = Tally::new(5, t0, 3);
        assert_eq!(t.record(NodeId(1), grant(), 0.0, M), Outcome::Pending);
        assert_eq!(
            t.record(NodeId(2), grant(), 0.0, M),
            Outcome::Won {
                deadline: t0 + L - M
            }
        );
        assert_eq!(
            t.record(NodeId(3), grant(), 0.0, M),
            Outcome::Pending,
            "decided once"
        );
    }

    #[test]
    fn loses_when_a_quorum_is_out_of_reach_and_says_when_to_retry() {
        let t0 = Instant::now();
        let mut t = Tally::new(5, t0, 5);
        assert_eq!(t.record(NodeId(1), grant(), 0.0, M), Outcome::Pending);
        assert_eq!(t.record(NodeId(2), held(400, 4), 0.0, M), Outcome::Pending);
        assert_eq!(t.record(NodeId(3), held(900, 4), 0.0, M), Outcome::Pending);
        // Third denial: at most 2 of 5 can grant; quorum is 3.
        let out = t.record(NodeId(4), held(200, 4), 0.0, M);
        // Free now: voter 1 (granted) and voter 5 (no answer); then 200ms, 400ms, ...
        assert_eq!(
            out,
            Outcome::Lost {
                retry_after: Duration::from_millis(200),
                next_term: 5
            }
        );
        assert_eq!(t.granted().collect::<Vec<_>>(), vec![NodeId(1)]);
    }

    #[test]
    fn a_denial_for_a_promise_the_voter_said_ended_does_not_count() {
        let t0 = Instant::now();
        let mut t = Tally::new(5, t0, 5);
        let quarantine = Verdict::Denied(Denial::Quarantine {
            remaining: Duration::from_millis(700),
        });
        assert_eq!(t.record(NodeId(1), quarantine, 0.0, M), Outcome::Pending);
        // Voters 4 and 5 say holder 1's promise ended; their Held answers, sent
        // before, arrive after (reordered): they do not count.
        t.retract(NodeId(4), Some(NodeId(1)));
        t.retract(NodeId(5), Some(NodeId(1)));
        assert_eq!(t.record(NodeId(4), held(1, 4), 0.0, M), Outcome::Pending);
        assert_eq!(t.record(NodeId(5), held(1, 4), 0.0, M), Outcome::Pending);
        // Voter 3's Held counted, then retracted when it said vacant.
        assert_eq!(t.record(NodeId(3), held(1, 4), 0.0, M), Outcome::Pending);
        t.retract(NodeId(3), Some(NodeId(1)));
        assert_eq!(t.record(NodeId(2), grant(), 0.0, M), Outcome::Pending);
        assert_eq!(t.record(NodeId(3), grant(), 0.0, M), Outcome::Pending);
        assert!(matches!(
            t.record(NodeId(4), grant(), 0.0, M),
            Outcome::Won { .. }
        ));
        // A denial naming another holder still counts.
        let mut t = Tally::new(5, t0, 5);
        t.retract(NodeId(4), Some(NodeId(1)));
        let other = Verdict::Denied(Denial::Held {
            holder: NodeId(2),
            term: 4,
            remaining: L,
        });
        t.record(NodeId(4), other, 0.0, M);
        t.record(NodeId(3), other, 0.0, M);
        assert!(matches!(
            t.record(NodeId(5), other, 0.0, M),
            Outcome::Lost { .. }
        ));
    }

    #[test]
    fn stale_term_asks_for_a_higher_one() {
        let t0 = Instant::now();
        let mut t = Tally::new(2, t0, 1);
        assert_eq!(
            t.record(
                NodeId(1),
                Verdict::Denied(Denial::StaleTerm { highest: 9 }),
                0.0,
                M
            ),
            Outcome::Lost {
                retry_after: Duration::ZERO,
                next_term: 10
            }
        );
    }

    #[test]
    fn shortest_granted_lease_bounds_the_deadline() {
        let t0 = Instant::now();
        let mut t = Tally::new(1, t0, 2);
        t.record(NodeId(1), grant(), 0.0, M);
        let short = Verdict::Granted {
            lease: L / 2,
            raised: true,
        };
        assert_eq!(
            t.record(NodeId(2), short, 0.0, M),
            Outcome::Won {
                deadline: t0 + L / 2 - M
            }
        );
    }
}
