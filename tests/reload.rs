//! `Node::reload_identity`: a renewed certificate is presented from then on, the node
//! stays a member, and an identity of another node is refused.

mod common;

use std::time::Duration;

use quorate::{ClusterCa, NodeId, ReloadError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_identity_is_used_for_new_handshakes() -> anyhow::Result<()> {
    let ca = ClusterCa::generate("test")?;
    let a = common::start(&ca, 1, &[], None).await;
    let err = a
        .reload_identity(ca.issue_node(NodeId(2))?)
        .await
        .unwrap_err();
    assert!(matches!(err, ReloadError::Mismatch { .. }), "{err}");
    a.reload_identity(ca.issue_node(NodeId(1))?).await?;
    // A node that joins afterwards handshakes with the renewed certificate.
    let b = common::start(&ca, 2, &[a.local_addr()], None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a.members().len() < 2 || b.members().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no convergence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
