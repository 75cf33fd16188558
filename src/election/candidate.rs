//! One candidacy: a node running for leadership of one group.
//!
//! Phases: waiting (back-off by rank, or until the current holder's promise ends),
//! asking (a round is out to the voters), leading (with a renewal round every
//! `renew_interval`). A round that cannot reach a quorum releases the grants it got and
//! waits as long as the denials said; a round nobody answers times out and is retried.
//! A leader that cannot renew steps down at its deadline, which lies before any voter's
//! promise ends (see [`super::lease`]), and says so first.
//!
//! The candidacy is pure: inputs are `now`, the voters' answers and timer expiries; the
//! [`Action`]s it returns are what the caller sends and reports.

use std::time::{Duration, Instant};

pub use super::action::{Action, StepDown};
use super::lease::safe_duration;
#[cfg(doc)]
use super::lease::UnsafeVariant;
use super::renewal::Renewal;
use super::tally::{Outcome, Tally};
use super::voter::{Denial, Term, Verdict};
pub use crate::config::election::Timing;
use crate::wire::NodeId;

/// Set in the round number of a leader's renewal requests: a voter grants the same
/// term again only to a renewal (see [`super::voter::Voter::renew`]).
pub const RENEWAL: u32 = 1 << 31;

/// The shortest time between two rounds of one candidacy given up for a higher term:
/// its own voter answers at once, and a candidate must never loop without time
/// passing.
pub const MIN_ROUND_GAP: Duration = Duration::from_millis(1);

/// Whether round number `round` is a renewal's.
pub fn is_renewal(round: u32) -> bool {
    round & RENEWAL != 0
}

#[derive(Clone, Debug)]
enum Phase {
    Waiting {
        until: Instant,
    },
    Asking {
        tally: Tally,
        round: u32,
        expires: Instant,
    },
    Leading {
        term: Term,
        deadline: Instant,
        renew_at: Instant,
        /// The rounds out and each voter's latest grant.
        renewal: Renewal,
        /// When the newest renewal round is asked again if it has not extended the
        /// leadership as far as it can (half a round timeout after it was last sent):
        /// answers lost to the network are asked for again well before the deadline,
        /// and only while some are missing.
        retry_at: Instant,
    },
}

/// A node's candidacy for one group.
#[derive(Clone, Debug)]
pub struct Candidacy {
    timing: Timing,
    voters: usize,
    phase: Phase,
    next_term: Term,
    round: u32,
    rank: u32,
    /// This candidate's id, when known: it yields a round at once to a lower id.
    me: Option<NodeId>,
    /// The live candidates with a lower id in this node's gossiped view, and those of
    /// them a voter said are gone (their promise ran out, or they resigned) since:
    /// the rank counts the first less the second.
    lower: Vec<NodeId>,
    gone: Vec<(NodeId, Instant)>,
    /// Lower ids a voter saw waiting that the gossiped view did not have, and when.
    /// Both lists are about one vacancy: entries older than two leases are dropped.
    extra: Vec<(NodeId, Instant)>,
    /// Since when, and until when, this candidate has been giving rounds up to lower
    /// ids holding voters (see [`Candidacy::defers_to_lower`]).
    deferring: Option<(Instant, Instant)>,
    /// Rounds in a row given up because a voter had granted a higher term: past two,
    /// each waits twice as long as the one before (see [`Candidacy::stale_wait`]).
    stale_streak: u32,
    /// A lost round some voter never answered: its term, and when to release every
    /// voter of it (the round's expiry, when answers still on their way have come).
    unheard: Option<(Term, Instant)>,
    /// Under the unsafe `gossip-terms` variant, gossiped terms raise the next term and
    /// wrap past the largest.
    gossip_terms: bool,
    /// Under the unsafe `highest-first` variant, ranks back off the other way round.
    highest_first: bool,
    /// Renewal rounds not granted within half a round timeout, and the last one
    /// counted (each round once).
    renewals_late: u64,
    late_round: Option<u32>,
}

impl Candidacy {
    /// Starts running at `now` with the given `rank` among live candidates (0 = lowest
    /// id) and the highest term known for the group.
    pub fn new(now: Instant, timing: Timing, voters: usize, rank: u32, known_term: Term) -> Self {
        let until = now + timing.rank_backoff * rank;
        Candidacy {
            timing,
            voters,
            phase: Phase::Waiting { until },
            next_term: known_term.saturating_add(1),
            round: 0,
            rank,
            me: None,
            lower: Vec::new(),
            gone: Vec::new(),
            extra: Vec::new(),
            deferring: None,
            stale_streak: 0,
            unheard: None,
            gossip_terms: false,
            highest_first: false,
            renewals_late: 0,
            late_round: None,
        }
    }

