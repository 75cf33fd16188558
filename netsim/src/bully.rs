//! The Bully rule, checked at every new leadership: when a group's leadership
//! changes hands, the next leader is the lowest-id live candidate that can reach a
//! quorum of voters.
//!
//! The exact rule checked. When node X is elected, a violation is counted for a node Y
//! with a lower id when, at that instant:
//! - Y has been running, campaigning for the group and not stalled for at least
//!   [`settle`] (a restart quarantine and a lease: long enough for every candidate to
//!   have seen its candidacy, so ranks agree);
//! - no partition, heal, loss or slowness has changed the network in the last
//!   [`settle`] (while the network changes, who can reach whom is not settled), and
//!   no datagram loss is in force;
//! - Y reaches (both ways, with no cut in force) a quorum of voters that are up, not
//!   stalled and out of their restart quarantine;
//! - no second process shares an id with any running node;
//! - no node with an id below Y's stopped running (crash, resignation, leave) in the
//!   last [`settle`] unless it was leading: a leader's end is announced by every voter
//!   (`Vacant` names it), but a waiting candidate that stops is learned only through
//!   membership, and until then Y still counts it below itself and backs off;
//! - no link is cut one way only between single nodes (a partial cut that is not a
//!   whole side cut off): a voter that hears a candidate but cannot answer it grants
//!   each of its rounds unheard and is taken again by every new one, so which candidate
//!   gets that voter is a race no rank can settle. Such breaches are counted apart
//!   (`bully_breaches_one_way_links`).
//!
//! Y is then "demonstrably able" to lead, and the rank back-off lets it ask first, so
//! X winning means the ranks or the yielding are wrong. The metric is
//! `bully_violations`; each one is reported with the seed.

use std::collections::HashMap;
use std::time::Duration;

use quorate::{Config, ElectionEvent, Event, NodeId};

use crate::check::{Checker, Report};
use crate::net::{Cut, NodeIdx};
use crate::scenario::Action;
use crate::sim::{Record, Sim};

/// How long a candidate must have been running steadily, and the network unchanged,
/// before the rule applies: the restart quarantine and one lease.
pub fn settle(cfg: &Config) -> Duration {
    cfg.election.quarantine + cfg.election.timing.lease
}

/// The Bully rule's checker for one group.
pub struct BullyCheck {
    group: String,
    seed: u64,
    settle: Duration,
    voters: Vec<NodeId>,
    /// Since when each node has campaigned without a break (crash, resignation).
    campaigning: HashMap<NodeIdx, Duration>,
    /// When each node's last stall ends.
    stalled_until: HashMap<NodeIdx, Duration>,
    /// The last change of the network (cut, heal, loss, slowness).
    network_changed: Duration,
    /// Datagram loss is in force (who can reach whom is a matter of luck).
    lossy: bool,
    /// A cut of single links one way only is in force.
    one_way_links: bool,
    /// Breaches while [`BullyCheck::one_way_links`]: counted, never violations.
    one_way_breaches: u64,
    /// When each node last stopped running while not leading.
    quit: HashMap<NodeIdx, Duration>,
    violations: Vec<String>,
    count: u64,
    /// Second processes of a node, the last nodes of the simulation.
    twins: usize,
    /// Whether a breach is a violation (else only counted: see [`BullyCheck::new`]).
    enforce: bool,
}

impl BullyCheck {
    /// Checks `group` in a run of `seed` under `cfg`, with `twins` second processes
    /// last; breaches are violations when `enforce`, else only counted (in the
    /// scenarios where the rule is known to miss, by the rates the README gives).
    pub fn new(group: &str, seed: u64, cfg: &Config, twins: usize, enforce: bool) -> Self {
        BullyCheck {
            twins,
            enforce,
            group: group.to_owned(),
            seed,
            settle: settle(cfg),
            voters: cfg.election.voters.clone(),
            campaigning: HashMap::new(),
            stalled_until: HashMap::new(),
            network_changed: Duration::ZERO,
            lossy: false,
            one_way_links: false,
            one_way_breaches: 0,
            quit: HashMap::new(),
            violations: Vec::new(),
            count: 0,
        }
    }

