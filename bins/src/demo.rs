//! `quorate demo`: a whole cluster in one process on loopback, with freshly made
//! certificates. It converges, a node crashes, another leaves; every step is timed.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{ClusterCa, Config, Event, MemberEvent, Node, NodeConfig, NodeId, State};
use tokio::sync::mpsc;

/// Arguments of `quorate demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=64))]
    nodes: u64,
    /// Timing preset: lan, wan or local.
    #[arg(long, default_value = "lan")]
    preset: String,
}

type Seen = (NodeId, Event, Instant);

/// Runs the demo; fails if any step does not happen within its deadline.
pub async fn run(a: DemoArgs) -> Result<()> {
    let cfg = crate::cluster::preset(&a.preset)?;
    println!(
        "quorate demo: {} nodes on 127.0.0.1, preset {:?}",
        a.nodes, a.preset
    );
    let ca = ClusterCa::generate(&cfg.cluster_name)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let started = Instant::now();
    let mut nodes: HashMap<NodeId, Node> = HashMap::new();
    let mut seed = None;
    for i in 1..=a.nodes {
        let node = start(&ca, NodeId(i), seed, &cfg, tx.clone()).await?;
        seed.get_or_insert(node.local_addr());
        nodes.insert(node.id(), node);
    }
    let n = a.nodes as usize;
    wait(&mut rx, Duration::from_secs(30), |_| {
        nodes.values().all(|node| live(node) == n)
    })
    .await
    .context("the cluster did not converge")?;
    let converged = started.elapsed();
    println!(
        "converged: every node sees {n} alive members after {}",
        ms(converged)
    );

    let victim = NodeId(a.nodes);
    println!("crashing node {victim} (no goodbye)...");
    let crash = depart(&mut rx, &mut nodes, victim, Exit::Crash).await?;
    println!(
        "crash detected: first node after {}, all {} nodes after {}",
        ms(crash.0),
        nodes.len(),
        ms(crash.1)
    );
    let leaver = NodeId(a.nodes - 1);
    println!("node {leaver} leaves gracefully...");
    let left = depart(&mut rx, &mut nodes, leaver, Exit::Leave).await?;
    println!(
        "departure seen: first node after {}, all after {}",
        ms(left.0),
        ms(left.1)
    );
    report(&nodes, converged, crash, left);
    for (_, node) in nodes {
        node.leave().await.ok();
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Exit {
    Crash,
    Leave,
}

/// Stops `who` (abruptly or gracefully) and times how long the others take to report it.
async fn depart(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    nodes: &mut HashMap<NodeId, Node>,
    who: NodeId,
    how: Exit,
) -> Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let node = nodes.remove(&who).context("no such running node")?;
    match how {
        Exit::Crash => node.shutdown().await,
        Exit::Leave => node.leave().await?,
    }
    let reported = |e: &MemberEvent| match (how, e) {
        (Exit::Crash, MemberEvent::Failed { id, .. })
        | (Exit::Leave, MemberEvent::Left { id, .. }) => *id == who,
        _ => false,
    };
    observe(rx, nodes, who, t0, reported)
        .await
        .with_context(|| format!("node {who}'s departure was not reported"))
}

async fn start(
    ca: &ClusterCa,
    id: NodeId,
    seed: Option<std::net::SocketAddr>,
    cfg: &Config,
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<Node> {
    let mut nc = NodeConfig::new(id, "127.0.0.1:0".parse()?, ca.issue_node(id)?);
    nc.seeds = seed.into_iter().collect();
    nc.config = cfg.clone();
    nc.metadata = format!("demo-node-{id}").into_bytes();
    let node = Node::start(nc).await?;
    let mut events = node.events();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if tx.send((id, e, Instant::now())).is_err() {
                break;
            }
        }
    });
    Ok(node)
}

fn live(node: &Node) -> usize {
    node.members()
        .iter()
        .filter(|m| m.state == State::Alive)
        .count()
}

/// Consumes events until `done` holds or the deadline passes.
async fn wait(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    limit: Duration,
    mut done: impl FnMut(Option<&Seen>) -> bool,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(None) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(seen)) => {
                if done(Some(&seen)) {
                    break;
                }
            }
            Ok(None) => bail!("event channel closed"),
            Err(_) => bail!("gave up after {}", ms(limit)),
        }
    }
    Ok(())
}

/// Times from `t0` until the first and the last remaining node report `pred`.
async fn observe(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    nodes: &HashMap<NodeId, Node>,
    about: NodeId,
    t0: Instant,
    pred: impl Fn(&MemberEvent) -> bool,
) -> Result<(Duration, Duration)> {
    let mut first = None;
    let mut last = Duration::ZERO;
    let mut pending: BTreeSet<NodeId> = nodes.keys().copied().collect();
    wait(rx, Duration::from_secs(30), |seen| {
        if let Some((who, Event::Member(e), at)) = seen {
            if pending.contains(who) && pred(e) {
                pending.remove(who);
                let d = at.saturating_duration_since(t0);
                first.get_or_insert(d);
                last = d;
                println!("  node {who} reports node {about}: {}", ms(d));
            }
        }
        pending.is_empty()
    })
    .await?;
    Ok((first.unwrap_or_default(), last))
}

fn report(
    nodes: &HashMap<NodeId, Node>,
    converged: Duration,
    crash: (Duration, Duration),
    left: (Duration, Duration),
) {
    println!();
    println!("{:<34} {:>10}", "measured", "time");
    println!(
        "{:<34} {:>10}",
        "convergence (start to full view)",
        ms(converged)
    );
    println!("{:<34} {:>10}", "crash detection, first node", ms(crash.0));
    println!("{:<34} {:>10}", "crash detection, all nodes", ms(crash.1));
    println!("{:<34} {:>10}", "graceful leave, first node", ms(left.0));
    println!("{:<34} {:>10}", "graceful leave, all nodes", ms(left.1));
    let bytes: u64 = nodes.values().map(|n| n.stats().bytes_out).sum();
    println!("{:<34} {:>10}", "bytes sent by survivors", bytes);
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
