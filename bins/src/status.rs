//! `quorate status`, `leader`, `groups` and `members`: ask a running node for its
//! view, over mutual TLS with the client certificate that `quorate init` wrote. Every
//! command prints text, or one JSON object with `--json`; metadata and capabilities
//! are text when they are UTF-8, hex otherwise; member states are named alive,
//! suspect, failed and left everywhere.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use quorate::{query_confirmed_leader, query_status, GroupStatus, Identity, StatusReport};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{ClusterFile, NodeEntry, Paths};
use crate::view::{meta_text, state_name};

/// Which node to ask, and how.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The cluster directory written by `quorate init`.
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// The node to ask (default: the first that answers, in id order).
    #[arg(long)]
    node: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Arguments of `quorate leader` and `quorate members`.
#[derive(Args, Debug)]
pub struct GroupArgs {
    /// The group.
    group: String,
    /// (`leader` only) Ask a quorum of voters through the node, not its gossiped view:
    /// slower, and fails when no quorum answers.
    #[arg(long)]
    confirmed: bool,
    #[command(flatten)]
    query: QueryArgs,
}

/// `quorate status`: the node's whole view.
pub async fn status(a: QueryArgs) -> Result<()> {
    let report = ask(&a).await?;
    let mut o = String::new();
    match a.json {
        true => writeln!(o, "{}", report_json(&report))?,
        false => print_status(&mut o, &report)?,
    }
    out(&o)
}

/// `quorate groups`: every group with its leader, members and candidates.
pub async fn groups(a: QueryArgs) -> Result<()> {
    let report = ask(&a).await?;
    let mut o = String::new();
    if a.json {
        let groups: Vec<Value> = report.groups.iter().map(group_json).collect();
        writeln!(o, "{}", json!({ "node": report.node.0, "groups": groups }))?;
        return out(&o);
    }
    if report.groups.is_empty() {
        writeln!(o, "node {} knows no group", report.node)?;
    }
    for g in &report.groups {
        writeln!(o, "{}", group_line(g))?;
    }
    out(&o)
}

/// `quorate leader GROUP`: the group's gossiped leader and term.
pub async fn leader(a: GroupArgs) -> Result<()> {
    let (node, found) = match a.confirmed {
        true => confirmed(&a).await?,
        false => {
            let report = ask(&a.query).await?;
            (report.node.0, find_group(&report, &a.group)?.leader)
        }
    };
    let mut o = String::new();
    if a.query.json {
        let (leader, term) = found.map_or((None, None), |(l, t)| (Some(l.0), Some(t)));
        let v = json!({
            "node": node,
            "group": a.group,
            "leader": leader,
            "term": term,
            "confirmed": a.confirmed,
        });
        writeln!(o, "{v}")?;
        return out(&o);
    }
    match found {
        Some((l, t)) => writeln!(o, "{l} (term {t})")?,
        None => writeln!(o, "none")?,
    }
    out(&o)
}

/// `quorate members GROUP`: the group's members and their capabilities.
pub async fn members(a: GroupArgs) -> Result<()> {
    let report = ask(&a.query).await?;
    let mut o = String::new();
    let g = find_group(&report, &a.group)?;
    if a.query.json {
        writeln!(o, "{}", group_json(g))?;
        return out(&o);
    }
    for m in &g.members {
        writeln!(o, "{:>6}  {}", m.id.0, meta_text(&m.capabilities))?;
    }
    out(&o)
}

/// Arguments of `quorate revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The revocation list (`quorate cert revoke` writes DIR/revoked.crl).
    #[arg(value_parser = crate::parse_dir)]
    file: PathBuf,
    #[command(flatten)]
    query: QueryArgs,
}

/// `quorate revoke FILE`: gives a running node the revocation list; it puts it in
/// force and sends it to every member.
pub async fn revoke(a: RevokeArgs) -> Result<()> {
    let list =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let (file, identity, targets) = targets(&a.query)?;
    let cluster = &file.cluster_name;
    let (node, applied) = first_answer(targets, a.query.timeout, |addr| {
        quorate::send_revocation(&identity, addr, cluster, list.clone())
    })
    .await
    .context("no node took the revocation list")?;
    let mut o = String::new();
    if a.query.json {
        let v = serde_json::json!({"node": node, "number": applied.number, "fresh": applied.fresh});
        writeln!(o, "{v}")?;
    } else if applied.fresh {
        writeln!(
            o,
            "node {node} applied revocation list {} and sends it to every member",
            applied.number
        )?;
    } else {
        writeln!(
            o,
            "node {node} holds revocation list {} already (as new or newer)",
            applied.number
        )?;
    }
    out(&o)
}

/// The cluster file, the client identity, and the nodes to ask in order.
fn targets(a: &QueryArgs) -> Result<(ClusterFile, Identity, Vec<NodeEntry>)> {
    let file = ClusterFile::load(&a.dir)?;
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.client_cert(), &paths.client_key(), &paths.ca_cert())?;
    let targets = match a.node {
        Some(id) => vec![file.node(id)?.clone()],
        None => file.nodes.clone(),
    };
    Ok((file, identity, targets))
}

