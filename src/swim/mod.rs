//! Sans-IO membership: SWIM with the Lifeguard extensions.
//!
//! [`Swim`] is a state machine. Its driver (the engine) feeds it the membership
//! messages of decoded frames ([`Swim::handle_message`]), timer expiries
//! ([`Swim::handle_timeout`]) and commands ([`Swim::join`], [`Swim::leave`],
//! [`Swim::set_metadata`]), and executes what it polls out: frames to send
//! ([`Swim::poll_transmit`]), the one next deadline ([`Swim::poll_timeout`]) and
//! membership events ([`Swim::poll_event`]). Frames are decoded, checked and routed
//! by the engine: this layer sees only its own messages, and answers the other
//! layers' one question about members, where they are ([`Swim::addr_of`]). It never reads a clock, opens a socket or
//! draws from global randomness: `now` is an argument and every random choice comes from
//! the RNG seeded at construction, so a simulation replays exactly from its seed.

mod awareness;
mod barrier;
mod broadcast;
mod digest;
mod index;
mod member;
mod merge;
mod order;
mod probe;
mod suspicion;
mod sync;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::{Config, ConfigError, Validated};
pub use crate::stats::Stats;
use crate::wire::{self, Incarnation, Message, Meta, NodeId, State, Update};
use awareness::Awareness;
use broadcast::Broadcasts;
pub use member::Member;
use member::Members;
use merge::Merging;
use probe::Prober;
use sync::Exchange;
use timer::Timers;

/// A frame to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub to: SocketAddr,
    /// The node expected there, when known (a seed address has no known id yet).
    pub peer: Option<NodeId>,
    /// Stream (reliable, any size up to `max_stream_bytes`) rather than datagram.
    pub reliable: bool,
    /// The encoded frame.
    pub payload: Vec<u8>,
}

/// A change in this node's view of the membership.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberEvent {
    /// A member was seen for the first time (or again after being forgotten).
    Joined(Member),
    /// A member missed its probes and is suspected.
    Suspect {
        /// The member.
        id: NodeId,
        /// The incarnation suspected.
        incarnation: Incarnation,
    },
    /// A suspected, failed or departed member is alive again.
    Alive(Member),
    /// A member was declared failed.
    Failed {
        /// The member.
        id: NodeId,
        /// Its incarnation at the time.
        incarnation: Incarnation,
    },
    /// A member announced its departure.
    Left {
        /// The member.
        id: NodeId,
        /// Its last incarnation.
        incarnation: Incarnation,
    },
    /// A live member published new metadata.
    Updated(Member),
    /// Another live process runs with this node's own id: it gossips itself alive at
    /// another address, and kept doing so after this node refuted it. Reported once
    /// per address, on both processes.
    Duplicate {
        /// Where the other process listens.
        addr: SocketAddr,
        /// This process is the later one: it found its id taken when it joined.
        newcomer: bool,
    },
}

/// Why a metadata update was refused. Nothing changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The metadata exceeds `Config::max_metadata_bytes` (or, for the node state the
    /// engine publishes, `Config::node_state_limit`).
    #[error("metadata of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The node has left the cluster.
    #[error("the node has left the cluster")]
    Left,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    Probe,
    ProbeTimeout,
    Gossip,
    PushPull,
    Reconnect,
    Join,
    Reap,
    Suspicion(NodeId),
    Relay(u32),
}

/// The SWIM + Lifeguard state machine of one node.
#[derive(Debug)]
pub struct Swim {
    cfg: Config,
    me: NodeId,
    addr: SocketAddr,
    incarnation: Incarnation,
    meta: Vec<u8>,
    members: Members,
    broadcasts: Broadcasts,
    awareness: Awareness,
    timers: Timers<Timer>,
    rng: SmallRng,
    leaving: bool,
    /// The probe cycle's own state (`probe.rs`).
    prober: Prober,
    /// Joining and the full-state exchange's own state (`sync.rs`).
    exchange: Exchange,
    /// Suspicions and claims of this node's id, merged from gossip (`merge.rs`).
    merging: Merging,
    /// The last gossip round (or the start): rounds fall every `gossip_interval` from
    /// it while there is news, and none is scheduled while there is not.
    gossip_tick: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MemberEvent>,
    stats: Stats,
}

impl Swim {
    /// A node `me` listening at `addr` with `meta`, alone until [`Swim::join`].
    /// Refuses metadata over [`Config::node_state_limit`].
    pub fn new(
        me: NodeId,
        addr: SocketAddr,
        meta: Vec<u8>,
        cfg: Validated<Config>,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let cfg = cfg.into_inner();
        Config::check_metadata(meta.len(), cfg.node_state_limit(), "the node state limit")?;
        let own = Member {
            id: me,
            addr,
            incarnation: 0,
            state: State::Alive,
            meta_digest: wire::meta_digest(&meta),
            meta: meta.clone(),
            since: now,
        };
        let awareness = Awareness::new(if cfg.lifeguard { cfg.awareness_max } else { 0 });
        let mut s = Swim {
            members: Members::new(&own),
            broadcasts: Broadcasts::new(cfg.max_broadcasts),
            awareness,
            timers: Timers::default(),
            rng: SmallRng::seed_from_u64(seed),
            leaving: false,
            prober: Prober::default(),
            exchange: Exchange::default(),
            merging: Merging::default(),
            gossip_tick: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            incarnation: 0,
            meta,
            me,
            addr,
            cfg,
        };
        s.start_timers(now);
        Ok(s)
    }

