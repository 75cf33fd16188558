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
//!
//! Promises belong to one process life ([`Process`]: the node id and the instance the
//! process drew when it started), never to a bare id: a second process running with
//! the same id (a supervisor's replacement of a stalled process, an operator's mistake)
//! is another candidate, and it can neither take over nor release the first one's
//! promises.
//!
//! A renewal (a leader extending its own leadership) is granted whatever the highest
//! term, as long as no other process holds an unexpired promise: a leader's lease has
//! been valid without a break since it was elected, so no leadership can have started
//! since, and a higher term seen here can only come from a round that failed. This is
//! how a leader wins back a voter that lapsed (it was paused, or a rival's failed round
//! took it for a moment) without a new election.
//!
//! Vacancies go to the lowest id (the Bully rule). A voter remembers the candidates it
//! turned away (while a promise held, or during its restart quarantine) and tells them
//! all when the group becomes free: its promise released or run out, or its quarantine
//! over. For a rank back-off after that (see [`Voter::with_grace`]) it grants the group
//! only to the lowest id among them, or to a lower one: every waiter hears of the
//! vacancy at once and the lowest asks first, but a higher id whose own retry timer
//! happens to fire at that instant would otherwise reach the voter first. Denying more
//! never costs safety; a lowest waiter that does not ask holds the others off for the
//! back-off only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::lease::UnsafeVariant;
pub use crate::wire::election::{Instance, Term};
use crate::wire::NodeId;

/// One process life of a node: who a promise is made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Process {
    /// The node id (bound to its certificate).
    pub id: NodeId,
    /// The instance the process drew at start.
    pub instance: Instance,
}

impl Process {
    /// Process `instance` of node `id`.
    pub fn new(id: NodeId, instance: Instance) -> Self {
        Process { id, instance }
    }
}

/// A voter's promise to one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// Who holds it.
    pub holder: Process,
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
    promise: Option<Promise>,
    /// Candidates denied while the promise held: told when it is released.
    waiters: Vec<Process>,
    /// After a vacancy, the lowest id that waited for it, and until when only it (or
    /// a lower id) may take the group: see [`Voter::with_grace`].
    reserved: Option<(NodeId, Instant)>,
    /// Some waiters were turned away by the restart quarantine: they are told when
    /// it ends.
    quarantine_waiters: bool,
}

/// One node's voter role, for every group.
#[derive(Clone, Debug)]
pub struct Voter {
    ballots: BTreeMap<String, Ballot>,
    quarantine_until: Instant,
    quarantine: Duration,
    /// Another process with this id was there first: this one never grants.
    retired: bool,
    max_lease: Duration,
    max_groups: usize,
    variant: Option<UnsafeVariant>,
    /// How long a vacated group stays reserved for its lowest waiting id.
    grace: Duration,
}

impl Voter {
    /// A voter started at `now`: it grants nothing for `quarantine` (set it to the lease
    /// duration), never promises longer than `max_lease`, and tracks at most
    /// `max_groups` groups.
    pub fn new(now: Instant, quarantine: Duration, max_lease: Duration, max_groups: usize) -> Self {
        Voter {
            ballots: BTreeMap::new(),
            quarantine_until: now + quarantine,
            quarantine,
            retired: false,
            max_lease,
            max_groups,
            variant: None,
            grace: Duration::ZERO,
        }
    }

    /// For `grace` after a group becomes vacant (its promise released or run out while
    /// candidates waited), grants it only to the lowest id among the candidates that
    /// waited, or to a lower one; the others are told it is held by that id for the
    /// rest of the grace. Every waiter hears of the vacancy at once, and the lowest
    /// asks first by rank, but a higher id whose own retry timer fires at that instant
    /// could otherwise reach a voter first. Set it to the rank back-off: a lowest
    /// waiter that does not ask by then (it crashed, or cannot reach this voter) holds
    /// nobody off for longer.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// This voter running a deliberately unsafe `variant` (simulation only).
    #[doc(hidden)]
    pub fn with_variant(mut self, variant: Option<UnsafeVariant>) -> Self {
        self.variant = variant;
        self
    }

    /// Another live process claims this voter's node id: grant nothing until one
    /// quarantine after `now`, or ever again when `retire` (this process is the later
    /// one). Two processes voting under one id would be two votes, and two quorums
    /// need not share a voter any more.
    pub fn conflict(&mut self, now: Instant, retire: bool) {
        self.quarantine_until = self.quarantine_until.max(now + self.quarantine);
        self.retired |= retire;
    }

