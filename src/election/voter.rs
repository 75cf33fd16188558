//! A voter's promises. For each group a voter remembers the highest term it ever granted
//! (and to whom) and at most one unexpired promise. It grants a lease request when:
//! - it is past its restart quarantine (it may have promised before it restarted);
//! - it holds no unexpired promise for the group to another candidate;
//! - the term is above every term it granted before, or equal to it for a renewal by
//!   the candidate it was granted to.
//!
//! The term rule makes fencing tokens strictly increase from one leader to the next: a
//! later leader's quorum shares a voter with the earlier one, and that voter grants a
//! different candidate only a higher term.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::wire::NodeId;

/// A leadership's fencing token.
pub type Term = u64;

/// A voter's promise to one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// Who holds it.
    pub holder: NodeId,
    /// Its term.
    pub term: Term,
    /// When it ends, on the voter's clock.
    pub until: Instant,
}

/// A voter's answer to a lease request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Granted for `lease` (possibly shortened to the voter's maximum).
    Granted {
        /// The promised duration, on the voter's clock.
        lease: Duration,
        /// The group's highest term rose: a durable voter must persist it.
        raised: bool,
    },
    /// Refused; nothing changed on the voter.
    Denied(Denial),
}

/// Why a voter refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Another candidate holds an unexpired promise.
    Held {
        /// The holder.
        holder: NodeId,
        /// Its term.
        term: Term,
        /// Time left on the promise, on the voter's clock.
        remaining: Duration,
    },
    /// The term is not above the highest granted.
    StaleTerm {
        /// The highest term this voter granted for the group.
        highest: Term,
    },
    /// The voter restarted recently and grants nothing until the quarantine ends.
    Quarantine {
        /// Time left.
        remaining: Duration,
    },
    /// The voter already tracks its maximum number of groups.
    TooManyGroups,
}

/// Most candidates a voter remembers having turned away per group (to tell them when
/// the group becomes vacant).
pub const MAX_WAITERS: usize = 64;

#[derive(Clone, Debug, Default)]
struct Ballot {
    highest: Term,
    highest_holder: Option<NodeId>,
    promise: Option<Promise>,
    /// Candidates denied while the promise held: told when it is released.
    waiters: Vec<NodeId>,
}

/// One node's voter role, for every group.
#[derive(Clone, Debug)]
pub struct Voter {
    ballots: BTreeMap<String, Ballot>,
    quarantine_until: Instant,
    max_lease: Duration,
    max_groups: usize,
}

impl Voter {
    /// A voter started at `now`: it grants nothing for `quarantine` (set it to the lease
    /// duration), never promises longer than `max_lease`, and tracks at most
    /// `max_groups` groups.
    pub fn new(now: Instant, quarantine: Duration, max_lease: Duration, max_groups: usize) -> Self {
        Voter {
            ballots: BTreeMap::new(),
            quarantine_until: now + quarantine,
            max_lease,
            max_groups,
        }
    }

    /// Raises a group's highest term to `term` held by `holder` (if known): from the
    /// voter's own persisted state, or relearned from gossip after a restart.
    pub fn learn(&mut self, group: &str, term: Term, holder: Option<NodeId>) {
        if let Some(b) = self.ballot(group) {
            if term > b.highest {
                b.highest = term;
                b.highest_holder = holder;
            }
        }
    }

    fn ballot(&mut self, group: &str) -> Option<&mut Ballot> {
        if !self.ballots.contains_key(group) {
            if self.ballots.len() >= self.max_groups {
                return None;
            }
            self.ballots.insert(group.to_owned(), Ballot::default());
        }
        self.ballots.get_mut(group)
    }

    /// Decides on `candidate`'s request for `group` at `term` for `lease`: a new
    /// leadership, so the term must be above every term granted before.
    pub fn request(
        &mut self,
        now: Instant,
        group: &str,
        candidate: NodeId,
        term: Term,
        lease: Duration,
    ) -> Verdict {
        self.decide(now, group, candidate, term, lease, false)
    }

