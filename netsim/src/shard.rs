//! A shard: a contiguous range of nodes with their own event queue, handled by one
//! thread. What a shard's events produce for the rest of the simulation (frames to
//! other shards' nodes, trace notes, view changes, engine events) is kept in its
//! outbox and log, each entry keyed by the event that produced it, and merged by the
//! simulator in key order: the result does not depend on how nodes are split.

use std::time::{Duration, Instant};

use quorate::{Engine, Event};
use rand::Rng;

use crate::debug_json::to_json;
use crate::net::{Net, NodeIdx};
use crate::node::SimNode;
use crate::queue::{Delivery, Ev, Key, Queue};
use crate::sim::{addr_idx, member_event_key, node_addr, node_id, node_idx, NetStats, Record};
use crate::trace::hash_bytes;

/// What every shard reads and none changes while events run.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The origin of every node's clock.
    pub base: Instant,
    /// Nodes in the simulation.
    pub nodes: usize,
    pub net: &'a Net,
    /// Every node's epoch: it increases at every crash and restart, and frames sent
    /// to an older epoch are lost.
    pub epochs: &'a [u32],
    /// Every node's id (a second process of a node has that node's id).
    pub ids: &'a [quorate::NodeId],
    /// Whether the trace is written out as text (lines are worth building).
    pub writing: bool,
}

/// Something a shard's event produced for the simulator.
#[derive(Debug)]
pub(crate) enum Out {
    /// Words folded into the trace hash.
    Note([u64; 5]),
    /// A line of the text trace.
    Line(String),
    /// Observer `.0` now sees `.1` as live (or not).
    View(NodeIdx, NodeIdx, bool),
    /// An engine event.
    Record(Record),
}

/// A frame for another shard's node.
pub(crate) type Outgoing = (Key, Delivery);

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// The first node's index.
    pub lo: NodeIdx,
    pub nodes: Vec<SimNode>,
    pub queue: Queue,
    pub now: u64,
    pub stats: NetStats,
    /// What events produced, in the order they ran, keyed by the event.
    pub log: Vec<(Key, Out)>,
    pub outbox: Vec<Outgoing>,
    /// The event running (actions run under key `(now, 0)`).
    key: Key,
    scratch: Vec<u64>,
}

impl Shard {
    /// Nodes `lo..` (given in order).
    pub fn new(lo: NodeIdx, nodes: Vec<SimNode>) -> Self {
        Shard {
            lo,
            nodes,
            ..Shard::default()
        }
    }

    pub fn node(&self, i: NodeIdx) -> &SimNode {
        &self.nodes[(i - self.lo) as usize]
    }

    pub fn node_mut(&mut self, i: NodeIdx) -> &mut SimNode {
        &mut self.nodes[(i - self.lo) as usize]
    }

    fn holds(&self, i: NodeIdx) -> bool {
        i >= self.lo && ((i - self.lo) as usize) < self.nodes.len()
    }

    /// Node `i`'s clock reading now.
    pub fn instant(&self, ctx: &Ctx<'_>, i: NodeIdx) -> Instant {
        ctx.base + Duration::from_nanos(self.node(i).local(self.now))
    }

    /// Sets the clock for an action at `now` (not an event).
    pub fn begin_action(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.key = (self.now, 0);
    }

    fn out(&mut self, out: Out) {
        self.log.push((self.key, out));
    }

    fn note(&mut self, kind: u64, a: u64, b: u64, c: u64) {
        self.out(Out::Note([self.now, kind, a, b, c]));
    }

    /// Queues `ev` for this shard's node at `key`.
    pub fn push(&mut self, key: Key, ev: Ev) {
        self.queue.push(key, ev);
    }

    /// Runs `f` on node `i`'s engine now, then collects what it sent, what it reported
    /// and its next deadline. Nothing happens to a crashed node.
    pub fn with_engine(&mut self, ctx: &Ctx<'_>, i: NodeIdx, f: impl FnOnce(&mut Engine, Instant)) {
        let now = self.instant(ctx, i);
        if let Some(e) = self.node_mut(i).engine.as_mut() {
            f(e, now);
            self.after(ctx, i);
        }
    }

