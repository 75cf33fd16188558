//! Connection management over real QUIC on 127.0.0.1.

// Tests bind their own sockets.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use anyhow::Result;
use common::*;
use quorate::wire::{self, Message};
use std::sync::Arc;

use quorate::runtime::faults::{Faults, FaultySocket};
use quorate::{ClusterCa, MetricKind, Node, NodeId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_pair() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    // Nodes seed with every earlier node, so several dial each other at once.
    let first = start(&ca, 1, &[], None).await;
    let second = start(&ca, 2, &[first.local_addr()], None).await;
    let seeds = [first.local_addr(), second.local_addr()];
    let third = start(&ca, 3, &seeds, None).await;
    let nodes = vec![first, second, third];
    wait_converged(&nodes).await?;
    wait_until("each node holds exactly one connection per peer", || {
        nodes
            .iter()
            .all(|n| n.transport_stats().open_connections == 2)
    })
    .await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_list_every_counter_and_gauge_of_a_node_once() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let first = start(&ca, 1, &[], None).await;
    let second = start(&ca, 2, &[first.local_addr()], None).await;
    let nodes = vec![first, second];
    wait_converged(&nodes).await?;
    nodes[0].create_group("metrics").await?;
    let all = nodes[0].metrics().await?;
    let mut names = std::collections::HashSet::new();
    for m in &all {
        assert!(names.insert(m.name), "{} twice", m.name);
        assert!(!m.help.is_empty(), "{} has no help", m.name);
    }
    let value = |name: &str| all.iter().find(|m| m.name == name).map(|m| m.value);
    let stats = nodes[0].stats();
    // Every protocol and transport counter is there, and the gauges the engine reads.
    for m in stats.metrics().chain(nodes[0].transport_stats().metrics()) {
        assert!(names.contains(m.name), "{} missing", m.name);
    }
    assert!(value("frames_out") >= Some(stats.frames_out) && stats.frames_out > 0);
    assert_eq!(value("members"), Some(2));
    assert_eq!(value("members_alive"), Some(2));
    assert_eq!(value("groups"), Some(1));
    assert_eq!(
        all.iter().find(|m| m.name == "members").map(|m| m.kind),
        Some(MetricKind::Gauge)
    );
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let node = start(&ca, 1, &[], None).await;
    let (_endpoint, conn) = raw_connect(&ca, 9, &node).await?;
    let hello = wire::encode(
        "test",
        NodeId(9),
        &Message::Gossip { updates: vec![] },
        1150,
    )?;
    send_stream(&conn, &hello).await?;
    // No frame flows: the node closes the connection as idle before QUIC's own timer.
    let reason = tokio::time::timeout(DEADLINE, conn.closed()).await?;
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(u64::from(close.error_code), 2, "{close:?}");
        }
        other => panic!("closed for another reason: {other}"),
    }
    assert!(node.transport_stats().idle_closed >= 1);
    node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_on_an_injected_socket_and_runtime() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let first = start(&ca, 1, &[], None).await;
    // Any quinn socket and runtime will do: here a wrapped tokio socket.
    let runtime: Arc<dyn quinn::Runtime> = Arc::new(quinn::TokioRuntime);
    let socket = std::net::UdpSocket::bind(loopback())?;
    socket.set_nonblocking(true)?;
    let inner = runtime.wrap_udp_socket(socket)?;
    let faults = Faults::new();
    let socket = Arc::new(FaultySocket::new(inner, faults.clone())?);
    let cfg = node_config(&ca, 2, &[first.local_addr()]);
    let second = Node::start_with_socket(cfg, socket, runtime).await?;
    let nodes = vec![first, second];
    wait_converged(&nodes).await?;
    assert_eq!(faults.dropped(), 0);
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
