//! Leader election across real `quorate node --campaign g --json` processes on
//! loopback: one leader seen by all, `kill -9` of the leader (a successor with a higher
//! term), SIGTERM of the leader (it resigns, and the successor is elected before the
//! old lease would have run out), and never two holders at once, judged from every
//! process's own reports on the shared wall clock.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{free_base, init, sigterm, spawn, wait_for, Proc, BIN};
use serde_json::Value;

const GROUP: &str = "g";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn field(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no number {k:?} in {v}"))
}

/// `node`'s events of `kind` for the group, in order.
fn of<'a>(log: &'a [Value], node: u64, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    log.iter()
        .filter(move |v| v["node"] == node && v["event"] == kind && v["group"] == GROUP)
}

/// Every `leadership_acquired` of the group: (node, term).
fn acquisitions(log: &[Value]) -> Vec<(u64, u64)> {
    log.iter()
        .filter(|v| v["event"] == "leadership_acquired" && v["group"] == GROUP)
        .map(|v| (field(v, "node"), field(v, "term")))
        .collect()
}

/// The leader every node of `nodes` names in its latest `leader_changed`, if they agree
/// on one.
fn agreed_leader(log: &[Value], nodes: &BTreeSet<u64>) -> Option<(u64, u64)> {
    let latest: BTreeSet<Option<(u64, u64)>> = nodes
        .iter()
        .map(|n| {
            let last = of(log, *n, "leader_changed").last()?;
            Some((last["leader"].as_u64()?, field(last, "term")))
        })
        .collect();
    match latest.into_iter().collect::<Vec<_>>()[..] {
        [Some(leader)] => Some(leader),
        _ => None,
    }
}

/// A new leader other than `not`, with a term above `above`, that every node of `nodes`
/// names.
fn successor(
    rx: &mpsc::Receiver<Value>,
    log: &mut Vec<Value>,
    nodes: &BTreeSet<u64>,
    not: u64,
    above: u64,
    what: &str,
) -> (u64, u64) {
    let found = |log: &[Value]| {
        let (leader, term) = agreed_leader(log, nodes)?;
        let acquired = acquisitions(log).contains(&(leader, term));
        (leader != not && term > above && acquired).then_some((leader, term))
    };
    wait_for(rx, log, what, |log| found(log).is_some());
    found(log).unwrap()
}