    /// Decides on a leader's renewal of its leadership of `group` at `term`: granted at
    /// the same term to the candidate it was last granted to. (Only a renewal may reuse
    /// a term: a new process with the holder's id must not take over its fencing token.)
    pub fn renew(
        &mut self,
        now: Instant,
        group: &str,
        candidate: NodeId,
        term: Term,
        lease: Duration,
    ) -> Verdict {
        self.decide(now, group, candidate, term, lease, true)
    }

    fn decide(
        &mut self,
        now: Instant,
        group: &str,
        candidate: NodeId,
        term: Term,
        lease: Duration,
        renewing: bool,
    ) -> Verdict {
        if now < self.quarantine_until {
            return Verdict::Denied(Denial::Quarantine {
                remaining: self.quarantine_until - now,
            });
        }
        let max_lease = self.max_lease;
        let Some(b) = self.ballot(group) else {
            return Verdict::Denied(Denial::TooManyGroups);
        };
        if let Some(p) = b.promise.filter(|p| p.until > now && p.holder != candidate) {
            if b.waiters.len() < MAX_WAITERS && !b.waiters.contains(&candidate) {
                b.waiters.push(candidate);
            }
            return Verdict::Denied(Denial::Held {
                holder: p.holder,
                term: p.term,
                remaining: p.until - now,
            });
        }
        let renewal = renewing && term == b.highest && b.highest_holder == Some(candidate);
        if term < b.highest || (term == b.highest && !renewal) {
            return Verdict::Denied(Denial::StaleTerm { highest: b.highest });
        }
        let lease = lease.min(max_lease);
        let raised = term > b.highest;
        b.highest = term;
        b.highest_holder = Some(candidate);
        // Those turned away before still wait (now for this holder); only the
        // candidate granted stops waiting.
        b.waiters.retain(|w| *w != candidate);
        b.promise = Some(Promise {
            holder: candidate,
            term,
            until: now + lease,
        });
        Verdict::Granted { lease, raised }
    }

    /// Drops `holder`'s promise for `group` at `term` (a resignation). Returns the
    /// candidates turned away meanwhile (to tell them the group is vacant), or `None`
    /// when there was no such promise.
    pub fn release(&mut self, group: &str, holder: NodeId, term: Term) -> Option<Vec<NodeId>> {
        let b = self.ballots.get_mut(group)?;
        match b.promise {
            Some(p) if p.holder == holder && p.term == term => {
                b.promise = None;
                // A released term is over: the same holder cannot renew it later.
                b.highest_holder = None;
                Some(std::mem::take(&mut b.waiters))
            }
            _ => None,
        }
    }

    /// Puts candidates back on `group`'s list of those turned away (after a release
    /// that told only some of them).
    pub fn keep_waiting(&mut self, group: &str, waiters: Vec<NodeId>) {
        if let Some(b) = self.ballots.get_mut(group) {
            for w in waiters {
                if b.waiters.len() < MAX_WAITERS && !b.waiters.contains(&w) {
                    b.waiters.push(w);
                }
            }
        }
    }

    /// Whether the voter is still in its restart quarantine at `now` (it may have
    /// promised before it restarted, so it cannot say who holds a group).
    pub fn quarantined(&self, now: Instant) -> bool {
        now < self.quarantine_until
    }

    /// The unexpired promise for `group`, if any.
    pub fn promise(&self, now: Instant, group: &str) -> Option<Promise> {
        self.ballots.get(group)?.promise.filter(|p| p.until > now)
    }

