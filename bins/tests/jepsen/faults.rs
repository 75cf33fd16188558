//! The faults, drawn from a seeded generator. Each one is applied, held a random time
//! and healed before the next.

use std::time::Duration;

use anyhow::Result;

use crate::cluster::{Cluster, NODES};

/// The lan preset's lease.
pub const LEASE: Duration = Duration::from_millis(900);

/// SplitMix64: small, seedable, the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A duration uniform in `lo..=hi` ms.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9` a node, restart it (same id, same data directory).
    Kill,
    /// `kill -9` three nodes (a majority of the voters, the leader among them when
    /// there is one) at once, restart them together.
    KillMajority,
    /// SIGSTOP a node, SIGCONT it after longer than the lease.
    Pause,
    /// One or two nodes cut from the rest, both ways.
    Partition,
    /// One or two nodes whose packets to the rest are dropped (the rest still reach them).
    OneWay,
    /// The current leader cut from every other node.
    IsolateLeader,
    /// A second process with the same id and certificate, both running a while.
    Duplicate,
    /// SIGSTOP a node, start its duplicate, SIGCONT the original after the lease.
    StalledReplaced,
    /// A node restarted under libfaketime at a clock rate within the drift bound,
    /// while the leader is paused so that an election runs with it.
    ClockDrift,
}

pub const ALL: [Fault; 9] = [
    Fault::Kill,
    Fault::KillMajority,
    Fault::Pause,
    Fault::Partition,
    Fault::OneWay,
    Fault::IsolateLeader,
    Fault::Duplicate,
    Fault::StalledReplaced,
    Fault::ClockDrift,
];

/// `n` faults: rounds of every kind, each round in a random order.
pub fn schedule(rng: &mut Rng, n: usize) -> Vec<Fault> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut round = ALL;
        rng.shuffle(&mut round);
        out.extend(round.iter().take(n - out.len()));
    }
    out
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// The current leader's id (an original process, not a duplicate).
fn leader_id(c: &Cluster) -> Option<u64> {
    c.leader()
        .filter(|s| !c.instances[*s].duplicate)
        .map(|s| c.instances[s].id)
}

/// The leader most of the time, else any node.
fn target(c: &Cluster, rng: &mut Rng) -> u64 {
    match leader_id(c) {
        Some(id) if rng.chance(0.6) => id,
        _ => 1 + rng.below(NODES),
    }
}

/// One or two distinct node ids, `with` among them when given.
fn minority(rng: &mut Rng, with: Option<u64>) -> Vec<usize> {
    let mut ids: Vec<usize> = (1..=NODES as usize).collect();
    rng.shuffle(&mut ids);
    if let Some(w) = with {
        let at = ids.iter().position(|i| *i == w as usize).unwrap();
        ids.swap(0, at);
    }
    ids.truncate(1 + rng.below(2) as usize);
    ids.sort();
    ids
}

/// Three distinct node ids, `with` among them when given.
fn majority(rng: &mut Rng, with: Option<u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = (1..=NODES).collect();
    rng.shuffle(&mut ids);
    if let Some(w) = with {
        let at = ids.iter().position(|i| *i == w).unwrap();
        ids.swap(0, at);
    }
    ids.truncate(NODES as usize / 2 + 1);
    ids
}

fn rest(of: &[usize]) -> Vec<usize> {
    (1..=NODES as usize).filter(|k| !of.contains(k)).collect()
}

