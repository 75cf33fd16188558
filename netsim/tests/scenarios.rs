//! Scenario tests: each runs a few seeds at modest sizes and, on failure, prints the
//! seed and the command that replays it.

use std::time::Duration;

use quorate::Config;
use quorate_netsim::catalogue::{self, Params};
use quorate_netsim::{replay_command, Action, Cut, Outcome, Scenario};

fn check(o: &Outcome, loss: Option<f64>) {
    assert!(
        o.violations.is_empty(),
        "scenario {} seed {} failed: {:?}\n  replay: {}",
        o.scenario,
        o.seed,
        o.violations,
        replay_command(&o.scenario, o.nodes, o.seed, loss)
    );
}

fn run(name: &str, nodes: usize, seed: u64, loss: Option<f64>) -> Outcome {
    let p = Params {
        loss,
        ..Params::new(nodes, seed)
    };
    let o = catalogue::find(name).expect("known scenario").run(&p);
    check(&o, loss);
    o
}

fn metric(o: &Outcome, name: &str) -> f64 {
    o.num(name).unwrap_or_else(|| {
        panic!(
            "metric {name} missing in {:?}\n  replay: {}",
            o.metrics,
            replay_command(&o.scenario, o.nodes, o.seed, None)
        )
    })
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    for name in ["crash", "flaky"] {
        let a = run(name, 24, 7, None);
        let b = run(name, 24, 7, None);
        let c = run(name, 24, 8, None);
        assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, same trace");
        assert_eq!(a.net, b.net, "{name}: same seed, same traffic");
        assert_eq!(a.metrics, b.metrics, "{name}: same seed, same metrics");
        assert_ne!(a.trace_hash, c.trace_hash, "{name}: different seeds differ");
    }
}

/// Splitting the nodes among threads changes nothing but wall time: every fault kind
/// (loss, duplication, reordering, drift, crash, restart, pause, one-way and partial
/// partitions in `flaky`; slowness in `slow-node`) gives the same trace, traffic and
/// metrics on one thread as on two or three.
#[test]
fn thread_count_changes_nothing_but_wall_time() {
    for (name, nodes) in [("flaky", 30), ("slow-node", 16), ("partition-heal", 20)] {
        let p = |threads| Params {
            threads,
            duration: Some(Duration::from_secs(30)),
            ..Params::new(nodes, 5)
        };
        let entry = catalogue::find(name).expect("known scenario");
        let one = entry.run(&p(1));
        check(&one, None);
        for threads in [2, 3] {
            let more = entry.run(&p(threads));
            assert_eq!(one.trace_hash, more.trace_hash, "{name}: {threads} threads");
            assert_eq!(one.net, more.net, "{name}: {threads} threads");
            assert_eq!(one.metrics, more.metrics, "{name}: {threads} threads");
        }
    }
}

#[test]
fn clusters_converge() {
    for (nodes, seed) in [(10, 1), (64, 2), (200, 3)] {
        let o = run("converge", nodes, seed, None);
        let ms = metric(&o, "converged_ms");
        assert!(ms > 0.0 && ms < 30_000.0, "n={nodes} converged in {ms} ms");
    }
}

#[test]
fn a_formed_cluster_starts_converged_and_behaves_like_a_joined_one() {
    for seed in [1, 2] {
        let p = Params {
            formed: true,
            ..Params::new(300, seed)
        };
        let o = catalogue::find("crash").expect("known scenario").run(&p);
        check(&o, None);
        assert_eq!(
            metric(&o, "converged_ms"),
            0.0,
            "every view complete at once"
        );
        let all = metric(&o, "all_detect_ms");
        assert!(all > 0.0 && all < 5_000.0, "crash seen by all in {all} ms");
        let again = catalogue::find("crash").expect("known scenario").run(&p);
        assert_eq!(
            o.trace_hash, again.trace_hash,
            "a formed run replays from its seed"
        );
    }
}

