//! Election scenarios of what real deployments bring: a node id running twice, every
//! voter restarting at once (with and without its data), a member that lies about
//! leading, and voters that hiccup under a stable leader. Each comes with the
//! checkers of every election run (one leader at a time, rising terms, a leader
//! within the bound, the Bully rule) and, where it matters, one of its own:
//! [`StabilityCheck`] (`lease_losses_with_quorum`) and [`DuplicateCheck`]
//! (`duplicates_reported`).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use quorate::{Config, ElectionEvent, Event, MemberEvent, NodeId, StepDown};

use crate::catalogue::Params;
use crate::check::{Checker, Report};
use crate::elect::LeaderFault;
use crate::elections::{at_leader, election_base, lease, new_leader, phase, rng};
use crate::net::NodeIdx;
use crate::scenario::{Action, Scenario, Step};
use crate::sim::{Record, Sim};

/// A second process of the leader's id starts elsewhere while the leader runs; then the
/// leader stalls for two leases, a replacement with its id starts meanwhile, and the
/// leader wakes beside it; then a second process of a follower voter (node 3) runs. No
/// two processes may lead at once; both processes of an id report the duplicate.
pub fn duplicate_id(p: &Params) -> Scenario {
    let mut r = rng(p, 0xd0b1);
    let l = lease(p);
    let first = p.nodes as NodeIdx;
    let mut s = election_base("duplicate-id", p);
    s.twins = vec![0, 0, 2.min(first.saturating_sub(1))];
    // The two processes contest node 1's record, which may be suspected meanwhile.
    s.false_dead_budget = None;
    s = phase(s, &mut r, p)
        .act(Action::StartTwin(0))
        .run_for(Duration::from_secs(5))
        .act(Action::Crash(first))
        .run_for(Duration::from_secs(3));
    s = phase(s, &mut r, p)
        .act(Action::Pause {
            node: 0,
            duration: l * 2,
        })
        .run_for(l / 2)
        .act(Action::StartTwin(1))
        .run_for(l * 2 + Duration::from_secs(5))
        .act(Action::Crash(first + 1))
        .run_for(Duration::from_secs(3));
    phase(s, &mut r, p)
        .act(Action::StartTwin(2))
        .run_for(Duration::from_secs(5))
        .act(Action::Crash(first + 2))
        .run_for(Duration::from_secs(6))
}

/// Every voter crashes at once (the leader among them) and restarts, three times;
/// then every voter crashes and only a majority restarts, the others a few seconds
/// later. With `durable` the voters keep their granted terms (a data directory);
/// without, they come back wiped and only the term floor (the wall clock) keeps
/// fencing tokens rising.
pub fn voters_restart_all(p: &Params, durable: bool) -> Scenario {
    let name = match durable {
        true => "voters-restart-all",
        false => "voters-wiped",
    };
    let mut r = rng(p, 0x7e5a);
    let mut s = election_base(name, p);
    s.durable_terms = durable;
    let voters = crate::elections::voters(p.nodes).len() as NodeIdx;
    let crash_all = |s: Scenario| (0..voters).fold(s, |s, v| s.act(Action::Crash(v)));
    for _ in 0..3 {
        let down = Duration::from_millis(rand::Rng::random_range(&mut r, 200..2000));
        s = crash_all(phase(s, &mut r, p))
            .run_for(down)
            .act(Action::RestartDown)
            .mark()
            .until(new_leader(), Duration::from_secs(10), "")
            .run_for(Duration::from_secs(3));
    }
    let majority = quorate::election::quorum(voters as usize) as NodeIdx;
    s = crash_all(phase(s, &mut r, p)).run_for(Duration::from_millis(500));
    for v in 0..majority {
        s = s.act(Action::Restart(v));
    }
    s.run_for(Duration::from_secs(4))
        .act(Action::RestartDown)
        .run_for(Duration::from_secs(5))
}

