//! tooz "Leader election", on quorate.
//!
//! ```python
//! coordinator.create_group(group).get(); coordinator.join_group(group).get()
//! coordinator.watch_elected_as_leader(group, when_i_am_elected_leader)
//! coordinator.get_leader(group)          # from any member, even outside the group
//! coordinator.stand_down_group_leader(group)
//! ```
//!
//! Every node runs for the election; the lowest id leads. Each leadership carries a
//! term, a fencing token higher than every earlier one. Standing down hands over to
//! the next candidate within a few round trips.
//!
//! Run with `cargo run --example tooz_leader_election`.

mod common;

use quorate::{Event, LeaderChange};

#[tokio::main]
async fn main() -> common::Result<()> {
    let (_ca, nodes) = common::local_cluster(4).await?;
    let group = "scheduler";
    nodes[0].create_group(group).await?;

    // watch_elected_as_leader: run for the election on nodes 1..=3.
    let mut campaigns = Vec::new();
    for n in &nodes[..3] {
        campaigns.push(n.campaign(group).await?);
    }
    // when_i_am_elected_leader(event)
    let leadership = campaigns[0].leadership().await?;
    println!(
        "{} elected in {group} with term {}",
        nodes[0].id(),
        leadership.term()
    );

    // get_leader: node 4 is not a member and does not run; it still knows.
    let mut changes = nodes[3].leader_changes(group);
    while let Some(LeaderChange { leader, term, .. }) = changes.recv().await {
        println!("node 4 sees leader {leader:?} (term {term})");
        if leader == Some(nodes[0].id()) {
            break;
        }
    }
    let confirmed = nodes[3].confirmed_leader(group).await?;
    println!("node 4, confirmed by a quorum of voters: {confirmed:?}");

    // stand_down_group_leader: node 1 stops running; node 2 takes over.
    let first = campaigns.remove(0);
    let start = tokio::time::Instant::now();
    first.resign().await?;
    let next = campaigns[0].leadership().await?;
    println!(
        "node 1 stood down; {} leads with term {} after {:?}",
        nodes[1].id(),
        next.term(),
        start.elapsed()
    );
    let mut events = nodes[3].events();
    while let Some(e) = events.recv().await {
        if let Event::Leader(c) = e {
            if c.leader == Some(nodes[1].id()) {
                println!("node 4 sees the new leader: {:?}", c.leader);
                break;
            }
        }
    }
    for n in nodes {
        n.leave().await?;
    }
    Ok(())
}
