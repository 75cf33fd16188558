//! The election scenarios: every node runs for group [`GROUP`] through its engine, the
//! voters are the first [`MAX_VOTERS`] nodes, and [`crate::elect::LeaderCheck`] runs on
//! every one of them (at most one leader at any real instant, terms increasing, a
//! leader within the liveness bound once a fault healed). Voters keep their highest
//! granted terms across restarts, as with a data directory (without one, a majority of
//! voters restarting at once forgets the terms: safety holds, fencing tokens may go
//! back). A restarted node campaigns again at once. The seed node is the last node.
//!
//! With [`Params::variant`] set, the engines run a deliberately unsafe election
//! (`quorate-netsim run <scenario> --break <variant>`), which the checkers must catch.

use std::time::Duration;

use quorate::election::lease::UnsafeVariant;
use quorate::{Config, NodeId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::catalogue::{converge_within, Params};
use crate::elect::LeaderFault;
use crate::net::{Cut, NodeIdx};
use crate::scenario::{Action, Cond, Scenario, Step};
use crate::sim::node_id;

/// The scenarios where a breach of the Bully rule is a violation: every election
/// scenario (a scenario left out would only count its breaches, `bully_violations`).
pub const BULLY_ENFORCED: &[&str] = &[
    "leader-crash",
    "leader-isolated",
    "partial-partition",
    "one-way-partition",
    "voter-restart",
    "clock-drift",
    "leader-pause",
    "election-loss",
    "duplicate-id",
    "voters-restart-all",
    "voters-wiped",
    "lying-insider",
    "leader-stability",
    "flapping-lowest",
    "chaos",
];

/// The group every node runs for.
pub const GROUP: &str = "g";

/// Most voters: the first five nodes (ids 1 to 5) vote.
pub const MAX_VOTERS: usize = 5;

/// The voters of a cluster of `n`: the first five nodes, the first three in a cluster
/// of three or four, every node in a smaller one.
pub fn voters(n: usize) -> Vec<NodeId> {
    let v = match n {
        0..=2 => n,
        3 | 4 => 3,
        _ => MAX_VOTERS,
    };
    (0..v as NodeIdx).map(node_id).collect()
}

/// Which scenario shows each unsafe variant being caught.
pub fn showcase(v: UnsafeVariant) -> &'static str {
    match v {
        UnsafeVariant::NoQuarantine => "voter-restart",
        UnsafeVariant::NoDriftMargin => "clock-drift",
        UnsafeVariant::GossipQuorum => "leader-isolated",
        UnsafeVariant::BareIdPromise => "duplicate-id",
        UnsafeVariant::BareMajorityRenewal => "leader-stability",
        UnsafeVariant::GossipTerms => "lying-insider",
        UnsafeVariant::HighestFirst => "clock-drift",
    }
}

/// What each unsafe variant does, one line.
pub fn about_variant(v: UnsafeVariant) -> &'static str {
    match v {
        UnsafeVariant::NoQuarantine => "restarted voters grant at once, forgetting their promises",
        UnsafeVariant::NoDriftMargin => {
            "leader deadline s + L, with no drift correction and no margin"
        }
        UnsafeVariant::GossipQuorum => {
            "quorum of the gossiped live view: every node votes, each side of a partition \
             elects"
        }
        UnsafeVariant::BareIdPromise => {
            "promises by bare node id: a second process with the leader's id takes over"
        }
        UnsafeVariant::BareMajorityRenewal => {
            "renewals need the highest term: voters a failed round took are lost to the leader"
        }
        UnsafeVariant::GossipTerms => {
            "gossiped terms raise voters and candidates, wrapping: one liar disables the group"
        }
        UnsafeVariant::HighestFirst => {
            "at a vacancy the highest id asks first: safe, against the Bully rule"
        }
    }
}

/// `p.config` with elections on: the voters, and the unsafe variant if one is asked.
/// Under `gossip-quorum` every node starts as a voter and each engine then counts the
/// members it sees live.
pub fn election_config(p: &Params) -> Config {
    let mut cfg = p.config.clone();
    cfg.election.voters = match p.variant {
        Some(UnsafeVariant::GossipQuorum) => (0..p.nodes as NodeIdx).map(node_id).collect(),
        _ => voters(p.nodes),
    };
    cfg.election.unsafe_variant = p.variant;
    cfg
}

pub(crate) fn lease(p: &Params) -> Duration {
    p.config.election.timing.lease
}

