//! Scenarios as data: a cluster, a network and a script of steps (actions, waits,
//! conditions with their measured times), built with a small builder and run against
//! the checkers.
//!
//! ```
//! use std::time::Duration;
//! use quorate_netsim::scenario::{Action, Cond, Scenario};
//!
//! let s = Scenario::new("crash-one", 8, 42)
//!     .join_all(Duration::from_millis(50))
//!     .until(Cond::Converged, Duration::from_secs(30), "converged_ms")
//!     .act(Action::Crash(3))
//!     .mark()
//!     .until(Cond::DetectedByAll(3), Duration::from_secs(30), "all_detect_ms");
//! let out = s.run();
//! assert!(out.violations.is_empty(), "{:?}", out.violations);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use quorate::{Config, ElectionEvent};
use serde_json::Value;

use crate::check::{self, Checker, Report};
use crate::elect::{LeaderCheck, LeaderFault};
use crate::net::{Cut, Net, NodeIdx};
use crate::sim::{NetStats, Sim};
use crate::trace::mix;

/// Something done to the cluster or the network.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Node joins through the scenario's seed node.
    Join(NodeIdx),
    /// Every running node learns every other at once (see [`Sim::form_node`]): a formed
    /// cluster without the join storm that forms it.
    Form,
    /// The seed node starts the cluster, every other node joins through it, the joins
    /// spread evenly over `spread` (the script goes on after the last join).
    JoinAll {
        /// Time from the first join to the last.
        spread: Duration,
    },
    /// The process dies: state lost, messages to it dropped.
    Crash(NodeIdx),
    /// A crashed node starts again with the same id and rejoins through the seed node.
    Restart(NodeIdx),
    /// The node leaves gracefully and stops.
    Leave(NodeIdx),
    /// Cuts links (added to the cuts in force).
    Partition(Cut),
    /// Removes every cut.
    Heal,
    /// Sets the datagram loss probability of every link.
    Loss(f64),
    /// Sets the datagram loss probability of the links from every node of `from` to
    /// every node of `to` (one way).
    LinkLoss {
        /// Senders.
        from: Vec<NodeIdx>,
        /// Receivers.
        to: Vec<NodeIdx>,
        /// The loss probability.
        loss: f64,
    },
    /// Stalls the process for `duration`.
    Pause {
        /// The node.
        node: NodeIdx,
        /// How long.
        duration: Duration,
    },
    /// The node handles every incoming message late, by `min..=max`.
    Slow {
        /// The node.
        node: NodeIdx,
        /// Shortest extra delay.
        min: Duration,
        /// Longest extra delay.
        max: Duration,
    },
    /// The node handles its messages on time again.
    Unslow(NodeIdx),
    /// The node's clock runs `ppm` parts per million fast (negative: slow).
    Drift {
        /// The node.
        node: NodeIdx,
        /// Rate error.
        ppm: i64,
    },
    /// The node runs for leadership of the scenario's group.
    Campaign(NodeIdx),
    /// Every running node runs for leadership of the scenario's group.
    CampaignAll,
    /// The node stops running for the scenario's group (a leader steps down).
    Resign(NodeIdx),
    /// Every crashed node starts again (and campaigns, when the scenario has a group);
    /// second processes of a node ([`Scenario::twins`]) stay down.
    RestartDown,
    /// Second process number `k` of [`Scenario::twins`] starts (another address, the
    /// same id and certificate) while the first may still run, joins and campaigns.
    StartTwin(usize),
    /// The node gossips that it leads the scenario's group at `term`, with no voter's
    /// grant (a lying member with a valid certificate).
    Lie {
        /// The liar.
        node: NodeIdx,
        /// The term it claims.
        term: quorate::Term,
    },
}

/// A condition a script waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Every running node sees exactly the running nodes as live.
    Converged,
    /// Some running node no longer sees the node as live.
    DetectedByAny(NodeIdx),
    /// No running node sees the node as live.
    DetectedByAll(NodeIdx),
    /// Some running node holds an unexpired leadership of the group.
    Leader(String),
    /// Some running node holds an unexpired leadership of the group other than the
    /// one in force at the last [`Step::Mark`] (a failover happened).
    NewLeader(String),
    /// Some running node other than this one holds an unexpired leadership.
    LeaderNot(String, NodeIdx),
}

