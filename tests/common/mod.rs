//! Helpers shared by the integration tests: real nodes over QUIC on 127.0.0.1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use quorate::runtime::faults::Faults;
use quorate::{ClusterCa, Config, Member, Node, NodeConfig, NodeId, State};

/// Generous bound on every wait: tests assert behaviour, never speed.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `Config::local()` timings, cluster "test".
pub fn config() -> Config {
    let mut c = Config::local();
    c.cluster_name = "test".into();
    c
}

pub fn node_config(ca: &ClusterCa, id: u64, seeds: &[SocketAddr]) -> NodeConfig {
    let id = NodeId(id);
    let mut cfg = NodeConfig::new(id, loopback(), ca.issue_node(id).unwrap());
    cfg.config = config();
    cfg.seeds = seeds.to_vec();
    cfg
}

pub async fn start(ca: &ClusterCa, id: u64, seeds: &[SocketAddr], faults: Option<&Faults>) -> Node {
    let mut cfg = node_config(ca, id, seeds);
    cfg.faults = faults.cloned();
    Node::start(cfg).await.unwrap()
}

/// Starts nodes `1..=n`, every one seeded with node 1.
pub async fn cluster(ca: &ClusterCa, n: u64, faults: Option<&Faults>) -> Vec<Node> {
    let first = start(ca, 1, &[], faults).await;
    let seed = [first.local_addr()];
    let mut nodes = vec![first];
    for id in 2..=n {
        nodes.push(start(ca, id, &seed, faults).await);
    }
    nodes
}

/// Polls `cond` until it holds, failing after [`DEADLINE`] with `what`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = tokio::time::Instant::now();
    while !cond() {
        if start.elapsed() > DEADLINE {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

pub fn state(node: &Node, id: u64) -> Option<State> {
    node.member(NodeId(id)).map(|m| m.state)
}

/// Whether `node` sees exactly the ids `ids` alive (and nothing else live).
pub fn sees_alive(node: &Node, ids: &[u64]) -> bool {
    let members = node.members();
    let alive: Vec<u64> = sorted_ids(&members, |m| m.state == State::Alive);
    let live: Vec<u64> = sorted_ids(&members, |m| {
        matches!(m.state, State::Alive | State::Suspect)
    });
    let mut want = ids.to_vec();
    want.sort_unstable();
    alive == want && live == want
}

fn sorted_ids(members: &[Member], keep: impl Fn(&Member) -> bool) -> Vec<u64> {
    let mut ids: Vec<u64> = members.iter().filter(|m| keep(m)).map(|m| m.id.0).collect();
    ids.sort_unstable();
    ids
}

pub async fn wait_converged(nodes: &[Node]) -> Result<()> {
    let ids: Vec<u64> = nodes.iter().map(|n| n.id().0).collect();
    wait_until(&format!("{ids:?} all see each other alive"), || {
        nodes.iter().all(|n| sees_alive(n, &ids))
    })
    .await
}

/// Moves every buffered event of `stream` into `seen`.
pub fn drain(stream: &mut quorate::EventStream, seen: &mut Vec<quorate::Event>) {
    while let Some(e) = stream.try_recv() {
        seen.push(e);
    }
}

/// Waits until every stream in `streams` has delivered a membership event matching
/// `pred`; everything received is kept in `seen` (one list per stream).
pub async fn wait_for_event(
    what: &str,
    streams: &mut [quorate::EventStream],
    seen: &mut [Vec<quorate::Event>],
    pred: impl Fn(&quorate::MemberEvent) -> bool,
) -> Result<()> {
    wait_until(what, || {
        streams.iter_mut().zip(seen.iter_mut()).all(|(s, seen)| {
            drain(s, seen);
            has_event(seen, &pred)
        })
    })
    .await
}

/// Whether `seen` holds a membership event matching `pred`.
pub fn has_event(seen: &[quorate::Event], pred: impl Fn(&quorate::MemberEvent) -> bool) -> bool {
    seen.iter()
        .any(|e| matches!(e, quorate::Event::Member(m) if pred(m)))
}

/// A bare QUIC connection to `target` presenting node `as_id`'s certificate from `ca`:
/// what a tool, or an attacker holding a valid certificate, can do.
pub async fn raw_connect(
    ca: &ClusterCa,
    as_id: u64,
    target: &Node,
) -> Result<(quinn::Endpoint, quinn::Connection)> {
    let identity = ca.issue_node(NodeId(as_id))?;
    let mut endpoint = quinn::Endpoint::client(loopback())?;
    endpoint.set_default_client_config(quorate::runtime::client_config(&identity, &config())?);
    let name = quorate::identity::node_server_name(target.id());
    let conn = endpoint.connect(target.local_addr(), &name)?.await?;
    Ok((endpoint, conn))
}

/// Sends `frame` on a new unidirectional stream, as nodes do.
pub async fn send_stream(conn: &quinn::Connection, frame: &[u8]) -> Result<()> {
    let mut s = conn.open_uni().await?;
    quorate::runtime::write_frame(&mut s, frame).await?;
    s.finish()?;
    Ok(())
}

/// Sends raw bytes on a new unidirectional stream (no framing).
pub async fn send_raw_stream(conn: &quinn::Connection, bytes: &[u8]) -> Result<()> {
    let mut s = conn.open_uni().await?;
    s.write_all(bytes).await?;
    s.finish()?;
    Ok(())
}

/// [`config`] with elections on: `voters` vote.
pub fn voter_config(voters: &[u64]) -> Config {
    config().with_voters(voters.iter().map(|v| NodeId(*v)).collect())
}

/// Starts node `id` with protocol config `config`.
pub async fn start_with(ca: &ClusterCa, id: u64, seeds: &[SocketAddr], config: &Config) -> Node {
    let mut cfg = node_config(ca, id, seeds);
    cfg.config = config.clone();
    Node::start(cfg).await.unwrap()
}

/// Starts nodes `1..=n` with `config`, every one seeded with node 1, and waits until
/// they all see each other.
pub async fn cluster_with(ca: &ClusterCa, n: u64, config: &Config) -> Result<Vec<Node>> {
    let first = start_with(ca, 1, &[], config).await;
    let seed = [first.local_addr()];
    let mut nodes = vec![first];
    for id in 2..=n {
        nodes.push(start_with(ca, id, &seed, config).await);
    }
    wait_converged(&nodes).await?;
    Ok(nodes)
}

/// `fut`, failing after [`DEADLINE`] with `what`.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> Result<T> {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => Ok(v),
        Err(_) => bail!("timed out waiting until {what}"),
    }
}
