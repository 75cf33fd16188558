//! Timeline entries to scenario steps (reading a file) and back (`show`).

use std::collections::HashSet;
use std::time::Duration;

use crate::elect::LeaderFault;
use crate::net::{Cut, NodeIdx};
use crate::scenario::{Action, Cond, Step};

use super::format::{Budget, Dur, Entry, Names};
use super::nodes::Nodes;

/// The actions a timeline entry's `do` may name.
pub const ACTIONS: &[&str] = &[
    "join",
    "join-all",
    "form",
    "crash",
    "restart",
    "restart-down",
    "start",
    "leave",
    "pause",
    "slow",
    "unslow",
    "drift",
    "campaign",
    "resign",
    "lie",
    "cut",
    "isolate",
    "mute",
    "deaf",
    "minority",
    "heal",
    "loss",
    "restart-followers",
    "pause-followers",
];

/// The conditions an `expect` may name.
pub const CONDITIONS: &[&str] = &[
    "converged",
    "detected-by-any",
    "detected-by-all",
    "leader",
    "new-leader",
    "leader-not",
];

/// The steps of one entry: its wait, action, traffic counting, mark and expectation.
pub fn steps(e: &Entry, nodes: &Nodes, group: Option<&str>) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    match (e.at, e.after) {
        (Some(_), Some(_)) => return Err("expected `at` or `after`, not both".into()),
        (Some(Dur(at)), None) => out.push(Step::RunUntil(at)),
        (None, Some(Dur(d))) => out.push(Step::Run(d)),
        (None, None) => {}
    }
    if let Some(act) = &e.act {
        out.extend(action(act, e, nodes)?);
    }
    match e.traffic.as_deref() {
        None => {}
        Some("from") => out.push(Step::TrafficFrom),
        Some("rates") => out.push(Step::TrafficRates),
        Some(t) => {
            return Err(format!(
                "expected traffic = \"from\" or \"rates\", found {t:?}"
            ))
        }
    }
    if e.mark == Some(true) {
        out.push(Step::Mark);
    }
    if let Some(c) = &e.expect {
        let within = e.within.ok_or("expected `within` with `expect`")?.0;
        out.push(Step::Until {
            cond: cond(c, e, nodes, group)?,
            within,
            metric: e.metric.clone(),
        });
    } else if e.within.is_some() || e.metric.is_some() {
        return Err("`within` and `metric` go with `expect`".into());
    }
    if out.is_empty() {
        return Err("expected at least one of at, after, do, traffic, mark, expect".into());
    }
    Ok(out)
}

fn need<T: Copy>(v: Option<T>, key: &str, act: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("expected `{key}` with do = {act:?}"))
}

fn targets(e: &Entry, nodes: &Nodes, act: &str) -> Result<Vec<NodeIdx>, String> {
    let set = e
        .node
        .as_ref()
        .ok_or_else(|| format!("expected `node` with do = {act:?}"))?;
    nodes.resolve(&set.items())
}

fn leader_fault(act: &str, e: &Entry) -> Result<Option<LeaderFault>, String> {
    Ok(Some(match act {
        "crash" => LeaderFault::Crash,
        "pause" => LeaderFault::Pause(need(e.duration, "duration", act)?.0),
        "isolate" => LeaderFault::Isolate,
        "minority" => LeaderFault::Minority,
        "mute" => LeaderFault::Mute,
        "deaf" => LeaderFault::Deaf,
        "resign" => LeaderFault::Resign,
        _ => return Ok(None),
    }))
}

