//! kazoo's `Election(...).run(func)`, on quorate.
//!
//! ```python
//! election = zk_client.Election('/test_zk/path_of_interest', 'test-election')
//! def leader_func():
//!     print('Election Completed...!')
//! election.run(leader_func)
//! ```
//!
//! `Node::run` waits for leadership, runs the function with the leadership, and
//! resigns when it returns, so the next contender takes over at once. Should the lease
//! be lost first (a partition, a stall), the function is cancelled before the lease
//! can expire and `run` returns `RunError::Lost`.
//!
//! Run with `cargo run --example kazoo_election`.

mod common;

use std::time::Duration;

#[tokio::main]
async fn main() -> common::Result<()> {
    let (_ca, nodes) = common::local_cluster(3).await?;
    let path = "/test_zk/path_of_interest";

    // Every node contends; each runs leader_func once it wins, one after the other.
    let mut tasks = Vec::new();
    for node in nodes {
        tasks.push(tokio::spawn(async move {
            let id = node.id();
            let out = node
                .run(path, |leadership| async move {
                    println!(
                        "node {id}: Election Completed...! (term {})",
                        leadership.term()
                    );
                    // Do leader work until done or until the lease is lost.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(300)) => "done",
                        _ = leadership.lost() => "lost the lease",
                    }
                })
                .await;
            println!("node {id}: leader_func returned: {out:?}");
            node
        }));
    }
    // Nodes 1..=3 are the voters: they stay until every contender has had its turn
    // (a cluster that lost a majority of its voters elects nobody).
    let mut nodes = Vec::new();
    for t in tasks {
        nodes.push(t.await?);
    }
    for node in nodes {
        node.leave().await?;
    }
    Ok(())
}
