//! The named scenarios of the `quorate-netsim` command, built from [`Params`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use quorate::election::lease::UnsafeVariant;
use quorate::Config;

use crate::check::false_dead_budget;
use crate::net::{Cut, NodeIdx};
use crate::scenario::{Action, Cond, Outcome, Scenario, Step};
use crate::{elections, hazards};

/// What a user chooses for a named scenario.
#[derive(Clone, Debug)]
pub struct Params {
    /// Cluster size.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Datagram loss probability (0.1 = 10%), where the scenario uses one.
    pub loss: Option<f64>,
    /// Length of the scenario's main phase, where it has one.
    pub duration: Option<Duration>,
    /// Protocol configuration.
    pub config: Config,
    /// Report progress of long runs on stderr.
    pub progress: bool,
    /// Start from a formed cluster (every node knows every other) instead of a join
    /// storm through one seed.
    pub formed: bool,
    /// Bytes of application metadata every node publishes.
    pub meta_bytes: usize,
    /// A deliberately unsafe election (election scenarios only), for the checkers to
    /// catch.
    pub variant: Option<UnsafeVariant>,
    /// Threads that run membership scenarios (see [`Scenario::threads`]).
    pub threads: usize,
}

impl Params {
    /// `nodes` nodes, `seed`, LAN defaults.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Params {
            nodes,
            seed,
            loss: None,
            duration: None,
            config: Config::lan(),
            progress: false,
            formed: false,
            meta_bytes: 0,
            variant: None,
            threads: 1,
        }
    }
}

/// Threads worth giving a membership simulation of `nodes` nodes: one per core for a
/// thousand nodes and more, one below (a small cluster's windows hold an event or two,
/// too few to share out).
pub fn auto_threads(nodes: usize) -> usize {
    if nodes < 1000 {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// A named scenario.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// Cluster size unless one is asked for.
    pub nodes: usize,
    /// Whether it runs elections (and takes `--break`).
    pub election: bool,
    run: fn(&Params, &mut Exec<'_>) -> Outcome,
}

/// How a scenario's simulations are run (plainly, or with their trace written out).
pub type Exec<'a> = dyn FnMut(&Scenario) -> Outcome + 'a;

impl Entry {
    /// Runs it.
    pub fn run(&self, p: &Params) -> Outcome {
        (self.run)(p, &mut |s: &Scenario| s.run())
    }

    /// The simulations it runs, in order, without running them (a scenario that
    /// compares two configurations runs two).
    pub fn scenarios(&self, p: &Params) -> Vec<Scenario> {
        let mut all = Vec::new();
        (self.run)(p, &mut |s: &Scenario| {
            all.push(s.clone());
            s.refused_outcome(String::new())
        });
        all
    }

    /// Runs every simulation it makes through `exec` (see [`executor`]).
    pub fn run_exec(&self, p: &Params, exec: &mut Exec<'_>) -> Outcome {
        (self.run)(p, exec)
    }

    /// Runs it, writing the trace of every simulation to `out`.
    pub fn run_traced(&self, p: &Params, out: Box<dyn std::io::Write>) -> Outcome {
        let shared = SharedWriter::new(out);
        (self.run)(p, &mut |s: &Scenario| {
            s.run_with(Vec::new(), Some(Box::new(shared.clone())))
        })
    }
}

/// Runs each simulation with the checkers `extra` makes for it, writing its trace to
/// `trace` (one writer for all of a run's simulations, in turn).
pub fn executor<'a>(
    trace: Option<Box<dyn std::io::Write>>,
    mut extra: impl FnMut(&Scenario) -> Vec<Box<dyn crate::check::Checker>> + 'a,
) -> impl FnMut(&Scenario) -> Outcome + 'a {
    let shared = trace.map(SharedWriter::new);
    move |s: &Scenario| {
        let w = shared
            .clone()
            .map(|w| Box::new(w) as Box<dyn std::io::Write>);
        s.run_with(extra(s), w)
    }
}

/// One writer shared by the simulations of a run, each writing its trace in turn.
#[derive(Clone)]
pub(crate) struct SharedWriter(Rc<RefCell<Box<dyn std::io::Write>>>);

