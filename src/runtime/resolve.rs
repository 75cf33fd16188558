//! Seeds by name: resolved when the node starts and again while it needs them (it has
//! not joined, or has no live member left), so a seed host whose address changed, or
//! whose name did not resolve yet, is found without a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::driver::Command;
use super::shared::Snapshot;

/// Resolves `names` (`host:port`) to one address each: the first IPv4 address of a
/// name, else its first. Names that do not resolve are left out.
pub(crate) async fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                    out.push(*a);
                }
            }
            Err(error) => tracing::debug!(%name, %error, "seed name does not resolve"),
        }
    }
    out
}

/// Whether the node needs its seeds now: not joined, or alone.
fn needs_seeds(s: &Snapshot) -> bool {
    let live = s.members.iter().filter(|m| m.state.is_live()).count();
    !s.joined || live <= 1
}

/// Every `every`, while the node needs its seeds, resolves the names again (`lookup`)
/// and gives the driver the seeds (`fixed` ones and the names' addresses) when they
/// changed. Ends when the node stops.
pub(crate) async fn follow<F, Fut>(
    mut lookup: F,
    fixed: Vec<SocketAddr>,
    mut last: Vec<SocketAddr>,
    every: Duration,
    cmds: tokio::sync::mpsc::WeakUnboundedSender<Command>,
    mut snapshot: watch::Receiver<Arc<Snapshot>>,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<SocketAddr>>,
{
    loop {
        tokio::time::sleep(every).await;
        if snapshot.has_changed().is_err() {
            return;
        }
        if !needs_seeds(&snapshot.borrow_and_update()) {
            continue;
        }
        let now = lookup().await;
        if now == last {
            continue;
        }
        tracing::info!(?now, "seed names resolve to new addresses");
        let mut seeds = fixed.clone();
        seeds.extend(&now);
        let Some(tx) = cmds.upgrade() else {
            return;
        };
        if tx.send(Command::SetSeeds { seeds }).is_err() {
            return;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeId;

    fn snapshot(joined: bool) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            addr: "127.0.0.1:1".parse().unwrap(),
            incarnation: 0,
            members: Vec::new(),
            groups: Arc::default(),
            joined,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn names_are_resolved_again_while_unjoined_and_changes_reach_the_driver() {
        let a: SocketAddr = "10.0.0.1:7101".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:7101".parse().unwrap();
        let fixed: SocketAddr = "10.0.0.9:7101".parse().unwrap();
        // The name resolves to nothing, then to a, then (the host moved) to b.
        let answers = std::sync::Mutex::new(vec![vec![b], vec![a], vec![a], vec![]]);
        let lookups = std::sync::atomic::AtomicUsize::new(0);
        let lookup = || {
            lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let next = answers.lock().unwrap().pop().unwrap_or_default();
            async move { next }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (snap_tx, snap_rx) = watch::channel(snapshot(false));
        let every = Duration::from_secs(1);
        let follow = follow(lookup, vec![fixed], Vec::new(), every, tx.downgrade(), snap_rx);
        tokio::pin!(follow);
        let mut next_seeds = async || {
            tokio::select! {
                () = &mut follow => panic!("stopped"),
                cmd = rx.recv() => match cmd {
                    Some(Command::SetSeeds { seeds }) => seeds,
                    _ => panic!("another command"),
                },
                _ = tokio::time::sleep(every * 20) => panic!("no new seeds in 20 rounds"),
            }
        };
        assert_eq!(next_seeds().await, vec![fixed, a]);
        assert_eq!(next_seeds().await, vec![fixed, b], "an unchanged answer is not sent");
        // Joined, and not alone: no more lookups.
        let member = |id| crate::swim::Member {
            id: NodeId(id),
            addr: a,
            incarnation: 0,
            state: crate::wire::State::Alive,
            meta: Vec::new(),
            meta_digest: 0,
            since: std::time::Instant::now(),
        };
        let (me, other) = (member(1), member(2));
        let mut joined = (*snapshot(true)).clone();
        joined.members = vec![me, other];
        snap_tx.send(Arc::new(joined)).unwrap();
        let before = lookups.load(std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            () = &mut follow => panic!("stopped"),
            _ = tokio::time::sleep(every * 10) => {}
        }
        assert_eq!(lookups.load(std::sync::atomic::Ordering::Relaxed), before);
        drop(snap_tx);
        follow.await;
        drop(tx);
    }
}
