//! Partitions and lossy links through the fault-injecting socket, under the real QUIC
//! stack on 127.0.0.1.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use quorate::runtime::faults::Faults;
use quorate::{ClusterCa, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_is_detected_and_heals() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let faults = Faults::with_seed(7);
    let nodes = cluster(&ca, 4, Some(&faults)).await;
    wait_converged(&nodes).await?;
    let addrs: Vec<_> = nodes.iter().map(|n| n.local_addr()).collect();

    faults.partition(&addrs[..2], &addrs[2..]);
    wait_until("each side declares the other failed", || {
        let dead = |n: &quorate::Node, ids: [u64; 2]| {
            ids.iter().all(|id| state(n, *id) == Some(State::Dead))
        };
        dead(&nodes[0], [3, 4])
            && dead(&nodes[1], [3, 4])
            && dead(&nodes[2], [1, 2])
            && dead(&nodes[3], [1, 2])
    })
    .await?;
    // Each side still sees its own half alive.
    assert!(sees_alive(&nodes[0], &[1, 2]));
    assert!(sees_alive(&nodes[3], &[3, 4]));
    assert!(faults.dropped() > 0);

    faults.heal();
    wait_converged(&nodes).await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_slow_links_still_converge() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let faults = Faults::with_seed(11);
    faults.set_drop(0.05);
    faults.set_delay(Duration::from_millis(5));
    let nodes = cluster(&ca, 3, Some(&faults)).await;
    wait_converged(&nodes).await?;
    faults.clear();
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}
