//! `quorate node`: one node of a cluster made by `quorate init`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use quorate::{Identity, Node, NodeConfig, NodeId};
use serde_json::{json, Map};
use tokio::signal::unix::{signal, SignalKind};

use crate::cluster::{preset, ClusterFile, Paths};
use crate::view;

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
}

/// Runs the node until SIGINT or SIGTERM, then leaves gracefully.
pub async fn run(a: NodeArgs) -> Result<()> {
    let file = ClusterFile::load(&a.dir)?;
    let entry = file.node(a.id)?;
    let id = NodeId(a.id);
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.node_cert(id), &paths.node_key(id), &paths.ca_cert())?;
    let mut cfg = file.config()?;
    if let Some(p) = &a.preset {
        cfg = quorate::Config {
            cluster_name: cfg.cluster_name,
            ..preset(p)?
        };
    }
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
    let out = Output { id, json: a.json };
    out.started(&node);
    let mut events = node.events();
    let mut term = signal(SignalKind::terminate())?;
    let mut stats_tick = tokio::time::interval(Duration::from_secs(a.stats_every.max(1)));
    stats_tick.tick().await;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => out.event(&node, &ev),
                None => break,
            },
            _ = stats_tick.tick(), if a.stats_every > 0 => out.stats(&node),
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    out.line("leaving", Map::new());
    node.leave().await.context("graceful leave failed")?;
    out.line("stopped", Map::new());
    Ok(())
}

struct Output {
    id: NodeId,
    json: bool,
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

    fn event(&self, node: &Node, ev: &quorate::Event) {
        let Some((kind, fields)) = view::describe(ev) else {
            return;
        };
        if self.json {
            println!("{}", view::json_line(self.id, kind, fields));
        } else {
            let ts = chrono_like(view::now_ms());
            println!("{ts} {}", view::human_line(kind, &fields));
            println!("{ts}   {}", view::summary(&node.members()));
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

/// `HH:MM:SS.mmm` (UTC) for the live view.
fn chrono_like(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}
