//! The command line: JSON that is only JSON, JSON-lines traces, files shown and run,
//! errors with their line.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn netsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorate-netsim"))
        .args(args)
        .output()
        .expect("quorate-netsim runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("quorate-netsim-{}-{name}", std::process::id()))
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn trace_is_json_lines_with_named_fields() {
    let path = temp("t.jsonl");
    let o = netsim(&["run", "leader-crash", "--trace", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&path).expect("trace written");
    let lines = json_lines(&text);
    assert!(lines.len() > 1000, "only {} lines", lines.len());
    let kinds = |k: &str| lines.iter().filter(|l| l["type"] == k).count();
    for k in ["recv", "timer", "view", "event", "action"] {
        assert!(kinds(k) > 0, "no {k} records");
    }
    assert!(lines.iter().all(|l| l["t"].is_f64()));
    let elected = lines
        .iter()
        .find(|l| l["event"]["Leadership"]["Elected"]["term"].is_u64());
    assert!(elected.is_some(), "no Elected event with a named term");
    std::fs::remove_file(path).ok();
}

#[test]
fn sweep_json_prints_only_json() {
    let o = netsim(&["sweep", "leader-crash", "--seeds", "1..4", "--json"]);
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 4, "three runs and a summary");
    assert!(lines[..3].iter().all(|l| l["verdict"].is_string()));
    assert_eq!(lines[3]["summary"], true);
    assert_eq!(lines[3]["seeds"], 3);
}

#[test]
fn a_shown_builtin_runs_as_a_file_with_the_same_trace() {
    let o = netsim(&["show", "leader-isolated"]);
    assert!(o.status.success());
    let path = temp("li.toml");
    std::fs::write(&path, stdout(&o)).unwrap();
    let from_file = netsim(&["run", path.to_str().unwrap(), "--json"]);
    let builtin = netsim(&["run", "leader-isolated", "--json"]);
    let (a, b) = (
        json_lines(&stdout(&from_file)),
        json_lines(&stdout(&builtin)),
    );
    assert_eq!(a.len(), 1, "run --json prints one object");
    assert_eq!(a[0]["trace_hash"], b[0]["trace_hash"]);
    assert_eq!(a[0]["verdict"], "PASS");
    std::fs::remove_file(path).ok();
}

#[test]
fn a_malformed_file_fails_with_its_line() {
    let path = temp("bad.toml");
    let text = "name = \"bad\"\nnodes = [{ names = \"n1..n3\" }]\ntimeline = [\n\
                { do = \"crash\", node = \"n7\" },\n]\n";
    std::fs::write(&path, text).unwrap();
    let o = netsim(&["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 4") && err.contains("n7"), "{err}");
    std::fs::remove_file(path).ok();
}

#[test]
fn metrics_are_explained() {
    let o = netsim(&["explain", "false_dead"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("declared failed"));
    assert_eq!(
        netsim(&["explain", "no_such_metric"]).status.code(),
        Some(2)
    );
    let human = stdout(&netsim(&["run", "crash", "--nodes", "8"]));
    assert!(human.lines().last() == Some("PASS"), "{human}");
    assert!(human.contains("first_detect_ms") && human.contains("time from the crash"));
}

#[test]
fn bench_prints_json_and_csv() {
    let args = [
        "bench",
        "--sizes",
        "8",
        "--duration",
        "5",
        "--loss-max-nodes",
        "0",
    ];
    let json = netsim(&[&args[..], &["--json"]].concat());
    let rows = json_lines(&stdout(&json));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["nodes"], 8);
    assert!(rows[0]["first_detect_ms"].is_f64());
    let csv = stdout(&netsim(&[&args[..], &["--csv"]].concat()));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("nodes,converged_ms,first_detect_ms"));
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
}

/// An SVG document: one root element, closed, holding `texts`.
fn svg(path: &std::path::Path, texts: &[&str]) -> usize {
    let s = std::fs::read_to_string(path).expect("picture written");
    assert!(
        s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
        "not an SVG"
    );
    assert_eq!(s.matches("<svg").count(), 1);
    for t in texts {
        assert!(s.contains(t), "the picture lacks {t:?}");
    }
    std::fs::remove_file(path).ok();
    s.len()
}

#[test]
fn pictures_of_a_run_a_sweep_and_a_bench() {
    let p = temp("lc.svg");
    let o = netsim(&["run", "leader-crash", "--plot", p.to_str().unwrap()]);
    assert!(o.status.success());
    // Who led when: the leader lane, each leadership labelled with node and term.
    svg(&p, &["leader of g", "\nn1 t", "\nn2 t", "simulated time"]);
    let p = temp("sweep.svg");
    netsim(&[
        "sweep",
        "leader-crash",
        "--seeds",
        "1..4",
        "--plot",
        p.to_str().unwrap(),
    ]);
    svg(&p, &["crash_failover_ms (3 runs)", "fraction of seeds"]);
    let p = temp("bench.svg");
    let args = [
        "bench",
        "--sizes",
        "8,16",
        "--duration",
        "5",
        "--loss-max-nodes",
        "0",
    ];
    netsim(&[&args[..], &["--plot", p.to_str().unwrap()]].concat());
    svg(&p, &["first_detect_ms", "nodes"]);
}

#[test]
fn a_thousand_node_timeline_stays_small() {
    let p = temp("c1000.svg");
    let o = netsim(&[
        "run",
        "converge",
        "--nodes",
        "1000",
        "--plot",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let bytes = svg(&p, &["n991..n1000"]);
    assert!(bytes < 5_000_000, "{bytes} bytes");
}

#[test]
fn why_follows_a_suspicion_and_a_leadership_to_their_causes() {
    let path = temp("why.jsonl");
    let trace = path.to_str().unwrap();
    assert!(netsim(&["run", "leader-crash", "--trace", trace])
        .status
        .success());
    let lines: Vec<Value> = json_lines(&std::fs::read_to_string(&path).unwrap());
    // The first leader (node 1) crashes; find when some node first suspects it.
    let crash = lines
        .iter()
        .find(|l| l["type"] == "action" && l["action"] == "Crash")
        .expect("a crash");
    let node = crash["node"].as_u64().unwrap().to_string();
    let suspected = lines
        .iter()
        .find(|l| l["type"] == "view" && l["member"] == crash["node"] && l["state"] == "suspect")
        .expect("the crashed node suspected");
    let t = format!("{}s", suspected["t"].as_f64().unwrap() + 0.5);
    let o = netsim(&["why", trace, "--node", &node, "--at", &t]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("own timer fired"), "{text}");
    assert!(
        text.contains(&format!("scenario: \"Crash\" node {node}")),
        "{text}"
    );
    // The next leadership: its request and the grants that made it.
    let elected = lines
        .iter()
        .filter(|l| !l["event"]["Leadership"]["Elected"].is_null())
        .nth(1)
        .expect("a second leadership");
    let (who, t) = (elected["node"].to_string(), elected["t"].to_string());
    let text = stdout(&netsim(&["why", trace, "--node", &who, "--at", &t]));
    assert!(text.contains("elected leader of \"g\""), "{text}");
    assert!(
        text.contains("(Request)") && text.matches("granted it").count() >= 2,
        "{text}"
    );
    std::fs::remove_file(path).ok();
}
