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

use super::lease::UnsafeVariant;
use super::tally::{Outcome, Tally};
use super::voter::{Denial, Term, Verdict};
use crate::wire::NodeId;

/// Timing of a candidacy (a subset of the election config).
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Lease asked for (`L`).
    pub lease: Duration,
    /// Time between renewals (about `L / 3`).
    pub renew_interval: Duration,
    /// Clock-rate drift bound `ρ`.
    pub drift: f64,
    /// Safety margin subtracted from every deadline.
    pub margin: Duration,
    /// Back-off per rank: the candidate of rank `r` waits `r * rank_backoff` before
    /// asking, so the lowest id tries first.
    pub rank_backoff: Duration,
    /// A round undecided after this long is abandoned and retried.
    pub round_timeout: Duration,
}

impl Timing {
    /// This timing under an unsafe `variant` (simulation only): without drift
    /// correction and margin for [`UnsafeVariant::NoDriftMargin`], unchanged otherwise.
    #[doc(hidden)]
    pub fn for_variant(&self, variant: Option<UnsafeVariant>) -> Timing {
        match variant {
            Some(UnsafeVariant::NoDriftMargin) => Timing {
                drift: 0.0,
                margin: Duration::ZERO,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// Set in the round number of a leader's renewal requests: a voter grants the same
/// term again only to a renewal (see [`super::voter::Voter::renew`]).
pub const RENEWAL: u32 = 1 << 31;

/// Whether round number `round` is a renewal's.
pub fn is_renewal(round: u32) -> bool {
    round & RENEWAL != 0
}

/// Why a leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepDown {
    /// No renewal reached a quorum before the deadline.
    LeaseExpired,
    /// The application resigned.
    Resigned,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a lease request for `term` (round `round`) to every voter.
    Request {
        /// The term.
        term: Term,
        /// Round number, echoed by answers.
        round: u32,
    },
    /// Send the round's request again to one voter (it became free mid-round).
    RequestOne {
        /// The voter.
        voter: NodeId,
        /// The term.
        term: Term,
        /// Round number.
        round: u32,
    },
    /// Tell `voter` to drop its promise at `term`.
    Release {
        /// The voter.
        voter: NodeId,
        /// The term released.
        term: Term,
    },
    /// Tell every voter to drop its promise at `term` (resignation).
    ReleaseAll {
        /// The term released.
        term: Term,
    },
    /// This node now leads with fencing token `term` until `deadline`.
    Elected {
        /// The term.
        term: Term,
        /// The leadership ends then unless renewed (this node's clock).
        deadline: Instant,
    },
    /// The leadership was extended.
    Renewed {
        /// The term.
        term: Term,
        /// The new deadline.
        deadline: Instant,
    },
    /// This node no longer leads.
    SteppedDown {
        /// The term that ended.
        term: Term,
        /// Why.
        reason: StepDown,
    },
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
        renewal: Option<(Tally, u32)>,
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
        }
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
    pub fn on_vacant(&mut self, now: Instant, voter: NodeId, rank: u32) -> Vec<Action> {
        match &mut self.phase {
            Phase::Waiting { until } => {
                *until = (*until).min(now + self.timing.rank_backoff * rank);
                Vec::new()
            }
            Phase::Asking { tally, round, .. } => vec![Action::RequestOne {
                voter,
                term: tally.term(),
                round: *round,
            }],
            Phase::Leading { .. } => Vec::new(),
        }
    }

    fn backoff(&self) -> Duration {
        self.timing.rank_backoff * self.rank
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

    /// Raises the next term asked for (a higher term was seen in gossip).
    pub fn observe_term(&mut self, term: Term) {
        self.next_term = self.next_term.max(term.saturating_add(1));
    }

    /// When [`Candidacy::on_timer`] must next run.
    pub fn next_timer(&self) -> Instant {
        match &self.phase {
            Phase::Waiting { until } => *until,
            Phase::Asking { expires, .. } => *expires,
            Phase::Leading {
                deadline, renew_at, ..
            } => (*renew_at).min(*deadline),
        }
    }

    /// Runs what is due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match &mut self.phase {
            Phase::Waiting { until } if now >= *until => vec![self.ask(now)],
            Phase::Asking { tally, expires, .. } if now >= *expires => {
                // No voter but this node answered: perhaps none heard the request, or
                // this node hears nothing (a one-way cut) while the voters promise it
                // the group round after round. Release every voter, telling the
                // candidates they turned away, and wait one round longer to let them in.
                let silent = !tally.answered_by_other_than(self.me);
                let (mut out, pause) = match silent {
                    true => (
                        vec![Action::ReleaseAll { term: tally.term() }],
                        self.timing.round_timeout,
                    ),
                    false => (release_grants(tally), Duration::ZERO),
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
            Phase::Leading { term, deadline, .. } if now >= *deadline => {
                let term = *term;
                self.phase = Phase::Waiting { until: now };
                vec![Action::SteppedDown {
                    term,
                    reason: StepDown::LeaseExpired,
                }]
            }
            Phase::Leading {
                term,
                renew_at,
                renewal,
                ..
            } if now >= *renew_at => {
                // A renewal still undecided (its answers lost) is given up for a new
                // one: renewing every L/3 leaves room for two to fail.
                let term = *term;
                self.round = (self.round + 1) & !RENEWAL;
                let round = self.round | RENEWAL;
                *renewal = Some((Tally::new(term, now, self.voters), round));
                *renew_at = now + self.timing.renew_interval;
                vec![Action::Request { term, round }]
            }
            _ => Vec::new(),
        }
    }

    fn ask(&mut self, now: Instant) -> Action {
        self.round = (self.round + 1) & !RENEWAL;
        // Every round asks a term of its own. A release names a holder and a term, and
        // may arrive after the next round's request: were the term shared, it would
        // void a promise the next round counts. And a later leadership of this node
        // (after its lease ran out) gets a fencing token of its own.
        let term = self.next_term;
        self.next_term = term.saturating_add(1);
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
        let (drift, margin) = (self.timing.drift, self.timing.margin);
        // A voter grants at most the lease asked for: a grant claiming more (malformed,
        // or hostile) counts for the lease asked only, so no deadline is set from it.
        let v = match v {
            Verdict::Granted { lease, raised } => Verdict::Granted {
                lease: lease.min(self.timing.lease),
                raised,
            },
            v => v,
        };
        // Give the round up at once when a lower id holds a voter (it goes first), or
        // when a voter has granted a higher term (this round's term cannot win it).
        let yields = match (v, self.me) {
            (Verdict::Denied(Denial::Held { holder, .. }), Some(me)) => holder < me,
            (Verdict::Denied(Denial::StaleTerm { .. }), Some(_)) => true,
            _ => false,
        };
        match &mut self.phase {
            Phase::Asking {
                tally, round: r, ..
            } if *r == round && yields => {
                let out = release_grants(tally);
                let wait = match v {
                    Verdict::Denied(Denial::Held {
                        term, remaining, ..
                    }) => {
                        self.next_term = self.next_term.max(term.saturating_add(1));
                        remaining.min(self.timing.lease * 4)
                    }
                    Verdict::Denied(Denial::StaleTerm { highest }) => {
                        self.next_term = self.next_term.max(highest.saturating_add(1));
                        // At the top of the term space no higher term exists to ask
                        // at once: retry a round later rather than spin.
                        match highest {
                            Term::MAX => self.timing.round_timeout,
                            _ => Duration::ZERO,
                        }
                    }
                    _ => Duration::ZERO,
                };
                self.phase = Phase::Waiting {
                    until: now + wait + self.backoff(),
                };
                out
            }
            Phase::Asking {
                tally, round: r, ..
            } if *r == round => match tally.record(voter, v, drift, margin) {
                Outcome::Pending => Vec::new(),
                Outcome::Won { deadline } => {
                    let term = tally.term();
                    self.phase = Phase::Leading {
                        term,
                        deadline,
                        renew_at: now + self.timing.renew_interval,
                        renewal: None,
                    };
                    vec![Action::Elected { term, deadline }]
                }
                Outcome::Lost {
                    retry_after,
                    next_term,
                } => {
                    let out = release_grants(tally);
                    self.next_term = self.next_term.max(next_term);
                    let wait = retry_after.min(self.timing.lease * 4) + self.backoff();
                    self.phase = Phase::Waiting { until: now + wait };
                    out
                }
            },
            Phase::Leading {
                term,
                deadline,
                renewal,
                ..
            } => {
                let Some((tally, _)) = renewal.as_mut().filter(|(_, r)| *r == round) else {
                    return Vec::new();
                };
                match tally.record(voter, v, drift, margin) {
                    Outcome::Won { deadline: d } => {
                        *deadline = (*deadline).max(d);
                        *renewal = None;
                        vec![Action::Renewed {
                            term: *term,
                            deadline: *deadline,
                        }]
                    }
                    // Keep leading on the grants already held; the next renewal retries.
                    Outcome::Lost { .. } => {
                        *renewal = None;
                        Vec::new()
                    }
                    Outcome::Pending => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Stops running; a leader steps down first, then releases its promises.
    pub fn resign(self) -> Vec<Action> {
        match self.phase {
            Phase::Leading { term, .. } => vec![
                Action::SteppedDown {
                    term,
                    reason: StepDown::Resigned,
                },
                Action::ReleaseAll { term },
            ],
            Phase::Asking { tally, .. } => release_grants(&tally),
            Phase::Waiting { .. } => Vec::new(),
        }
    }
}

fn release_grants(tally: &Tally) -> Vec<Action> {
    let term = tally.term();
    tally
        .granted()
        .map(|voter| Action::Release { voter, term })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a base instant for the tests only
mod tests {
    use super::*;
    use crate::election::voter::{Denial, Voter};

    fn timing() -> Timing {
        Timing {
            lease: Duration::from_millis(900),
            renew_interval: Duration::from_millis(300),
            drift: 0.01,
            margin: Duration::from_millis(10),
            rank_backoff: Duration::from_millis(50),
            round_timeout: Duration::from_millis(200),
        }
    }

    /// Three voters answering instantly; returns the actions of one request.
    fn deliver(
        c: &mut Candidacy,
        voters: &mut [Voter],
        me: NodeId,
        now: Instant,
        a: Action,
    ) -> Vec<Action> {
        let Action::Request { term, round } = a else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, v) in voters.iter_mut().enumerate() {
            let verdict = match is_renewal(round) {
                true => v.renew(now, "g", me, term, timing().lease),
                false => v.request(now, "g", me, term, timing().lease),
            };
            out.extend(c.on_verdict(now, NodeId(100 + i as u64), round, verdict));
        }
        out
    }

    /// A candidacy elected at `t0` by three fresh voters, and its deadline.
    fn elected(t0: Instant) -> (Candidacy, Vec<Voter>, Instant) {
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0);
        let req = c.on_timer(t0);
        let out = deliver(&mut c, &mut vs, NodeId(1), t0, req[0]);
        let Action::Elected { deadline, .. } = out[0] else {
            panic!("not elected: {out:?}")
        };
        (c, vs, deadline)
    }

    fn voters(t0: Instant) -> Vec<Voter> {
        (0..3)
            .map(|_| Voter::new(t0, Duration::ZERO, Duration::from_secs(5), 8))
            .collect()
    }

    #[test]
    fn lowest_rank_asks_first_wins_and_renews() {
        let t0 = Instant::now();
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0);
        assert_eq!(c.next_timer(), t0);
        let req = c.on_timer(t0);
        let out = deliver(&mut c, &mut vs, NodeId(1), t0, req[0]);
        let Action::Elected { term, deadline } = out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(term, 1);
        assert!(deadline < t0 + timing().lease);
        // Renewal at L/3 extends the deadline with the same term.
        let t1 = c.next_timer();
        assert_eq!(t1, t0 + timing().renew_interval);
        let req = c.on_timer(t1);
        assert_eq!(
            req,
            vec![Action::Request {
                term: 1,
                round: 2 | RENEWAL
            }]
        );
        let out = deliver(&mut c, &mut vs, NodeId(1), t1, req[0]);
        assert!(matches!(out[..], [Action::Renewed { term: 1, deadline: d }] if d > deadline));
    }

    #[test]
    fn higher_rank_backs_off_and_denied_candidate_waits_for_the_holder() {
        let t0 = Instant::now();
        let mut vs = voters(t0);
        let c2 = Candidacy::new(t0, timing(), 3, 2, 0);
        assert_eq!(c2.next_timer(), t0 + Duration::from_millis(100));
        // Node 1 leads; node 2 asks and is denied by all three voters.
        let mut c1 = Candidacy::new(t0, timing(), 3, 0, 0);
        let req = c1.on_timer(t0);
        deliver(&mut c1, &mut vs, NodeId(1), t0, req[0]);
        let mut c2 = Candidacy::new(t0, timing(), 3, 1, 0);
        let at = t0 + Duration::from_millis(100);
        let req = c2.on_timer(at);
        let out = deliver(&mut c2, &mut vs, NodeId(2), at, req[0]);
        assert!(
            out.is_empty(),
            "nothing granted, nothing to release: {out:?}"
        );
        // It retries when the promises end (800ms from now) plus its rank's back-off,
        // with a higher term.
        assert_eq!(c2.next_timer(), at + Duration::from_millis(800 + 50));
        let req = c2.on_timer(c2.next_timer());
        assert!(matches!(req[..], [Action::Request { term: 2, .. }]));
    }

    #[test]
    fn leader_without_renewals_steps_down_at_its_deadline() {
        let t0 = Instant::now();
        let (mut c, vs, deadline) = elected(t0);
        // Renewal requests go unanswered (partitioned from the voters).
        let mut stepped = None;
        while stepped.is_none() {
            let now = c.next_timer();
            for a in c.on_timer(now) {
                if let Action::SteppedDown { term, reason } = a {
                    stepped = Some((term, reason, now));
                }
            }
        }
        assert_eq!(stepped, Some((1, StepDown::LeaseExpired, deadline)));
        // Every voter's promise is still running when the leader gives up.
        assert!(vs.iter().all(|v| v.promise(deadline, "g").is_some()));
    }

    #[test]
    fn a_new_leadership_never_reuses_the_last_term() {
        // A leader whose renewals go unanswered steps down at its deadline; its next
        // round must ask a higher term, though the voters still hold its promises (they
        // would grant the old term again as a renewal): a fencing token names one
        // leadership only.
        let t0 = Instant::now();
        let (mut c, mut vs, _) = elected(t0);
        assert_eq!(c.leadership().map(|l| l.0), Some(1));
        let mut now = t0;
        while c.leadership().is_some() {
            now = c.next_timer();
            c.on_timer(now);
        }
        let req = c.on_timer(now);
        assert!(
            matches!(req[..], [Action::Request { term: 2, .. }]),
            "{req:?}"
        );
        let out = deliver(&mut c, &mut vs, NodeId(1), now, req[0]);
        assert!(
            matches!(out[..], [Action::Elected { term: 2, .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn a_release_overtaken_by_the_next_round_cannot_void_its_grants() {
        // Round 1 hears one grant and times out: it releases that voter and asks again
        // at once. The network delivers the new request before the release. Every
        // voter the new leader counted must still be bound by its promise.
        let t0 = Instant::now();
        let me = NodeId(1);
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0).with_id(me);
        let Action::Request { term, round } = c.on_timer(t0)[0] else {
            panic!()
        };
        let v = vs[0].request(t0, "g", me, term, timing().lease);
        assert!(c.on_verdict(t0, NodeId(100), round, v).is_empty());
        let at = c.next_timer();
        let out = c.on_timer(at);
        let released: Vec<Term> = out
            .iter()
            .filter_map(|a| match a {
                Action::Release { term, .. } => Some(*term),
                _ => None,
            })
            .collect();
        assert_eq!(released, vec![term], "{out:?}");
        let req = *out.last().unwrap();
        let Action::Request { .. } = req else {
            panic!("{out:?}")
        };
        let won = deliver(&mut c, &mut vs, me, at, req);
        assert!(matches!(won[..], [Action::Elected { .. }]), "{won:?}");
        vs[0].release("g", me, released[0]);
        for (i, v) in vs.iter().enumerate() {
            assert_eq!(
                v.promise(at, "g").map(|p| p.holder),
                Some(me),
                "voter {i} no longer bound"
            );
        }
    }

    #[test]
    fn split_round_releases_its_grants() {
        let t0 = Instant::now();
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0);
        let Action::Request { round, .. } = c.on_timer(t0)[0] else {
            panic!()
        };
        let grant = Verdict::Granted {
            lease: timing().lease,
            raised: true,
        };
        let held = Verdict::Denied(Denial::Held {
            holder: NodeId(9),
            term: 4,
            remaining: Duration::from_millis(500),
        });
        assert!(c.on_verdict(t0, NodeId(100), round, grant).is_empty());
        assert!(c.on_verdict(t0, NodeId(101), round, held).is_empty());
        let out = c.on_verdict(t0, NodeId(102), round, held);
        assert_eq!(
            out,
            vec![Action::Release {
                voter: NodeId(100),
                term: 1
            }]
        );
        assert_eq!(c.next_timer(), t0 + Duration::from_millis(500));
        assert!(matches!(
            c.on_timer(c.next_timer())[..],
            [Action::Request { term: 5, .. }]
        ));
    }

    #[test]
    fn no_drift_margin_variant_leads_for_the_whole_lease() {
        let t0 = Instant::now();
        let unsafe_timing = timing().for_variant(Some(UnsafeVariant::NoDriftMargin));
        assert_eq!(timing().for_variant(None), timing());
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, unsafe_timing, 3, 0, 0);
        let req = c.on_timer(t0);
        let out = deliver(&mut c, &mut vs, NodeId(1), t0, req[0]);
        assert_eq!(
            out,
            vec![Action::Elected {
                term: 1,
                deadline: t0 + timing().lease
            }]
        );
    }

    #[test]
    fn unanswered_round_times_out_releases_every_voter_and_retries() {
        let t0 = Instant::now();
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0).with_id(NodeId(1));
        c.on_timer(t0);
        // Its own voter's answer does not count: only other voters show it is heard.
        let grant = Verdict::Granted {
            lease: timing().lease,
            raised: true,
        };
        assert!(c.on_verdict(t0, NodeId(1), 1, grant).is_empty());
        let at = c.next_timer();
        assert_eq!(at, t0 + timing().round_timeout);
        // Voters may have granted unheard: release them all, tell those turned away.
        assert_eq!(c.on_timer(at), vec![Action::ReleaseAll { term: 1 }]);
        let retry = c.next_timer();
        assert_eq!(retry, at + timing().round_timeout);
        // With a term of its own: a late release of round 1 cannot touch round 2.
        assert_eq!(
            c.on_timer(retry),
            vec![Action::Request { term: 2, round: 2 }]
        );
    }

    #[test]
    fn a_round_answered_by_some_voter_releases_its_grants_only() {
        let t0 = Instant::now();
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0).with_id(NodeId(1));
        c.on_timer(t0);
        let grant = Verdict::Granted {
            lease: timing().lease,
            raised: true,
        };
        c.on_verdict(t0, NodeId(2), 1, grant);
        let at = c.next_timer();
        assert_eq!(
            c.on_timer(at),
            vec![
                Action::Release {
                    voter: NodeId(2),
                    term: 1
                },
                Action::Request { term: 2, round: 2 }
            ]
        );
    }

    #[test]
    fn a_renewal_nobody_answered_is_retried_at_the_next_interval() {
        let t0 = Instant::now();
        let me = NodeId(1);
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0).with_id(me);
        let req = c.on_timer(t0);
        let out = deliver(&mut c, &mut vs, me, t0, req[0]);
        let Action::Elected { deadline, .. } = out[0] else {
            panic!("{out:?}")
        };
        // The first renewal's answers are all lost.
        let t1 = t0 + timing().renew_interval;
        assert_eq!(c.next_timer(), t1);
        assert!(matches!(c.on_timer(t1)[..], [Action::Request { .. }]));
        // One interval later (still before the deadline) it asks again, and that
        // renewal extends the leadership.
        let t2 = t1 + timing().renew_interval;
        assert!(t2 < deadline);
        assert_eq!(c.next_timer(), t2);
        let req = c.on_timer(t2);
        let out = deliver(&mut c, &mut vs, me, t2, req[0]);
        assert!(
            matches!(out[..], [Action::Renewed { deadline: d, .. }] if d > deadline),
            "{out:?}"
        );
    }

    #[test]
    fn resignation_steps_down_then_releases() {
        let t0 = Instant::now();
        let mut vs = voters(t0);
        let mut c = Candidacy::new(t0, timing(), 3, 0, 0);
        let req = c.on_timer(t0);
        deliver(&mut c, &mut vs, NodeId(1), t0, req[0]);
        assert_eq!(
            c.resign(),
            vec![
                Action::SteppedDown {
                    term: 1,
                    reason: StepDown::Resigned
                },
                Action::ReleaseAll { term: 1 }
            ]
        );
    }
}