/// Runs `query` against each of `targets` in turn (each within `timeout` seconds)
/// and returns the first answer with the id of the node that gave it; the last
/// failure when none answers.
pub(crate) async fn first_answer<T, Fut>(
    targets: Vec<NodeEntry>,
    timeout: u64,
    query: impl Fn(std::net::SocketAddr) -> Fut,
) -> Result<(u64, T)>
where
    Fut: std::future::Future<Output = Result<T, quorate::StatusError>>,
{
    let mut last_err = anyhow!("cluster.toml lists no node");
    for t in targets {
        let addr = match t.addr.resolve() {
            Ok(addr) => addr,
            Err(e) => {
                last_err = e.context(format!("node {}", t.id));
                continue;
            }
        };
        match tokio::time::timeout(Duration::from_secs(timeout), query(addr)).await {
            Ok(Ok(answer)) => return Ok((t.id, answer)),
            Ok(Err(e)) => {
                last_err = anyhow::Error::new(e).context(format!("node {} at {}", t.id, addr))
            }
            Err(_) => last_err = anyhow!("node {} at {addr} did not answer in {timeout}s", t.id),
        }
    }
    Err(last_err)
}

/// Asks the chosen node (or the first that answers) to have the voters confirm who
/// leads the group: (the node asked, the confirmed leader and term).
async fn confirmed(a: &GroupArgs) -> Result<(u64, quorate::Confirmed)> {
    let (file, identity, targets) = targets(&a.query)?;
    let (cluster, group) = (&file.cluster_name, &a.group);
    first_answer(targets, a.query.timeout, |addr| {
        query_confirmed_leader(&identity, addr, cluster, group)
    })
    .await
    .context("no node confirmed a leader")
}

/// Queries the chosen node, or the first that answers in id order.
async fn ask(a: &QueryArgs) -> Result<StatusReport> {
    let (file, identity, targets) = targets(a)?;
    let cluster = &file.cluster_name;
    let (_, report) = first_answer(targets, a.timeout, |addr| {
        query_status(&identity, addr, cluster)
    })
    .await
    .context("no node answered")?;
    Ok(report)
}

fn find_group<'a>(report: &'a StatusReport, name: &str) -> Result<&'a GroupStatus> {
    match report.groups.iter().find(|g| g.name == name) {
        Some(g) => Ok(g),
        None => bail!("node {} knows no group {name:?}", report.node),
    }
}

/// The report as JSON: states by name, metadata and capabilities as text (or hex).
fn report_json(r: &StatusReport) -> Value {
    let members: Vec<Value> = r
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id.0,
                "addr": m.addr.to_string(),
                "state": state_name(m.state),
                "incarnation": m.incarnation,
                "meta": meta_text(&m.meta),
            })
        })
        .collect();
    let groups: Vec<Value> = r.groups.iter().map(group_json).collect();
    json!({
        "cluster": r.cluster,
        "node": r.node.0,
        "addr": r.addr.to_string(),
        "incarnation": r.incarnation,
        "members": members,
        "groups": groups,
        "voters": r.voters.iter().map(|v| v.0).collect::<Vec<_>>(),
        "voters_alive": r.voters_alive,
        "quorum": r.quorum,
    })
}

fn group_json(g: &GroupStatus) -> Value {
    let members: Vec<Value> = g
        .members
        .iter()
        .map(|m| json!({ "id": m.id.0, "capabilities": meta_text(&m.capabilities) }))
        .collect();
    let (leader, term) = g.leader.map_or((None, None), |(l, t)| (Some(l.0), Some(t)));
    json!({
        "name": g.name,
        "leader": leader,
        "term": term,
        "members": members,
        "candidates": g.candidates.iter().map(|c| c.0).collect::<Vec<_>>(),
    })
}

fn ids(ids: impl Iterator<Item = u64>) -> String {
    let v: Vec<String> = ids.map(|i| i.to_string()).collect();
    match v.is_empty() {
        true => "none".into(),
        false => v.join(","),
    }
}

fn group_line(g: &GroupStatus) -> String {
    let leader = g.leader.map_or("no leader".to_owned(), |(l, t)| {
        format!("leader {l} (term {t})")
    });
    format!(
        "{}: {leader}; members {}; candidates {}",
        g.name,
        ids(g.members.iter().map(|m| m.id.0)),
        ids(g.candidates.iter().map(|c| c.0)),
    )
}

fn print_status(o: &mut String, report: &StatusReport) -> std::fmt::Result {
    writeln!(
        o,
        "node {} (incarnation {}) sees {} members:",
        report.node,
        report.incarnation,
        report.members.len()
    )?;
    writeln!(
        o,
        "{:>6}  {:<22} {:<8} {:>5}  meta",
        "id", "addr", "state", "inc"
    )?;
    for m in &report.members {
        writeln!(
            o,
            "{:>6}  {:<22} {:<8} {:>5}  {}",
            m.id.0,
            m.addr.to_string(),
            state_name(m.state),
            m.incarnation,
            meta_text(&m.meta)
        )?;
    }
    if report.voters.is_empty() {
        writeln!(o, "elections off (no voters)")?;
    } else {
        let quorum = match report.quorum {
            true => "a quorum",
            false => "no quorum",
        };
        writeln!(
            o,
            "voters {}: {} of {} alive here, {quorum}",
            ids(report.voters.iter().map(|v| v.0)),
            report.voters_alive,
            report.voters.len()
        )?;
    }
    for g in &report.groups {
        writeln!(o, "group {}", group_line(g))?;
    }
    Ok(())
}

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error: the
/// query changed nothing, and nothing is left to say.
fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}
