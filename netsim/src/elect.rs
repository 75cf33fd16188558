//! Elections in the simulator: who leads a group now, faults aimed at the leader, and
//! the checker every election run carries.
//!
//! [`LeaderCheck`] records each leadership as an interval of simulated real time, from
//! the node's `Elected` event to its lease deadline (the last renewed one, read on the
//! node's drifting clock and mapped back to real time) or its step-down, whichever
//! comes first. A crash or a stall does not end the interval: the lease of a dead or
//! stopped process still runs, and no one else may lead before it ends, unless a new
//! process with the same id starts (the voters take its requests as the holder's own,
//! and the dead one can no longer act). Then:
//! - safety: the intervals of two different nodes never overlap (at most one leader at
//!   any real instant);
//! - fencing: each new leadership's term is above every earlier one;
//! - liveness: from the first election on, the group is never without a leader for
//!   longer than [`liveness_bound`], each leaderless gap counted from when the lasting
//!   fault in force during it healed (a partition, loss, a slow or stalled node), or
//!   from its start when none was (crashes, restarts and resignations take effect at
//!   once); `failover_ms` is the worst such gap, and gaps that end while a lasting
//!   fault is still in force are not counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use quorate::{Config, ElectionEvent, Event, NodeId, Term};
use serde_json::Value;

use crate::check::{Checker, Report};
use crate::net::{Cut, NodeIdx};
use crate::scenario::Action;
use crate::sim::{node_idx, Record, Sim};

/// The running node that holds an unexpired leadership of `group` now (the lowest id if
/// several claim one, which the checker reports).
pub fn current_leader(sim: &Sim, group: &str) -> Option<NodeIdx> {
    (0..sim.len() as NodeIdx).find(|&i| {
        sim.node(i)
            .engine()
            .and_then(|e| e.leadership(group))
            .is_some_and(|(_, deadline)| deadline > sim.local_now(i))
    })
}

/// The leadership in force now: the leader (as [`current_leader`]) and its term.
pub fn current_leadership(sim: &Sim, group: &str) -> Option<(NodeIdx, Term)> {
    let i = current_leader(sim, group)?;
    let (term, _) = sim.node(i).engine()?.leadership(group)?;
    Some((i, term))
}

/// A fault aimed at the node leading when it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderFault {
    /// The leader crashes.
    Crash,
    /// The leader stalls this long.
    Pause(Duration),
    /// The leader is cut off from every other node, both ways.
    Isolate,
    /// Two sides, both ways: the leader with a minority of the voters (one short of a
    /// quorum) and fewer than half of the nodes, the rest on the other side.
    Minority,
    /// Nothing the leader sends arrives; it still receives.
    Mute,
    /// Nothing reaches the leader; what it sends arrives.
    Deaf,
    /// The leader resigns.
    Resign,
    /// Every voter but the leader crashes and restarts at once, forgetting its
    /// promises.
    RestartVoters,
    /// `count` voters other than the leader stall for `duration`: the voters after
    /// the leader in id order, starting `offset` places on (wrapping).
    PauseOthers {
        /// How many.
        count: usize,
        /// Where in the list of the other voters to start.
        offset: usize,
        /// How long.
        duration: Duration,
    },
}

impl LeaderFault {
    /// The actions that apply this fault to `leader` in a cluster of `n` nodes whose
    /// voters are `voters`.
    pub fn actions(&self, leader: NodeIdx, n: usize, voters: &[NodeId]) -> Vec<Action> {
        let others: Vec<NodeIdx> = (0..n as NodeIdx).filter(|&i| i != leader).collect();
        match self {
            LeaderFault::Crash => vec![Action::Crash(leader)],
            LeaderFault::Pause(d) => vec![Action::Pause {
                node: leader,
                duration: *d,
            }],
            LeaderFault::Isolate => vec![Action::Partition(Cut::isolate(n, leader))],
            LeaderFault::Minority => vec![Action::Partition(minority_cut(leader, n, voters))],
            LeaderFault::Mute => vec![Action::Partition(Cut::one_way(n, &[leader], &others))],
            LeaderFault::Deaf => vec![Action::Partition(Cut::one_way(n, &others, &[leader]))],
            LeaderFault::Resign => vec![Action::Resign(leader)],
            LeaderFault::RestartVoters => {
                let vs = voters.iter().filter_map(|v| node_idx(*v, n));
                let vs: Vec<NodeIdx> = vs.filter(|&v| v != leader).collect();
                let crash = vs.iter().map(|&v| Action::Crash(v));
                crash
                    .chain(vs.iter().map(|&v| Action::Restart(v)))
                    .collect()
            }
            LeaderFault::PauseOthers {
                count,
                offset,
                duration,
            } => {
                let vs: Vec<NodeIdx> = voters
                    .iter()
                    .filter_map(|v| node_idx(*v, n))
                    .filter(|&v| v != leader)
                    .collect();
                (0..(*count).min(vs.len()))
                    .map(|k| Action::Pause {
                        node: vs[(offset + k) % vs.len()],
                        duration: *duration,
                    })
                    .collect()
            }
        }
    }
}

