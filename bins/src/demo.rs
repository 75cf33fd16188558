//! `quorate demo`: a whole cluster in one process on loopback, with freshly made
//! certificates. It converges and elects a leader for a group; the leader crashes and
//! another takes over; the new leader resigns and hands over; a node leaves. Every
//! step is timed.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{
    Campaign, ClusterCa, Config, ElectionEvent, Event, MemberEvent, Node, NodeConfig, NodeId, State,
};
use tokio::sync::mpsc;

/// Arguments of `quorate demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=64))]
    nodes: u64,
    /// Timing preset: lan, wan, local or edge (metered links).
    #[arg(long, default_value = "lan")]
    preset: String,
}

/// The group every node runs for.
const GROUP: &str = "demo";

type Seen = (NodeId, Event, Instant);

/// The running nodes and their campaigns.
struct Cluster {
    nodes: HashMap<NodeId, Node>,
    campaigns: HashMap<NodeId, Campaign>,
}

/// A leadership as observed: who, which term, after how long since the trigger.
struct Elected {
    leader: NodeId,
    term: u64,
    at: Duration,
    /// Until every node named it as leader.
    all: Duration,
}

/// Runs the demo; fails if any step does not happen within its deadline.
pub async fn run(a: DemoArgs) -> Result<()> {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let cfg = crate::cluster::preset(&a.preset)?.with_voters(voters);
    println!(
        "quorate demo: {} nodes on 127.0.0.1, preset {:?}; voters 1 2 3, every node runs for group {GROUP:?}",
        a.nodes, a.preset
    );
    let ca = ClusterCa::generate(&cfg.cluster_name)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let started = Instant::now();
    let mut c = Cluster {
        nodes: HashMap::new(),
        campaigns: HashMap::new(),
    };
    let mut seed = None;
    for i in 1..=a.nodes {
        let node = start(&ca, NodeId(i), seed, &cfg, tx.clone()).await?;
        seed.get_or_insert(node.local_addr());
        let campaign = node.campaign(GROUP).await?;
        c.campaigns.insert(node.id(), campaign);
        c.nodes.insert(node.id(), node);
    }
    let n = a.nodes as usize;
    // The election runs while the cluster converges: follow it from the start.
    let mut election = Tracker::new(&c.nodes, None, started);
    wait(&mut rx, Duration::from_secs(30), |seen| {
        if let Some(seen) = seen {
            election.see(seen);
        }
        c.nodes.values().all(|node| live(node) == n)
    })
    .await
    .context("the cluster did not converge")?;
    let converged = started.elapsed();
    println!(
        "converged: every node sees {n} alive members after {}",
        ms(converged)
    );
    let first = election
        .finish(&mut rx)
        .await
        .context("no leader was elected")?;
    println!(
        "node {} leads group {GROUP:?} with term {}: elected {} after start (voters grant nothing for a lease after they start), named by every node after {}",
        first.leader,
        first.term,
        ms(first.at),
        ms(first.all)
    );

    let victim = first.leader;
    println!("crashing node {victim}, the leader (no goodbye)...");
    let t0 = Instant::now();
    c.campaigns.remove(&victim);
    c.nodes
        .remove(&victim)
        .context("the leader is not running")?
        .shutdown()
        .await;
    let (crash, failover) = crash_observed(&mut rx, &c.nodes, victim, first.term, t0)
        .await
        .with_context(|| format!("node {victim}'s crash was not handled"))?;
    println!(
        "crash detected: first node after {}, all {} nodes after {}",
        ms(crash.0),
        c.nodes.len(),
        ms(crash.1)
    );
    println!(
        "failover: node {} leads with term {}, {} after the crash (named by every node after {})",
        failover.leader,
        failover.term,
        ms(failover.at),
        ms(failover.all)
    );

    // Once the new leader renewed its lease, every other candidate has asked and been
    // turned away, so the voters will tell them all when the group is free again.
    let resigner = failover.leader;
    wait(&mut rx, Duration::from_secs(30), |seen| {
        matches!(seen, Some((who, Event::Leadership(ElectionEvent::Renewed { group, .. }), _))
            if *who == resigner && group == GROUP)
    })
    .await
    .with_context(|| format!("node {resigner} did not renew its lease"))?;
    println!("node {resigner} renewed its lease, and now resigns the leadership (graceful)...");
    let campaign = c
        .campaigns
        .remove(&resigner)
        .context("the leader runs no campaign")?;
    let t0 = Instant::now();
    campaign.resign().await.context("resign")?;
    let handover = elected(&mut rx, &c.nodes, Some((resigner, failover.term)), t0)
        .await
        .context("nobody took over after the resignation")?;
    println!(
        "handover: node {} leads with term {}, {} after the resignation (named by every node after {})",
        handover.leader,
        handover.term,
        ms(handover.at),
        ms(handover.all)
    );

    let leaver = *c
        .nodes
        .keys()
        .filter(|id| **id != handover.leader)
        .max()
        .context("no node to leave")?;
    println!("node {leaver} leaves gracefully...");
    let t0 = Instant::now();
    c.campaigns.remove(&leaver);
    let leaving = c.nodes.remove(&leaver).context("no such running node")?;
    // It lingers a while to spread the news; the others hear it meanwhile.
    let mut stops = vec![tokio::spawn(leaving.leave())];
    let left = observe(
        &mut rx,
        &c.nodes,
        t0,
        |_, e| matches!(e, Event::Member(MemberEvent::Left { id, .. }) if *id == leaver),
    )
    .await
    .with_context(|| format!("node {leaver}'s departure was not reported"))?;
    println!(
        "departure seen: first node after {}, all after {}",
        ms(left.0),
        ms(left.1)
    );
    report(
        &c.nodes, converged, &first, crash, &failover, &handover, left,
    );
    drop(c.campaigns);
    stops.extend(c.nodes.into_values().map(|node| tokio::spawn(node.leave())));
    for stop in stops {
        stop.await?.context("a node failed to leave")?;
    }
    Ok(())
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

/// Times from `t0` until the first and the last running node report `pred`.
async fn observe(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    nodes: &HashMap<NodeId, Node>,
    t0: Instant,
    pred: impl Fn(NodeId, &Event) -> bool,
) -> Result<(Duration, Duration)> {
    let mut first = None;
    let mut last = Duration::ZERO;
    let mut pending: BTreeSet<NodeId> = nodes.keys().copied().collect();
    wait(rx, Duration::from_secs(30), |seen| {
        if let Some((who, e, at)) = seen {
            if *at >= t0 && pending.contains(who) && pred(*who, e) {
                pending.remove(who);
                let d = at.saturating_duration_since(t0);
                first.get_or_insert(d);
                last = d;
            }
        }
        pending.is_empty()
    })
    .await?;
    Ok((first.unwrap_or_default(), last))
}

/// Waits from `t0` for a node to be elected (not `after.0`, with a term above
/// `after.1`) and for every running node to name it as leader.
async fn elected(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    nodes: &HashMap<NodeId, Node>,
    after: Option<(NodeId, u64)>,
    t0: Instant,
) -> Result<Elected> {
    Tracker::new(nodes, after, t0).finish(rx).await
}

/// Follows one election: the new leader's own `Elected`, then every node naming it.
struct Tracker {
    after: Option<(NodeId, u64)>,
    t0: Instant,
    won: Option<(NodeId, u64, Duration)>,
    /// Each node's latest named leader and when it named it.
    named: HashMap<NodeId, Option<(NodeId, u64, Duration)>>,
}

impl Tracker {
    fn new(nodes: &HashMap<NodeId, Node>, after: Option<(NodeId, u64)>, t0: Instant) -> Self {
        let named = nodes.keys().map(|id| (*id, None)).collect();
        Tracker {
            after,
            t0,
            won: None,
            named,
        }
    }

    fn fresh(&self, leader: NodeId, term: u64) -> bool {
        match self.after {
            Some((old, old_term)) => leader != old && term > old_term,
            None => true,
        }
    }

    fn see(&mut self, (who, e, at): &Seen) {
        let d = at.saturating_duration_since(self.t0);
        match e {
            Event::Leadership(ElectionEvent::Elected { group, term, .. })
                if group == GROUP && self.won.is_none() && self.fresh(*who, *term) =>
            {
                self.won = Some((*who, *term, d));
            }
            Event::Leader(change) if change.group == GROUP => {
                if let Some(slot) = self.named.get_mut(who) {
                    *slot = change.leader.map(|l| (l, change.term, d));
                }
            }
            _ => {}
        }
    }

    fn done(&self) -> bool {
        let Some((leader, term, _)) = self.won else {
            return false;
        };
        self.named
            .values()
            .all(|n| n.is_some_and(|(l, t, _)| l == leader && t == term))
    }

    /// Consumes events until the election is done.
    async fn finish(mut self, rx: &mut mpsc::UnboundedReceiver<Seen>) -> Result<Elected> {
        wait(rx, Duration::from_secs(30), |seen| {
            if let Some(seen) = seen {
                self.see(seen);
            }
            self.done()
        })
        .await?;
        self.result().context("no leader")
    }

    fn result(&self) -> Option<Elected> {
        let (leader, term, at) = self.won?;
        let all = self.named.values().flatten().map(|n| n.2).max()?;
        Some(Elected {
            leader,
            term,
            at,
            all: all.max(at),
        })
    }
}

/// After the leader `victim` crashed at `t0`: crash detection (first and all nodes)
/// and the failover to a new leader.
async fn crash_observed(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    nodes: &HashMap<NodeId, Node>,
    victim: NodeId,
    term: u64,
    t0: Instant,
) -> Result<((Duration, Duration), Elected)> {
    let mut tracker = Tracker::new(nodes, Some((victim, term)), t0);
    let mut pending: BTreeSet<NodeId> = nodes.keys().copied().collect();
    let (mut first, mut last) = (None, Duration::ZERO);
    wait(rx, Duration::from_secs(30), |seen| {
        if let Some(seen) = seen {
            tracker.see(seen);
            let (who, e, at) = seen;
            if matches!(e, Event::Member(MemberEvent::Failed { id, .. }) if *id == victim)
                && pending.remove(who)
            {
                let d = at.saturating_duration_since(t0);
                first.get_or_insert(d);
                last = d;
            }
        }
        pending.is_empty() && tracker.done()
    })
    .await?;
    let failover = tracker.result().context("no new leader")?;
    Ok(((first.unwrap_or_default(), last), failover))
}

fn report(
    nodes: &HashMap<NodeId, Node>,
    converged: Duration,
    first: &Elected,
    crash: (Duration, Duration),
    failover: &Elected,
    handover: &Elected,
    left: (Duration, Duration),
) {
    println!();
    println!("{:<40} {:>10}", "measured", "time");
    let row = |what: &str, d: Duration| println!("{what:<40} {:>10}", ms(d));
    row("convergence (start to full view)", converged);
    row("first leader elected (from start)", first.at);
    row("crash detection, first node", crash.0);
    row("crash detection, all nodes", crash.1);
    row("crash failover, new leader elected", failover.at);
    row("crash failover, every node names it", failover.all);
    row("graceful handover, new leader elected", handover.at);
    row("graceful handover, every node names it", handover.all);
    row("graceful leave, first node", left.0);
    row("graceful leave, all nodes", left.1);
    let bytes: u64 = nodes.values().map(|n| n.stats().bytes_out).sum();
    println!("{:<40} {:>10}", "bytes sent by survivors", bytes);
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
