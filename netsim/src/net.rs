//! The network model: per-link latency, loss, duplication and reordering, and
//! partitions (symmetric, one-way, or any set of cut links).
//!
//! Datagrams are subject to every fault; stream (reliable) messages are never lost to
//! random loss, but each loss costs a retransmission timeout, and a cut link loses them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;

/// Index of a simulated node (`0..nodes`).
pub type NodeIdx = u32;

/// How one directed link behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Smallest one-way latency.
    pub latency: Duration,
    /// Extra latency per message, drawn as `dist` says from `jitter` (reorders
    /// datagrams sent close together).
    pub jitter: Duration,
    /// How the extra latency is drawn.
    pub dist: Dist,
    /// Probability a datagram is lost (a stream message is retransmitted instead).
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by `reorder_delay` (arrives after later ones).
    pub reorder: f64,
    /// Extra delay of a reordered datagram.
    pub reorder_delay: Duration,
    /// Delay a stream message suffers per lost transmission (QUIC's probe timeout).
    pub rto: Duration,
}

impl Default for Link {
    /// A LAN: 0.2–1 ms one way, no faults, 30 ms retransmission timeout.
    fn default() -> Self {
        Link {
            latency: Duration::from_micros(200),
            jitter: Duration::from_micros(800),
            dist: Dist::Uniform,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            rto: Duration::from_millis(30),
        }
    }
}

/// How a link's extra latency over its smallest one is drawn from its `jitter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dist {
    /// Uniformly from `0..=jitter`.
    #[default]
    Uniform,
    /// None: every message takes the smallest latency.
    Fixed,
    /// Normally around `jitter / 2` (standard deviation `jitter / 6`), kept within
    /// `0..=jitter`.
    Normal,
    /// A long tail: Pareto (shape 2) with mean `jitter`, at most `50 * jitter`.
    LongTail,
}

impl Dist {
    /// Every distribution by its name in a scenario file.
    pub const NAMES: &[(&str, Dist)] = &[
        ("uniform", Dist::Uniform),
        ("fixed", Dist::Fixed),
        ("normal", Dist::Normal),
        ("long-tail", Dist::LongTail),
    ];

    /// Its name in a scenario file.
    pub fn name(self) -> &'static str {
        Dist::NAMES
            .iter()
            .find(|d| d.1 == self)
            .map_or("uniform", |d| d.0)
    }
}

impl Link {
    fn sample_latency(&self, rng: &mut SmallRng) -> u64 {
        let base = self.latency.as_nanos() as u64;
        let jitter = self.jitter.as_nanos() as u64;
        let extra = match self.dist {
            _ if jitter == 0 => 0,
            Dist::Uniform => rng.random_range(0..=jitter),
            Dist::Fixed => 0,
            Dist::Normal => {
                // Box-Muller.
                let (u, v) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                let j = jitter as f64;
                (j / 2.0 + z * j / 6.0).clamp(0.0, j) as u64
            }
            Dist::LongTail => {
                let u = 1.0 - rng.random::<f64>();
                let x = jitter as f64 * (u.powf(-0.5) - 1.0);
                x.min(jitter as f64 * 50.0) as u64
            }
        };
        base + extra
    }
}

/// A set of cut directed links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nodes in different groups cannot reach each other (both ways). `group[i]` is
    /// node `i`'s group.
    Groups(Vec<u16>),
    /// Nothing from a node in `from` reaches a node in `to` (the reverse still works).
    OneWay {
        /// Senders cut off (`from[i]` for node `i`).
        from: Vec<bool>,
        /// Receivers they cannot reach.
        to: Vec<bool>,
    },
    /// An explicit set of cut directed links `(from, to)`: any partial partition.
    Links(HashSet<(NodeIdx, NodeIdx)>),
}

impl Cut {
    /// Two sides: nodes `0..at` and `at..nodes`, cut both ways.
    pub fn halves(nodes: usize, at: usize) -> Cut {
        Cut::Groups((0..nodes).map(|i| u16::from(i >= at)).collect())
    }

    /// One node cut off from every other, both ways.
    pub fn isolate(nodes: usize, node: NodeIdx) -> Cut {
        Cut::Groups((0..nodes).map(|i| u16::from(i == node as usize)).collect())
    }

    /// Messages from nodes in `from` to nodes in `to` are lost; the reverse works.
    pub fn one_way(nodes: usize, from: &[NodeIdx], to: &[NodeIdx]) -> Cut {
        let mark = |set: &[NodeIdx]| {
            let mut v = vec![false; nodes];
            for &i in set {
                v[i as usize] = true;
            }
            v
        };
        Cut::OneWay {
            from: mark(from),
            to: mark(to),
        }
    }

    /// Whether this cut loses messages from `a` to `b`.
    pub fn blocks(&self, a: NodeIdx, b: NodeIdx) -> bool {
        let (a, b) = (a as usize, b as usize);
        match self {
            Cut::Groups(g) => g.get(a) != g.get(b),
            Cut::OneWay { from, to } => {
                from.get(a).copied().unwrap_or(false) && to.get(b).copied().unwrap_or(false)
            }
            Cut::Links(set) => set.contains(&(a as NodeIdx, b as NodeIdx)),
        }
    }
}

/// The whole network: a default link, per-link overrides and the cuts in force.
#[derive(Clone, Debug, Default)]
pub struct Net {
    /// How every link behaves unless overridden.
    pub default: Link,
    /// Per directed link `(from, to)` behaviour.
    pub overrides: HashMap<(NodeIdx, NodeIdx), Link>,
    /// Partitions in force.
    pub cuts: Vec<Cut>,
}

