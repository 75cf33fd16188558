//! The etcd3 lease election loop, on quorate.
//!
//! ```python
//! while True:
//!     is_leader, lease = leader_election(client, server_name)   # put-if-absent with a 5 s lease
//!     if is_leader: on_leadership_gained(lease)                  # refresh until it fails, then revoke
//!     else: wait_for_next_election(client)                       # watch the key's deletion
//! ```
//!
//! With quorate there is no key and no lease to refresh by hand: the campaign renews
//! the quorum lease every third of it and says when it is lost (before it can expire),
//! and resigning (the `lease.revoke()`) hands over in a few round trips. Followers
//! simply keep running. This program starts three servers in one process, lets the
//! first lead, then kills it: the next server takes over with a higher term.
//!
//! Run with `cargo run --example etcd_lease_election`.

mod common;

use std::time::Duration;

use quorate::Node;

const LEADER_KEY: &str = "/algoexpert/leader";

/// One server's loop: lead when elected, until the leadership is lost.
async fn server(node: &Node) -> common::Result<()> {
    let mut campaign = node.campaign(LEADER_KEY).await?;
    loop {
        println!("server{}: new leader election happening", node.id());
        // leader_election(): resolves when this server leads.
        let leadership = campaign.leadership().await?;
        println!(
            "server{}: I am the leader (term {})",
            node.id(),
            leadership.term()
        );
        // on_leadership_gained(): do leader work while the lease holds.
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let left = leadership
                        .deadline()
                        .saturating_duration_since(tokio::time::Instant::now().into_std());
                    println!("server{}: leading, lease renewed: {} ms left", node.id(), left.as_millis());
                }
                _ = leadership.lost() => {
                    println!("server{}: leadership lost", node.id());
                    break;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> common::Result<()> {
    let (_ca, mut nodes) = common::local_cluster(3).await?;
    let first = nodes.remove(0);
    let survivors: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), server(&n)).await;
                n
            })
        })
        .collect();
    // Server 1 leads for two seconds, then its process dies (no revoke, no goodbye).
    let _ = tokio::time::timeout(Duration::from_secs(2), server(&first)).await;
    println!("server1: killed");
    first.shutdown().await;
    for s in survivors {
        s.await?.leave().await?;
    }
    Ok(())
}
