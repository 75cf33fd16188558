//! Real `quorate` processes on loopback: `init`, five `node`s, `kill -9`, SIGTERM, a
//! node from a foreign CA, `status`, and bad command lines.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{all_joined, free_base, init, seen, sigterm, spawn, wait_for, Proc, BIN};
use serde_json::Value;

/// `quorate status --json` of the cluster in `dir` (asking node `node`, else the first
/// that answers).
fn status_json(dir: &std::path::Path, node: Option<u64>) -> Value {
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--dir", dir.to_str().unwrap(), "--json"]);
    if let Some(n) = node {
        cmd.args(["--node", &n.to_string()]);
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Field `field` of every member in a status report.
fn members_field<'a>(report: &'a Value, field: &str) -> Vec<&'a Value> {
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m[field])
        .collect()
}

#[test]
fn five_processes_converge_detect_crash_and_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(5);
    init(&dir, 5, base, &[]);
    let (tx, rx) = mpsc::channel();
    let mut procs: HashMap<u64, Proc> = (1..=5)
        .map(|id| (id, spawn(&dir, id, &[], tx.clone())))
        .collect();
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "convergence", |log| all_joined(log, 1..=5));

    let status = Command::new(BIN)
        .args([
            "status",
            "--dir",
            dir.to_str().unwrap(),
            "--node",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["members"].as_array().unwrap().len(), 5, "{report}");

    // kill -9: every survivor reports member_failed within the configured bound.
    let crashed = Instant::now();
    drop(procs.remove(&5));
    wait_for(&rx, &mut log, "crash detection", |log| {
        (1..=4).all(|n| seen(log, n, "member_failed", 5))
    });
    let took = crashed.elapsed();
    let bound = quorate::Config::lan().detection_bound(5);
    eprintln!("kill -9 reported by all 4 survivors after {took:?} (bound {bound:?})");
    assert!(
        took <= bound,
        "detection took {took:?}, beyond the configured bound {bound:?}"
    );

    // SIGTERM: the others report member_left, never member_failed.
    sigterm(&procs[&4]);
    wait_for(&rx, &mut log, "graceful leave", |log| {
        (1..=3).all(|n| seen(log, n, "member_left", 4))
    });
    let status = procs.get_mut(&4).unwrap().child.wait().unwrap();
    assert!(status.success(), "SIGTERM should exit cleanly: {status}");
    assert!(
        (1..=3).all(|n| !seen(&log, n, "member_failed", 4)),
        "{log:#?}"
    );
}

#[test]
fn nodes_listening_on_a_wildcard_advertise_a_reachable_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(2);
    init(&dir, 2, base, &[]);
    let (tx, rx) = mpsc::channel();
    // Node 1 binds every interface and advertises its cluster.toml address by default;
    // node 2 binds every interface and says what to advertise.
    let any1 = format!("0.0.0.0:{base}");
    let (any2, adv2) = (
        format!("0.0.0.0:{}", base + 1),
        format!("127.0.0.1:{}", base + 1),
    );
    let _a = spawn(&dir, 1, &["--listen", &any1], tx.clone());
    let _b = spawn(
        &dir,
        2,
        &["--listen", &any2, "--advertise", &adv2],
        tx.clone(),
    );
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the pair to converge", |log| {
        seen(log, 1, "member_joined", 2) && seen(log, 2, "member_joined", 1)
    });
    for (asked, other, addr) in [(1, 2, adv2.clone()), (2, 1, format!("127.0.0.1:{base}"))] {
        let report = status_json(&dir, Some(asked));
        let m = report["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == other)
            .cloned()
            .unwrap_or_default();
        assert_eq!(m["addr"], Value::from(addr), "{report}");
    }
}

#[test]
fn cluster_files_may_name_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(2);
    let (a1, a2) = (
        format!("1=localhost:{base}"),
        format!("2=localhost:{}", base + 1),
    );
    init(&dir, 2, base, &["--addr", &a1, "--addr", &a2]);
    let text = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(text.contains(&format!("\"localhost:{base}\"")), "{text}");
    let (tx, rx) = mpsc::channel();
    let _a = spawn(&dir, 1, &[], tx.clone());
    let _b = spawn(&dir, 2, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the pair to converge", |log| {
        seen(log, 1, "member_joined", 2) && seen(log, 2, "member_joined", 1)
    });
    let report = status_json(&dir, None);
    let addrs = members_field(&report, "addr");
    let want = [
        format!("127.0.0.1:{base}"),
        format!("127.0.0.1:{}", base + 1),
    ];
    assert_eq!(
        addrs,
        want.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "{report}"
    );
}

