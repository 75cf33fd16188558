//! The bounds on incoming connections, over real QUIC on 127.0.0.1: client connections
//! beyond `NodeConfig::max_client_connections` are closed as busy while the node keeps
//! answering and gossiping, a freed slot serves again, client connections end after
//! `NodeConfig::client_lifetime`, and node connections beyond
//! `NodeConfig::max_node_connections` are refused.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use quorate::{query_status, ClusterCa, Node, NodeId};

/// The close code of a connection refused for want of room.
const BUSY: u32 = 6;
/// The close code of a client connection past its lifetime.
const EXPIRED: u32 = 7;

/// A client-certificate connection to `node`, as `quorate status` opens.
async fn client(ca: &ClusterCa, node: &Node) -> Result<(quinn::Endpoint, quinn::Connection)> {
    let identity = ca.issue_client("admin")?;
    let mut endpoint = quinn::Endpoint::client(loopback())?;
    endpoint.set_default_client_config(quorate::runtime::client_config(&identity, &config())?);
    let conn = endpoint
        .connect(node.local_addr(), quorate::identity::MEMBER_SERVER_NAME)?
        .await?;
    Ok((endpoint, conn))
}

/// The application code `conn` was closed with by the node, waiting for the close.
async fn closed_with(conn: &quinn::Connection) -> Result<Option<u32>> {
    let reason = within("the node to close the connection", conn.closed()).await?;
    Ok(match reason {
        quinn::ConnectionError::ApplicationClosed(a) => Some(a.error_code.into_inner() as u32),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_beyond_the_cap_are_refused() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut cfg = node_config(&ca, 1, &[]);
    cfg.max_client_connections = 2;
    cfg.client_lifetime = Duration::from_secs(600);
    let node = Node::start(cfg).await?;
    let addr = node.local_addr();

    let (_e1, first) = client(&ca, &node).await?;
    let (_e2, second) = client(&ca, &node).await?;
    wait_until("two client connections held", || {
        node.transport_stats().client_connections == 2
    })
    .await?;
    // Connection N+1 completes its handshake, then the node closes it as busy.
    let (_e3, third) = client(&ca, &node).await?;
    assert_eq!(closed_with(&third).await?, Some(BUSY));
    assert_eq!(node.transport_stats().refused_busy, 1);
    assert!(first.close_reason().is_none() && second.close_reason().is_none());
    let identity = ca.issue_client("admin")?;
    assert!(query_status(&identity, addr, "test").await.is_err());

    // The node keeps working: a peer joins and both see each other alive.
    let peer = start(&ca, 2, &[addr], None).await;
    let nodes = vec![node, peer];
    wait_converged(&nodes).await?;
    // A client that goes frees its slot, and a status query is answered again.
    first.close(0u32.into(), b"done");
    wait_until("the slot to be freed", || {
        nodes[0].transport_stats().client_connections == 1
    })
    .await?;
    let report = query_status(&identity, addr, "test").await?;
    assert_eq!(report.members.len(), 2);
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_end_after_their_lifetime() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut cfg = node_config(&ca, 1, &[]);
    cfg.max_client_connections = 1;
    cfg.client_lifetime = Duration::from_millis(300);
    let node = Node::start(cfg).await?;
    let (_e, conn) = client(&ca, &node).await?;
    assert_eq!(closed_with(&conn).await?, Some(EXPIRED));
    wait_until("the slot to be freed", || {
        node.transport_stats().client_connections == 0
    })
    .await?;
    let identity = ca.issue_client("admin")?;
    let report = query_status(&identity, node.local_addr(), "test").await?;
    assert_eq!(report.node, NodeId(1));
    node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_connections_beyond_the_cap_are_refused() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut cfg = node_config(&ca, 1, &[]);
    cfg.max_node_connections = 1;
    let node = Node::start(cfg).await?;
    let peer = start(&ca, 2, &[node.local_addr()], None).await;
    let nodes = vec![node, peer];
    wait_converged(&nodes).await?;
    wait_until("the peer's connection counted", || {
        nodes[0].transport_stats().open_connections >= 1
    })
    .await?;
    let (_endpoint, conn) = raw_connect(&ca, 5, &nodes[0]).await?;
    assert_eq!(closed_with(&conn).await?, Some(BUSY));
    assert!(nodes[0].transport_stats().refused_busy >= 1);
    assert!(nodes[0].member(NodeId(5)).is_none());
    assert!(sees_alive(&nodes[0], &[1, 2]) && sees_alive(&nodes[1], &[1, 2]));
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
