//! Scenario files: a cluster, its network, a timeline of faults and expectations in
//! TOML (`quorate-netsim run FILE.toml`), read into a [`Scenario`]; and any scenario
//! written back as such a file (`quorate-netsim show NAME`). The format is described
//! in `netsim/SCENARIO.md`.
//!
//! ```
//! let text = r#"
//! name = "three"
//! nodes = [{ names = "n1..n3" }]
//! timeline = [
//!   { do = "join-all", spread = "3ms" },
//!   { expect = "converged", within = "30s", metric = "converged_ms" },
//! ]
//! "#;
//! let f = quorate_netsim::file::parse(text, None).unwrap();
//! assert!(f.run().violations.is_empty());
//! ```

pub mod config;
mod export;
pub mod format;
pub mod nodes;
pub mod timeline;

use serde_json::Value;
use toml::Spanned;

use crate::net::{Link, Net};
use crate::scenario::{Outcome, Scenario};

pub use export::show;
use format::{Budget, File, LinkSpec, MetricBound};
use nodes::Nodes;

/// What is wrong with a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Not valid TOML, or a key or value of the wrong kind (the message names the line).
    #[error(transparent)]
    Syntax(#[from] toml::de::Error),
    /// Valid TOML that does not describe a scenario.
    #[error("line {line}: {msg}")]
    At {
        /// 1-based line.
        line: usize,
        /// What was expected.
        msg: String,
    },
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A scenario read from a file, with what it expects of the run.
#[derive(Debug)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// Bounds on metrics, with their line.
    pub bounds: Vec<(usize, MetricBound)>,
    /// Further runs, with their name.
    pub variants: Vec<(String, Scenario)>,
    /// Node names by index.
    pub names: Vec<String>,
}

/// Reads a file; `seed` overrides the file's.
pub fn load(path: &std::path::Path, seed: Option<u64>) -> Result<Loaded, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, seed)
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses a file's text; `seed` overrides the file's.
pub fn parse(text: &str, seed: Option<u64>) -> Result<Loaded, FileError> {
    let f: File = toml::from_str(text)?;
    let at = |span: std::ops::Range<usize>| {
        move |msg: String| FileError::At {
            line: line_of(text, span.start),
            msg,
        }
    };
    let mut nodes = Nodes::default();
    for n in &f.nodes {
        nodes.add(n.get_ref()).map_err(at(n.span()))?;
    }
    if nodes.base < 1 {
        return Err(at(0..0)("expected at least one node in `nodes`".into()));
    }
    for t in &f.twins {
        nodes.add_twin(t.get_ref()).map_err(at(t.span()))?;
    }
    let mut s = Scenario::new(&f.name, nodes.base, seed.or(f.seed).unwrap_or(1));
    apply_config(&mut s.config, &f.config, text)?;
    s.config.election.voters = nodes
        .voters
        .iter()
        .map(|&i| crate::sim::node_id(i))
        .collect();
    if let Err(e) = s.config.validate() {
        return Err(at(0..0)(format!("invalid config: {e}")));
    }
    s.node_configs = node_configs(&f, &s.config, text)?;
    s.net = net(&f, &nodes, text)?;
    if let Some(sn) = &f.seed_node {
        s.seed_node = nodes.one(sn).map_err(at(0..0))?;
    }
    s.group = f.group.clone();
    s.durable_terms = f.durable_terms.unwrap_or(false);
    s.term_floor = f.term_floor.unwrap_or(true);
    s.meta_bytes = f.meta_bytes.unwrap_or(0);
    s.twins = nodes.twin_of.clone();
    if let Some(d) = f.settle {
        s.settle = d.0;
    }
    let bounds = expectations(&f, &mut s, text)?;
    for e in &f.timeline {
        let steps = timeline::steps(e.get_ref(), &nodes, s.group.as_deref());
        s.steps.extend(steps.map_err(at(e.span()))?);
    }
    let mut variants = Vec::new();
    for v in &f.variant {
        let mut vs = s.clone();
        let spanned = v.get_ref().config.iter().map(|(k, x)| {
            let sp = Spanned::new(v.span(), x.clone());
            (k.clone(), sp)
        });
        apply_config(&mut vs.config, &spanned.collect(), text)?;
        if let Some(b) = &v.get_ref().false_dead {
            vs.false_dead_budget = budget(Some(b), Some(0)).map_err(at(v.span()))?;
        }
        variants.push((v.get_ref().name.clone(), vs));
    }
    Ok(Loaded {
        scenario: s,
        bounds,
        variants,
        names: nodes.names,
    })
}

