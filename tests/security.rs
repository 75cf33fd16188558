//! Mutual TLS under the cluster CA, over real QUIC on 127.0.0.1: foreign certificates
//! are refused at the handshake, frames claiming another sender are dropped, malformed
//! input is dropped without harm.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use quorate::wire::{self, Message, Update};
use quorate::{ClusterCa, NodeId, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_ca_is_refused_both_ways() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 2, None).await;
    wait_converged(&nodes).await?;

    // Same cluster name, same node-id scheme, but certificates from another CA.
    let rogue_ca = ClusterCa::generate("test")?;
    let rogue = start(&rogue_ca, 3, &[nodes[0].local_addr()], None).await;
    // A genuine node whose only seed is the rogue cannot join through it either.
    let lost = start(&ca, 4, &[rogue.local_addr()], None).await;

    wait_until(
        "the rogue's dials and the cluster's refusals add up",
        || {
            rogue.transport_stats().dials_failed >= 3
                && nodes[0].transport_stats().handshakes_refused >= 3
                && lost.transport_stats().dials_failed >= 3
                && rogue.transport_stats().handshakes_refused >= 3
        },
    )
    .await?;
    for n in &nodes {
        assert!(n.member(NodeId(3)).is_none(), "the rogue became a member");
        assert!(n.member(NodeId(4)).is_none());
    }
    assert_eq!(rogue.members().len(), 1, "the rogue learned the cluster");
    assert_eq!(lost.members().len(), 1);
    assert!(!rogue.members().is_empty() && rogue.stats().frames_in == 0);
    for n in nodes.into_iter().chain([rogue, lost]) {
        n.shutdown().await;
    }
    Ok(())
}

/// A node whose certificate expired cannot join: the cluster refuses it at the
/// handshake, and the node's join error says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_with_its_reason() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 2, None).await;
    wait_converged(&nodes).await?;
    let day = Duration::from_secs(24 * 3600);
    #[allow(clippy::disallowed_methods)] // the validity of a certificate is wall-clock time
    let now = std::time::SystemTime::now();
    let old = ca.with_validity_period(now - 10 * day, now - day);
    let cfg = node_config(&old, 3, &[nodes[0].local_addr()]);
    let late = quorate::Node::start(cfg).await?;
    let err = late.wait_joined(Duration::from_secs(3)).await.unwrap_err();
    let quorate::JoinError::Timeout { refused, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(refused.len(), 1, "{err}");
    assert!(refused[0].1.contains("expired"), "{err}");
    assert!(nodes[0].transport_stats().handshakes_refused >= 1);
    for n in &nodes {
        assert!(
            n.member(NodeId(3)).is_none(),
            "the expired node became a member"
        );
    }
    for n in nodes.into_iter().chain([late]) {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_claiming_another_sender_are_dropped() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 2, None).await;
    wait_converged(&nodes).await?;

    // A valid certificate for node 5, claiming to be node 2 and announcing its death.
    let (_endpoint, conn) = raw_connect(&ca, 5, &nodes[0]).await?;
    let lie = Message::Gossip {
        updates: vec![
            Update::Left {
                id: NodeId(2),
                incarnation: 1_000,
            },
            Update::Dead {
                id: NodeId(2),
                incarnation: 1_000,
                from: NodeId(2),
            },
        ],
    };
    let frame = wire::encode("test", NodeId(2), &lie, 1150)?;
    send_stream(&conn, &frame).await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while nodes[0].stats().impersonation < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "impostor frames never arrived"
        );
        conn.send_datagram(frame.clone().into())?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(&nodes[0], 2), Some(State::Alive));
    assert!(nodes[0].member(NodeId(5)).is_none());
    assert!(sees_alive(&nodes[0], &[1, 2]));
    assert!(sees_alive(&nodes[1], &[1, 2]));
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_dropped_without_harm() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster(&ca, 2, None).await;
    wait_converged(&nodes).await?;
    let (_endpoint, conn) = raw_connect(&ca, 9, &nodes[0]).await?;
    let garbage: Vec<u8> = (0..700u32).map(|i| (i * 7919 % 256) as u8).collect();

    // Frames that do not decode: as a datagram and on a stream.
    send_stream(&conn, &garbage).await?;
    // A frame of another cluster.
    let foreign = wire::encode(
        "other",
        NodeId(9),
        &Message::Gossip { updates: vec![] },
        1150,
    )?;
    send_stream(&conn, &foreign).await?;
    // A stream announcing a frame far over max_stream_bytes, and one cut mid-frame.
    send_raw_stream(&conn, &u32::MAX.to_be_bytes()).await?;
    let mut cut = 100u32.to_be_bytes().to_vec();
    cut.extend_from_slice(&[1, 2, 3]);
    send_raw_stream(&conn, &cut).await?;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (s, t) = (nodes[0].stats(), nodes[0].transport_stats());
        if s.malformed >= 2 && s.foreign >= 1 && t.malformed_streams >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every bad input was counted: {s:?} {t:?}"
        );
        conn.send_datagram(garbage.clone().into())?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing else changed: the node still works with its peer.
    assert!(nodes[0].member(NodeId(9)).is_none());
    wait_converged(&nodes).await?;
    let ping = Message::Gossip { updates: vec![] };
    send_stream(&conn, &wire::encode("test", NodeId(9), &ping, 1150)?).await?;
    let before = nodes[0].stats().frames_in;
    wait_until("a valid frame on the same connection is still read", || {
        nodes[0].stats().frames_in > before
    })
    .await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// A revocation list given to one member spreads to all: every member closes its
