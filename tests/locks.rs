//! Locks over real QUIC on 127.0.0.1: one holder at a time, rising fencing tokens,
//! typed timeouts, release by call, by drop, and by a crash of the holder.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use quorate::{CampaignError, ClusterCa, LockError, LockGuard, NodeId, LOCK_PREFIX};

/// Retries `try_acquire` until it succeeds (gossip may still name a holder that just
/// released the lock).
async fn take(lock: &quorate::Lock) -> Result<LockGuard> {
    within(&format!("lock {} taken", lock.name()), async {
        loop {
            if let Some(g) = lock.try_acquire().await? {
                return Ok::<_, LockError>(g);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?
    .map_err(Into::into)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_has_one_holder_and_passes_on_with_rising_tokens() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster_with(&ca, 3, &voter_config(&[1, 2, 3])).await?;
    let locks: Vec<_> = nodes.iter().map(|n| n.lock("res")).collect();
    let g1 = locks[0].acquire(DEADLINE).await?;
    assert!(g1.is_owner());
    assert_eq!(g1.name(), "res");
    let t1 = g1.fencing_token();
    let group = format!("{LOCK_PREFIX}res");
    wait_until("every node sees node 1 hold the lock", || {
        nodes
            .iter()
            .all(|n| n.leader(&group) == Some((NodeId(1), t1)))
    })
    .await?;
    assert_eq!(locks[2].holder(), Some((NodeId(1), t1)));

    // Held elsewhere: try_acquire says no at once, acquire times out with a typed error.
    assert!(locks[1].try_acquire().await?.is_none());
    let err = locks[1]
        .acquire(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LockError::Timeout { name, .. } if name == "res"),
        "{err}"
    );
    // Not reentrant: another handle of the holder's own node waits like anyone.
    let again = nodes[0].lock("res");
    assert!(again.try_acquire().await?.is_none(), "not reentrant");
    let err = again.acquire(Duration::from_millis(300)).await.unwrap_err();
    assert!(
        matches!(err, LockError::Timeout { .. }),
        "not reentrant: {err}"
    );

    // Node 2 waits; node 1 releases: node 2 takes it with a higher token.
    let waiter = {
        let lock = locks[1].clone();
        tokio::spawn(async move { lock.acquire(DEADLINE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiter.is_finished(),
        "node 2 waits while node 1 holds the lock"
    );
    g1.release().await?;
    let g2 = within("node 2 takes the lock", waiter).await???;
    assert!(g2.fencing_token() > t1);
    assert!(g2.is_owner());

    // Dropping the guard releases too: node 3 takes it.
    let t2 = g2.fencing_token();
    drop(g2);
    let g3 = take(&locks[2]).await?;
    let t3 = g3.fencing_token();
    assert!(t3 > t2);

    // Node 3 crashes holding it: the lock frees once its lease ran out.
    nodes.pop().unwrap().shutdown().await;
    assert!(!g3.is_owner(), "a stopped node owns nothing");
    within("the stopped holder's guard reports lost", g3.lost()).await?;
    let g1 = take(&locks[0]).await?;
    assert!(g1.fencing_token() > t3);
    drop(g1);
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// Whether a lock is free is the voters' to say: once a release returned, another
/// node's `try_acquire` takes the lock at once (gossip still names the old holder for a
/// while), and once a resignation returned no quorum names the resigned leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lock_is_free_at_once_and_a_resignation_is_confirmed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster_with(&ca, 4, &voter_config(&[1, 2, 3])).await?;
    let (a, b) = (nodes[2].lock("hot"), nodes[3].lock("hot"));
    let mut token = 0;
    for round in 0..20 {
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let g = first.acquire(DEADLINE).await?;
        assert!(g.fencing_token() > token, "round {round}: tokens rise");
        g.release().await?;
        let g = second.try_acquire().await?;
        let g = g.unwrap_or_else(|| panic!("round {round}: the released lock is free"));
        token = g.fencing_token();
        g.release().await?;
    }
    for round in 0..20 {
        let mut c = nodes[3].campaign("svc").await?;
        let lead = c.leadership().await?;
        lead.resign().await?;
        let now = nodes[0].confirmed_leader("svc").await?;
        assert!(
            now.map_or(true, |(id, _)| id != NodeId(4)),
            "round {round}: the resigned node is not confirmed: {now:?}"
        );
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_errors_are_typed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let plain = start(&ca, 1, &[], None).await;
    let err = plain.lock("x").try_acquire().await.unwrap_err();
    assert!(
        matches!(err, LockError::Refused(CampaignError::Disabled)),
        "{err}"
    );
    let node = start_with(&ca, 2, &[], &voter_config(&[2])).await;
    let long = "x".repeat(200);
    let err = node.lock(&long).acquire(DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, LockError::Refused(CampaignError::BadName)),
        "{err}"
    );
    let lock = node.lock("x");
    node.shutdown().await;
    assert!(matches!(lock.try_acquire().await, Err(LockError::Stopped)));
    plain.shutdown().await;
    Ok(())
}
