//! Real `quorate` processes on loopback: `init`, five `node`s, `kill -9`, SIGTERM, a
//! node from a foreign CA, `status`, and bad command lines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_quorate");
const DEADLINE: Duration = Duration::from_secs(45);

/// A base port with `n` consecutive free UDP ports on 127.0.0.1, disjoint from every
/// other range handed out in this process (tests run concurrently).
fn free_base(n: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = 20_000 + (std::process::id() % 300) * 100;
    for _ in 0..1000 {
        let base = start + NEXT.fetch_add(u32::from(n), Ordering::SeqCst);
        let base = u16::try_from(20_000 + base % 40_000).unwrap();
        let held: Vec<_> = (0..n)
            .map_while(|i| UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no free port range");
}

fn init(dir: &Path, nodes: u16, base: u16) {
    let out = Command::new(BIN)
        .args(["init", dir.to_str().unwrap(), "--nodes", &nodes.to_string()])
        .args(["--base-port", &base.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `quorate node --json`; its JSON lines arrive on the shared channel.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, id: u64, extra: &[&str], tx: mpsc::Sender<Value>) -> Proc {
    let mut child = Command::new(BIN)
        .args([
            "node",
            "--dir",
            dir.to_str().unwrap(),
            "--id",
            &id.to_string(),
            "--json",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("node {id} printed non-JSON {line:?}: {e}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Proc { child }
}

/// Collects events until `done(all events so far)` holds.
fn wait_for(
    rx: &mpsc::Receiver<Value>,
    log: &mut Vec<Value>,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) {
    let end = Instant::now() + DEADLINE;
    while !done(log) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => log.push(v),
            Err(_) => panic!("timed out waiting for {what}; events: {log:#?}"),
        }
    }
}

fn seen(log: &[Value], node: u64, event: &str, member: u64) -> bool {
    log.iter()
        .any(|v| v["node"] == node && v["event"] == event && v["member"] == member)
}

fn sigterm(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn five_processes_converge_detect_crash_and_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(5);
    init(&dir, 5, base);
    let (tx, rx) = mpsc::channel();
    let mut procs: HashMap<u64, Proc> = (1..=5)
        .map(|id| (id, spawn(&dir, id, &[], tx.clone())))
        .collect();
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "convergence", |log| {
        (1..=5).all(|n| {
            (1..=5)
                .filter(|m| *m != n)
                .all(|m| seen(log, n, "member_joined", m))
        })
    });

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
fn a_node_of_another_ca_is_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    let base = free_base(3);
    init(&ours, 2, base);
    init(&theirs, 3, free_base(3));
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
    let status = Command::new(BIN)
        .args(["status", "--dir", ours.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let ids: Vec<&Value> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
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
    init(&dir, 2, free_base(2));
    std::fs::remove_file(dir.join("node-2.pem")).unwrap();
    let out = Command::new(BIN)
        .args(["node", "--dir", dir.to_str().unwrap(), "--id", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("node-2.pem"), "{err}");
}