impl SharedWriter {
    pub(crate) fn new(out: Box<dyn std::io::Write>) -> Self {
        SharedWriter(Rc::new(RefCell::new(out)))
    }
}

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// Every named scenario.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        name: "converge",
        about: "N nodes join through one seed; converged_ms: until every view is complete",
        nodes: 32,
        election: false,
        run: converge,
    },
    Entry {
        name: "crash",
        about: "one node crashes; first_detect_ms / all_detect_ms: until one / every node \
                has it dead",
        nodes: 32,
        election: false,
        run: crash,
    },
    Entry {
        name: "loss",
        about: "steady state under datagram loss (default 10%, 10 min); false_dead: live \
                members declared dead",
        nodes: 32,
        election: false,
        run: loss,
    },
    Entry {
        name: "partition-heal",
        about: "two halves cut for 60 s then healed; heal_ms: to one complete view after \
                healing",
        nodes: 32,
        election: false,
        run: partition_heal,
    },
    Entry {
        name: "slow-node",
        about: "one node handles messages late, with Lifeguard on and off; false suspicions \
                and deaths of healthy nodes",
        nodes: 32,
        election: false,
        run: slow_node,
    },
    Entry {
        name: "flaky",
        about: "restart, pause, one-way and partial cuts, duplication, reordering and clock \
                drift together; the cluster must converge after each",
        nodes: 32,
        election: false,
        run: flaky,
    },
    Entry {
        name: "leader-crash",
        about: "election: the leader crashes, twice; crash_failover_ms: crash to new leader",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::leader_crash(p)),
    },
    Entry {
        name: "leader-isolated",
        about: "election: the leader on the minority side of a partition, then cut off alone",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::leader_isolated(p)),
    },
    Entry {
        name: "partial-partition",
        about: "election: the lowest id reaches some nodes but not a quorum of voters",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::partial_partition(p)),
    },
    Entry {
        name: "one-way-partition",
        about: "election: the leader goes mute (sends nothing), then the next goes deaf",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::one_way_partition(p)),
    },
    Entry {
        name: "voter-restart",
        about: "election: voters restart one by one, then all but the cut-off leader at once",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::voter_restart(p)),
    },
    Entry {
        name: "clock-drift",
        about: "election: every clock within ±5% (ρ = 5%), worst case for the first leader",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::clock_drift(p)),
    },
    Entry {
        name: "leader-pause",
        about: "election: the leader stalls longer than its lease (and once shorter)",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::leader_pause(p)),
    },
    Entry {
        name: "flapping-lowest",
        about: "election: the lowest id keeps crashing and coming back",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::flapping_lowest(p)),
    },
    Entry {
        name: "election-loss",
        about: "election: 30% datagram loss for 60 s (`loss` is the membership scenario)",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::election_loss(p)),
    },
    Entry {
        name: "duplicate-id",
        about: "election: a second process with the leader's id, a replacement started \
                while the leader stalls, a second process of a voter",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&hazards::duplicate_id(p)),
    },
    Entry {
        name: "voters-restart-all",
        about: "election: every voter restarts at once (three times), then a majority \
                first; voters keep their granted terms",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&hazards::voters_restart_all(p, true)),
    },
    Entry {
        name: "voters-wiped",
        about: "election: as voters-restart-all, every voter losing its data each time \
                (the term floor keeps fencing tokens rising)",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&hazards::voters_restart_all(p, false)),
    },
    Entry {
        name: "lying-insider",
        about: "election: a member gossips that it leads at the largest term, leaves; \
                then the leader crashes",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&hazards::lying_insider(p)),
    },
    Entry {
        name: "leader-stability",
        about: "election: one then two follower voters stall 2.5 s, at 0% then 10% loss; \
                lease_losses_with_quorum must stay 0",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&hazards::leader_stability(p)),
    },
    Entry {
        name: "chaos",
        about: "election: a random mix of every fault, drawn from the seed",
        nodes: ELECTION_NODES,
        election: true,
        run: |p, exec| exec(&elections::chaos(p)),
    },
];