/// The `[expect]` table: the checkers' budgets into `s`, the metric bounds with their
/// line.
fn expectations(
    f: &File,
    s: &mut Scenario,
    text: &str,
) -> Result<Vec<(usize, MetricBound)>, FileError> {
    let mut bounds = Vec::new();
    let Some(e) = &f.expect else {
        return Ok(bounds);
    };
    let err = |msg: String| FileError::At {
        line: 1,
        msg: format!("[expect]: {msg}"),
    };
    s.false_dead_budget = budget(e.false_dead.as_ref(), Some(0)).map_err(err)?;
    s.lease_loss_budget = budget(e.lease_losses_with_quorum.as_ref(), None).map_err(err)?;
    s.enforce_bully = e.bully.unwrap_or(true);
    for b in &e.metric {
        bounds.push((line_of(text, b.span().start), clone_bound(b.get_ref())));
    }
    Ok(bounds)
}

/// The nodes whose entry sets a config, each with it (in the order of the entries).
fn node_configs(
    f: &File,
    base: &quorate::Config,
    text: &str,
) -> Result<Vec<(crate::net::NodeIdx, quorate::Config)>, FileError> {
    let (mut out, mut next) = (Vec::new(), 0);
    for n in &f.nodes {
        let spec = n.get_ref();
        let count = match &spec.names {
            Some(r) => nodes::expand_range(r).map_or(0, |v| v.len()),
            None => 1,
        };
        if !spec.config.is_empty() {
            let table = spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), Spanned::new(n.span(), v.clone())));
            let mut c = base.clone();
            apply_config(&mut c, &table.collect(), text)?;
            c.validate().map_err(|e| FileError::At {
                line: line_of(text, n.span().start),
                msg: format!("invalid config: {e}"),
            })?;
            out.extend((next..next + count).map(|i| (i as crate::net::NodeIdx, c.clone())));
        }
        next += count;
    }
    Ok(out)
}

fn clone_bound(m: &MetricBound) -> MetricBound {
    MetricBound {
        name: m.name.clone(),
        max: m.max,
        min: m.min,
    }
}

fn budget(b: Option<&Budget>, default: Option<u64>) -> Result<Option<u64>, String> {
    match b {
        None => Ok(default),
        Some(Budget::Count(n)) => Ok(Some(*n)),
        Some(Budget::Word(w)) if w == "unchecked" => Ok(None),
        Some(Budget::Word(w)) => Err(format!("expected a count or \"unchecked\", found {w:?}")),
    }
}

type ConfigTable = std::collections::BTreeMap<String, Spanned<toml::Value>>;

fn apply_config(c: &mut quorate::Config, t: &ConfigTable, text: &str) -> Result<(), FileError> {
    let err = |sp: &Spanned<toml::Value>, msg: String| FileError::At {
        line: line_of(text, sp.span().start),
        msg,
    };
    if let Some(p) = t.get("preset") {
        let name = p.get_ref().as_str().unwrap_or_default();
        let voters = c.election.voters.clone();
        *c = config::preset(name).ok_or_else(|| {
            err(
                p,
                format!(
                    "unknown preset {name:?}; expected one of {:?}",
                    config::PRESETS
                ),
            )
        })?;
        c.election.voters = voters;
    }
    for (k, v) in t.iter().filter(|(k, _)| *k != "preset") {
        config::set(c, k, v.get_ref()).map_err(|m| err(v, format!("config.{k}: {m}")))?;
    }
    Ok(())
}