fn action(act: &str, e: &Entry, nodes: &Nodes) -> Result<Vec<Step>, String> {
    let leader = e.node.as_ref().is_some_and(|n| n.is("leader"));
    if leader {
        let f = leader_fault(act, e)?
            .ok_or_else(|| format!("do = {act:?} cannot target node = \"leader\""))?;
        return Ok(vec![Step::AtLeader(f)]);
    }
    let one = |a: Action| Ok(vec![Step::Act(a)]);
    let each = |f: &dyn Fn(NodeIdx) -> Action| -> Result<Vec<Step>, String> {
        Ok(targets(e, nodes, act)?
            .into_iter()
            .map(|i| Step::Act(f(i)))
            .collect())
    };
    match act {
        "join" => each(&Action::Join),
        "join-all" => one(Action::JoinAll {
            spread: need(e.spread, "spread", act)?.0,
        }),
        "form" => one(Action::Form),
        "crash" => each(&Action::Crash),
        "restart" => each(&Action::Restart),
        "restart-down" => one(Action::RestartDown),
        "start" => start_twins(e, nodes),
        "leave" => each(&Action::Leave),
        "pause" => {
            let d = need(e.duration, "duration", act)?.0;
            each(&|node| Action::Pause { node, duration: d })
        }
        "slow" => {
            let (min, max) = (need(e.min, "min", act)?.0, need(e.max, "max", act)?.0);
            if max < min {
                return Err("expected min <= max".into());
            }
            each(&|node| Action::Slow { node, min, max })
        }
        "unslow" => each(&Action::Unslow),
        "drift" => {
            let ppm = need(e.ppm, "ppm", act)?;
            each(&|node| Action::Drift { node, ppm })
        }
        "campaign" if e.node.as_ref().is_some_and(|n| n.is("all")) => one(Action::CampaignAll),
        "campaign" => each(&Action::Campaign),
        "resign" => each(&Action::Resign),
        "lie" => {
            let term = match e.term.as_ref() {
                Some(Budget::Count(t)) => *t,
                Some(Budget::Word(w)) if w == "max" => u64::MAX,
                _ => return Err("expected `term`, a number or \"max\", with do = \"lie\"".into()),
            };
            each(&|node| Action::Lie { node, term })
        }
        "cut" | "isolate" | "mute" | "deaf" | "heal" | "loss" => network(act, e, nodes),
        "restart-followers" => Ok(vec![Step::AtLeader(LeaderFault::RestartVoters)]),
        "pause-followers" => Ok(vec![Step::AtLeader(LeaderFault::PauseOthers {
            count: need(e.count, "count", act)?,
            offset: e.offset.unwrap_or(0),
            duration: need(e.duration, "duration", act)?.0,
        })]),
        "minority" => Err("do = \"minority\" needs node = \"leader\"".into()),
        _ => Err(format!(
            "unknown action {act:?}; expected one of {}",
            ACTIONS.join(", ")
        )),
    }
}

/// `do = "start"`: twins start.
fn start_twins(e: &Entry, nodes: &Nodes) -> Result<Vec<Step>, String> {
    let (n, act) = (nodes.base, "start");
    let twins = targets(e, nodes, act)?;
    let k = |i: NodeIdx| {
        (i as usize)
            .checked_sub(n)
            .filter(|&k| k < nodes.twin_of.len())
    };
    if let Some(&i) = twins.iter().find(|&&i| k(i).is_none()) {
        return Err(format!(
            "do = \"start\" starts twins; {} is not one",
            nodes.name(i)
        ));
    }
    Ok(twins
        .iter()
        .filter_map(|&i| k(i))
        .map(|k| Step::Act(Action::StartTwin(k)))
        .collect())
}

/// The actions on the network: cuts, heals and loss.
fn network(act: &str, e: &Entry, nodes: &Nodes) -> Result<Vec<Step>, String> {
    let n = nodes.base;
    let one = |a: Action| Ok(vec![Step::Act(a)]);
    match act {
        "cut" => one(Action::Partition(cut(e, nodes)?)),
        "isolate" => {
            let set = targets(e, nodes, act)?;
            one(Action::Partition(Cut::Groups(sides(n, &[set]))))
        }
        "mute" | "deaf" => {
            let set = targets(e, nodes, act)?;
            let rest: Vec<NodeIdx> = (0..n as NodeIdx).filter(|i| !set.contains(i)).collect();
            let (from, to) = if act == "mute" {
                (set, rest)
            } else {
                (rest, set)
            };
            one(Action::Partition(Cut::one_way(n, &from, &to)))
        }
        "heal" => one(Action::Heal),
        "loss" => loss(e, nodes),
        _ => Err(format!("{act:?} is not a network action")),
    }
}

