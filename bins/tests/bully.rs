//! The Bully rule on real processes: when a leadership changes hands, the next leader
//! is the lowest-id live candidate that can reach a quorum of voters, given that it
//! has been running steadily, and the network unchanged, for a restart quarantine and
//! a lease (the rule `netsim/src/bully.rs` checks in the simulator).
//!
//! Five `quorate node --json --campaign g` processes (voters 1–5, LAN preset), each in
//! its own network namespace as in `jepsen.rs`, elect a leader. Then, each time after
//! the cluster has been steady for longer than quarantine + lease (every process seen
//! up by every other, every ended node seen gone by all, the leader unchanged), the
//! leader is `kill -9`ed or stopped with SIGTERM (it resigns and releases its voters,
//! then leaves), or the nodes that are down are started again. Leadership is not
//! preemptive: a restarted lower id does not depose a live leader, so each vacancy has
//! its own lowest live candidate. For every vacancy the first new leader must be that
//! candidate; the checker of `jepsen/checker.rs` also holds (no overlapping leaders,
//! terms rising).
//!
//! The second test runs the same plan with every node under the unsafe
//! `--unsafe-variant highest-first` (the highest id asks first at a vacancy: safe, but
//! against the rule) and requires the check to catch it.
//!
//! Needs root, `ip` and `nft` (see `jepsen.rs`):
//! `cargo test -p quorate-cli --test bully -- --nocapture`.

#[path = "jepsen/checker.rs"]
#[allow(dead_code)] // the jepsen harness; jepsen.rs uses all of it
mod checker;
#[path = "jepsen/cluster.rs"]
#[allow(dead_code)] // the jepsen harness; jepsen.rs uses all of it
mod cluster;
#[path = "jepsen/net.rs"]
#[allow(dead_code)] // the jepsen harness; jepsen.rs uses all of it
mod net;
#[path = "jepsen/setup.rs"]
mod setup;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use cluster::{now_ms, Cluster, Features, Ms, Options, GROUP, NODES};
use setup::{exclusive, require_root_and_tools};

/// One step of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `kill -9` the leader.
    Crash,
    /// SIGTERM the leader: it resigns, releases its voters and leaves.
    Resign,
    /// Start again every node id that is down.
    Restart,
}

/// Three crashes (the second with the lowest id already down, leaving exactly a
/// quorum of voters) and two resignations, each with its own lowest live candidate.
const PLAN: [Step; 8] = [
    Step::Crash,
    Step::Crash,
    Step::Restart,
    Step::Crash,
    Step::Restart,
    Step::Resign,
    Step::Restart,
    Step::Resign,
];

/// A new leader must be elected this soon after a vacancy (generous: a crash is
/// followed by a new leader about a lease after the last renewal).
const ELECTED_WITHIN: Duration = Duration::from_secs(15);
/// How long the cluster may take to become steady again.
const STEADY_WITHIN: Duration = Duration::from_secs(45);

/// The rule's settling time for the LAN preset: a restart quarantine and a lease.
fn settle() -> Duration {
    let e = quorate::Config::lan().election;
    e.quarantine + e.timing.lease
}

/// One vacancy and who filled it.
#[derive(Debug)]
struct Vacancy {
    how: Step,
    /// The leader that crashed or resigned.
    old: String,
    /// The node ids running, settled, when it happened.
    live: Vec<u64>,
    /// The lowest of them: the rule's next leader.
    expected: u64,
    elected: u64,
    elected_name: String,
    term: u64,
    /// From the kill or SIGTERM to the new leader's `leadership_acquired`.
    took_ms: Ms,
}

impl Vacancy {
    fn holds(&self) -> bool {
        self.elected == self.expected
    }
}