/// Side 1 holds `leader`, the lowest other voters up to one short of a quorum, and the
/// lowest non-voters while the side stays below half the nodes; side 0 the rest.
fn minority_cut(leader: NodeIdx, n: usize, voters: &[NodeId]) -> Cut {
    let voter_idx: Vec<NodeIdx> = voters.iter().filter_map(|v| node_idx(*v, n)).collect();
    let quorum = quorate::election::quorum(voter_idx.len());
    let mut side = vec![0u16; n];
    side[leader as usize] = 1;
    let mut voters_in = usize::from(voter_idx.contains(&leader));
    let mut size = 1;
    for i in 0..n as NodeIdx {
        if i == leader {
            continue;
        }
        let take = if voter_idx.contains(&i) {
            voters_in + 1 < quorum
        } else {
            (size + 1) * 2 < n
        };
        if take {
            side[i as usize] = 1;
            size += 1;
            voters_in += usize::from(voter_idx.contains(&i));
        }
    }
    Cut::Groups(side)
}

/// How long a group may stay without a leader once a fault has healed: a
/// restarted voter's quarantine, the promises made to a lost leader running out (one
/// lease), one more lease for a round lost to a split vote, and a few round timeouts
/// of retries. (Candidates reach voters at their last known address whatever the
/// membership view says, so nothing waits for membership to merge again.)
pub fn liveness_bound(cfg: &Config) -> Duration {
    let e = &cfg.election;
    e.quarantine + e.timing.lease * 2 + e.timing.round_timeout * 4
}

/// One leadership.
#[derive(Clone, Debug)]
struct Lead {
    node: NodeIdx,
    term: Term,
    start: Duration,
    /// The latest deadline, on the node's clock.
    deadline: Instant,
    stepped: Option<Duration>,
    crashed: Option<Duration>,
    /// A new process with the same id started (after a crash): the voters take its
    /// requests as the holder's own, so the dead process's lease ends there.
    superseded: Option<Duration>,
}

/// The election checkers of one group (see the module documentation).
#[derive(Debug)]
pub struct LeaderCheck {
    group: String,
    seed: u64,
    bound: Duration,
    leads: Vec<Lead>,
    open: HashMap<NodeIdx, usize>,
    max_term: Option<(Term, NodeIdx, Duration)>,
    term_violations: Vec<String>,
    campaigned: Option<Duration>,
    /// Lasting faults (partitions, loss, slow nodes, stalls) as `(start, end)`; the
    /// end is `Duration::MAX` while in force.
    lasting: Vec<(Duration, Duration)>,
    /// Index in `lasting` of the partition, the loss and each slow node in force.
    open_faults: HashMap<Lasting, usize>,
    /// Times the leader crashed.
    leader_crashes: Vec<Duration>,
    /// Whether the network's own loss was looked at (at the first action).
    saw_net: bool,
}

/// A lasting fault in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lasting {
    Partition,
    Loss,
    Slow(NodeIdx),
}

impl LeaderCheck {
    /// Checks `group` in a run of `seed` under `cfg`.
    pub fn new(group: &str, seed: u64, cfg: &Config) -> Self {
        LeaderCheck {
            group: group.to_owned(),
            seed,
            bound: liveness_bound(cfg),
            leads: Vec::new(),
            open: HashMap::new(),
            max_term: None,
            term_violations: Vec::new(),
            campaigned: None,
            lasting: Vec::new(),
            open_faults: HashMap::new(),
            leader_crashes: Vec::new(),
            saw_net: false,
        }
    }

    fn elected(&mut self, rec: &Record, term: Term, deadline: Instant) {
        if let Some((max, by, at)) = self.max_term.filter(|m| term <= m.0) {
            self.term_violations.push(format!(
                "seed {}: group {:?}: node {} elected with term {term} at {:.3}s, not above \
                 term {max} of node {} elected at {:.3}s",
                self.seed,
                self.group,
                u64::from(rec.node) + 1,
                rec.at.as_secs_f64(),
                u64::from(by) + 1,
                at.as_secs_f64()
            ));
        }
        if self.max_term.map_or(true, |m| term > m.0) {
            self.max_term = Some((term, rec.node, rec.at));
        }
        self.open.insert(rec.node, self.leads.len());
        self.leads.push(Lead {
            node: rec.node,
            term,
            start: rec.at,
            deadline,
            stepped: None,
            crashed: None,
            superseded: None,
        });
    }

