//! Leader election over real QUIC on 127.0.0.1: one leader that everyone agrees on,
//! failover after a crash with a higher term, fast handover on resignation and on
//! leave, quorum-confirmed answers from any node, leader change streams, typed errors.

// Leadership deadlines are std instants on the same monotonic clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::*;
use quorate::{
    Campaign, CampaignError, ClusterCa, Config, LeaderQueryError, Leadership, LeadershipError,
    Node, NodeId, QueryError, RunError, StartCampaignError, StartError,
};

/// Whether every node in `nodes` sees `leader` leading "g" at `term`.
fn all_agree(nodes: &[Node], leader: NodeId, term: u64) -> bool {
    nodes.iter().all(|n| n.leader("g") == Some((leader, term)))
}

/// Waits until one of `campaigns` leads; returns its index and leadership, after
/// checking that it is the only one.
async fn next_leader(what: &str, campaigns: &mut [Campaign]) -> Result<(usize, Leadership)> {
    wait_until(what, || campaigns.iter().any(Campaign::is_leader)).await?;
    let leading: Vec<usize> = (0..campaigns.len())
        .filter(|i| campaigns[*i].is_leader())
        .collect();
    assert_eq!(leading.len(), 1, "one leader at a time: {leading:?}");
    let lead = campaigns[leading[0]].leadership().await?;
    Ok((leading[0], lead))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_everyone_agrees_and_a_crash_fails_over_to_a_higher_term() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    // Voters 1-3; nodes 1-4 run; node 5 neither votes nor runs.
    let mut nodes = cluster_with(&ca, 5, &voter_config(&[1, 2, 3])).await?;
    let mut changes = nodes[4].leader_changes("g");
    // Node 1 runs alone first (so it is the one elected), then nodes 2-4 join the race.
    let mut campaigns = vec![nodes[0].campaign("g").await?];
    let first = within("node 1 is elected", campaigns[0].leadership()).await??;
    for n in &nodes[1..4] {
        campaigns.push(n.campaign("g").await?);
    }
    assert_eq!(first.group(), "g");
    assert!(first.is_valid());
    assert!(first.deadline() > Instant::now());
    let t1 = first.term();
    let one = NodeId(1);
    wait_until("every node sees node 1 lead", || all_agree(&nodes, one, t1)).await?;
    let leading: Vec<bool> = campaigns.iter().map(|c| c.is_leader()).collect();
    assert_eq!(leading, vec![true, false, false, false]);
    // A node that neither votes nor runs gets the quorum-confirmed answer.
    let confirmed = nodes[4].confirmed_leader("g").await?;
    assert_eq!(confirmed, Some((NodeId(1), t1)));
    // Every node knows the contenders (kazoo's `contenders()`), itself running or not.
    let running: Vec<NodeId> = (1..=4).map(NodeId).collect();
    wait_until("every node sees the four candidates", || {
        nodes.iter().all(|n| n.candidates("g") == running)
    })
    .await?;

    // Node 1 crashes (no leave): another takes over with a higher term.
    // No one else may lead before node 1's deadline (read last, just before it stops).
    let bound = first.deadline();
    let crashed = Instant::now();
    let old = nodes.remove(0);
    // (Its campaign handle is dropped only after the crash: dropping it would resign.)
    let held = campaigns.remove(0);
    old.shutdown().await;
    drop(held);
    within("the crashed node's leadership reports lost", first.lost()).await?;
    assert!(!first.is_valid());
    let (i, second) = next_leader("a survivor is elected", &mut campaigns).await?;
    let failover = crashed.elapsed();
    assert!(
        Instant::now() >= bound,
        "a new leader before the old lease ended"
    );
    let (next, t2) = (nodes[i].id(), second.term());
    assert!(t2 > t1, "terms rise: {t1} -> {t2}");
    wait_until("every survivor sees the new leader", || {
        all_agree(&nodes, next, t2)
    })
    .await?;
    assert_eq!(nodes[3].confirmed_leader("g").await?, Some((next, t2)));
    eprintln!("failover after a crash: node {next} elected {failover:?} after node 1 stopped");

    // Node 5 saw node 1, then the new leader (perhaps nobody in between), in order.
    let mut seen = Vec::new();
    while seen.last() != Some(&Some((next, t2))) {
        let c = within("node 5 sees the new leader", changes.recv()).await?;
        let c = c.unwrap();
        assert_eq!(c.group, "g");
        seen.push(c.leader.map(|l| (l, c.term)));
    }
    seen.retain(Option::is_some);
    assert_eq!(seen, vec![Some((one, t1)), Some((next, t2))]);
    assert_eq!(changes.lagged(), 0);
    drop(campaigns);
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// Local timings with a 3 s lease: a handover well within the lease can only come from
/// the resigning leader releasing its voters (their promises would otherwise hold the
/// others off for up to a lease after its last renewal).
fn long_lease() -> Config {
    let mut cfg = voter_config(&[1, 2, 3]);
    cfg.election.timing.lease = Duration::from_secs(3);
    cfg.election.timing.renew_interval = Duration::from_secs(1);
    cfg.election.quarantine = Duration::from_secs(3);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_or_leaving_hands_over_before_the_lease_could_run_out() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let cfg = long_lease();
    let lease = cfg.election.timing.lease;
    let mut nodes = cluster_with(&ca, 4, &cfg).await?;
    // One waiting candidate at a time, so who takes over is known: node 1 leads, node 2
    // waits. (Two candidates racing for a vacancy may split the voters, and the loser
    // then waits out the promise it was refused, released or not.)
    let mut c1 = nodes[0].campaign("g").await?;
    let first = within("node 1 is elected", c1.leadership()).await??;
    let mut c2 = nodes[1].campaign("g").await?;

    // Node 1 resigns its campaign: node 2 leads long before node 1's promises end.
    let start = Instant::now();
    c1.resign().await?;
    assert!(!first.is_valid());
    within("node 1's leadership reports lost", first.lost()).await?;
    let second = within("node 2 is elected", c2.leadership()).await??;
    let handover = start.elapsed();
    assert!(second.term() > first.term());
    assert!(
        handover < lease / 2,
        "resignation handover took {handover:?}"
    );
    eprintln!("handover on resign: {handover:?} (lease {lease:?})");

    // Node 3 waits; node 2 leaves the cluster: it releases its voters before it goes.
    let mut c3 = nodes[2].campaign("g").await?;
    let start = Instant::now();
    let leaver = nodes.remove(1);
    let leaving = tokio::spawn(leaver.leave());
    within("the leaver's leadership reports lost", second.lost()).await?;
    let third = within("node 3 is elected", c3.leadership()).await??;
    let handover = start.elapsed();
    within("the leaver is gone", leaving).await???;
    assert!(third.term() > second.term());
    assert!(handover < lease / 2, "leave handover took {handover:?}");
    eprintln!("handover on leave: {handover:?} (lease {lease:?})");
    assert!(matches!(
        c2.leadership().await,
        Err(LeadershipError::Stopped)
    ));

    // Resigning through the leadership ends the campaign; then nobody leads.
    third.resign().await?;
    let res = c3.leadership().await;
    assert!(matches!(res, Err(LeadershipError::Resigned(g)) if g == "g"));
    let none = within("a confirmed vacancy", async {
        loop {
            match nodes[0].confirmed_leader("g").await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) | Err(LeaderQueryError::Query(QueryError::NoQuorum)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await?;
    none?;
    wait_until("gossip shows no leader", || {
        nodes.iter().all(|n| n.leader("g").is_none())
    })
    .await?;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_campaign_resigns_and_errors_are_typed() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let nodes = cluster_with(&ca, 2, &voter_config(&[1])).await?;
    let mut c = nodes[1].campaign("g").await?;
    let lead = within("node 2 is elected", c.leadership()).await??;
    let err = nodes[1].campaign("g").await.unwrap_err();
    assert!(
        matches!(&err, StartCampaignError::Refused(CampaignError::AlreadyRunning(g)) if g == "g"),
        "{err}"
    );
    let err = nodes[1].campaign("").await.unwrap_err();
    assert!(
        matches!(err, StartCampaignError::Refused(CampaignError::BadName)),
        "{err}"
    );
    // Dropping the campaign resigns it; the node may run again at once.
    drop(c);
    within("the dropped campaign's leadership ends", lead.lost()).await?;
    let mut c = nodes[1].campaign("g").await?;
    let again = within("node 2 is elected again", c.leadership()).await??;
    assert!(again.term() > lead.term());
    drop(c);

    // Without voters, elections are off.
    let plain = start(&ca, 3, &[], None).await;
    let err = plain.campaign("g").await.unwrap_err();
    assert!(
        matches!(err, StartCampaignError::Refused(CampaignError::Disabled)),
        "{err}"
    );
    let err = plain.confirmed_leader("g").await.unwrap_err();
    assert!(
        matches!(err, LeaderQueryError::Query(QueryError::Disabled)),
        "{err}"
    );
    assert_eq!(plain.leader("g"), None);
    plain.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_executes_while_leading_and_is_cancelled_when_the_lease_is_lost() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let mut nodes = cluster_with(&ca, 4, &voter_config(&[1, 2, 3])).await?;
    let runner = nodes.pop().unwrap();
    let out = within(
        "the job ran",
        runner.run("job", |lead| async move {
            assert!(lead.is_valid());
            lead.term()
        }),
    )
    .await??;
    assert!(out >= 1);
    // It resigned when the job returned: nobody leads "job" any more.
    wait_until("gossip shows no leader of job", || {
        nodes.iter().all(|n| n.leader("job").is_none())
    })
    .await?;

    // A job that never ends is cancelled when the leadership is lost: two voters stop,
    // so the runner cannot renew.
    let mut started = runner.leader_changes("forever");
    let job = runner.run("forever", |_lead| std::future::pending::<()>());
    let stop_voters = async {
        let c = within("the runner leads", started.recv()).await?;
        assert_eq!(c.and_then(|c| c.leader), Some(runner.id()));
        for n in nodes.drain(1..) {
            n.shutdown().await;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (result, stopped) = within("the job is cancelled", async {
        tokio::join!(job, stop_voters)
    })
    .await?;
    stopped?;
    assert!(
        matches!(&result, Err(RunError::Lost { group, .. }) if group == "forever"),
        "{result:?}"
    );
    runner.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_voter_never_grants_a_term_it_granted_before() -> Result<()> {
    init_tracing();
    let ca = ClusterCa::generate("test")?;
    let dir = std::env::temp_dir().join(format!("quorate-voter-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = voter_config(&[1]);
    let voter_cfg = |seeds: &[std::net::SocketAddr]| {
        let mut c = node_config(&ca, 1, seeds);
        c.config = cfg.clone();
        c.data_dir = Some(dir.clone());
        c
    };
    let voter = Node::start(voter_cfg(&[])).await?;
    let candidate = start_with(&ca, 2, &[voter.local_addr()], &cfg).await;
    // A few leaderships, each resigned: the terms rise, and nobody leads at the end.
    let mut highest = 0;
    for _ in 0..3 {
        let mut c = candidate.campaign("g").await?;
        let lead = within("node 2 is elected", c.leadership()).await??;
        assert!(lead.term() > highest);
        highest = lead.term();
        c.resign().await?;
    }
    candidate.shutdown().await;
    voter.shutdown().await;

    // The voter restarts from its data directory; a new candidate knows no term at all.
    let voter = Node::start(voter_cfg(&[])).await?;
    let fresh = start_with(&ca, 3, &[voter.local_addr()], &cfg).await;
    let mut c = fresh.campaign("g").await?;
    let lead = within("node 3 is elected", c.leadership()).await??;
    assert!(
        lead.term() > highest,
        "term {} granted again after restart (had granted {highest})",
        lead.term()
    );
    drop(c);
    fresh.shutdown().await;
    voter.shutdown().await;

    // A corrupt record is a clear startup error.
    std::fs::write(dir.join("terms"), "not a terms file")?;
    let err = Node::start(voter_cfg(&[])).await.unwrap_err();
    assert!(
        matches!(&err, StartError::DataDir { path, .. } if path.ends_with("terms")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