/// A converged cluster whose nodes all campaign and elect a first leader, then run
/// steadily for a few leases. The seed node is the last node (not a voter).
pub fn election_base(name: &str, p: &Params) -> Scenario {
    let mut s = Scenario::new(name, p.nodes, p.seed).config(election_config(p));
    s.seed_node = p.nodes.saturating_sub(1) as NodeIdx;
    s.settle = converge_within(p);
    s.progress = p.progress;
    s.meta_bytes = p.meta_bytes;
    s.group = Some(GROUP.to_owned());
    s.durable_terms = true;
    s.enforce_bully = BULLY_ENFORCED.contains(&name);
    s.join_all(Duration::from_millis(p.nodes as u64).min(Duration::from_secs(10)))
        .until(Cond::Converged, converge_within(p), "converged_ms")
        .act(Action::CampaignAll)
        .mark()
        .until(leader(), Duration::from_secs(10), "elected_ms")
        .run_for(lease(p) * 3)
}

pub(crate) fn leader() -> Cond {
    Cond::Leader(GROUP.to_owned())
}

pub(crate) fn new_leader() -> Cond {
    Cond::NewLeader(GROUP.to_owned())
}

pub(crate) fn at_leader(s: Scenario, f: LeaderFault) -> Scenario {
    s.step(Step::AtLeader(f))
}

/// The scenario's own random choices, from its seed (`salt` tells scenarios apart).
pub(crate) fn rng(p: &Params, salt: u64) -> SmallRng {
    SmallRng::seed_from_u64(p.seed ^ salt)
}

/// Waits a random part of a lease, so that faults fall anywhere between renewals.
pub(crate) fn phase(s: Scenario, rng: &mut SmallRng, p: &Params) -> Scenario {
    let l = lease(p).as_millis() as u64;
    s.run_for(Duration::from_millis(rng.random_range(0..l)))
}

/// The leader crashes, twice; `crash_failover_ms` is the worst time to a new leader.
pub fn leader_crash(p: &Params) -> Scenario {
    let mut r = rng(p, 0xc4a5);
    let mut s = election_base("leader-crash", p);
    for _ in 0..2 {
        s = at_leader(phase(s, &mut r, p), LeaderFault::Crash)
            .mark()
            .until(new_leader(), Duration::from_secs(10), "")
            .run_for(Duration::from_secs(2))
            .act(Action::RestartDown)
            .run_for(Duration::from_secs(3));
    }
    s.run_for(Duration::from_secs(2))
}

/// The leader ends up on the minority side of a partition (one voter short of a
/// quorum), then, healed, the new leader is cut off alone.
pub fn leader_isolated(p: &Params) -> Scenario {
    let mut r = rng(p, 0x1501);
    let s = phase(election_base("leader-isolated", p), &mut r, p);
    let s = at_leader(s, LeaderFault::Minority)
        .mark()
        .until(
            new_leader(),
            Duration::from_secs(10),
            "isolated_failover_ms",
        )
        .run_for(Duration::from_secs(6))
        .act(Action::Heal)
        .run_for(Duration::from_secs(4));
    at_leader(phase(s, &mut r, p), LeaderFault::Isolate)
        .run_for(Duration::from_secs(6))
        .act(Action::Heal)
        .run_for(Duration::from_secs(5))
}

/// The lowest id (usually the first leader) reaches every non-voter and the next
/// voters up to one short of a quorum (the second voter, of five), but not the others:
/// it cannot lead, and another node must, while it keeps asking first;
/// `partial_failover_ms` is the time until another node leads.
pub fn partial_partition(p: &Params) -> Scenario {
    let v = voters(p.nodes).len() as NodeIdx;
    let reached = quorate::election::quorum(v as usize) as NodeIdx - 1;
    let cut: std::collections::HashSet<(NodeIdx, NodeIdx)> =
        (reached..v).flat_map(|i| [(0, i), (i, 0)]).collect();
    let s = phase(
        election_base("partial-partition", p),
        &mut rng(p, 0x9a27),
        p,
    );
    s.act(Action::Partition(Cut::Links(cut)))
        .mark()
        .until(
            Cond::LeaderNot(GROUP.to_owned(), 0),
            Duration::from_secs(15),
            "partial_failover_ms",
        )
        .run_for(Duration::from_secs(10))
        .act(Action::Heal)
        .run_for(Duration::from_secs(5))
}

