//! `quorate watch` against real `quorate node` processes: a member join and group
//! changes (made by an in-process node of the same cluster) arrive as the JSON lines
//! `quorate node --json` prints, `--group` keeps one group's, the watch ends when the
//! node stops, and a watch with no node to ask fails with a clear error.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_base, init, sigterm, spawn, wait_for, DEADLINE};
use quorate::{Identity, Node, NodeConfig, NodeId};
use quorate_cli::cluster::{ClusterFile, Paths};
use serde_json::Value;

/// A running `quorate watch`; its stdout lines (JSON) arrive on `lines`.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    log: Vec<Value>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `quorate watch --dir DIR --json EXTRA...`, once it said on stderr that the node
/// accepted the watch.
fn watch(dir: &Path, extra: &[&str]) -> Watch {
    let mut child = Command::new(common::BIN)
        .args(["watch", "--dir", dir.to_str().unwrap(), "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("watch printed non-JSON {line:?}: {e}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match err_rx.recv_timeout(left) {
            Ok(line) if line.starts_with("watching node") => break,
            Ok(_) => {}
            Err(_) => panic!("quorate watch {extra:?} did not start watching"),
        }
    }
    Watch {
        child,
        lines,
        log: Vec::new(),
    }
}

/// Node `id` of the cluster in `dir`, in this process, joining through `seed`.
async fn in_process_node(dir: &Path, id: u64, seed: std::net::SocketAddr) -> Node {
    let file = ClusterFile::load(dir).unwrap();
    let paths = Paths(dir.to_owned());
    let me = NodeId(id);
    let identity =
        Identity::load(&paths.node_cert(me), &paths.node_key(me), &paths.ca_cert()).unwrap();
    let addr = file.node(id).unwrap().addr.resolve().unwrap();
    let mut cfg = NodeConfig::new(me, addr, identity);
    cfg.config = file.config_with(&file.preset).unwrap();
    cfg.seeds = vec![seed];
    let node = Node::start(cfg).await.unwrap();
    node.wait_joined(DEADLINE).await.unwrap();
    node
}

/// A line without its time stamp, to compare what two processes printed.
fn unstamped(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("ts_ms");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_nodes_events_as_its_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let base = free_base(3);
    init(&dir, 3, base, &["--preset", "local"]);
    let (tx1, rx1) = mpsc::channel();
    let node1 = spawn(&dir, 1, &[], tx1);
    let mut log1 = Vec::new();
    wait_for(&rx1, &mut log1, "node 1 to start", |log| {
        log.iter().any(|v| v["event"] == "node_started")
    });
    let mut all = watch(&dir, &["--node", "1"]);
    let addr1 = format!("127.0.0.1:{base}");
    let mut only_g = watch(&dir, &["--node", &addr1, "--group", "g"]);

    // A member joins: the watch prints node 1's own line for it.
    let (tx2, rx2) = mpsc::channel();
    let _node2 = spawn(&dir, 2, &[], tx2);
    let joined = |log: &[Value]| {
        log.iter()
            .find(|v| v["event"] == "member_joined" && v["member"] == 2)
            .cloned()
    };
    wait_for(
        &all.lines,
        &mut all.log,
        "the watch to see node 2 join",
        |l| joined(l).is_some(),
    );
    wait_for(&rx1, &mut log1, "node 1 to see node 2 join", |l| {
        joined(l).is_some()
    });
    let (watched, own) = (joined(&all.log).unwrap(), joined(&log1).unwrap());
    assert_eq!(unstamped(&watched), unstamped(&own), "{watched} vs {own}");
    drop(rx2);

    // Group changes made on another node reach node 1 and its watches; the group
    // watch shows group g's and nothing else.
    let node3 = in_process_node(&dir, 3, addr1.parse().unwrap()).await;
    node3.create_group("other").await.unwrap();
    node3.create_group("g").await.unwrap();
    node3.join_group("g", b"gpu=1".to_vec()).await.unwrap();
    let g_joined = |log: &[Value]| {
        log.iter().any(|v| {
            v["event"] == "group_joined"
                && v["group"] == "g"
                && v["member"] == 3
                && v["capabilities"] == "gpu=1"
        })
    };
    wait_for(&only_g.lines, &mut only_g.log, "group g's join", g_joined);
    wait_for(
        &all.lines,
        &mut all.log,
        "group g's join, unfiltered",
        g_joined,
    );
    for v in &only_g.log {
        assert_eq!(v["group"], "g", "{v}");
        assert_eq!(v["node"], 1, "{v}");
    }
    assert!(
        only_g.log.iter().any(|v| v["event"] == "group_created"),
        "{:#?}",
        only_g.log
    );
    node3.leave().await.unwrap();

    // The node stops: each watch ends, successfully.
    sigterm(&node1);
    for w in [&mut all, &mut only_g] {
        let end = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = w.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < end, "the watch did not end with the node");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{status}");
    }
}

#[test]
fn watch_without_a_node_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    init(&dir, 1, free_base(1), &[]);
    let out = Command::new(common::BIN)
        .args(["watch", "--dir", dir.to_str().unwrap(), "--timeout", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot watch: no node accepted"), "{err}");
    assert!(err.contains("node 1 at 127.0.0.1:"), "{err}");

    for (args, says) in [
        (vec!["--group", ""], "--group"),
        (
            vec!["--node", "nowhere"],
            "neither a node id nor an address",
        ),
        (vec!["--node", "9"], "node 9 is not in cluster.toml"),
    ] {
        let out = Command::new(common::BIN)
            .args(["watch", "--dir", dir.to_str().unwrap()])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