impl Cond {
    /// Whether it holds now, the leadership in force at the last mark being `marked`.
    pub fn holds(&self, sim: &Sim, marked: Option<(NodeIdx, quorate::Term)>) -> bool {
        let v = sim.views();
        match *self {
            Cond::NewLeader(ref g) => {
                let now = crate::elect::current_leadership(sim, g);
                now.is_some() && now != marked
            }
            Cond::Converged => v.converged(),
            Cond::DetectedByAny(x) => (v.seen_by(x) as usize) < v.n_up(),
            Cond::DetectedByAll(x) => v.seen_by(x) == 0,
            Cond::Leader(ref g) => crate::elect::current_leader(sim, g).is_some(),
            Cond::LeaderNot(ref g, x) => {
                crate::elect::current_leader(sim, g).is_some_and(|l| l != x)
            }
        }
    }
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Apply an action now.
    Act(Action),
    /// Let simulated time pass.
    Run(Duration),
    /// Let simulated time pass until this long after the start (nothing if later).
    RunUntil(Duration),
    /// Measure the following waits from now.
    Mark,
    /// Run until `cond` holds, at most `within`; the time since the last mark goes to
    /// metric `metric` (in ms). Not holding in time is a violation.
    Until {
        /// The condition.
        cond: Cond,
        /// Longest wait.
        within: Duration,
        /// Metric name, if the time is to be reported.
        metric: Option<String>,
    },
    /// Start counting traffic (for [`Step::TrafficRates`]).
    TrafficFrom,
    /// Report messages and bytes per running node per second since
    /// [`Step::TrafficFrom`] (`msgs_per_node_s`, `bytes_per_node_s`).
    TrafficRates,
    /// A fault aimed at whichever node leads the scenario's group now (the lowest-id
    /// running node when none does).
    AtLeader(LeaderFault),
}

/// A cluster, a network and a script.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (reported).
    pub name: String,
    /// Cluster size.
    pub nodes: usize,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The node the others join through.
    pub seed_node: NodeIdx,
    /// Protocol configuration of every node.
    pub config: Config,
    /// The network at the start.
    pub net: Net,
    /// The script.
    pub steps: Vec<Step>,
    /// After the script, cuts are healed and the cluster gets this long to converge.
    pub settle: Duration,
    /// False deaths tolerated (`None`: reported, not checked).
    pub false_dead_budget: Option<u64>,
    /// Prints the simulated time and the nodes still converging to stderr every
    /// million events (for long runs).
    pub progress: bool,
    /// The group elections run for: [`Action::CampaignAll`] and restarted nodes
    /// campaign for it, and the election checkers run (`None`: no elections).
    pub group: Option<String>,
    /// Voters keep the highest term they granted per group across restarts, as with a
    /// data directory: every `TermRaised` is written to the node's simulated disk and
    /// given back to its engine when it restarts (`Engine::restore_term`).
    pub durable_terms: bool,
    /// Bytes of application metadata every node publishes (0: none).
    pub meta_bytes: usize,
    /// Second processes of existing nodes: node `nodes + k` runs with the id of node
    /// `twins[k]` (its own address). They start down; [`Action::StartTwin`] starts them.
    pub twins: Vec<NodeIdx>,
    /// Nodes that run their own configuration instead of [`Scenario::config`].
    pub node_configs: Vec<(NodeIdx, Config)>,
    /// Most leaderships that may run out while a quorum of voters could hear the
    /// leader (see [`crate::hazards::StabilityCheck`]); `None`: only measured.
    pub lease_loss_budget: Option<u64>,
    /// Whether a breach of the Bully rule is a violation (else only counted in
    /// `bully_violations`).
    pub enforce_bully: bool,
    /// Whether nodes take a term floor from their clock when they start (as the
    /// runtime does from the wall clock); off, a cluster that restarts without data
    /// starts its terms over.
    pub term_floor: bool,
    /// Threads that run the simulation (membership-only scenarios; elections run on
    /// one). Results are the same for any number: only wall time changes.
    pub threads: usize,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// Cluster size.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Simulated time, ms.
    pub sim_ms: u64,
    /// Wall time, ms.
    pub wall_ms: u64,
    /// Hash of the whole trace.
    pub trace_hash: u64,
    /// Properties that did not hold.
    pub violations: Vec<String>,
    /// Measurements.
    pub metrics: std::collections::BTreeMap<String, Value>,
    /// Traffic counters.
    pub net: NetStats,
    /// The measured phase (from [`Step::TrafficFrom`] to [`Step::TrafficRates`]), when
    /// the scenario has one: simulated and wall ms.
    pub steady: Option<(u64, u64)>,
    /// Threads the simulation ran on (wall time only: the outcome is the same on any).
    pub threads: usize,
}

