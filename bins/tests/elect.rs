//! `quorate elect` and `quorate lock` beside a 3-voter cluster of real `quorate node`
//! processes: the command runs with its fencing token, its exit status is passed on
//! and the leadership freed, it is stopped before the lease can run out when the
//! voters stop answering, and two holders of one lock never run their commands at once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{all_joined, free_base, init, spawn, wait_for, Proc, BIN, DEADLINE};
use serde_json::Value;

/// Each test starts five or more processes: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A cluster of five nodes whose voters 1, 2 and 3 run as `quorate node` processes,
/// once they all see each other; 4 and 5 are left for `elect` and `lock`.
fn voters(dir: &Path) -> Vec<Proc> {
    let (procs, rx) = voters_logged(dir);
    // Keep reading: the voters' stdout must not fill up.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    procs
}

/// As [`voters`], with the voters' JSON lines (unbounded: nothing fills up unread).
fn voters_logged(dir: &Path) -> (Vec<Proc>, mpsc::Receiver<Value>) {
    init(dir, 5, free_base(5), &["--voters", "1,2,3"]);
    let (tx, rx) = mpsc::channel();
    let procs = (1..=3).map(|id| spawn(dir, id, &[], tx.clone())).collect();
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "the voters to converge", |log| {
        all_joined(log, 1..=3)
    });
    (procs, rx)
}

/// A running `quorate elect`/`lock --json`; its JSON reports arrive on `reports`.
struct Run {
    child: Child,
    reports: mpsc::Receiver<Value>,
    log: Vec<Value>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `quorate KIND WHAT --dir DIR --id ID --json -- sh -c SCRIPT`, with `env` added.
fn start(dir: &Path, kind: &str, what: &str, id: u64, script: &str, env: &[(&str, &Path)]) -> Run {
    start_as(dir, kind, what, &["--id", &id.to_string()], script, env)
}

/// `quorate KIND WHAT --dir DIR AS --json -- sh -c SCRIPT` (AS: `--id K` or
/// `--node K`), with `env` added.
fn start_as(
    dir: &Path,
    kind: &str,
    what: &str,
    how: &[&str],
    script: &str,
    env: &[(&str, &Path)],
) -> Run {
    let id = how.join(" ");
    let mut child = Command::new(BIN)
        .args([kind, what, "--dir", dir.to_str().unwrap()])
        .args(how)
        .args(["--json", "--", "sh", "-c", script])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, reports) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let kind = kind.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => {
                    let _ = tx.send(v);
                }
                Err(_) => eprintln!("{kind} {id}: {line}"),
            }
        }
    });
    Run {
        child,
        reports,
        log: Vec::new(),
    }
}

impl Run {
    /// Its exit status, waiting at most the deadline; its reports are all read then.
    fn exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < end, "it did not exit: {:#?}", self.log);
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(v) = self.reports.recv_timeout(DEADLINE) {
            self.log.push(v);
        }
        status
    }

    /// Its first report of `kind`.
    fn report(&self, kind: &str) -> &Value {
        self.log
            .iter()
            .find(|v| v["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} report: {:#?}", self.log))
    }
}

/// The file's text once it has a line (the command wrote it), waiting at most the
/// deadline.
fn written(path: &Path) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(Instant::now() < end, "{} was never written", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn number(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k:?} in {v}"))
}

