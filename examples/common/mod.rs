//! A local cluster for the examples: `n` nodes on 127.0.0.1 in this process, one
//! cluster CA made on the spot, voters 1..=3, `Config::local()` timings. In production
//! each node is its own process or machine with certificates made once by
//! `quorate init` (see the README).
#![allow(dead_code)]

use std::error::Error;
use std::time::Duration;

use quorate::{ClusterCa, Config, Node, NodeConfig, NodeId};

pub type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// The cluster config every example node shares.
pub fn config() -> Config {
    let mut c = Config::local();
    c.cluster_name = "examples".into();
    c.with_voters(vec![NodeId(1), NodeId(2), NodeId(3)])
}

/// Starts nodes `1..=n`, each joining through node 1, and waits until every node
/// sees all `n`.
pub async fn local_cluster(n: u64) -> Result<(ClusterCa, Vec<Node>)> {
    let ca = ClusterCa::generate("examples")?;
    let mut nodes: Vec<Node> = Vec::new();
    for id in 1..=n {
        let id = NodeId(id);
        let mut cfg = NodeConfig::new(id, "127.0.0.1:0".parse()?, ca.issue_node(id)?);
        cfg.config = config();
        cfg.seeds = nodes
            .first()
            .map(|f| vec![f.local_addr()])
            .unwrap_or_default();
        nodes.push(Node::start(cfg).await?);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while nodes.iter().any(|node| node.members().len() < n as usize) {
        if tokio::time::Instant::now() > deadline {
            return Err("the local cluster did not form in 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((ca, nodes))
}