impl Outcome {
    /// A metric as a number, if present.
    pub fn num(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).and_then(Value::as_f64)
    }

    /// Simulated node-seconds per wall second.
    pub fn speed(&self) -> f64 {
        self.nodes as f64 * self.sim_ms as f64 / (self.wall_ms.max(1) as f64)
    }

    /// Simulated node-seconds per wall second in the measured phase alone (no joins),
    /// when there is one.
    pub fn steady_speed(&self) -> Option<f64> {
        let (sim, wall) = self.steady?;
        Some(self.nodes as f64 * sim as f64 / (wall.max(1) as f64))
    }

    /// Folds another outcome into this one (a scenario made of several runs).
    pub fn absorb(&mut self, other: Outcome, prefix: &str) {
        self.threads = self.threads.max(other.threads);
        self.sim_ms += other.sim_ms;
        self.wall_ms += other.wall_ms;
        self.trace_hash = mix(self.trace_hash, other.trace_hash);
        for v in other.violations {
            self.violations.push(format!("{prefix}: {v}"));
        }
        for (k, v) in other.metrics {
            self.metrics.insert(format!("{k}_{prefix}"), v);
        }
    }
}

impl Scenario {
    /// `nodes` nodes on a LAN with [`Config::lan`], an empty script.
    pub fn new(name: &str, nodes: usize, seed: u64) -> Self {
        Scenario {
            name: name.to_owned(),
            nodes,
            seed,
            seed_node: 0,
            config: Config::lan(),
            net: Net::default(),
            steps: Vec::new(),
            settle: Duration::from_secs(120),
            false_dead_budget: Some(0),
            progress: false,
            group: None,
            durable_terms: false,
            meta_bytes: 0,
            twins: Vec::new(),
            node_configs: Vec::new(),
            lease_loss_budget: None,
            enforce_bully: true,
            term_floor: true,
            threads: 1,
        }
    }

    /// Uses protocol configuration `cfg`.
    pub fn config(mut self, cfg: Config) -> Self {
        self.config = cfg;
        self
    }

    /// Uses network `net`.
    pub fn net(mut self, net: Net) -> Self {
        self.net = net;
        self
    }

    /// Adds a step.
    pub fn step(mut self, s: Step) -> Self {
        self.steps.push(s);
        self
    }

    /// Adds an action.
    pub fn act(self, a: Action) -> Self {
        self.step(Step::Act(a))
    }

    /// Lets `d` pass.
    pub fn run_for(self, d: Duration) -> Self {
        self.step(Step::Run(d))
    }

    /// Measures the following waits from here.
    pub fn mark(self) -> Self {
        self.step(Step::Mark)
    }

    /// Every node joins through the seed node, joins spread over `spread`.
    pub fn join_all(self, spread: Duration) -> Self {
        self.act(Action::JoinAll { spread })
    }

    /// Waits for `cond` (at most `within`), reporting the time as `metric` ms.
    pub fn until(self, cond: Cond, within: Duration, metric: &str) -> Self {
        self.step(Step::Until {
            cond,
            within,
            metric: (!metric.is_empty()).then(|| metric.to_owned()),
        })
    }

    /// Runs with the standard checkers.
    pub fn run(&self) -> Outcome {
        self.run_with(Vec::new(), None)
    }

