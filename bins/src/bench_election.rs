//! `quorate bench-election`: failover and handover times of real nodes over QUIC on
//! loopback, repeated, as a table (median, p99, worst).
//!
//! One cluster of `--nodes` nodes in this process (each its own QUIC endpoint and
//! driver), voters 1..=3, every node running for one group. A crash trial stops the
//! leader without a word (no resignation, no leave) at a phase of its renewal cycle
//! (spread evenly over the trials) and times until another node is elected; the stopped
//! node then restarts with the same id and runs again. A handover trial has the leader
//! resign and times until the next node is elected.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use quorate::{ClusterCa, Config, ElectionEvent, Event, Node, NodeConfig, NodeId};
use tokio::sync::mpsc;

/// Arguments of `quorate bench-election`.
#[derive(Args, Debug)]
pub struct BenchElectionArgs {
    /// Trials of each kind (crash, handover).
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Cluster size (voters are nodes 1..=3).
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// Timing preset: lan, wan, local or edge (metered links).
    #[arg(long, default_value = "lan")]
    preset: String,
}

const GROUP: &str = "bench";

/// Who was elected, when (this process's clock), with which term.
type Elected = (NodeId, Instant, u64);

struct Bench {
    ca: ClusterCa,
    config: Config,
    nodes: Vec<Option<(Node, quorate::Campaign)>>,
    elected_tx: mpsc::UnboundedSender<Elected>,
    elected: mpsc::UnboundedReceiver<Elected>,
}

impl Bench {
    async fn start_node(&mut self, id: u64) -> Result<()> {
        let nid = NodeId(id);
        let mut cfg = NodeConfig::new(nid, "127.0.0.1:0".parse()?, self.ca.issue_node(nid)?);
        cfg.config = self.config.clone();
        // Join through running nodes (a restarted node's old address is gone).
        cfg.seeds = self
            .nodes
            .iter()
            .flatten()
            .map(|(n, _)| n.local_addr())
            .take(3)
            .collect();
        let node = Node::start(cfg).await?;
        let mut events = node.events();
        let tx = self.elected_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Event::Leadership(ElectionEvent::Elected { group, term, .. }) = e {
                    if group == GROUP {
                        let _ = tx.send((nid, Instant::now(), term));
                    }
                }
            }
        });
        let campaign = node.campaign(GROUP).await?;
        self.nodes[id as usize - 1] = Some((node, campaign));
        Ok(())
    }

    /// The node leading now, waiting up to 30 s for one.
    async fn leader(&mut self) -> Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some((_, c)) = n {
                    if c.is_leader() {
                        return Ok(i as u64 + 1);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no leader within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for an election of another node than `old`, after `since`.
    async fn next_elected(&mut self, old: u64, since: Instant) -> Result<Duration> {
        let limit = Duration::from_secs(30);
        loop {
            let (id, at, _) = tokio::time::timeout(limit, self.elected.recv())
                .await
                .context("no new leader within 30 s")?
                .context("event streams closed")?;
            if id.0 != old && at >= since {
                return Ok(at - since);
            }
        }
    }

    /// Trial `i` crashes the leader at phase `frac(i * golden ratio)` of a renewal
    /// interval: phases spread evenly over the cycle.
    async fn crash_trial(&mut self, i: usize) -> Result<Duration> {
        let old = self.leader().await?;
        let renew = self.config.election.timing.renew_interval;
        let phase = renew.mul_f64((i as f64 * 0.618_033_988_75).fract());
        tokio::time::sleep(phase).await;
        let (node, campaign) = self.nodes[old as usize - 1].take().context("leader gone")?;
        let t0 = Instant::now();
        node.shutdown().await; // a crash: no resignation, no leave
        drop(campaign); // the node is gone: dropping it sends nothing
        let took = self.next_elected(old, t0).await?;
        self.start_node(old).await?;
        Ok(took)
    }

    async fn handover_trial(&mut self) -> Result<Duration> {
        let old = self.leader().await?;
        // Let the restarted nodes settle so only the handover is timed.
        tokio::time::sleep(self.config.election.quarantine).await;
        while self.elected.try_recv().is_ok() {}
        let (node, campaign) = self.nodes[old as usize - 1].take().context("leader gone")?;
        let t0 = Instant::now();
        campaign.resign().await.context("resign")?;
        let took = self.next_elected(old, t0).await?;
        let campaign = node.campaign(GROUP).await?;
        self.nodes[old as usize - 1] = Some((node, campaign));
        Ok(took)
    }
}

/// Runs the trials and prints the table.
pub async fn run(a: BenchElectionArgs) -> Result<()> {
    if a.nodes < 3 {
        bail!("--nodes must be at least 3 (voters are nodes 1..=3)");
    }
    if a.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let mut config =
        crate::cluster::preset(&a.preset)?.with_voters(vec![NodeId(1), NodeId(2), NodeId(3)]);
    config.cluster_name = "bench".into();
    let (elected_tx, elected) = mpsc::unbounded_channel();
    let mut b = Bench {
        ca: ClusterCa::generate("bench")?,
        config,
        nodes: (0..a.nodes).map(|_| None).collect(),
        elected_tx,
        elected,
    };
    for id in 1..=a.nodes {
        b.start_node(id).await?;
    }
    let first = b.leader().await?;
    eprintln!(
        "node {first} leads; running {} crash and {} handover trials",
        a.trials, a.trials
    );
    let mut crash = Vec::new();
    let mut handover = Vec::new();
    for i in 0..a.trials {
        crash.push(
            b.crash_trial(i)
                .await
                .with_context(|| format!("crash trial {i}"))?,
        );
        handover.push(
            b.handover_trial()
                .await
                .with_context(|| format!("handover trial {i}"))?,
        );
    }
    let t = &b.config.election.timing;
    println!(
        "leader failover, real QUIC on 127.0.0.1: {} nodes, voters 1..=3, preset {} (lease {} ms, renew {} ms), {} trials each",
        a.nodes,
        a.preset,
        t.lease.as_millis(),
        t.renew_interval.as_millis(),
        a.trials
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "kind", "median_ms", "p99_ms", "max_ms", "min_ms"
    );
    for (kind, mut v) in [("crash", crash), ("handover", handover)] {
        v.sort_unstable();
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!(
            "{:<10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            kind,
            ms(q(0.5)),
            ms(q(0.99)),
            ms(v[v.len() - 1]),
            ms(v[0])
        );
    }
    for n in b.nodes.into_iter().flatten() {
        n.0.shutdown().await;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
