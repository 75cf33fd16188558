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

/// The table's columns, as the header, `--json` and `--csv` name them.
pub const COLUMNS: &[&str] = &[
    "nodes",
    "converged_ms",
    "first_detect_ms",
    "all_detect_ms",
    "msgs_per_node_s",
    "bytes_per_node_s",
    "false_dead_1pct",
    "false_dead_10pct",
    "node_s_per_wall_s",
    "steady_wall_s",
    "wall_s",
];

/// The table header.
pub fn header(opts: &BenchOpts) -> String {
    let mut cols = String::new();
    for (k, c) in COLUMNS.iter().enumerate() {
        let _ = write!(
            cols,
            "{}{c:>w$}",
            if k > 0 { " " } else { "" },
            w = width(k)
        );
    }
    format!(
        "steady phase {:.0} s per run, seed {}, probe {:?}; sizes above {} start formed; \
         threads {} (`quorate-netsim explain COLUMN` says what a column means)\n{cols}\n",
        opts.duration.as_secs_f64(),
        opts.seed,
        opts.config.probe_interval,
        opts.formed_above,
        opts.threads.map_or_else(
            || format!("{} from 1,000 nodes", catalogue::auto_threads(1000)),
            |t| t.to_string()
        ),
    )
}

fn width(k: usize) -> usize {
    COLUMNS[k].len().max(6)
}

/// The row's values in [`COLUMNS`] order (`None`: not measured).
pub fn values(r: &Row) -> Vec<Option<f64>> {
    vec![
        Some(r.nodes as f64),
        if r.formed { None } else { r.converged_ms },
        r.first_detect_ms,
        r.all_detect_ms,
        r.msgs_per_node_s,
        r.bytes_per_node_s,
        r.false_dead_1,
        r.false_dead_10,
        Some(r.speed.round()),
        Some((r.steady_wall_s * 10.0).round() / 10.0),
        Some((r.wall_s * 10.0).round() / 10.0),
    ]
}

/// One row as a JSON object (unmeasured values null, `formed` and `violations` added).
pub fn row_json(r: &Row) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in COLUMNS.iter().zip(values(r)) {
        m.insert(
            (*k).to_owned(),
            v.map_or(serde_json::Value::Null, Into::into),
        );
    }
    m.insert("nodes".into(), r.nodes.into());
    m.insert("formed".into(), r.formed.into());
    m.insert("violations".into(), r.violations.clone().into());
    serde_json::Value::Object(m)
}

/// The CSV header line.
pub fn csv_header() -> String {
    format!("{},formed,violations", COLUMNS.join(","))
}

/// One row as a CSV line (unmeasured values empty).
pub fn csv_row(r: &Row) -> String {
    let mut cells: Vec<String> = values(r)
        .into_iter()
        .map(|v| v.map_or_else(String::new, |x| x.to_string()))
        .collect();
    cells.push(r.formed.to_string());
    cells.push(format!(
        "\"{}\"",
        r.violations.join("; ").replace('"', "\"\"")
    ));
    cells.join(",")
}

/// One formatted line.
pub fn format_row(r: &Row) -> String {
    let mut s = String::new();
    for (k, v) in values(r).into_iter().enumerate() {
        let text = match (k, v) {
            (1, None) if r.formed => "formed".to_owned(),
            (8, Some(x)) => format!("{x:.0}"),
            (9 | 10, Some(x)) => format!("{x:.1}"),
            (_, v) => cell(v),
        };
        let _ = write!(
            s,
            "{}{text:>w$}",
            if k > 0 { " " } else { "" },
            w = width(k)
        );
    }
    for v in &r.violations {
        let _ = write!(s, "\n       ! {v}");
    }
    s
}