    /// Runs with the standard checkers plus `extra`, writing the trace to `trace`.
    pub fn run_with(
        &self,
        extra: Vec<Box<dyn Checker>>,
        trace: Option<Box<dyn std::io::Write>>,
    ) -> Outcome {
        #[allow(clippy::disallowed_methods)] // wall time is reported, never simulated
        let wall = std::time::Instant::now();
        let mut r = match Runner::new(self, extra, trace) {
            Ok(r) => r,
            Err(e) => return self.refused_outcome(format!("configuration refused: {e}")),
        };
        for step in &self.steps {
            r.step(step);
        }
        r.settle(self.settle);
        let mut report = std::mem::take(&mut r.report);
        for c in &mut r.checkers {
            c.finish(&r.sim, &mut report);
        }
        r.sim.trace_mut().flush();
        Outcome {
            scenario: self.name.clone(),
            nodes: self.nodes,
            seed: self.seed,
            sim_ms: r.sim.now().as_millis() as u64,
            wall_ms: wall.elapsed().as_millis() as u64,
            trace_hash: r.sim.trace().hash(),
            violations: report.violations,
            metrics: report.metrics,
            net: r.sim.stats(),
            steady: r.steady,
            threads: r.sim.threads(),
        }
    }

    /// The outcome of a run that did not start, violation `why` (none when empty).
    pub fn refused_outcome(&self, why: String) -> Outcome {
        Outcome {
            scenario: self.name.clone(),
            nodes: self.nodes,
            seed: self.seed,
            sim_ms: 0,
            wall_ms: 0,
            trace_hash: 0,
            violations: (!why.is_empty()).then_some(why).into_iter().collect(),
            metrics: Default::default(),
            net: NetStats::default(),
            steady: None,
            threads: 0,
        }
    }

    /// How long after a disturbance accusations are still expected: the longest
    /// suspicion plus margin for gossip.
    pub fn grace(&self) -> Duration {
        let c = &self.config;
        let max = c.suspicion_min(self.nodes) * c.suspicion_max_mult.max(1);
        max * 2 + c.probe_interval * (c.awareness_max + 1) * 4 + Duration::from_secs(10)
    }
}

/// Simulated time a free run goes between checks of its engine events (their number
/// bounds the memory they take meanwhile).
const FREE_SLICE: Duration = Duration::from_millis(50);

struct Runner {
    sim: Sim,
    checkers: Vec<Box<dyn Checker>>,
    report: Report,
    mark: Duration,
    seed_node: NodeIdx,
    /// The first second process of a node (see [`Scenario::twins`]).
    first_twin: NodeIdx,
    traffic: (Duration, NetStats),
    /// Wall time at [`Step::TrafficFrom`].
    traffic_wall: std::time::Instant,
    /// The measured phase: simulated and wall ms.
    steady: Option<(u64, u64)>,
    progress: bool,
    /// When the run started, for progress reports (never simulated).
    wall: std::time::Instant,
    steps: u64,
    /// Events run a window at a time (membership-only scenarios: their conditions
    /// and checkers read only what the windows report, not the engines' state).
    windowed: bool,
    group: Option<String>,
    voters: Vec<quorate::NodeId>,
    /// The leadership in force at the last mark.
    mark_leader: Option<(NodeIdx, quorate::Term)>,
    /// Each node's durable terms, when the scenario keeps them.
    disk: Option<HashMap<NodeIdx, BTreeMap<String, quorate::Term>>>,
    /// Whether restarted nodes keep the term floor of their clock.
    term_floor: bool,
}