    /// Node `i` starts again: a leadership its dead process held is superseded.
    fn restarted(&mut self, i: NodeIdx, now: Duration) {
        for l in self
            .leads
            .iter_mut()
            .filter(|l| l.node == i && l.crashed.is_some())
        {
            l.superseded.get_or_insert(now);
        }
    }

    fn begin(&mut self, f: Lasting, now: Duration) {
        if !self.open_faults.contains_key(&f) {
            self.open_faults.insert(f, self.lasting.len());
            self.lasting.push((now, Duration::MAX));
        }
    }

    fn end(&mut self, f: Lasting, now: Duration) {
        if let Some(i) = self.open_faults.remove(&f) {
            self.lasting[i].1 = now;
        }
    }
}

impl Checker for LeaderCheck {
    fn on_record(&mut self, _sim: &Sim, rec: &Record) {
        let Event::Leadership(e) = &rec.event else {
            return;
        };
        match e {
            ElectionEvent::Elected {
                group,
                term,
                deadline,
            } if *group == self.group => self.elected(rec, *term, *deadline),
            ElectionEvent::Renewed {
                group,
                term,
                deadline,
            } if *group == self.group => {
                if let Some(l) = self.open.get(&rec.node).map(|&i| &mut self.leads[i]) {
                    if l.term == *term {
                        l.deadline = l.deadline.max(*deadline);
                    }
                }
            }
            ElectionEvent::SteppedDown { group, .. } if *group == self.group => {
                if let Some(i) = self.open.remove(&rec.node) {
                    self.leads[i].stepped = Some(rec.at);
                }
            }
            _ => {}
        }
    }

    fn on_action(&mut self, sim: &Sim, action: &Action) {
        let now = sim.now();
        if !std::mem::replace(&mut self.saw_net, true) && sim.net().lossy() {
            // Lossy links from the start (a scenario file's) are a lasting fault.
            self.begin(Lasting::Loss, now);
        }
        match action {
            Action::CampaignAll | Action::Campaign(_) => {
                self.campaigned.get_or_insert(now);
            }
            Action::Crash(i) => {
                if let Some(l) = self.open.remove(i) {
                    self.leads[l].crashed = Some(now);
                    self.leader_crashes.push(now);
                }
            }
            Action::Restart(i) => self.restarted(*i, now),
            Action::RestartDown => {
                for i in (0..sim.len() as NodeIdx).filter(|&i| !sim.node(i).is_up()) {
                    self.restarted(i, now);
                }
            }
            Action::Partition(_) => self.begin(Lasting::Partition, now),
            Action::Heal => self.end(Lasting::Partition, now),
            Action::Loss(p) if *p > 0.0 => self.begin(Lasting::Loss, now),
            Action::Loss(_) => self.end(Lasting::Loss, now),
            Action::LinkLoss { loss, .. } if *loss > 0.0 => self.begin(Lasting::Loss, now),
            Action::LinkLoss { from, to, .. } if !sim.net().lossy_besides(from, to) => {
                self.end(Lasting::Loss, now)
            }
            Action::Slow { node, .. } => self.begin(Lasting::Slow(*node), now),
            Action::Unslow(node) => self.end(Lasting::Slow(*node), now),
            Action::Pause { duration, .. } => self.lasting.push((now, now + *duration)),
            _ => {}
        }
    }