fn link(base: &Link, s: &LinkSpec) -> Result<Link, String> {
    let mut l = base.clone();
    l.latency = s.latency.map_or(l.latency, |d| d.0);
    l.jitter = s.jitter.map_or(l.jitter, |d| d.0);
    if let Some(name) = &s.distribution {
        let d = crate::net::Dist::NAMES.iter().find(|d| d.0 == name);
        l.dist = d.map(|d| d.1).ok_or_else(|| {
            let names: Vec<_> = crate::net::Dist::NAMES.iter().map(|d| d.0).collect();
            format!("unknown distribution {name:?}; expected one of {names:?}")
        })?;
    }
    l.reorder_delay = s.reorder_delay.map_or(l.reorder_delay, |d| d.0);
    l.rto = s.rto.map_or(l.rto, |d| d.0);
    for (name, v, field) in [
        ("loss", s.loss, &mut l.loss),
        ("duplicate", s.duplicate, &mut l.duplicate),
        ("reorder", s.reorder, &mut l.reorder),
    ] {
        if let Some(p) = v {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} is a probability in [0, 1], found {p}"));
            }
            *field = p;
        }
    }
    if l.rto.is_zero() {
        return Err("rto must be positive".into());
    }
    Ok(l)
}

fn net(f: &File, nodes: &Nodes, text: &str) -> Result<Net, FileError> {
    let mut n = Net::default();
    if let Some(spec) = &f.network {
        let line = line_of(text, spec.span().start);
        n.default = link(&n.default, spec.get_ref()).map_err(|msg| FileError::At { line, msg })?;
    }
    for r in &f.links {
        let err = |msg: String| FileError::At {
            line: line_of(text, r.span().start),
            msg,
        };
        let rule = r.get_ref();
        let l = link(&n.default, &rule.spec()).map_err(err)?;
        let from = nodes.resolve(&rule.from.items()).map_err(err)?;
        let to = nodes.resolve(&rule.to.items()).map_err(err)?;
        for &a in &from {
            for &b in to.iter().filter(|&&b| b != a) {
                n.overrides.insert((a, b), l.clone());
                if rule.one_way != Some(true) {
                    n.overrides.insert((b, a), l.clone());
                }
            }
        }
    }
    Ok(n)
}

impl Loaded {
    /// Runs the scenario and its variants, then checks the metric bounds.
    pub fn run(&self) -> Outcome {
        self.run_with(&mut |s| s.run())
    }

    /// Runs it, writing the trace of every simulation to `out`.
    pub fn run_traced(&self, out: Box<dyn std::io::Write>) -> Outcome {
        let shared = crate::catalogue::SharedWriter::new(out);
        self.run_with(&mut |s| s.run_with(Vec::new(), Some(Box::new(shared.clone()))))
    }

    /// Sets the threads and progress reporting of every simulation.
    pub fn set_threads(&mut self, threads: usize, progress: bool) {
        let all =
            std::iter::once(&mut self.scenario).chain(self.variants.iter_mut().map(|v| &mut v.1));
        for s in all {
            s.threads = threads;
            s.progress = progress;
        }
    }

    /// Runs every simulation through `exec` (e.g. with a trace writer).
    pub fn run_with(&self, exec: &mut dyn FnMut(&Scenario) -> Outcome) -> Outcome {
        let mut o = exec(&self.scenario);
        for (name, v) in &self.variants {
            let vo = exec(v);
            o.absorb(vo, name);
        }
        o.violations.extend(self.failed_bounds(&o));
        o
    }

    /// The metric bounds `o` breaks, one line each.
    pub fn failed_bounds(&self, o: &Outcome) -> Vec<String> {
        let mut out = Vec::new();
        for (line, b) in &self.bounds {
            let v = o.metrics.get(&b.name).and_then(Value::as_f64);
            let Some(v) = v else {
                out.push(format!("metric {} (line {line}) was not reported", b.name));
                continue;
            };
            if b.max.is_some_and(|m| v > m) || b.min.is_some_and(|m| v < m) {
                let want = match (b.min, b.max) {
                    (Some(lo), Some(hi)) => format!("within {lo}..={hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => String::new(),
                };
                out.push(format!(
                    "metric {} = {v}, expected {want} (line {line})",
                    b.name
                ));
            }
        }
        out
    }
}