impl Net {
    /// The behaviour of the link `from → to`.
    pub fn link(&self, from: NodeIdx, to: NodeIdx) -> &Link {
        if self.overrides.is_empty() {
            return &self.default;
        }
        self.overrides.get(&(from, to)).unwrap_or(&self.default)
    }

    /// Whether some partition loses messages from `from` to `to`.
    pub fn is_cut(&self, from: NodeIdx, to: NodeIdx) -> bool {
        self.cuts.iter().any(|c| c.blocks(from, to))
    }

    /// Whether any partition is in force.
    pub fn partitioned(&self) -> bool {
        !self.cuts.is_empty()
    }

    /// Whether some link loses datagrams: loss set on the network itself rather than
    /// by an action (a lossy link of a scenario file) makes who can reach whom as much
    /// a matter of luck, and is a lasting fault for the checkers.
    pub fn lossy(&self) -> bool {
        self.lossy_besides(&[], &[])
    }

    /// Whether some link other than those from `from` to `to` loses datagrams.
    pub fn lossy_besides(&self, from: &[NodeIdx], to: &[NodeIdx]) -> bool {
        let set = |&(a, b): &(NodeIdx, NodeIdx)| from.contains(&a) && to.contains(&b);
        self.default.loss > 0.0 || self.overrides.iter().any(|(k, l)| l.loss > 0.0 && !set(k))
    }

    /// Sets the loss of the links from every node of `from` to every other of `to`.
    pub fn set_loss(&mut self, from: &[NodeIdx], to: &[NodeIdx], loss: f64) {
        for &a in from {
            for &b in to.iter().filter(|&&b| b != a) {
                let default = self.default.clone();
                self.overrides.entry((a, b)).or_insert(default).loss = loss;
            }
        }
    }

    /// Delivery delays (nanoseconds) for one message: none when it is lost, two when a
    /// datagram is duplicated.
    pub fn delays(
        &self,
        rng: &mut SmallRng,
        from: NodeIdx,
        to: NodeIdx,
        reliable: bool,
        out: &mut Vec<u64>,
    ) {
        out.clear();
        if self.is_cut(from, to) {
            return;
        }
        let link = self.link(from, to);
        if reliable {
            let mut d = link.sample_latency(rng);
            let mut tries = 0;
            while link.loss > 0.0 && rng.random::<f64>() < link.loss && tries < 32 {
                d += link.rto.as_nanos() as u64 * (1 << tries.min(4));
                tries += 1;
            }
            out.push(d);
            return;
        }
        if link.loss > 0.0 && rng.random::<f64>() < link.loss {
            return;
        }
        let copies = if link.duplicate > 0.0 && rng.random::<f64>() < link.duplicate {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut d = link.sample_latency(rng);
            if link.reorder > 0.0 && rng.random::<f64>() < link.reorder {
                d += link.reorder_delay.as_nanos() as u64;
            }
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn latency_distributions() {
        let mut rng = SmallRng::seed_from_u64(7);
        let ms = 1_000_000u64;
        let stats = |dist: Dist, rng: &mut SmallRng| {
            let link = Link {
                latency: Duration::from_millis(10),
                jitter: Duration::from_millis(20),
                dist,
                ..Link::default()
            };
            let v: Vec<u64> = (0..20_000)
                .map(|_| link.sample_latency(rng) - 10 * ms)
                .collect();
            let mean = v.iter().sum::<u64>() as f64 / v.len() as f64 / ms as f64;
            (mean, *v.iter().max().unwrap() as f64 / ms as f64)
        };
        let (mean, max) = stats(Dist::Fixed, &mut rng);
        assert_eq!((mean, max), (0.0, 0.0));
        let (mean, max) = stats(Dist::Uniform, &mut rng);
        assert!((mean - 10.0).abs() < 0.5 && max <= 20.0, "{mean} {max}");
        let (mean, max) = stats(Dist::Normal, &mut rng);
        assert!((mean - 10.0).abs() < 0.5 && max <= 20.0, "{mean} {max}");
        let (mean, max) = stats(Dist::LongTail, &mut rng);
        assert!(
            (mean - 20.0).abs() < 3.0 && max > 200.0 && max <= 1000.0,
            "{mean} {max}"
        );
    }

    #[test]
    fn cuts_block_the_right_directions() {
        let h = Cut::halves(4, 2);
        assert!(!h.blocks(0, 1) && !h.blocks(2, 3));
        assert!(h.blocks(0, 2) && h.blocks(3, 1));
        let o = Cut::one_way(4, &[0], &[1, 2]);
        assert!(o.blocks(0, 1) && o.blocks(0, 2));
        assert!(!o.blocks(1, 0) && !o.blocks(0, 3));
        let l = Cut::Links([(1, 3)].into_iter().collect());
        assert!(l.blocks(1, 3) && !l.blocks(3, 1));
        let i = Cut::isolate(3, 1);
        assert!(i.blocks(1, 0) && i.blocks(2, 1) && !i.blocks(0, 2));
    }

    #[test]
    fn reliable_survives_loss_but_not_cuts() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut net = Net::default();
        net.default.loss = 0.5;
        let mut out = Vec::new();
        let (mut lost, mut got) = (0, 0);
        for _ in 0..1000 {
            net.delays(&mut rng, 0, 1, true, &mut out);
            assert_eq!(out.len(), 1);
            net.delays(&mut rng, 0, 1, false, &mut out);
            if out.is_empty() {
                lost += 1
            } else {
                got += 1
            }
        }
        assert!(lost > 400 && got > 400, "{lost} {got}");
        net.cuts.push(Cut::halves(2, 1));
        net.delays(&mut rng, 0, 1, true, &mut out);
        assert!(out.is_empty());
    }
}