/// A member (not a voter, in clusters of more than five) gossips that it leads the
/// group at the largest term, then leaves, and comes back honest; later the real leader
/// crashes. The leader must keep its lease throughout,
/// and a new one must be elected within the bound once it crashed.
pub fn lying_insider(p: &Params) -> Scenario {
    let mut r = rng(p, 0x11a2);
    let liar = p.nodes.saturating_sub(2) as NodeIdx;
    let s = phase(election_base("lying-insider", p), &mut r, p)
        .act(Action::Lie {
            node: liar,
            term: quorate::Term::MAX,
        })
        .run_for(Duration::from_secs(5))
        .act(Action::Leave(liar))
        .run_for(Duration::from_secs(2))
        // Back as an honest process (in a small cluster it is a voter the group needs).
        .act(Action::Restart(liar))
        .run_for(Duration::from_secs(3));
    at_leader(phase(s, &mut r, p), LeaderFault::Crash)
        .mark()
        .until(
            new_leader(),
            Duration::from_secs(10),
            "after_lie_failover_ms",
        )
        .run_for(Duration::from_secs(5))
}

/// Voters other than the leader stall for 2.5 s, one at a time, then two at a time,
/// without loss and then at 10% datagram loss (`--loss`). Three voters of five always
/// answer, so the leader must never lose its lease: `lease_losses_with_quorum` = 0.
pub fn leader_stability(p: &Params) -> Scenario {
    let mut r = rng(p, 0x57ab);
    let mut s = election_base("leader-stability", p);
    s.lease_loss_budget = Some(0);
    let stall = Duration::from_millis(2500);
    for loss in [0.0, p.loss.unwrap_or(0.10)] {
        s = s.act(Action::Loss(loss));
        for count in [1, 1, 1, 2, 2, 2] {
            let offset = rand::Rng::random_range(&mut r, 0..8);
            s = phase(s, &mut r, p)
                .step(Step::AtLeader(LeaderFault::PauseOthers {
                    count,
                    offset,
                    duration: stall,
                }))
                .run_for(stall + Duration::from_secs(2));
        }
    }
    s.act(Action::Loss(0.0)).run_for(Duration::from_secs(3))
}

/// Counts the leaderships lost by running out while the leader could have renewed:
/// a quorum of voters up, not stalled and not cut off from it for the whole lease
/// before, with at most 10% datagram loss.
pub struct StabilityCheck {
    group: String,
    seed: u64,
    lease: Duration,
    voters: Vec<NodeId>,
    budget: Option<u64>,
    /// Stalls: node, start, end.
    stalls: Vec<(NodeIdx, Duration, Duration)>,
    network_changed: Duration,
    loss: f64,
    count: u64,
    violations: Vec<String>,
}

impl StabilityCheck {
    /// Counts for `group` under `cfg`; a violation past `budget` losses, if any.
    pub fn new(group: &str, seed: u64, cfg: &Config, budget: Option<u64>) -> Self {
        StabilityCheck {
            group: group.to_owned(),
            seed,
            lease: cfg.election.timing.lease,
            voters: cfg.election.voters.clone(),
            budget,
            stalls: Vec::new(),
            network_changed: Duration::ZERO,
            loss: 0.0,
            count: 0,
            violations: Vec::new(),
        }
    }

    fn stalled_within(&self, i: NodeIdx, from: Duration, to: Duration) -> bool {
        self.stalls
            .iter()
            .any(|&(n, a, b)| n == i && a < to && b > from)
    }

    fn lost(&mut self, sim: &Sim, x: NodeIdx, at: Duration) {
        let from = at.saturating_sub(self.lease);
        if self.loss > 0.10 || self.network_changed > from || self.stalled_within(x, from, at) {
            return;
        }
        let net = sim.net();
        let reachable = (0..sim.len() as NodeIdx)
            .filter(|&v| self.voters.contains(&sim.id_of(v)))
            .filter(|&v| sim.node(v).is_up() && !sim.node(v).is_slow())
            .filter(|&v| !self.stalled_within(v, from, at))
            .filter(|&v| v == x || (!net.is_cut(x, v) && !net.is_cut(v, x)))
            .count();
        if reachable < quorate::election::quorum(self.voters.len()) {
            return;
        }
        self.count += 1;
        if self.violations.len() < 3 {
            self.violations.push(format!(
                "seed {}: group {:?}: node {} lost its lease at {:.3}s while {reachable} voters \
                 could hear it",
                self.seed,
                self.group,
                sim.id_of(x),
                at.as_secs_f64()
            ));
        }
    }
}

