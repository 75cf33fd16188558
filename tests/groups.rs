//! Groups over real QUIC on 127.0.0.1 (tooz's group API): create, join with
//! capabilities, update, leave, delete; events on every node; a member that stops
//! leaves its groups; tooz's error cases as typed errors; read-your-writes across
//! nodes.
// A test may bind a socket of its own (a seed that never answers).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use anyhow::Result;
use common::*;
use quorate::{ClusterCa, Event, EventStream, GroupError, GroupEvent, GroupOpError, Node, NodeId};

type Members = Vec<(NodeId, Vec<u8>)>;

fn members(pairs: &[(u64, &[u8])]) -> Members {
    pairs
        .iter()
        .map(|(id, c)| (NodeId(*id), c.to_vec()))
        .collect()
}

/// Waits until every node sees `want` as the members of "g".
async fn wait_members(nodes: &[Node], want: &Members) -> Result<()> {
    wait_until(&format!("every node sees {want:?} in g"), || {
        nodes
            .iter()
            .all(|n| n.group_members("g").ok().as_ref() == Some(want))
    })
    .await
}

/// Waits until every stream has delivered a group event matching `pred`.
async fn wait_group_event(
    what: &str,
    streams: &mut [EventStream],
    seen: &mut [Vec<Event>],
    pred: impl Fn(&GroupEvent) -> bool,
) -> Result<()> {
    wait_until(what, || {
        streams.iter_mut().zip(seen.iter_mut()).all(|(s, seen)| {
            drain(s, seen);
            seen.iter().any(|e| matches!(e, Event::Group(g) if pred(g)))
        })
    })
    .await
}

