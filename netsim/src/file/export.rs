//! Any scenario written as a file (`quorate-netsim show NAME`): reading the text back
//! gives the same scenario, and so the same trace.

use std::fmt::Write;

use serde::Serialize;

use crate::net::{Link, NodeIdx};
use crate::scenario::Scenario;
use crate::sim::node_idx;

use super::config;
use super::format::{Budget, Dur, Expect, LinkRule, LinkSpec, Names, NodeSpec, TwinSpec};
use super::nodes::Nodes;
use super::timeline;

#[derive(Serialize)]
struct Root<'a> {
    name: &'a str,
    seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    settle: Dur,
    #[serde(skip_serializing_if = "Option::is_none")]
    durable_terms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    term_floor: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_bytes: Option<usize>,
}

/// One table as an inline table `{ k = v, ... }`, its fields in declaration order.
fn inline<T: Serialize>(t: &T) -> Result<String, String> {
    let body = toml::to_string(t).map_err(|e| e.to_string())?;
    Ok(format!(
        "{{ {} }}",
        body.lines().collect::<Vec<_>>().join(", ")
    ))
}

fn array<T: Serialize>(out: &mut String, key: &str, items: &[T]) -> Result<(), String> {
    if items.is_empty() {
        return Ok(());
    }
    let _ = writeln!(out, "{key} = [");
    for i in items {
        let _ = writeln!(out, "  {},", inline(i)?);
    }
    let _ = writeln!(out, "]");
    Ok(())
}

/// Node names `n1..nN` (the node with id k is `nk`), the twins after them.
fn names(s: &Scenario) -> Result<(Nodes, Vec<NodeSpec>, Vec<TwinSpec>), String> {
    let n = s.nodes;
    let voters: Vec<NodeIdx> = s
        .config
        .election
        .voters
        .iter()
        .map(|&v| node_idx(v, n))
        .collect::<Option<_>>()
        .ok_or("a voter is not one of the nodes")?;
    let mut sorted = voters.clone();
    sorted.sort_unstable();
    if sorted != voters {
        return Err("voters are not in id order".into());
    }
    let mut specs: Vec<NodeSpec> = Vec::new();
    let mut i = 0;
    while i < n {
        let voter = voters.contains(&(i as NodeIdx));
        let mut j = i;
        while j + 1 < n && voters.contains(&((j + 1) as NodeIdx)) == voter {
            j += 1;
        }
        let mut spec = NodeSpec::default();
        if i == j {
            spec.name = Some(format!("n{}", i + 1));
        } else {
            spec.names = Some(format!("n{}..n{}", i + 1, j + 1));
        }
        spec.role = voter.then(|| Names::One("voter".into()));
        specs.push(spec);
        i = j + 1;
    }
    let twins: Vec<TwinSpec> = s
        .twins
        .iter()
        .enumerate()
        .map(|(k, &of)| TwinSpec {
            name: format!("n{}-twin{}", of + 1, k + 1),
            of: format!("n{}", of + 1),
        })
        .collect();
    let mut nodes = Nodes::default();
    for spec in &specs {
        nodes.add(spec)?;
    }
    for t in &twins {
        nodes.add_twin(t)?;
    }
    Ok((nodes, specs, twins))
}

fn link_spec(l: &Link, base: &Link) -> LinkSpec {
    let dur = |a: std::time::Duration, b| (a != b).then_some(Dur(a));
    let num = |a: f64, b| (a != b).then_some(a);
    LinkSpec {
        latency: dur(l.latency, base.latency),
        jitter: dur(l.jitter, base.jitter),
        distribution: (l.dist != base.dist).then(|| l.dist.name().to_owned()),
        loss: num(l.loss, base.loss),
        duplicate: num(l.duplicate, base.duplicate),
        reorder: num(l.reorder, base.reorder),
        reorder_delay: dur(l.reorder_delay, base.reorder_delay),
        rto: dur(l.rto, base.rto),
    }
}

fn links(s: &Scenario, nodes: &Nodes) -> Vec<LinkRule> {
    let mut pairs: Vec<_> = s.net.overrides.iter().collect();
    pairs.sort_by_key(|(k, _)| **k);
    pairs
        .into_iter()
        .map(|(&(a, b), l)| {
            let spec = link_spec(l, &s.net.default);
            LinkRule {
                from: Names::One(nodes.name(a)),
                to: Names::One(nodes.name(b)),
                one_way: Some(true),
                latency: spec.latency,
                jitter: spec.jitter,
                distribution: spec.distribution,
                loss: spec.loss,
                duplicate: spec.duplicate,
                reorder: spec.reorder,
                reorder_delay: spec.reorder_delay,
                rto: spec.rto,
            }
        })
        .collect()
}

