//! A lying insider on real processes. Five honest `quorate node --json --campaign g
//! --renewals --stats-every 1` processes (voters 1–5), each in its own network
//! namespace as in `jepsen.rs`, elect a leader; then node 6, a member with a valid
//! certificate that runs for nothing, starts with the test-only
//! `--unsafe-claim-leadership g:18446744073709551615`: it gossips that it leads g at
//! term 2^64−1, which no voter granted. Once every honest node reports it as the
//! leader it stays 3 s, then leaves (SIGTERM). Later the honest leader is `kill -9`ed.
//!
//! Gossip is a hint that never raises a term, so: no two honest leaseholders overlap
//! and terms rise (the checker of `jepsen/checker.rs`); g is led by an honest node, by
//! lease and in every honest node's gossiped view, within 2 s of the liar's SIGTERM,
//! and again within the simulator's liveness bound (quarantine + 2 leases + 4 round
//! timeouts, 3.3 s) of the leader's crash; no honest leadership's term comes near
//! 2^64−1 or falls below the one before the lie (no wrap to 0); and no honest process
//! loops: in the 3 s after each of those, each uses less than 20% of a core (read
//! from `/proc/PID/stat`) and sends fewer than 200 frames per second (its `stats`
//! lines; about 20 to 30 is normal). The measured values are printed.
//!
//! The second test gives the honest nodes `--unsafe-variant gossip-terms` (voters and
//! candidates raise their terms to any gossiped one, wrapping: the behaviour the issue
//! reported) and requires these checks to fail: the leader keeps its lease while it
//! lives (a renewal needs no higher term), but once it crashed no candidate can be
//! elected and they ask round after round.
//!
//! Needs root, `ip` and `nft` (see `jepsen.rs`):
//! `cargo test -p quorate-cli --test liar -- --nocapture`.

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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use cluster::{now_ms, Cluster, Features, Ms, Options, GROUP, NODES};
use setup::{exclusive, require_root_and_tools};

/// The liar's node id: the spare one.
const LIAR: u64 = NODES + 1;
/// The term it claims.
const LIE: u64 = u64::MAX;
/// How long it stays once every honest node has heard the lie.
const HOLD: Duration = Duration::from_secs(3);
/// The bar: the group is led this soon after the liar was told to leave (SIGTERM).
const BAR: Duration = Duration::from_secs(2);
/// How long past the bar the test waits for a leader before it gives up.
const GIVE_UP: Duration = Duration::from_secs(6);
/// How long each honest process's CPU time is measured.
const CPU_WINDOW: Duration = Duration::from_secs(3);
/// The most CPU an honest process may use then, in cores.
const CPU_MAX: f64 = 0.20;
/// The most frames an honest process may send per second then. A node of five sends
/// about 20 to 30 (probes, gossip, a leader's renewals); a candidate that asks the
/// voters round after round, as the lowest one does when terms wrapped, thousands.
const FRAMES_MAX: f64 = 200.0;

/// The rule's settling time for the LAN preset: a restart quarantine and a lease.
fn settle() -> Duration {
    let e = quorate::Config::lan().election;
    e.quarantine + e.timing.lease
}

/// The clock ticks per second of `/proc/PID/stat`.
fn clock_ticks() -> Result<f64> {
    let out = net::run("getconf", &["CLK_TCK"])?;
    out.trim()
        .parse()
        .with_context(|| format!("getconf CLK_TCK said {out:?}"))
}

/// User plus system CPU time of `pid` so far, in ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The name in parentheses may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')').context("no ) in stat")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime); `rest` starts at field 3.
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// What one honest process did over a window.
#[derive(Clone, Copy, Debug)]
struct Load {
    /// CPU time over wall time: the share of one core it used.
    cpu: f64,
    /// Frames it sent per second (its `stats` lines), when it printed two.
    frames: Option<f64>,
}