fn group_err(r: Result<(), GroupOpError>) -> GroupError {
    match r {
        Err(GroupOpError::Refused(e)) => e,
        other => panic!("expected a group error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_spread_with_events_and_a_stopped_member_leaves_them() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster(&ca, 3, None).await;
    wait_converged(&nodes).await?;
    let mut streams: Vec<_> = nodes.iter().map(|n| n.events()).collect();
    let mut seen = vec![Vec::new(); 3];

    nodes[0].create_group("g").await?;
    assert_eq!(
        nodes[0].groups(),
        vec!["g".to_owned()],
        "own change seen at once"
    );
    wait_until("every node knows g", || {
        nodes.iter().all(|n| n.groups() == vec!["g".to_owned()])
    })
    .await?;
    nodes[1].join_group("g", b"a".to_vec()).await?;
    nodes[2].join_group("g", b"b".to_vec()).await?;
    wait_members(&nodes, &members(&[(2, b"a"), (3, b"b")])).await?;
    wait_group_event("every node saw node 3 join", &mut streams, &mut seen, |e| {
        matches!(e, GroupEvent::Joined { group, member: NodeId(3), capabilities }
            if group == "g" && capabilities == b"b")
    })
    .await?;

    nodes[1].update_capabilities("g", b"a2".to_vec()).await?;
    wait_until("every node sees node 2's new capabilities", || {
        nodes
            .iter()
            .all(|n| n.member_capabilities("g", NodeId(2)).ok() == Some(b"a2".to_vec()))
    })
    .await?;
    wait_group_event("every node saw the update", &mut streams, &mut seen, |e| {
        matches!(
            e,
            GroupEvent::CapabilitiesUpdated {
                member: NodeId(2),
                ..
            }
        )
    })
    .await?;

    // Node 3 stops without a word: once it is declared failed it is out of "g".
    nodes.pop().unwrap().shutdown().await;
    streams.pop();
    seen.pop();
    wait_members(&nodes, &members(&[(2, b"a2")])).await?;
    wait_group_event(
        "the survivors saw node 3 leave g",
        &mut streams,
        &mut seen,
        |e| matches!(e, GroupEvent::Left { group, member: NodeId(3) } if group == "g"),
    )
    .await?;

    nodes[1].leave_group("g").await?;
    wait_members(&nodes, &Vec::new()).await?;
    nodes[0].delete_group("g").await?;
    wait_until("every node forgot g", || {
        nodes.iter().all(|n| n.groups().is_empty())
    })
    .await?;
    wait_group_event(
        "every node saw g deleted",
        &mut streams,
        &mut seen,
        |e| matches!(e, GroupEvent::Deleted { group } if group == "g"),
    )
    .await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tooz_error_cases_are_typed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 2, None).await;
    wait_converged(&nodes).await?;
    let (a, b) = (&nodes[0], &nodes[1]);
    let missing = |g: &str| GroupError::NotCreated(g.into());
    assert_eq!(
        group_err(a.join_group("nope", vec![]).await),
        missing("nope")
    );
    assert_eq!(group_err(a.delete_group("nope").await), missing("nope"));
    assert_eq!(a.group_members("nope").unwrap_err(), missing("nope"));
    assert_eq!(group_err(a.create_group("").await), GroupError::BadName);
    assert_eq!(group_err(a.create_group("a\nb").await), GroupError::BadName);

    a.create_group("g").await?;
    assert_eq!(
        group_err(a.create_group("g").await),
        GroupError::AlreadyExists("g".into())
    );
    a.join_group("g", b"x".to_vec()).await?;
    assert_eq!(
        group_err(a.join_group("g", vec![]).await),
        GroupError::AlreadyJoined("g".into())
    );
    assert_eq!(
        group_err(a.delete_group("g").await),
        GroupError::NotEmpty("g".into())
    );
    wait_until("node 2 sees node 1 in g", || {
        b.member_capabilities("g", NodeId(1)).ok() == Some(b"x".to_vec())
    })
    .await?;
    let not_joined = GroupError::NotJoined("g".into());
    assert_eq!(group_err(b.leave_group("g").await), not_joined);
    assert_eq!(
        group_err(b.update_capabilities("g", vec![]).await),
        not_joined
    );
    assert_eq!(
        b.member_capabilities("g", NodeId(2)).unwrap_err(),
        not_joined
    );
    // Node 2 sees node 1 in the group: it cannot delete it either.
    assert_eq!(
        group_err(b.delete_group("g").await),
        GroupError::NotEmpty("g".into())
    );
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_the_cluster_leaves_its_groups() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster(&ca, 3, None).await;
    wait_converged(&nodes).await?;
    nodes[0].create_group("g").await?;
    wait_until("node 3 knows g", || {
        nodes[2].groups() == vec!["g".to_owned()]
    })
    .await?;
    nodes[2].join_group("g", b"c".to_vec()).await?;
    wait_members(&nodes, &members(&[(3, b"c")])).await?;
    nodes.pop().unwrap().leave().await?;
    wait_members(&nodes, &Vec::new()).await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// Read-your-writes across nodes: once node 4's group write returned, node 5 sees it
/// after its own `sync`, every time, with no wait in between (gossip alone takes tens
/// of milliseconds: without the barriers the join below fails with `NotCreated`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_seen_on_another_node_after_its_sync() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster_with(&ca, 5, &voter_config(&[1, 2, 3])).await?;
    let (a, b) = (&nodes[3], &nodes[4]);
    for i in 0..20 {
        let g = format!("g{i}");
        a.create_group(&g).await?;
        a.join_group(&g, b"a".to_vec()).await?;
        b.sync(std::time::Duration::from_secs(5)).await?;
        b.join_group(&g, b"b".to_vec()).await?;
        a.sync(std::time::Duration::from_secs(5)).await?;
        let seen: Vec<NodeId> = a.group_members(&g)?.into_iter().map(|m| m.0).collect();
        assert_eq!(seen, vec![NodeId(4), NodeId(5)], "round {i}");
        b.leave_group(&g).await?;
        a.sync(std::time::Duration::from_secs(5)).await?;
        assert_eq!(
            a.group_members(&g)?.len(),
            1,
            "round {i}: the leave is seen"
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// `sync` needs voters; `wait_joined` names the seeds it could not reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_voters_and_a_join_that_never_answers_say_why() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let alone = start(&ca, 1, &[], None).await;
    alone.wait_joined(std::time::Duration::from_secs(1)).await?;
    let err = alone
        .sync(std::time::Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, quorate::SyncError::Disabled), "{err}");
    // A seed that never answers: a bound UDP socket that reads nothing.
    let silent = std::net::UdpSocket::bind(loopback())?;
    let seed = silent.local_addr()?;
    let lost = start(&ca, 2, &[seed], None).await;
    let err = lost
        .wait_joined(std::time::Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&seed.to_string()), "{err}");
    assert!(matches!(err, quorate::JoinError::Timeout { .. }), "{err}");
    alone.shutdown().await;
    lost.shutdown().await;
    Ok(())
}
