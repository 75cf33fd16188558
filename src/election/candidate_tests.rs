//! Tests of one candidacy against voters answering at once.

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use super::*;
use crate::election::lease::UnsafeVariant;
use crate::election::voter::{Denial, Process, Voter};

/// The timing every election test uses.
pub(crate) fn timing() -> Timing {
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
            true => v.renew(now, "g", Process::new(me, 1), term, timing().lease),
            false => v.request(now, "g", Process::new(me, 1), term, timing().lease),
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
    assert_eq!(c.renewals_late(), 0, "a renewal granted at once is not late");
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
    // A voter not heard yet is released when the round would have expired.
    let expiry = at + timing().round_timeout;
    assert_eq!(c2.next_timer(), expiry);
    assert_eq!(c2.on_timer(expiry), vec![Action::ReleaseRound { term: 1 }]);
    // The voters tell it when their promises end (`Vacant`); failing that, it
    // retries a lease after its own estimate (800ms from now), plus its rank's
    // back-off, with a higher term.
    assert_eq!(c2.next_timer(), at + Duration::from_millis(800 + 900 + 50));
    let lapse = at + Duration::from_millis(800);
    assert!(c2
        .on_vacant(lapse, NodeId(100), Some(NodeId(1)), 1)
        .is_empty());
    assert_eq!(c2.next_timer(), lapse + Duration::from_millis(50));
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
    // Each unanswered renewal round counts once as late, however often it is re-asked.
    assert!((1..=3).contains(&c.renewals_late()), "{}", c.renewals_late());
    // Every voter's promise is still running when the leader gives up.
    assert!(vs.iter().all(|v| v.promise(deadline, "g").is_some()));
    // The lowest id runs again at once; those voters would grant it a new term.
    assert_eq!(c.next_timer(), deadline);
}

