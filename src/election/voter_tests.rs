//! Tests of a voter's promises, vacancies and quarantine.

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use super::*;

const L: Duration = Duration::from_secs(1);
const A: Process = Process {
    id: NodeId(1),
    instance: 11,
};
const B: Process = Process {
    id: NodeId(2),
    instance: 22,
};
/// A second process running with A's id.
const A2: Process = Process {
    id: NodeId(1),
    instance: 12,
};

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
            holder: A.id,
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
    // The old holder cannot start a new leadership with its old term.
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
    let t0 = Instant::now();
    let mut v = voter(t0);
    assert!(granted(v.request(t0, "g", A, 2, L)));
    let at = t0 + L / 3;
    assert!(
        granted(v.request(at, "g", A, 2, L)),
        "the same request again, the same answer"
    );
    assert!(v.release(t0, "g", A, 2).is_some());
    assert_eq!(
        v.request(at, "g", A, 2, L),
        Verdict::Denied(Denial::StaleTerm { highest: 2 })
    );
    assert!(granted(v.renew(at, "g", A, 2, L)));
    assert!(granted(v.request(at, "g", A, 3, L)));
    assert!(!granted(v.renew(at, "g", B, 3, L)), "A holds it");
}

#[test]
fn a_second_process_with_the_same_id_is_another_candidate() {
    // A supervisor started a replacement while the first process still runs (or
    // is stalled): its requests, renewals and releases touch nothing of the
    // first one's promise.
    let t0 = Instant::now();
    let mut v = voter(t0);
    assert!(granted(v.request(t0, "g", A, 5, L)));
    let at = t0 + L / 2;
    assert!(matches!(
        v.request(at, "g", A2, 6, L),
        Verdict::Denied(Denial::Held { term: 5, .. })
    ));
    assert!(!granted(v.renew(at, "g", A2, 5, L)));
    assert_eq!(v.release(t0, "g", A2, 5), None, "not its promise");
    assert_eq!(v.promise(at, "g").map(|p| p.holder), Some(A));
    assert!(granted(v.renew(at, "g", A, 5, L)));
}

#[test]
fn bare_id_promise_variant_lets_a_twin_take_over() {
    let t0 = Instant::now();
    let mut v = voter(t0).with_variant(Some(UnsafeVariant::BareIdPromise));
    assert!(granted(v.request(t0, "g", A, 5, L)));
    assert!(granted(v.request(t0 + L / 2, "g", A2, 6, L)));
}

#[test]
fn a_leader_wins_back_a_voter_a_failed_round_took() {
    // Voter lapsed (paused), a rival's round got it at a higher term, failed and
    // released it: the leader's renewal at its own term takes it back.
    let t0 = Instant::now();
    let mut v = voter(t0);
    assert!(granted(v.request(t0, "g", A, 4, L)));
    let later = t0 + L * 2;
    assert!(granted(v.request(later, "g", B, 9, L)));
    assert!(!granted(v.renew(later, "g", A, 4, L)), "B's promise runs");
    assert!(v.release(t0, "g", B, 9).is_some());
    assert_eq!(
        v.renew(later, "g", A, 4, L),
        Verdict::Granted {
            lease: L,
            raised: false
        }
    );
    // A new leadership still needs a term above every one granted.
    assert!(!granted(v.request(later + L * 2, "g", B, 9, L)));
    // Under the old rule the leader would be told StaleTerm for good.
    let mut old = voter(t0).with_variant(Some(UnsafeVariant::BareMajorityRenewal));
    assert!(granted(old.request(t0, "g", A, 4, L)));
    assert!(granted(old.request(later, "g", B, 9, L)));
    old.release(t0, "g", B, 9);
    assert!(!granted(old.renew(later, "g", A, 4, L)));
}

#[test]
fn a_claim_on_the_voters_id_elsewhere_stops_its_grants_for_a_quarantine() {
    let t0 = Instant::now();
    let mut v = Voter::new(t0, L, Duration::from_secs(5), 8);
    let at = t0 + L;
    assert!(granted(v.request(at, "g", A, 1, L)));
    v.conflict(at, false);
    assert_eq!(
        v.request(at + L / 4, "g", B, 2, L),
        Verdict::Denied(Denial::Quarantine {
            remaining: L * 3 / 4
        })
    );
    assert!(v.quarantined(at + L / 2));
    assert!(granted(v.request(at + L * 2, "g", B, 2, L)));
    // The later of two processes with one id never votes again.
    v.conflict(at + L * 2, true);
    assert!(!granted(v.request(at + L * 9, "g", B, 3, L)));
    assert!(v.quarantined(at + L * 9));
}

#[test]
fn a_lapsed_promise_frees_its_waiters() {
    let t0 = Instant::now();
    let mut v = voter(t0);
    assert!(granted(v.request(t0, "g", A, 1, L)));
    assert_eq!(v.next_lapse(), None, "nobody waits");
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    assert_eq!(v.next_lapse(), Some(t0 + L));
    assert!(v.lapsed(t0 + L / 2).is_empty());
    assert_eq!(
        v.lapsed(t0 + L),
        vec![("g".to_owned(), Some(A.id), vec![B])]
    );
    assert_eq!(v.next_lapse(), None);
}