impl Checker for StabilityCheck {
    fn on_record(&mut self, sim: &Sim, rec: &Record) {
        if let Event::Leadership(ElectionEvent::SteppedDown {
            group,
            reason: StepDown::LeaseExpired,
            ..
        }) = &rec.event
        {
            if *group == self.group {
                self.lost(sim, rec.node, rec.at);
            }
        }
    }

    fn on_action(&mut self, sim: &Sim, action: &Action) {
        let now = sim.now();
        match action {
            Action::Pause { node, duration } => self.stalls.push((*node, now, now + *duration)),
            Action::Loss(p) => self.loss = *p,
            Action::LinkLoss { loss, .. } => {
                self.loss = self.loss.max(*loss);
                self.network_changed = now;
            }
            Action::Partition(_) | Action::Heal | Action::Slow { .. } | Action::Unslow(_) => {
                self.network_changed = now
            }
            _ => {}
        }
    }

    fn finish(&mut self, _sim: &Sim, report: &mut Report) {
        report.metric("lease_losses_with_quorum", self.count);
        if self.budget.is_some_and(|b| self.count > b) {
            for v in self.violations.drain(..) {
                report.violation(v);
            }
        }
    }
}

/// Counts the processes that reported another live process with their id
/// (`duplicates_reported`) and the second processes both sides reported
/// (`duplicates_seen_by_both`); a violation when a second process ran for seconds
/// beside the first and neither reported it.
pub struct DuplicateCheck {
    /// First process index of each second process (see `Scenario::twins`).
    twins: Vec<NodeIdx>,
    first_twin: NodeIdx,
    reported: BTreeSet<NodeIdx>,
    /// When each second process started and stopped.
    ran: HashMap<NodeIdx, (Duration, Option<Duration>)>,
    /// Second processes that ran for seconds and were reported by both processes.
    both_sides: u64,
}

impl DuplicateCheck {
    /// For a simulation of `nodes` nodes followed by second processes of `twins`.
    pub fn new(nodes: usize, twins: &[NodeIdx]) -> Self {
        DuplicateCheck {
            twins: twins.to_vec(),
            first_twin: nodes as NodeIdx,
            reported: BTreeSet::new(),
            ran: HashMap::new(),
            both_sides: 0,
        }
    }
}

impl Checker for DuplicateCheck {
    fn on_record(&mut self, _sim: &Sim, rec: &Record) {
        if let Event::Member(MemberEvent::Duplicate { .. }) = rec.event {
            self.reported.insert(rec.node);
        }
    }

    fn on_action(&mut self, sim: &Sim, action: &Action) {
        match action {
            Action::StartTwin(k) => {
                let i = self.first_twin + *k as NodeIdx;
                self.ran.insert(i, (sim.now(), None));
            }
            Action::Crash(i) => {
                if let Some(r) = self.ran.get_mut(i) {
                    r.1.get_or_insert(sim.now());
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, sim: &Sim, report: &mut Report) {
        report.metric("duplicates_reported", self.reported.len() as u64);
        for (k, &of) in self.twins.iter().enumerate() {
            let twin = self.first_twin + k as NodeIdx;
            let Some(&(start, stop)) = self.ran.get(&twin) else {
                continue;
            };
            if stop.unwrap_or(sim.now()) < start + Duration::from_secs(3) {
                continue;
            }
            let sides = [twin, of]
                .iter()
                .filter(|i| self.reported.contains(i))
                .count();
            self.both_sides += u64::from(sides == 2);
            if sides == 0 {
                report.violation(format!(
                    "neither process of node {} reported the other",
                    sim.id_of(twin)
                ));
            }
        }
        report.metric("duplicates_seen_by_both", self.both_sides);
    }
}

/// The checkers every election scenario adds for `group`.
pub fn checkers(s: &Scenario, group: &str) -> Vec<Box<dyn Checker>> {
    let mut out: Vec<Box<dyn Checker>> = vec![Box::new(StabilityCheck::new(
        group,
        s.seed,
        &s.config,
        s.lease_loss_budget,
    ))];
    if !s.twins.is_empty() {
        out.push(Box::new(DuplicateCheck::new(s.nodes, &s.twins)));
    }
    out
}