/// The two tests of this file start many processes each: they run one at a time, so
/// neither starves the other's leaders of CPU on a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn five_candidates_elect_one_leader_fail_over_and_hand_over() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    // Every node votes: the test takes two nodes away (one crashes, one leaves), and
    // whichever they are, three voters — a quorum — remain for the last handover.
    init(
        &dir,
        5,
        free_base(5),
        &["--voters", "1,2,3,4,5", "--preset", "local"],
    );
    let (tx, rx) = mpsc::channel();
    let mut procs: HashMap<u64, Proc> = (1..=5)
        .map(|id| (id, spawn(&dir, id, &["--campaign", GROUP], tx.clone())))
        .collect();
    let mut log = Vec::new();
    let mut alive: BTreeSet<u64> = (1..=5).collect();

    // One leader, and every process names it.
    let (first, t1) = successor(&rx, &mut log, &alive, 0, 0, "a leader all five agree on");
    let acquirers: BTreeSet<u64> = acquisitions(&log).iter().map(|a| a.0).collect();
    assert_eq!(acquirers, BTreeSet::from([first]), "{log:#?}");
    operator_commands_name_the_leader(&dir, first, t1);

    // kill -9 of the leader: another node is elected with a higher term.
    drop(procs.remove(&first));
    let killed_at = now_ms();
    alive.remove(&first);
    let (second, t2) = successor(&rx, &mut log, &alive, first, t1, "a leader after kill -9");
    eprintln!("kill -9 of leader {first} (term {t1}): node {second} leads with term {t2}");

    // SIGTERM of the leader: it resigns before leaving, and another node takes over
    // before the resigned lease would have run out (so the releases reached the voters).
    sigterm(&procs[&second]);
    alive.remove(&second);
    let (third, t3) = successor(
        &rx,
        &mut log,
        &alive,
        second,
        t2,
        "a handover after SIGTERM",
    );
    wait_for(&rx, &mut log, "the resigned leader to stop", |log| {
        log.iter()
            .any(|v| v["node"] == second && v["event"] == "stopped")
    });
    let status = procs.get_mut(&second).unwrap().child.wait().unwrap();
    assert!(status.success(), "SIGTERM should exit cleanly: {status}");
    let own: Vec<&Value> = log.iter().filter(|v| v["node"] == second).collect();
    let at = |kind: &str| own.iter().position(|v| v["event"] == kind);
    let lost = own
        .iter()
        .find(|v| v["event"] == "leadership_lost" && field(v, "term") == t2)
        .unwrap_or_else(|| panic!("node {second} reported no leadership_lost: {own:#?}"));
    assert_eq!(lost["reason"], "resigned", "{lost}");
    assert!(
        at("leadership_lost") < at("leaving") && at("leaving") < at("stopped"),
        "resign, then leave, then stop: {own:#?}"
    );
    let handed = of(&log, third, "leadership_acquired")
        .find(|v| field(v, "term") == t3)
        .unwrap();
    eprintln!(
        "SIGTERM of leader {second}: node {third} leads with term {t3}, {} ms after the resignation",
        field(handed, "ts_ms") as i64 - field(lost, "ts_ms") as i64
    );
    assert!(
        field(handed, "ts_ms") < field(lost, "lease_until_ms"),
        "node {third} was elected only after node {second}'s lease ran out: \
         the resignation did not release the voters\n{lost}\n{handed}"
    );

    // Never two holders at once, and terms only rise.
    let ends = |node: u64, term: u64| {
        let lost = of(&log, node, "leadership_lost").find(|v| field(v, "term") == term);
        match lost {
            Some(v) => field(v, "ts_ms").min(field(v, "lease_until_ms")),
            None if node == first => killed_at,
            None => u64::MAX,
        }
    };
    let held: Vec<(u64, u64, u64, u64)> = log
        .iter()
        .filter(|v| v["event"] == "leadership_acquired" && v["group"] == GROUP)
        .map(|v| {
            let (node, term) = (field(v, "node"), field(v, "term"));
            (node, term, field(v, "ts_ms"), ends(node, term))
        })
        .collect();
    let mut by_start = held.clone();
    by_start.sort_by_key(|h| (h.2, h.1));
    assert!(
        by_start.windows(2).all(|w| w[0].1 < w[1].1),
        "terms must rise with time: {by_start:?}"
    );
    for a in &held {
        for b in &held {
            assert!(
                a.0 == b.0 || a.3 <= b.2 || b.3 <= a.2,
                "nodes {} and {} held {GROUP} at once: {a:?} {b:?}",
                a.0,
                b.0
            );
        }
    }
    // Who led, in order. A leader may lose its lease and win it back with a new term
    // (a loaded machine can delay renewals past the deadline; with two of five voters
    // gone every renewal needs all three others): that is one turn, not a new leader.
    let mut turns: Vec<u64> = by_start.iter().map(|h| h.0).collect();
    turns.dedup();
    assert_eq!(turns, vec![first, second, third], "{held:?}");
}

