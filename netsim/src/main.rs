//! The `quorate-netsim` command: run, sweep and benchmark simulated clusters.

use std::io::Write;
use std::ops::Range;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use quorate::election::lease::UnsafeVariant;
use quorate::Config;
use quorate_netsim::bench::{self, BenchOpts};
use quorate_netsim::catalogue::{self, Params, CATALOGUE};
use quorate_netsim::plot::{self, Recorder, Recording};
use quorate_netsim::{elections, file, glossary, why, Checker, Scenario};
use quorate_netsim::{outcome_json, replay_command, Outcome};

/// jemalloc, with transparent huge pages for all its memory. A large simulation keeps
/// every node's table of every other node (gigabytes at 10,000 nodes) and touches it
/// at random, one node per event: with 4 KiB pages nearly every access is a TLB miss,
/// and 2 MiB pages made the steady state 2.5x faster at 2,000 nodes.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Deterministic network simulator for quorate: partition testing, fault injection and
/// benchmarks of the membership protocol, all on virtual time.
#[derive(Parser, Debug)]
#[command(name = "quorate-netsim", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Lists the scenarios, one line each.
    List,
    /// Runs one scenario: a built-in one by name, or a scenario file (`FILE.toml`).
    Run {
        /// Scenario name (see `list`) or file.
        scenario: String,
        #[command(flatten)]
        opts: RunOpts,
        /// Prints only the summary, as one JSON object.
        #[arg(long)]
        json: bool,
        /// Writes the whole trace to this file, one JSON object per line.
        #[arg(long)]
        trace: Option<std::path::PathBuf>,
        /// Draws the run's timeline to this SVG file: every node's state, the leaders
        /// and their terms, the faults, where a checker fired.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Runs one scenario for many seeds; prints each failing seed and its replay
    /// command, exits with 1 if any failed.
    Sweep {
        /// Scenario name (see `list`) or file.
        scenario: String,
        /// Seeds, `A..B` (B excluded).
        #[arg(long, value_parser = parse_range)]
        seeds: Range<u64>,
        #[command(flatten)]
        opts: RunOpts,
        /// Prints only JSON: every run's summary, one per line, then a summary
        /// object of the sweep.
        #[arg(long)]
        json: bool,
        /// Draws the distribution (CDF) of the key times across seeds to this SVG file.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Prints a built-in scenario as a scenario file (at the size and seed asked for).
    Show {
        /// Scenario name (see `list`).
        scenario: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// From a trace (`run --trace FILE.jsonl`), the chain of messages and timers that
    /// led to a node's suspicion, death declaration or leadership at or before a time.
    Why {
        /// The trace.
        trace: std::path::PathBuf,
        /// The node (its id, as the trace and the summary name it).
        #[arg(long)]
        node: u64,
        /// The time: `12.3s`, `800ms`, or seconds.
        #[arg(long)]
        at: String,
    },
    /// Prints what a metric of the summary means (every metric without a name).
    Explain {
        /// The metric, as the summary names it.
        metric: Option<String>,
    },
    /// Prints the benchmark table.
    Bench(BenchArgs),
}

/// What `bench` measures and how it prints it.
#[derive(Args, Debug)]
struct BenchArgs {
    /// Cluster sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![10usize, 100, 1000, 10000])]
    sizes: Vec<usize>,
    /// Steady-state phase of each run, seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skip the 1% / 10% loss runs above this many nodes.
    #[arg(long, default_value_t = 10_000)]
    loss_max_nodes: usize,
    /// Protocol preset: lan, wan, local or edge.
    #[arg(long, default_value = "lan")]
    preset: String,
    /// Runs sizes that look too large for the memory available.
    #[arg(long)]
    force: bool,
    /// Reports the progress of long runs on stderr.
    #[arg(long)]
    progress: bool,
    /// Sizes above this start from a formed cluster (every node knows every
    /// other) instead of joining through one seed; their convergence is not timed.
    #[arg(long, default_value_t = 2000)]
    formed_above: usize,
    /// Threads per run (default: one per core from 1,000 nodes, else one).
    #[arg(long)]
    threads: Option<usize>,
    /// Prints only JSON, one object per cluster size.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Prints the table as CSV (a header line, then one line per size).
    #[arg(long)]
    csv: bool,
    /// Draws convergence and detection times against cluster size to this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct RunOpts {
    /// Cluster size (default: 32; 9 for the election scenarios).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seed of every random choice (default 1, or the file's).
    #[arg(long)]
    seed: Option<u64>,
    /// Datagram loss probability, a fraction (0.1 = 10%).
    #[arg(long)]
    loss: Option<f64>,
    /// Length of the scenario's main phase, seconds (scenario default otherwise).
    #[arg(long)]
    duration: Option<f64>,
    /// Protocol preset: lan (the default), wan or local.
    #[arg(long)]
    preset: Option<String>,
    /// Plain SWIM: Lifeguard off.
    #[arg(long)]
    no_lifeguard: bool,
    /// Runs even when the cluster looks too large for the memory available.
    #[arg(long)]
    force: bool,
    /// Reports the progress of long runs on stderr.
    #[arg(long)]
    progress: bool,
    /// Starts from a formed cluster (every node already knows every other) instead of
    /// a join storm through one seed.
    #[arg(long)]
    formed: bool,
    /// Bytes of application metadata every node publishes (its name, padded).
    #[arg(long, default_value_t = 0)]
    meta_bytes: usize,
    /// Threads that run a membership scenario (default: one per core from 1,000
    /// nodes, else one). The results are the same for any number.
    #[arg(long)]
    threads: Option<usize>,
    /// Runs a deliberately unsafe election variant (see `list`), which the checkers
    /// must catch; election scenarios only.
    #[arg(long = "break", value_name = "VARIANT")]
    unsafe_variant: Option<String>,
}

/// Every node holds a record of every other: memory grows with the square of the
/// cluster. Refuses (unless forced) a run that would not fit the memory available.
fn threads(asked: Option<usize>, nodes: usize) -> Result<usize> {
    match asked {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => Ok(t),
        None => Ok(catalogue::auto_threads(nodes)),
    }
}

fn check_memory(nodes: usize, force: bool) -> Result<()> {
    // Peak RSS over nodes² for `converge`: 169 at 2,000 nodes, 150 at 4,000, 123 at 10,000.
    const BYTES_PER_RECORD: f64 = 150.0;
    let need = (nodes as f64).powi(2) * BYTES_PER_RECORD;
    let avail = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
    });
    match avail {
        Some(a) if need > a && !force => bail!(
            "{nodes} nodes need about {:.1} GiB and {:.1} GiB is available; \
             use --force to run anyway",
            need / f64::from(1 << 30),
            a / f64::from(1 << 30)
        ),
        _ => Ok(()),
    }
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or("expected A..B")?;
    let a = a.trim().parse::<u64>().map_err(|e| e.to_string())?;
    let b = b.trim().parse::<u64>().map_err(|e| e.to_string())?;
    if b <= a {
        return Err("empty range".into());
    }
    Ok(a..b)
}