    /// Renewal rounds of this candidacy's leaderships that a quorum had not granted
    /// within half a round timeout (each asked again).
    pub fn renewals_late(&self) -> u64 {
        self.renewals_late
    }

    /// The candidacy of node `me`. A round denied because a lower id holds a voter's
    /// promise is then abandoned at once (its grants released), so two candidates that
    /// split the voters do not hold each other off until their rounds time out.
    pub fn with_id(mut self, me: NodeId) -> Self {
        self.me = Some(me);
        self
    }

    /// Updates this node's rank among the live candidates (0 = lowest id). Every wait
    /// before a new round adds `rank * rank_backoff`, so when the voters become free the
    /// lowest id asks first and the others do not split the votes.
    pub fn set_rank(&mut self, rank: u32) {
        self.rank = rank;
        self.lower.clear();
        self.gone.clear();
        self.extra.clear();
    }

    fn recount(&mut self) {
        let counted = self.lower.len() + self.extra.len();
        self.rank = counted.saturating_sub(self.gone.len()) as u32;
    }

    /// Forgets what voters said of earlier vacancies (two leases ago).
    fn forget_old(&mut self, now: Instant) {
        let horizon = self.timing.lease * 2;
        let fresh = |e: &(NodeId, Instant)| now.saturating_duration_since(e.1) < horizon;
        let before = self.gone.len() + self.extra.len();
        self.gone.retain(fresh);
        self.extra.retain(fresh);
        if self.gone.len() + self.extra.len() != before {
            self.recount();
        }
    }

    /// Updates the live candidates with a lower id, as this node's gossiped view has
    /// them; the rank is their number, less those a voter said are gone since the
    /// view last changed (views lag a crash by the failure detection time, while a
    /// voter tells of a lapsed promise at once).
    pub fn set_lower(&mut self, lower: Vec<NodeId>) {
        if lower != self.lower {
            self.lower = lower;
            self.gone.clear();
            self.extra.clear();
        }
        self.recount();
    }

    /// A voter saw these candidates waiting for the group: those with a lower id
    /// count in the rank (until this node's view changes), even if the view does not
    /// have them yet.
    pub fn waiting(&mut self, now: Instant, ids: &[NodeId]) {
        let Some(me) = self.me else { return };
        self.forget_old(now);
        for &id in ids {
            let known = self.lower.contains(&id) || self.extra.iter().any(|e| e.0 == id);
            if id < me && !known && !self.gone.iter().any(|e| e.0 == id) {
                self.extra.push((id, now));
            }
        }
        self.recount();
    }

    /// A voter said `id` no longer holds the group (its promise ran out, or it
    /// resigned): it stops counting in this node's rank until the view changes.
    pub fn gone(&mut self, now: Instant, id: NodeId) {
        self.forget_old(now);
        let counted = self.lower.contains(&id) || self.extra.iter().any(|e| e.0 == id);
        if counted && !self.gone.iter().any(|e| e.0 == id) {
            self.gone.push((id, now));
            self.recount();
        }
    }

    /// The unsafe `highest-first` variant: the highest id asks first at a vacancy
    /// (simulation only, to show the Bully checker catches it).
    #[doc(hidden)]
    pub fn highest_first_unsafe(mut self, on: bool) -> Self {
        self.highest_first = on;
        self
    }

    /// Changes the number of voters later rounds count a quorum of (the unsafe
    /// [`UnsafeVariant::GossipQuorum`] only: the voter set is otherwise fixed).
    #[doc(hidden)]
    pub fn set_voters(&mut self, voters: usize) {
        self.voters = voters;
    }

    /// This node's rank among the live candidates.
    pub fn rank(&self) -> u32 {
        self.rank
    }