/// The leader goes mute (it receives but nothing it sends arrives), then after healing
/// the next leader goes deaf (what it sends arrives, nothing reaches it).
pub fn one_way_partition(p: &Params) -> Scenario {
    let mut r = rng(p, 0x0e1a);
    let s = phase(election_base("one-way-partition", p), &mut r, p);
    let s = at_leader(s, LeaderFault::Mute)
        .mark()
        .until(new_leader(), Duration::from_secs(10), "mute_failover_ms")
        .run_for(Duration::from_secs(5))
        .act(Action::Heal)
        .run_for(Duration::from_secs(4));
    at_leader(phase(s, &mut r, p), LeaderFault::Deaf)
        .mark()
        .until(new_leader(), Duration::from_secs(10), "deaf_failover_ms")
        .run_for(Duration::from_secs(5))
        .act(Action::Heal)
        .run_for(Duration::from_secs(5))
}

/// Voters restart one by one (the leader among them), then twice over the leader is cut
/// off and every other voter restarts at once, forgetting what it promised: only the
/// restart quarantine keeps them from electing someone else before the cut-off
/// leader's lease ends.
pub fn voter_restart(p: &Params) -> Scenario {
    let mut r = rng(p, 0x7e57);
    let mut s = election_base("voter-restart", p);
    for v in 0..voters(p.nodes).len() as NodeIdx {
        s = phase(s, &mut r, p)
            .act(Action::Crash(v))
            .run_for(Duration::from_millis(800))
            .act(Action::Restart(v))
            .run_for(Duration::from_secs(3));
    }
    for _ in 0..2 {
        s = at_leader(phase(s, &mut r, p), LeaderFault::Isolate);
        s = at_leader(s, LeaderFault::RestartVoters)
            .run_for(Duration::from_secs(6))
            .act(Action::Heal)
            .run_for(Duration::from_secs(4));
    }
    s
}

/// Every clock runs within ±ρ of real time, with ρ = 5% here: the first leader's
/// clock slow by ρ and the other voters' fast by ρ (the worst case for the lease
/// arithmetic), the others anywhere in between. The leader is cut off, crashed, and
/// stalled in turn.
pub fn clock_drift(p: &Params) -> Scenario {
    const RHO: f64 = 0.05;
    let mut q = p.clone();
    q.config.election.timing.drift = RHO;
    let ppm = (RHO * 1e6) as i64;
    let mut r = rng(p, 0xd21f);
    let v = voters(p.nodes).len() as NodeIdx;
    let drifts: Vec<Step> = (0..p.nodes as NodeIdx)
        .map(|i| {
            let d = match i {
                0 => -ppm,
                i if i < v => ppm,
                _ => r.random_range(-ppm..=ppm),
            };
            Step::Act(Action::Drift { node: i, ppm: d })
        })
        .collect();
    let mut s = election_base("clock-drift", &q);
    s.steps.splice(0..0, drifts);
    let s = at_leader(phase(s, &mut r, p), LeaderFault::Isolate)
        .run_for(Duration::from_secs(5))
        .act(Action::Heal)
        .run_for(Duration::from_secs(3));
    let s = at_leader(phase(s, &mut r, p), LeaderFault::Crash)
        .run_for(Duration::from_secs(3))
        .act(Action::RestartDown)
        .run_for(Duration::from_secs(3));
    let s = phase(s, &mut r, p);
    at_leader(s, LeaderFault::Pause(lease(p) * 2)).run_for(Duration::from_secs(6))
}

/// The leader stalls for longer than its lease (twice, and just over once), then for
/// half a lease: a stalled leader's lease runs on, and it must not lead on waking.
pub fn leader_pause(p: &Params) -> Scenario {
    let l = lease(p);
    let mut r = rng(p, 0x9a05);
    let mut s = election_base("leader-pause", p);
    for d in [l * 2, l + Duration::from_millis(100), l / 2] {
        s = at_leader(phase(s, &mut r, p), LeaderFault::Pause(d)).mark();
        if d > l {
            // A new leadership (another node's, or the stalled one's under a new term
            // once it wakes) within a lease of the stall's end.
            s = s.until(new_leader(), d + l, "pause_failover_ms");
        }
        s = s.run_for(d + Duration::from_secs(4));
    }
    s
}

