//! The benchmark table: convergence, detection latency, traffic, false deaths under loss
//! and simulator speed, for growing cluster sizes.

use std::fmt::Write as _;
use std::time::Duration;

use quorate::Config;

use crate::catalogue::{self, Params};
use crate::check::false_dead_budget;
use crate::scenario::{Action, Cond, Outcome, Step};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    /// Cluster sizes.
    pub sizes: Vec<usize>,
    /// Steady-state phase of each run.
    pub duration: Duration,
    /// Seed.
    pub seed: u64,
    /// Protocol configuration.
    pub config: Config,
    /// Skip the two loss runs for sizes above this.
    pub loss_max_nodes: usize,
    /// Report the progress of long runs on stderr.
    pub progress: bool,
    /// Sizes above this start from a formed cluster instead of a join storm (a
    /// 10,000-node join storm alone takes about 3 minutes of wall time on two threads
    /// and 15 GB).
    pub formed_above: usize,
    /// Threads per run (`None`: [`catalogue::auto_threads`]).
    pub threads: Option<usize>,
}

/// One line of the table.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Cluster size.
    pub nodes: usize,
    /// Started from a formed cluster (no join storm, no convergence time).
    pub formed: bool,
    /// Time for every view to be complete after the joins began, ms.
    pub converged_ms: Option<f64>,
    /// Crash noticed by a first node, ms.
    pub first_detect_ms: Option<f64>,
    /// Crash noticed by every node, ms.
    pub all_detect_ms: Option<f64>,
    /// Messages sent per node per second in steady state (no loss).
    pub msgs_per_node_s: Option<f64>,
    /// Bytes sent per node per second in steady state (no loss).
    pub bytes_per_node_s: Option<f64>,
    /// Healthy nodes declared dead at 1% loss.
    pub false_dead_1: Option<f64>,
    /// Healthy nodes declared dead at 10% loss.
    pub false_dead_10: Option<f64>,
    /// Simulated node-seconds per wall second in the steady phase of the first run.
    pub speed: f64,
    /// Wall time of that steady phase, s.
    pub steady_wall_s: f64,
    /// Wall time of the row's runs, s.
    pub wall_s: f64,
    /// Violations seen.
    pub violations: Vec<String>,
}

fn steady(p: &Params, loss: f64, d: Duration) -> Outcome {
    let mut s = catalogue::base("bench", p)
        .act(Action::Loss(loss))
        .step(Step::TrafficFrom)
        .run_for(d)
        .step(Step::TrafficRates);
    s.false_dead_budget = false_dead_budget(loss);
    s.run()
}

/// Measures one cluster size; `progress` hears about each run.
pub fn row(opts: &BenchOpts, n: usize, progress: &mut dyn FnMut(&str)) -> Row {
    let p = Params {
        config: opts.config.clone(),
        progress: opts.progress,
        formed: n > opts.formed_above,
        threads: opts.threads.unwrap_or_else(|| catalogue::auto_threads(n)),
        ..Params::new(n, opts.seed)
    };
    let mut r = Row {
        nodes: n,
        formed: p.formed,
        ..Row::default()
    };
    progress(&format!("n={n}: converge, crash, steady state"));
    let s = catalogue::crash_scenario(&p)
        .until(Cond::Converged, Duration::from_secs(600), "")
        .step(Step::TrafficFrom)
        .run_for(opts.duration)
        .step(Step::TrafficRates);
    let o = s.run();
    r.converged_ms = o.num("converged_ms");
    r.first_detect_ms = o.num("first_detect_ms");
    r.all_detect_ms = o.num("all_detect_ms");
    r.msgs_per_node_s = o.num("msgs_per_node_s");
    r.bytes_per_node_s = o.num("bytes_per_node_s");
    r.speed = o.steady_speed().unwrap_or_else(|| o.speed());
    r.steady_wall_s = o.steady.map_or(0.0, |(_, w)| w as f64 / 1000.0);
    r.wall_s = o.wall_ms as f64 / 1000.0;
    r.violations.extend(o.violations);
    if n <= opts.loss_max_nodes {
        for (loss, slot) in [(0.01, &mut r.false_dead_1), (0.10, &mut r.false_dead_10)] {
            progress(&format!("n={n}: {}% loss", loss * 100.0));
            let o = steady(&p, loss, opts.duration);
            *slot = o.num("false_dead");
            r.wall_s += o.wall_ms as f64 / 1000.0;
            r.violations.extend(
                o.violations
                    .into_iter()
                    .map(|v| format!("{loss} loss: {v}")),
            );
        }
    }
    r
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(x) if x.fract() == 0.0 || x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_owned(),
    }
}

/// The table header.
pub fn header(opts: &BenchOpts) -> String {
    format!(
        "steady phase {:.0} s per run, seed {}, probe {:?}; sizes above {} start formed; \
         threads {}\n\
         {:>6} {:>10} {:>9} {:>9} {:>10} {:>11} {:>8} {:>9} {:>12} {:>8} {:>8}\n",
        opts.duration.as_secs_f64(),
        opts.seed,
        opts.config.probe_interval,
        opts.formed_above,
        opts.threads.map_or_else(
            || format!("{} from 1,000 nodes", catalogue::auto_threads(1000)),
            |t| t.to_string()
        ),
        "nodes",
        "conv_ms",
        "det1_ms",
        "detN_ms",
        "msg/node/s",
        "bytes/nd/s",
        "fd@1%",
        "fd@10%",
        "node-s/wall-s",
        "steady_s",
        "wall_s"
    )
}

/// One formatted line.
pub fn format_row(r: &Row) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>6} {:>10} {:>9} {:>9} {:>10} {:>11} {:>8} {:>9} {:>12.0} {:>8.1} {:>8.1}",
        r.nodes,
        if r.formed {
            "formed".to_owned()
        } else {
            cell(r.converged_ms)
        },
        cell(r.first_detect_ms),
        cell(r.all_detect_ms),
        cell(r.msgs_per_node_s),
        cell(r.bytes_per_node_s),
        cell(r.false_dead_1),
        cell(r.false_dead_10),
        r.speed,
        r.steady_wall_s,
        r.wall_s
    );
    for v in &r.violations {
        let _ = write!(s, "\n       ! {v}");
    }
    s
}