/// `do = "loss"`: every link, or those between `from` and `to` (one way with
/// `one_way`).
fn loss(e: &Entry, nodes: &Nodes) -> Result<Vec<Step>, String> {
    let p = need(e.loss, "loss", "loss")?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("expected a loss probability in [0, 1], found {p}"));
    }
    let (from, to) = match (&e.from, &e.to) {
        (None, None) => return Ok(vec![Step::Act(Action::Loss(p))]),
        (Some(f), Some(t)) => (nodes.resolve(&f.items())?, nodes.resolve(&t.items())?),
        _ => return Err("do = \"loss\" takes both `from` and `to`, or neither".into()),
    };
    let mut out = vec![Step::Act(Action::LinkLoss {
        from: from.clone(),
        to: to.clone(),
        loss: p,
    })];
    if e.one_way != Some(true) {
        out.push(Step::Act(Action::LinkLoss {
            from: to,
            to: from,
            loss: p,
        }));
    }
    Ok(out)
}

/// Node `i`'s side: the index of the first set holding it, else one more side.
fn sides(n: usize, sets: &[Vec<NodeIdx>]) -> Vec<u16> {
    (0..n as NodeIdx)
        .map(|i| {
            sets.iter()
                .position(|s| s.contains(&i))
                .unwrap_or(sets.len()) as u16
        })
        .collect()
}

fn cut(e: &Entry, nodes: &Nodes) -> Result<Cut, String> {
    let resolve = |s: &Names| nodes.resolve(&s.items());
    match (&e.sides, &e.from, &e.to, &e.links) {
        (Some(ss), None, None, None) => {
            let sets = ss.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
            Ok(Cut::Groups(sides(nodes.base, &sets)))
        }
        (None, Some(f), Some(t), None) => {
            let (f, t) = (resolve(f)?, resolve(t)?);
            if e.one_way == Some(true) {
                return Ok(Cut::one_way(nodes.base, &f, &t));
            }
            let mut set = HashSet::new();
            for &a in &f {
                for &b in t.iter().filter(|&&b| b != a) {
                    set.insert((a, b));
                    set.insert((b, a));
                }
            }
            Ok(Cut::Links(set))
        }
        (None, None, None, Some(ls)) => {
            let mut set = HashSet::new();
            for [a, b] in ls {
                set.insert((nodes.one(a)?, nodes.one(b)?));
            }
            Ok(Cut::Links(set))
        }
        _ => Err("do = \"cut\" expects `sides`, or `from` and `to`, or `links`".into()),
    }
}

fn cond(c: &str, e: &Entry, nodes: &Nodes, group: Option<&str>) -> Result<Cond, String> {
    let g = || -> Result<String, String> {
        e.group
            .as_deref()
            .or(group)
            .map(str::to_owned)
            .ok_or_else(|| format!("expect = {c:?} needs a group (set `group` at the top)"))
    };
    let node = || -> Result<NodeIdx, String> {
        let n = e
            .node
            .as_ref()
            .ok_or(format!("expected `node` with expect = {c:?}"))?;
        match nodes.resolve(&n.items())?.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!("expect = {c:?} takes exactly one node")),
        }
    };
    Ok(match c {
        "converged" => Cond::Converged,
        "detected-by-any" => Cond::DetectedByAny(node()?),
        "detected-by-all" => Cond::DetectedByAll(node()?),
        "leader" => Cond::Leader(g()?),
        "new-leader" => Cond::NewLeader(g()?),
        "leader-not" => Cond::LeaderNot(g()?, node()?),
        _ => {
            return Err(format!(
                "unknown condition {c:?}; expected one of {}",
                CONDITIONS.join(", ")
            ))
        }
    })
}

/// Durations as written in a file.
fn d(x: Duration) -> Option<Dur> {
    Some(Dur(x))
}

