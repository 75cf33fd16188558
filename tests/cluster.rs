//! Membership over real QUIC on 127.0.0.1: join, failure, leave, metadata, status.

mod common;

use anyhow::Result;
use common::*;
use quorate::{
    query_status, ClusterCa, MemberEvent, MetadataError, Node, NodeConfig, NodeId,
    SetMetadataError, StartError, State, StatusError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_join_and_converge() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 5, None).await;
    wait_converged(&nodes).await?;
    for n in &nodes {
        assert!(n.transport_stats().connections_opened > 0);
        assert_eq!(n.stats().impersonation, 0);
        assert_eq!(n.stats().malformed, 0);
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abrupt_stop_is_detected_as_a_failure() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster(&ca, 4, None).await;
    wait_converged(&nodes).await?;
    let mut streams: Vec<_> = nodes[..3].iter().map(|n| n.events()).collect();
    let mut seen = vec![Vec::new(); 3];
    nodes.pop().unwrap().shutdown().await;
    wait_until("nodes 1-3 see node 4 failed", || {
        nodes.iter().all(|n| state(n, 4) == Some(State::Dead))
    })
    .await?;
    wait_for_event(
        "every survivor got a Failed event for node 4",
        &mut streams,
        &mut seen,
        |e| matches!(e, MemberEvent::Failed { id, .. } if *id == NodeId(4)),
    )
    .await?;
    wait_converged(&nodes).await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_reported_as_left_not_failed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster(&ca, 4, None).await;
    wait_converged(&nodes).await?;
    let mut streams: Vec<_> = nodes[..3].iter().map(|n| n.events()).collect();
    let mut seen = vec![Vec::new(); 3];
    nodes.pop().unwrap().leave().await?;
    wait_until("nodes 1-3 see node 4 left", || {
        nodes.iter().all(|n| state(n, 4) == Some(State::Left))
    })
    .await?;
    wait_for_event(
        "every survivor got a Left event for node 4",
        &mut streams,
        &mut seen,
        |e| matches!(e, MemberEvent::Left { id, .. } if *id == NodeId(4)),
    )
    .await?;
    for seen in &seen {
        assert!(
            !has_event(
                seen,
                |e| matches!(e, MemberEvent::Failed { id, .. } if *id == NodeId(4))
            ),
            "a departure must not be reported as a failure: {seen:?}"
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_at_the_same_address() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster(&ca, 3, None).await;
    wait_converged(&nodes).await?;
    let old = nodes.pop().unwrap();
    let addr = old.local_addr();
    old.shutdown().await;
    wait_until("nodes 1-2 see node 3 failed", || {
        nodes.iter().all(|n| state(n, 3) == Some(State::Dead))
    })
    .await?;
    // Same id and address, fresh state: peers still hold connections to the old process.
    let mut cfg = node_config(&ca, 3, &[nodes[0].local_addr()]);
    cfg.listen = addr;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let restarted = loop {
        match Node::start(cfg.clone()).await {
            Ok(node) => break node,
            // The old socket may take a moment to be released.
            Err(StartError::Bind { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    nodes.push(restarted);
    wait_converged(&nodes).await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

async fn publish_and_wait(nodes: &[Node], meta: Vec<u8>) -> Result<()> {
    let mut streams: Vec<_> = nodes[1..].iter().map(|n| n.events()).collect();
    let mut seen = vec![Vec::new(); streams.len()];
    nodes[0].set_metadata(meta.clone()).await?;
    let what = format!("every node sees node 1's {} bytes of metadata", meta.len());
    wait_until(&what, || {
        nodes
            .iter()
            .all(|n| n.member(NodeId(1)).is_some_and(|m| m.meta == meta))
    })
    .await?;
    wait_for_event(
        "every peer got an Updated event with the new bytes",
        &mut streams,
        &mut seen,
        |e| matches!(e, MemberEvent::Updated(m) if m.id == NodeId(1) && m.meta == meta),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_updates_reach_every_member() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 3, None).await;
    wait_converged(&nodes).await?;
    publish_and_wait(&nodes, b"zone=eu-1".to_vec()).await?;
    publish_and_wait(&nodes, b"zone=eu-2".to_vec()).await?;
    let too_big = vec![0u8; config().max_metadata_bytes + 1];
    let err = nodes[0].set_metadata(too_big).await.unwrap_err();
    assert!(
        matches!(
            err,
            SetMetadataError::Refused(MetadataError::TooLarge { .. })
        ),
        "{err}"
    );
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_metadata_travels_by_digest_and_fetch() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 3, None).await;
    wait_converged(&nodes).await?;
    // Larger than a datagram can carry: gossiped as a digest, fetched over a stream.
    let big: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    publish_and_wait(&nodes, big).await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_metadata_and_status_query() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let first = start(&ca, 1, &[], None).await;
    let mut cfg = node_config(&ca, 2, &[first.local_addr()]);
    cfg.metadata = b"role=db".to_vec();
    let second = Node::start(cfg).await?;
    let nodes = vec![first, second];
    wait_converged(&nodes).await?;
    wait_until("node 1 sees node 2's initial metadata", || {
        nodes[0]
            .member(NodeId(2))
            .is_some_and(|m| m.meta == b"role=db")
    })
    .await?;

    let admin = ca.issue_client("ops")?;
    let report = query_status(&admin, nodes[0].local_addr(), "test").await?;
    assert_eq!(report.node, NodeId(1));
    assert_eq!(report.cluster, "test");
    let ids: Vec<_> = report.members.iter().map(|m| (m.id.0, m.state)).collect();
    assert_eq!(ids, vec![(1, State::Alive), (2, State::Alive)]);
    assert_eq!(report.members[1].meta, b"role=db");

    // Another cluster name is refused with a reason; the client never becomes a member.
    let err = query_status(&admin, nodes[0].local_addr(), "other")
        .await
        .unwrap_err();
    assert!(matches!(err, StatusError::Refused { .. }), "{err}");
    assert_eq!(nodes[0].members().len(), 2);

    // A client identity cannot run a node; a node's identity is bound to its id.
    let cfg = NodeConfig::new(NodeId(3), loopback(), admin);
    let err = Node::start(cfg).await.unwrap_err();
    assert!(
        matches!(err, StartError::IdentityMismatch { cert: None, .. }),
        "{err}"
    );
    let cfg = NodeConfig::new(NodeId(3), loopback(), ca.issue_node(NodeId(4))?);
    assert!(matches!(
        Node::start(cfg).await,
        Err(StartError::IdentityMismatch { .. })
    ));
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// A subscriber that falls behind loses its oldest events, and the node counts them
/// (`events_lagged`, exported with the other metrics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_by_a_lagging_subscriber_are_counted() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut cfg = node_config(&ca, 1, &[]);
    cfg.event_capacity = 2;
    let first = Node::start(cfg).await?;
    let mut events = first.events();
    let mut nodes = vec![first];
    let seed = [nodes[0].local_addr()];
    for id in 2..=5 {
        nodes.push(start(&ca, id, &seed, None).await);
    }
    wait_converged(&nodes).await?;
    // Four joins went into a buffer of two: the oldest were dropped for this reader.
    while events.try_recv().is_some() {}
    assert!(events.lagged() >= 2, "lagged {}", events.lagged());
    assert_eq!(nodes[0].transport_stats().events_lagged, events.lagged());
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