/// The load of each running honest process over `window`, by node id.
fn load(c: &Cluster, window: Duration) -> Result<BTreeMap<u64, Load>> {
    let hz = clock_ticks()?;
    let mut before = Vec::new();
    for inst in c.instances.iter().filter(|i| i.running() && i.id <= NODES) {
        let pid = c.pid(inst.serial).context("no pid")?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
        if comm.trim() != "quorate" {
            bail!("pid {pid} of {} runs {comm:?}, not quorate", inst.name());
        }
        before.push((inst.serial, pid, cpu_ticks(pid)?));
    }
    let (t0, from) = (Instant::now(), now_ms());
    std::thread::sleep(window);
    let wall = t0.elapsed().as_secs_f64();
    let to = now_ms();
    let mut out = BTreeMap::new();
    for (serial, pid, ticks) in before {
        let cpu = (cpu_ticks(pid)? - ticks) as f64 / hz / wall;
        let inst = &c.instances[serial];
        let lines = inst.lines.lock().unwrap();
        let stats: Vec<(Ms, f64)> = lines
            .iter()
            .filter(|l| l.v["event"] == "stats" && (from..=to).contains(&l.recv))
            .filter_map(|l| Some((l.recv, l.v["frames_out"].as_f64()?)))
            .collect();
        let frames = match (stats.first(), stats.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => Some((b.1 - a.1) / (b.0 - a.0) * 1000.0),
            _ => None,
        };
        out.insert(inst.id, Load { cpu, frames });
    }
    Ok(out)
}