/// Default cluster size of the election scenarios: five voters and four other nodes.
pub const ELECTION_NODES: usize = 9;

/// The named scenario, if it exists.
pub fn find(name: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.name == name)
}

/// Joins spread over 1 ms per node, at most 10 s.
fn spread(n: usize) -> Duration {
    Duration::from_millis(n as u64).min(Duration::from_secs(10))
}

/// Generous bound for convergence: grows with the cluster and its push-pull period.
pub fn converge_within(p: &Params) -> Duration {
    let c = &p.config;
    Duration::from_secs(60) + c.push_pull_interval_for(p.nodes) * 4
}

/// A converged cluster of `p.nodes`: the start of every other scenario.
pub fn base(name: &str, p: &Params) -> Scenario {
    let mut s = Scenario::new(name, p.nodes, p.seed).config(p.config.clone());
    s.settle = converge_within(p);
    s.progress = p.progress;
    s.meta_bytes = p.meta_bytes;
    s.threads = p.threads;
    let s = if p.formed {
        s.act(Action::Form)
    } else {
        s.join_all(spread(p.nodes))
    };
    s.until(Cond::Converged, converge_within(p), "converged_ms")
}

fn victim(p: &Params) -> NodeIdx {
    if p.nodes < 2 {
        return 0;
    }
    (1 + p.seed % (p.nodes as u64 - 1)) as NodeIdx
}

fn converge(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    let mut s = base("converge", p);
    if let Some(l) = p.loss {
        s.net.default.loss = l;
        s.false_dead_budget = false_dead_budget(l);
    }
    exec(&s)
}

/// Crash detection on a converged cluster.
pub fn crash_scenario(p: &Params) -> Scenario {
    let v = victim(p);
    let within = Duration::from_secs(120);
    let mut s = base("crash", p)
        .run_for(Duration::from_secs(2))
        .act(Action::Crash(v))
        .mark()
        .until(Cond::DetectedByAny(v), within, "first_detect_ms")
        .until(Cond::DetectedByAll(v), within, "all_detect_ms");
    if let Some(l) = p.loss {
        s.steps.insert(0, Step::Act(Action::Loss(l)));
        s.false_dead_budget = false_dead_budget(l);
    }
    s
}

fn crash(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    exec(&crash_scenario(p))
}

/// Steady state under loss: converge without loss, then `duration` at the loss.
pub fn loss_scenario(p: &Params) -> Scenario {
    let l = p.loss.unwrap_or(0.10);
    let d = p.duration.unwrap_or(Duration::from_secs(600));
    let mut s = base("loss", p)
        .act(Action::Loss(l))
        .step(Step::TrafficFrom)
        .run_for(d)
        .step(Step::TrafficRates);
    s.false_dead_budget = false_dead_budget(l);
    s
}

fn loss(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    let mut o = exec(&loss_scenario(p));
    o.metrics
        .insert("loss".into(), p.loss.unwrap_or(0.10).into());
    o
}

fn partition_heal(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    let d = p.duration.unwrap_or(Duration::from_secs(60));
    let mut s = base("partition-heal", p)
        .act(Action::Partition(Cut::halves(p.nodes, p.nodes / 2)))
        .run_for(d)
        .act(Action::Heal)
        .mark()
        .until(Cond::Converged, converge_within(p), "heal_ms");
    if let Some(l) = p.loss {
        s.steps.insert(0, Step::Act(Action::Loss(l)));
        s.false_dead_budget = false_dead_budget(l);
    }
    exec(&s)
}

