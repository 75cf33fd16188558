//! Leader stability on real processes: one stalled voter of five never costs the
//! leader its lease, and neither do two while three answer. Five `quorate node
//! --campaign g --renewals` processes in their namespaces elect a leader; then, 12
//! times each, one follower voter and then two at once are SIGSTOPped for 2.5 s (well
//! past the 900 ms lease) and continued, with 1.5 s of quiet after each trial. The
//! leader must keep its term throughout: no `leadership_lost` from it, no
//! `leadership_acquired` from anyone.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::cluster::{Cluster, Features, Ms, GROUP, NODES};

/// How long each trial keeps its voters stopped.
const PAUSE: Duration = Duration::from_millis(2500);
/// Quiet time after each trial.
const QUIET: Duration = Duration::from_millis(1500);
/// Trials per phase.
const TRIALS: usize = 12;

/// What the group's leadership lines between two moments say about one leader.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// `leadership_lost` lines of the leader.
    losses: usize,
    /// `leadership_acquired` lines of any process (another leader, or the same one in
    /// a new term), and renewals of the leader in another term.
    changes: usize,
    /// Renewals of the leader.
    renewals: usize,
    /// The longest time between two of the leader's consecutive acquired/renewed lines.
    widest_gap: Ms,
    /// The highest term in any process's leadership line so far.
    term: u64,
}

fn tally(c: &Cluster, leader: usize, term: u64, from: Ms, to: Ms) -> Tally {
    let mut t = Tally::default();
    let mut last_hold: Option<Ms> = None;
    for inst in &c.instances {
        for l in inst.lines.lock().unwrap().iter() {
            let Some(ev) = l.v["event"].as_str() else {
                continue;
            };
            if l.v["group"] != GROUP || !ev.starts_with("leadership_") || l.recv > to {
                continue;
            }
            t.term = t.term.max(l.v["term"].as_u64().unwrap_or(0));
            if l.recv <= from {
                if inst.serial == leader && ev != "leadership_lost" {
                    last_hold = Some(l.recv);
                }
                continue;
            }
            let own = inst.serial == leader;
            match ev {
                "leadership_lost" if own => t.losses += 1,
                "leadership_acquired" => t.changes += 1,
                "leadership_renewed" if own => {
                    t.renewals += 1;
                    if l.v["term"].as_u64() != Some(term) {
                        t.changes += 1;
                    }
                }
                _ => {}
            }
            if own && ev != "leadership_lost" {
                if let Some(prev) = last_hold {
                    t.widest_gap = t.widest_gap.max(l.recv - prev);
                }
                last_hold = Some(l.recv);
            }
        }
    }
    t
}

/// The term of the last leadership line of `serial`.
fn term_of(c: &Cluster, serial: usize) -> u64 {
    let lines = c.instances[serial].lines.lock().unwrap();
    lines
        .iter()
        .rev()
        .find(|l| {
            l.v["group"] == GROUP
                && l.v["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("leadership_"))
        })
        .and_then(|l| l.v["term"].as_u64())
        .unwrap_or(0)
}

/// Stops `ids` together, holds them for [`PAUSE`], continues them, then [`QUIET`].
fn trial(c: &mut Cluster, ids: &[u64]) -> Result<()> {
    let serials: Vec<usize> = ids.iter().map(|id| c.current[id]).collect();
    for s in &serials {
        c.pause(*s, true)?;
    }
    std::thread::sleep(PAUSE);
    for s in &serials {
        c.pause(*s, false)?;
    }
    std::thread::sleep(QUIET);
    Ok(())
}

#[test]
fn the_leader_keeps_its_lease_while_follower_voters_stall() -> Result<()> {
    let _alone = crate::exclusive();
    let faketime = crate::require_root_and_tools()?;
    let features = Features::detect()?;
    if !features.renewals {
        bail!("`quorate node` has no --renewals: the leader's renewals cannot be seen");
    }
    let wall = std::time::Instant::now();
    let mut c = Cluster::new(features, faketime)?;
    c.start_all()?;
    // Let the first election settle (every node campaigns), then take its leader.
    std::thread::sleep(Duration::from_secs(2));
    let Some(leader) = c.wait_leader(Duration::from_secs(10)) else {
        bail!("the first leader did not hold its lease for 2 s");
    };
    let term = term_of(&c, leader);
    let lead_id = c.instances[leader].id;
    let followers: Vec<u64> = (1..=NODES).filter(|id| *id != lead_id).collect();
    c.note(format!(
        "leader {} in term {term}; stalling followers {followers:?}",
        c.instances[leader].name()
    ));
    let pairs: Vec<[u64; 2]> = [(0, 1), (2, 3), (0, 2), (1, 3), (0, 3), (1, 2)]
        .iter()
        .map(|(a, b)| [followers[*a], followers[*b]])
        .collect();

    let mut rows = Vec::new();
    for paused in [1usize, 2] {
        let from = crate::cluster::now_ms();
        for i in 0..TRIALS {
            let ids: Vec<u64> = match paused {
                1 => vec![followers[i % followers.len()]],
                _ => pairs[i % pairs.len()].to_vec(),
            };
            c.note(format!(
                "trial {}/{TRIALS} with {paused} stalled: SIGSTOP {ids:?} for {} ms",
                i + 1,
                PAUSE.as_millis()
            ));
            trial(&mut c, &ids)?;
        }
        let to = crate::cluster::now_ms();
        let start = tally(&c, leader, term, from, from).term;
        rows.push((paused, start, tally(&c, leader, term, from, to)));
    }
    c.shutdown()?;

    let mut table = format!(
        "stability: leader {} (term {term}), {} ms stops, {} ms quiet, wall {:.1} s\n\
         {:>7} {:>14} {:>12} {:>14} {:>9} {:>14} {:>17} {:>17}\n",
        c.instances[leader].name(),
        PAUSE.as_millis(),
        QUIET.as_millis(),
        wall.elapsed().as_secs_f64(),
        "trials",
        "paused voters",
        "lease losses",
        "leader changes",
        "renewals",
        "widest gap ms",
        "term start",
        "term end"
    );
    for (paused, start, t) in &rows {
        table += &format!(
            "{TRIALS:>7} {:>14} {:>12} {:>14} {:>9} {:>14.0} {:>17} {:>17}\n",
            format!("{paused} of {NODES}"),
            t.losses,
            t.changes,
            t.renewals,
            t.widest_gap,
            start,
            t.term
        );
    }
    eprint!("{table}");
    let losses: usize = rows.iter().map(|r| r.2.losses).sum();
    let changes: usize = rows.iter().map(|r| r.2.changes).sum();
    if losses > 0 || changes > 0 {
        eprintln!(
            "events and stderr of every process: {}/logs",
            c.keep().display()
        );
        bail!(
            "the leader lost its lease {losses} times and the leadership changed {changes} \
             times while at most two of five voters were stopped:\n{table}"
        );
    }
    Ok(())
}