    /// `voter` says the group became vacant (its holder resigned, or a rival released
    /// a lost round): a waiting candidate asks after `rank * rank_backoff` instead of
    /// waiting out the old promise; a candidate mid-round asks that voter again.
    /// `freed_of` is the holder whose promise ended (`None`: the voter's quarantine).
    pub fn on_vacant(
        &mut self,
        now: Instant,
        voter: NodeId,
        freed_of: Option<NodeId>,
        rank: u32,
    ) -> Vec<Action> {
        let wait = self.wait_for_rank(rank);
        match &mut self.phase {
            Phase::Waiting { until } => {
                *until = (*until).min(now + wait);
                Vec::new()
            }
            Phase::Asking { tally, .. } if tally.granted_by(voter) => Vec::new(),
            Phase::Asking { tally, round, .. } => {
                // Its denial (held for the promise that just ended) no longer counts.
                tally.retract(voter, freed_of);
                vec![Action::RequestOne {
                    voter,
                    term: tally.term(),
                    round: *round,
                }]
            }
            // A voter this leader's promise ran out with (its renewals lost): renew
            // with it at once, in the newest renewal round.
            Phase::Leading { term, renewal, .. } => match renewal.newest() {
                Some((round, _)) => {
                    // Asked again every half round timeout until it answers.
                    renewal.freed(voter);
                    vec![Action::RequestOne {
                        voter,
                        term: *term,
                        round,
                    }]
                }
                None => Vec::new(),
            },
        }
    }

    fn backoff(&self) -> Duration {
        self.wait_for_rank(self.rank)
    }

    /// The back-off of rank `rank`: `rank * rank_backoff`, the lowest id first (under
    /// the unsafe `highest-first` variant, the other way round).
    fn wait_for_rank(&self, rank: u32) -> Duration {
        match self.highest_first {
            true => self.timing.rank_backoff * 8u32.saturating_sub(rank),
            false => self.timing.rank_backoff * rank,
        }
    }

    /// The leadership held now: `(term, deadline)`.
    pub fn leadership(&self) -> Option<(Term, Instant)> {
        match &self.phase {
            Phase::Leading { term, deadline, .. } => Some((*term, *deadline)),
            _ => None,
        }
    }

    /// Whether a grant for `round` at `term` belongs to no live round or leadership
    /// of this candidacy (a round given up, or answered after it was decided): the
    /// caller releases it so the voter is not promised to nobody for a lease.
    pub fn stray_grant(&self, round: u32, term: Term) -> bool {
        match &self.phase {
            Phase::Asking { round: r, .. } => *r != round,
            // Never release a voter's promise for the term being led.
            Phase::Leading { term: t, .. } => *t != term,
            Phase::Waiting { .. } => true,
        }
    }

    /// Raises the next term asked for to above `term`, a term a voter backs (its
    /// persisted state). Saturates: a term never wraps.
    pub fn observe_term(&mut self, term: Term) {
        self.next_term = self.next_term.max(term.saturating_add(1));
    }

    /// The unsafe `gossip-terms` variant: a gossiped term raises the next term, and
    /// wraps past the largest (simulation only).
    #[doc(hidden)]
    pub fn observe_gossiped_term_unsafe(&mut self, term: Term) {
        self.gossip_terms = true;
        if term >= self.next_term || term == Term::MAX {
            self.next_term = term.wrapping_add(1);
        }
    }

    /// Whether a round denied by a voter a lower id holds is given up at `now`: yes,
    /// for one lease from the first such round; a lower id still not elected by then
    /// (it keeps asking, never reaching a quorum: cut off from most voters) must not
    /// hold everyone else off, and the round goes on to be counted. A pause of two
    /// leases without such a denial starts over.
    fn defers_to_lower(&mut self, now: Instant) -> bool {
        let lease = self.timing.lease;
        let since = match self.deferring {
            Some((since, last)) if now < last + lease * 2 => since,
            _ => now,
        };
        self.deferring = Some((since, now));
        now < since + lease
    }

    /// How long to wait before the next round after one given up for a higher term
    /// granted elsewhere: at once while the denial taught a higher term than the one
    /// about to be asked (`news`) and for the first two rounds in a row that did not,
    /// then a round timeout doubling each time up to four leases. A candidate told
    /// `StaleTerm` again and again with nothing to learn (terms at their ceiling, or a
    /// voter that misreports) thus backs off instead of looping.
    fn stale_wait(&mut self, news: bool) -> Duration {
        if news {
            self.stale_streak = 0;
            return MIN_ROUND_GAP;
        }
        self.stale_streak = self.stale_streak.saturating_add(1);
        match self.stale_streak {
            0..=2 => MIN_ROUND_GAP,
            k => {
                let doubled = self
                    .timing
                    .round_timeout
                    .saturating_mul(1 << (k - 3).min(16));
                doubled.min(self.timing.lease * 4)
            }
        }
    }

    /// The deadline a round sent at `sent` gives when a quorum grants the full lease.
    fn full_deadline(&self, sent: Instant) -> Instant {
        full_deadline(&self.timing, sent)
    }