    fn start_timers(&mut self, now: Instant) {
        let jitter = |rng: &mut SmallRng, d: std::time::Duration| d.mul_f64(rng.random::<f64>());
        let probe = jitter(&mut self.rng, self.cfg.probe_interval);
        self.timers.set(Timer::Probe, now + probe);
        self.gossip_tick = now;
        if !self.cfg.push_pull_interval.is_zero() {
            let pp = jitter(&mut self.rng, self.cfg.push_pull_interval);
            self.timers.set(Timer::PushPull, now + pp);
        }
        let rc = jitter(&mut self.rng, self.cfg.reconnect_interval);
        self.timers
            .set(Timer::Reconnect, now + self.cfg.reconnect_interval + rc);
        self.timers.set(Timer::Reap, now + self.reap_interval());
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// This node's current incarnation.
    pub fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Every member in the table (this node included), in no particular order.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.members.iter().map(|r| self.members.member(r))
    }

    /// One member's record.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        self.members.get(id).map(|r| self.members.member(r))
    }

    /// Number of live (alive or suspect) members, this node included.
    pub fn live_members(&self) -> usize {
        self.members.live()
    }

    /// Lifeguard's local health score (0 = healthy).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// Gossip updates waiting in the broadcast queue.
    pub fn broadcasts_queued(&self) -> usize {
        self.broadcasts.len()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            broadcasts_dropped: self.broadcasts.dropped(),
            ..self.stats.clone()
        }
    }

    /// Whether [`Swim::leave`] was called.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Announces a graceful departure: `Left` is sent reliably to a few members and
    /// gossiped; probing stops. Drain [`Swim::poll_transmit`] before shutting down.
    pub fn leave(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        let left = Update::Left {
            id: self.me,
            incarnation: self.incarnation,
        };
        let me = self.me;
        let t = self.members.stamp(now);
        self.members.update(me, |m| {
            m.state = State::Left;
            m.since = t;
        });
        self.broadcasts.push(left.clone());
        let k = self.cfg.gossip_nodes.max(3);
        let to = self
            .members
            .pick(k, &mut self.rng, |m| m.id != me && m.is_live());
        for id in to {
            let msg = Message::Gossip {
                updates: vec![left.clone()],
            };
            self.send_to_member(id, true, &msg);
        }
        for t in [
            Timer::Probe,
            Timer::ProbeTimeout,
            Timer::PushPull,
            Timer::Reconnect,
            Timer::Join,
        ] {
            self.timers.cancel(t);
        }
        self.prober.stop();
        self.schedule_gossip(now);
    }

    /// Publishes new metadata (raises this node's incarnation). The bytes are opaque
    /// here; the engine stores its node state in them, up to
    /// [`Config::node_state_limit`].
    pub fn set_metadata(&mut self, now: Instant, meta: Vec<u8>) -> Result<(), MetadataError> {
        if self.leaving {
            return Err(MetadataError::Left);
        }
        if meta.len() > self.cfg.node_state_limit() {
            return Err(MetadataError::TooLarge {
                len: meta.len(),
                limit: self.cfg.node_state_limit(),
            });
        }
        self.meta = meta;
        self.bump_incarnation(now, self.incarnation.saturating_add(1));
        self.schedule_gossip(now);
        Ok(())
    }

    /// Feeds a membership message that `sender` (authenticated by the transport, and
    /// not this node) sent from `from`, over a stream if `via_stream`, else as a
    /// datagram. The engine decodes frames and routes here every message that is
    /// not another layer's.
    pub fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        msg: Message,
        via_stream: bool,
    ) {
        self.dispatch(now, from, sender, msg, via_stream);
        self.schedule_gossip(now);
    }

    fn dispatch(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        msg: Message,
        via_stream: bool,
    ) {
        match msg {
            Message::Ping {
                seq,
                target,
                updates,
            } => {
                self.apply_all(now, sender, updates);
                self.on_ping(now, from, sender, seq, target, via_stream);
            }
            Message::Ack { seq, updates } => {
                self.apply_all(now, sender, updates);
                self.on_ack(now, seq);
            }
            Message::Nack { seq } => self.on_nack(seq),
            Message::PingReq {
                seq,
                target,
                addr,
                want_nack,
                updates,
            } => {
                self.apply_all(now, sender, updates);
                self.on_ping_req(now, from, sender, seq, target, addr, want_nack);
            }
            Message::Gossip { updates } => self.apply_all(now, sender, updates),
            // The layers' state these carry (`shared`) is the engine's to hand over.
            Message::PushPull {
                join,
                reply,
                members,
                ..
            } => self.on_push_pull(now, from, sender, join, reply, members),
            Message::SyncDigest { level, hashes, .. } => {
                self.on_sync_digest(from, sender, level, &hashes);
            }
            Message::SyncDiff {
                level,
                buckets,
                members,
                ..
            } => self.on_sync_diff(now, from, sender, level, &buckets, members),
            Message::Barrier {
                id, reply, members, ..
            } => self.on_barrier(now, from, sender, id, reply, members),
            Message::MetaRequest => {
                let own = self.own_update(false);
                self.send(
                    from,
                    Some(sender),
                    true,
                    &Message::Gossip { updates: vec![own] },
                );
            }
            // The engine routes the other layers' messages: none comes here.
            other => debug_assert!(false, "not a membership message: {other:?}"),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                Timer::Probe => self.on_probe_timer(now),
                Timer::ProbeTimeout => self.on_probe_timeout(now),
                Timer::Gossip => self.on_gossip_timer(now),
                Timer::PushPull => self.on_push_pull_timer(now),
                Timer::Reconnect => self.on_reconnect_timer(now),
                Timer::Join => self.on_join_timer(now),
                Timer::Reap => self.on_reap_timer(now),
                Timer::Suspicion(id) => self.on_suspicion_timeout(now, id),
                Timer::Relay(seq) => self.on_relay_timer(now, seq),
            }
        }
        self.schedule_gossip(now);
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Swim::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next membership event.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 1024 {
            // A join reports every member at once; do not keep that much room forever.
            self.events.shrink_to(64);
        }
        e
    }

    /// Where member `id` was last known to listen, whatever its state (dead and
    /// departed members are kept until reaped).
    pub fn addr_of(&self, id: NodeId) -> Option<SocketAddr> {
        self.members.get(id).map(|m| m.addr())
    }

    // ---- helpers shared by the concept files ----

    fn emit(&mut self, e: MemberEvent) {
        if self.events.len() >= self.cfg.max_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    fn send(&mut self, to: SocketAddr, peer: Option<NodeId>, reliable: bool, msg: &Message) {
        let limit = if reliable {
            self.cfg.max_stream_bytes
        } else {
            self.cfg.max_datagram_bytes
        };
        match wire::encode(&self.cfg.cluster_name, self.me, msg, limit) {
            Ok(payload) => {
                self.stats.frames_out += 1;
                self.stats.bytes_out += payload.len() as u64;
                self.transmits.push_back(Transmit {
                    to,
                    peer,
                    reliable,
                    payload,
                });
            }
            Err(e) => {
                self.stats.encode_failed += 1;
                tracing::warn!(%to, error = %e, "message not sent");
            }
        }
    }

    fn send_to_member(&mut self, id: NodeId, reliable: bool, msg: &Message) {
        if let Some(addr) = self.members.get(id).map(|m| m.addr()) {
            self.send(addr, Some(id), reliable, msg);
        }
    }

    /// Builds a datagram with `make(updates)`, filling the room left with pending gossip
    /// after the `first` updates.
    fn with_gossip(
        &mut self,
        first: Vec<Update>,
        make: impl Fn(Vec<Update>) -> Message,
    ) -> Message {
        if self.broadcasts.len() == 0 {
            return make(first); // nothing to add: no need to size it
        }
        let base = wire::encode(
            &self.cfg.cluster_name,
            self.me,
            &make(first.clone()),
            usize::MAX,
        )
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
        let room = self.cfg.max_datagram_bytes.saturating_sub(base + 2);
        let limit = self.cfg.retransmit_limit(self.members.live());
        let mut updates = first;
        updates.extend(self.broadcasts.take(room, limit, None));
        make(updates)
    }

    /// This node's `Alive` update; metadata inline unless it would crowd a datagram.
    fn own_update(&self, for_datagram: bool) -> Update {
        let inline = !for_datagram || self.meta.len() + 64 <= self.cfg.max_datagram_bytes / 2;
        Update::Alive {
            id: self.me,
            addr: self.addr,
            incarnation: self.incarnation,
            meta: if inline {
                Meta::Inline(self.meta.clone())
            } else {
                Meta::Digest(wire::meta_digest(&self.meta))
            },
        }
    }

    /// Arms the next gossip round while there is news to spread, and disarms it once
    /// there is none: an idle node wakes only to probe, not `1 / gossip_interval`
    /// times a second. Rounds stay on the grid of the last one, as if it never
    /// stopped. Called at the end of every input.
    fn schedule_gossip(&mut self, now: Instant) {
        let every = self.cfg.gossip_interval;
        let armed = self.timers.deadline(Timer::Gossip).is_some();
        match (self.broadcasts.len() > 0, armed) {
            (true, false) if !every.is_zero() => {
                let at = timer::next_tick(self.gossip_tick, every, now);
                self.timers.set(Timer::Gossip, at);
            }
            (false, true) => self.timers.cancel(Timer::Gossip),
            _ => {}
        }
    }

    fn reap_interval(&self) -> std::time::Duration {
        (self.cfg.left_retention.min(self.cfg.dead_retention) / 2)
            .max(std::time::Duration::from_secs(1))
    }
}