    /// The highest term granted (or learned) for `group`.
    pub fn highest_term(&self, group: &str) -> Term {
        self.ballots.get(group).map_or(0, |b| b.highest)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant for the tests only
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(1);
    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn voter(t0: Instant) -> Voter {
        Voter::new(t0, Duration::ZERO, Duration::from_secs(5), 8)
    }

    fn granted(v: Verdict) -> bool {
        matches!(v, Verdict::Granted { .. })
    }

    #[test]
    fn one_holder_at_a_time_and_deny_says_who_and_how_long() {
        let t0 = Instant::now();
        let mut v = voter(t0);
        assert!(granted(v.request(t0, "g", A, 1, L)));
        let at = t0 + Duration::from_millis(300);
        assert_eq!(
            v.request(at, "g", B, 2, L),
            Verdict::Denied(Denial::Held {
                holder: A,
                term: 1,
                remaining: Duration::from_millis(700)
            })
        );
        // After expiry another candidate wins with a higher term, never an equal one.
        let later = t0 + L;
        assert_eq!(
            v.request(later, "g", B, 1, L),
            Verdict::Denied(Denial::StaleTerm { highest: 1 })
        );
        assert!(granted(v.request(later, "g", B, 2, L)));
        // The old holder can no longer renew its old term.
        assert!(!granted(v.request(later + L * 2, "g", A, 1, L)));
    }

    #[test]
    fn holder_renews_with_same_term() {
        let t0 = Instant::now();
        let mut v = voter(t0);
        assert_eq!(
            v.request(t0, "g", A, 3, L),
            Verdict::Granted {
                lease: L,
                raised: true
            }
        );
        assert_eq!(
            v.renew(t0 + L / 3, "g", A, 3, L),
            Verdict::Granted {
                lease: L,
                raised: false
            }
        );
        assert_eq!(v.promise(t0 + L, "g").unwrap().until, t0 + L / 3 + L);
    }

    #[test]
    fn only_a_renewal_gets_the_held_term_again() {
        // A restarted process with the holder's id, asking the term its predecessor
        // still holds, would take over that fencing token: refused.
        let t0 = Instant::now();
        let mut v = voter(t0);
        assert!(granted(v.request(t0, "g", A, 2, L)));
        let at = t0 + L / 3;
        assert_eq!(
            v.request(at, "g", A, 2, L),
            Verdict::Denied(Denial::StaleTerm { highest: 2 })
        );
        assert!(granted(v.renew(at, "g", A, 2, L)));
        assert!(granted(v.request(at, "g", A, 3, L)));
        assert!(!granted(v.renew(at, "g", B, 3, L)), "not B's term");
    }

    #[test]
    fn release_frees_the_group_at_once() {
        let t0 = Instant::now();
        let mut v = voter(t0);
        v.request(t0, "g", A, 1, L);
        assert!(!granted(v.request(t0, "g", B, 2, L)));
        assert_eq!(v.release("g", B, 1), None, "only the holder releases");
        assert_eq!(v.release("g", A, 2), None, "only its own term");
        assert_eq!(v.release("g", A, 1), Some(vec![B]), "B was turned away");
        assert_eq!(
            v.renew(t0, "g", A, 1, L),
            Verdict::Denied(Denial::StaleTerm { highest: 1 }),
            "a released term is not renewed"
        );
        assert!(granted(v.request(t0, "g", B, 2, L)));
    }

    #[test]
    fn restart_quarantine_and_relearned_terms() {
        let t0 = Instant::now();
        let mut v = Voter::new(t0, L, Duration::from_secs(5), 8);
        assert!(matches!(
            v.request(t0, "g", A, 1, L),
            Verdict::Denied(Denial::Quarantine { .. })
        ));
        v.learn("g", 7, None);
        assert_eq!(
            v.request(t0 + L, "g", A, 7, L),
            Verdict::Denied(Denial::StaleTerm { highest: 7 })
        );
        assert!(granted(v.request(t0 + L, "g", A, 8, L)));
    }

    #[test]
    fn leases_are_capped_and_groups_bounded() {
        let t0 = Instant::now();
        let mut v = Voter::new(t0, Duration::ZERO, L, 1);
        assert_eq!(
            v.request(t0, "g", A, 1, L * 10),
            Verdict::Granted {
                lease: L,
                raised: true
            }
        );
        assert_eq!(
            v.request(t0, "h", A, 1, L),
            Verdict::Denied(Denial::TooManyGroups)
        );
    }

    #[test]
    fn groups_are_independent() {
        let t0 = Instant::now();
        let mut v = voter(t0);
        assert!(granted(v.request(t0, "g", A, 1, L)));
        assert!(granted(v.request(t0, "h", B, 1, L)));
        assert_eq!(v.highest_term("g"), 1);
        assert_eq!(v.highest_term("zzz"), 0);
    }
}
