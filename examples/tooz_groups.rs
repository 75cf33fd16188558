//! tooz "Group membership" and "Watching group changes", on quorate.
//!
//! ```python
//! coordinator.create_group(group).get()
//! coordinator.join_group(group).get()
//! coordinator.watch_join_group(group, group_joined)
//! coordinator.get_groups(); coordinator.get_members(group); coordinator.leave_group(group)
//! ```
//!
//! Groups live in the gossiped cluster state: every node knows every group, a member
//! that fails leaves its groups by itself, and there is nothing to `run_watchers()`:
//! group events arrive on the node's event stream.
//!
//! Run with `cargo run --example tooz_groups`.

mod common;

use std::time::Duration;

use quorate::{Event, GroupEvent};

#[tokio::main]
async fn main() -> common::Result<()> {
    let (_ca, mut nodes) = common::local_cluster(3).await?;
    let host1 = &nodes[0];
    let group = "workers";

    // coordinator.create_group(group); coordinator.join_group(group)
    host1.create_group(group).await?;
    host1.join_group(group, b"role=scheduler".to_vec()).await?;

    // coordinator.watch_join_group / watch_leave_group: events on any node's stream.
    let mut watch = nodes[2].events();

    // Other members join with their capabilities once they have heard of the group.
    for n in &nodes[1..] {
        while !n.groups().iter().any(|g| g == group) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        n.join_group(group, format!("role=worker-{}", n.id()).into_bytes())
            .await?;
    }
    let mut joined = 0;
    while joined < 3 {
        match watch.recv().await {
            Some(Event::Group(GroupEvent::Joined {
                group,
                member,
                capabilities,
            })) => {
                println!(
                    "{group}: {member} joined ({})",
                    String::from_utf8_lossy(&capabilities)
                );
                joined += 1;
            }
            Some(_) => {}
            None => return Err("node stopped".into()),
        }
    }

    // coordinator.get_groups(); get_members(group); get_member_capabilities(group, member)
    println!("groups: {:?}", nodes[2].groups());
    while nodes[2].group_members(group)?.len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (member, caps) in nodes[2].group_members(group)? {
        println!("  member {member}: {}", String::from_utf8_lossy(&caps));
    }

    // Membership spreads by gossip: wait until node 1 has heard of every join.
    while nodes[0].group_members(group)?.len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A member that stops without a word leaves its groups once it is detected failed.
    let gone = nodes.pop().ok_or("no node")?;
    let gone_id = gone.id();
    gone.shutdown().await;
    let mut watch = nodes[0].events();
    loop {
        if let Some(Event::Group(GroupEvent::Left { group, member })) = watch.recv().await {
            println!("{group}: {member} left (it failed)");
            if member == gone_id {
                break;
            }
        }
    }

    // coordinator.leave_group(group); coordinator.delete_group(group) once empty.
    for n in &nodes {
        n.leave_group(group).await?;
    }
    while !nodes[0].group_members(group)?.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[0].delete_group(group).await?;
    println!("group deleted; groups now: {:?}", nodes[0].groups());
    for n in nodes {
        n.leave().await?;
    }
    Ok(())
}