fn budget(b: Option<u64>) -> Budget {
    b.map_or(Budget::Word("unchecked".into()), Budget::Count)
}

fn expect(s: &Scenario) -> Option<Expect> {
    let e = Expect {
        false_dead: (s.false_dead_budget != Some(0)).then(|| budget(s.false_dead_budget)),
        lease_losses_with_quorum: s.lease_loss_budget.map(Budget::Count),
        bully: (!s.enforce_bully).then_some(false),
        metric: Vec::new(),
    };
    let empty = e.false_dead.is_none() && e.lease_losses_with_quorum.is_none();
    (!empty || e.bully.is_some()).then_some(e)
}

/// The file of a run made of `runs` (one scenario, or a scenario and variants of it
/// that differ only in config and false-death budget), headed by `about`.
pub fn show(runs: &[Scenario], about: &str) -> Result<String, String> {
    let s = runs.first().ok_or("no scenario to show")?;
    if !s.net.cuts.is_empty() {
        return Err("a network that starts cut cannot be written".into());
    }
    if !s.node_configs.is_empty() {
        return Err("nodes with their own config cannot be written".into());
    }
    let (nodes, specs, twins) = names(s)?;
    let mut out = String::new();
    for line in about.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let root = Root {
        name: &s.name,
        seed: s.seed,
        seed_node: (s.seed_node != 0).then(|| nodes.name(s.seed_node)),
        group: s.group.as_deref(),
        settle: Dur(s.settle),
        durable_terms: s.durable_terms.then_some(true),
        term_floor: (!s.term_floor).then_some(false),
        meta_bytes: (s.meta_bytes > 0).then_some(s.meta_bytes),
    };
    out.push_str(&toml::to_string(&root).map_err(|e| e.to_string())?);
    array(&mut out, "nodes", &specs)?;
    array(&mut out, "twins", &twins)?;
    array(&mut out, "links", &links(s, &nodes))?;
    let entries = timeline::entries(&s.steps, &nodes, s.group.as_deref())?;
    array(&mut out, "timeline", &entries)?;
    let (preset, diff) = config::closest(&s.config);
    let _ = writeln!(out, "\n[config]\npreset = \"{preset}\"");
    for (k, v) in diff {
        let _ = writeln!(out, "{k} = {v}");
    }
    let net = link_spec(&s.net.default, &Link::default());
    if net != LinkSpec::default() {
        let t = toml::to_string(&net).map_err(|e| e.to_string())?;
        let _ = write!(out, "\n[network]\n{t}");
    }
    if let Some(e) = expect(s) {
        let t = toml::to_string(&e).map_err(|e| e.to_string())?;
        let _ = write!(out, "\n[expect]\n{t}");
    }
    for (k, v) in runs.iter().enumerate().skip(1) {
        variant(&mut out, s, v, k)?;
    }
    Ok(out)
}

fn variant(out: &mut String, s: &Scenario, v: &Scenario, k: usize) -> Result<(), String> {
    let same = v.steps == s.steps
        && v.nodes == s.nodes
        && v.group == s.group
        && v.twins == s.twins
        && v.seed == s.seed
        && v.net.overrides.is_empty()
        && s.net.overrides.is_empty()
        && v.net.default == s.net.default
        && v.config.election.voters.iter().map(|&x| x.0).eq(s
            .config
            .election
            .voters
            .iter()
            .map(|&x| x.0));
    if !same {
        return Err("the scenario's runs differ in more than config and budgets".into());
    }
    let diff = config::diff(&v.config, &s.config);
    let name = match diff.as_slice() {
        [("lifeguard", toml::Value::Boolean(false))] => "plain".to_owned(),
        _ => format!("v{k}"),
    };
    let _ = writeln!(out, "\n[[variant]]\nname = \"{name}\"");
    if v.false_dead_budget != s.false_dead_budget {
        let b = match v.false_dead_budget {
            Some(n) => n.to_string(),
            None => "\"unchecked\"".into(),
        };
        let _ = writeln!(out, "false_dead = {b}");
    }
    if !diff.is_empty() {
        let _ = writeln!(out, "[variant.config]");
        for (k, v) in diff {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    Ok(())
}
