//! Election scenarios: each holds on ten seeds (the bounded sweep CI runs; longer ones
//! are in the README), failovers stay within about a lease, and each checker is shown
//! to catch a deliberately unsafe election or a broken cluster.

use std::time::Duration;

use quorate::election::lease::UnsafeVariant;
use quorate::{Config, NodeId};
use quorate_netsim::catalogue::{self, Params, CATALOGUE};
use quorate_netsim::elect::LeaderFault;
use quorate_netsim::elections::{self, election_base};
use quorate_netsim::{replay_command, Action, Outcome, Step};

fn params(nodes: usize, seed: u64, variant: Option<UnsafeVariant>) -> Params {
    Params {
        variant,
        ..Params::new(nodes, seed)
    }
}

fn run(name: &str, seed: u64, variant: Option<UnsafeVariant>) -> Outcome {
    let entry = catalogue::find(name).expect("known scenario");
    entry.run(&params(entry.nodes, seed, variant))
}

fn replay(o: &Outcome) -> String {
    replay_command(&o.scenario, o.nodes, o.seed, None)
}

fn holds(o: &Outcome) {
    assert!(
        o.violations.is_empty(),
        "{} seed {}: {:?}\n  replay: {}",
        o.scenario,
        o.seed,
        o.violations,
        replay(o)
    );
}

fn metric(o: &Outcome, name: &str) -> f64 {
    o.num(name).unwrap_or_else(|| {
        panic!(
            "{} seed {}: no metric {name} in {:?}\n  replay: {}",
            o.scenario,
            o.seed,
            o.metrics,
            replay(o)
        )
    })
}

fn lease_ms() -> f64 {
    Config::lan().election.timing.lease.as_secs_f64() * 1000.0
}

#[test]
fn every_election_scenario_holds_on_ten_seeds() {
    let names: Vec<&str> = CATALOGUE
        .iter()
        .filter(|e| e.election)
        .map(|e| e.name)
        .collect();
    assert_eq!(names.len(), 15, "{names:?}");
    for name in names {
        for seed in 0..10 {
            let o = run(name, seed, None);
            holds(&o);
            assert_eq!(o.metrics["leaders_max_concurrent"], 1, "{name} {seed}");
            assert_eq!(o.metrics["terms_monotonic"], true, "{name} {seed}");
            assert!(
                metric(&o, "failover_ms") <= metric(&o, "liveness_bound_ms"),
                "{name} {seed}"
            );
            assert!(metric(&o, "leader_changes") >= 1.0, "{name} {seed}");
        }
    }
}

/// Clusters where every node votes (three or five nodes): each scenario on a few seeds,
/// and the 3-node runs where a restarted lowest id once took over its dead
/// predecessor's fencing token.
#[test]
fn every_election_scenario_holds_in_clusters_of_three_and_five() {
    for e in CATALOGUE.iter().filter(|e| e.election) {
        for nodes in [3, 5] {
            for seed in 0..4 {
                holds(&e.run(&params(nodes, seed, None)));
            }
        }
    }
    for seed in [84, 89] {
        let o = catalogue::find("flapping-lowest")
            .expect("known")
            .run(&params(3, seed, None));
        holds(&o);
    }
}

#[test]
fn same_seed_same_election_trace() {
    let a = run("chaos", 3, None);
    let b = run("chaos", 3, None);
    let c = run("chaos", 4, None);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.metrics, b.metrics);
    assert_ne!(a.trace_hash, c.trace_hash);
}

/// Every failover measured by a scenario: a crashed, cut-off, stalled, mute or deaf
/// leader is replaced within two leases (its promises run out in one).
#[test]
fn failed_leaders_are_replaced_within_two_leases() {
    let cases = [
        ("leader-crash", "crash_failover_ms"),
        ("leader-isolated", "isolated_failover_ms"),
        ("leader-pause", "pause_failover_ms"),
        ("one-way-partition", "mute_failover_ms"),
        ("one-way-partition", "deaf_failover_ms"),
        ("clock-drift", "crash_failover_ms"),
    ];
    for (name, m) in cases {
        for seed in 0..4 {
            let o = run(name, seed, None);
            holds(&o);
            let ms = metric(&o, m);
            assert!(
                ms > 0.0 && ms <= 2.0 * lease_ms(),
                "{name} seed {seed}: {m} = {ms}\n  replay: {}",
                replay(&o)
            );
        }
    }
}

