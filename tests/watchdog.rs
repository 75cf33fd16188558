//! The application watchdog over real QUIC on 127.0.0.1: a node whose application
//! stops calling `Node::heartbeat` leaves its groups and resigns its leaderships and
//! locks while staying a member; one that keeps beating keeps them.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use quorate::{ClusterCa, Node, NodeId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_application_loses_its_groups_leaderships_and_locks() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let voters = voter_config(&[1, 2, 3]);
    let mut nodes = cluster_with(&ca, 3, &voters).await?;
    let mut cfg = node_config(&ca, 4, &[nodes[0].local_addr()]);
    cfg.config = voters.clone();
    cfg.heartbeat_timeout = Some(Duration::from_millis(600));
    let app = Node::start(cfg).await?;
    app.wait_joined(DEADLINE).await?;
    app.create_group("g").await?;
    app.join_group("g", b"x".to_vec()).await?;
    let mut campaign = app.campaign("svc").await?;
    let lead = campaign.leadership().await?;
    let guard = app.lock("res").acquire(DEADLINE).await?;

    // Beating keeps everything, well past the timeout.
    for _ in 0..15 {
        assert!(app.heartbeat(), "the watchdog never expired while beaten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lead.is_valid() && guard.is_owner());
    assert_eq!(app.group_members("g")?.len(), 1);

    // Silence: the leadership and the lock end, the group is left, the node stays.
    within("the leadership ends", lead.lost()).await?;
    within("the lock is lost", guard.lost()).await?;
    let observer = &nodes[1];
    wait_until("node 2 sees node 4 leave g", || {
        observer.group_members("g").is_ok_and(|m| m.is_empty())
    })
    .await?;
    assert!(observer.confirmed_leader("svc").await?.is_none());
    assert!(
        sees_alive(observer, &[1, 2, 3, 4]),
        "node 4 is still a member"
    );
    assert!(
        campaign.leadership().await.is_err(),
        "the campaign was resigned"
    );
    let metrics = app.metrics().await?;
    let expiries = metrics.iter().find(|m| m.name == "watchdog_expiries");
    assert_eq!(expiries.map(|m| m.value), Some(1));
    assert!(!app.heartbeat(), "the next beat learns it had expired");
    assert!(app.heartbeat());
    // Alive again: it can take part as before.
    app.join_group("g", b"y".to_vec()).await?;
    observer.sync(DEADLINE).await?;
    assert_eq!(
        observer.group_members("g")?,
        vec![(NodeId(4), b"y".to_vec())]
    );

    app.shutdown().await;
    for n in nodes.drain(..) {
        n.shutdown().await;
    }
    Ok(())
}