    /// Runs the next event if it is due at or before `until`; false when none is.
    pub fn step(&mut self, ctx: &Ctx<'_>, until: u64) -> bool {
        let Some((key, ev)) = self.queue.pop_due(until) else {
            return false;
        };
        self.now = self.now.max(key.0);
        self.key = key;
        match ev {
            Ev::Timer { node } => self.on_timer(ctx, node),
            Ev::Resume { node, epoch } => self.on_resume(ctx, node, epoch),
            Ev::Deliver(d) => self.on_deliver(ctx, key, d),
        }
        true
    }

    /// Runs every event due at or before `end`; the clock is left at `end`.
    pub fn run_to(&mut self, ctx: &Ctx<'_>, end: u64) {
        while self.step(ctx, end) {}
        self.now = self.now.max(end);
    }

    fn on_timer(&mut self, ctx: &Ctx<'_>, i: NodeIdx) {
        let node = self.node_mut(i);
        node.timer_at = None;
        if !node.is_up() || self.resume_if_due(ctx, i) {
            return;
        }
        if ctx.writing {
            let line = format!(r#""type":"timer","node":{}"#, node_id(i));
            self.out(Out::Line(line));
        }
        if self.node(i).paused_until.is_some() {
            return; // fires at resume
        }
        self.with_engine(ctx, i, |e, now| e.handle_timeout(now));
    }

    fn on_resume(&mut self, ctx: &Ctx<'_>, i: NodeIdx, epoch: u32) {
        if ctx.epochs[i as usize] == epoch {
            self.resume_if_due(ctx, i);
        }
    }

    /// Ends node `i`'s pause if it is over, running what came due meanwhile; true if
    /// it did. (A frame due at the very end of a pause may run before the resumption
    /// event: it resumes the node itself.)
    fn resume_if_due(&mut self, ctx: &Ctx<'_>, i: NodeIdx) -> bool {
        let now = self.now;
        let node = self.node_mut(i);
        if !matches!(node.paused_until, Some(u) if u <= now) {
            return false;
        }
        node.paused_until = None;
        self.with_engine(ctx, i, |e, now| e.handle_timeout(now));
        true
    }

    fn on_deliver(&mut self, ctx: &Ctx<'_>, key: Key, mut d: Delivery) {
        self.resume_if_due(ctx, d.to);
        let now = self.now;
        let node = self.node_mut(d.to);
        let cut = d.reliable && ctx.net.is_cut(d.from, d.to);
        if ctx.epochs[d.to as usize] != d.epoch || !node.is_up() || cut {
            self.stats.lost += 1;
            return;
        }
        if let Some(until) = node.paused_until {
            self.push((until, key.1), Ev::Deliver(d));
            return;
        }
        if let (Some((lo, hi)), false) = (node.slow, d.late) {
            let at = now + node.rng.random_range(lo..=hi);
            d.late = true;
            self.push((at, key.1), Ev::Deliver(d));
            return;
        }
        self.stats.delivered += 1;
        let h = hash_bytes(&d.payload);
        self.note(
            8 + u64::from(d.reliable),
            u64::from(d.to),
            u64::from(d.from),
            h,
        );
        if ctx.writing {
            self.describe(&d, h);
        }
        let Delivery {
            to,
            from,
            reliable,
            payload,
            ..
        } = d;
        let (addr, id) = (node_addr(from), ctx.ids[from as usize]);
        self.with_engine(ctx, to, |e, now| {
            if reliable {
                e.handle_stream(now, addr, Some(id), &payload)
            } else {
                e.handle_datagram(now, addr, Some(id), &payload)
            }
        });
    }

    /// The trace line of a delivered frame, its message decoded.
    fn describe(&mut self, d: &Delivery, h: u64) {
        let cfg = &self.node(d.to).cfg;
        let (to, from) = (node_id(d.to), node_id(d.from));
        let msg = match quorate::wire::decode(&d.payload, &cfg.cluster_name, usize::MAX) {
            Ok(env) => to_json(&format!("{:?}", env.msg)),
            Err(_) => serde_json::Value::Null,
        };
        let (kind, len) = (
            if d.reliable { "stream" } else { "datagram" },
            d.payload.len(),
        );
        self.out(Out::Line(format!(
            r#""type":"recv","node":{to},"from":{from},"transport":"{kind}","bytes":{len},"hash":"{h:016x}","msg":{msg}"#
        )));
    }

    /// Collects node `i`'s transmits and events and re-arms its timer.
    pub fn after(&mut self, ctx: &Ctx<'_>, i: NodeIdx) {
        let mut out = std::mem::take(&mut self.scratch);
        while let Some(t) = self
            .node_mut(i)
            .engine
            .as_mut()
            .and_then(|e| e.poll_transmit())
        {
            self.stats.count_sent(t.reliable, t.payload.len());
            let Some(to) = addr_idx(t.to, ctx.nodes) else {
                self.stats.lost += 1;
                continue;
            };
            let node = self.node_mut(i);
            ctx.net.delays(&mut node.rng, i, to, t.reliable, &mut out);
            let tie = node.next_tie(i);
            if out.is_empty() {
                self.stats.lost += 1;
            }
            let epoch = ctx.epochs[to as usize];
            let last = out.len().saturating_sub(1);
            let mut payload = Some(t.payload);
            for (k, &d) in out.iter().enumerate() {
                let p = if k == last {
                    payload.take().unwrap_or_default()
                } else {
                    payload.clone().unwrap_or_default()
                };
                let key = (self.now + d, tie(k > 0));
                let d = Delivery {
                    to,
                    from: i,
                    epoch,
                    reliable: t.reliable,
                    late: false,
                    payload: p,
                };
                if self.holds(to) {
                    self.queue.push(key, Ev::Deliver(d));
                } else {
                    self.outbox.push((key, d));
                }
            }
        }
        self.scratch = out;
        self.collect_events(ctx, i);
        self.reschedule(ctx, i);
    }

    fn collect_events(&mut self, ctx: &Ctx<'_>, i: NodeIdx) {
        let at = Duration::from_nanos(self.now);
        while let Some(ev) = self
            .node_mut(i)
            .engine
            .as_mut()
            .and_then(|e| e.poll_event())
        {
            let Event::Member(me) = &ev else {
                if ctx.writing {
                    let json = to_json(&format!("{ev:?}"));
                    let line = format!(r#""type":"event","node":{},"event":{json}"#, node_id(i));
                    self.out(Out::Line(line));
                }
                self.out(Out::Record(Record {
                    at,
                    node: i,
                    event: ev,
                }));
                continue;
            };
            let (kind, id, inc) = member_event_key(me);
            self.note(16 + kind, u64::from(i), id.0, inc);
            if let Some(m) = node_idx(id, ctx.nodes) {
                let live = self
                    .node(i)
                    .engine
                    .as_ref()
                    .and_then(|e| e.swim().member(id))
                    .is_some_and(|m| m.is_live());
                self.out(Out::View(i, m, live));
            }
            if ctx.writing {
                let name = ["joined", "suspect", "alive", "failed", "left", "updated"];
                let what = name.get(kind as usize).copied().unwrap_or("?");
                let line = format!(
                    r#""type":"view","node":{},"member":{id},"state":"{what}","incarnation":{inc}"#,
                    node_id(i)
                );
                self.out(Out::Line(line));
            }
            self.out(Out::Record(Record {
                at,
                node: i,
                event: ev,
            }));
        }
    }

    /// Moves node `i`'s timer to its engine's next deadline.
    pub fn reschedule(&mut self, ctx: &Ctx<'_>, i: NodeIdx) {
        let now = self.now;
        let node = &mut self.nodes[(i - self.lo) as usize];
        let Some(next) = node.engine.as_ref().and_then(|e| e.poll_timeout()) else {
            if node.timer_at.take().is_some() {
                self.queue.cancel_timer(i);
            }
            return;
        };
        let local = next.saturating_duration_since(ctx.base).as_nanos() as u64;
        let at = node.global(local, now);
        if node.timer_at == Some(at) {
            return;
        }
        node.timer_at = Some(at);
        self.queue.set_timer(i, at);
    }

    /// Node `i` stops: its timer is dropped.
    pub fn stop_timer(&mut self, i: NodeIdx) {
        self.node_mut(i).timer_at = None;
        self.queue.cancel_timer(i);
    }

    /// Key of the next event.
    pub fn next_key(&self) -> Option<Key> {
        self.queue.next_key()
    }

    /// Events queued (frames, resumptions and armed timers).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