#[test]
fn queries_in_a_loop_never_run_a_node_out_of_client_slots() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 3, free_base(3), &["--voters", "1,2,3"]);
    let (tx, rx) = mpsc::channel();
    let campaign = ["--campaign", "g"];
    let _nodes: Vec<Proc> = (1..=3)
        .map(|k| spawn(&dir, k, &campaign, tx.clone()))
        .collect();
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the three to converge and elect", |log| {
        let elected = log.iter().any(|v| v["event"] == "leadership_acquired");
        elected && all_joined(log, 1..=3)
    });
    // A node serves 16 client connections at once; each query closes its own before
    // its process exits, so a script asking again and again is served every time
    // (the node does not hold a slot per finished query until its lifetime ends).
    for asked in 0..60 {
        let report = status_json(&dir, Some(1));
        assert_eq!(report["node"], 1, "query {asked}: {report}");
        let out = Command::new(BIN)
            .args([
                "leader",
                "g",
                "--confirmed",
                "--json",
                "--node",
                "1",
                "--dir",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "query {asked}: {err}");
    }
}

#[test]
fn a_node_runs_from_its_bundle_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(2);
    init(&dir, 2, base, &[]);
    // The CA key is apart; a bundle holds exactly what its host needs.
    assert!(dir.join("ca/ca.key").exists() && !dir.join("ca.key").exists());
    let bundle = tmp.path().join("host-2");
    std::fs::rename(dir.join("nodes/2"), &bundle).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["ca.pem", "cluster.toml", "node-2.key", "node-2.pem"]
    );
    let (tx, rx) = mpsc::channel();
    let _a = spawn(&dir, 1, &[], tx.clone());
    let _b = spawn(&bundle, 2, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the pair to converge", |log| {
        seen(log, 1, "member_joined", 2) && seen(log, 2, "member_joined", 1)
    });
    // Its durable state lands in the bundle's own data folder.
    assert!(bundle.join("data/node-2").is_dir());
}

#[test]
fn cert_issue_adds_a_node_that_joins_and_renew_keeps_it_a_member() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(3);
    init(&dir, 2, base, &[]);
    let (tx, rx) = mpsc::channel();
    let _a = spawn(&dir, 1, &[], tx.clone());
    let _b = spawn(&dir, 2, &[], tx.clone());
    let before = std::fs::read(dir.join("nodes/1/cluster.toml")).unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text)
    };
    let d = dir.to_str().unwrap();
    let addr = format!("127.0.0.1:{}", base + 2);
    // On loopback every node has a port of its own: a host alone is not enough.
    let (ok, err) = cli(&[
        "cert",
        "issue",
        "--dir",
        d,
        "--id",
        "3",
        "--host",
        "127.0.0.1",
    ]);
    assert!(!ok && err.contains("--port"), "{err}");
    let port = (base + 2).to_string();
    let host = ["--host", "127.0.0.1", "--port", &port];
    let (ok, err) = cli(&[&["cert", "issue", "--dir", d, "--id", "3"][..], &host].concat());
    assert!(ok, "{err}");
    // Another node's bundle is untouched; the cluster file names node 3.
    assert_eq!(
        std::fs::read(dir.join("nodes/1/cluster.toml")).unwrap(),
        before
    );
    let text = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(text.contains(&addr), "{text}");
    let (ok, err) = cli(&["cert", "issue", "--dir", d, "--id", "3", "--addr", &addr]);
    assert!(!ok && err.contains("already"), "{err}");
    let _c = spawn(&dir.join("nodes/3"), 3, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "node 3 to join", |log| {
        seen(log, 1, "member_joined", 3) && seen(log, 3, "member_joined", 2)
    });
    // A renewed certificate is of the same CA: node 2 restarted with it joins again.
    let old_cert = std::fs::read(dir.join("nodes/2/node-2.pem")).unwrap();
    let (ok, err) = cli(&["cert", "renew", "--dir", d, "--id", "2"]);
    assert!(ok, "{err}");
    assert_ne!(
        std::fs::read(dir.join("nodes/2/node-2.pem")).unwrap(),
        old_cert
    );
    drop(_b);
    let _b = spawn(&dir.join("nodes/2"), 2, &[], tx.clone());
    let mut after = Vec::new();
    wait_for(&rx, &mut after, "renewed node 2 to join", |log| {
        seen(log, 2, "member_joined", 1) && seen(log, 2, "member_joined", 3)
    });
    let report = status_json(&dir, Some(1));
    assert_eq!(members_field(&report, "id").len(), 3, "{report}");
}