/// Applies fault `f`, holds it and heals it.
pub fn apply(c: &mut Cluster, rng: &mut Rng, f: Fault) -> Result<()> {
    match f {
        Fault::Kill => {
            let id = target(c, rng);
            c.kill(c.current[&id])?;
            sleep(rng.ms(200, 2500));
            c.spawn(id, false, 1.0)?;
        }
        Fault::KillMajority => {
            let ids = majority(rng, leader_id(c));
            for id in &ids {
                c.kill(c.current[id])?;
            }
            sleep(rng.ms(200, 2500));
            for id in ids {
                c.spawn(id, false, 1.0)?;
            }
        }
        Fault::Pause => {
            let s = c.current[&target(c, rng)];
            c.pause(s, true)?;
            sleep(LEASE + rng.ms(200, 2000));
            c.pause(s, false)?;
        }
        Fault::Partition | Fault::IsolateLeader | Fault::OneWay => partition(c, rng, f)?,
        Fault::Duplicate => {
            let dup = c.spawn(target(c, rng), true, 1.0)?;
            sleep(rng.ms(2000, 5000));
            c.kill(dup)?;
        }
        Fault::StalledReplaced => {
            let id = target(c, rng);
            let original = c.current[&id];
            c.pause(original, true)?;
            let dup = c.spawn(id, true, 1.0)?;
            sleep(LEASE + rng.ms(200, 1500));
            c.pause(original, false)?;
            sleep(rng.ms(1000, 3000));
            c.kill(dup)?;
        }
        Fault::ClockDrift => clock_drift(c, rng)?,
    }
    Ok(())
}

/// Cuts links with nftables, holds, heals: `f` is `Partition` (one or two nodes from
/// the rest, both ways), `IsolateLeader` (the leader from the rest, both ways) or
/// `OneWay` (one or two nodes, often with the leader, cannot send to the rest).
fn partition(c: &mut Cluster, rng: &mut Rng, f: Fault) -> Result<()> {
    let lead = leader_id(c);
    let a = match f {
        Fault::IsolateLeader => vec![lead.unwrap_or(1 + rng.below(NODES)) as usize],
        Fault::OneWay => {
            let with = lead.filter(|_| rng.chance(0.5));
            minority(rng, with)
        }
        _ => minority(rng, None),
    };
    let b = rest(&a);
    if f == Fault::OneWay {
        c.note(format!("one-way: {a:?} cannot send to {b:?}"));
        for k in &a {
            c.net.block(*k, &[], &b)?;
        }
    } else {
        c.note(format!("partition {a:?} | {b:?}"));
        for k in &a {
            c.net.block(*k, &b, &b)?;
        }
        for k in &b {
            c.net.block(*k, &a, &a)?;
        }
    }
    sleep(rng.ms(1000, 4000));
    c.net.heal()?;
    c.note("heal");
    Ok(())
}

/// Restarts a node under libfaketime (rate 1 ± 0.5 %, inside the lan preset's 1 %
/// bound), pauses the leader past its lease so that an election runs with the drifted
/// node (usually the lowest-id candidate left, so it often wins), then restarts it on
/// the real clock.
fn clock_drift(c: &mut Cluster, rng: &mut Rng) -> Result<()> {
    let lead = leader_id(c);
    let others: Vec<u64> = (1..=NODES).filter(|k| Some(*k) != lead).collect();
    let id = if rng.chance(0.7) {
        others[0]
    } else {
        others[rng.below(others.len() as u64) as usize]
    };
    let rate = if rng.chance(0.5) { 1.005 } else { 0.995 };
    c.kill(c.current[&id])?;
    let drifted = c.spawn(id, false, rate)?;
    sleep(rng.ms(800, 1500));
    if let Some(l) = lead.map(|l| c.current[&l]) {
        c.pause(l, true)?;
        sleep(LEASE + rng.ms(300, 1200));
        c.pause(l, false)?;
    }
    sleep(rng.ms(2000, 4000));
    c.kill(drifted)?;
    c.spawn(id, false, 1.0)?;
    Ok(())
}

/// Quiet time after a fault: until a leader is back (or 20 s), then a little more.
pub fn quiet(c: &mut Cluster, rng: &mut Rng) {
    if c.wait_leader(Duration::from_secs(20)).is_none() {
        c.note("no leader 20 s after healing");
    }
    sleep(rng.ms(500, 1500));
}