/// 30% datagram loss: renewals lost one after another cost the lease at times, but a
/// leader holds the group most of the time.
#[test]
fn a_leader_holds_most_of_the_time_under_30_percent_loss() {
    for seed in 0..3 {
        let o = run("election-loss", seed, None);
        holds(&o);
        let pct = metric(&o, "leader_time_pct");
        assert!(pct >= 85.0, "seed {seed}: a leader only {pct}% of the time");
    }
}

/// Each unsafe variant is caught in the scenario that shows it, on every seed tried,
/// and the safe election passes the same runs: the unsafe elections by two leaders at
/// once, a renewal that needs the highest term by leases lost while a quorum could
/// hear the leader, gossiped terms by a group left leaderless, the highest id first by
/// the Bully rule.
#[test]
fn every_unsafe_variant_is_caught() {
    for v in UnsafeVariant::ALL {
        let name = elections::showcase(v);
        let sign = match v {
            UnsafeVariant::BareMajorityRenewal => "lost its lease",
            UnsafeVariant::GossipTerms => "no leader for",
            UnsafeVariant::HighestFirst => "could lead",
            _ => "two leaders",
        };
        for seed in [2, 3, 4] {
            let o = run(name, seed, Some(v));
            assert!(
                o.violations.iter().any(|x| x.contains(sign)),
                "{name} --break {} seed {seed} was not caught: {:?}",
                v.name(),
                o.violations
            );
            if sign == "two leaders" {
                assert!(metric(&o, "leaders_max_concurrent") >= 2.0);
            }
            holds(&run(name, seed, None));
        }
    }
}

/// The fencing checker is trusted because it catches terms going back: without a data
/// directory, a cluster that restarts whole forgets the terms its voters granted.
#[test]
fn term_checker_catches_voters_that_forget_their_terms() {
    let p = params(5, 1, None);
    let mut s = election_base("forgetful-voters", &p);
    s.durable_terms = false;
    // No term floor either (the runtime takes one from the wall clock; see the
    // `voters-wiped` scenario).
    s.term_floor = false;
    // Hand the leadership around to raise the term, then restart every node.
    for _ in 0..3 {
        s = s
            .step(Step::AtLeader(LeaderFault::Resign))
            .run_for(Duration::from_millis(500))
            .act(Action::CampaignAll)
            .run_for(Duration::from_secs(2));
    }
    for i in 0..5 {
        s = s.act(Action::Crash(i));
    }
    let s = s.act(Action::RestartDown).run_for(Duration::from_secs(6));
    let forgetful = s.run();
    assert!(
        forgetful
            .violations
            .iter()
            .any(|x| x.contains("not above term")),
        "{:?}",
        forgetful.violations
    );
    assert_eq!(forgetful.metrics["terms_monotonic"], false);
    // Durable voters (the scenarios' default) keep their terms, and so does a
    // cluster whose nodes take a term floor from their clock.
    let mut durable = s.clone();
    durable.durable_terms = true;
    holds(&durable.run());
    let mut floored = s;
    floored.term_floor = true;
    holds(&floored.run());
}

/// The liveness checker is trusted because it catches a group left without a leader:
/// a majority of the voters crash for good.
#[test]
fn liveness_checker_catches_a_lost_majority_of_voters() {
    let p = params(7, 2, None);
    let s = election_base("lost-majority", &p)
        .act(Action::Crash(2))
        .act(Action::Crash(3))
        .act(Action::Crash(4))
        .run_for(Duration::from_secs(12));
    let o = s.run();
    assert!(
        o.violations.iter().any(|x| x.contains("no leader for")),
        "{:?}",
        o.violations
    );
    assert!(metric(&o, "failover_ms") > metric(&o, "liveness_bound_ms"));
}

#[test]
fn voters_are_the_first_five_and_every_variant_names_a_scenario() {
    assert_eq!(
        elections::voters(9),
        (1..=5).map(NodeId).collect::<Vec<_>>()
    );
    assert_eq!(elections::voters(4).len(), 3);
    assert_eq!(elections::voters(2).len(), 2);
    for v in UnsafeVariant::ALL {
        let e = catalogue::find(elections::showcase(v)).expect("scenario");
        assert!(e.election);
    }
}
