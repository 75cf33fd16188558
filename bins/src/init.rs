//! `quorate init`: a ready-to-run cluster directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{ClusterCa, NodeId};

use crate::cluster::{preset, ClusterFile, HostPort, NodeEntry, Paths};

/// Arguments of `quorate init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Directory to write (created if missing; existing cluster files are not overwritten).
    #[arg(value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// Number of nodes (ids 1..=N).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    nodes: u64,
    /// Port of node 1; node k listens on 127.0.0.1:(P + k - 1). With --hosts, every
    /// node listens on port P of its own host.
    #[arg(long, default_value_t = 7101)]
    base_port: u16,
    /// The nodes' hosts (names or IPs), comma-separated, one per node in id order:
    /// node k listens on the k-th host at --base-port.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// One node's address, as K=HOST:PORT (repeatable); overrides --hosts and the
    /// loopback default for that node.
    #[arg(long = "addr", value_parser = parse_node_addr)]
    addrs: Vec<(u64, HostPort)>,
    /// Voter ids, comma-separated (default: the first three nodes, or all if fewer).
    #[arg(long, value_delimiter = ',')]
    voters: Vec<u64>,
    /// Cluster name.
    #[arg(long, default_value = "quorate")]
    name: String,
    /// Timing preset: lan, wan, local or edge (metered links).
    #[arg(long, default_value = "lan")]
    preset: String,
    /// Overwrite an existing cluster directory.
    #[arg(long)]
    force: bool,
    /// Days the certificates are valid (from an hour ago, for clocks a little behind).
    /// Renew before they end (`quorate cert renew`); a node warns 30 days ahead.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
}

impl InitArgs {
    /// The arguments of `quorate init ARGS...`, with the command's defaults and checks
    /// (for front ends other than the `quorate` command, such as the Python package).
    pub fn parse<I, T>(args: I) -> Result<InitArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        #[command(name = "init")]
        struct Init {
            #[command(flatten)]
            args: InitArgs,
        }
        let init = <Init as clap::Parser>::try_parse_from(
            std::iter::once(std::ffi::OsString::from("init"))
                .chain(args.into_iter().map(Into::into)),
        )?;
        Ok(init.args)
    }
}

