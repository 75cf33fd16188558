//! One simulated process: its engine (none while crashed), the faults applied to it
//! (pause, slowness, clock drift) and its own stream of network randomness.

use quorate::{Config, Engine};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::net::NodeIdx;

/// One simulated process.
#[derive(Debug)]
pub struct SimNode {
    pub(crate) engine: Option<Engine>,
    pub(crate) cfg: Config,
    pub(crate) paused_until: Option<u64>,
    /// Extra handling delay of each incoming message, `lo..=hi` nanoseconds.
    pub(crate) slow: Option<(u64, u64)>,
    pub(crate) drift_ppm: i64,
    pub(crate) anchor_t: u64,
    pub(crate) anchor_local: u64,
    /// Earlier clock segments `(anchor_t, anchor_local, drift_ppm)`, oldest first, to
    /// map any past or future local reading back to real time.
    clock_history: Vec<(u64, u64, i64)>,
    pub(crate) timer_at: Option<u64>,
    /// The network's random choices for what this node sends (loss, latency), and its
    /// handling delays when slow: one stream per node, so they do not depend on what
    /// other nodes did in between.
    pub(crate) rng: SmallRng,
    /// Messages queued by this node so far (their order at equal delivery times).
    pub(crate) queued: u64,
}

impl SimNode {
    /// A node running `engine` (none while crashed) with no fault applied.
    pub(crate) fn new(engine: Option<Engine>, cfg: Config, seed: u64) -> Self {
        SimNode {
            engine,
            cfg,
            paused_until: None,
            slow: None,
            drift_ppm: 0,
            anchor_t: 0,
            anchor_local: 0,
            clock_history: Vec::new(),
            timer_at: None,
            rng: SmallRng::seed_from_u64(seed),
            queued: 0,
        }
    }

    /// The tie of copy `copy` of the next message this node (`me`) queues.
    pub(crate) fn next_tie(&mut self, me: NodeIdx) -> impl Fn(bool) -> u64 {
        self.queued += 1;
        let count = self.queued;
        move |copy| crate::queue::frame_tie(me, count, copy)
    }

    /// Moves the clock to drift `ppm` from real time `now` on.
    pub(crate) fn set_drift(&mut self, now: u64, ppm: i64) {
        let seg = (self.anchor_t, self.anchor_local, self.drift_ppm);
        self.clock_history.push(seg);
        self.anchor_local = self.local(now);
        self.anchor_t = now;
        self.drift_ppm = ppm.clamp(-500_000, 500_000);
    }

    pub(crate) fn local(&self, t: u64) -> u64 {
        let dt = t.saturating_sub(self.anchor_t) as i128;
        let skew = dt * i128::from(self.drift_ppm) / 1_000_000;
        (i128::from(self.anchor_local) + dt + skew).max(0) as u64
    }

    /// Simulated real time at which the local clock reads `l` (never before `now`).
    pub(crate) fn global(&self, l: u64, now: u64) -> u64 {
        if l <= self.local(now) {
            return now;
        }
        let dl = (l - self.anchor_local) as i128;
        let rate = 1_000_000 + i128::from(self.drift_ppm);
        let mut t = self.anchor_t + ((dl * 1_000_000 + rate - 1) / rate) as u64;
        while self.local(t) < l {
            t += 1;
        }
        t.max(now)
    }

    /// Simulated real time at which the local clock read (or will read) `l`, over the
    /// whole history of drift changes: the current rate is assumed to go on.
    pub(crate) fn true_time(&self, l: u64) -> u64 {
        let segs = self.clock_history.iter().copied().chain(std::iter::once((
            self.anchor_t,
            self.anchor_local,
            self.drift_ppm,
        )));
        let (t0, l0, ppm) = segs.rev().find(|&(_, sl, _)| sl <= l).unwrap_or((0, 0, 0));
        let rate = 1_000_000 + i128::from(ppm);
        let dl = i128::from(l - l0);
        t0 + ((dl * 1_000_000 + rate - 1) / rate) as u64
    }

    /// The running engine (`None` while crashed).
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Whether the process is running (possibly paused or slow).
    pub fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    /// Whether the process is stalled.
    pub fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// Whether the process handles its messages late.
    pub fn is_slow(&self) -> bool {
        self.slow.is_some()
    }

    /// Up, neither stalled nor slow.
    pub fn is_healthy(&self) -> bool {
        self.is_up() && !self.is_paused() && !self.is_slow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drifting_clock_maps_deadlines_back() {
        let mut n = SimNode::new(None, Config::lan(), 1);
        assert_eq!(n.local(1_000), 1_000);
        n.anchor_local = n.local(1_000_000);
        n.anchor_t = 1_000_000;
        n.drift_ppm = 100_000; // 10% fast
        assert_eq!(n.local(2_000_000), 2_100_000);
        let t = n.global(2_100_000, 1_000_000);
        assert!(n.local(t) >= 2_100_000 && n.local(t - 1) < 2_100_000);
        assert_eq!(n.global(5, 1_500_000), 1_500_000);
    }
}