/// How far into an entry a step goes (an entry holds steps in rising rank).
fn rank(s: &Step) -> u8 {
    match s {
        Step::Run(_) | Step::RunUntil(_) => 0,
        Step::Act(_) | Step::AtLeader(_) => 1,
        Step::TrafficFrom | Step::TrafficRates => 2,
        Step::Mark => 3,
        Step::Until { .. } => 4,
    }
}

/// The timeline of `steps` (every step kept, in order).
pub fn entries(steps: &[Step], nodes: &Nodes, group: Option<&str>) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    let mut last = u8::MAX;
    for s in steps {
        let r = rank(s);
        if out.is_empty() || r <= last || shares_node(out.last(), s) {
            out.push(Entry::default());
        }
        last = r;
        let e = out.last_mut().expect("pushed above");
        fill(e, s, nodes, group)?;
    }
    Ok(out)
}

/// Whether `s` needs the `node` key an action of `e` already holds.
fn shares_node(e: Option<&Entry>, s: &Step) -> bool {
    let cond_node = matches!(
        s,
        Step::Until {
            cond: Cond::DetectedByAny(_) | Cond::DetectedByAll(_) | Cond::LeaderNot(..),
            ..
        }
    );
    cond_node && e.is_some_and(|e| e.node.is_some())
}

fn name(nodes: &Nodes, i: NodeIdx) -> Option<Names> {
    Some(Names::One(nodes.name(i)))
}

fn set(nodes: &Nodes, flags: &[bool]) -> Names {
    let v = flags.iter().enumerate().filter(|f| *f.1);
    Names::Many(v.map(|(i, _)| nodes.name(i as NodeIdx)).collect())
}

fn fill(e: &mut Entry, s: &Step, nodes: &Nodes, group: Option<&str>) -> Result<(), String> {
    match s {
        Step::Run(x) => e.after = d(*x),
        Step::RunUntil(x) => e.at = d(*x),
        Step::Act(a) => fill_action(e, a, nodes)?,
        Step::AtLeader(f) => fill_leader(e, f),
        Step::TrafficFrom => e.traffic = Some("from".into()),
        Step::TrafficRates => e.traffic = Some("rates".into()),
        Step::Mark => e.mark = Some(true),
        Step::Until {
            cond,
            within,
            metric,
        } => {
            let (c, node, g) = match cond {
                Cond::Converged => ("converged", None, None),
                Cond::DetectedByAny(i) => ("detected-by-any", Some(*i), None),
                Cond::DetectedByAll(i) => ("detected-by-all", Some(*i), None),
                Cond::Leader(g) => ("leader", None, Some(g)),
                Cond::NewLeader(g) => ("new-leader", None, Some(g)),
                Cond::LeaderNot(g, i) => ("leader-not", Some(*i), Some(g)),
            };
            e.expect = Some(c.into());
            if let Some(i) = node {
                e.node = name(nodes, i);
            }
            e.group = g.filter(|g| Some(g.as_str()) != group).cloned();
            e.within = d(*within);
            e.metric = metric.clone();
        }
    }
    Ok(())
}

fn fill_leader(e: &mut Entry, f: &LeaderFault) {
    let (act, leader) = match f {
        LeaderFault::Crash => ("crash", true),
        LeaderFault::Pause(x) => {
            e.duration = d(*x);
            ("pause", true)
        }
        LeaderFault::Isolate => ("isolate", true),
        LeaderFault::Minority => ("minority", true),
        LeaderFault::Mute => ("mute", true),
        LeaderFault::Deaf => ("deaf", true),
        LeaderFault::Resign => ("resign", true),
        LeaderFault::RestartVoters => ("restart-followers", false),
        LeaderFault::PauseOthers {
            count,
            offset,
            duration,
        } => {
            (e.count, e.offset, e.duration) = (Some(*count), Some(*offset), d(*duration));
            ("pause-followers", false)
        }
    };
    e.act = Some(act.into());
    if leader {
        e.node = Some(Names::One("leader".into()));
    }
}

