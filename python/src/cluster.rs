//! Node configurations from a cluster directory (`quorate init`'s) or from explicit
//! parameters, and `init_cluster`, the library form of `quorate init`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use quorate::{ClusterCa, Identity, NodeConfig, NodeId};
use quorate_cli::cluster::{preset, ClusterFile, HostPort, Paths};
use quorate_cli::init::InitArgs;

use crate::errors::QuorateError;

/// What a caller may set on top of a cluster directory or explicit parameters.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    /// Listen address (an IP or a host name, with the port).
    pub listen: Option<String>,
    /// Address peers reach the node at.
    pub advertise: Option<String>,
    /// Seeds instead of the cluster file's.
    pub seeds: Option<Vec<String>>,
    /// Timing preset instead of the cluster file's.
    pub preset: Option<String>,
    /// Initial metadata.
    pub metadata: Vec<u8>,
    /// The node's data directory.
    pub data_dir: Option<PathBuf>,
    /// The application watchdog's timeout (`NodeConfig::heartbeat_timeout`).
    pub heartbeat_timeout: Option<Duration>,
}

/// An address given as text: an IP or a host name with the port, resolved now.
fn resolve(addr: &str) -> Result<SocketAddr> {
    let host: HostPort = addr.parse().map_err(anyhow::Error::msg)?;
    host.resolve()
}

/// The seeds' addresses now. A seed that does not resolve is skipped with a warning
/// while another does (as `quorate node` does); none resolving is an error naming them.
fn resolve_seeds<S: AsRef<str>>(seeds: &[S]) -> Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for s in seeds {
        match resolve(s.as_ref()) {
            Ok(a) => out.push(a),
            Err(e) => {
                eprintln!("warning: seed {}: {e:#}", s.as_ref());
                failed.push(s.as_ref().to_owned());
            }
        }
    }
    if out.is_empty() && !failed.is_empty() {
        bail!("no seed resolves: {}", failed.join(", "));
    }
    Ok(out)
}

/// Node `id`'s identity in `dir`: its certificate files, or (when they are missing and
/// `issue` is set) a certificate issued now with the CA key in `DIR/ca/`.
fn identity(dir: &Path, id: NodeId, issue: bool) -> Result<Identity> {
    let paths = Paths(dir.to_path_buf());
    let (cert, key) = (paths.node_cert(id), paths.node_key(id));
    if cert.exists() || !issue {
        if !cert.exists() {
            bail!(
                "no certificate for node {id}: {} is missing (add the node with `quorate cert \
                 issue`, or pass issue_certificate=True where the CA key is at hand)",
                cert.display()
            );
        }
        return Ok(Identity::load(&cert, &key, &paths.ca_cert())?);
    }
    let ca_key = paths.ca_key();
    if !ca_key.exists() {
        bail!(
            "no certificate for node {id} ({} is missing) and no CA key to issue one ({} is \
             missing)",
            cert.display(),
            ca_key.display()
        );
    }
    let ca = ClusterCa::load(&paths.ca_cert(), &ca_key)
        .with_context(|| format!("cannot load the cluster CA from {}", ca_key.display()))?;
    Ok(ca.issue_node(id)?)
}

/// Node `id` of the cluster in `dir`, as `quorate node --dir DIR --id ID` would run it,
/// with `o` on top; a node not listed in `cluster.toml` listens on `127.0.0.1:0` and has
/// no data directory unless told.
pub(crate) fn from_dir(dir: &Path, id: u64, o: Overrides, issue: bool) -> Result<NodeConfig> {
    let file = ClusterFile::load(dir)?;
    if id == 0 {
        bail!("node ids start at 1");
    }
    let nid = NodeId(id);
    let entry = file.node(id).ok();
    let identity = identity(dir, nid, issue)?;
    let listen = match (&o.listen, entry) {
        (Some(l), _) => resolve(l).with_context(|| format!("listen address {l:?}"))?,
        (None, Some(e)) => e.addr.resolve()?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let mut nc = NodeConfig::new(nid, listen, identity);
    nc.advertise = match (&o.advertise, entry) {
        (Some(a), _) => Some(resolve(a).with_context(|| format!("advertise address {a:?}"))?),
        (None, Some(e)) if listen.ip().is_unspecified() => Some(e.addr.resolve()?),
        _ => None,
    };
    nc.seeds = match &o.seeds {
        Some(seeds) => resolve_seeds(seeds)?,
        None => resolve_seeds(&file.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>())?,
    };
    nc.config = file.config_with(o.preset.as_deref().unwrap_or(&file.preset))?;
    nc.metadata = o.metadata;
    nc.data_dir = match (o.data_dir, entry) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => Some(dir.join("data").join(format!("node-{nid}"))),
        (None, None) => None,
    };
    nc.heartbeat_timeout = o.heartbeat_timeout;
    Ok(nc)
}

