//! Scenario files: every built-in scenario written as a file and read back runs the
//! same simulation (same trace hash); malformed files are refused with their line.

use std::time::{Duration, Instant};

use quorate_netsim::catalogue::{Params, CATALOGUE};
use quorate_netsim::{file, glossary, outcome_json, Outcome};

/// Small clusters and short phases, so the whole catalogue runs twice in seconds.
fn small(election: bool) -> Params {
    let mut p = Params::new(if election { 9 } else { 8 }, 1);
    p.duration = Some(Duration::from_secs(5));
    p
}

#[test]
fn every_builtin_round_trips_through_a_file() {
    let mut checked = 0;
    for e in CATALOGUE {
        let t = Instant::now();
        let p = small(e.election);
        let runs = e.scenarios(&p);
        let text = file::show(&runs, e.about)
            .unwrap_or_else(|err| panic!("{}: cannot be written: {err}", e.name));
        let loaded = file::parse(&text, None)
            .unwrap_or_else(|err| panic!("{}: written file does not read: {err}\n{text}", e.name));
        let built = e.run(&p);
        let from_file = loaded.run();
        assert_eq!(
            format!("{:016x}", built.trace_hash),
            format!("{:016x}", from_file.trace_hash),
            "{}: the file runs another simulation\n{text}",
            e.name
        );
        assert_ne!(built.trace_hash, 0, "{}: nothing ran", e.name);
        explained(&built);
        explained(&from_file);
        eprintln!("{:<20} {:016x} {:?}", e.name, built.trace_hash, t.elapsed());
        checked += 1;
    }
    assert_eq!(checked, CATALOGUE.len());
}

/// Every field of the summary has a meaning in the glossary.
fn explained(o: &Outcome) {
    let j = outcome_json(o, None);
    for k in j.as_object().expect("an object").keys() {
        assert!(
            glossary::meaning(k).is_some(),
            "{}: metric {k} has no meaning in the glossary",
            o.scenario
        );
    }
}

