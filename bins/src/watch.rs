//! `quorate watch`: a running node's events as they happen, asked over the status
//! protocol with the client certificate (as `quorate status` does). With `--json`,
//! exactly the lines `quorate node --json` prints for the same events (group changes
//! named as the Python package names them), else the human lines; `--group G` keeps
//! group G's events only (its changes, leaders and leaderships).
//!
//! The node never waits for a watcher: one that falls behind (a slow stdout) loses the
//! oldest events and says so with a `lagged` line (`"lost"`: how many), then goes on.

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result};
use clap::Args;
use quorate::groups::check_name;
use quorate::{watch_events, Event, Identity, NodeId, Watched, WatchedEvent};
use serde_json::{json, Map, Value};

use crate::cluster::{ClusterFile, HostPort, NodeEntry, Paths};
use crate::status::first_answer;
use crate::view::{self, Reporter};

/// Arguments of `quorate watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The cluster directory written by `quorate init` (for cluster.toml and the
    /// client certificate).
    #[arg(long, value_parser = crate::parse_dir, default_value = ".")]
    dir: PathBuf,
    /// The node to watch: its id in cluster.toml, or an address HOST:PORT (default: the
    /// first that answers, in id order).
    #[arg(long)]
    node: Option<NodeRef>,
    /// Only group G's events: its changes, its leader changes, the node's leaderships
    /// of it.
    #[arg(long, value_name = "G", value_parser = parse_group)]
    group: Option<String>,
    /// One JSON object per line, as `quorate node --json` prints them.
    #[arg(long)]
    json: bool,
    /// Also print `leadership_renewed` at every renewal of the node's leaderships.
    #[arg(long)]
    renewals: bool,
    /// Seconds to wait for a node to accept the watch.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// `--node`: a node id of cluster.toml, or an address.
#[derive(Debug, Clone)]
pub enum NodeRef {
    /// A node id.
    Id(u64),
    /// An address (an IP or a host name, with the port).
    Addr(HostPort),
}

impl FromStr for NodeRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(id) = s.parse() {
            return Ok(NodeRef::Id(id));
        }
        s.parse()
            .map(NodeRef::Addr)
            .map_err(|_| format!("{s:?} is neither a node id nor an address like 127.0.0.1:7101"))
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Id(id) => write!(f, "{id}"),
            NodeRef::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// `--group` values: a valid group name.
fn parse_group(s: &str) -> Result<String, String> {
    check_name(s).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(s.to_owned())
}

/// The nodes `node` names in `file` (all of them, in id order, when `None`).
pub fn node_targets(file: &ClusterFile, node: Option<&NodeRef>) -> Result<Vec<NodeEntry>> {
    Ok(match node {
        None => file.nodes.clone(),
        Some(NodeRef::Id(id)) => vec![file.node(*id)?.clone()],
        Some(NodeRef::Addr(addr)) => vec![NodeEntry {
            id: 0,
            addr: addr.clone(),
        }],
    })
}

/// Prints the node's events until it ends the watch, or stdout is closed.
pub async fn run(a: WatchArgs) -> Result<()> {
    let file = ClusterFile::load(&a.dir)?;
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.client_cert(), &paths.client_key(), &paths.ca_cert())?;
    let targets = node_targets(&file, a.node.as_ref())?;
    let (cluster, group) = (&file.cluster_name, a.group.as_deref());
    let (_, mut watch) = first_answer(targets, a.timeout, |addr| {
        watch_events(&identity, addr, cluster, group)
    })
    .await
    .context("cannot watch: no node accepted")?;
    let node = watch.node();
    eprintln!("watching node {node}");
    let mut out = Lines {
        node,
        json: a.json,
        reporter: Reporter::new(a.renewals),
    };
    loop {
        let item = watch
            .next()
            .await
            .with_context(|| format!("lost the watch of node {node}"))?;
        let line = match item {
            Some(Watched::Event(e)) => out.event(&e),
            Some(Watched::Lagged(n)) => Some(out.lagged(n)),
            Some(_) => None,
            None => {
                eprintln!("node {node} ended the watch (it stopped or left)");
                return Ok(());
            }
        };
        if let Some(line) = line {
            if !emit(&line)? {
                return Ok(());
            }
        }
    }
}

/// Writes one line to stdout; false once the reader went away (`| head`), which ends
/// the watch quietly.
fn emit(line: &str) -> Result<bool> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Turns watched events into lines, as `quorate node` does.
struct Lines {
    node: NodeId,
    json: bool,
    reporter: Reporter,
}

impl Lines {
    /// The line of one event; `None` for events not reported (renewals by default).
    fn event(&mut self, e: &WatchedEvent) -> Option<String> {
        let (kind, mut fields) = match &e.event {
            Event::Group(g) => view::describe_group(g),
            other => self.reporter.describe(other)?,
        };
        if let (Some(until), Some(v)) = (e.lease_until_ms, fields.get_mut("lease_until_ms")) {
            // The node's own reading, not one converted through this process's clock.
            *v = json!(until);
        }
        Some(self.line(e.at_ms, kind, fields))
    }

    /// The line saying that `n` events were lost.
    fn lagged(&self, n: u64) -> String {
        let mut f = Map::new();
        f.insert("lost".into(), json!(n));
        self.line(view::now_ms(), "lagged", f)
    }

    fn line(&self, at_ms: u64, kind: &str, fields: Map<String, Value>) -> String {
        match self.json {
            true => view::json_line_at(at_ms, self.node, kind, fields),
            false => format!(
                "{} [node {}] {}",
                view::clock(at_ms),
                self.node,
                view::human_line(kind, &fields)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_an_id_or_an_address() {
        assert!(matches!("3".parse::<NodeRef>(), Ok(NodeRef::Id(3))));
        assert!(matches!(
            "127.0.0.1:7101".parse::<NodeRef>(),
            Ok(NodeRef::Addr(_))
        ));
        let e = "nowhere".parse::<NodeRef>().unwrap_err();
        assert!(e.contains("neither a node id nor an address"), "{e}");
        assert!(parse_group("").is_err());
    }

    #[test]
    fn group_events_print_as_the_python_package_names_them() {
        let mut lines = Lines {
            node: NodeId(2),
            json: true,
            reporter: Reporter::default(),
        };
        let e = quorate::GroupEvent::Created { group: "g".into() };
        let watched = WatchedEvent::new(1_795_000_000_000, Event::Group(e), None);
        let v: Value = serde_json::from_str(&lines.event(&watched).unwrap()).unwrap();
        assert_eq!(
            (&v["event"], &v["group"], &v["node"], &v["ts_ms"]),
            (
                &json!("group_created"),
                &json!("g"),
                &json!(2),
                &json!(1_795_000_000_000u64)
            )
        );
        let v: Value = serde_json::from_str(&lines.lagged(7)).unwrap();
        assert_eq!((&v["event"], &v["lost"]), (&json!("lagged"), &json!(7)));
    }
}
