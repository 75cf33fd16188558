//! Inputs found by fuzzing (`fuzz/`, target `engine`) that crashed a node, replayed
//! against the election parts they reached.

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use std::time::{Duration, Instant};

use super::candidate::tests::timing;
use super::{Action, Candidacy, Denial, Term, Verdict};
use crate::wire::NodeId;

#[test]
fn terms_saturate_at_the_top() {
    // Found by fuzzing (target `engine`): a term of `u64::MAX` restored, gossiped or
    // named in a denial overflowed the next term to ask. Terms stop at the top
    // (every voter then refuses them) and never wrap to a reused fencing token.
    let t0 = Instant::now();
    let mut c = Candidacy::new(t0, timing(), 3, 0, Term::MAX).with_id(NodeId(2));
    c.observe_term(Term::MAX);
    let Action::Request { term, round } = c.on_timer(t0)[0] else {
        panic!()
    };
    assert_eq!(term, Term::MAX);
    let stale = Verdict::Denied(Denial::StaleTerm { highest: Term::MAX });
    c.on_verdict(t0, NodeId(100), round, stale);
    let at = c.next_timer();
    assert!(
        at > t0,
        "no term above the top: the candidate must not spin"
    );
    let Some(Action::Request { term, round }) = c.on_timer(at).last().copied() else {
        panic!()
    };
    assert_eq!(term, Term::MAX);
    let held = Verdict::Denied(Denial::Held {
        holder: NodeId(9),
        term: Term::MAX,
        remaining: Duration::from_millis(10),
    });
    let stale = Verdict::Denied(Denial::StaleTerm { highest: Term::MAX });
    c.on_verdict(at, NodeId(100), round, held);
    c.on_verdict(at, NodeId(101), round, stale);
    assert!(c.leadership().is_none());
}

#[test]
fn a_grant_longer_than_asked_counts_for_the_lease_asked() {
    // Found by fuzzing (target `engine`): voters answering `Granted(Duration::MAX)`
    // overflowed the deadline; a grant of more than the lease asked for would
    // otherwise set a deadline past every voter's promise.
    let t0 = Instant::now();
    let mut c = Candidacy::new(t0, timing(), 3, 0, 0).with_id(NodeId(1));
    let Action::Request { round, .. } = c.on_timer(t0)[0] else {
        panic!()
    };
    let grant = |lease| Verdict::Granted {
        lease,
        raised: true,
    };
    assert!(c
        .on_verdict(t0, NodeId(100), round, grant(Duration::MAX))
        .is_empty());
    let out = c.on_verdict(t0, NodeId(101), round, grant(Duration::from_secs(60)));
    let Some(Action::Elected { deadline, .. }) = out.first() else {
        panic!("{out:?}")
    };
    assert!(*deadline <= t0 + timing().lease, "{out:?}");
}
