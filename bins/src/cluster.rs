//! The cluster directory that `quorate init` writes and every other command reads:
//! `cluster.toml` plus PEM files (CA, one certificate and key per node, a client
//! certificate for `quorate status`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// Addresses a starting node joins through.
    pub seeds: Vec<SocketAddr>,
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
    /// Where it listens.
    pub addr: SocketAddr,
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

/// A named timing preset.
pub fn preset(name: &str) -> Result<Config> {
    Ok(match name {
        "lan" => Config::lan(),
        "wan" => Config::wan(),
        "local" => Config::local(),
        other => bail!("unknown preset {other:?} (expected lan, wan or local)"),
    })
}

/// File names inside a cluster directory.
pub struct Paths(pub PathBuf);

impl Paths {
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    pub fn node_cert(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{id}.pem"))
    }
    pub fn node_key(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{id}.key"))
    }
    pub fn client_cert(&self) -> PathBuf {
        self.0.join("client.pem")
    }
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
            seeds: vec!["127.0.0.1:7101".parse().unwrap()],
            voters: vec![1, 2, 3],
            nodes: (1..=3)
                .map(|id| NodeEntry {
                    id,
                    addr: ([127, 0, 0, 1], 7100 + id as u16).into(),
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