#[test]
fn sighup_reloads_a_renewed_certificate_without_leaving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 2, free_base(2), &[]);
    let (tx, rx) = mpsc::channel();
    let _a = spawn(&dir, 1, &[], tx.clone());
    let b = spawn(&dir.join("nodes/2"), 2, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the pair to converge", |log| {
        seen(log, 1, "member_joined", 2) && seen(log, 2, "member_joined", 1)
    });
    let hup = |p: &Proc| {
        let pid = p.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };
    let d = dir.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["cert", "renew", "--dir", d, "--id", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hup(&b);
    let event =
        |log: &[Value], kind: &str| log.iter().any(|v| v["node"] == 2 && v["event"] == kind);
    wait_for(&rx, &mut log, "the reload", |log| {
        event(log, "identity_reloaded")
    });
    // A key file that cannot be read is refused; the node keeps its identity.
    std::fs::write(dir.join("nodes/2/node-2.key"), "not a key").unwrap();
    hup(&b);
    wait_for(&rx, &mut log, "the refused reload", |log| {
        event(log, "identity_reload_failed")
    });
    std::thread::sleep(Duration::from_secs(2));
    while let Ok(v) = rx.try_recv() {
        log.push(v);
    }
    let gone = |kind: &str| (1..=2).any(|n| seen(&log, n, kind, 1) || seen(&log, n, kind, 2));
    assert!(!gone("member_failed") && !gone("member_left"), "{log:#?}");
}

#[test]
fn a_node_of_another_ca_is_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    let base = free_base(3);
    init(&ours, 2, base, &[]);
    init(&theirs, 3, free_base(3), &[]);
    let (tx, rx) = mpsc::channel();
    let _a = spawn(&ours, 1, &[], tx.clone());
    let _b = spawn(&ours, 2, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "our pair to converge", |log| {
        seen(log, 1, "member_joined", 2) && seen(log, 2, "member_joined", 1)
    });
    // Node 3 of the other cluster dials ours for several join retries.
    let seed = format!("127.0.0.1:{base}");
    let intruder = spawn(&theirs, 3, &["--seed", &seed], tx.clone());
    wait_for(&rx, &mut log, "the intruder to start", |log| {
        log.iter()
            .any(|v| v["node"] == 3 && v["event"] == "node_started")
    });
    std::thread::sleep(Duration::from_secs(4));
    drop(intruder);
    while let Ok(v) = rx.try_recv() {
        log.push(v);
    }
    assert!(
        !seen(&log, 1, "member_joined", 3) && !seen(&log, 2, "member_joined", 3),
        "{log:#?}"
    );
    let report = status_json(&ours, None);
    let ids = members_field(&report, "id");
    assert!(!ids.contains(&&Value::from(3)), "{report}");
}

#[test]
fn bad_command_lines_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "node".into(),
                "--dir".into(),
                tmp.path().join("none").display().to_string(),
                "--id".into(),
                "1".into(),
            ],
            "cluster.toml",
        ),
        (
            vec![
                "init".into(),
                tmp.path().join("x").display().to_string(),
                "--base-port".into(),
                "65534".into(),
            ],
            "65535",
        ),
        (
            vec![
                "init".into(),
                tmp.path().join("y").display().to_string(),
                "--voters".into(),
                "1,9".into(),
            ],
            "voter 9",
        ),
        (
            vec![
                "node".into(),
                "--dir".into(),
                "d".into(),
                "--id".into(),
                "1".into(),
                "--listen".into(),
                "nowhere".into(),
            ],
            "not an address",
        ),
        (
            vec![
                "init".into(),
                tmp.path().join("z").display().to_string(),
                "--preset".into(),
                "fast".into(),
            ],
            "unknown preset",
        ),
        (
            vec!["bench-election".into(), "--trials".into(), "0".into()],
            "--trials must be at least 1",
        ),
        (
            vec!["bench-election".into(), "--nodes".into(), "2".into()],
            "--nodes must be at least 3",
        ),
    ];
    for (args, expect) in cases {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(expect),
            "{args:?}: expected {expect:?} in {err}"
        );
    }
    // A node whose certificate file is missing names the file.
    let dir = tmp.path().join("c");
    init(&dir, 2, free_base(2), &[]);
    std::fs::remove_file(dir.join("node-2.pem")).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--dir", dir.to_str().unwrap(), "--id", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("node-2.pem"), "{err}");
    // Campaigns: a group named twice, and a name the library refuses.
    let node1 = ["node", "--dir", dir.to_str().unwrap(), "--id", "1"];
    for (extra, expect) in [
        (&["--campaign", "g", "--campaign", "g"][..], "given twice"),
        (&["--campaign", ""][..], "invalid group name"),
    ] {
        let out = Command::new(BIN).args(node1).args(extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{extra:?}: expected {expect:?} in {err}"
        );
    }
}

