//! tooz "Creating a coordinator", on quorate.
//!
//! ```python
//! coordinator = coordination.get_coordinator('zake://', b'host-1')
//! coordinator.start(start_heart=True)
//! coordinator.stop()
//! ```
//!
//! A quorate node is the coordinator: it needs no server, only its certificate and
//! the address of one existing member (none for the first). There is no heartbeat to
//! call: failure detection runs inside the node.
//!
//! Run with `cargo run --example tooz_coordinator`.

mod common;

use quorate::{ClusterCa, Node, NodeConfig, NodeId};

#[tokio::main]
async fn main() -> common::Result<()> {
    let ca = ClusterCa::generate("examples")?;
    // get_coordinator(..., b'host-1'): the member id is the node id in its certificate.
    let id = NodeId(1);
    let mut cfg = NodeConfig::new(id, "127.0.0.1:0".parse()?, ca.issue_node(id)?);
    cfg.config = common::config();
    // coordinator.start(start_heart=True)
    let coordinator = Node::start(cfg).await?;
    println!(
        "node {} started at {} (members: {})",
        coordinator.id(),
        coordinator.local_addr(),
        coordinator.members().len()
    );
    // coordinator.stop(): leave announces the departure, so peers see "left", not "failed".
    coordinator.leave().await?;
    println!("node 1 left");
    Ok(())
}
