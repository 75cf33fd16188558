//! The harness of `hosts.rs`: hosts as network namespaces (`netns.rs`), a `quorate
//! node` process on each, everything they print in one log, and the operator's
//! commands run on a host.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::{BIN, DEADLINE};
use crate::netns::{self, Net};

/// The campaigned group.
pub(crate) const GROUP: &str = "g";
/// `quorate init`'s default --base-port: with --hosts, every node listens on it.
pub(crate) const PORT: u16 = 7101;
/// The first five hosts run the cluster; the sixth gets a node later.
pub(crate) const NODES: usize = 5;
pub(crate) const VOTERS: [usize; 3] = [1, 2, 3];
/// One voter and two non-voters campaign.
pub(crate) const CANDIDATES: [usize; 3] = [3, 4, 5];
/// How long after its lease ran out a leader cut off may report its step-down (its
/// timer, then printing, on a loaded machine).
pub(crate) const STEP_DOWN_SLACK_MS: u64 = 2_000;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no number {k:?} in {v}"))
}

/// One `quorate node` process.
pub(crate) struct Proc {
    pub(crate) host: usize,
    pub(crate) child: Option<Child>,
    pub(crate) stderr: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every line the processes printed, in the order read, each with `proc` (the index of
/// its process) and `recv_ms` added; and which process runs on each host now.
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) events: Vec<Value>,
    pub(crate) current: BTreeMap<usize, usize>,
}

/// What a membership event says of its member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Up,
    Suspect,
    Gone,
}

impl Log {
    /// The lines of the process now running on host `k`, with their positions.
    pub(crate) fn of(&self, k: usize) -> impl Iterator<Item = (usize, &Value)> + '_ {
        let serial = self.current.get(&k).copied();
        self.events
            .iter()
            .enumerate()
            .filter(move |(_, v)| v["proc"].as_u64().map(|p| p as usize) == serial)
    }

    /// The last thing host `n`'s node reported of member `m`, and where.
    pub(crate) fn last_seen(&self, n: usize, m: usize) -> Option<(Seen, usize)> {
        self.of(n)
            .filter(|(_, v)| v["member"] == m as u64)
            .filter_map(|(i, v)| {
                let seen = match v["event"].as_str()? {
                    "member_joined" | "member_alive" | "member_updated" => Seen::Up,
                    "member_suspect" => Seen::Suspect,
                    "member_failed" | "member_left" => Seen::Gone,
                    _ => return None,
                };
                Some((seen, i))
            })
            .last()
    }

    /// Whether every node of `hosts` last reported every other one up, each report of a
    /// node in `fresh` made at or after position `after`.
    pub(crate) fn converged(&self, hosts: &[usize], fresh: &[usize], after: usize) -> bool {
        hosts.iter().all(|&n| {
            hosts.iter().filter(|&&m| m != n).all(|&m| {
                matches!(self.last_seen(n, m), Some((Seen::Up, i))
                    if !fresh.contains(&m) || i >= after)
            })
        })
    }

    /// Whether every node of `by` last reported every node of `of` gone.
    pub(crate) fn all_gone(&self, by: &[usize], of: &[usize]) -> bool {
        by.iter().all(|&n| {
            of.iter()
                .all(|&m| matches!(self.last_seen(n, m), Some((Seen::Gone, _))))
        })
    }

    /// Whether host `n`'s node reported member `m` failed at or after position `after`,
    /// and has not reported it otherwise since.
    pub(crate) fn failed_since(&self, n: usize, m: usize, after: usize) -> bool {
        let failed = self
            .of(n)
            .any(|(i, v)| i >= after && v["event"] == "member_failed" && v["member"] == m as u64);
        failed && matches!(self.last_seen(n, m), Some((Seen::Gone, _)))
    }

    /// The group's leader and term in host `n`'s node's latest `leader_changed`.
    pub(crate) fn leader_seen(&self, n: usize) -> Option<(u64, u64)> {
        let (_, last) = self
            .of(n)
            .filter(|(_, v)| v["event"] == "leader_changed" && v["group"] == GROUP)
            .last()?;
        Some((last["leader"].as_u64()?, num(last, "term")))
    }

    /// Host `k`'s node's `event` of the group for `term`.
    pub(crate) fn leadership(&self, k: usize, event: &str, term: u64) -> Option<&Value> {
        self.of(k)
            .map(|(_, v)| v)
            .find(|v| v["event"] == event && v["group"] == GROUP && num(v, "term") == term)
    }

    /// A leader other than `not` with a term above `above` that every node of `hosts`
    /// names, and that reported its election.
    pub(crate) fn successor(&self, hosts: &[usize], not: u64, above: u64) -> Option<(u64, u64)> {
        let named: BTreeSet<_> = hosts.iter().map(|&n| self.leader_seen(n)).collect();
        let [Some((leader, term))] = named.into_iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let elected = self
            .leadership(leader as usize, "leadership_acquired", term)
            .is_some();
        (leader != not && term > above && elected).then_some((leader, term))
    }

    /// Every `leadership_acquired` of the group from position `from` on: (node, term).
    pub(crate) fn acquisitions(&self, from: usize) -> Vec<(u64, u64)> {
        self.events[from..]
            .iter()
            .filter(|v| v["event"] == "leadership_acquired" && v["group"] == GROUP)
            .map(|v| (num(v, "node"), num(v, "term")))
            .collect()
    }
}

