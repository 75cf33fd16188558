//! `quorate node`: one node of a cluster made by `quorate init`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{Event, Identity, LeaderChange, Node, NodeConfig, NodeId};
use serde_json::{json, Map};
use tokio::signal::unix::{signal, SignalKind};

use crate::cluster::{ClusterFile, Paths};
use crate::view::{self, Reporter};

/// Arguments of `quorate node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The cluster directory written by `quorate init`.
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// This node's id (its certificate is DIR/node-ID.pem).
    #[arg(long)]
    id: u64,
    /// Listen address (default: the node's address in cluster.toml).
    #[arg(long, value_parser = crate::parse_addr)]
    listen: Option<SocketAddr>,
    /// Join through this address instead of cluster.toml's seeds (repeatable).
    #[arg(long = "seed", value_parser = crate::parse_addr)]
    seeds: Vec<SocketAddr>,
    /// Metadata to publish (text, at most the configured limit).
    #[arg(long, default_value = "")]
    meta: String,
    /// Override cluster.toml's timing preset: lan, wan or local.
    #[arg(long)]
    preset: Option<String>,
    /// One JSON object per line on stdout instead of the live view.
    #[arg(long)]
    json: bool,
    /// Also print this node's traffic counters every N seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    stats_every: u64,
    /// Run for the leadership of this group (repeatable); needs voters in cluster.toml.
    #[arg(long = "campaign", value_name = "GROUP")]
    campaigns: Vec<String>,
}

/// Runs the node until SIGINT or SIGTERM, then leaves gracefully: a leader steps down
/// and releases its voters first, so the next candidate takes over at once.
pub async fn run(a: NodeArgs) -> Result<()> {
    let file = ClusterFile::load(&a.dir)?;
    let entry = file.node(a.id)?;
    let id = NodeId(a.id);
    if !a.campaigns.is_empty() && file.voters.is_empty() {
        bail!("--campaign needs voters: cluster.toml names none (see `quorate init --voters`)");
    }
    let mut unique = BTreeSet::new();
    if let Some(dup) = a.campaigns.iter().find(|g| !unique.insert(*g)) {
        bail!("--campaign {dup:?} is given twice");
    }
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.node_cert(id), &paths.node_key(id), &paths.ca_cert())?;
    let cfg = file.config_with(a.preset.as_deref().unwrap_or(&file.preset))?;
    let mut nc = NodeConfig::new(id, a.listen.unwrap_or(entry.addr), identity);
    nc.seeds = if a.seeds.is_empty() {
        file.seeds.clone()
    } else {
        a.seeds.clone()
    };
    nc.config = cfg;
    nc.metadata = a.meta.clone().into_bytes();
    let node = Node::start(nc)
        .await
        .with_context(|| format!("cannot start node {id}"))?;
    let mut out = Output {
        id,
        json: a.json,
        reporter: Reporter::default(),
        leaders: a.campaigns.iter().map(|g| (g.clone(), None)).collect(),
    };
    out.started(&node);
    let mut events = node.events();
    let mut campaigns = Vec::new();
    for group in &a.campaigns {
        let campaign = node
            .campaign(group)
            .await
            .with_context(|| format!("cannot run for group {group:?}"))?;
        campaigns.push(campaign);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut stats_tick = tokio::time::interval(Duration::from_secs(a.stats_every.max(1)));
    stats_tick.tick().await;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    // Report what arrived together, then sum up the view once.
                    let mut reported = out.event(&ev);
                    while let Some(ev) = events.try_recv() {
                        reported |= out.event(&ev);
                    }
                    if reported {
                        out.view(&node);
                    }
                }
                None => break,
            },
            _ = stats_tick.tick(), if a.stats_every > 0 => out.stats(&node),
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    // Step down first: each resignation returns once the node stopped leading and sent
    // its releases; `leave` then resigns whatever is left and lingers while they and
    // the departure go out.
    for campaign in campaigns {
        campaign.resign().await;
    }
    while let Some(ev) = events.try_recv() {
        out.event(&ev);
    }
    out.line("leaving", Map::new());
    node.leave().await.context("graceful leave failed")?;
    while let Some(ev) = events.try_recv() {
        out.event(&ev);
    }
    out.line("stopped", Map::new());
    Ok(())
}

struct Output {
    id: NodeId,
    json: bool,
    reporter: Reporter,
    /// Groups shown in the live view (those this node runs for or saw a leader of),
    /// with their latest leader change (`None`: none seen yet).
    leaders: BTreeMap<String, Option<LeaderChange>>,
}

impl Output {
    fn line(&self, kind: &str, fields: Map<String, serde_json::Value>) {
        if self.json {
            println!("{}", view::json_line(self.id, kind, fields));
        } else {
            println!("[node {}] {}", self.id, kind.replace('_', " "));
        }
    }

    fn started(&self, node: &Node) {
        let mut f = Map::new();
        f.insert("addr".into(), json!(node.local_addr().to_string()));
        if self.json {
            println!("{}", view::json_line(self.id, "node_started", f));
        } else {
            println!(
                "[node {}] listening on {}; Ctrl-C leaves the cluster",
                self.id,
                node.local_addr()
            );
        }
    }

    /// Reports one event; false when it is not one reported (a renewal, ...).
    fn event(&mut self, ev: &Event) -> bool {
        if let Event::Leader(c) = ev {
            self.leaders.insert(c.group.clone(), Some(c.clone()));
        }
        let Some((kind, fields)) = self.reporter.describe(ev) else {
            return false;
        };
        if self.json {
            println!("{}", view::json_line(self.id, kind, fields));
        } else {
            let ts = view::clock(view::now_ms());
            println!("{ts} {}", view::human_line(kind, &fields));
        }
        true
    }

    /// The live view's summary: members by state, and each group's leader as the
    /// reported changes tell it (or `node`'s gossiped view before any change).
    fn view(&self, node: &Node) {
        if self.json {
            return;
        }
        let ts = view::clock(view::now_ms());
        println!("{ts}   {}", view::summary(&node.members()));
        if !self.leaders.is_empty() {
            let line = view::leaders(self.leaders.keys(), |g| match &self.leaders[g] {
                Some(c) => c.leader.map(|l| (l, c.term)),
                None => node.leader(g),
            });
            println!("{ts}   {line}");
        }
    }

    fn stats(&self, node: &Node) {
        let s = node.stats();
        let mut f = Map::new();
        f.insert("frames_out".into(), json!(s.frames_out));
        f.insert("bytes_out".into(), json!(s.bytes_out));
        f.insert("frames_in".into(), json!(s.frames_in));
        f.insert(
            "udp_bytes_out".into(),
            json!(node.transport_stats().udp_bytes_out),
        );
        f.insert("members".into(), json!(node.members().len()));
        self.line("stats", f);
    }
}
