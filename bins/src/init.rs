//! `quorate init`: a ready-to-run cluster directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{ClusterCa, NodeId};

use crate::cluster::{preset, ClusterFile, NodeEntry, Paths};

/// Arguments of `quorate init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Directory to write (created if missing; existing cluster files are not overwritten).
    #[arg(value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// Number of nodes (ids 1..=N).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    nodes: u64,
    /// Port of node 1; node k listens on 127.0.0.1:(P + k - 1).
    #[arg(long, default_value_t = 7101)]
    base_port: u16,
    /// Voter ids, comma-separated (default: the first three nodes, or all if fewer).
    #[arg(long, value_delimiter = ',')]
    voters: Vec<u64>,
    /// Cluster name.
    #[arg(long, default_value = "quorate")]
    name: String,
    /// Timing preset: lan, wan or local.
    #[arg(long, default_value = "lan")]
    preset: String,
    /// Overwrite an existing cluster directory.
    #[arg(long)]
    force: bool,
}

/// Writes the CA, the node and client certificates and `cluster.toml`.
pub fn run(a: InitArgs) -> Result<()> {
    let file = plan(&a)?;
    let paths = Paths(a.dir.clone());
    if paths.0.join("cluster.toml").exists() && !a.force {
        bail!(
            "{} already holds a cluster (use --force to overwrite)",
            paths.0.display()
        );
    }
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let ca = ClusterCa::generate(&a.name)?;
    ca.save(&paths.ca_cert(), &paths.ca_key())?;
    for n in &file.nodes {
        let id = NodeId(n.id);
        ca.issue_node(id)?
            .save(&paths.node_cert(id), &paths.node_key(id))?;
    }
    ca.issue_client("admin")?
        .save(&paths.client_cert(), &paths.client_key())?;
    file.save(&a.dir)?;
    println!(
        "wrote cluster {:?} with {} nodes to {}",
        a.name,
        file.nodes.len(),
        a.dir.display()
    );
    println!("start each node in its own terminal:");
    for n in file.nodes.iter().take(3) {
        println!("  quorate node --dir {} --id {}", a.dir.display(), n.id);
    }
    if file.nodes.len() > 3 {
        println!("  ... up to --id {}", file.nodes.len());
    }
    Ok(())
}

/// The cluster file `init` would write (checked, nothing written).
fn plan(a: &InitArgs) -> Result<ClusterFile> {
    let last = u64::from(a.base_port) + a.nodes - 1;
    if a.base_port == 0 || last > u64::from(u16::MAX) {
        bail!(
            "--base-port {} with {} nodes needs ports up to {last}, beyond 65535",
            a.base_port,
            a.nodes
        );
    }
    let voters = if a.voters.is_empty() {
        (1..=a.nodes.min(3)).collect()
    } else {
        a.voters.clone()
    };
    if let Some(v) = voters.iter().find(|v| **v == 0 || **v > a.nodes) {
        bail!("voter {v} is not a node id (1..={})", a.nodes);
    }
    let nodes: Vec<NodeEntry> = (1..=a.nodes)
        .map(|id| NodeEntry {
            id,
            addr: ([127, 0, 0, 1], (u64::from(a.base_port) + id - 1) as u16).into(),
        })
        .collect();
    let file = ClusterFile {
        cluster_name: a.name.clone(),
        preset: a.preset.clone(),
        seeds: nodes.iter().take(3).map(|n| n.addr).collect(),
        voters,
        nodes,
    };
    preset(&a.preset)?;
    file.config()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nodes: u64, base_port: u16, voters: Vec<u64>) -> InitArgs {
        InitArgs {
            dir: "x".into(),
            nodes,
            base_port,
            voters,
            name: "quorate".into(),
            preset: "lan".into(),
            force: false,
        }
    }

    #[test]
    fn plan_assigns_ports_seeds_and_voters() {
        let f = plan(&args(5, 7101, vec![])).unwrap();
        assert_eq!(f.nodes[4].addr, "127.0.0.1:7105".parse().unwrap());
        assert_eq!(f.seeds.len(), 3);
        assert_eq!(f.voters, vec![1, 2, 3]);
        assert_eq!(plan(&args(2, 7101, vec![])).unwrap().voters, vec![1, 2]);
    }

    #[test]
    fn plan_refuses_bad_input() {
        assert!(plan(&args(5, 65534, vec![])).is_err());
        let e = plan(&args(5, 7101, vec![1, 9])).unwrap_err().to_string();
        assert!(e.contains("voter 9"), "{e}");
    }
}