    fn finish(&mut self, sim: &Sim, report: &mut Report) {
        let holds = self.holdings(sim);
        let (concurrent, overlaps) = self.overlaps(&holds);
        report.metric("leaders_max_concurrent", concurrent as u64);
        report.metric("terms_monotonic", self.term_violations.is_empty());
        report.metric("leader_changes", self.leads.len() as u64);
        report.metric("liveness_bound_ms", self.bound.as_millis() as u64);
        for v in overlaps
            .into_iter()
            .chain(self.term_violations.drain(..).take(3))
        {
            report.violation(v);
        }
        self.liveness(sim, report);
        let failovers: Vec<f64> = self
            .leader_crashes
            .iter()
            .filter_map(|&c| {
                let next = self.leads.iter().find(|l| l.start > c)?;
                Some(ms(next.start - c))
            })
            .collect();
        if !self.leader_crashes.is_empty() {
            let worst = failovers
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            report.metric("crash_failover_ms", worst.map_or(Value::Null, Value::from));
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

impl LeaderCheck {
    /// Each leadership's real-time interval `(node, term, start, end)`: until its
    /// step-down or its deadline in real time, whichever is first.
    fn holdings(&self, sim: &Sim) -> Vec<(NodeIdx, Term, Duration, Duration)> {
        let mut v: Vec<_> = self
            .leads
            .iter()
            .map(|l| {
                let end = sim.true_time(l.node, l.deadline);
                let end = [l.stepped, l.superseded]
                    .into_iter()
                    .flatten()
                    .fold(end, Duration::min);
                (l.node, l.term, l.start, end)
            })
            .filter(|h| h.3 > h.2)
            .collect();
        v.sort_by_key(|h| (h.2, h.3));
        v
    }

    /// The most nodes leading at one instant, and a violation per overlapping pair of
    /// leaderships of different nodes (the first three).
    fn overlaps(&self, holds: &[(NodeIdx, Term, Duration, Duration)]) -> (usize, Vec<String>) {
        let mut out = Vec::new();
        let mut pairs = 0;
        for (i, a) in holds.iter().enumerate() {
            for b in holds[i + 1..].iter().take_while(|b| b.2 < a.3) {
                if a.0 == b.0 {
                    continue;
                }
                pairs += 1;
                if out.len() < 3 {
                    out.push(format!(
                        "seed {}: two leaders of group {:?}: node {} term {} [{:.3}s, {:.3}s) \
                         and node {} term {} [{:.3}s, {:.3}s) overlap by {:.1} ms",
                        self.seed,
                        self.group,
                        u64::from(a.0) + 1,
                        a.1,
                        a.2.as_secs_f64(),
                        a.3.as_secs_f64(),
                        u64::from(b.0) + 1,
                        b.1,
                        b.2.as_secs_f64(),
                        b.3.as_secs_f64(),
                        ms(a.3.min(b.3) - b.2)
                    ));
                }
            }
        }
        if pairs > out.len() {
            out.push(format!(
                "seed {}: group {:?}: {pairs} overlapping leaderships in all",
                self.seed, self.group
            ));
        }
        // Sweep: ends before starts at the same instant (half-open intervals).
        let mut edges: Vec<(Duration, bool, NodeIdx)> = holds
            .iter()
            .flat_map(|h| [(h.2, true, h.0), (h.3, false, h.0)])
            .collect();
        edges.sort();
        let mut per_node: HashMap<NodeIdx, u32> = HashMap::new();
        let (mut now, mut max) = (0usize, 0usize);
        for (_, start, node) in edges {
            let c = per_node.entry(node).or_default();
            if start {
                *c += 1;
                now += usize::from(*c == 1);
            } else {
                *c -= 1;
                now -= usize::from(*c == 0);
            }
            max = max.max(now);
        }
        (max, out)
    }

    /// The worst time without a serving leader (a crashed one does not serve), each
    /// gap counted from when the lasting fault that caused it healed, or from its start
    /// when no lasting fault was in force (a crash, a restart, a resignation take
    /// effect at once); a violation beyond the bound. Gaps ending while a lasting fault
    /// is still in force are not counted.
    fn liveness(&self, sim: &Sim, report: &mut Report) {
        let Some(campaigned) = self.campaigned else {
            return;
        };
        let end = sim.now();
        let mut serve: Vec<(Duration, Duration)> = self
            .leads
            .iter()
            .map(|l| {
                let until = sim.true_time(l.node, l.deadline);
                let until = [l.stepped, l.crashed]
                    .into_iter()
                    .flatten()
                    .fold(until, Duration::min);
                (l.start, until.min(end))
            })
            .filter(|s| s.1 > s.0)
            .collect();
        serve.sort();
        // From the first election on (the time to it is the scenario's `elected_ms`).
        let first = serve.first().map_or(campaigned, |f| f.0);
        let (mut gaps, mut cursor, mut served) = (Vec::new(), first, Duration::ZERO);
        for &(s, e) in &serve {
            if s > cursor {
                gaps.push((cursor, s));
            }
            served += e.saturating_sub(s.max(cursor));
            cursor = cursor.max(e);
        }
        if end > cursor {
            gaps.push((cursor, end));
        }
        if let Some(first) = serve.first().filter(|f| end > f.0) {
            let pct = served.as_secs_f64() / (end - first.0).as_secs_f64() * 100.0;
            report.metric("leader_time_pct", (pct * 100.0).round() / 100.0);
        }
        let mut worst: Option<(Duration, Duration)> = None;
        for (a, b) in gaps {
            let healed = self.lasting.iter().filter(|f| f.0 < b).map(|f| f.1).max();
            let from = healed.map_or(a, |h| h.max(a));
            if b > from && worst.map_or(true, |w| b - from > w.0) {
                worst = Some((b - from, from));
            }
        }
        let (gap, at) = worst.unwrap_or_default();
        report.metric("failover_ms", ms(gap));
        if serve.is_empty() {
            report.violation(format!(
                "seed {}: group {:?}: no leader was ever elected",
                self.seed, self.group
            ));
        } else if gap > self.bound {
            report.violation(format!(
                "seed {}: group {:?}: no leader for {:.1} ms from {:.3}s, with no fault in \
                 force (bound {} ms)",
                self.seed,
                self.group,
                ms(gap),
                at.as_secs_f64(),
                self.bound.as_millis()
            ));
        }
    }
}
