//! The checker on recorded lines, no root needed: what it must flag and what it must
//! not (handovers a round trip apart, a faked clock, silent leaders with renewals).

use serde_json::{json, Value};

use crate::checker::{check_processes, counts, Report};
use crate::cluster::{Instance, Line, Stop};

/// The runs' origin on the harness's clock (Unix ms).
const T: f64 = 1_800_000_000_000.0;

/// One process's lines, written at real times `T + x` on a clock running at `rate`
/// from an origin `skew` ms off.
struct Rec {
    id: u64,
    rate: f64,
    skew: f64,
    lines: Vec<Line>,
}

impl Rec {
    fn new(id: u64, rate: f64, skew: f64) -> Rec {
        Rec {
            id,
            rate,
            skew,
            lines: Vec::new(),
        }
    }

    /// Whole ms on this process's clock at real time `T + x`.
    fn clock(&self, x: f64) -> f64 {
        (T + self.skew + x * self.rate).floor()
    }

    /// An event printed at `T + x`, read 0.2 ms later; `lease` is a real offset too.
    fn ev(mut self, x: f64, event: &str, term: u64, lease: Option<f64>) -> Rec {
        let mut v = json!({
            "ts_ms": self.clock(x), "node": self.id, "event": event, "group": "g", "term": term,
        });
        if let Some(l) = lease {
            v["lease_until_ms"] = json!(self.clock(l));
        }
        if event == "leadership_lost" {
            v["reason"] = json!("lease_expired");
        }
        self.lines.push(Line {
            recv: T + x + 0.2,
            v,
        });
        self
    }

    fn raw(mut self, x: f64, v: Value) -> Rec {
        self.lines.push(Line {
            recv: T + x + 0.2,
            v,
        });
        self
    }

    fn done(self, serial: usize, killed_at: f64) -> Instance {
        Instance::recorded(serial, self.id, self.rate, self.lines, T + killed_at)
    }
}

fn kinds(r: &Report) -> Vec<(&'static str, usize)> {
    counts(&r.violations).into_iter().collect()
}

#[test]
fn handovers_a_round_trip_apart_are_not_overlaps_even_on_a_faked_clock() {
    // Node 1 on a clock 0.5 % fast and 90 s ahead leads until 872.0; node 2 is elected
    // 0.3 ms later; node 1 (on the real clock now) follows it 0.5 ms after its end.
    let a = Rec::new(1, 1.005, 90_000.0)
        .ev(0.0, "leadership_acquired", 4, Some(872.0))
        .ev(700.0, "member_alive", 0, None)
        .ev(872.1, "leadership_lost", 4, Some(872.0));
    let b = Rec::new(2, 1.0, 0.0)
        .ev(872.3, "leadership_acquired", 5, Some(1744.0))
        .ev(1744.2, "leadership_lost", 5, Some(1744.0));
    let c = Rec::new(1, 1.0, 0.0).ev(1744.5, "leadership_acquired", 6, Some(2616.0));
    let all = [a.done(0, 900.0), b.done(1, 3000.0), c.done(2, 2000.0)];
    let r = check_processes(&all, false, T);
    assert_eq!(kinds(&r), vec![], "{:?}", r.violations);
    assert_eq!(r.leaderships.len(), 3);
    let faked = &r.leaderships[0];
    assert!((faked.start - T).abs() < 1.5, "{faked:?}");
    assert!((faked.end - (T + 872.0)).abs() < 1.5, "{faked:?}");
    assert_eq!(
        r.leaderships[2].end,
        T + 2000.0,
        "a killed leader ends when killed"
    );
}