/// A `--campaign` name the library refuses stops the node before it starts: it exits
/// with a clear message, and no member ever sees it join.
#[test]
fn a_bad_group_name_is_refused_before_joining() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 3, free_base(3), &["--voters", "1"]);
    let (tx, rx) = mpsc::channel();
    let _one = spawn(&dir, 1, &[], tx.clone());
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "node 1 to start", |log| {
        log.iter()
            .any(|v| v["node"] == 1 && v["event"] == "node_started")
    });
    let long = "g".repeat(quorate::groups::MAX_GROUP_NAME + 1);
    for bad in ["", "a\tb", "line\nbreak", long.as_str()] {
        let out = Command::new(BIN)
            .args([
                "node",
                "--dir",
                dir.to_str().unwrap(),
                "--id",
                "2",
                "--json",
            ])
            .args(["--campaign", "ok", "--campaign", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(
            err.contains("invalid group name") && err.contains("--campaign"),
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{bad:?}: the node started");
    }
    // A node that does start is seen; node 2 never was.
    let _three = spawn(&dir, 3, &[], tx.clone());
    wait_for(&rx, &mut log, "node 1 to see node 3", |log| {
        seen(log, 1, "member_joined", 3)
    });
    assert!(!seen(&log, 1, "member_joined", 2), "{log:#?}");
}

/// `--days` sets how long certificates last, at init and on renewal, and a node whose
/// certificate ends within 30 days says so when it starts.
#[test]
fn certificates_last_the_days_asked_and_a_node_warns_ahead_of_expiry() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 1, free_base(1), &["--days", "2"]);
    let d = dir.to_str().unwrap();
    let left = || {
        let b = dir.join("nodes/1");
        let id = quorate::Identity::load(
            &b.join("node-1.pem"),
            &b.join("node-1.key"),
            &b.join("ca.pem"),
        )
        .unwrap();
        let end = id.not_after().duration_since(std::time::SystemTime::now());
        end.unwrap().as_secs() / 3600
    };
    assert!((47..=48).contains(&left()), "{} hours", left());
    let mut node = Command::new(BIN)
        .args([
            "node",
            "--dir",
            &format!("{d}/nodes/1"),
            "--id",
            "1",
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(node.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + Duration::from_secs(30);
    let mut warned = false;
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if line.contains("certificate expires soon") {
            warned = true;
            break;
        }
    }
    let _ = node.kill();
    let _ = node.wait();
    assert!(warned, "no expiry warning");

    let out = Command::new(BIN)
        .args(["cert", "renew", "--dir", d, "--id", "1", "--days", "90"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        (90 * 24 - 1..=90 * 24).contains(&left()),
        "{} hours",
        left()
    );
    let out = Command::new(BIN)
        .args(["cert", "renew", "--dir", d, "--id", "1", "--days", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `quorate cert revoke` makes a list that `quorate revoke` gives one running node:
/// every member then holds the revoked node failed. A list from another cluster's CA
/// is refused, naming why.
#[test]
fn a_revoked_node_is_failed_by_every_member_and_a_foreign_list_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 3, free_base(3), &[]);
    let (tx, rx) = mpsc::channel();
    let _procs: Vec<Proc> = (1..=3).map(|id| spawn(&dir, id, &[], tx.clone())).collect();
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the three to converge", |log| {
        all_joined(log, 1..=3)
    });
    let d = dir.to_str().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Another cluster's list is refused by the node it is given to.
    let other = tmp.path().join("other");
    init(&other, 3, free_base(3), &[]);
    let o = other.to_str().unwrap();
    let (ok, _, err) = cli(&["cert", "revoke", "--dir", o, "--id", "1"]);
    assert!(ok, "{err}");
    let foreign = other.join("revoked.crl");
    let f = foreign.to_str().unwrap();
    let (ok, _, err) = cli(&["revoke", f, "--dir", d, "--node", "1"]);
    assert!(
        !ok && err.contains("not signed by this cluster's CA"),
        "{err}"
    );

    let (ok, _, err) = cli(&["cert", "revoke", "--dir", d, "--id", "3"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["cert", "revoke", "--dir", d, "--id", "3"]);
    assert!(!ok && err.contains("revoked already"), "{err}");
    let list = dir.join("revoked.crl");
    let l = list.to_str().unwrap();
    let (ok, out, err) = cli(&["revoke", l, "--dir", d, "--node", "1", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["number"], &v["fresh"]),
        (&1.into(), &true.into()),
        "{v}"
    );
    wait_for(&rx, &mut log, "nodes 1 and 2 to fail node 3", |log| {
        seen(log, 1, "member_failed", 3) && seen(log, 2, "member_failed", 3)
    });
}