/// Every term this log shows held in the group: acquired, renewed, or gossiped as a
/// node's leadership.
/// `quorate NAME ARGS --dir DIR --node 1 --json`, as JSON (the command must succeed).
fn ask(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = std::process::Command::new(common::BIN)
        .args(args)
        .args(["--dir", dir.to_str().unwrap(), "--node", "1", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `status`, `leader`, `groups` and `members` name the leader every process agreed
/// on, the voters and the quorum; an unknown group is an error.
fn operator_commands_name_the_leader(dir: &std::path::Path, leader: u64, term: u64) {
    let status = ask(dir, &["status"]);
    assert_eq!(
        status["voters"],
        serde_json::json!([1, 2, 3, 4, 5]),
        "{status}"
    );
    assert_eq!(
        (&status["voters_alive"], &status["quorum"]),
        (&5.into(), &true.into())
    );
    let g = &status["groups"][0];
    assert_eq!(
        (&g["name"], &g["leader"], &g["term"]),
        (&GROUP.into(), &leader.into(), &term.into()),
        "{status}"
    );
    assert!(
        status["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "alive"),
        "{status}"
    );
    let c = ask(dir, &["leader", GROUP, "--confirmed"]);
    let got = (&c["leader"], &c["term"], &c["confirmed"]);
    assert_eq!(got, (&leader.into(), &term.into(), &true.into()), "{c}");
    let l = ask(dir, &["leader", GROUP]);
    assert_eq!(
        (&l["leader"], &l["term"]),
        (&leader.into(), &term.into()),
        "{l}"
    );
    let groups = ask(dir, &["groups"]);
    assert_eq!(
        groups["groups"][0]["candidates"].as_array().unwrap().len(),
        5,
        "{groups}"
    );
    let members = ask(dir, &["members", GROUP]);
    assert_eq!(members["name"], GROUP, "{members}");
    let unknown = std::process::Command::new(common::BIN)
        .args([
            "leader",
            "no-such-group",
            "--dir",
            dir.to_str().unwrap(),
            "--node",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        !unknown.status.success() && stderr.contains("no-such-group"),
        "{stderr}"
    );
}

fn terms_seen(log: &[Value]) -> Vec<u64> {
    log.iter()
        .filter(|v| v["group"] == GROUP)
        .filter(|v| match v["event"].as_str() {
            Some("leadership_acquired" | "leadership_renewed") => true,
            Some("leader_changed") => !v["leader"].is_null(),
            _ => false,
        })
        .map(|v| field(v, "term"))
        .collect()
}

/// Starts nodes 1..=3 campaigning for the group with renewals reported.
fn start_three(dir: &std::path::Path, tx: &mpsc::Sender<Value>) -> HashMap<u64, Proc> {
    (1..=3)
        .map(|id| {
            let args = ["--campaign", GROUP, "--renewals"];
            (id, spawn(dir, id, &args, tx.clone()))
        })
        .collect()
}

/// Terms are fencing tokens: with the default data directory under the cluster
/// directory, every voter remembers the terms it granted, so a cluster whose processes
/// all die at once (`kill -9`) and come back never hands out a term again.
#[test]
fn terms_keep_rising_when_every_node_is_killed_and_restarted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(
        &dir,
        3,
        free_base(3),
        &["--voters", "1,2,3", "--preset", "local"],
    );
    let all: BTreeSet<u64> = (1..=3).collect();
    let (tx, rx) = mpsc::channel();
    let mut procs = start_three(&dir, &tx);
    let mut log = Vec::new();
    let (first, t1) = successor(&rx, &mut log, &all, 0, 0, "a first leader");
    // The leader reports its renewals, with the same fields as its acquisition.
    wait_for(&rx, &mut log, "a reported renewal", |log| {
        of(log, first, "leadership_renewed").any(|v| field(v, "term") == t1)
    });
    let renewal = of(&log, first, "leadership_renewed").next().unwrap();
    assert!(
        field(renewal, "lease_until_ms") > field(renewal, "ts_ms"),
        "{renewal}"
    );
    assert!(of(&log, first, "leadership_renewed").all(|v| field(v, "term") == t1));

    // A handover raises the term once more before the crashes.
    sigterm(&procs[&first]);
    let (second, _) = successor(
        &rx,
        &mut log,
        &(&all - &BTreeSet::from([first])),
        first,
        t1,
        "a handover",
    );
    wait_for(&rx, &mut log, "the resigned leader to stop", |log| {
        log.iter()
            .any(|v| v["node"] == first && v["event"] == "stopped")
    });
    procs.insert(
        first,
        spawn(
            &dir,
            first,
            &["--campaign", GROUP, "--renewals"],
            tx.clone(),
        ),
    );
    let mut leader = second;
    for round in 1..=2 {
        let highest = terms_seen(&log).into_iter().max().unwrap();
        // kill -9 of every process at once, then all of them again.
        procs.clear();
        let (tx, rx) = mpsc::channel();
        procs = start_three(&dir, &tx);
        let mut after = Vec::new();
        let (next, term) = successor(&rx, &mut after, &all, 0, 0, "a leader after the restart");
        eprintln!("restart {round}: node {leader} led up to term {highest}; node {next} leads with term {term}");
        assert!(
            terms_seen(&after).iter().all(|t| *t > highest),
            "a term at or below {highest} came back after every node restarted: {after:#?}"
        );
        leader = next;
        log = after;
    }
}

#[test]
fn the_demo_elects_fails_over_and_hands_over() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = std::process::Command::new(BIN)
        .args(["demo", "--nodes", "3", "--preset", "local"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "converged:",
        "leads group \"demo\" with term",
        "crash detected:",
        "failover: node",
        "handover: node",
        "departure seen:",
    ] {
        assert!(text.contains(step), "no {step:?} in\n{text}");
    }
}
