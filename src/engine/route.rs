//! Frames in and out. A frame is decoded and checked once, here, and its message
//! handed to the layer it is for: membership messages to [`crate::swim::Swim`] (the
//! layers' state some of them carry to the group registry), election messages to the
//! election, for this process life or dropped. Election messages go out from here too,
//! addressed by process; membership only says where a member listens.

use std::net::SocketAddr;
use std::time::Instant;

use super::Engine;
use crate::election::Process;
use crate::swim::Transmit;
use crate::wire::{self, ElectionMsg, Envelope, Instance, Message, NodeId};

/// Most election routes kept (processes heard from); the table starts over when full.
const MAX_ROUTES: usize = 1024;

/// Most received layer states (push-pull `shared`) waiting for the group registry.
const MAX_SHARED_IN: usize = 16;

impl Engine {
    /// Decodes a frame received from `from` (at most `limit` bytes; over a stream if
    /// `via_stream`) and routes its message; a frame that fails to decode, of another
    /// cluster, or whose claimed sender is not the authenticated `peer` is counted and
    /// dropped.
    pub(super) fn handle_frame(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
        via_stream: bool,
    ) {
        let Some(env) = self.decode(from, peer, bytes, via_stream) else {
            return;
        };
        match env.msg {
            Message::Election {
                from: instance,
                to,
                msg,
            } => self.on_election_msg(now, Process::new(env.from, instance), from, to, msg),
            mut msg => {
                let shared = take_shared(&mut msg);
                if !shared.is_empty() && self.shared_in.len() < MAX_SHARED_IN {
                    self.shared_in.push_back(shared);
                }
                self.swim
                    .handle_message(now, from, env.from, msg, via_stream);
            }
        }
    }

    fn decode(
        &mut self,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
        via_stream: bool,
    ) -> Option<Envelope> {
        let cfg = self.swim.config();
        let limit = match via_stream {
            true => cfg.max_stream_bytes,
            false => cfg.max_datagram_bytes,
        };
        let env = match wire::decode(bytes, &cfg.cluster_name, limit) {
            Ok(env) => env,
            Err(e) => {
                match e {
                    wire::DecodeError::Version { .. } | wire::DecodeError::Cluster { .. } => {
                        self.stats.foreign += 1
                    }
                    _ => self.stats.malformed += 1,
                }
                tracing::debug!(%from, error = %e, "dropped frame");
                return None;
            }
        };
        if peer.is_some_and(|p| p != env.from) || env.from == self.id() {
            self.stats.impersonation += 1;
            tracing::warn!(%from, claimed = %env.from, ?peer, "dropped frame with a false sender");
            return None;
        }
        self.stats.frames_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        Some(env)
    }

    /// An election message from process `who` (its id authenticated) at `from`, for
    /// process `to` of this node's id: handled unless `to` names another instance.
    fn on_election_msg(
        &mut self,
        now: Instant,
        who: Process,
        from: SocketAddr,
        to: Instance,
        msg: ElectionMsg,
    ) {
        if to != 0 && to != self.instance {
            self.stats.election_misrouted += 1;
            return;
        }
        let Some(e) = self.election.as_mut() else {
            return;
        };
        if self.routes.len() >= MAX_ROUTES && !self.routes.contains_key(&who) {
            self.routes.clear();
        }
        self.routes.insert(who, from);
        // A voter is reached where it last wrote from, even before membership (which
        // may not have it yet, or not any more) knows it.
        if e.config().voters.contains(&who.id) {
            self.voter_addrs.insert(who.id, from);
        }
        e.handle(now, who, msg);
    }

    /// Sends an election message to process `to`: where that process last wrote
    /// from, else where membership (or, for a voter, the last address seen) has its
    /// id, live or not: elections do not wait for membership to merge again.
    pub(super) fn send_election(&mut self, to: Process, msg: ElectionMsg) {
        let addr = (to.instance != 0)
            .then(|| self.routes.get(&to).copied())
            .flatten()
            .or_else(|| self.swim.addr_of(to.id))
            .or_else(|| self.voter_addrs.get(&to.id).copied());
        let Some(addr) = addr else {
            self.stats.election_misrouted += 1;
            return;
        };
        let msg = Message::Election {
            from: self.instance,
            to: to.instance,
            msg,
        };
        self.send_datagram(addr, to.id, &msg);
    }

    /// Encodes `msg` for `peer` at `to` into a datagram after every frame membership
    /// queued so far (frames leave in the order they were made), or counts it as not
    /// encodable.
    fn send_datagram(&mut self, to: SocketAddr, peer: NodeId, msg: &Message) {
        let cfg = self.swim.config();
        match wire::encode(&cfg.cluster_name, self.id(), msg, cfg.max_datagram_bytes) {
            Ok(payload) => {
                self.stats.frames_out += 1;
                self.stats.bytes_out += payload.len() as u64;
                while let Some(t) = self.swim.poll_transmit() {
                    self.transmits.push_back(t);
                }
                self.transmits.push_back(Transmit {
                    to,
                    peer: Some(peer),
                    reliable: false,
                    payload,
                });
            }
            Err(e) => {
                self.stats.encode_failed += 1;
                tracing::warn!(%to, error = %e, "message not sent");
            }
        }
    }

    /// The next frame to send: the engine's own, which were all made before any
    /// membership still holds, then membership's.
    pub(super) fn next_transmit(&mut self) -> Option<Transmit> {
        self.transmits
            .pop_front()
            .or_else(|| self.swim.poll_transmit())
    }
}

/// Takes out the state of the layers above membership that a message carries (the
/// group registry, in anti-entropy exchanges); empty for any other message.
fn take_shared(msg: &mut Message) -> Vec<u8> {
    match msg {
        Message::PushPull { shared, .. }
        | Message::SyncDigest { shared, .. }
        | Message::SyncDiff { shared, .. }
        | Message::Barrier { shared, .. } => std::mem::take(shared),
        _ => Vec::new(),
    }
}