fn show(load: &BTreeMap<u64, Load>) -> String {
    load.iter()
        .map(|(id, l)| {
            let frames = l.frames.map_or("?".to_owned(), |f| format!("{f:.0}"));
            format!("n{id} {:.1}% {frames} frames/s", l.cpu * 100.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The honest nodes' leadership lines of the group: (node id, event, term, recv,
/// `lease_until_ms`).
fn leadership_lines(c: &Cluster) -> Vec<(u64, String, u64, Ms, Ms)> {
    let mut out = Vec::new();
    for inst in c.instances.iter().filter(|i| i.id <= NODES) {
        for l in inst.lines.lock().unwrap().iter() {
            let Some(ev) = l.v["event"].as_str() else {
                continue;
            };
            if l.v["group"] == GROUP && ev.starts_with("leadership_") {
                out.push((
                    inst.id,
                    ev.to_owned(),
                    l.v["term"].as_u64().unwrap_or(0),
                    l.recv,
                    l.v["lease_until_ms"].as_f64().unwrap_or(0.0),
                ));
            }
        }
    }
    out
}

/// The leader the latest `leader_changed` line of `serial` names (with its term and
/// when it was read), if any.
fn gossiped_leader(c: &Cluster, serial: usize) -> Option<(Option<u64>, u64, Ms)> {
    let lines = c.instances[serial].lines.lock().unwrap();
    let l = lines
        .iter()
        .rfind(|l| l.v["group"] == GROUP && l.v["event"] == "leader_changed")?;
    Some((l.v["leader"].as_u64(), l.v["term"].as_u64()?, l.recv))
}

/// When the group became led by an honest node at or after `from`, if it is now:
/// an honest running process holds a lease (its last leadership line is an
/// acquisition or a renewal whose lease has not run out) and every honest running
/// process's gossiped view names a running honest leader.
fn honestly_led_since(c: &Cluster, from: Ms) -> Option<Ms> {
    let now = now_ms();
    let honest: Vec<usize> = c
        .instances
        .iter()
        .filter(|i| i.running() && i.id <= NODES)
        .map(|i| i.serial)
        .collect();
    let mut since = from;
    let mut held = false;
    for &s in &honest {
        let lines = c.instances[s].lines.lock().unwrap();
        let mut last = lines.iter().filter(|l| {
            l.v["group"] == GROUP
                && l.v["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("leadership_"))
        });
        let Some(l) = last.next_back() else { continue };
        let lease = l.v["lease_until_ms"].as_f64().unwrap_or(0.0);
        if l.v["event"] != "leadership_lost" && lease > now {
            held = true;
            // Held since its acquisition (renewals keep it).
            let acquired = lines
                .iter()
                .rfind(|l| l.v["group"] == GROUP && l.v["event"] == "leadership_acquired")
                .map_or(from, |l| l.recv);
            since = since.max(acquired);
        }
    }
    if !held {
        return None;
    }
    let honest_ids: Vec<u64> = honest.iter().map(|s| c.instances[*s].id).collect();
    for &s in &honest {
        match gossiped_leader(c, s) {
            Some((Some(id), _, at)) if honest_ids.contains(&id) => since = since.max(at),
            _ => return None,
        }
    }
    Some(since)
}

/// What one run measured.
struct Outcome {
    /// Broken expectations.
    problems: Vec<String>,
    summary: String,
}

/// Runs the scenario with `node_args` for the honest nodes; the logs are kept when
/// problems are found and not `expected`, or none are and they were.
fn lying_insider(node_args: &[&str], expected: bool) -> Result<Outcome> {
    let faketime = require_root_and_tools()?;
    let features = Features::detect()?;
    if !features.renewals {
        bail!("`quorate node` has no --renewals: the leases cannot be followed");
    }
    let wall = Instant::now();
    let mut args: Vec<String> = node_args.iter().map(|s| s.to_string()).collect();
    args.extend(["--stats-every".into(), "1".into()]);
    let opts = Options {
        spares: 1,
        node_args: args,
    };
    let mut c = Cluster::with_options(features, faketime, opts)?;
    let result = lie_and_leave(&mut c);
    c.shutdown()?;
    let mut outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "events and stderr of every process: {}/logs",
                c.keep().display()
            );
            return Err(e);
        }
    };
    let report = checker::check(&c);
    for v in &report.violations {
        outcome.problems.push(format!("{}: {}", v.kind, v.text));
    }
    outcome.summary = format!(
        "liar {node_args:?}: {}, {} leaderships, wall {:.1} s",
        outcome.summary,
        report.leaderships.len(),
        wall.elapsed().as_secs_f64()
    );
    eprintln!("{}", outcome.summary);
    for p in &outcome.problems {
        eprintln!("  problem: {p}");
    }
    if outcome.problems.is_empty() == expected {
        eprintln!(
            "events and stderr of every process: {}/logs",
            c.keep().display()
        );
    }
    Ok(outcome)
}

fn lie_and_leave(c: &mut Cluster) -> Result<Outcome> {
    let mut problems = Vec::new();
    for id in 1..=NODES {
        c.spawn(id, false, 1.0)?;
    }
    let leader = c.wait_steady(settle() + Duration::from_secs(1), Duration::from_secs(60))?;
    let leader_name = c.instances[leader].name();
    let term_before = leadership_lines(c)
        .iter()
        .map(|l| l.2)
        .max()
        .context("no term")?;
    let quiet = load(c, CPU_WINDOW)?;
    c.note(format!(
        "{leader_name} leads at term {term_before}; CPU before the lie: {}",
        show(&quiet)
    ));

    // The lie, until every honest node's gossiped view has the liar leading.
    let claim = format!("{GROUP}:{LIE}");
    let liar = c.spawn_member(LIAR, &["--unsafe-claim-leadership".into(), claim])?;
    let started = c.instances[liar].started;
    let end = Instant::now() + Duration::from_secs(20);
    let honest: Vec<usize> = (1..=NODES).map(|id| c.current[&id]).collect();
    loop {
        let heard = honest.iter().all(|s| {
            gossiped_leader(c, *s)
                .is_some_and(|(l, t, at)| l == Some(LIAR) && t == LIE && at > started)
        });
        if heard {
            break;
        }
        if Instant::now() >= end {
            bail!("the honest nodes did not all report the lie within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.note(format!(
        "every honest node reports n{LIAR} leading at term {LIE}"
    ));
    let during = load(c, HOLD)?;
    c.note(format!("CPU with the liar in: {}", show(&during)));
    // Its departure starts with the signal: it announces that it leaves, lingers a
    // moment and exits.
    let departed = c.terminate(liar, Duration::from_secs(10))?;
    let exited = c.instances[liar].ended.context("the liar did not end")? - departed;
    let led_after = wait_led(c, departed, BAR, "the liar's SIGTERM", &mut problems);
    let after = load(c, CPU_WINDOW)?;
    c.note(format!("CPU after the liar left: {}", show(&after)));
    calm(&after, "after the liar left", &mut problems);
    let (lost, holders) = changes(c, started, now_ms());

    // The lie must have left no trace: when the leader fails, another takes over as
    // after any crash (with terms raised to the lie, none could).
    let bound = liveness_bound();
    let crashed = match c.leader() {
        Some(l) => {
            let at = now_ms();
            c.kill(l)?;
            Some(at)
        }
        None => None,
    };
    let failover =
        crashed.and_then(|at| wait_led(c, at, bound, "the leader's crash", &mut problems));
    let after_crash = load(c, CPU_WINDOW)?;
    c.note(format!("CPU after the crash: {}", show(&after_crash)));
    calm(&after_crash, "after the leader's crash", &mut problems);

    let lines = leadership_lines(c);
    for (id, ev, term, recv, _) in &lines {
        if *term > u64::MAX / 2 {
            problems.push(format!("n{id} reported {ev} at term {term}, near 2^64"));
        }
        if *recv > started && *term < term_before {
            problems.push(format!(
                "n{id} reported {ev} at term {term} after the lie, below the term \
                 {term_before} before it (wrapped)"
            ));
        }
    }
    let terms_after = lines.iter().map(|l| l.2).max().unwrap_or(0);
    let ms = |t: Option<Ms>| t.map_or("never".to_owned(), |ms| format!("{ms:.0} ms"));
    let summary = format!(
        "leader {leader_name} at term {term_before} before the lie, {} until the liar left; \
         the liar exited {exited:.0} ms after SIGTERM; group led by an honest node {} after \
         the SIGTERM; new leader {} after the leader's crash (bound {bound:?}); highest \
         honest term {terms_after}; CPU (of a core) before {}, with the liar {}, after it \
         left {}, after the crash {}",
        if lost == 0 && holders.is_empty() {
            "kept its lease".to_owned()
        } else {
            format!("{lost} leaderships lost and new ones: {holders:?}")
        },
        ms(led_after),
        ms(failover),
        show(&quiet),
        show(&during),
        show(&after),
        show(&after_crash),
    );
    Ok(Outcome { problems, summary })
}

/// How long a group may stay leaderless after a fault (as the simulator checks it):
/// a quarantine, two leases and four round timeouts.
fn liveness_bound() -> Duration {
    let e = quorate::Config::lan().election;
    e.quarantine + e.timing.lease * 2 + e.timing.round_timeout * 4
}

/// Waits until the group is led by an honest node (see [`honestly_led_since`]) after
/// `from`, a while past `bar`; records a problem unless that took at most `bar`.
/// Returns how long it took.
fn wait_led(
    c: &Cluster,
    from: Ms,
    bar: Duration,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Ms> {
    let end = Instant::now() + bar + GIVE_UP;
    let took = loop {
        if let Some(at) = honestly_led_since(c, from) {
            break Some(at - from);
        }
        if Instant::now() >= end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match took {
        Some(ms) if ms <= bar.as_secs_f64() * 1000.0 => {}
        Some(ms) => problems.push(format!(
            "g was led by an honest node only {ms:.0} ms after {what} (bar {bar:?})"
        )),
        None => problems.push(format!(
            "g was not led by an honest node within {:?} of {what}",
            bar + GIVE_UP
        )),
    }
    took
}

/// Records a problem for each process that used more than [`CPU_MAX`] or sent more
/// than [`FRAMES_MAX`].
fn calm(load: &BTreeMap<u64, Load>, when: &str, problems: &mut Vec<String>) {
    for (id, l) in load {
        if l.cpu > CPU_MAX {
            problems.push(format!(
                "n{id} used {:.0}% of a core in the {CPU_WINDOW:?} {when} (at most {:.0}%)",
                l.cpu * 100.0,
                CPU_MAX * 100.0
            ));
        }
        match l.frames {
            Some(f) if f <= FRAMES_MAX => {}
            Some(f) => problems.push(format!(
                "n{id} sent {f:.0} frames/s in the {CPU_WINDOW:?} {when} (at most \
                 {FRAMES_MAX}): it loops"
            )),
            None => problems.push(format!(
                "n{id} printed fewer than two stats lines in the {CPU_WINDOW:?} {when}"
            )),
        }
    }
}

/// The honest leaderships lost, and those acquired, between `from` and `to`.
fn changes(c: &Cluster, from: Ms, to: Ms) -> (usize, Vec<String>) {
    let mut lost = 0;
    let mut acquired = Vec::new();
    for (id, ev, term, recv, _) in leadership_lines(c) {
        if recv <= from || recv > to {
            continue;
        }
        match ev.as_str() {
            "leadership_lost" => lost += 1,
            "leadership_acquired" => acquired.push(format!("n{id} (term {term})")),
            _ => {}
        }
    }
    (lost, acquired)
}

#[test]
fn a_liar_at_the_largest_term_leaves_the_group_led_and_the_nodes_calm() -> Result<()> {
    let _alone = exclusive();
    let o = lying_insider(&[], false)?;
    if !o.problems.is_empty() {
        bail!("{}\n{}", o.summary, o.problems.join("\n"));
    }
    Ok(())
}

#[test]
fn the_checks_catch_gossiped_terms_raising_the_voters() -> Result<()> {
    let _alone = exclusive();
    let o = lying_insider(&["--unsafe-variant", "gossip-terms"], true)?;
    eprintln!("the checks found, as they must:\n{}", o.problems.join("\n"));
    if o.problems.is_empty() {
        bail!(
            "under --unsafe-variant gossip-terms the liar changed nothing: the checks do \
             not bite\n{}",
            o.summary
        );
    }
    Ok(())
}