const C: Process = Process {
    id: NodeId(3),
    instance: 33,
};

#[test]
fn a_vacated_group_is_kept_for_its_lowest_waiter_for_the_grace() {
    let t0 = Instant::now();
    let grace = Duration::from_millis(30);
    let d = Process {
        id: NodeId(4),
        instance: 44,
    };
    let mut v = voter(t0).with_grace(grace);
    assert!(granted(v.request(t0, "g", d, 1, L)));
    // B (id 2) and C (id 3) wait; D's promise runs out: all three are told.
    assert!(!granted(v.request(t0, "g", C, 2, L)));
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    assert_eq!(
        v.lapsed(t0 + L),
        vec![("g".to_owned(), Some(d.id), vec![C, B])]
    );
    // C's retry timer fires at that very instant: the group is B's for the grace.
    let at = t0 + L + Duration::from_millis(1);
    assert_eq!(
        v.request(at, "g", C, 3, L),
        Verdict::Denied(Denial::Held {
            holder: B.id,
            term: 1,
            remaining: grace - Duration::from_millis(1),
        })
    );
    assert!(
        granted(v.request(at, "g", B, 4, L)),
        "the lowest waiter asks"
    );
    // Without a lowest waiter asking, the group is anyone's after the grace.
    let mut v = voter(t0).with_grace(grace);
    assert!(granted(v.request(t0, "g", d, 1, L)));
    assert!(!granted(v.request(t0, "g", C, 2, L)));
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    v.lapsed(t0 + L);
    assert!(!granted(v.request(t0 + L, "g", C, 3, L)));
    // C was turned away by the reservation: when it runs out unused, C is told
    // (B, the lowest, did not take the group) and the group is kept for C.
    assert_eq!(v.next_lapse(), Some(t0 + L + grace));
    assert_eq!(
        v.lapsed(t0 + L + grace),
        vec![("g".to_owned(), Some(B.id), vec![C])]
    );
    assert!(granted(v.request(t0 + L + grace, "g", C, 3, L)));
    // A leader turned away by the restart quarantine is the lowest waiter: the
    // voter is kept for its renewal.
    let mut v = Voter::new(t0, L, Duration::from_secs(5), 8).with_grace(grace);
    assert!(!granted(v.renew(t0, "g", A, 1, L)));
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    assert_eq!(v.lapsed(t0 + L), vec![("g".to_owned(), None, vec![A, B])]);
    assert!(!granted(v.request(t0 + L, "g", B, 3, L)));
    assert!(granted(v.renew(t0 + L, "g", A, 1, L)));
    // A replacement process of the holder's id waiting counts as well.
    let mut v = voter(t0).with_grace(grace);
    assert!(granted(v.request(t0, "g", A, 1, L)));
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    assert!(!granted(v.request(t0, "g", A2, 2, L)));
    v.lapsed(t0 + L);
    assert!(!granted(v.request(t0 + L, "g", B, 3, L)));
    assert!(granted(v.request(t0 + L, "g", A2, 3, L)));
}

#[test]
fn the_end_of_the_restart_quarantine_is_a_vacancy() {
    let t0 = Instant::now();
    let mut v = Voter::new(t0, L, Duration::from_secs(5), 8).with_grace(L / 10);
    assert!(matches!(
        v.request(t0, "g", C, 5, L),
        Verdict::Denied(Denial::Quarantine { .. })
    ));
    assert!(!granted(v.request(t0 + L / 2, "g", B, 5, L)));
    assert_eq!(v.next_lapse(), Some(t0 + L));
    assert_eq!(v.lapsed(t0 + L), vec![("g".to_owned(), None, vec![C, B])]);
    assert_eq!(v.next_lapse(), None);
    assert!(!granted(v.request(t0 + L, "g", C, 5, L)), "kept for B");
    assert!(granted(v.request(t0 + L, "g", B, 5, L)));
    // A retired voter frees nothing.
    let mut v = Voter::new(t0, L, Duration::from_secs(5), 8);
    v.conflict(t0, true);
    assert!(!granted(v.request(t0, "g", C, 5, L)));
    assert_eq!(v.next_lapse(), None);
}

#[test]
fn terms_saturate() {
    let t0 = Instant::now();
    let mut v = voter(t0);
    assert!(granted(v.request(t0, "g", A, Term::MAX, L)));
    assert_eq!(
        v.request(t0 + L * 2, "g", B, Term::MAX, L),
        Verdict::Denied(Denial::StaleTerm { highest: Term::MAX })
    );
}

#[test]
fn release_frees_the_group_at_once() {
    let t0 = Instant::now();
    let mut v = voter(t0);
    v.request(t0, "g", A, 1, L);
    assert!(!granted(v.request(t0, "g", B, 2, L)));
    assert_eq!(v.release(t0, "g", B, 1), None, "only the holder releases");
    assert_eq!(v.release(t0, "g", A, 2), None, "only its own term");
    assert_eq!(v.release(t0, "g", A, 1), Some(vec![B]), "B was turned away");
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
    v.learn("g", 7);
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