/// The leader of `group` as a quorum of voters confirms it (through node 1).
fn confirmed_leader(dir: &Path, group: &str) -> Value {
    let out = Command::new(BIN)
        .args(["leader", group, "--confirmed", "--json", "--node", "1"])
        .args(["--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn elect_passes_on_the_exit_status_and_frees_the_leadership() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _voters = voters(&dir);
    let file = tmp.path().join("seen");
    let script = "echo \"$QUORATE_GROUP $QUORATE_TERM $QUORATE_LEASE_UNTIL_MS\" > \"$F\"; exit 3";
    let mut first = start(&dir, "elect", "g", 4, script, &[("F", &file)]);
    let status = first.exit();
    assert_eq!(status.code(), Some(3), "{:#?}", first.log);
    let acquired = first.report("leadership_acquired");
    let term = number(acquired, "term");
    let seen = std::fs::read_to_string(&file).unwrap();
    let fields: Vec<&str> = seen.split_whitespace().collect();
    assert_eq!(fields[..2], ["g", &term.to_string()[..]], "{seen}");
    assert_eq!(
        fields[2],
        number(acquired, "lease_until_ms").to_string(),
        "{seen}"
    );
    assert_eq!(
        first.report("released")["confirmed"],
        true,
        "{:#?}",
        first.log
    );

    // Freed: the voters name nobody, and another campaign gets it, with a higher term.
    assert!(confirmed_leader(&dir, "g")["leader"].is_null());
    let mut second = start(&dir, "elect", "g", 5, "exit 0", &[]);
    assert!(second.exit().success(), "{:#?}", second.log);
    assert!(number(second.report("leadership_acquired"), "term") > term);
}

#[test]
fn elect_stops_the_command_before_the_lease_can_run_out() {
    stops_the_command_before_the_lease_can_run_out(&["--id", "4"]);
}

/// `quorate elect g HOW` (as node 4, or through node 1) leads; two of the three voters
/// stop answering, so the lease cannot be renewed: the command gets SIGTERM before the
/// lease end quorate acts on, and quorate exits with an error.
fn stops_the_command_before_the_lease_can_run_out(how: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let voters = voters(&dir);
    let (term_file, termed) = (tmp.path().join("term"), tmp.path().join("termed"));
    // The command records its term, then the time SIGTERM reached it, and exits.
    let script = "trap 'date +%s%3N > \"$T\"; exit 0' TERM; echo \"$QUORATE_TERM\" > \"$F\"; \
                  sleep 30 & wait";
    let env = [("F", term_file.as_path()), ("T", termed.as_path())];
    let mut run = start_as(&dir, "elect", "g", how, script, &env);
    written(&term_file);

    // Two of the three voters stop answering: the lease cannot be renewed.
    for p in &voters[1..] {
        let pid = p.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success());
    }
    let status = run.exit();
    for p in &voters[1..] {
        let _ = Command::new("kill")
            .args(["-CONT", &p.child.id().to_string()])
            .status();
    }
    assert!(
        !status.success(),
        "losing the lease is an error: {:#?}",
        run.log
    );
    let signalled = run.report("command_signalled");
    assert_eq!(signalled["signal"], "SIGTERM", "{signalled}");
    let lease_end = number(signalled, "lease_until_ms");
    let got_term: u64 = written(&termed).trim().parse().unwrap();
    assert!(
        got_term < lease_end,
        "SIGTERM at {got_term}, lease end {lease_end}: {:#?}",
        run.log
    );
    let exited = run.report("command_exited");
    assert_eq!(
        (&exited["reason"], &exited["code"]),
        (&"losing".into(), &0.into())
    );
    let term: u64 = written(&term_file).trim().parse().unwrap();
    assert_eq!(number(run.report("leadership_acquired"), "term"), term);
}

#[test]
fn two_lock_holders_never_run_their_commands_at_once() {
    let text = lock_holders(&[&["--id", "4"], &["--id", "5"]]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l.starts_with("backup ")), "{text}");
    assert_ne!(
        lines[0], lines[1],
        "two holders, two fencing tokens: {text}"
    );
}

/// `quorate lock backup HOW` once per entry of `hows`, all at once, each running a
/// command that fails (exit 9) if another holder's command is inside; each must exit
/// 0. The lock names and fencing tokens the commands wrote, a line each.
fn lock_holders(hows: &[&[&str]]) -> String {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _voters = voters(&dir);
    let (marker, tokens) = (tmp.path().join("marker"), tmp.path().join("tokens"));
    // `set -C`: the marker is created with O_EXCL, so a second holder inside fails.
    let script = "set -C; : > \"$M\" || exit 9; echo \"$QUORATE_LOCK $QUORATE_FENCING_TOKEN\" \
                  >> \"$TOKENS\"; sleep 1; rm \"$M\"";
    let env = [("M", marker.as_path()), ("TOKENS", tokens.as_path())];
    let mut runs: Vec<Run> = hows
        .iter()
        .map(|how| start_as(&dir, "lock", "backup", how, script, &env))
        .collect();
    for run in &mut runs {
        assert_eq!(run.exit().code(), Some(0), "{:#?}", run.log);
    }
    std::fs::read_to_string(&tokens).unwrap()
}

