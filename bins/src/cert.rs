//! `quorate cert issue` and `quorate cert renew`: certificates for a cluster that
//! exists, signed with the CA key kept in `DIR/ca/`. Issuing adds a node (its bundle,
//! and its line in `DIR/cluster.toml`) without touching any other node's files;
//! renewing gives a node a new key and certificate, in `DIR` and in its bundle.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use quorate::{ClusterCa, Identity, NodeId, Revocation};

use crate::cluster::{ClusterFile, HostPort, NodeEntry, Paths};

/// `quorate cert …`.
#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Add node K to an existing cluster: its certificate, its bundle
    /// (DIR/nodes/K/) and its line in DIR/cluster.toml.
    Issue(IssueArgs),
    /// Give node K a new key and certificate (in DIR and in its bundle).
    Renew(RenewArgs),
    /// Revoke node K's certificate: a new revocation list, signed by the CA, in
    /// DIR/revoked.crl (give it to any member: `quorate revoke`, or copy it into a
    /// bundle and send that node SIGHUP). The node must get a new certificate
    /// (`cert renew`) to come back.
    Revoke(RevokeArgs),
}

/// Arguments of `quorate cert revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The cluster directory written by `quorate init` (with the CA key in DIR/ca/).
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// The node whose current certificate (DIR/node-K.pem) is revoked.
    #[arg(long)]
    id: u64,
}

/// Arguments of `quorate cert issue`.
#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The cluster directory written by `quorate init` (with the CA key in DIR/ca/).
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// The new node's id.
    #[arg(long)]
    id: u64,
    /// Its host (a name or an IP): it listens there at --port, or at the port every
    /// node of cluster.toml listens at.
    #[arg(long, required_unless_present = "addr", conflicts_with = "addr")]
    host: Option<String>,
    /// With --host: the port [default: the one every node of cluster.toml shares].
    #[arg(long, requires = "host")]
    port: Option<u16>,
    /// Its whole address instead, HOST:PORT (an IP or a host name).
    #[arg(long)]
    addr: Option<HostPort>,
    /// Days the certificates are valid (from an hour ago, for clocks a little behind).
    /// Renew before they end (`quorate cert renew`); a node warns 30 days ahead.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
}

/// Arguments of `quorate cert renew`.
#[derive(Args, Debug)]
pub struct RenewArgs {
    /// The cluster directory written by `quorate init` (with the CA key in DIR/ca/).
    #[arg(long, value_parser = crate::parse_dir)]
    dir: PathBuf,
    /// The node whose certificate is renewed.
    #[arg(long)]
    id: u64,
    /// Days the certificates are valid (from an hour ago, for clocks a little behind).
    /// Renew before they end (`quorate cert renew`); a node warns 30 days ahead.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
}

/// Runs a `quorate cert` command.
pub fn run(cmd: CertCmd) -> Result<()> {
    match cmd {
        CertCmd::Issue(a) => issue(a),
        CertCmd::Renew(a) => renew(a),
        CertCmd::Revoke(a) => revoke(a),
    }
}

/// `n` days.
pub fn days(n: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(n) * 24 * 3600)
}

fn load_ca(paths: &Paths) -> Result<ClusterCa> {
    let key = paths.ca_key();
    let cert = key.with_file_name("ca.pem");
    ClusterCa::load(&cert, &key).with_context(|| {
        format!(
            "cannot load the cluster CA from {} (the CA key stays on the machine that ran \
             `quorate init`)",
            key.display()
        )
    })
}

fn issue(a: IssueArgs) -> Result<()> {
    let paths = Paths(a.dir.clone());
    let mut file = ClusterFile::load(&a.dir)?;
    if a.id == 0 {
        bail!("node ids start at 1");
    }
    if file.node(a.id).is_ok() {
        bail!(
            "node {} is already in cluster.toml (renew it instead)",
            a.id
        );
    }
    let addr = new_address(&a, &file)?;
    if let Some(n) = file.nodes.iter().find(|n| n.addr == addr) {
        bail!("address {addr} is node {}'s already", n.id);
    }
    let ca = load_ca(&paths)?.with_validity(days(a.days));
    file.nodes.push(NodeEntry {
        id: a.id,
        addr: addr.clone(),
    });
    file.config()?;
    let id = NodeId(a.id);
    write_node(&paths, &ca, id, &file)?;
    file.save(&a.dir)?;
    println!(
        "node {id} at {addr}: copy {} to its host; the other nodes need no change",
        paths.bundle(id).display()
    );
    Ok(())
}