    /// Whether node `y` could lead now: settled, running for the group, reaching a
    /// quorum of settled voters.
    fn able(&self, sim: &Sim, y: NodeIdx, now: Duration) -> bool {
        let steady = |i: NodeIdx| {
            let node = sim.node(i);
            node.is_up()
                && !node.is_paused()
                && !node.is_slow()
                && self
                    .stalled_until
                    .get(&i)
                    .map_or(true, |&u| now >= u + self.settle)
        };
        let yid = sim.id_of(y);
        let lower_quit = self
            .quit
            .iter()
            .any(|(&i, &at)| sim.id_of(i) < yid && now < at + self.settle);
        if lower_quit {
            return false;
        }
        let since = self.campaigning.get(&y).copied();
        if !steady(y) || since.map_or(true, |s| now < s + self.settle) {
            return false;
        }
        let running = sim
            .node(y)
            .engine()
            .and_then(|e| e.election())
            .is_some_and(|e| e.is_running(&self.group));
        if !running {
            return false;
        }
        let net = sim.net();
        let reached = (0..sim.len() as NodeIdx)
            .filter(|&v| self.voters.contains(&sim.id_of(v)))
            .filter(|&v| steady(v))
            .filter(|&v| {
                let voter = sim.node(v).engine().and_then(|e| e.election());
                voter
                    .and_then(|e| e.voter())
                    .is_some_and(|vo| !vo.quarantined(sim.local_now(v)))
            })
            .filter(|&v| v == y || (!net.is_cut(y, v) && !net.is_cut(v, y)))
            .count();
        reached >= quorate::election::quorum(self.voters.len())
    }

    fn elected(&mut self, sim: &Sim, x: NodeIdx, at: Duration) {
        if self.lossy || sim.net().lossy() || at < self.network_changed + self.settle {
            return;
        }
        let ids: Vec<NodeId> = (0..sim.len() as NodeIdx)
            .filter(|&i| sim.node(i).is_up())
            .map(|i| sim.id_of(i))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != ids.len() {
            return; // two processes share an id: "lowest id" names two of them
        }
        let xid = sim.id_of(x);
        let lower = (0..sim.len() as NodeIdx)
            .filter(|&y| sim.id_of(y) < xid)
            .find(|&y| self.able(sim, y, at));
        if lower.is_some() && self.one_way_links {
            self.one_way_breaches += 1;
            return;
        }
        if let Some(y) = lower {
            self.count += 1;
            if self.violations.len() < 3 {
                self.violations.push(format!(
                    "seed {}: group {:?}: node {} elected at {:.3}s while node {} (lower id, \
                     running, reaching a quorum of voters) could lead",
                    self.seed,
                    self.group,
                    xid,
                    at.as_secs_f64(),
                    sim.id_of(y)
                ));
            }
        }
    }
}

impl Checker for BullyCheck {
    fn on_record(&mut self, sim: &Sim, rec: &Record) {
        if let Event::Leadership(ElectionEvent::Elected { group, .. }) = &rec.event {
            if *group == self.group {
                self.elected(sim, rec.node, rec.at);
            }
        }
    }

    fn on_action(&mut self, sim: &Sim, action: &Action) {
        let now = sim.now();
        match action {
            Action::CampaignAll => {
                for i in 0..sim.len() as NodeIdx {
                    if sim.node(i).is_up() {
                        self.campaigning.entry(i).or_insert(now);
                    }
                }
            }
            Action::Campaign(i) => {
                self.campaigning.entry(*i).or_insert(now);
            }
            Action::Restart(i) => {
                self.campaigning.insert(*i, now);
            }
            Action::StartTwin(k) => {
                let first_twin = sim.len() - self.twins;
                self.campaigning.insert((first_twin + k) as NodeIdx, now);
            }
            Action::RestartDown => {
                for i in (0..sim.len() as NodeIdx).filter(|&i| !sim.node(i).is_up()) {
                    self.campaigning.insert(i, now);
                }
            }
            Action::Crash(i) | Action::Resign(i) | Action::Leave(i) => {
                self.campaigning.remove(i);
                let leading = sim
                    .node(*i)
                    .engine()
                    .and_then(|e| e.election())
                    .and_then(|e| e.leadership(&self.group))
                    .is_some();
                if !leading {
                    self.quit.insert(*i, now);
                }
            }
            Action::Pause { node, duration } => {
                self.stalled_until.insert(*node, now + *duration);
            }
            Action::Loss(p) => {
                self.lossy = *p > 0.0;
                self.network_changed = now;
            }
            // Whether links lose datagrams is read from the network at each election.
            Action::LinkLoss { .. } => self.network_changed = now,
            Action::Partition(Cut::Links(links)) => {
                self.one_way_links |= links.iter().any(|&(a, b)| !links.contains(&(b, a)));
                self.network_changed = now;
            }
            Action::Heal => {
                self.one_way_links = false;
                self.network_changed = now;
            }
            Action::Partition(_) | Action::Slow { .. } | Action::Unslow(_) => {
                self.network_changed = now
            }
            _ => {}
        }
    }

    fn finish(&mut self, _sim: &Sim, report: &mut Report) {
        report.metric("bully_violations", self.count);
        report.metric("bully_breaches_one_way_links", self.one_way_breaches);
        if self.enforce {
            for v in self.violations.drain(..) {
                report.violation(v);
            }
        }
    }
}
