//! Helpers shared by the multi-process tests: free ports, `quorate init`, `quorate node
//! --json` processes whose JSON lines arrive on one channel, and waiting on them.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_quorate");
pub const DEADLINE: Duration = Duration::from_secs(45);

/// A base port with `n` consecutive free UDP ports on 127.0.0.1, disjoint from every
/// other range handed out in this process (tests run concurrently).
pub fn free_base(n: u16) -> u16 {
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

/// `quorate init DIR --nodes N --base-port BASE EXTRA...`.
pub fn init(dir: &Path, nodes: u16, base: u16, extra: &[&str]) {
    let out = Command::new(BIN)
        .args(["init", dir.to_str().unwrap(), "--nodes", &nodes.to_string()])
        .args(["--base-port", &base.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `quorate node --json`; its JSON lines arrive on the shared channel.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(dir: &Path, id: u64, extra: &[&str], tx: mpsc::Sender<Value>) -> Proc {
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
pub fn wait_for(
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

/// Whether each of `nodes` reported every other one joined.
#[allow(dead_code)] // not every test binary asks
pub fn all_joined(log: &[Value], nodes: std::ops::RangeInclusive<u64>) -> bool {
    nodes.clone().all(|n| {
        nodes
            .clone()
            .filter(|m| *m != n)
            .all(|m| seen(log, n, "member_joined", m))
    })
}

/// Whether `node` reported `event` about `member`.
#[allow(dead_code)] // not every test binary asks
pub fn seen(log: &[Value], node: u64, event: &str, member: u64) -> bool {
    log.iter()
        .any(|v| v["node"] == node && v["event"] == event && v["member"] == member)
}

#[allow(dead_code)] // not every test binary asks
pub fn sigterm(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