fn fill_action(e: &mut Entry, a: &Action, nodes: &Nodes) -> Result<(), String> {
    if let Some(act) = fill_network(e, a, nodes)? {
        e.act = Some(act.into());
        return Ok(());
    }
    let act = match a {
        Action::Join(i) => {
            e.node = name(nodes, *i);
            "join"
        }
        Action::Form => "form",
        Action::JoinAll { spread } => {
            e.spread = d(*spread);
            "join-all"
        }
        Action::Crash(i) | Action::Restart(i) | Action::Leave(i) | Action::Unslow(i) => {
            e.node = name(nodes, *i);
            match a {
                Action::Crash(_) => "crash",
                Action::Restart(_) => "restart",
                Action::Leave(_) => "leave",
                _ => "unslow",
            }
        }
        Action::Campaign(i) | Action::Resign(i) => {
            e.node = name(nodes, *i);
            if matches!(a, Action::Campaign(_)) {
                "campaign"
            } else {
                "resign"
            }
        }
        Action::Pause { node, duration } => {
            (e.node, e.duration) = (name(nodes, *node), d(*duration));
            "pause"
        }
        Action::Slow { node, min, max } => {
            (e.node, e.min, e.max) = (name(nodes, *node), d(*min), d(*max));
            "slow"
        }
        Action::Drift { node, ppm } => {
            (e.node, e.ppm) = (name(nodes, *node), Some(*ppm));
            "drift"
        }
        Action::CampaignAll => {
            e.node = Some(Names::One("all".into()));
            "campaign"
        }
        Action::RestartDown => "restart-down",
        Action::StartTwin(k) => {
            e.node = name(nodes, (nodes.base + k) as NodeIdx);
            "start"
        }
        Action::Lie { node, term } => {
            (e.node, e.term) = (
                name(nodes, *node),
                Some(match *term {
                    u64::MAX => Budget::Word("max".into()),
                    t => Budget::Count(t),
                }),
            );
            "lie"
        }
        // Written by `fill_network` above.
        Action::Partition(_) | Action::Heal | Action::Loss(_) | Action::LinkLoss { .. } => {
            return Ok(())
        }
    };
    e.act = Some(act.into());
    Ok(())
}

/// The network actions (cuts, heals, loss), `None` for the others.
fn fill_network(e: &mut Entry, a: &Action, nodes: &Nodes) -> Result<Option<&'static str>, String> {
    Ok(Some(match a {
        Action::Partition(c) => {
            fill_cut(e, c, nodes)?;
            "cut"
        }
        Action::Heal => "heal",
        Action::Loss(p) => {
            e.loss = Some(*p);
            "loss"
        }
        Action::LinkLoss { from, to, loss } => {
            let names = |v: &[NodeIdx]| Names::Many(v.iter().map(|&i| nodes.name(i)).collect());
            (e.from, e.to) = (Some(names(from)), Some(names(to)));
            (e.loss, e.one_way) = (Some(*loss), Some(true));
            "loss"
        }
        _ => return Ok(None),
    }))
}

fn fill_cut(e: &mut Entry, c: &Cut, nodes: &Nodes) -> Result<(), String> {
    let n = nodes.base;
    match c {
        Cut::Groups(g) if g.len() == n => {
            let mut values: Vec<u16> = g.clone();
            values.sort_unstable();
            values.dedup();
            let side = |v: u16| {
                let m: Vec<bool> = g.iter().map(|&x| x == v).collect();
                set(nodes, &m)
            };
            e.sides = Some(values.into_iter().map(side).collect());
        }
        Cut::OneWay { from, to } if from.len() == n && to.len() == n => {
            (e.from, e.to, e.one_way) = (Some(set(nodes, from)), Some(set(nodes, to)), Some(true));
        }
        Cut::Links(l) => {
            let mut v: Vec<_> = l.iter().copied().collect();
            v.sort_unstable();
            e.links = Some(
                v.into_iter()
                    .map(|(a, b)| [nodes.name(a), nodes.name(b)])
                    .collect(),
            );
        }
        _ => return Err(format!("a cut over {n} nodes does not cover them: {c:?}")),
    }
    Ok(())
}
