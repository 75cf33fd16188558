//! Checkers: observers of a simulation that turn what happened into violations (a
//! property that did not hold) and metrics. They run on every simulation; scenarios add
//! their own, and later layers (election) plug theirs in through the same trait.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use quorate::{Event, MemberEvent};
use serde_json::Value;

use crate::net::NodeIdx;
use crate::scenario::Action;
use crate::sim::{node_idx, Record, Sim};

/// What checkers found: violations (empty when every property held) and metrics.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One line per property that did not hold.
    pub violations: Vec<String>,
    /// Named measurements.
    pub metrics: BTreeMap<String, Value>,
}

impl Report {
    /// Records a metric.
    pub fn metric(&mut self, name: &str, v: impl Into<Value>) {
        self.metrics.insert(name.to_owned(), v.into());
    }

    /// Records a violation.
    pub fn violation(&mut self, v: String) {
        self.violations.push(v);
    }
}

/// An observer of one simulation.
pub trait Checker {
    /// An engine event happened.
    fn on_record(&mut self, _sim: &Sim, _rec: &Record) {}
    /// The scenario is about to apply `action`.
    fn on_action(&mut self, _sim: &Sim, _action: &Action) {}
    /// The simulation is over: report violations and metrics.
    fn finish(&mut self, sim: &Sim, report: &mut Report);
}

/// Membership converges once the network heals: at the end (after the settle phase)
/// every running node sees exactly the running nodes as live.
#[derive(Debug, Default)]
pub struct Converges;

impl Checker for Converges {
    fn finish(&mut self, sim: &Sim, report: &mut Report) {
        let v = sim.views();
        if !v.converged() {
            report.violation(format!(
                "membership did not converge after the network healed: {} of {} running nodes \
                 have a wrong view at {:.1}s",
                v.wrong_observers(),
                v.n_up(),
                sim.now().as_secs_f64()
            ));
        }
    }
}

/// Counts healthy nodes that were suspected or declared dead, and fails when deaths
/// exceed the budget.
///
/// A node is healthy when it is running, neither stalled nor slow, and has been so for
/// `grace` (so late news about a restarted or resumed node is not counted). While a
/// partition is in force, and for `grace` after it heals, accusations are expected and
/// counted apart (`*_disturbed`). Each accusation counts once: (member, incarnation).
#[derive(Debug)]
pub struct FalseAccusations {
    /// Deaths of healthy nodes tolerated; `None` reports without checking.
    pub budget: Option<u64>,
    grace: Duration,
    unhealthy_until: HashMap<NodeIdx, Duration>,
    disturbed_until: Duration,
    suspects: HashSet<(NodeIdx, u64)>,
    deaths: HashSet<(NodeIdx, u64)>,
    suspects_disturbed: HashSet<(NodeIdx, u64)>,
    deaths_disturbed: HashSet<(NodeIdx, u64)>,
    first_death: Option<(Duration, NodeIdx, NodeIdx)>,
}

impl FalseAccusations {
    /// A checker tolerating `budget` false deaths, with `grace` after disturbances.
    pub fn new(budget: Option<u64>, grace: Duration) -> Self {
        FalseAccusations {
            budget,
            grace,
            unhealthy_until: HashMap::new(),
            disturbed_until: Duration::ZERO,
            suspects: HashSet::new(),
            deaths: HashSet::new(),
            suspects_disturbed: HashSet::new(),
            deaths_disturbed: HashSet::new(),
            first_death: None,
        }
    }

    /// Whether `m` was healthy at `at` (a time in the window just run: pauses are
    /// covered by `unhealthy_until`, so the node's state now tells the rest).
    fn healthy(&self, sim: &Sim, m: NodeIdx, at: Duration) -> bool {
        sim.node(m).is_healthy() && self.unhealthy_until.get(&m).map_or(true, |&u| u <= at)
    }

    fn mark_unhealthy(&mut self, m: NodeIdx, until: Duration) {
        let e = self.unhealthy_until.entry(m).or_default();
        *e = (*e).max(until);
    }
}

impl Checker for FalseAccusations {
    fn on_action(&mut self, sim: &Sim, action: &Action) {
        let now = sim.now();
        match action {
            Action::Partition(_) | Action::Heal => {
                self.disturbed_until = Duration::MAX;
            }
            Action::Pause { node, duration } => {
                self.mark_unhealthy(*node, now + *duration + self.grace);
            }
            Action::Slow { node, .. } => self.mark_unhealthy(*node, Duration::MAX),
            Action::Unslow(node) => {
                self.unhealthy_until.insert(*node, now + self.grace);
            }
            Action::Crash(node) | Action::Restart(node) | Action::Leave(node) => {
                self.mark_unhealthy(*node, Duration::MAX);
                if matches!(action, Action::Restart(_)) {
                    self.unhealthy_until.insert(*node, now + self.grace);
                }
            }
            _ => {}
        }
        if matches!(action, Action::Heal) {
            self.disturbed_until = now + self.grace;
        }
    }

    fn on_record(&mut self, sim: &Sim, rec: &Record) {
        let Event::Member(e) = &rec.event else { return };
        let (id, inc, death) = match e {
            MemberEvent::Suspect { id, incarnation } => (*id, *incarnation, false),
            MemberEvent::Failed { id, incarnation } => (*id, *incarnation, true),
            _ => return,
        };
        let Some(m) = node_idx(id, sim.len()) else {
            return;
        };
        if !self.healthy(sim, m, rec.at) {
            return;
        }
        let disturbed = sim.net().partitioned() || rec.at < self.disturbed_until;
        let set = match (death, disturbed) {
            (false, false) => &mut self.suspects,
            (true, false) => &mut self.deaths,
            (false, true) => &mut self.suspects_disturbed,
            (true, true) => &mut self.deaths_disturbed,
        };
        if set.insert((m, inc)) && death && !disturbed && self.first_death.is_none() {
            self.first_death = Some((rec.at, rec.node, m));
        }
    }

    fn finish(&mut self, _sim: &Sim, report: &mut Report) {
        report.metric("false_suspect", self.suspects.len() as u64);
        report.metric("false_dead", self.deaths.len() as u64);
        report.metric("suspect_disturbed", self.suspects_disturbed.len() as u64);
        report.metric("dead_disturbed", self.deaths_disturbed.len() as u64);
        let Some(budget) = self.budget else { return };
        let n = self.deaths.len() as u64;
        if n > budget {
            let (at, by, who) = self.first_death.unwrap_or_default();
            report.violation(format!(
                "{n} healthy node(s) declared dead (budget {budget}); first: node {} by node {} \
                 at {:.3}s",
                u64::from(who) + 1,
                u64::from(by) + 1,
                at.as_secs_f64()
            ));
        }
    }
}

/// The budget of false deaths a scenario tolerates at datagram loss `loss`: none up to
/// 10% loss; beyond that, deaths are reported but not checked.
pub fn false_dead_budget(loss: f64) -> Option<u64> {
    (loss <= 0.10 + 1e-9).then_some(0)
}

/// The standard checkers every simulation runs.
pub fn standard(budget: Option<u64>, grace: Duration) -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(Converges),
        Box::new(FalseAccusations::new(budget, grace)),
    ]
}