    /// Raises a group's highest term to `term`: from the voter's own persisted state
    /// after a restart. (Never from gossip: a term no quorum backs is only a hint.)
    pub fn learn(&mut self, group: &str, term: Term) {
        if let Some(b) = self.ballot(group) {
            b.highest = b.highest.max(term);
        }
    }

    /// Whether `a` and `b` are the same holder: the same process life, or under the
    /// unsafe `bare-id-promise` variant the same node id.
    fn same(&self, a: Process, b: Process) -> bool {
        match self.variant {
            Some(UnsafeVariant::BareIdPromise) => a.id == b.id,
            _ => a == b,
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
        candidate: Process,
        term: Term,
        lease: Duration,
    ) -> Verdict {
        self.decide(now, group, candidate, term, lease, false)
    }

    /// Decides on a leader's renewal of its leadership of `group` at `term`: granted
    /// unless another process holds an unexpired promise, whatever the highest term
    /// (see the module documentation). Only the leader's own process sends renewals.
    pub fn renew(
        &mut self,
        now: Instant,
        group: &str,
        candidate: Process,
        term: Term,
        lease: Duration,
    ) -> Verdict {
        self.decide(now, group, candidate, term, lease, true)
    }

    fn decide(
        &mut self,
        now: Instant,
        group: &str,
        candidate: Process,
        term: Term,
        lease: Duration,
        renewing: bool,
    ) -> Verdict {
        if now < self.quarantine_until || self.retired {
            let remaining = match self.retired {
                true => self.quarantine,
                false => self.quarantine_until - now,
            };
            // Told, with the others, when the quarantine ends: they then go by rank.
            let retired = self.retired;
            if let Some(b) = self.ballot(group).filter(|_| !retired) {
                if b.waiters.len() < MAX_WAITERS && !b.waiters.contains(&candidate) {
                    b.waiters.push(candidate);
                }
                b.quarantine_waiters = true;
            }
            return Verdict::Denied(Denial::Quarantine { remaining });
        }
        let (max_lease, variant) = (self.max_lease, self.variant);
        let held = self
            .ballots
            .get(group)
            .and_then(|b| b.promise)
            .filter(|p| p.until > now && !self.same(p.holder, candidate));
        let Some(b) = self.ballot(group) else {
            return Verdict::Denied(Denial::TooManyGroups);
        };
        let reserved = b
            .reserved
            .filter(|&(id, until)| now < until && candidate.id > id);
        let denial = match (held, reserved) {
            (Some(p), _) => Some((p.holder.id, p.term, p.until - now)),
            (None, Some((id, until))) => Some((id, b.highest, until - now)),
            (None, None) => None,
        };
        if let Some((holder, term, remaining)) = denial {
            if b.waiters.len() < MAX_WAITERS && !b.waiters.contains(&candidate) {
                b.waiters.push(candidate);
            }
            return Verdict::Denied(Denial::Held {
                holder,
                term,
                remaining,
            });
        }
        if !term_allowed(b, candidate, term, renewing, variant) {
            return Verdict::Denied(Denial::StaleTerm { highest: b.highest });
        }
        let lease = lease.min(max_lease);
        let raised = term > b.highest;
        b.highest = b.highest.max(term);
        // Those turned away before still wait (now for this holder); only the
        // candidate granted stops waiting.
        b.waiters.retain(|w| *w != candidate);
        b.reserved = None;
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
    pub fn release(
        &mut self,
        now: Instant,
        group: &str,
        holder: Process,
        term: Term,
    ) -> Option<Vec<Process>> {
        let bare = self.variant == Some(UnsafeVariant::BareIdPromise);
        let grace = self.grace;
        let b = self.ballots.get_mut(group)?;
        match b.promise {
            Some(p)
                if (p.holder == holder || (bare && p.holder.id == holder.id)) && p.term == term =>
            {
                b.promise = None;
                Some(vacate(b, now, grace))
            }
            _ => None,
        }
    }

    /// Puts candidates back on `group`'s list of those turned away (after a release
    /// that told only some of them).
    /// They were not told of the vacancy, so none of them holds its reservation.
    pub fn keep_waiting(&mut self, group: &str, waiters: Vec<Process>) {
        if let Some(b) = self.ballots.get_mut(group) {
            if let Some((id, _)) = b.reserved {
                if waiters.iter().any(|w| w.id == id) {
                    b.reserved = None;
                }
            }
            for w in waiters {
                if b.waiters.len() < MAX_WAITERS && !b.waiters.contains(&w) {
                    b.waiters.push(w);
                }
            }
        }
    }

    /// When the first promise (or the restart quarantine) some turned-away candidate
    /// waits on runs out.
    pub fn next_lapse(&self) -> Option<Instant> {
        self.ballots
            .values()
            .filter(|b| !b.waiters.is_empty())
            .filter_map(|b| self.lapse_of(b))
            .min()
    }

    /// When what `b`'s waiters wait on ends: its promise, or else the restart
    /// quarantine still running (a retired voter frees nothing).
    ///
    /// A reservation that runs out unused (its lowest waiter crashed, or cannot reach
    /// this voter) is a vacancy too: those it turned away are told, and the lowest of
    /// them gets the next one. Waiters put back after a release wait for the next
    /// promise.
    fn lapse_of(&self, b: &Ballot) -> Option<Instant> {
        if let Some(p) = b.promise {
            return Some(p.until);
        }
        if self.retired {
            return None;
        }
        let quarantine = Some(self.quarantine_until).filter(|_| b.quarantine_waiters);
        let reserved = b.reserved.map(|(_, until)| until);
        // Both over: every waiter can be told.
        quarantine.max(reserved)
    }

    /// Promises that ran out by `now` while candidates waited (the holder crashed,
    /// stalled or was cut off), and groups candidates asked for during the restart
    /// quarantine once it ends: each group, its last holder (if any) and the candidates
    /// turned away, to be told the group is vacant. On this voter's clock, the same for
    /// every waiter, so their rank back-offs keep the lowest id first whatever their
    /// own clocks' drift.
    pub fn lapsed(&mut self, now: Instant) -> Vec<(String, Option<NodeId>, Vec<Process>)> {
        let due: Vec<String> = self
            .ballots
            .iter()
            .filter(|(_, b)| !b.waiters.is_empty())
            .filter(|(_, b)| self.lapse_of(b).is_some_and(|t| t <= now))
            .map(|(g, _)| g.clone())
            .collect();
        let mut out = Vec::new();
        for g in due {
            let Some(b) = self.ballots.get_mut(&g) else {
                continue;
            };
            let holder = match b.promise.take() {
                Some(p) => Some(p.holder.id),
                // The lowest waiter the group was kept for did not take it.
                None => b.reserved.map(|(id, _)| id),
            };
            let waiters = vacate(b, now, self.grace);
            out.push((g, holder, waiters));
        }
        out
    }

    /// Whether the voter is still in its restart quarantine at `now` (it may have
    /// promised before it restarted, so it cannot say who holds a group).
    pub fn quarantined(&self, now: Instant) -> bool {
        now < self.quarantine_until || self.retired
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

/// Frees `b` of its promise at `now`: reserves it for its lowest waiting id for
/// `grace`, and returns the waiters to be told.
fn vacate(b: &mut Ballot, now: Instant, grace: Duration) -> Vec<Process> {
    let waiters = std::mem::take(&mut b.waiters);
    b.quarantine_waiters = false;
    let lowest = waiters.iter().map(|w| w.id).min();
    b.reserved = lowest
        .filter(|_| !grace.is_zero())
        .map(|id| (id, now + grace));
    waiters
}

/// Whether `candidate` may have `term` for a new leadership (above every term granted
/// before) or for a renewal (any term: see the module documentation). Under the unsafe
/// `bare-majority-renewal` variant a renewal needs the highest term, as a new request
/// would: a voter a rival's failed round took is then lost to the leader for good.
fn term_allowed(
    b: &Ballot,
    candidate: Process,
    term: Term,
    renewing: bool,
    variant: Option<UnsafeVariant>,
) -> bool {
    match (renewing, variant) {
        (true, Some(UnsafeVariant::BareMajorityRenewal)) => {
            term == b.highest && b.promise.is_some_and(|p| p.holder == candidate)
        }
        (true, _) => true,
        // The same request again (a repeat after a vacancy notice, a duplicate frame):
        // the same answer.
        (false, _) => {
            term > b.highest
                || (term == b.highest
                    && b.promise
                        .is_some_and(|p| p.holder == candidate && p.term == term))
        }
    }
}

#[cfg(test)]
#[path = "voter_tests.rs"]
mod tests;