impl Runner {
    fn new(
        s: &Scenario,
        extra: Vec<Box<dyn Checker>>,
        trace: Option<Box<dyn std::io::Write>>,
    ) -> Result<Self, quorate::ConfigError> {
        let windowed = s.group.is_none();
        let threads = if windowed { s.threads } else { 1 };
        let (net, meta) = (s.net.clone(), s.meta_bytes);
        let total = s.nodes + s.twins.len();
        let mut sim = Sim::with_threads(s.seed, total, &s.config, net, meta, threads)?;
        if let Some(w) = trace {
            sim.set_trace_writer(w);
        }
        for (i, cfg) in &s.node_configs {
            sim.set_config(*i, cfg.clone())?;
        }
        if !s.term_floor {
            for i in 0..total as NodeIdx {
                sim.with_engine(i, |e, _| e.set_term_floor(0));
            }
        }
        for (k, &of) in s.twins.iter().enumerate() {
            let twin = (s.nodes + k) as NodeIdx;
            sim.crash(twin);
            sim.set_id(twin, sim.id_of(of));
        }
        let mut checkers = check::standard(s.false_dead_budget, s.grace());
        if let Some(g) = &s.group {
            checkers.push(Box::new(LeaderCheck::new(g, s.seed, &s.config)));
            let (twins, enforce) = (s.twins.len(), s.enforce_bully);
            let bully = crate::bully::BullyCheck::new(g, s.seed, &s.config, twins, enforce);
            checkers.push(Box::new(bully));
            checkers.extend(crate::hazards::checkers(s, g));
        }
        checkers.extend(extra);
        Ok(Runner {
            sim,
            checkers,
            report: Report::default(),
            mark: Duration::ZERO,
            seed_node: s.seed_node,
            first_twin: s.nodes as NodeIdx,
            traffic: (Duration::ZERO, NetStats::default()),
            #[allow(clippy::disallowed_methods)] // wall time is reported, never simulated
            traffic_wall: std::time::Instant::now(),
            steady: None,
            progress: s.progress,
            #[allow(clippy::disallowed_methods)] // progress reports only
            wall: std::time::Instant::now(),
            steps: 0,
            windowed,
            group: s.group.clone(),
            voters: s.config.election.voters.clone(),
            mark_leader: None,
            disk: s.durable_terms.then(HashMap::new),
            term_floor: s.term_floor,
        })
    }

    fn dispatch(&mut self) {
        if !self.sim.has_records() {
            return;
        }
        let recs: Vec<_> = self.sim.drain_records().collect();
        if let Some(disk) = self.disk.as_mut() {
            for rec in &recs {
                let quorate::Event::Leadership(ElectionEvent::TermRaised { group, term }) =
                    &rec.event
                else {
                    continue;
                };
                let t = disk
                    .entry(rec.node)
                    .or_default()
                    .entry(group.clone())
                    .or_default();
                *t = (*t).max(*term);
            }
        }
        for rec in &recs {
            for c in &mut self.checkers {
                c.on_record(&self.sim, rec);
            }
        }
    }

    /// Runs until `until`, feeding the checkers; stops early when `cond` holds.
    fn run(&mut self, until: Duration, cond: Option<&Cond>) -> bool {
        loop {
            if cond.is_some_and(|c| c.holds(&self.sim, self.mark_leader)) {
                return true;
            }
            let more = if self.windowed {
                self.sim.run_window(until)
            } else {
                self.sim.step(until)
            };
            if !more {
                self.sim.run_until(until);
                return cond.is_some_and(|c| c.holds(&self.sim, self.mark_leader));
            }
            self.dispatch();
            self.steps += 1;
            if self.progress && self.steps % (1 << 18) == 0 {
                eprintln!(
                    "  wall {:.1}s: sim {:.1}s, {} steps, {} of {} nodes with a wrong view",
                    self.wall.elapsed().as_secs_f64(),
                    self.sim.now().as_secs_f64(),
                    self.steps,
                    self.sim.views().wrong_observers(),
                    self.sim.views().n_up()
                );
            }
        }
    }

    /// Runs until `until` with no condition to watch: freely, in slices whose engine
    /// events are checked at their end.
    fn run_free(&mut self, until: Duration) {
        loop {
            let slice = (self.sim.now() + FREE_SLICE).min(until);
            self.sim.run_free(slice);
            self.dispatch();
            if self.sim.now() >= until {
                return;
            }
            self.steps += 1;
            if self.progress && self.steps % 1024 == 0 {
                eprintln!(
                    "  wall {:.1}s: sim {:.1}s",
                    self.wall.elapsed().as_secs_f64(),
                    self.sim.now().as_secs_f64()
                );
            }
        }
    }

