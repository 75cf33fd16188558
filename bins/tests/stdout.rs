//! A `quorate node` whose stdout is closed early, or never read, keeps running and
//! still leaves gracefully on SIGTERM: its peers report `member_left`, not
//! `member_failed`.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use common::{free_base, init, seen, spawn, wait_for, BIN, DEADLINE};

/// Prints a file (a node's stderr) if the test fails while it is in scope.
struct ShownOnFailure(std::path::PathBuf);

impl Drop for ShownOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- {}:\n{text}", self.0.display());
        }
    }
}

/// `quorate node --json` for node `id` with its stdout going to `stdout`.
fn node(dir: &Path, id: u64, stdout: Stdio, extra: &[&str]) -> Child {
    node_with_stderr(dir, id, stdout, Stdio::piped(), extra)
}

fn node_with_stderr(dir: &Path, id: u64, stdout: Stdio, stderr: Stdio, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args([
            "node",
            "--dir",
            dir.to_str().unwrap(),
            "--id",
            &id.to_string(),
        ])
        .arg("--json")
        .args(extra)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits (bounded by the deadline) for `child` to exit; its status and stderr (when
/// piped).
fn exit_of(mut child: Child) -> (ExitStatus, String) {
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the node did not exit after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err).unwrap();
    }
    (status, err)
}

#[test]
fn a_node_whose_stdout_was_closed_keeps_running_and_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 3, free_base(3), &[]);
    let (tx, rx) = mpsc::channel();
    let _one = spawn(&dir, 1, &[], tx.clone());
    let three = spawn(&dir, 3, &[], tx.clone());
    let mut two = node(&dir, 2, Stdio::piped(), &[]);

    // Read three lines of node 2 (started, two joins), then close the read end.
    let stdout = two.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        for _ in 0..3 {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let _ = lines_tx.send(line);
        }
    });
    for _ in 0..3 {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("three lines from node 2");
        assert!(line.starts_with('{'), "{line}");
    }
    reader.join().unwrap();

    // Node 2 has more to print (node 3 fails), with nobody left to read it.
    let mut log = Vec::new();
    wait_for(&rx, &mut log, "node 1 to see node 2", |log| {
        seen(log, 1, "member_joined", 2)
    });
    drop(three);
    wait_for(&rx, &mut log, "node 1 to see node 3 fail", |log| {
        seen(log, 1, "member_failed", 3)
    });
    assert!(!seen(&log, 1, "member_failed", 2), "node 2 died: {log:#?}");

    sigterm(&two);
    wait_for(&rx, &mut log, "node 2 to leave", |log| {
        seen(log, 1, "member_left", 2)
    });
    let (status, err) = exit_of(two);
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!seen(&log, 1, "member_failed", 2), "{log:#?}");
}

#[test]
fn a_node_whose_stdout_is_never_read_still_leaves_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 2, free_base(2), &[]);
    let (tx, rx) = mpsc::channel();
    let _one = spawn(&dir, 1, &[], tx.clone());

    // A pipe nobody reads (`sleep` holds its read end), kept full by a filler thread.
    let mut sink = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let write_end: OwnedFd = sink.stdin.take().unwrap().into();
    let mut filler = File::from(write_end.try_clone().unwrap());
    let fill = std::thread::spawn(move || {
        let chunk = [b'\n'; 4096];
        while filler.write_all(&chunk).is_ok() {}
    });
    // Its stderr goes to a file, shown if the test fails (a pipe read only at the end
    // could fill up and stall it).
    let err_path = tmp.path().join("node-2.stderr");
    let _shown = ShownOnFailure(err_path.clone());
    let err_file = Stdio::from(File::create(&err_path).unwrap());
    let queue = ["--output-queue", "1"];
    let two = node_with_stderr(&dir, 2, Stdio::from(write_end), err_file, &queue);

    let mut log = Vec::new();
    wait_for(&rx, &mut log, "node 1 to see node 2", |log| {
        seen(log, 1, "member_joined", 2)
    });
    sigterm(&two);
    wait_for(&rx, &mut log, "node 2 to leave", |log| {
        seen(log, 1, "member_left", 2)
    });
    let (status, _) = exit_of(two);
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("output lines dropped"), "{err}");
    assert!(!seen(&log, 1, "member_failed", 2), "{log:#?}");

    // The reader goes: the filler's next write fails and it ends.
    let _ = sink.kill();
    let _ = sink.wait();
    fill.join().unwrap();
}