fn preset(name: &str) -> Result<Config> {
    Ok(match name {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        "edge" => Config::edge(),
        other => bail!("unknown preset {other:?} (lan, wan, local, edge)"),
    })
}

impl RunOpts {
    fn params(&self, entry: &catalogue::Entry, seed: u64) -> Result<Params> {
        if let Some(l) = self.loss {
            if !(0.0..1.0).contains(&l) {
                bail!("--loss is a fraction in [0, 1), got {l}");
            }
        }
        let nodes = self.nodes.unwrap_or(entry.nodes);
        if nodes < 2 {
            bail!("--nodes must be at least 2");
        }
        check_memory(nodes, self.force)?;
        let mut config = preset(self.preset.as_deref().unwrap_or("lan"))?;
        config.lifeguard = !self.no_lifeguard;
        config.validate()?;
        let variant = match self.unsafe_variant.as_deref() {
            None => None,
            Some(_) if !entry.election => {
                bail!("--break applies to the election scenarios only (see `list`)")
            }
            Some(name) => Some(UnsafeVariant::from_name(name).with_context(|| {
                let names: Vec<_> = UnsafeVariant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant {name:?}; known: {}", names.join(", "))
            })?),
        };
        Ok(Params {
            nodes,
            seed,
            loss: self.loss,
            duration: self.duration.map(Duration::from_secs_f64),
            config,
            progress: self.progress,
            formed: self.formed,
            meta_bytes: self.meta_bytes,
            variant,
            threads: threads(self.threads, nodes)?,
        })
    }
}

