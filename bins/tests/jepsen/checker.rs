//! The checker: every leadership of the group as an interval of the harness's clock,
//! and three properties over them.
//!
//! A leadership runs from its `leadership_acquired` line (the `ts_ms` it carries, a
//! moment after the node won its quorum) to the first of:
//! - its `leadership_lost` line: the `lease_until_ms` of its last lease, or the line's
//!   own `ts_ms` if earlier (a resignation);
//! - with `--renewals`, the `lease_until_ms` of its last `leadership_acquired` or
//!   `leadership_renewed` line (a leader that went silent holds no longer than that);
//! - the moment its process was killed and reaped: a dead process holds nothing.
//!   Without `--renewals` a killed leader's renewed deadline is unknown, and "kill +
//!   one lease" would overstate it: the voters' last promises, given at a renewal up
//!   to L/3 before the kill, can run out and elect a successor well before that. A
//!   stopped leader needs no such bound: when continued it reports `leadership_lost`
//!   with its last deadline (property 3 checks that it does so first).
//!
//! A process's `ts_ms` and `lease_until_ms` are on its own clock. Every process but
//! one run under libfaketime shares the harness's clock. A faked one runs at a known
//! rate r from some origin, so harness time = t / r + c; c is the largest value no
//! line contradicts (no line is received before it was printed): the minimum over its
//! lines of receipt − ts / r, exact to within the fastest pipe delay.
//!
//! Properties: (1) no two processes' leaderships overlap (a duplicate of an id is
//! another process); (2) each leadership's term is above that of every leadership that
//! started before it, and a renewal keeps its term; (3) a process continued after a
//! SIGSTOP while it led reports `leadership_lost` before anything else about the group.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::cluster::{Cluster, Instance, Ms, GROUP};

/// One leadership of the group.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub serial: usize,
    pub name: String,
    pub term: u64,
    pub start: Ms,
    pub end: Ms,
    pub why: String,
}

/// One broken property.
#[derive(Clone, Debug)]
pub struct Violation {
    pub kind: &'static str,
    pub from: Ms,
    pub to: Ms,
    pub text: String,
}

/// What the checker found.
pub struct Report {
    pub leaderships: Vec<Leadership>,
    pub violations: Vec<Violation>,
    /// The smallest gap between a leadership's end and the next one's start, in
    /// another process: how near the run came to an overlap.
    pub closest_handover: Option<String>,
}

/// A process's clock mapped onto the harness's.
struct Clock {
    rate: f64,
    offset: f64,
}

impl Clock {
    fn of(inst: &Instance) -> Clock {
        if inst.rate == 1.0 {
            return Clock {
                rate: 1.0,
                offset: 0.0,
            };
        }
        let lines = inst.lines.lock().unwrap();
        let offset = lines
            .iter()
            .filter_map(|l| Some(l.recv - l.v["ts_ms"].as_f64()? / inst.rate))
            .fold(f64::INFINITY, f64::min);
        Clock {
            rate: inst.rate,
            offset: if offset.is_finite() { offset } else { 0.0 },
        }
    }

    fn at(&self, t: f64) -> Ms {
        t / self.rate + self.offset
    }

    fn field(&self, v: &Value, key: &str) -> Option<Ms> {
        v[key].as_f64().map(|t| self.at(t))
    }
}

/// Checks a finished run (every process killed and read to the end).
pub fn check(cluster: &Cluster) -> Report {
    check_processes(&cluster.instances, cluster.features.renewals, cluster.t0)
}

/// Checks the recorded `instances`; `renewals`: whether they printed every renewal;
/// `t0`: the run's start (for naming times).
pub fn check_processes(instances: &[Instance], renewals: bool, t0: Ms) -> Report {
    let mut leaderships = Vec::new();
    let mut violations = Vec::new();
    for inst in instances {
        leaderships_of(inst, renewals, &mut leaderships, &mut violations);
        resumed_leaders(inst, &mut violations);
    }
    leaderships.sort_by(|a, b| a.start.total_cmp(&b.start));
    overlaps(&leaderships, &mut violations);
    terms(&leaderships, &mut violations);
    let closest_handover = leaderships
        .windows(2)
        .filter(|w| w[0].serial != w[1].serial && w[1].start >= w[0].end)
        .min_by(|a, b| (a[1].start - a[0].end).total_cmp(&(b[1].start - b[0].end)))
        .map(|w| {
            let at = (w[1].start - t0) / 1000.0;
            format!(
                "{:.1} ms ({} term {} to {} term {} at {at:.3} s)",
                w[1].start - w[0].end,
                w[0].name,
                w[0].term,
                w[1].name,
                w[1].term
            )
        });
    Report {
        leaderships,
        violations,
        closest_handover,
    }
}

/// The group's leadership lines of `inst`, in the order printed.
fn group_lines(inst: &Instance) -> Vec<Value> {
    let lines = inst.lines.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.v["group"] == GROUP)
        .map(|l| l.v.clone())
        .collect()
}

struct Open {
    term: u64,
    start: Ms,
    lease: Ms,
}