#[test]
fn bad_command_lines_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 2, free_base(2), &[]);
    let d = dir.to_str().unwrap();
    let no_voters = dir.join("no-voters");
    std::fs::create_dir(&no_voters).unwrap();
    for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if f.is_file() {
            std::fs::copy(&f, no_voters.join(f.file_name().unwrap())).unwrap();
        }
    }
    let toml = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    let start = toml.find("voters = [").unwrap();
    let end = start + toml[start..].find(']').unwrap() + 1;
    let toml = format!("{}voters = []{}", &toml[..start], &toml[end..]);
    std::fs::write(no_voters.join("cluster.toml"), toml).unwrap();
    let n = no_voters.to_str().unwrap();
    for (args, says) in [
        (vec!["elect", "g", "--dir", d, "--id", "1"], "<CMD>"),
        (
            vec!["elect", "", "--dir", d, "--id", "1", "--", "true"],
            "invalid group name",
        ),
        (
            vec!["lock", "", "--dir", d, "--id", "1", "--", "true"],
            "not a lock name",
        ),
        (
            vec!["elect", "g", "--dir", n, "--id", "1", "--", "true"],
            "need voters",
        ),
        (
            vec!["lock", "l", "--dir", n, "--id", "1", "--", "true"],
            "need voters",
        ),
        (
            vec!["lock", "l", "--dir", d, "--id", "7", "--", "true"],
            "node 7 is not in cluster.toml",
        ),
        (vec!["elect", "g", "--dir", d, "--", "true"], "--id"),
        (
            vec![
                "elect", "g", "--dir", d, "--id", "1", "--node", "2", "--", "true",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "lock",
                "l",
                "--dir",
                d,
                "--node",
                "1",
                "--listen",
                "127.0.0.1:1",
                "--",
                "true",
            ],
            "cannot be used with",
        ),
        (
            vec!["elect", "g", "--dir", d, "--node", "x:y", "--", "true"],
            "neither a node id nor an address",
        ),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn elect_through_a_running_node_runs_the_command_and_resigns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (_voters, voter_lines) = voters_logged(&dir);
    let file = tmp.path().join("seen");
    let script = "echo \"$QUORATE_GROUP $QUORATE_TERM $QUORATE_LEASE_UNTIL_MS\" > \"$F\"; exit 3";
    let mut run = start_as(
        &dir,
        "elect",
        "g",
        &["--node", "1"],
        script,
        &[("F", &file)],
    );
    assert_eq!(run.exit().code(), Some(3), "{:#?}", run.log);
    let acquired = run.report("leadership_acquired");
    assert_eq!(
        acquired["node"], 1,
        "node 1 leads on the command's behalf: {acquired}"
    );
    let term = number(acquired, "term");
    let until = number(acquired, "lease_until_ms");
    let seen = std::fs::read_to_string(&file).unwrap();
    assert_eq!(seen.trim(), format!("g {term} {until}"));
    assert_eq!(run.report("released")["confirmed"], true, "{:#?}", run.log);

    // The lease end acted on is never after node 1's own (its stdout, same term; the
    // two are rounded to the millisecond apart).
    let own: Vec<Value> = voter_lines.try_iter().collect();
    let node_says = own
        .iter()
        .find(|v| v["node"] == 1 && v["event"] == "leadership_acquired" && v["term"] == term)
        .unwrap_or_else(|| panic!("node 1 printed no leadership of term {term}: {own:#?}"));
    assert!(
        until <= number(node_says, "lease_until_ms") + 1,
        "{acquired} vs {node_says}"
    );

    // Freed: the voters name nobody.
    assert!(confirmed_leader(&dir, "g")["leader"].is_null());
}

#[test]
fn elect_through_a_node_stops_the_command_before_the_lease_can_run_out() {
    stops_the_command_before_the_lease_can_run_out(&["--node", "1"]);
}

#[test]
fn lock_holders_through_one_node_wait_their_turn() {
    // Two through node 1 (the second waits for the first's campaign), one as node 4.
    let text = lock_holders(&[&["--node", "1"], &["--node", "1"], &["--id", "4"]]);
    let mut got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), 3, "{text}");
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 3, "three holders, three fencing tokens: {text}");
}

#[test]
fn a_node_resigns_for_a_client_that_vanished() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let _voters = voters(&dir);
    let file = tmp.path().join("started");
    let script = "echo $$ > \"$F\"; exec sleep 60";
    let mut run = start_as(
        &dir,
        "elect",
        "g",
        &["--node", "2"],
        script,
        &[("F", &file)],
    );
    written(&file);
    assert_eq!(confirmed_leader(&dir, "g")["leader"], 2);
    // SIGKILL: no resignation is sent; node 2 notices the silence (or the closed
    // connection) and resigns on its own.
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    let orphan = written(&file).trim().to_owned();
    let _ = Command::new("kill").args(["-KILL", &orphan]).status();
    let end = Instant::now() + DEADLINE;
    while !confirmed_leader(&dir, "g")["leader"].is_null() {
        assert!(
            Instant::now() < end,
            "node 2 still leads for a vanished client"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