fn replay(entry: &catalogue::Entry, o: &RunOpts, seed: u64) -> String {
    let name = entry.name;
    let mut c = replay_command(name, o.nodes.unwrap_or(entry.nodes), seed, o.loss);
    if let Some(d) = o.duration {
        c.push_str(&format!(" --duration {d}"));
    }
    if let Some(p) = &o.preset {
        c.push_str(&format!(" --preset {p}"));
    }
    if o.no_lifeguard {
        c.push_str(" --no-lifeguard");
    }
    if o.force {
        c.push_str(" --force");
    }
    if o.formed {
        c.push_str(" --formed");
    }
    if o.meta_bytes > 0 {
        c.push_str(&format!(" --meta-bytes {}", o.meta_bytes));
    }
    if let Some(v) = &o.unsafe_variant {
        c.push_str(&format!(" --break {v}"));
    }
    c
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::List => {
            for e in CATALOGUE {
                println!("{:<18} {}", e.name, e.about);
            }
            println!();
            println!(
                "`quorate-netsim show NAME > mine.toml` prints any of them as a scenario file"
            );
            println!(
                "to edit and run with `quorate-netsim run mine.toml` (see netsim/SCENARIO.md)."
            );
            println!();
            println!("Unsafe election variants (run <scenario> --break <variant>), each caught");
            println!("by the checkers in the scenario named:");
            for v in UnsafeVariant::ALL {
                println!(
                    "{:<18} {} (caught in {})",
                    v.name(),
                    elections::about_variant(v),
                    elections::showcase(v)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            scenario,
            opts,
            json,
            trace,
            plot,
        } => run(&scenario, &opts, json, trace, plot),
        Cmd::Sweep {
            scenario,
            seeds,
            opts,
            json,
            plot,
        } => sweep(&scenario, seeds, &opts, json, plot),
        Cmd::Show { scenario, opts } => show(&scenario, &opts),
        Cmd::Explain { metric } => explain(metric.as_deref()),
        Cmd::Why { trace, node, at } => why(&trace, node, &at),
        Cmd::Bench(args) => bench_cmd(args),
    }
}

fn bench_cmd(a: BenchArgs) -> Result<ExitCode> {
    for &n in &a.sizes {
        check_memory(n, a.force)?;
        threads(a.threads, n)?;
    }
    let opts = BenchOpts {
        sizes: a.sizes,
        duration: Duration::from_secs_f64(a.duration),
        seed: a.seed,
        config: preset(&a.preset)?,
        loss_max_nodes: a.loss_max_nodes,
        progress: a.progress,
        formed_above: a.formed_above,
        threads: a.threads,
    };
    match (a.json, a.csv) {
        (true, _) => {}
        (_, true) => println!("{}", bench::csv_header()),
        _ => print!("{}", bench::header(&opts)),
    }
    let mut rows = Vec::new();
    for &n in &opts.sizes {
        let r = bench::row(&opts, n, &mut |m| eprintln!("  {m}"));
        match (a.json, a.csv) {
            (true, _) => println!("{}", bench::row_json(&r)),
            (_, true) => println!("{}", bench::csv_row(&r)),
            _ => println!("{}", bench::format_row(&r)),
        }
        std::io::stdout().flush()?;
        rows.push(r);
    }
    if let Some(path) = a.plot {
        plot::bench_svg(&rows, &path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn find(name: &str) -> Result<&'static catalogue::Entry> {
    catalogue::find(name).with_context(|| {
        let names: Vec<_> = CATALOGUE.iter().map(|e| e.name).collect();
        format!("unknown scenario {name:?}; known: {}", names.join(", "))
    })
}

/// What `run` and `sweep` run: a built-in scenario or a scenario file.
enum Target {
    Builtin(&'static catalogue::Entry),
    File { path: String, text: String },
}

impl Target {
    fn open(name: &str) -> Result<Target> {
        let is_file = name.ends_with(".toml") || std::path::Path::new(name).is_file();
        if !is_file {
            return Ok(Target::Builtin(find(name)?));
        }
        let text = std::fs::read_to_string(name).with_context(|| format!("reading {name}"))?;
        file::parse(&text, None).with_context(|| name.to_owned())?;
        Ok(Target::File {
            path: name.to_owned(),
            text,
        })
    }

    /// Runs it at `seed` (the file's own when `None`), its trace written to `trace`,
    /// its timeline recorded into `rec`.
    fn run(
        &self,
        o: &RunOpts,
        seed: Option<u64>,
        trace: Option<Box<dyn Write>>,
        rec: Option<&Recording>,
    ) -> Result<Outcome> {
        let mut exec = catalogue::executor(trace, |s: &Scenario| -> Vec<Box<dyn Checker>> {
            rec.map(|r| Box::new(Recorder::new(r.clone(), s.nodes)) as Box<dyn Checker>)
                .into_iter()
                .collect()
        });
        match self {
            Target::Builtin(entry) => {
                let p = o.params(entry, seed.unwrap_or(1))?;
                Ok(entry.run_exec(&p, &mut exec))
            }
            Target::File { path, text } => {
                o.refuse_for_file()?;
                let mut f = file::parse(text, seed).with_context(|| path.clone())?;
                check_memory(f.scenario.nodes, o.force)?;
                f.set_threads(threads(o.threads, f.scenario.nodes)?, o.progress);
                Ok(f.run_with(&mut exec))
            }
        }
    }

    /// Node names by index (a file's own; `n1`, `n2`, ... otherwise).
    fn names(&self) -> Option<Vec<String>> {
        match self {
            Target::Builtin(_) => None,
            Target::File { text, .. } => file::parse(text, None).ok().map(|f| f.names),
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Builtin(e) => e.name,
            Target::File { path, .. } => path,
        }
    }

    fn replay(&self, o: &RunOpts, seed: u64) -> String {
        match self {
            Target::Builtin(entry) => replay(entry, o, seed),
            Target::File { path, .. } => format!("quorate-netsim run {path} --seed {seed}"),
        }
    }
}

impl RunOpts {
    /// A file sets everything but the seed, threads and progress itself.
    fn refuse_for_file(&self) -> Result<()> {
        let set = [
            ("--nodes", self.nodes.is_some()),
            ("--loss", self.loss.is_some()),
            ("--duration", self.duration.is_some()),
            ("--preset", self.preset.is_some()),
            ("--no-lifeguard", self.no_lifeguard),
            ("--formed", self.formed),
            ("--meta-bytes", self.meta_bytes > 0),
            ("--break", self.unsafe_variant.is_some()),
        ];
        if let Some((flag, _)) = set.iter().find(|f| f.1) {
            bail!("{flag} does not apply to a scenario file: set it in the file");
        }
        Ok(())
    }
}

/// The summary, each metric with its meaning, then the verdict.
fn print_human(o: &Outcome, loss: Option<f64>) {
    let j = outcome_json(o, loss);
    if let Some(m) = j.as_object() {
        for (k, v) in m {
            if k != "violations" && k != "verdict" {
                let about = glossary::meaning(k).unwrap_or_default();
                println!("{k:>28}: {:<18} {about}", v.to_string());
            }
        }
    }
    print_verdict(o);
}

fn print_verdict(o: &Outcome) {
    if o.violations.is_empty() {
        println!("PASS");
        return;
    }
    println!("FAIL: {} expectation(s) failed", o.violations.len());
    for v in &o.violations {
        println!("  - {v}");
    }
}

fn run(
    name: &str,
    opts: &RunOpts,
    json: bool,
    trace: Option<std::path::PathBuf>,
    plot: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    let target = Target::open(name)?;
    let rec = plot.as_ref().map(|_| Recording::default());
    let w = match trace {
        Some(path) => {
            let f = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            Some(Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>)
        }
        None => None,
    };
    let o = target.run(opts, opts.seed, w, rec.as_ref())?;
    if let (Some(path), Some(rec)) = (plot, rec) {
        let mut t = rec.take().ok_or(plot::PlotError::Empty)?;
        t.name.clone_from(&o.scenario);
        t.marks = plot::record::marks(&o, t.end);
        if let Some(names) = target.names() {
            t.names = names;
        }
        plot::timeline_svg(&t, &path)?;
        eprintln!("wrote {}", path.display());
    }
    if json {
        println!("{}", outcome_json(&o, opts.loss));
    } else {
        print_human(&o, opts.loss);
    }
    if o.violations.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "seed {} failed; replay: {}",
        o.seed,
        target.replay(opts, o.seed)
    );
    Ok(ExitCode::from(1))
}

/// Runs `name` on every seed of `seeds`. With `json`, stdout carries only JSON: one
/// object per seed, then a summary object (`"summary": true`); the human lines (failed
/// seeds with their replay command, the medians) go to stderr.
fn sweep(
    name: &str,
    seeds: Range<u64>,
    opts: &RunOpts,
    json: bool,
    plot: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    let target = Target::open(name)?;
    let total = seeds.end - seeds.start;
    let mut failed = Vec::new();
    let mut seen: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let say = |line: String| match json {
        true => eprintln!("{line}"),
        false => println!("{line}"),
    };
    for seed in seeds {
        let o = target.run(opts, Some(seed), None, None)?;
        if json {
            println!("{}", outcome_json(&o, opts.loss));
        }
        for (k, v) in &o.metrics {
            if let Some(v) = v.as_f64().filter(|_| swept(k)) {
                seen.entry(k.clone()).or_default().push(v);
            }
        }
        if !o.violations.is_empty() {
            say(format!("seed {seed} FAILED: {}", o.violations.join("; ")));
            say(format!("  replay: {}", target.replay(opts, seed)));
            failed.push(seed);
        }
    }
    let failed_list = match failed.is_empty() {
        true => String::new(),
        false => format!(" ({failed:?})"),
    };
    let name = target.name();
    say(format!(
        "{name}: {} of {total} seeds passed, {} failed{failed_list}",
        total - failed.len() as u64,
        failed.len(),
    ));
    if let Some(path) = plot {
        let ms = seen.iter().filter(|(k, _)| k.ends_with("_ms"));
        let ms = ms.map(|(k, v)| (k.clone(), v.clone())).collect();
        let title = format!("{name}: key times across {total} seeds");
        plot::cdf_svg(&title, &ms, &path)?;
        eprintln!("wrote {}", path.display());
    }
    let verdict = if failed.is_empty() { "PASS" } else { "FAIL" };
    let metrics = medians(seen, &say);
    say(match failed.len() {
        0 => "PASS".to_owned(),
        k => format!("FAIL: {k} of {total} seeds failed"),
    });
    if json {
        let summary = serde_json::json!({
            "summary": true,
            "scenario": name,
            "seeds": total,
            "passed": total - failed.len() as u64,
            "failed": failed,
            "verdict": verdict,
            "metrics": metrics,
        });
        println!("{summary}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The median, min and max of each metric across seeds, said and as JSON.
fn medians(
    seen: std::collections::BTreeMap<String, Vec<f64>>,
    say: &dyn Fn(String),
) -> serde_json::Map<String, serde_json::Value> {
    let mut metrics = serde_json::Map::new();
    for (k, mut v) in seen {
        v.sort_by(f64::total_cmp);
        let (lo, mid, hi) = (v[0], v[v.len() / 2], v[v.len() - 1]);
        say(format!(
            "  {k}: median {mid}, min {lo}, max {hi} ({} runs)",
            v.len()
        ));
        let summary = serde_json::json!({"median": mid, "min": lo, "max": hi, "runs": v.len()});
        metrics.insert(k, summary);
    }
    metrics
}

/// Whether a sweep summarises metric `k`: the listed ones, and every time a file
/// measures.
fn swept(k: &str) -> bool {
    SWEPT.contains(&k) || k.ends_with("_ms") && !k.starts_with("steady") && k != "liveness_bound_ms"
}

fn show(name: &str, opts: &RunOpts) -> Result<ExitCode> {
    let entry = find(name)?;
    let p = opts.params(entry, opts.seed.unwrap_or(1))?;
    let about = format!(
        "{}: {}\nWritten by `{}`; run with `quorate-netsim run FILE.toml`.",
        entry.name,
        entry.about,
        replay(entry, opts, p.seed).replacen(" run ", " show ", 1)
    );
    let text = file::show(&entry.scenarios(&p), &about)
        .map_err(|e| anyhow::anyhow!("{name} cannot be written as a file: {e}"))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn why(trace: &std::path::Path, node: u64, at: &str) -> Result<ExitCode> {
    let at = match at.parse::<f64>() {
        Ok(s) => s,
        Err(_) => file::format::parse_duration(at)
            .map_err(anyhow::Error::msg)?
            .as_secs_f64(),
    };
    let text =
        std::fs::read_to_string(trace).with_context(|| format!("reading {}", trace.display()))?;
    let recs = why::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", trace.display()))?;
    for line in why::explain(&recs, node, at).map_err(anyhow::Error::msg)? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(metric: Option<&str>) -> Result<ExitCode> {
    match metric {
        None => {
            for (k, m) in glossary::METRICS {
                println!("{k:<28} {m}");
            }
        }
        Some(k) => match glossary::meaning(k) {
            Some(m) => println!("{k}: {m}"),
            None => bail!("unknown metric {k:?}; `quorate-netsim explain` lists them all"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Metrics a sweep summarises (median, min, max) when the scenario reports them.
const SWEPT: &[&str] = &[
    "failover_ms",
    "crash_failover_ms",
    "partial_failover_ms",
    "mute_failover_ms",
    "deaf_failover_ms",
    "isolated_failover_ms",
    "pause_failover_ms",
    "leader_time_pct",
    "leader_changes",
    "leaders_max_concurrent",
    "converged_ms",
    "first_detect_ms",
    "all_detect_ms",
    "heal_ms",
];