/// One node handles its messages 300–700 ms late for `duration` (default 2 min).
pub fn slow_scenario(p: &Params, lifeguard: bool) -> Scenario {
    let d = p.duration.unwrap_or(Duration::from_secs(120));
    let mut cfg = p.config.clone();
    cfg.lifeguard = lifeguard;
    let q = Params {
        config: cfg,
        ..p.clone()
    };
    let v = victim(p);
    let mut s = base("slow-node", &q)
        .act(Action::Slow {
            node: v,
            min: Duration::from_millis(300),
            max: Duration::from_millis(700),
        })
        .run_for(d)
        .act(Action::Unslow(v));
    if let Some(l) = p.loss {
        s.steps.insert(0, Step::Act(Action::Loss(l)));
    }
    // Plain SWIM is the comparison: its false deaths are expected, not checked.
    s.false_dead_budget = if lifeguard {
        false_dead_budget(p.loss.unwrap_or(0.0))
    } else {
        None
    };
    s
}

fn slow_node(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    let mut out = exec(&slow_scenario(p, true));
    let plain = exec(&slow_scenario(p, false));
    let (fs_lg, fd_lg) = (out.num("false_suspect"), out.num("false_dead"));
    let (fs_pl, fd_pl) = (plain.num("false_suspect"), plain.num("false_dead"));
    out.metrics.clear();
    out.absorb(plain, "plain");
    out.metrics.retain(|k, _| k.starts_with("converged_ms"));
    let mut put = |k: &str, v: Option<f64>| {
        out.metrics.insert(k.into(), v.unwrap_or(f64::NAN).into());
    };
    put("false_suspect_lifeguard", fs_lg);
    put("false_suspect_plain", fs_pl);
    put("false_dead_lifeguard", fd_lg);
    put("false_dead_plain", fd_pl);
    let (lg, pl) = (fs_lg.unwrap_or(0.0), fs_pl.unwrap_or(0.0));
    let ratio = pl / lg.max(1.0);
    out.metrics.insert(
        "suspect_reduction".into(),
        ((ratio * 10.0).round() / 10.0).into(),
    );
    if pl < 10.0 {
        out.violations.push(format!(
            "plain SWIM raised only {pl} false suspicions: the slow node is too mild to compare"
        ));
    } else if lg * 10.0 > pl {
        out.violations.push(format!(
            "Lifeguard cut false suspicions of healthy nodes only {ratio:.1}x ({lg} vs {pl})"
        ));
    }
    out
}

/// Every fault kind in turn, each followed by a convergence check.
pub fn flaky_scenario(p: &Params) -> Scenario {
    let n = p.nodes;
    let v = victim(p);
    let w = (v as usize + n / 2).max(1) % n;
    let w = if w == 0 || w == v as usize { 1 } else { w } as NodeIdx;
    let within = converge_within(p);
    let mut s = base("flaky", p);
    s.net.default.duplicate = 0.02;
    s.net.default.reorder = 0.05;
    let quarter: Vec<NodeIdx> = (0..n as NodeIdx).filter(|i| i % 4 == 1).collect();
    let rest: Vec<NodeIdx> = (0..n as NodeIdx).filter(|i| i % 4 != 1).collect();
    let partial: std::collections::HashSet<(NodeIdx, NodeIdx)> = (0..n as NodeIdx)
        .filter(|i| i % 3 == 0)
        .flat_map(|i| [(i, v), (v, i)])
        .collect();
    s.act(Action::Drift { node: w, ppm: 200 })
        .act(Action::Loss(p.loss.unwrap_or(0.02)))
        .act(Action::Crash(v))
        .run_for(Duration::from_secs(10))
        .act(Action::Restart(v))
        .mark()
        .until(Cond::Converged, within, "restart_ms")
        .act(Action::Pause {
            node: w,
            duration: Duration::from_secs(3),
        })
        .mark()
        .run_for(Duration::from_secs(4))
        .until(Cond::Converged, within, "pause_ms")
        .act(Action::Partition(Cut::one_way(n, &quarter, &rest)))
        .run_for(Duration::from_secs(20))
        .act(Action::Heal)
        .mark()
        .until(Cond::Converged, within, "one_way_ms")
        .act(Action::Partition(Cut::Links(partial)))
        .run_for(Duration::from_secs(20))
        .act(Action::Heal)
        .mark()
        .until(Cond::Converged, within, "partial_ms")
}

fn flaky(p: &Params, exec: &mut Exec<'_>) -> Outcome {
    exec(&flaky_scenario(p))
}