/// A leader whose lease ran out while a lower id runs waits until its promises have
/// run out at the voters, so the lower id, told of the vacancy, goes first.
#[test]
fn a_leader_whose_lease_ran_out_lets_a_lower_id_go_first() {
    let t0 = Instant::now();
    let mut vs = voters(t0);
    let mut c = Candidacy::new(t0, timing(), 3, 0, 0);
    let req = c.on_timer(t0);
    deliver(&mut c, &mut vs, NodeId(2), t0, req[0]);
    let (_, deadline) = c.leadership().expect("elected");
    // Node 1 runs too, and node 2's view now has it.
    c.set_lower(vec![NodeId(1)]);
    let mut now = t0;
    while c.leadership().is_some() {
        now = c.next_timer();
        c.on_timer(now);
    }
    assert_eq!(now, deadline);
    let t = timing();
    assert_eq!(c.next_timer(), deadline + t.lease + t.rank_backoff);
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
    let v = vs[0].request(t0, "g", Process::new(me, 1), term, timing().lease);
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
    vs[0].release(t0, "g", Process::new(me, 1), released[0]);
    for (i, v) in vs.iter().enumerate() {
        assert_eq!(
            v.promise(at, "g").map(|p| p.holder.id),
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
    assert_eq!(c.next_timer(), t0 + Duration::from_millis(500 + 900));
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
fn a_round_timed_out_releases_its_grants_and_its_silent_voters() {
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
            Action::ReleaseRound { term: 1 },
            Action::Request { term: 2, round: 2 }
        ]
    );
}

#[test]
fn a_renewal_nobody_answered_is_asked_again_after_a_round_timeout() {
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
    let first = c.on_timer(t1);
    let [Action::Request { round, .. }] = first[..] else {
        panic!("{first:?}")
    };
    // Half a round timeout later it asks again, in the same round (its deadline
    // counts from the first sending), and that extends the leadership.
    let t2 = t1 + timing().round_timeout / 2;
    assert!(t2 < deadline);
    assert_eq!(c.next_timer(), t2);
    assert_eq!(c.renewals_late(), 0);
    let req = c.on_timer(t2);
    assert!(
        matches!(req[..], [Action::Request { round: r, .. }] if r == round),
        "{req:?}"
    );
    assert_eq!(c.renewals_late(), 1, "asked again: one late renewal");
    let out = deliver(&mut c, &mut vs, me, t2, req[0]);
    let d = safe(t1);
    assert_eq!(
        out,
        vec![Action::Renewed {
            term: 1,
            deadline: d
        }]
    );
    assert!(d > deadline);
}

/// The deadline of a round sent at `at`.
fn safe(at: Instant) -> Instant {
    let t = timing();
    super::super::lease::leader_deadline(at, t.lease, t.drift, t.margin).unwrap()
}

#[test]
fn an_answer_after_the_deadline_cannot_extend_the_leadership() {
    let t0 = Instant::now();
    let (mut c, mut vs, deadline) = elected(t0);
    let at = t0 + timing().renew_interval;
    let req = c.on_timer(at);
    // The grants are made in time but reach the leader after its deadline, before
    // its timer ran: it steps down, it does not lead on.
    let late = deadline + Duration::from_millis(1);
    let Action::Request { term, round } = req[0] else {
        panic!("{req:?}")
    };
    let v = vs[0].renew(at, "g", Process::new(NodeId(1), 1), term, timing().lease);
    let out = c.on_verdict(late, NodeId(100), round, v);
    assert_eq!(
        out,
        vec![Action::SteppedDown {
            term: 1,
            reason: StepDown::LeaseExpired
        }]
    );
    assert_eq!(c.leadership(), None);
}

#[test]
fn a_candidate_told_stale_term_again_and_again_backs_off() {
    // Terms at their ceiling: every voter answers StaleTerm forever. The candidate
    // must not loop at network speed.
    let t0 = Instant::now();
    let mut c = Candidacy::new(t0, timing(), 3, 0, Term::MAX - 1).with_id(NodeId(1));
    let stale = Verdict::Denied(Denial::StaleTerm { highest: Term::MAX });
    let mut now = t0;
    let mut rounds = 0;
    while now < t0 + Duration::from_secs(60) {
        now = c.next_timer().max(now);
        for a in c.on_timer(now) {
            if let Action::Request { round, term } = a {
                assert_eq!(term, Term::MAX, "terms saturate, never wrap");
                rounds += 1;
                c.on_verdict(now, NodeId(100), round, stale);
            }
        }
    }
    assert!(rounds < 40, "{rounds} rounds in a minute");
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

/// A voter that turned the leader's renewal away (its restart quarantine) tells it
/// when the quarantine ends: the leader renews with it at once, in its newest renewal
/// round, instead of leaving it free for a rival until the next renewal.
#[test]
fn a_leader_told_a_voter_is_free_renews_with_it_at_once() {
    let t0 = Instant::now();
    let (mut c, _vs, _) = elected(t0);
    let voter = NodeId(102);
    // No renewal round yet: nothing to ask again.
    assert!(c.on_vacant(t0, voter, None, 0).is_empty());
    let at = c.next_timer();
    let renewal = c.on_timer(at);
    let [Action::Request { term, round }] = renewal[..] else {
        panic!("no renewal: {renewal:?}")
    };
    assert!(is_renewal(round));
    let out = c.on_vacant(at + Duration::from_millis(5), voter, None, 0);
    assert!(
        matches!(out[..], [Action::RequestOne { voter: v, term: t, round: r }]
            if v == voter && t == term && r == round),
        "{out:?}"
    );
    // Every other voter answers the renewal; that request lost, the voter is asked
    // again at the next retry, until it answers.
    let granted = Verdict::Granted {
        lease: timing().lease,
        raised: false,
    };
    for v in [100, 101] {
        c.on_verdict(at, NodeId(v), round, granted);
    }
    let retry = c.next_timer();
    assert_eq!(retry, at + timing().round_timeout / 2);
    let out = c.on_timer(retry);
    assert!(
        matches!(out[..], [Action::RequestOne { voter: v, .. }] if v == voter),
        "{out:?}"
    );
    c.on_verdict(retry, voter, round, granted);
    assert_eq!(c.next_timer(), at + timing().renew_interval, "all answered");
}

/// A renewal two voters of three answered is enough for the lease, but the third is
/// asked again before its promise runs out, so a rival cannot take it meanwhile.
#[test]
fn a_voter_that_missed_a_renewal_is_asked_again() {
    let t0 = Instant::now();
    let (mut c, mut vs, _) = elected(t0);
    let mut renew = |c: &mut Candidacy, answering: usize| {
        let at = c.next_timer();
        let renewal = c.on_timer(at);
        let [Action::Request { term, round }] = renewal[..] else {
            panic!("no renewal: {renewal:?}")
        };
        for (i, v) in vs.iter_mut().enumerate().take(answering) {
            let verdict = v.renew(at, "g", Process::new(NodeId(1), 1), term, timing().lease);
            c.on_verdict(at, NodeId(100 + i as u64), round, verdict);
        }
        (at, term, round)
    };
    renew(&mut c, 3);
    let (at, term, round) = renew(&mut c, 2);
    let retry = c.next_timer();
    assert_eq!(retry, at + timing().round_timeout / 2);
    let out = c.on_timer(retry);
    assert!(
        matches!(out[..], [Action::RequestOne { voter, term: t, round: r }]
            if voter == NodeId(102) && t == term && r == round),
        "{out:?}"
    );
}