/// The lowest id keeps crashing and coming back (down and up for random times from
/// the seed), sometimes faster than a lease.
pub fn flapping_lowest(p: &Params) -> Scenario {
    let mut rng = rng(p, 0xf1a9);
    let mut s = election_base("flapping-lowest", p);
    for _ in 0..6 {
        let down = Duration::from_millis(rng.random_range(200..2500));
        let up = Duration::from_millis(rng.random_range(300..3000));
        s = s
            .act(Action::Crash(0))
            .run_for(down)
            .act(Action::Restart(0))
            .run_for(up);
    }
    s.run_for(Duration::from_secs(5))
}

/// Datagram loss (default 30%) for a minute (`--duration`), then none; election
/// messages are datagrams. `leader_time_pct` is the share of time with a leader.
pub fn election_loss(p: &Params) -> Scenario {
    let l = p.loss.unwrap_or(0.30);
    let d = p.duration.unwrap_or(Duration::from_secs(60));
    let mut s = election_base("election-loss", p)
        .act(Action::Loss(l))
        .run_for(d)
        .act(Action::Loss(0.0))
        .run_for(Duration::from_secs(8));
    s.false_dead_budget = crate::check::false_dead_budget(l);
    s
}

/// A random mix of the faults, drawn from the seed: clocks within ±ρ (the config's),
/// then eight bouts of one or two faults at once (crashes, stalls, symmetric, one-way
/// and partial partitions, loss, voter restarts, resignations, slow nodes), each held
/// for up to 6 s and healed, then a quiet end for the liveness check.
pub fn chaos(p: &Params) -> Scenario {
    let mut rng = rng(p, 0xc4a05);
    let n = p.nodes;
    let ppm = (p.config.election.timing.drift * 1e6) as i64;
    let drifts: Vec<Step> = (0..n as NodeIdx)
        .map(|i| {
            let d = rng.random_range(-ppm..=ppm);
            Step::Act(Action::Drift { node: i, ppm: d })
        })
        .collect();
    let mut s = election_base("chaos", p);
    s.steps.splice(0..0, drifts);
    for _ in 0..8 {
        let hold = Duration::from_millis(rng.random_range(300..6000));
        let mut slow = Vec::new();
        for _ in 0..1 + usize::from(rng.random::<f64>() < 0.3) {
            let step = chaos_fault(&mut rng, n, &mut slow);
            s = s.step(step);
        }
        s = s.run_for(hold).act(Action::Heal).act(Action::Loss(0.0));
        for i in slow {
            s = s.act(Action::Unslow(i));
        }
        s = s
            .act(Action::RestartDown)
            .act(Action::CampaignAll)
            .run_for(Duration::from_millis(rng.random_range(0..3000)));
    }
    s.run_for(Duration::from_secs(8))
}

/// One random fault; a node made slow is added to `slow`.
fn chaos_fault(rng: &mut SmallRng, n: usize, slow: &mut Vec<NodeIdx>) -> Step {
    let node = rng.random_range(0..n as NodeIdx);
    let ms = |rng: &mut SmallRng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..hi));
    match rng.random_range(0..13) {
        0 => Step::AtLeader(LeaderFault::Crash),
        1 => Step::Act(Action::Crash(node)),
        2 => Step::AtLeader(LeaderFault::Pause(ms(rng, 200, 3000))),
        3 => Step::Act(Action::Pause {
            node,
            duration: ms(rng, 200, 3000),
        }),
        4 => Step::AtLeader(LeaderFault::Isolate),
        5 => Step::AtLeader(LeaderFault::Minority),
        6 => {
            let sides = (0..n).map(|_| rng.random_range(0..3u16)).collect();
            Step::Act(Action::Partition(Cut::Groups(sides)))
        }
        7 => Step::AtLeader(LeaderFault::Mute),
        8 => Step::AtLeader(LeaderFault::Deaf),
        9 => Step::Act(Action::Loss(rng.random_range(0.05..0.35))),
        10 => Step::AtLeader(LeaderFault::RestartVoters),
        11 => {
            let links = (0..n as NodeIdx)
                .flat_map(|a| (0..n as NodeIdx).map(move |b| (a, b)))
                .filter(|&(a, b)| a != b && rng.random::<f64>() < 0.25)
                .collect();
            Step::Act(Action::Partition(Cut::Links(links)))
        }
        _ if rng.random::<bool>() => Step::AtLeader(LeaderFault::Resign),
        _ => {
            slow.push(node);
            Step::Act(Action::Slow {
                node,
                min: ms(rng, 20, 100),
                max: ms(rng, 100, 500),
            })
        }
    }
}