/// The hosts, their processes and what they printed. Dropping it kills the processes,
/// then removes the hosts.
pub(crate) struct Hosts {
    pub(crate) procs: Vec<Proc>,
    pub(crate) log: Log,
    pub(crate) rx: mpsc::Receiver<Value>,
    pub(crate) tx: mpsc::Sender<Value>,
    pub(crate) t0: Instant,
    /// The operator's cluster directory (the CA key, the client certificate, every
    /// bundle).
    pub(crate) dir: PathBuf,
    pub(crate) net: Net,
    pub(crate) tmp: tempfile::TempDir,
}

impl Hosts {
    pub(crate) fn new(hosts: usize) -> Hosts {
        let net =
            Net::create(hosts).unwrap_or_else(|e| panic!("cannot build the test's hosts: {e:#}"));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        let (tx, rx) = mpsc::channel();
        Hosts {
            procs: Vec::new(),
            log: Log::default(),
            rx,
            tx,
            t0: Instant::now(),
            dir,
            net,
            tmp,
        }
    }

    pub(crate) fn note(&self, text: &str) {
        eprintln!("[{:>7.3}s] {text}", self.t0.elapsed().as_secs_f64());
    }

    /// `quorate ARGS` on the operator's machine (no network: init and cert).
    pub(crate) fn operator(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "quorate {args:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Host `k`'s bundle, as copied to it.
    pub(crate) fn bundle(&self, k: usize) -> PathBuf {
        self.dir.join("nodes").join(k.to_string())
    }

    /// Starts node `k` on host `k` from its bundle.
    pub(crate) fn start(&mut self, k: usize, campaign: bool) {
        let serial = self.procs.len();
        let stderr = self.tmp.path().join(format!("{serial}-node-{k}.err"));
        let mut cmd = self.net.command(k, BIN);
        cmd.arg("node").arg("--dir").arg(self.bundle(k));
        cmd.args(["--id", &k.to_string(), "--json"]);
        if campaign {
            cmd.args(["--campaign", GROUP]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {k}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut v = serde_json::from_str(&line).unwrap_or_else(
                    |_| serde_json::json!({ "node": k, "event": "not_json", "text": line }),
                );
                if let Value::Object(m) = &mut v {
                    m.insert("proc".into(), serial.into());
                    m.insert("recv_ms".into(), now_ms().into());
                }
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        self.procs.push(Proc {
            host: k,
            child: Some(child),
            stderr,
        });
        self.log.current.insert(k, serial);
        self.note(&format!(
            "started node {k} on host {} ({}){}",
            netns::host(k),
            netns::addr(k),
            if campaign { ", campaigning" } else { "" }
        ));
    }

    /// `kill -9` of host `k`'s node (`ip netns exec` execs it: the child is the node).
    pub(crate) fn kill(&mut self, k: usize) {
        let serial = self.log.current.remove(&k).expect("node runs");
        let mut child = self.procs[serial].child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.note(&format!("kill -9 of node {k}"));
    }

    /// Reads lines until `done` holds, failing after [`DEADLINE`] with what every
    /// process printed and whether it still runs.
    pub(crate) fn wait<T>(&mut self, what: &str, done: impl Fn(&Log) -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        loop {
            while let Ok(v) = self.rx.try_recv() {
                self.log.events.push(v);
            }
            if let Some(t) = done(&self.log) {
                self.note(what);
                return t;
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => self.log.events.push(v),
                Err(_) => self.fail(&format!("timed out waiting for {what}")),
            }
        }
    }

    /// As [`Hosts::wait`], for a condition.
    pub(crate) fn wait_until(&mut self, what: &str, done: impl Fn(&Log) -> bool) {
        self.wait(what, |log| done(log).then_some(()));
    }

    /// Takes the lines printed so far.
    pub(crate) fn drain(&mut self) {
        while let Ok(v) = self.rx.try_recv() {
            self.log.events.push(v);
        }
    }

    /// What host `k`'s node (the process running now) wrote to stderr so far.
    pub(crate) fn stderr_of(&self, k: usize) -> String {
        let serial = self.log.current[&k];
        std::fs::read_to_string(&self.procs[serial].stderr).unwrap_or_default()
    }

    /// Looks (every 200 ms, taking the lines printed meanwhile) until `done` holds of
    /// the hosts, failing after [`DEADLINE`]: for what shows outside the JSON lines
    /// (stderr, files).
    pub(crate) fn poll_until(&mut self, what: &str, done: impl Fn(&Hosts) -> bool) {
        let end = Instant::now() + DEADLINE;
        loop {
            self.drain();
            if done(self) {
                self.note(what);
                return;
            }
            if Instant::now() >= end {
                self.fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every line from position `from` on in which a node on a host other than `k`
    /// reported member `k` up (joined, alive or updated).
    pub(crate) fn seen_up(&mut self, k: usize, from: usize) -> Vec<Value> {
        self.drain();
        self.log.events[from..]
            .iter()
            .filter(|v| {
                let by = v["proc"].as_u64().map(|p| self.procs[p as usize].host);
                by != Some(k)
                    && v["member"] == k as u64
                    && matches!(
                        v["event"].as_str(),
                        Some("member_joined" | "member_alive" | "member_updated")
                    )
            })
            .cloned()
            .collect()
    }

    pub(crate) fn fail(&mut self, why: &str) -> ! {
        let mut report = String::new();
        for p in &mut self.procs {
            let state = match p.child.as_mut().map(|c| c.try_wait()) {
                None => "killed by the test".to_owned(),
                Some(Ok(None)) => "running".to_owned(),
                Some(Ok(Some(status))) => format!("exited: {status}"),
                Some(Err(e)) => format!("unknown: {e}"),
            };
            let err = std::fs::read_to_string(&p.stderr).unwrap_or_default();
            let tail = &err[err.len().saturating_sub(1500)..];
            report += &format!("\nnode {} ({state}), stderr:\n{tail}", p.host);
        }
        let events: Vec<String> = self.log.events.iter().map(Value::to_string).collect();
        panic!(
            "{why}\nevents:\n{}\nprocesses:{report}",
            events[events.len().saturating_sub(200)..].join("\n")
        );
    }

    /// `quorate ARGS --dir DIR --json` run on host `from` (the operator logged in there).
    pub(crate) fn ask(&self, from: usize, args: &[&str]) -> Result<Value, String> {
        let out = self
            .net
            .command(from, BIN)
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .arg("--json")
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )
        })
    }

    /// Asks (on host `from`, again until [`DEADLINE`]) until `ok` holds of the answer.
    pub(crate) fn ask_until(
        &mut self,
        from: usize,
        args: &[&str],
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let answer = self.ask(from, args);
            match &answer {
                Ok(v) if ok(v) => return v.clone(),
                _ if Instant::now() >= end => {
                    self.fail(&format!("`quorate {args:?}` on host {from}: {answer:?}"))
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Node `node`, asked on host `from`, has a quorum of voters confirm `leader` with
    /// `term` (asked again while the answer differs, up to [`DEADLINE`]).
    pub(crate) fn confirm(&mut self, from: usize, node: usize, leader: u64, term: u64) {
        let id = node.to_string();
        let args = ["leader", GROUP, "--confirmed", "--node", &id];
        self.ask_until(from, &args, |v| {
            v["leader"] == leader && v["term"] == term && v["confirmed"] == true
        });
    }

    /// Node `node`, asked on host `from`, reports every one of `members` alive, and no
    /// other member.
    pub(crate) fn status_all_alive(&mut self, from: usize, node: usize, members: &[usize]) {
        let id = node.to_string();
        let want: BTreeSet<u64> = members.iter().map(|&m| m as u64).collect();
        let report = self.ask_until(from, &["status", "--node", &id], |v| {
            let Some(list) = v["members"].as_array() else {
                return false;
            };
            let alive: BTreeSet<u64> = list
                .iter()
                .filter(|m| m["state"] == "alive")
                .filter_map(|m| m["id"].as_u64())
                .collect();
            alive == want && list.len() == want.len()
        });
        for m in report["members"].as_array().unwrap() {
            let id = m["id"].as_u64().unwrap() as usize;
            assert_eq!(
                m["addr"],
                format!("{}:{PORT}", netns::addr(id)),
                "node {node} on host {from}: {report}"
            );
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The processes before their hosts (the fields drop in order after this).
        self.procs.clear();
    }
}

/// Two hosts to cut off with `leader`'s: the leader and one more, chosen so that the
/// other side keeps a quorum of voters and a candidate.
pub(crate) fn minority_with(leader: usize) -> Vec<usize> {
    let voters = |side: &[usize]| side.iter().filter(|k| VOTERS.contains(k)).count();
    (1..=NODES)
        .filter(|&k| k != leader)
        .map(|k| vec![leader, k])
        .find(|minority| {
            let majority: Vec<usize> = (1..=NODES).filter(|k| !minority.contains(k)).collect();
            voters(&majority) > VOTERS.len() / 2 && majority.iter().any(|k| CANDIDATES.contains(k))
        })
        .expect("a minority to cut off")
}