/// Writes the CA (its key apart, in `DIR/ca/`), the node and client certificates,
/// `cluster.toml`, and one bundle per node (`DIR/nodes/K/`: what host K needs).
pub fn run(a: InitArgs) -> Result<()> {
    let file = write(&a)?;
    let ca_dir = Paths(a.dir.clone()).ca_key();
    let ca_dir = ca_dir.parent().unwrap_or(&a.dir);
    println!(
        "wrote cluster {:?} with {} nodes to {}",
        a.name,
        file.nodes.len(),
        a.dir.display()
    );
    println!(
        "host K needs only {}/nodes/K/ (the CA key stays in {})",
        a.dir.display(),
        ca_dir.display()
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

/// What `quorate init` writes, without printing: the CA (its key apart, in `DIR/ca/`),
/// the node and client certificates, `cluster.toml` and the bundles. Returns the
/// cluster file written.
pub fn write(a: &InitArgs) -> Result<ClusterFile> {
    let file = plan(a)?;
    let paths = Paths(a.dir.clone());
    if paths.0.join("cluster.toml").exists() && !a.force {
        bail!(
            "{} already holds a cluster (use --force to overwrite)",
            paths.0.display()
        );
    }
    let ca_dir = paths
        .ca_key()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    std::fs::create_dir_all(&ca_dir)
        .with_context(|| format!("cannot create {}", ca_dir.display()))?;
    let ca = ClusterCa::generate(&a.name)?.with_validity(crate::cert::days(a.days));
    ca.save(&ca_dir.join("ca.pem"), &paths.ca_key())?;
    ca.save_cert(&paths.ca_cert())?;
    file.save(&a.dir)?;
    for n in &file.nodes {
        crate::cert::write_node(&paths, &ca, NodeId(n.id), &file)?;
    }
    ca.issue_client("admin")?
        .save(&paths.client_cert(), &paths.client_key())?;
    Ok(file)
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
    let nodes = addresses(a)?;
    let file = ClusterFile {
        cluster_name: a.name.clone(),
        preset: a.preset.clone(),
        seeds: nodes.iter().take(3).map(|n| n.addr.clone()).collect(),
        voters,
        nodes,
    };
    preset(&a.preset)?;
    file.config()?;
    Ok(file)
}

/// Every node's address: `--addr K=…` first, then the K-th of `--hosts` at the base
/// port, else loopback at base port + K - 1.
fn addresses(a: &InitArgs) -> Result<Vec<NodeEntry>> {
    if !a.hosts.is_empty() && a.hosts.len() as u64 != a.nodes {
        bail!(
            "--hosts names {} hosts for {} nodes (one per node)",
            a.hosts.len(),
            a.nodes
        );
    }
    if let Some((k, _)) = a.addrs.iter().find(|(k, _)| *k == 0 || *k > a.nodes) {
        bail!("--addr {k}=…: {k} is not a node id (1..={})", a.nodes);
    }
    (1..=a.nodes)
        .map(|id| {
            let given = a.addrs.iter().rev().find(|(k, _)| *k == id);
            let addr = match (given, a.hosts.get(id as usize - 1)) {
                (Some((_, addr)), _) => addr.clone(),
                (None, Some(host)) => format!("{host}:{}", a.base_port)
                    .parse()
                    .map_err(anyhow::Error::msg)?,
                (None, None) => {
                    let port = (u64::from(a.base_port) + id - 1) as u16;
                    std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()
                }
            };
            Ok(NodeEntry { id, addr })
        })
        .collect()
}

/// `--addr` values: `K=HOST:PORT`.
fn parse_node_addr(s: &str) -> Result<(u64, HostPort), String> {
    let (k, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not K=HOST:PORT"))?;
    let k = k.parse().map_err(|_| format!("{k:?} is not a node id"))?;
    Ok((k, addr.parse()?))
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
            hosts: Vec::new(),
            addrs: Vec::new(),
            name: "quorate".into(),
            preset: "lan".into(),
            force: false,
            days: 365,
        }
    }

    #[test]
    fn plan_assigns_ports_seeds_and_voters() {
        let f = plan(&args(5, 7101, vec![])).unwrap();
        assert_eq!(f.nodes[4].addr.to_string(), "127.0.0.1:7105");
        assert_eq!(f.seeds.len(), 3);
        assert_eq!(f.voters, vec![1, 2, 3]);
        assert_eq!(plan(&args(2, 7101, vec![])).unwrap().voters, vec![1, 2]);
    }

    #[test]
    fn hosts_and_addresses_name_each_node() {
        let mut a = args(3, 7101, vec![]);
        a.hosts = vec!["edge-1".into(), "edge-2".into(), "10.0.0.3".into()];
        a.addrs = vec![parse_node_addr("2=edge-2.plant.lan:7200").unwrap()];
        let f = plan(&a).unwrap();
        let addrs: Vec<String> = f.nodes.iter().map(|n| n.addr.to_string()).collect();
        assert_eq!(
            addrs,
            ["edge-1:7101", "edge-2.plant.lan:7200", "10.0.0.3:7101"]
        );
        a.hosts.pop();
        assert!(plan(&a)
            .unwrap_err()
            .to_string()
            .contains("2 hosts for 3 nodes"));
        assert!(parse_node_addr("x=h:1").is_err() && parse_node_addr("1=h").is_err());
    }

    #[test]
    fn parse_takes_the_command_line_with_its_defaults() {
        let a = InitArgs::parse(["d", "--nodes", "3", "--voters", "1,2"]).unwrap();
        assert_eq!(
            (a.nodes, a.base_port, a.voters.as_slice()),
            (3, 7101, &[1, 2][..])
        );
        assert_eq!((a.preset.as_str(), a.name.as_str()), ("lan", "quorate"));
        assert!(InitArgs::parse(["d", "--nodes", "0"]).is_err());
        assert!(
            InitArgs::parse(["--nodes", "3"]).is_err(),
            "DIR is required"
        );
    }

    #[test]
    fn plan_refuses_bad_input() {
        assert!(plan(&args(5, 65534, vec![])).is_err());
        let e = plan(&args(5, 7101, vec![1, 9])).unwrap_err().to_string();
        assert!(e.contains("voter 9"), "{e}");
    }
}