/// The first `leadership_acquired` of the group by another process than `old`, read
/// after `after`: (serial, its `ts_ms`, term).
fn first_acquired(c: &Cluster, old: usize, after: Ms) -> Option<(usize, Ms, u64)> {
    c.instances
        .iter()
        .filter(|i| i.serial != old)
        .filter_map(|i| {
            let lines = i.lines.lock().unwrap();
            let l = lines.iter().find(|l| {
                l.recv > after && l.v["group"] == GROUP && l.v["event"] == "leadership_acquired"
            })?;
            Some((i.serial, l.v["ts_ms"].as_f64()?, l.v["term"].as_u64()?))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Runs the plan; stops at the first vacancy that breaks the rule when `stop_early`.
/// Returns the vacancies and the safety checker's report.
fn run_plan(c: &mut Cluster, stop_early: bool) -> Result<Vec<Vacancy>> {
    let steady_for = settle() + Duration::from_secs(1);
    let mut vacancies = Vec::new();
    for (i, step) in PLAN.iter().enumerate() {
        let leader = c
            .wait_steady(steady_for, STEADY_WITHIN)
            .with_context(|| format!("before step {} ({step:?})", i + 1))?;
        if *step == Step::Restart {
            let down: Vec<u64> = (1..=NODES)
                .filter(|id| !c.instances[c.current[id]].running())
                .collect();
            c.note(format!("step {}: restart {down:?}", i + 1));
            for id in down {
                c.spawn(id, false, 1.0)?;
            }
            continue;
        }
        let old = c.instances[leader].name();
        let old_id = c.instances[leader].id;
        let live: Vec<u64> = (1..=NODES)
            .filter(|id| *id != old_id && c.instances[c.current[id]].running())
            .collect();
        let expected = *live.first().context("no live candidate left")?;
        c.note(format!(
            "step {}: {step:?} leader {old}; live candidates {live:?}, the rule's next \
             leader: node {expected}",
            i + 1
        ));
        let at = match step {
            Step::Crash => {
                let at = now_ms();
                c.kill(leader)?;
                at
            }
            _ => c.terminate(leader, Duration::from_secs(10))?,
        };
        let end = Instant::now() + ELECTED_WITHIN;
        let (serial, ts, term) = loop {
            if let Some(found) = first_acquired(c, leader, at) {
                break found;
            }
            if Instant::now() >= end {
                bail!("no new leader within {ELECTED_WITHIN:?} of the {step:?} of {old}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let v = Vacancy {
            how: *step,
            old,
            live,
            expected,
            elected: c.instances[serial].id,
            elected_name: c.instances[serial].name(),
            term,
            took_ms: ts - at,
        };
        c.note(format!(
            "{} leads (term {term}) {:.0} ms after the {step:?}: {}",
            v.elected_name,
            v.took_ms,
            if v.holds() {
                "as the rule says"
            } else {
                "AGAINST THE RULE"
            }
        ));
        let broke = !v.holds();
        vacancies.push(v);
        if broke && stop_early {
            break;
        }
    }
    Ok(vacancies)
}

fn table(vacancies: &[Vacancy]) -> String {
    let mut s = format!(
        "{:>3} {:>7} {:>10} {:>16} {:>9} {:>9} {:>18} {:>9}\n",
        "#", "how", "old", "live", "expected", "elected", "term", "took ms"
    );
    for (i, v) in vacancies.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>3} {:>7} {:>10} {:>16} {:>9} {:>9} {:>18} {:>9.0}{}",
            i + 1,
            format!("{:?}", v.how),
            v.old,
            format!("{:?}", v.live),
            v.expected,
            v.elected_name,
            v.term,
            v.took_ms,
            if v.holds() { "" } else { "  <- breach" }
        );
    }
    s
}

/// Starts the cluster with `node_args`, runs the plan, shuts down and checks safety.
/// Returns the vacancies and the table. When `expect_breach`, the plan stops at the
/// first breach; the logs are kept when the outcome is not the one expected.
fn scenario(node_args: &[&str], expect_breach: bool) -> Result<(Vec<Vacancy>, String)> {
    let faketime = require_root_and_tools()?;
    let wall = Instant::now();
    let opts = Options {
        node_args: node_args.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let mut c = Cluster::with_options(Features::detect()?, faketime, opts)?;
    c.start_all()?;
    let planned = run_plan(&mut c, expect_breach);
    c.shutdown()?;
    let report = checker::check(&c);
    let vacancies = match planned {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "events and stderr of every process: {}/logs",
                c.keep().display()
            );
            return Err(e);
        }
    };
    let mut summary = format!(
        "bully {node_args:?}: {} vacancies, settle {:?}, {} leaderships, wall {:.1} s\n{}",
        vacancies.len(),
        settle(),
        report.leaderships.len(),
        wall.elapsed().as_secs_f64(),
        table(&vacancies)
    );
    eprint!("{summary}");
    if !report.violations.is_empty() {
        eprintln!(
            "events and stderr of every process: {}/logs",
            c.keep().display()
        );
        for v in report.violations.iter().take(12) {
            summary += &format!("{}: {}\n", v.kind, v.text);
            summary += &checker::timeline(&c, &report, v.from - 3000.0, v.to + 3000.0);
        }
        bail!("{} safety violations:\n{summary}", report.violations.len());
    }
    if vacancies.iter().any(|v| !v.holds()) != expect_breach {
        eprintln!(
            "events and stderr of every process: {}/logs",
            c.keep().display()
        );
    }
    Ok((vacancies, summary))
}

#[test]
fn the_lowest_live_settled_candidate_takes_over_after_a_crash_or_a_resignation() -> Result<()> {
    let _alone = exclusive();
    let (vacancies, summary) = scenario(&[], false)?;
    let breaches: Vec<&Vacancy> = vacancies.iter().filter(|v| !v.holds()).collect();
    if !breaches.is_empty() {
        bail!(
            "{} of {} vacancies were not filled by the lowest live settled candidate:\n\
             {summary}",
            breaches.len(),
            vacancies.len()
        );
    }
    let planned = PLAN.iter().filter(|s| **s != Step::Restart).count();
    assert_eq!(vacancies.len(), planned, "{summary}");
    Ok(())
}

#[test]
fn the_check_catches_the_highest_id_asking_first() -> Result<()> {
    let _alone = exclusive();
    let (vacancies, summary) = scenario(&["--unsafe-variant", "highest-first"], true)?;
    if vacancies.iter().all(Vacancy::holds) {
        bail!(
            "under --unsafe-variant highest-first every vacancy went to the lowest live \
             candidate: the check does not bite\n{summary}"
        );
    }
    Ok(())
}
