//! `quorate status`: ask a running node for its view, over mutual TLS with the client
//! certificate that `quorate init` wrote.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use quorate::{query_status, Identity};

use crate::cluster::{ClusterFile, Paths};
use crate::view::meta_text;

/// Arguments of `quorate status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The cluster directory written by `quorate init`.
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// The node to ask (default: the first that answers, in id order).
    #[arg(long)]
    node: Option<u64>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Queries one node and prints its view.
pub async fn run(a: StatusArgs) -> Result<()> {
    let file = ClusterFile::load(&a.dir)?;
    let paths = Paths(a.dir.clone());
    let identity = Identity::load(&paths.client_cert(), &paths.client_key(), &paths.ca_cert())?;
    let targets: Vec<_> = match a.node {
        Some(id) => vec![file.node(id)?.clone()],
        None => file.nodes.clone(),
    };
    let mut last_err = anyhow!("cluster.toml lists no node");
    for t in targets {
        let q = query_status(&identity, t.addr, &file.cluster_name);
        match tokio::time::timeout(Duration::from_secs(a.timeout), q).await {
            Ok(Ok(report)) => return print(&report, a.json),
            Ok(Err(e)) => {
                last_err = anyhow::Error::new(e).context(format!("node {} at {}", t.id, t.addr))
            }
            Err(_) => {
                last_err = anyhow!(
                    "node {} at {} did not answer in {}s",
                    t.id,
                    t.addr,
                    a.timeout
                )
            }
        }
    }
    Err(last_err).context("no node answered")
}

fn print(report: &quorate::StatusReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!(
        "node {} (incarnation {}) sees {} members:",
        report.node,
        report.incarnation,
        report.members.len()
    );
    println!(
        "{:>6}  {:<22} {:<8} {:>5}  meta",
        "id", "addr", "state", "inc"
    );
    let mut members = report.members.clone();
    members.sort_by_key(|m| m.id);
    for m in members {
        println!(
            "{:>6}  {:<22} {:<8} {:>5}  {}",
            m.id,
            m.addr.to_string(),
            format!("{:?}", m.state).to_lowercase(),
            m.incarnation,
            meta_text(&m.meta)
        );
    }
    Ok(())
}