#[test]
fn a_duplicate_leading_beside_its_original_is_caught() {
    // The original leads term 7 and is killed at 2000; its duplicate (same id) wins
    // term 7 too at 1000, and a faked node overlaps by 50 ms later on.
    let orig = Rec::new(3, 1.0, 0.0).ev(0.0, "leadership_acquired", 7, Some(872.0));
    let dup = Rec::new(3, 1.0, 0.0)
        .ev(1000.0, "leadership_acquired", 7, Some(1872.0))
        .ev(1872.5, "leadership_lost", 7, Some(1872.0));
    let faked = Rec::new(4, 0.995, -3_000.0)
        .ev(2000.0, "leadership_acquired", 8, Some(2872.0))
        .ev(2872.1, "leadership_lost", 8, Some(2872.0));
    let late = Rec::new(5, 1.0, 0.0).ev(2822.0, "leadership_acquired", 9, Some(3694.0));
    let all = [
        orig.done(0, 2000.0),
        dup.done(1, 5000.0),
        faked.done(2, 5000.0),
        late.done(3, 5000.0),
    ];
    let r = check_processes(&all, false, T);
    assert_eq!(
        kinds(&r),
        vec![
            ("overlapping leaders", 2),
            ("term not above an earlier leadership's", 1)
        ],
        "{:#?}",
        r.violations
    );
    let last = r
        .violations
        .iter()
        .find(|v| v.text.contains("n5#3"))
        .unwrap();
    assert!((48.0..52.0).contains(&(last.to - last.from)), "{last:?}");
}

#[test]
fn terms_must_rise_and_renewals_keep_theirs() {
    let a = Rec::new(1, 1.0, 0.0)
        .ev(0.0, "leadership_acquired", 9, Some(872.0))
        .ev(300.0, "leadership_renewed", 10, Some(1172.0))
        .ev(1172.3, "leadership_lost", 9, Some(1172.0));
    let b = Rec::new(2, 1.0, 0.0)
        .ev(1200.0, "leadership_acquired", 3, Some(2072.0))
        .ev(2072.4, "leadership_lost", 3, Some(2072.0));
    let r = check_processes(&[a.done(0, 5000.0), b.done(1, 5000.0)], true, T);
    assert_eq!(
        kinds(&r),
        vec![
            ("renewal changed the term", 1),
            ("term not above an earlier leadership's", 1)
        ],
        "{:#?}",
        r.violations
    );
}

#[test]
fn renewals_bound_a_leader_that_went_silent() {
    // Renewed until 1472, then cut off and killed at 2000; another leads from 1500.
    let lines = |rec: Rec| {
        rec.ev(0.0, "leadership_acquired", 2, Some(872.0))
            .ev(300.0, "leadership_renewed", 2, Some(1172.0))
            .ev(600.0, "leadership_renewed", 2, Some(1472.0))
    };
    let next = || Rec::new(2, 1.0, 0.0).ev(1500.0, "leadership_acquired", 3, Some(2372.0));
    let with = [
        lines(Rec::new(1, 1.0, 0.0)).done(0, 2000.0),
        next().done(1, 3000.0),
    ];
    let r = check_processes(&with, true, T);
    assert_eq!(kinds(&r), vec![], "{:#?}", r.violations);
    assert_eq!(r.leaderships[0].end, T + 1472.0);
    // Without renewals the deadline is unknown: the leader holds until it is killed.
    let without = [
        lines(Rec::new(1, 1.0, 0.0)).done(0, 2000.0),
        next().done(1, 3000.0),
    ];
    let r = check_processes(&without, false, T);
    assert_eq!(kinds(&r), vec![("overlapping leaders", 1)]);
}

#[test]
fn a_continued_leader_reports_its_loss_before_anything_else() {
    let stopped = |rec: Rec, first_lost: bool| {
        let changed = json!({"ts_ms": T + 2300.0, "node": rec.id, "event": "leader_changed",
            "group": "g", "leader": 2, "term": 5});
        let rec = rec.ev(0.0, "leadership_acquired", 4, Some(872.0));
        let rec = if first_lost {
            rec.ev(2300.0, "leadership_lost", 4, Some(1172.0))
                .raw(2300.0, changed)
        } else {
            rec.raw(2300.0, changed)
                .ev(2300.0, "leadership_lost", 4, Some(1172.0))
        };
        let mut inst = rec.done(0, 5000.0);
        inst.stops.push(Stop {
            at: T + 400.0,
            cont: Some(T + 2299.0),
        });
        inst
    };
    let r = check_processes(&[stopped(Rec::new(1, 1.0, 0.0), false)], false, T);
    assert_eq!(
        kinds(&r),
        vec![("resumed leader did not report leadership_lost first", 1)]
    );
    let r = check_processes(&[stopped(Rec::new(1, 1.0, 0.0), true)], false, T);
    assert_eq!(kinds(&r), vec![], "{:#?}", r.violations);
}
