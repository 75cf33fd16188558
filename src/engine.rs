//! The engine: every sans-IO protocol part of a node behind one input/output interface.
//! Drivers (the tokio runtime, the simulator) talk to this type only.
//!
//! Today it holds the membership layer; the election layer joins it here, fed by the
//! same frames and timers, so drivers do not change.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::{Config, ConfigError};
use crate::swim::{Member, MemberEvent, MetadataError, Stats, Swim, Transmit};
use crate::wire::NodeId;

/// Something the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A membership change.
    Member(MemberEvent),
}

/// One node's protocol state machine.
#[derive(Debug)]
pub struct Engine {
    swim: Swim,
}

impl Engine {
    /// A node `id` advertising `addr` with metadata `meta`; `seed` seeds every random
    /// choice it makes. Refuses an invalid `cfg`.
    pub fn new(
        id: NodeId,
        addr: SocketAddr,
        meta: Vec<u8>,
        cfg: Config,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        Ok(Engine {
            swim: Swim::new(id, addr, meta, cfg, seed, now)?,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.swim.id()
    }

    /// The membership layer (read-only).
    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    /// Every member in this node's table.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.swim.members()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.swim.stats()
    }

    /// Joins the cluster through `seeds`.
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.swim.join(now, seeds);
    }

    /// Leaves gracefully (drain transmits before stopping).
    pub fn leave(&mut self, now: Instant) {
        self.swim.leave(now);
    }

    /// Publishes new metadata.
    pub fn set_metadata(&mut self, now: Instant, meta: Vec<u8>) -> Result<(), MetadataError> {
        self.swim.set_metadata(now, meta)
    }

    /// A datagram from `from`, sent by `peer` as authenticated by the transport.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
    ) {
        self.swim.handle_datagram(now, from, peer, bytes);
    }

    /// A stream message from `from`, sent by `peer` as authenticated by the transport.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
    ) {
        self.swim.handle_stream(now, from, peer, bytes);
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.swim.handle_timeout(now);
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.swim.poll_transmit()
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.swim.poll_timeout()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.swim.poll_event().map(Event::Member)
    }
}