/// connections with the revoked node and refuses it at the handshake, so it is declared
/// failed, and it cannot come back with the same certificate. A list the cluster CA did
/// not sign changes nothing and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_is_expelled_everywhere_and_a_forged_list_is_ignored() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let first_cfg = node_config(&ca, 1, &[]);
    let first_id = first_cfg.identity.clone();
    let mut nodes = vec![quorate::Node::start(first_cfg).await?];
    let seed = [nodes[0].local_addr()];
    for id in 2..=3 {
        nodes.push(start(&ca, id, &seed, None).await);
    }
    let victim_cfg = node_config(&ca, 4, &seed);
    let victim_id = victim_cfg.identity.clone();
    let victim = quorate::Node::start(victim_cfg).await?;
    nodes.push(victim);
    wait_converged(&nodes).await?;
    let victim = nodes.pop().unwrap();

    // A forgery: another CA (same cluster name) "revokes" node 1.
    let rogue = ClusterCa::generate("test")?;
    let forged = rogue.revoke(&[first_id.serial()], 7)?;
    let err = nodes[1]
        .apply_revocation(forged.to_pem().as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err, quorate::RevocationError::NotSignedByCa);
    assert_eq!(nodes[1].transport_stats().revocations_refused, 1);

    let list = ca.revoke(&[victim_id.serial()], 1)?;
    let applied = nodes[1].apply_revocation(list.to_pem().as_bytes()).await?;
    assert!(applied.fresh && applied.number == 1);
    wait_until("every member has the list and holds node 4 failed", || {
        nodes.iter().all(|n| {
            n.transport_stats().revocations_applied == 1
                && n.member(NodeId(4)).map_or(true, |m| m.state == State::Dead)
        })
    })
    .await?;
    for n in &nodes {
        assert!(n.member(NodeId(1)).is_some_and(|m| m.state == State::Alive));
    }
    // Again, or an older list: nothing changes.
    let again = nodes[0].apply_revocation(list.der()).await?;
    assert!(!again.fresh && again.number == 1);
    victim.shutdown().await;

    // The revoked certificate cannot come back, and is told why.
    let mut cfg = node_config(&ca, 4, &seed);
    cfg.identity = victim_id;
    let back = quorate::Node::start(cfg).await?;
    let err = back.wait_joined(Duration::from_secs(3)).await.unwrap_err();
    let quorate::JoinError::Timeout { refused, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        refused.iter().any(|(_, why)| why.contains("revoked")),
        "{err}"
    );
    for n in nodes.into_iter().chain([back]) {
        n.shutdown().await;
    }
    Ok(())
}
