//! The discrete-event core: virtual time, one seeded RNG, the event queue (the `queue`
//! module), and the nodes, each a real [`quorate::Engine`] driven exactly as
//! the runtime drives it.
//!
//! Time is kept in nanoseconds since the simulation's start. Each node has its own
//! clock (a rate drift in parts per million); the engine sees `base + local time`, and
//! its deadlines are mapped back to simulated real time.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use quorate::wire::{MemberRecord, Message, State};
use quorate::{Config, ConfigError, Engine, Event, MemberEvent, NodeId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::net::{Net, NodeIdx};
use crate::queue::{Delivery, Ev, Queue};
use crate::trace::{hash_bytes, Trace};
use crate::views::Views;

/// The id of simulated node `idx`.
pub fn node_id(idx: NodeIdx) -> NodeId {
    NodeId(u64::from(idx) + 1)
}

/// The node index of `id`, when it is a simulated node's.
pub fn node_idx(id: NodeId, nodes: usize) -> Option<NodeIdx> {
    let i = id.0.checked_sub(1)?;
    (i < nodes as u64).then_some(i as NodeIdx)
}

/// The synthetic address of simulated node `idx`: `127.a.b.c:7000`.
pub fn node_addr(idx: NodeIdx) -> SocketAddr {
    let i = idx + 1;
    let ip = Ipv4Addr::new(127, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 7000))
}

/// `len` bytes of application metadata for node `idx`: its name, padded with dots.
pub fn node_meta(idx: NodeIdx, len: usize) -> Vec<u8> {
    let mut m = format!("node-{}", u64::from(idx) + 1).into_bytes();
    m.resize(len, b'.');
    m
}

fn addr_idx(addr: SocketAddr, nodes: usize) -> Option<NodeIdx> {
    let SocketAddr::V4(a) = addr else { return None };
    let o = a.ip().octets();
    if o[0] != 127 || a.port() != 7000 {
        return None;
    }
    let i = (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]);
    let idx = i.checked_sub(1)?;
    ((idx as usize) < nodes).then_some(idx)
}

/// An engine event as observed by the simulator.
#[derive(Clone, Debug)]
pub struct Record {
    /// When, since the simulation's start.
    pub at: Duration,
    /// The node that emitted it.
    pub node: NodeIdx,
    /// The event.
    pub event: Event,
}

/// Traffic counters of a whole simulation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams sent.
    pub datagrams: u64,
    /// Stream messages sent.
    pub streams: u64,
    /// Bytes sent (both kinds).
    pub bytes: u64,
    /// Messages lost (random loss, cuts, dead or restarted receivers).
    pub lost: u64,
    /// Messages handed to an engine.
    pub delivered: u64,
}

/// One simulated process.
#[derive(Debug)]
pub struct SimNode {
    engine: Option<Engine>,
    cfg: Config,
    /// Increases at every crash and restart; messages to an older epoch are lost.
    epoch: u32,
    paused_until: Option<u64>,
    /// Extra handling delay of each incoming message, `lo..=hi` nanoseconds.
    slow: Option<(u64, u64)>,
    drift_ppm: i64,
    anchor_t: u64,
    anchor_local: u64,
    /// Earlier clock segments `(anchor_t, anchor_local, drift_ppm)`, oldest first, to
    /// map any past or future local reading back to real time.
    clock_history: Vec<(u64, u64, i64)>,
    timer_at: Option<u64>,
}

impl SimNode {
    /// A node running `engine` (none while crashed) with no fault applied.
    fn new(engine: Option<Engine>, cfg: Config) -> Self {
        SimNode {
            engine,
            cfg,
            epoch: 0,
            paused_until: None,
            slow: None,
            drift_ppm: 0,
            anchor_t: 0,
            anchor_local: 0,
            clock_history: Vec::new(),
            timer_at: None,
        }
    }

