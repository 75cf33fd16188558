//! Membership over real QUIC on 127.0.0.1: join, failure, leave, metadata.

mod common;

use anyhow::Result;
use common::*;
use quorate::{ClusterCa, Event, MemberEvent, NodeId, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_join_and_converge() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 5, None).await;
    wait_converged(&nodes).await?;
    for n in &nodes {
        let s = n.transport_stats();
        assert!(s.connections_opened > 0, "{s:?}");
        assert_eq!(n.stats().impersonation, 0);
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
