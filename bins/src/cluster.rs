//! The cluster directory that `quorate init` writes and every other command reads:
//! `cluster.toml` plus PEM files (CA, one certificate and key per node, a client
//! certificate for `quorate status`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use quorate::{Config, NodeId};
use serde::{Deserialize, Serialize};

/// The cluster description, `DIR/cluster.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Cluster name carried in every frame.
    pub cluster_name: String,
    /// Timing preset: `lan`, `wan` or `local`.
    pub preset: String,
    /// Addresses a starting node joins through (IPs or host names, with ports).
    pub seeds: Vec<HostPort>,
    /// Node ids that vote in elections (a majority is the quorum).
    pub voters: Vec<u64>,
    /// Every node: its id and listen address.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeEntry>,
}

/// One node of the cluster file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// The node id (bound to its certificate).
    pub id: u64,
    /// Where it listens (an IP or a host name, with the port).
    pub addr: HostPort,
}

/// An address in `cluster.toml` or on the command line: an IP or a host name, and a
/// port (`10.0.0.2:7101`, `edge-2.plant.lan:7101`, `[fe80::1]:7101`). Names are
/// resolved when a command starts ([`HostPort::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPort(String);

impl HostPort {
    /// `host` (a name or an IP; an IPv6 address is bracketed) at `port`.
    pub fn new(host: &str, port: u16) -> Result<Self, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.contains(':') {
            true => format!("[{host}]:{port}").parse(),
            false => format!("{host}:{port}").parse(),
        }
    }

    /// The port.
    pub fn port(&self) -> Option<u16> {
        self.0.rsplit_once(':')?.1.parse().ok()
    }

    /// The address it names now: an IP as written, or what the host name resolves to
    /// (the system resolver: `/etc/hosts`, DNS), its first IPv4 address if it has one
    /// (so that `localhost` means the same on every machine), else its first.
    pub fn resolve(&self) -> Result<SocketAddr> {
        if let Ok(a) = self.0.parse::<SocketAddr>() {
            return Ok(a);
        }
        let addrs: Vec<SocketAddr> = self
            .0
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", self.0))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .with_context(|| format!("{} resolves to no address", self.0))
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an address like 10.0.0.2:7101 or host-2:7101");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name_ok = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if host.is_empty() || !name_ok || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        Ok(HostPort(s.to_owned()))
    }
}

impl TryFrom<String> for HostPort {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<HostPort> for String {
    fn from(h: HostPort) -> String {
        h.0
    }
}

impl From<SocketAddr> for HostPort {
    fn from(a: SocketAddr) -> Self {
        HostPort(a.to_string())
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ClusterFile {
    /// Reads and checks `DIR/cluster.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("cluster.toml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {} (run `quorate init` first?)", path.display())
        })?;
        let file: ClusterFile =
            toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        check_unique(&text).with_context(|| format!("invalid {}", path.display()))?;
        file.config()
            .with_context(|| format!("invalid {}", path.display()))?;
        Ok(file)
    }

    /// Writes `DIR/cluster.toml`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("cluster.toml");
        let text = toml::to_string_pretty(self)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The protocol config this file describes: its preset, cluster name and voters
    /// (elections are on when it names voters).
    pub fn config(&self) -> Result<Config> {
        self.config_with(&self.preset)
    }

    /// As [`ClusterFile::config`], with the timing preset `name` instead of the file's.
    pub fn config_with(&self, name: &str) -> Result<Config> {
        if let Some(v) = self.voters.iter().find(|v| self.node(**v).is_err()) {
            bail!("voter {v} is not one of the nodes");
        }
        let mut cfg = preset(name)?.with_voters(self.voters.iter().map(|v| NodeId(*v)).collect());
        cfg.cluster_name = self.cluster_name.clone();
        cfg.validate()?;
        Ok(cfg)
    }