/// Explicit parameters of `Node.start`.
#[derive(Debug)]
pub(crate) struct Explicit {
    /// The node id (bound to the certificate).
    pub id: u64,
    /// Certificate, key and CA certificate (PEM files).
    pub cert: PathBuf,
    /// The node's private key.
    pub key: PathBuf,
    /// The cluster CA's certificate.
    pub ca: PathBuf,
    /// Voter ids (empty: elections off).
    pub voters: Vec<u64>,
    /// The cluster name carried in every frame.
    pub cluster_name: String,
}

/// A node configuration from explicit parameters.
pub(crate) fn explicit(e: Explicit, o: Overrides) -> Result<NodeConfig> {
    if e.id == 0 {
        bail!("node ids start at 1");
    }
    let identity = Identity::load(&e.cert, &e.key, &e.ca)?;
    let listen = o.listen.as_deref().unwrap_or("127.0.0.1:0");
    let listen = resolve(listen).with_context(|| format!("listen address {listen:?}"))?;
    let mut nc = NodeConfig::new(NodeId(e.id), listen, identity);
    if let Some(a) = &o.advertise {
        nc.advertise = Some(resolve(a).with_context(|| format!("advertise address {a:?}"))?);
    }
    nc.seeds = resolve_seeds(o.seeds.as_deref().unwrap_or_default())?;
    let mut cfg = preset(o.preset.as_deref().unwrap_or("lan"))?
        .with_voters(e.voters.iter().map(|v| NodeId(*v)).collect());
    cfg.cluster_name = e.cluster_name;
    cfg.validate()?;
    nc.config = cfg;
    nc.metadata = o.metadata;
    nc.data_dir = o.data_dir;
    nc.heartbeat_timeout = o.heartbeat_timeout;
    Ok(nc)
}

/// Writes a cluster directory as `quorate init` does (CA with its key apart in
/// `DIR/ca/`, node and client certificates, `cluster.toml`, one bundle per node) and
/// returns the path of its `cluster.toml`.
///
/// `base_port` is node 1's port (node K listens on `127.0.0.1:(base_port + K - 1)`);
/// `voters` defaults to the first three nodes. Raises `ValueError` on bad arguments and
/// `QuorateError` when the directory cannot be written or already holds a cluster
/// (unless `force`).
#[pyfunction]
#[pyo3(signature = (dir, *, nodes = 3, voters = None, base_port = 7101, preset = "lan", name = "quorate", hosts = None, force = false))]
#[allow(clippy::too_many_arguments)]
fn init_cluster(
    dir: PathBuf,
    nodes: u64,
    voters: Option<Vec<u64>>,
    base_port: u16,
    preset: &str,
    name: &str,
    hosts: Option<Vec<String>>,
    force: bool,
) -> PyResult<String> {
    let mut args: Vec<String> = vec![
        format!("--nodes={nodes}"),
        format!("--base-port={base_port}"),
        format!("--preset={preset}"),
        format!("--name={name}"),
    ];
    if let Some(v) = voters.filter(|v| !v.is_empty()) {
        let v: Vec<String> = v.iter().map(u64::to_string).collect();
        args.push(format!("--voters={}", v.join(",")));
    }
    if let Some(h) = hosts.filter(|h| !h.is_empty()) {
        args.push(format!("--hosts={}", h.join(",")));
    }
    if force {
        args.push("--force".into());
    }
    args.extend(["--".to_owned(), dir.to_string_lossy().into_owned()]);
    let a = InitArgs::parse(&args)
        .map_err(|e| PyValueError::new_err(e.render().to_string().trim().to_owned()))?;
    quorate_cli::init::write(&a).map_err(|e| QuorateError::new_err(format!("{e:#}")))?;
    Ok(dir.join("cluster.toml").to_string_lossy().into_owned())
}

/// Adds `init_cluster`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(init_cluster, m)?)
}