/// The new node's address: `--addr`, or `--host` at `--port` or the nodes' port.
fn new_address(a: &IssueArgs, file: &ClusterFile) -> Result<HostPort> {
    let (host, addr) = (a.host.as_deref(), a.addr.clone());
    let Some(host) = host else {
        return addr.context("--host or --addr is needed");
    };
    let port = match a.port {
        Some(p) => p,
        None => {
            let ports: std::collections::BTreeSet<Option<u16>> =
                file.nodes.iter().map(|n| n.addr.port()).collect();
            match ports.into_iter().collect::<Vec<_>>()[..] {
                [Some(p)] => p,
                _ => bail!(
                    "the nodes of cluster.toml listen at different ports: say which with \
                     --port, or give --addr HOST:PORT"
                ),
            }
        }
    };
    HostPort::new(host, port).map_err(|e| anyhow::anyhow!("--host {host:?}: {e}"))
}

fn renew(a: RenewArgs) -> Result<()> {
    let paths = Paths(a.dir.clone());
    let file = ClusterFile::load(&a.dir)?;
    file.node(a.id)?;
    let ca = load_ca(&paths)?.with_validity(days(a.days));
    let id = NodeId(a.id);
    write_node(&paths, &ca, id, &file)?;
    println!(
        "node {id}: new key and certificate (valid {} days) in {} and {}; send the node \
         SIGHUP (systemctl reload quorate@{id}) to use it without a restart",
        a.days,
        paths.node_cert(id).display(),
        paths.bundle(id).display()
    );
    Ok(())
}

/// Adds node K's certificate to the cluster's revocation list (all revoked so far,
/// numbered one higher than the last), signed with the CA key.
fn revoke(a: RevokeArgs) -> Result<()> {
    let paths = Paths(a.dir.clone());
    let file = ClusterFile::load(&a.dir)?;
    file.node(a.id)?;
    let ca = load_ca(&paths)?;
    let id = NodeId(a.id);
    let cert = paths.node_cert(id);
    let node = Identity::load(&cert, &paths.node_key(id), &paths.ca_cert())
        .with_context(|| format!("cannot read node {id}'s certificate"))?;
    let list_path = paths.revocation();
    let (mut serials, number) = match std::fs::read(&list_path) {
        Ok(bytes) => {
            let old = Revocation::parse(&bytes, &node).with_context(|| {
                format!("{} is not this CA's revocation list", list_path.display())
            })?;
            (old.serials().to_vec(), old.number())
        }
        Err(_) => (Vec::new(), 0),
    };
    let serial = node.serial();
    if serials.contains(&serial) {
        bail!(
            "node {id}'s certificate is revoked already ({})",
            list_path.display()
        );
    }
    serials.push(serial);
    let list = ca.revoke(&serials, number + 1)?;
    std::fs::write(&list_path, list.to_pem())
        .with_context(|| format!("cannot write {}", list_path.display()))?;
    println!(
        "revocation list {} ({} certificates) in {}: give it to any member \
         (quorate revoke --dir DIR {}) and it spreads to all",
        list.number(),
        serials.len(),
        list_path.display(),
        list_path.display()
    );
    Ok(())
}

/// Issues node `id` a certificate and writes it to `DIR` and to its bundle, with the
/// CA certificate and `file`.
pub fn write_node(paths: &Paths, ca: &ClusterCa, id: NodeId, file: &ClusterFile) -> Result<()> {
    let node = ca.issue_node(id)?;
    node.save(&paths.node_cert(id), &paths.node_key(id))?;
    let bundle = Paths(paths.bundle(id));
    std::fs::create_dir_all(&bundle.0)
        .with_context(|| format!("cannot create {}", bundle.0.display()))?;
    node.save(&bundle.node_cert(id), &bundle.node_key(id))?;
    ca.save_cert(&bundle.ca_cert())?;
    file.save(&bundle.0)
}