    /// The entry of node `id`.
    pub fn node(&self, id: u64) -> Result<&NodeEntry> {
        match self.nodes.iter().find(|n| n.id == id) {
            Some(n) => Ok(n),
            None => bail!(
                "node {id} is not in cluster.toml (nodes: {})",
                self.nodes
                    .iter()
                    .map(|n| n.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Where each node's `id` and `addr` are written in `cluster.toml`.
#[derive(Deserialize)]
struct NodeSpans {
    #[serde(default, rename = "node")]
    nodes: Vec<NodeSpan>,
}

#[derive(Deserialize)]
struct NodeSpan {
    id: toml::Spanned<u64>,
    addr: toml::Spanned<String>,
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Refuses a `cluster.toml` that gives one node id, or one address, to two nodes,
/// naming the line of the second and of the first.
fn check_unique(text: &str) -> Result<()> {
    let spans: NodeSpans = toml::from_str(text)?;
    let mut ids = std::collections::HashMap::new();
    let mut addrs = std::collections::HashMap::new();
    for n in &spans.nodes {
        let (id, id_line) = (*n.id.get_ref(), line_of(text, n.id.span().start));
        if let Some(first) = ids.insert(id, id_line) {
            bail!("line {id_line}: node id {id} is given twice (first on line {first})");
        }
        let (addr, addr_line) = (n.addr.get_ref(), line_of(text, n.addr.span().start));
        if let Some(first) = addrs.insert(addr, addr_line) {
            bail!("line {addr_line}: address {addr} is given to two nodes (first on line {first})");
        }
    }
    Ok(())
}

/// A named timing preset.
pub fn preset(name: &str) -> Result<Config> {
    Ok(match name {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        "edge" => Config::edge(),
        other => bail!("unknown preset {other:?} (expected lan, wan, local or edge)"),
    })
}

/// File names inside a cluster directory.
pub struct Paths(pub PathBuf);

impl Paths {
    /// The CA certificate every node and client trusts.
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    /// The cluster's revocation list (`quorate cert revoke` writes it; a node reads it
    /// at start and on SIGHUP).
    pub fn revocation(&self) -> PathBuf {
        self.0.join("revoked.crl")
    }
    /// The CA's key, apart from what any node needs (`DIR/ca/`).
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca").join("ca.key")
    }
    /// Node `id`'s bundle: the one folder its host needs.
    pub fn bundle(&self, id: NodeId) -> PathBuf {
        self.0.join("nodes").join(id.0.to_string())
    }
    /// Node `id`'s certificate.
    pub fn node_cert(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{id}.pem"))
    }
    /// Node `id`'s private key.
    pub fn node_key(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{id}.key"))
    }
    /// The operator's client certificate (`quorate status` and friends).
    pub fn client_cert(&self) -> PathBuf {
        self.0.join("client.pem")
    }
    /// The client certificate's key.
    pub fn client_key(&self) -> PathBuf {
        self.0.join("client.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterFile {
        ClusterFile {
            cluster_name: "quorate".into(),
            preset: "lan".into(),
            seeds: vec![
                "127.0.0.1:7101".parse().unwrap(),
                "edge-1.lan:7101".parse().unwrap(),
            ],
            voters: vec![1, 2, 3],
            nodes: (1..=3)
                .map(|id| NodeEntry {
                    id,
                    addr: SocketAddr::from(([127, 0, 0, 1], 7100 + id as u16)).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        assert_eq!(ClusterFile::load(dir.path()).unwrap(), sample());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let err = ClusterFile::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("cluster.toml"), "{err}");
        let mut bad = sample();
        bad.preset = "fast".into();
        bad.save(dir.path()).unwrap();
        let err = format!("{:#}", ClusterFile::load(dir.path()).unwrap_err());
        assert!(err.contains("unknown preset"), "{err}");
        assert!(sample().node(9).unwrap_err().to_string().contains("node 9"));
        let mut bad = sample();
        bad.voters = vec![1, 4];
        bad.save(dir.path()).unwrap();
        let err = format!("{:#}", ClusterFile::load(dir.path()).unwrap_err());
        assert!(err.contains("voter 4"), "{err}");
    }

    /// `sample()` as TOML, with node `which`'s line `key = ...` replaced by `value`.
    fn edited(which: u64, key: &str, value: &str) -> String {
        let text = toml::to_string_pretty(&sample()).unwrap();
        let mut node = 0;
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if l.trim() == "[[node]]" {
                    node += 1;
                }
                if node == which && l.trim_start().starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        lines.join("\n")
    }

    fn load_text(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster.toml"), text).unwrap();
        format!("{:#}", ClusterFile::load(dir.path()).unwrap_err())
    }

    fn line_with(text: &str, needle: &str, nth: usize) -> usize {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .unwrap()
            .0
            + 1
    }

    #[test]
    fn duplicate_ids_are_refused_with_their_lines() {
        let text = edited(3, "id", "2");
        let (first, second) = (line_with(&text, "id = 2", 0), line_with(&text, "id = 2", 1));
        assert!(first < second, "{text}");
        let err = load_text(&text);
        assert!(
            err.contains(&format!(
                "line {second}: node id 2 is given twice (first on line {first})"
            )),
            "{err}\n{text}"
        );
        assert!(err.contains("cluster.toml"), "{err}");
    }

    #[test]
    fn duplicate_addresses_are_refused_with_their_lines() {
        let text = edited(2, "addr", "\"127.0.0.1:7101\"");
        let first = line_with(&text, "addr = \"127.0.0.1:7101", 0);
        let second = line_with(&text, "addr = \"127.0.0.1:7101", 1);
        assert!(first < second, "{text}");
        let err = load_text(&text);
        assert!(
            err.contains(&format!(
                "line {second}: address 127.0.0.1:7101 is given to two nodes (first on line {first})"
            )),
            "{err}\n{text}"
        );
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }

    #[test]
    fn voters_turn_elections_on() {
        let cfg = sample().config().unwrap();
        assert_eq!(cfg.election.voters, vec![NodeId(1), NodeId(2), NodeId(3)]);
        let local = sample().config_with("local").unwrap();
        assert_eq!(local.election.voters, cfg.election.voters);
        assert_eq!(local.probe_interval, Config::local().probe_interval);
        let mut off = sample();
        off.voters.clear();
        assert!(!off.config().unwrap().election.enabled());
    }
}