#[test]
fn crash_is_detected_by_every_node_within_2_5_s() {
    for seed in 1..=4 {
        let o = run("crash", 32, seed, None);
        let first = metric(&o, "first_detect_ms");
        let all = metric(&o, "all_detect_ms");
        assert!(first <= all, "seed {seed}: {first} > {all}");
        assert!(
            all < 2_500.0,
            "seed {seed}: every node learned of the crash only after {all} ms\n  replay: {}",
            replay_command("crash", 32, seed, None)
        );
    }
}

#[test]
fn ten_percent_loss_for_ten_minutes_kills_no_live_node() {
    // 100 nodes, 10 simulated minutes at 10% datagram loss.
    let o = run("loss", 100, 1, Some(0.10));
    assert_eq!(metric(&o, "false_dead"), 0.0);
    assert!(o.sim_ms >= 600_000);
}

#[test]
fn partition_heals_without_operator_action() {
    for seed in [1, 2] {
        let o = run("partition-heal", 20, seed, None);
        let heal = metric(&o, "heal_ms");
        assert!(heal < 60_000.0, "seed {seed}: healed in {heal} ms");
        assert!(
            metric(&o, "dead_disturbed") > 0.0,
            "each side declared the other dead"
        );
    }
}

#[test]
fn lifeguard_cuts_false_suspicions_of_healthy_nodes_tenfold() {
    for seed in [1, 2] {
        let p = Params {
            duration: Some(Duration::from_secs(60)),
            ..Params::new(16, seed)
        };
        let o = catalogue::find("slow-node").expect("known").run(&p);
        check(&o, None);
        let lg = metric(&o, "false_suspect_lifeguard");
        let plain = metric(&o, "false_suspect_plain");
        assert!(
            plain >= 10.0,
            "seed {seed}: plain SWIM suspected only {plain}"
        );
        assert!(
            plain >= 10.0 * lg.max(1.0),
            "seed {seed}: lifeguard {lg} vs plain {plain}"
        );
    }
}

#[test]
fn every_fault_kind_then_convergence() {
    for seed in [1, 2] {
        run("flaky", 16, seed, None);
    }
}

/// The false-death checker is trusted because it catches a deliberately broken
/// configuration: suspicions that expire long before a refutation can arrive.
#[test]
fn checker_catches_absurdly_short_suspicion_under_loss() {
    let mut broken = Config::lan();
    broken.suspicion_mult = 1;
    broken.suspicion_max_mult = 1;
    broken.indirect_checks = 0;
    broken.fallback_ping = false;
    broken.lifeguard = false;
    broken.gossip_interval = Duration::from_secs(1);
    let p = Params {
        loss: Some(0.10),
        duration: Some(Duration::from_secs(60)),
        config: broken,
        ..Params::new(30, 1)
    };
    let o = catalogue::loss_scenario(&p).run();
    assert!(metric(&o, "false_dead") > 0.0);
    assert!(
        o.violations.iter().any(|v| v.contains("declared dead")),
        "the checker missed {} false deaths: {:?}",
        metric(&o, "false_dead"),
        o.violations
    );
    // The same scenario with the default configuration passes.
    let fine = Params {
        config: Config::lan(),
        ..p
    };
    check(&catalogue::loss_scenario(&fine).run(), Some(0.10));
}

/// The convergence checker is trusted because it catches a cluster that cannot heal:
/// no anti-entropy, and reconnection attempts too rare to matter.
#[test]
fn checker_catches_a_partition_that_never_heals() {
    let mut broken = Config::lan();
    broken.push_pull_interval = Duration::ZERO;
    broken.reconnect_interval = Duration::from_secs(3600);
    let mut s = Scenario::new("no-heal", 12, 3)
        .config(broken)
        .join_all(Duration::from_millis(20))
        .run_for(Duration::from_secs(5))
        .act(Action::Partition(Cut::halves(12, 6)))
        .run_for(Duration::from_secs(30))
        .act(Action::Heal);
    s.settle = Duration::from_secs(60);
    let o = s.run();
    assert!(
        o.violations.iter().any(|v| v.contains("did not converge")),
        "{:?}",
        o.violations
    );
}
