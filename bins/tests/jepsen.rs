//! Jepsen-style test: five real `quorate node --json --campaign g` processes, each in
//! its own network namespace, under a seeded random sequence of faults (kill -9 and
//! restart of one node or of a majority at once, SIGSTOP past the lease, symmetric and
//! one-way partitions, the leader isolated, a duplicate process of one id, a stalled
//! node replaced by its duplicate, clock-rate drift under libfaketime). A checker then
//! reads every process's events: no two leaders at once, terms always rising, a
//! resumed leader reports its loss first. See `jepsen/checker.rs` for how leaderships
//! become intervals. `jepsen/stability.rs` stalls one or two follower voters at a
//! time and checks that the leader keeps its lease; the two tests run one at a time.
//!
//! Needs root (namespaces, veth pairs, nftables) and the `ip`, `nft` and libfaketime
//! tools. `QUORATE_JEPSEN_SEED` replays a run, `QUORATE_JEPSEN_FAULTS` sets its length:
//! `QUORATE_JEPSEN_FAULTS=200 cargo test -p quorate-cli --test jepsen -- --nocapture`.

#[path = "jepsen/checker.rs"]
mod checker;
#[path = "jepsen/cluster.rs"]
mod cluster;
#[path = "jepsen/faults.rs"]
mod faults;
#[path = "jepsen/net.rs"]
mod net;
#[path = "jepsen/selftest.rs"]
mod selftest;
#[path = "jepsen/stability.rs"]
mod stability;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use cluster::{Cluster, Features, NODES};
use faults::Rng;

const DEFAULT_SEED: u64 = 20_260_101;
/// Three rounds of every kind of fault.
const DEFAULT_FAULTS: usize = 27;

/// Held for the whole run by each test that starts a cluster: two clusters at once
/// would starve each other's processes on a small machine, and would clash anyway
/// (namespaces are named after the test process, addresses are fixed).
static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster lock (also after another test failed while holding it).
fn exclusive() -> MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}={s:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// Fails unless the test can build its network: it must run as root.
fn require_root_and_tools() -> Result<PathBuf> {
    // `ip` and `nft` live in sbin, which a plain user's PATH may lack.
    let path = std::env::var("PATH").unwrap_or_default();
    if !path.split(':').any(|d| d == "/usr/sbin") {
        std::env::set_var("PATH", format!("{path}:/usr/sbin:/sbin"));
    }
    let uid = net::run("id", &["-u"])?;
    if uid.trim() != "0" {
        bail!(
            "the jepsen test needs root: it runs each node in its own network namespace \
             (ip netns, veth pairs, a bridge) and cuts links with nftables; run it as root \
             (uid is {})",
            uid.trim()
        );
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if net::run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            bail!("the jepsen test needs `{tool}` (apt-get install {package})");
        }
    }
    faketime_lib().context("the jepsen test needs libfaketime (apt-get install faketime)")
}

/// libfaketime's preload library, as the Debian package installs it.
fn faketime_lib() -> Option<PathBuf> {
    let listed = net::run("dpkg", &["-L", "libfaketime"]).unwrap_or_default();
    if let Some(p) = listed
        .lines()
        .find(|l| l.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
        .filter(|p| p.exists())
    {
        return Some(p);
    }
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
}

#[test]
fn leases_hold_under_process_and_network_faults() -> Result<()> {
    let _alone = exclusive();
    let faketime = require_root_and_tools()?;
    let seed: u64 = env_num("QUORATE_JEPSEN_SEED", DEFAULT_SEED)?;
    let count: usize = env_num("QUORATE_JEPSEN_FAULTS", DEFAULT_FAULTS)?;
    let features = Features::detect()?;
    eprintln!(
        "jepsen: seed {seed} (replay: QUORATE_JEPSEN_SEED={seed}), {count} faults, \
         node flags: --data-dir {}, --renewals {}",
        features.data_dir, features.renewals
    );
    let wall = Instant::now();
    let mut rng = Rng::new(seed);
    let plan = faults::schedule(&mut rng, count);
    let mut c = Cluster::new(features, faketime)?;
    for id in 1..=NODES {
        c.spawn(id, false, 1.0)?;
    }
    if c.wait_leader(Duration::from_secs(60)).is_none() {
        let errs: Vec<String> = (0..c.instances.len()).map(|s| c.stderr_of(s)).collect();
        bail!("no leader within 60 s of starting; stderr: {errs:#?}");
    }
    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    for (i, f) in plan.iter().enumerate() {
        c.note(format!("fault {}/{count}: {f:?}", i + 1));
        faults::apply(&mut c, &mut rng, *f)?;
        *applied.entry(format!("{f:?}")).or_insert(0) += 1;
        faults::quiet(&mut c, &mut rng);
    }
    c.shutdown()?;
    let report = checker::check(&c);
    let summary = summarize(&c, &report, seed, &applied, wall.elapsed());
    eprintln!("{summary}");
    if !report.violations.is_empty() {
        eprintln!(
            "events and stderr of every process: {}/logs",
            c.keep().display()
        );
        for v in report.violations.iter().take(12) {
            eprintln!("\n{}: {}", v.kind, v.text);
            eprint!(
                "{}",
                checker::timeline(&c, &report, v.from - 3000.0, v.to + 3000.0)
            );
        }
        bail!(
            "{} violations with seed {seed} (replay: QUORATE_JEPSEN_SEED={seed} \
             QUORATE_JEPSEN_FAULTS={count}):\n{summary}",
            report.violations.len()
        );
    }
    Ok(())
}

fn summarize(
    c: &Cluster,
    report: &checker::Report,
    seed: u64,
    applied: &BTreeMap<String, usize>,
    took: Duration,
) -> String {
    let terms = report.leaderships.iter().map(|l| l.term).max().unwrap_or(0);
    let mut s = format!(
        "jepsen summary: seed {seed}, {} faults {applied:?}, {} processes, {} leaderships \
         (highest term {terms}), closest handover {}, wall {:.1} s\n",
        applied.values().sum::<usize>(),
        c.instances.len(),
        report.leaderships.len(),
        report.closest_handover.as_deref().unwrap_or("-"),
        took.as_secs_f64()
    );
    let counts = checker::counts(&report.violations);
    if counts.is_empty() {
        s += "violations: none";
    }
    for (kind, n) in counts {
        s += &format!("violations: {n} x {kind}\n");
    }
    s
}