    /// Lets simulated time pass until `until`.
    fn run_to(&mut self, until: Duration) {
        if self.windowed {
            self.run_free(until);
        } else {
            self.run(until, None);
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Act(a) => self.act(a),
            Step::Run(d) => self.run_to(self.sim.now() + *d),
            Step::RunUntil(at) => self.run_to((*at).max(self.sim.now())),
            Step::Mark => {
                self.mark = self.sim.now();
                let g = self.group.as_deref().unwrap_or_default();
                self.mark_leader = crate::elect::current_leadership(&self.sim, g);
            }
            Step::Until {
                cond,
                within,
                metric,
            } => {
                let start = self.sim.now();
                let held = self.run(start + *within, Some(cond));
                let ms = (self.sim.now() - self.mark).as_secs_f64() * 1000.0;
                if let Some(m) = metric {
                    let v = if held {
                        Value::from((ms * 10.0).round() / 10.0)
                    } else {
                        Value::Null
                    };
                    self.report.metric(m, v);
                }
                if !held {
                    self.report.violation(format!(
                        "{cond:?} did not hold within {:.1}s (at {:.1}s)",
                        within.as_secs_f64(),
                        self.sim.now().as_secs_f64()
                    ));
                }
            }
            Step::TrafficFrom => {
                self.traffic = (self.sim.now(), self.sim.stats());
                #[allow(clippy::disallowed_methods)] // wall time is reported, never simulated
                let wall = std::time::Instant::now();
                self.traffic_wall = wall;
            }
            Step::TrafficRates => self.traffic_rates(),
            Step::AtLeader(f) => {
                let group = self.group.clone().unwrap_or_default();
                let leader = crate::elect::current_leader(&self.sim, &group)
                    .or_else(|| (0..self.sim.len() as NodeIdx).find(|&i| self.sim.node(i).is_up()));
                let Some(leader) = leader else { return };
                for a in f.actions(leader, self.sim.len(), &self.voters) {
                    self.act(&a);
                }
            }
        }
    }

    fn traffic_rates(&mut self) {
        let (from, ref s0) = self.traffic;
        let s1 = &self.sim.stats();
        let secs = (self.sim.now() - from).as_secs_f64().max(1e-9);
        let per = secs * self.sim.views().n_up().max(1) as f64;
        let msgs = (s1.datagrams + s1.streams - s0.datagrams - s0.streams) as f64 / per;
        let bytes = (s1.bytes - s0.bytes) as f64 / per;
        self.steady = Some((
            (self.sim.now() - from).as_millis() as u64,
            self.traffic_wall.elapsed().as_millis() as u64,
        ));
        self.report
            .metric("msgs_per_node_s", (msgs * 100.0).round() / 100.0);
        self.report.metric("bytes_per_node_s", bytes.round());
    }

    fn act(&mut self, a: &Action) {
        if self.sim.trace().writing() {
            let fields = crate::debug_json::action_fields(a);
            self.sim.trace_line(format_args!("{fields}"));
        }
        for c in &mut self.checkers {
            c.on_action(&self.sim, a);
        }
        let seeds = [self.seed_node];
        match a {
            Action::Join(i) => self.sim.join(*i, &seeds),
            Action::JoinAll { spread } => self.join_all(*spread),
            Action::Form => self.form(),
            Action::Crash(i) => self.sim.crash(*i),
            Action::Restart(i) => self.restart(*i),
            Action::RestartDown => {
                for i in 0..self.first_twin {
                    if !self.sim.node(i).is_up() {
                        self.restart(i);
                    }
                }
            }
            Action::StartTwin(k) => self.restart(self.first_twin + *k as NodeIdx),
            Action::Lie { node, term } => {
                if let Some(g) = self.group.clone() {
                    let t = *term;
                    self.sim
                        .with_engine(*node, |e, now| e.claim_leadership_unsafe(now, &g, t));
                }
            }
            Action::Campaign(i) => self.campaign(*i),
            Action::CampaignAll => {
                for i in 0..self.sim.len() as NodeIdx {
                    self.campaign(i);
                }
            }
            Action::Resign(i) => {
                if let Some(g) = self.group.clone() {
                    self.sim.with_engine(*i, |e, now| e.resign(now, &g));
                }
            }
            Action::Leave(i) => self.sim.leave(*i),
            Action::Partition(cut) => self.sim.net_mut().cuts.push(cut.clone()),
            Action::Heal => self.sim.net_mut().cuts.clear(),
            Action::Loss(p) => {
                let net = self.sim.net_mut();
                net.default.loss = *p;
                for l in net.overrides.values_mut() {
                    l.loss = *p;
                }
            }
            Action::LinkLoss { from, to, loss } => self.sim.net_mut().set_loss(from, to, *loss),
            Action::Pause { node, duration } => self.sim.pause(*node, *duration),
            Action::Slow { node, min, max } => self.sim.set_slow(*node, Some((*min, *max))),
            Action::Unslow(node) => self.sim.set_slow(*node, None),
            Action::Drift { node, ppm } => self.sim.set_drift(*node, *ppm),
        }
        self.dispatch();
    }