fn error_of(text: &str) -> String {
    match file::parse(text, None) {
        Ok(_) => panic!("accepted a malformed file:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_files_name_their_line() {
    let head = "name = \"bad\"\nnodes = [{ names = \"n1..n3\" }]\ntimeline = [\n\
                { do = \"join-all\", spread = \"3ms\" },\n";
    let cases = [
        ("{ do = \"explode\", node = \"n1\" }", "unknown action"),
        ("{ do = \"crash\", node = \"n9\" }", "unknown node"),
        ("{ after = \"5 parsecs\" }", "duration"),
        ("{ do = \"join-all\" }", "spread"),
        ("{ do = \"crash\", nod = \"n1\" }", "nod"),
        ("{ expect = \"converged\" }", "within"),
        ("{ do = \"cut\", sides = [\"n1\", \"nowhere\"] }", "nowhere"),
    ];
    for (entry, what) in cases {
        let err = error_of(&format!("{head}{entry},\n]\n"));
        assert!(
            err.contains("line 5"),
            "{err:?} should name line 5 ({entry})"
        );
        assert!(err.contains(what), "{err:?} should mention {what}");
    }
    let err =
        error_of("name = \"x\"\nnodes = [{ names = \"n1..n3\" }]\n[config]\nprobe_interval = 5\n");
    assert!(err.contains("line 4") && err.contains("duration"), "{err}");
    let err = error_of("name = \"x\"\n\nnodes = [ { names = \"n1..n3\" \n");
    assert!(err.contains("line 3"), "{err}");
}

/// A two-site plant: voters split 2/1 over a 40% lossy, 30 ms link, the link then cut
/// and healed, then the leader crashes; the file's expectations are met, and one that
/// cannot be (a new leader within 1 ms of the crash) is reported.
#[test]
fn expectations_pass_and_fail() {
    let text = |within: &str| {
        format!(
            r#"
name = "two-sites"
group = "g"
nodes = [
  {{ names = "a1..a2", role = ["voter", "candidate"], site = "a" }},
  {{ name = "b1", role = ["voter", "candidate"], site = "b" }},
  {{ names = "b2..b4", site = "b" }},
]
links = [{{ from = "a", to = "b", latency = "30ms", loss = 0.4 }}]
timeline = [
  {{ do = "join-all", spread = "6ms", expect = "converged", within = "60s" }},
  {{ do = "campaign", node = "candidates", expect = "leader", within = "10s" }},
  {{ after = "5s", do = "cut", sides = ["a", "b"] }},
  {{ after = "10s", do = "heal", mark = true, expect = "leader", within = "5s", metric = "heal_leader_ms" }},
  {{ expect = "converged", within = "60s" }},
  {{ after = "3s", do = "crash", node = "leader", mark = true, expect = "new-leader", within = "{within}" }},
]
[config]
preset = "lan"
[expect]
false_dead = "unchecked"
"#
        )
    };
    let ok = file::parse(&text("10s"), None).expect("valid").run();
    assert!(ok.violations.is_empty(), "{:?}", ok.violations);
    assert!(ok.num("heal_leader_ms").is_some());
    let bad = file::parse(&text("1ms"), None).expect("valid").run();
    assert!(
        bad.violations.iter().any(|v| v.contains("did not hold")),
        "an expectation that cannot hold passed: {:?}",
        bad.violations
    );
}

/// The example files of `examples/netsim` pass, and there are three of them.
#[test]
fn examples_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/netsim");
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/netsim exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().map_or(true, |e| e != "toml") {
            continue;
        }
        let f = file::load(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let o = f.run();
        assert!(
            o.violations.is_empty(),
            "{} failed: {:?}\n  replay: quorate-netsim run {} --seed {}",
            path.display(),
            o.violations,
            path.display(),
            o.seed
        );
        ran.push(o.scenario);
    }
    ran.sort();
    assert_eq!(ran, ["sensor-star", "two-site-plant", "wan-three-regions"]);
}

/// Loss set on one node's links only raises suspicions of that node (none without
/// it), and the file written back from the scenario runs the same simulation.
#[test]
fn link_loss_hits_only_its_links() {
    let text = |loss: f64| {
        format!(
            r#"
name = "link-loss"
nodes = [{{ names = "n1..n5" }}]
timeline = [
  {{ do = "join-all", spread = "5ms", expect = "converged", within = "30s" }},
  {{ do = "loss", loss = {loss}, from = "n5", to = "all" }},
  {{ after = "60s", do = "loss", loss = 0.0, from = "n5", to = "all", mark = true, expect = "converged", within = "60s", metric = "back_ms" }},
]
[expect]
false_dead = "unchecked"
"#
        )
    };
    let f = file::parse(&text(0.6), None).expect("valid");
    let o = f.run();
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    let suspected = o.num("false_suspect").expect("reported");
    assert!(suspected >= 1.0, "60 s at 60% loss raised no suspicion");
    let clean = file::parse(&text(0.0), None).expect("valid").run();
    assert_eq!(clean.num("false_suspect"), Some(0.0));
    let shown = file::show(std::slice::from_ref(&f.scenario), "").expect("writable");
    let again = file::parse(&shown, None).expect("reads back").run();
    assert_eq!(o.trace_hash, again.trace_hash, "{shown}");
}

/// A node's own config takes effect: a node given another cluster name cannot join,
/// so the cluster never converges with it; without that line it does.
#[test]
fn a_node_runs_its_own_config() {
    let text = |own: &str| {
        format!(
            r#"
name = "own-config"
nodes = [{{ names = "n1..n3" }}, {{ name = "n4"{own} }}]
timeline = [{{ do = "join-all", spread = "4ms", expect = "converged", within = "20s" }}]
settle = "1s"
"#
        )
    };
    let same = file::parse(&text(""), None).expect("valid").run();
    assert!(same.violations.is_empty(), "{:?}", same.violations);
    let own = text(r#", config = { cluster_name = "elsewhere", probe_interval = "1s" }"#);
    let other = file::parse(&own, None).expect("valid").run();
    assert!(
        other.violations.iter().any(|v| v.contains("did not hold")),
        "a node with another cluster name joined: {:?}",
        other.violations
    );
    let err = file::parse(&text(r#", config = { probe_interval = 3 }"#), None).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

/// A built-in scenario shown under each preset reads back as the same run.
#[test]
fn every_preset_round_trips() {
    let e = quorate_netsim::catalogue::find("crash").expect("a built-in");
    for &name in file::config::PRESETS {
        let mut p = small(false);
        p.config = file::config::preset(name).expect("a preset");
        let text = file::show(&e.scenarios(&p), "").expect("writable");
        assert!(text.contains(&format!("preset = \"{name}\"")), "{text}");
        let again = file::parse(&text, None).expect("reads back").run();
        assert_eq!(e.run(&p).trace_hash, again.trace_hash, "{name}:\n{text}");
    }
}

/// The timeline a picture draws: the crashed leader seen failed by most nodes, a
/// while when nodes disagree about it, two leaders, the crash as a fault.
#[test]
fn a_run_records_its_timeline() {
    use quorate_netsim::plot::record::State;
    use quorate_netsim::plot::{Recorder, Recording};
    let e = quorate_netsim::catalogue::find("leader-crash").expect("a built-in");
    let rec = Recording::default();
    let mut exec = quorate_netsim::catalogue::executor(None, |s| {
        vec![Box::new(Recorder::new(rec.clone(), s.nodes)) as Box<dyn quorate_netsim::Checker>]
    });
    let o = e.run_exec(&small(true), &mut exec);
    assert!(o.violations.is_empty(), "{:?}", o.violations);
    let t = rec.take().expect("recorded");
    let first = t.leads.first().expect("a leader").node as usize;
    assert!(
        t.leads.iter().any(|l| l.node as usize != first),
        "one leader only"
    );
    assert!(t.states[first].iter().any(|s| s.1 == State::Failed));
    assert!(!t.split[first].is_empty(), "no node ever disagreed");
    assert!(t
        .faults
        .iter()
        .any(|f| f.label == "crash" && f.node == Some(first as u32)));
}