    fn local(&self, t: u64) -> u64 {
        let dt = t.saturating_sub(self.anchor_t) as i128;
        let skew = dt * i128::from(self.drift_ppm) / 1_000_000;
        (i128::from(self.anchor_local) + dt + skew).max(0) as u64
    }

    /// Simulated real time at which the local clock reads `l` (never before `now`).
    fn global(&self, l: u64, now: u64) -> u64 {
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
    fn true_time(&self, l: u64) -> u64 {
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

/// The simulator. See the module documentation.
pub struct Sim {
    base: Instant,
    now: u64,
    rng: SmallRng,
    queue: Queue,
    nodes: Vec<SimNode>,
    /// The network model (change it between steps to partition, heal, add loss).
    pub net: Net,
    views: Views,
    trace: Trace,
    records: Vec<Record>,
    stats: NetStats,
    scratch: Vec<u64>,
    /// Bytes of application metadata every node publishes.
    meta_bytes: usize,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl Sim {
    /// `n` nodes running `cfg`, not yet joined, on network `net`; every random choice
    /// (the engines' seeds included) comes from `seed`.
    pub fn new(seed: u64, n: usize, cfg: &Config, net: Net) -> Result<Sim, ConfigError> {
        Sim::with_meta(seed, n, cfg, net, 0)
    }

    /// As [`Sim::new`], every node publishing `meta_bytes` bytes of application
    /// metadata (its name, padded), as real deployments do.
    pub fn with_meta(
        seed: u64,
        n: usize,
        cfg: &Config,
        net: Net,
        meta_bytes: usize,
    ) -> Result<Sim, ConfigError> {
        // The origin of every node's clock. Only durations since it are ever observed,
        // so its value never reaches the trace.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let mut sim = Sim {
            base,
            now: 0,
            rng: SmallRng::seed_from_u64(seed),
            queue: Queue::default(),
            nodes: Vec::with_capacity(n),
            net,
            views: Views::new(n),
            trace: Trace::default(),
            records: Vec::new(),
            stats: NetStats::default(),
            scratch: Vec::new(),
            meta_bytes,
        };
        for i in 0..n as NodeIdx {
            let engine_seed = sim.rng.random::<u64>();
            let engine = Engine::new(
                node_id(i),
                node_addr(i),
                node_meta(i, meta_bytes),
                cfg.clone(),
                engine_seed,
                sim.base,
            )?;
            sim.nodes.push(SimNode::new(Some(engine), cfg.clone()));
            sim.after(i);
        }
        Ok(sim)
    }

    /// Writes a line of text to the trace (when it is written out; never hashed).
    pub fn trace_line(&mut self, text: std::fmt::Arguments<'_>) {
        let now = self.now;
        self.trace.line(now, text);
    }

    /// Writes the trace as text to `out` as well as hashing it.
    pub fn set_trace_writer(&mut self, out: Box<dyn std::io::Write>) {
        self.trace = Trace::with_writer(out);
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    /// Number of nodes (up or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// One node.
    pub fn node(&self, i: NodeIdx) -> &SimNode {
        &self.nodes[i as usize]
    }

    /// Every node's view against the truth.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Mutable access to the trace (to flush its writer).
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Traffic counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// The simulation's RNG (for scenario choices that must replay with the seed).
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    /// Engine events since the last call.
    pub fn drain_records(&mut self) -> std::vec::Drain<'_, Record> {
        self.records.drain(..)
    }

    /// Whether an engine event is waiting in [`Sim::drain_records`].
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// Time of the next queued event.
    pub fn next_at(&self) -> Option<Duration> {
        self.queue.next_at().map(Duration::from_nanos)
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn instant(&self, i: NodeIdx) -> Instant {
        self.base + Duration::from_nanos(self.nodes[i as usize].local(self.now))
    }

    /// Node `i`'s clock reading now, as its engine sees it.
    pub fn local_now(&self, i: NodeIdx) -> Instant {
        self.instant(i)
    }

    /// The simulated real time at which node `i`'s clock reads `at` (an instant its
    /// engine reported, such as a lease deadline), across every drift change so far.
    pub fn true_time(&self, i: NodeIdx, at: Instant) -> Duration {
        let l = at.saturating_duration_since(self.base).as_nanos() as u64;
        Duration::from_nanos(self.nodes[i as usize].true_time(l))
    }

    fn note(&mut self, kind: u64, a: u64, b: u64, c: u64) {
        self.trace.fold(&[self.now, kind, a, b, c]);
    }

    /// Runs `f` on node `i`'s engine at the current time, then collects what it sent,
    /// what it reported and its next deadline. Nothing happens to a crashed node.
    pub fn with_engine(&mut self, i: NodeIdx, f: impl FnOnce(&mut Engine, Instant)) {
        let now = self.instant(i);
        if let Some(e) = self.nodes[i as usize].engine.as_mut() {
            f(e, now);
            self.after(i);
        }
    }

    /// Node `i` joins through the nodes `seeds`.
    pub fn join(&mut self, i: NodeIdx, seeds: &[NodeIdx]) {
        let addrs: Vec<SocketAddr> = seeds.iter().map(|&s| node_addr(s)).collect();
        self.note(1, u64::from(i), seeds.len() as u64, 0);
        self.with_engine(i, |e, now| e.join(now, &addrs));
    }

    /// The frames that make a formed cluster (see [`Sim::form_node`]): the answer a
    /// seed knowing every running node would give to a join, from node 0 and from
    /// node 1 (node 0's own seed).
    pub fn formation(&mut self) -> [Vec<u8>; 2] {
        let members: Vec<MemberRecord> = (0..self.nodes.len() as NodeIdx)
            .filter_map(|i| {
                let e = self.nodes[i as usize].engine.as_ref()?;
                let m = e.swim().member(node_id(i))?;
                Some(MemberRecord {
                    id: m.id,
                    addr: m.addr,
                    incarnation: m.incarnation,
                    state: State::Alive,
                    meta: m.meta,
                })
            })
            .collect();
        self.note(10, members.len() as u64, 0, 0);
        let msg = Message::PushPull {
            join: false,
            reply: true,
            members,
            shared: Vec::new(),
        };
        let cluster = &self.nodes[0].cfg.cluster_name;
        [0, 1].map(|s| {
            quorate::wire::encode(cluster, node_id(s), &msg, usize::MAX)
                .expect("a member table encodes")
        })
    }

    /// Node `i` learns the whole cluster at once, as if it had formed long ago: it is
    /// handed `frames` from [`Sim::formation`] (the real message, decoded and merged by
    /// its engine like any other).
    pub fn form_node(&mut self, i: NodeIdx, frames: &[Vec<u8>; 2]) {
        let s = NodeIdx::from(i == 0);
        let (addr, id, frame) = (node_addr(s), node_id(s), &frames[s as usize]);
        self.with_engine(i, |e, now| e.handle_stream(now, addr, Some(id), frame));
    }

    /// Node `i` leaves gracefully; it stops once its farewell is sent.
    pub fn leave(&mut self, i: NodeIdx) {
        self.note(2, u64::from(i), 0, 0);
        self.with_engine(i, |e, now| e.leave(now));
        self.stop(i);
    }

    /// Node `i` crashes: its state is lost, messages to it are dropped.
    pub fn crash(&mut self, i: NodeIdx) {
        self.note(3, u64::from(i), 0, 0);
        self.stop(i);
    }

    fn stop(&mut self, i: NodeIdx) {
        let n = &mut self.nodes[i as usize];
        if n.engine.take().is_some() {
            n.epoch += 1;
            n.timer_at = None;
            self.queue.cancel_timer(i);
            n.paused_until = None;
            self.views.down(i);
        }
    }

    /// Node `i` starts again with the same id and address and a fresh state, then joins
    /// through `seeds`. Does nothing if it is running.
    pub fn restart(&mut self, i: NodeIdx, seeds: &[NodeIdx]) -> Result<(), ConfigError> {
        if self.nodes[i as usize].is_up() {
            return Ok(());
        }
        self.note(4, u64::from(i), 0, 0);
        let seed = self.rng.random::<u64>();
        let now = self.instant(i);
        let node = &mut self.nodes[i as usize];
        let engine = Engine::new(
            node_id(i),
            node_addr(i),
            node_meta(i, self.meta_bytes),
            node.cfg.clone(),
            seed,
            now,
        )?;
        node.engine = Some(engine);
        node.epoch += 1;
        self.views.up(i);
        self.join(i, seeds);
        Ok(())
    }

    /// Node `i` stalls for `d` (a stopped process: no timers, messages wait).
    pub fn pause(&mut self, i: NodeIdx, d: Duration) {
        let until = self.now + d.as_nanos() as u64;
        self.note(5, u64::from(i), until, 0);
        let node = &mut self.nodes[i as usize];
        if node.is_up() {
            node.paused_until = Some(node.paused_until.unwrap_or(0).max(until));
            let epoch = node.epoch;
            self.push(until, Ev::Resume { node: i, epoch });
        }
    }

    /// Node `i` handles every incoming message `lo..=hi` late (`None`: normal again).
    pub fn set_slow(&mut self, i: NodeIdx, delay: Option<(Duration, Duration)>) {
        let d = delay.map(|(lo, hi)| (lo.as_nanos() as u64, hi.max(lo).as_nanos() as u64));
        self.note(6, u64::from(i), d.map_or(0, |d| d.0), d.map_or(0, |d| d.1));
        self.nodes[i as usize].slow = d;
    }

    /// Node `i`'s clock runs `ppm` parts per million fast (negative: slow).
    pub fn set_drift(&mut self, i: NodeIdx, ppm: i64) {
        self.note(7, u64::from(i), ppm as u64, 0);
        let now = self.now;
        let node = &mut self.nodes[i as usize];
        let seg = (node.anchor_t, node.anchor_local, node.drift_ppm);
        node.clock_history.push(seg);
        node.anchor_local = node.local(now);
        node.anchor_t = now;
        node.drift_ppm = ppm.clamp(-500_000, 500_000);
        self.reschedule(i);
    }

    /// Processes the next event if it is due at or before `until`; false when none is.
    pub fn step(&mut self, until: Duration) -> bool {
        let Some((at, ev)) = self.queue.pop_due(until.as_nanos() as u64) else {
            return false;
        };
        self.now = self.now.max(at);
        match ev {
            Ev::Timer { node } => self.on_timer(node),
            Ev::Resume { node, epoch } => self.on_resume(node, epoch),
            Ev::Deliver(d) => self.on_deliver(d),
        }
        true
    }

    /// Runs every event due up to `until` and leaves the clock there.
    pub fn run_until(&mut self, until: Duration) {
        while self.step(until) {}
        self.now = self.now.max(until.as_nanos() as u64);
    }

    fn on_timer(&mut self, i: NodeIdx) {
        let node = &mut self.nodes[i as usize];
        node.timer_at = None;
        if !node.is_up() {
            return;
        }
        if node.paused_until.is_some() {
            return; // fires at resume
        }
        self.with_engine(i, |e, now| e.handle_timeout(now));
    }

    fn on_resume(&mut self, i: NodeIdx, epoch: u32) {
        let now = self.now;
        let node = &mut self.nodes[i as usize];
        if node.epoch != epoch || !matches!(node.paused_until, Some(u) if u <= now) {
            return;
        }
        node.paused_until = None;
        self.with_engine(i, |e, now| e.handle_timeout(now));
    }

    fn on_deliver(&mut self, mut d: Delivery) {
        let node = &self.nodes[d.to as usize];
        let cut = d.reliable && self.net.is_cut(d.from, d.to);
        if node.epoch != d.epoch || !node.is_up() || cut {
            self.stats.lost += 1;
            return;
        }
        if let Some(until) = node.paused_until {
            self.push(until, Ev::Deliver(d));
            return;
        }
        if let (Some((lo, hi)), false) = (node.slow, d.late) {
            let at = self.now + self.rng.random_range(lo..=hi);
            d.late = true;
            self.push(at, Ev::Deliver(d));
            return;
        }
        let Delivery {
            to,
            from,
            reliable,
            payload,
            ..
        } = d;
        self.stats.delivered += 1;
        let h = hash_bytes(&payload);
        self.note(8 + u64::from(reliable), u64::from(to), u64::from(from), h);
        if self.trace.writing() {
            let cfg = &self.nodes[to as usize].cfg;
            let decoded = quorate::wire::decode(&payload, &cfg.cluster_name, usize::MAX);
            if let Ok(quorate::wire::Envelope {
                msg: quorate::wire::Message::Election(m),
                ..
            }) = decoded
            {
                let (to, from) = (node_id(to), node_id(from));
                self.trace
                    .line(self.now, format_args!("node {to} <- node {from} {m:?}"));
            }
            let (kind, len) = (if reliable { "stream" } else { "datagram" }, payload.len());
            self.trace.line(
                self.now,
                format_args!(
                    "node {} <- node {} {kind} {len}B {h:016x}",
                    node_id(to),
                    node_id(from)
                ),
            );
        }
        let (addr, id) = (node_addr(from), node_id(from));
        self.with_engine(to, |e, now| {
            if reliable {
                e.handle_stream(now, addr, Some(id), &payload)
            } else {
                e.handle_datagram(now, addr, Some(id), &payload)
            }
        });
    }

    /// Collects node `i`'s transmits and events and re-arms its timer.
    fn after(&mut self, i: NodeIdx) {
        let n = self.nodes.len();
        let mut out = std::mem::take(&mut self.scratch);
        while let Some(t) = self.nodes[i as usize]
            .engine
            .as_mut()
            .and_then(|e| e.poll_transmit())
        {
            if t.reliable {
                self.stats.streams += 1;
            } else {
                self.stats.datagrams += 1;
            }
            self.stats.bytes += t.payload.len() as u64;
            let Some(to) = addr_idx(t.to, n) else {
                self.stats.lost += 1;
                continue;
            };
            self.net.delays(&mut self.rng, i, to, t.reliable, &mut out);
            if out.is_empty() {
                self.stats.lost += 1;
            }
            let epoch = self.nodes[to as usize].epoch;
            let last = out.len().saturating_sub(1);
            let mut payload = Some(t.payload);
            for (k, &d) in out.iter().enumerate() {
                let p = if k == last {
                    payload.take().unwrap_or_default()
                } else {
                    payload.clone().unwrap_or_default()
                };
                let ev = Ev::Deliver(Delivery {
                    to,
                    from: i,
                    epoch,
                    reliable: t.reliable,
                    late: false,
                    payload: p,
                });
                self.push(self.now + d, ev);
            }
        }
        self.scratch = out;
        self.collect_events(i);
        self.reschedule(i);
    }

    fn collect_events(&mut self, i: NodeIdx) {
        let n = self.nodes.len();
        let at = Duration::from_nanos(self.now);
        while let Some(ev) = self.nodes[i as usize]
            .engine
            .as_mut()
            .and_then(|e| e.poll_event())
        {
            let Event::Member(me) = &ev else {
                if self.trace.writing() {
                    let (now, id) = (self.now, node_id(i));
                    self.trace.line(now, format_args!("node {id} event {ev:?}"));
                }
                self.records.push(Record {
                    at,
                    node: i,
                    event: ev,
                });
                continue;
            };
            let (kind, id, inc) = member_event_key(me);
            self.note(16 + kind, u64::from(i), id.0, inc);
            if let Some(m) = node_idx(id, n) {
                let live = self.nodes[i as usize]
                    .engine
                    .as_ref()
                    .and_then(|e| e.swim().member(id))
                    .is_some_and(|m| m.is_live());
                self.views.set(i, m, live);
            }
            if self.trace.writing() {
                let name = ["joined", "suspect", "alive", "failed", "left", "updated"];
                let what = name.get(kind as usize).copied().unwrap_or("?");
                self.trace.line(
                    self.now,
                    format_args!("node {} sees {id} {what} inc {inc}", node_id(i)),
                );
            }
            self.records.push(Record {
                at,
                node: i,
                event: ev,
            });
        }
    }

    fn reschedule(&mut self, i: NodeIdx) {
        let now = self.now;
        let base = self.base;
        let node = &mut self.nodes[i as usize];
        let Some(next) = node.engine.as_ref().and_then(|e| e.poll_timeout()) else {
            if node.timer_at.take().is_some() {
                self.queue.cancel_timer(i);
            }
            return;
        };
        let local = next.saturating_duration_since(base).as_nanos() as u64;
        let at = node.global(local, now);
        if node.timer_at == Some(at) {
            return;
        }
        node.timer_at = Some(at);
        self.queue.set_timer(i, at);
    }
}

/// A member event as (kind, subject, incarnation) for the trace and for checkers.
pub fn member_event_key(e: &MemberEvent) -> (u64, NodeId, u64) {
    match e {
        MemberEvent::Joined(m) => (0, m.id, m.incarnation),
        MemberEvent::Suspect { id, incarnation } => (1, *id, *incarnation),
        MemberEvent::Alive(m) => (2, m.id, m.incarnation),
        MemberEvent::Failed { id, incarnation } => (3, *id, *incarnation),
        MemberEvent::Left { id, incarnation } => (4, *id, *incarnation),
        MemberEvent::Updated(m) => (5, m.id, m.incarnation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for i in [0u32, 1, 255, 256, 70_000] {
            assert_eq!(addr_idx(node_addr(i), 100_000), Some(i));
            assert_eq!(node_idx(node_id(i), 100_000), Some(i));
        }
        assert_eq!(addr_idx(node_addr(5), 5), None);
        assert_eq!(node_idx(NodeId(0), 5), None);
    }

    #[test]
    fn drifting_clock_maps_deadlines_back() {
        let mut n = SimNode::new(None, Config::lan());
        assert_eq!(n.local(1_000), 1_000);
        n.anchor_local = n.local(1_000_000);
        n.anchor_t = 1_000_000;
        n.drift_ppm = 100_000; // 10% fast
        assert_eq!(n.local(2_000_000), 2_100_000);
        let t = n.global(2_100_000, 1_000_000);
        assert!(n.local(t) >= 2_100_000 && n.local(t - 1) < 2_100_000);
        assert_eq!(n.global(5, 1_500_000), 1_500_000);
    }

    #[test]
    fn true_time_follows_every_drift_change() {
        let cfg = Config::lan();
        let mut sim = Sim::new(1, 1, &cfg, Net::default()).unwrap();
        let at = |sim: &Sim, ms: u64| sim.base + Duration::from_millis(ms);
        sim.run_until(Duration::from_millis(1000));
        sim.set_drift(0, 100_000); // 10% fast from 1 s
        sim.run_until(Duration::from_millis(2000)); // local 2.1 s
        sim.set_drift(0, -100_000); // 10% slow from 2 s
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert!((ms(sim.true_time(0, at(&sim, 500))) - 500.0).abs() < 1e-3);
        assert!((ms(sim.true_time(0, at(&sim, 1550))) - 1500.0).abs() < 1e-3);
        assert!((ms(sim.true_time(0, at(&sim, 2100))) - 2000.0).abs() < 1e-3);
        // Future readings at the current (slow) rate: 0.9 s of local time is 1 s.
        assert!((ms(sim.true_time(0, at(&sim, 3000))) - 3000.0).abs() < 1e-3);
        assert_eq!(sim.true_time(0, sim.local_now(0)), sim.now());
    }
}