    /// Restarts node `i`, which campaigns at once when the scenario has a group.
    fn restart(&mut self, i: NodeIdx) {
        if self.sim.node(i).is_up() {
            return;
        }
        // Through the seed node, or any running node it can reach while the seed node
        // is down or cut off from it.
        let ok = |s: NodeIdx| {
            self.sim.id_of(s) != self.sim.id_of(i)
                && self.sim.node(s).is_up()
                && !self.sim.net().is_cut(i, s)
                && !self.sim.net().is_cut(s, i)
        };
        let seed = Some(self.seed_node)
            .filter(|&s| ok(s))
            .or_else(|| (0..self.sim.len() as NodeIdx).find(|&s| ok(s)))
            .unwrap_or(self.seed_node);
        if let Err(e) = self.sim.restart(i, &[seed]) {
            self.report.violation(format!("restart refused: {e}"));
        }
        if !self.term_floor {
            self.sim.with_engine(i, |e, _| e.set_term_floor(0));
        }
        if let Some(terms) = self.disk.as_ref().and_then(|d| d.get(&i)).cloned() {
            self.sim.with_engine(i, |e, _| {
                for (g, t) in &terms {
                    e.restore_term(g, *t);
                }
            });
        }
        self.campaign(i);
    }

    /// Node `i` runs for the scenario's group (nothing when it has none).
    fn campaign(&mut self, i: NodeIdx) {
        let Some(g) = self.group.clone() else { return };
        let mut refused = None;
        self.sim.with_engine(i, |e, now| {
            refused = e.campaign(now, &g).err();
        });
        if let Some(e) = refused.filter(|e| !matches!(e, quorate::CampaignError::AlreadyRunning(_)))
        {
            self.report
                .violation(format!("node {} could not campaign: {e}", u64::from(i) + 1));
        }
    }

    /// A formed cluster, one node at a time (each node's events are checked before the
    /// next is formed, so they never pile up).
    fn form(&mut self) {
        let frames = self.sim.formation();
        for i in 0..self.sim.len() as NodeIdx {
            self.sim.form_node(i, &frames);
            self.dispatch();
        }
        if self.progress {
            eprintln!(
                "  wall {:.1}s: formed {} nodes",
                self.wall.elapsed().as_secs_f64(),
                self.sim.len()
            );
        }
    }

    fn join_all(&mut self, spread: Duration) {
        let n = self.sim.len() as NodeIdx;
        let seed = self.seed_node;
        self.sim.join(seed, &[]);
        let start = self.sim.now();
        let others = n.saturating_sub(1).max(1);
        let mut k = 0;
        for i in (0..n).filter(|&i| i != seed) {
            k += 1;
            let at = start + spread.mul_f64(f64::from(k) / f64::from(others));
            self.run(at, None);
            self.sim.join(i, &[seed]);
            self.dispatch();
        }
    }

    /// Heals the network and lets the cluster converge (bounded).
    fn settle(&mut self, max: Duration) {
        if self.sim.net().partitioned() {
            self.act(&Action::Heal);
        }
        let until = self.sim.now() + max;
        self.run(until, Some(&Cond::Converged));
    }
}
