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
#[path = "jepsen/setup.rs"]
mod setup;
#[path = "jepsen/stability.rs"]
mod stability;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use cluster::{Cluster, Features};
use faults::Rng;
use setup::{env_num, exclusive, require_root_and_tools};

const DEFAULT_SEED: u64 = 20_260_101;
/// Three rounds of every kind of fault.
const DEFAULT_FAULTS: usize = 27;

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
    c.start_all()?;
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