    /// Whether the newest renewal round extended the leadership as far as it can.
    fn renewed_fully(&self, renewal: &Renewal, deadline: Instant) -> bool {
        renewal.newest().map_or(true, |(_, sent)| {
            let full = self.full_deadline(sent);
            deadline >= full && renewal.lapsing(sent, full).next().is_none()
        })
    }

    /// When [`Candidacy::on_timer`] must next run.
    pub fn next_timer(&self) -> Instant {
        let phase = self.phase_timer();
        self.unheard.map_or(phase, |(_, at)| at.min(phase))
    }

    fn phase_timer(&self) -> Instant {
        match &self.phase {
            Phase::Waiting { until } => *until,
            Phase::Asking { expires, .. } => *expires,
            Phase::Leading {
                deadline,
                renew_at,
                renewal,
                retry_at,
                ..
            } => {
                let retry = match self.renewed_fully(renewal, *deadline) {
                    true => *renew_at,
                    false => *retry_at,
                };
                (*renew_at).min(*deadline).min(retry)
            }
        }
    }

    /// Runs what is due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        self.forget_old(now);
        let mut out = Vec::new();
        if let Some((term, at)) = self.unheard {
            if now >= at {
                self.unheard = None;
                out.push(Action::ReleaseRound { term });
            }
        }
        out.extend(self.on_phase_timer(now));
        out
    }

    fn on_phase_timer(&mut self, now: Instant) -> Vec<Action> {
        match &self.phase {
            Phase::Waiting { until } if now >= *until => vec![self.ask(now)],
            Phase::Asking { expires, .. } if now >= *expires => self.round_timed_out(now),
            Phase::Leading { term, deadline, .. } if now >= *deadline => {
                let term = *term;
                self.lease_ran_out(now, term)
            }
            Phase::Leading { renew_at, .. } if now >= *renew_at => self.renew(now),
            Phase::Leading { retry_at, .. } if now >= *retry_at => self.retry_renewal(now),
            _ => Vec::new(),
        }
    }

    /// The round ran out of time without a decision.
    ///
    /// No voter but this node answered: perhaps none heard the request, or this node
    /// hears nothing (a one-way cut) while the voters promise it the group round after
    /// round. Release every voter, telling the candidates they turned away, and wait
    /// one round longer to let them in. A round some voters denied because another
    /// candidate holds them (a leader whose other voters are silent, say) waits for
    /// that promise: those voters tell this node when it ends (`Vacant`). Asking again
    /// at once would take this node's own voter, and any free one, away from a leader
    /// that needs them to renew.
    fn round_timed_out(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Asking { tally, .. } = &self.phase else {
            return Vec::new();
        };
        let silent = !tally.answered_by_other_than(self.me);
        let held = tally
            .held_for()
            .map(|r| r.min(self.timing.lease * 4) + self.timing.round_timeout);
        let (mut out, pause) = match silent {
            true => (
                vec![Action::ReleaseAll { term: tally.term() }],
                self.timing.round_timeout,
            ),
            false => {
                let mut out = release_grants(tally);
                if tally.unanswered() {
                    out.push(Action::ReleaseRound { term: tally.term() });
                }
                (out, held.unwrap_or_default())
            }
        };
        self.next_term = self.next_term.max(tally.next_term_hint());
        let until = now + pause + self.backoff();
        if until <= now {
            out.push(self.ask(now));
        } else {
            self.phase = Phase::Waiting { until };
        }
        out
    }

    /// Every renewal interval a new round; answers to the last few still count (see
    /// [`Renewal`]).
    fn renew(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Leading {
            term,
            renew_at,
            renewal,
            retry_at,
            ..
        } = &mut self.phase
        else {
            return Vec::new();
        };
        let term = *term;
        self.round = (self.round + 1) & !RENEWAL;
        let round = self.round | RENEWAL;
        renewal.sent(round, now);
        *renew_at = now + self.timing.renew_interval;
        *retry_at = now + self.timing.round_timeout / 2;
        vec![Action::Request { term, round }]
    }

    /// Asks the newest renewal round again: of every voter while the leadership is not
    /// extended as far as that round would, else of the voters that did not answer it.
    fn retry_renewal(&mut self, now: Instant) -> Vec<Action> {
        let Phase::Leading {
            term,
            deadline,
            renewal,
            retry_at,
            ..
        } = &mut self.phase
        else {
            return Vec::new();
        };
        *retry_at = now + self.timing.round_timeout / 2;
        let (term, deadline) = (*term, *deadline);
        match renewal.newest() {
            // Same round, so the deadline still counts from the first sending.
            Some((round, sent)) if deadline < full_deadline(&self.timing, sent) => {
                if self.late_round != Some(round) {
                    self.late_round = Some(round);
                    self.renewals_late += 1;
                }
                vec![Action::Request { term, round }]
            }
            // Renewed, but some voter did not answer: ask it again.
            Some((round, sent)) => renewal
                .lapsing(sent, full_deadline(&self.timing, sent))
                .map(|voter| Action::RequestOne { voter, term, round })
                .collect(),
            None => Vec::new(),
        }
    }

    fn ask(&mut self, now: Instant) -> Action {
        self.round = (self.round + 1) & !RENEWAL;
        // Every round asks a term of its own. A release names a holder and a term, and
        // may arrive after the next round's request: were the term shared, it would
        // void a promise the next round counts. And a later leadership of this node
        // (after its lease ran out) gets a fencing token of its own.
        let term = self.next_term;
        self.next_term = match self.gossip_terms {
            true => term.wrapping_add(1),
            false => term.saturating_add(1),
        };
        self.phase = Phase::Asking {
            tally: Tally::new(term, now, self.voters),
            round: self.round,
            expires: now + self.timing.round_timeout,
        };
        Action::Request {
            term,
            round: self.round,
        }
    }

    /// A voter's answer to round `round`.
    pub fn on_verdict(
        &mut self,
        now: Instant,
        voter: NodeId,
        round: u32,
        v: Verdict,
    ) -> Vec<Action> {
        // A voter grants at most the lease asked for: a grant claiming more (malformed,
        // or hostile) counts for the lease asked only, so no deadline is set from it.
        let v = match v {
            Verdict::Granted { lease, raised } => Verdict::Granted {
                lease: lease.min(self.timing.lease),
                raised,
            },
            v => v,
        };
        match &self.phase {
            Phase::Asking { round: r, .. } if *r == round => match self.yields(now, v) {
                true => self.give_up(now, v),
                false => self.count(now, voter, v),
            },
            Phase::Leading { .. } => self.renewal_answer(now, voter, round, v),
            _ => Vec::new(),
        }
    }

    /// Whether the round being asked is given up at once on `v`: when a voter has
    /// granted a higher term (this round's term cannot win it), or when a lower id
    /// holds a voter: it asked first (ranks), and two candidates that split the voters
    /// would otherwise hold each other off round after round. But only for a lease
    /// (see [`Candidacy::defers_to_lower`]).
    fn yields(&mut self, now: Instant, v: Verdict) -> bool {
        let lower_holds = matches!(
            (v, self.me),
            (Verdict::Denied(Denial::Held { holder, .. }), Some(me)) if holder < me
        );
        let deferring = lower_holds && self.defers_to_lower(now);
        deferring
            || matches!(
                (v, self.me),
                (Verdict::Denied(Denial::StaleTerm { .. }), Some(_))
            )
    }

    /// Gives the round up on denial `v`: releases its grants and waits.
    fn give_up(&mut self, now: Instant, v: Verdict) -> Vec<Action> {
        let Phase::Asking { tally, expires, .. } = &self.phase else {
            return Vec::new();
        };
        let out = release_grants(tally);
        self.unheard = tally.unanswered().then_some((tally.term(), *expires));
        let wait = match v {
            Verdict::Denied(Denial::Held {
                term, remaining, ..
            }) => {
                self.stale_streak = 0;
                self.next_term = self.next_term.max(term.saturating_add(1));
                remaining.min(self.timing.lease * 4)
            }
            Verdict::Denied(Denial::StaleTerm { highest }) => {
                let news = highest.saturating_add(1) > self.next_term;
                self.next_term = self.next_term.max(highest.saturating_add(1));
                self.stale_wait(news)
            }
            _ => Duration::ZERO,
        };
        self.phase = Phase::Waiting {
            until: now + wait + self.backoff(),
        };
        out
    }

    /// Counts `voter`'s answer `v` to the round being asked: won, lost or pending.
    fn count(&mut self, now: Instant, voter: NodeId, v: Verdict) -> Vec<Action> {
        let (drift, margin) = (self.timing.drift, self.timing.margin);
        let Phase::Asking { tally, expires, .. } = &mut self.phase else {
            return Vec::new();
        };
        match tally.record(voter, v, drift, margin) {
            Outcome::Pending => Vec::new(),
            Outcome::Won { deadline } => {
                let term = tally.term();
                let renewal = Renewal::new(self.voters, tally.granted(), deadline);
                self.stale_streak = 0;
                self.deferring = None;
                self.phase = Phase::Leading {
                    term,
                    deadline,
                    renew_at: now + self.timing.renew_interval,
                    renewal,
                    retry_at: now + self.timing.renew_interval,
                };
                vec![Action::Elected { term, deadline }]
            }
            Outcome::Lost {
                retry_after,
                next_term,
            } => {
                let out = release_grants(tally);
                self.unheard = tally.unanswered().then_some((tally.term(), *expires));
                self.next_term = self.next_term.max(next_term);
                // Voters that turned this node away tell it when their promise ends
                // (`Vacant`, on their clock, the same for every waiting candidate, who
                // then go by rank; each of them tells every waiter, so one Vacant of
                // five is enough). Its own estimate, on its own clock and counting
                // silent voters as free, is only the fallback, a lease later: a round
                // sent while the holder still leads can only take free voters from it
                // (their renewals lost) for a lease when its releases are lost too.
                let fallback = match retry_after.is_zero() {
                    true => Duration::ZERO,
                    false => retry_after.min(self.timing.lease * 4) + self.timing.lease,
                };
                self.phase = Phase::Waiting {
                    until: now + fallback + self.backoff(),
                };
                out
            }
        }
    }

    /// A voter's answer `v` to renewal round `round` of the leadership held.
    fn renewal_answer(
        &mut self,
        now: Instant,
        voter: NodeId,
        round: u32,
        v: Verdict,
    ) -> Vec<Action> {
        let (drift, margin) = (self.timing.drift, self.timing.margin);
        let Phase::Leading {
            term,
            deadline,
            renewal,
            ..
        } = &mut self.phase
        else {
            return Vec::new();
        };
        // An answer that comes when the deadline has passed (its timer not run yet)
        // cannot extend a leadership that is over: step down first.
        if now >= *deadline {
            let term = *term;
            return self.lease_ran_out(now, term);
        }
        let Verdict::Granted { lease, .. } = v else {
            // Keep leading on the grants already held; the next round retries.
            renewal.answered(voter);
            return Vec::new();
        };
        match renewal.granted(voter, round, lease, drift, margin) {
            Some(d) if d > *deadline => {
                *deadline = d;
                vec![Action::Renewed {
                    term: *term,
                    deadline: d,
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The leadership at `term` ran out at `now`: step down, and run again: at once
    /// when this node has the lowest id; otherwise once its promises have surely run
    /// out at the voters (a lease) plus its rank's back-off. Voters still bound to
    /// this process would grant it a new term at once (a promise does not hold off its
    /// own holder), ahead of a lower id, which hears of the vacancy only when those
    /// promises end.
    fn lease_ran_out(&mut self, now: Instant, term: Term) -> Vec<Action> {
        let wait = match self.rank {
            0 => Duration::ZERO,
            _ => self.timing.lease + self.backoff(),
        };
        self.phase = Phase::Waiting { until: now + wait };
        vec![Action::SteppedDown {
            term,
            reason: StepDown::LeaseExpired,
        }]
    }

    /// Stops running; a leader steps down first, then releases its promises.
    pub fn resign(self) -> Vec<Action> {
        // A lost round's silent voters are released now: no timer will run.
        let mut out: Vec<Action> = self
            .unheard
            .map(|(term, _)| Action::ReleaseRound { term })
            .into_iter()
            .collect();
        match self.phase {
            Phase::Leading { term, .. } => out.extend([
                Action::SteppedDown {
                    term,
                    reason: StepDown::Resigned,
                },
                Action::ReleaseAll { term },
            ]),
            Phase::Asking { tally, .. } => {
                out.extend(release_grants(&tally));
                out.push(Action::ReleaseRound { term: tally.term() });
            }
            Phase::Waiting { .. } => {}
        }
        out
    }
}

/// The deadline a round sent at `sent` gives when a quorum grants the full lease.
fn full_deadline(t: &Timing, sent: Instant) -> Instant {
    sent + safe_duration(t.lease, t.drift, t.margin).unwrap_or_default()
}

fn release_grants(tally: &Tally) -> Vec<Action> {
    let term = tally.term();
    tally
        .granted()
        .map(|voter| Action::Release { voter, term })
        .collect()
}

#[cfg(test)]
#[path = "candidate_tests.rs"]
pub(super) mod tests;