fn leaderships_of(
    inst: &Instance,
    renewals: bool,
    out: &mut Vec<Leadership>,
    violations: &mut Vec<Violation>,
) {
    let clock = Clock::of(inst);
    let mut open: Option<Open> = None;
    let close = |o: Open, end: Ms, why: String, out: &mut Vec<Leadership>| {
        let end = if renewals { end.min(o.lease) } else { end };
        out.push(Leadership {
            serial: inst.serial,
            name: inst.name(),
            term: o.term,
            start: o.start,
            end: end.max(o.start),
            why,
        });
    };
    for v in group_lines(inst) {
        let term = v["term"].as_u64().unwrap_or(0);
        let ts = clock.field(&v, "ts_ms").unwrap_or(0.0);
        let lease = clock.field(&v, "lease_until_ms");
        match v["event"].as_str().unwrap_or("") {
            "leadership_acquired" => {
                if let Some(o) = open.take() {
                    close(o, ts, "acquired again".into(), out);
                }
                let lease = lease.unwrap_or(f64::INFINITY);
                open = Some(Open {
                    term,
                    start: ts,
                    lease,
                });
            }
            "leadership_renewed" => match &mut open {
                Some(o) if o.term == term => o.lease = lease.unwrap_or(o.lease),
                Some(o) => violations.push(Violation {
                    kind: "renewal changed the term",
                    from: ts,
                    to: ts,
                    text: format!("{} renewed term {} as term {term}", inst.name(), o.term),
                }),
                None => violations.push(Violation {
                    kind: "renewal changed the term",
                    from: ts,
                    to: ts,
                    text: format!("{} renewed term {term} while not leading", inst.name()),
                }),
            },
            "leadership_lost" => {
                if let Some(o) = open.take() {
                    let end = lease.map_or(ts, |l| l.min(ts));
                    let reason = v["reason"].as_str().unwrap_or("?");
                    close(o, end, format!("lost: {reason}"), out);
                }
            }
            _ => {}
        }
    }
    if let Some(o) = open {
        let end = inst.ended.unwrap_or(f64::INFINITY);
        close(o, end, "killed while leading".into(), out);
    }
}

/// Property 3 for every SIGSTOP/SIGCONT of `inst` during which it led.
fn resumed_leaders(inst: &Instance, violations: &mut Vec<Violation>) {
    let clock = Clock::of(inst);
    let lines = group_lines(inst);
    let printed = |v: &Value| clock.field(v, "ts_ms").unwrap_or(0.0);
    for stop in &inst.stops {
        let Some(cont) = stop.cont else { continue };
        // Nothing is printed while stopped, so any point in between splits the lines.
        let mid = (stop.at + cont) / 2.0;
        let led = lines
            .iter()
            .filter(|v| printed(v) < mid)
            .rfind(|v| {
                v["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("leadership_"))
            })
            .is_some_and(|v| v["event"] != "leadership_lost");
        if !led {
            continue;
        }
        let first = lines.iter().find(|v| printed(v) > mid);
        let what = match first {
            Some(v) if v["event"] == "leadership_lost" => continue,
            Some(v) => format!("first reported {v}"),
            None => "reported nothing about the group afterwards".to_owned(),
        };
        violations.push(Violation {
            kind: "resumed leader did not report leadership_lost first",
            from: stop.at,
            to: cont,
            text: format!(
                "{} led when stopped, was continued after {:.0} ms and {what}",
                inst.name(),
                cont - stop.at
            ),
        });
    }
}

/// Overlaps this short are not counted: they are within what the timestamps can
/// measure. `ts_ms` is the print time truncated to a whole ms, so a start reads up to
/// 1 ms early (ends read early too, which only hides overlap); a faked process's
/// offset is fitted to whole-ms timestamps, so its times can read late by up to about
/// a ms more. A successor is elected a round trip after the old leader releases its
/// voters at its deadline, about a millisecond on these veth links, so without this
/// slack a correct handover could read as a sub-millisecond overlap.
pub const SLACK_MS: f64 = 2.0;

fn overlaps(ls: &[Leadership], violations: &mut Vec<Violation>) {
    for (i, a) in ls.iter().enumerate() {
        for b in &ls[i + 1..] {
            if b.start >= a.end - SLACK_MS {
                continue;
            }
            if a.serial == b.serial {
                continue;
            }
            let to = a.end.min(b.end);
            violations.push(Violation {
                kind: "overlapping leaders",
                from: b.start,
                to,
                text: format!(
                    "{} (term {}) and {} (term {}) both led for {:.0} ms",
                    a.name,
                    a.term,
                    b.name,
                    b.term,
                    to - b.start
                ),
            });
        }
    }
}

fn terms(ls: &[Leadership], violations: &mut Vec<Violation>) {
    let mut highest: Option<&Leadership> = None;
    for l in ls {
        if let Some(h) = highest {
            if l.term <= h.term {
                violations.push(Violation {
                    kind: "term not above an earlier leadership's",
                    from: h.start,
                    to: l.start,
                    text: format!(
                        "{} led with term {} after {} had led with term {}",
                        l.name, l.term, h.name, h.term
                    ),
                });
            }
        }
        if highest.map_or(true, |h| l.term > h.term) {
            highest = Some(l);
        }
    }
}

/// Violations counted by kind.
pub fn counts(violations: &[Violation]) -> BTreeMap<&'static str, usize> {
    let mut by = BTreeMap::new();
    for v in violations {
        *by.entry(v.kind).or_insert(0) += 1;
    }
    by
}

/// The harness's actions and the leaderships between `from` and `to`, in order.
pub fn timeline(cluster: &Cluster, report: &Report, from: Ms, to: Ms) -> String {
    let mut rows: Vec<(Ms, String)> = cluster
        .timeline
        .iter()
        .filter(|(t, _)| (from..=to).contains(t))
        .map(|(t, s)| (*t, format!("harness: {s}")))
        .collect();
    for l in &report.leaderships {
        if l.start <= to && l.end >= from {
            rows.push((l.start, format!("{} LEADS term {}", l.name, l.term)));
            rows.push((
                l.end,
                format!("{} ends term {} ({})", l.name, l.term, l.why),
            ));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = String::new();
    for (t, s) in rows {
        let _ = writeln!(out, "  {:>9.3}s  {s}", (t - cluster.t0) / 1000.0);
    }
    out
}
