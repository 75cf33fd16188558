//! Applying membership news: alive, suspect, dead and left updates, in incarnation
//! order, with refutation when the news is about this node. Every accepted change is
//! re-gossiped and reported as an event.

use std::net::SocketAddr;
use std::time::Instant;

use std::collections::HashMap;

use super::member::{overrides, Member};
use super::suspicion::Suspicion;
use super::timer::FixedState;
use super::{MemberEvent, Swim, Timer};
use crate::wire::{self, Incarnation, Message, Meta, NodeId, State, Update};

impl Swim {
    /// Whether news said this node's id was alive at another address since the last
    /// call (a voter then stops voting for a quarantine).
    pub fn take_claim_elsewhere(&mut self) -> bool {
        std::mem::take(&mut self.merging.claims.pending)
    }

    /// Whether this process found another live process with its id that was there
    /// first (then it no longer contests the id, and must never vote).
    pub fn yielded_id(&self) -> bool {
        self.merging.claims.yielded
    }

    /// Whether this process found its own id alive at another address in the answer
    /// to its join: another process may still run with it (one stalled, say), so this
    /// one must never vote.
    pub fn found_id_taken(&self) -> bool {
        self.merging.claims.newcomer == Some(true)
    }

    pub(super) fn apply_all(&mut self, now: Instant, sender: NodeId, updates: Vec<Update>) {
        for u in updates {
            self.apply(now, sender, u);
        }
    }

    pub(super) fn apply(&mut self, now: Instant, _sender: NodeId, u: Update) {
        match u {
            Update::Alive {
                id,
                addr,
                incarnation,
                meta,
            } => self.on_alive(now, id, addr, incarnation, meta),
            Update::Suspect {
                id,
                incarnation,
                from,
            } => self.on_suspect(now, id, incarnation, from),
            Update::Dead {
                id,
                incarnation,
                from,
            } => self.on_dead(now, id, incarnation, from),
            Update::Left { id, incarnation } => self.on_left(now, id, incarnation),
        }
    }

    fn on_alive(
        &mut self,
        now: Instant,
        id: NodeId,
        addr: SocketAddr,
        inc: Incarnation,
        meta: Meta,
    ) {
        if id == self.me {
            self.on_alive_self(now, addr, inc, &meta);
            return;
        }
        if self.fill_fetched_meta(id, inc, &meta) {
            return;
        }
        let Some(cur) = self.members.get(id) else {
            self.add_member(now, id, addr, inc, meta);
            return;
        };
        if !overrides(cur.state, cur.incarnation, State::Alive, inc) {
            return;
        }
        let prior = cur.state;
        let old_digest = cur.meta_digest;
        let old_addr = cur.addr();
        if old_addr != addr && prior.is_live() {
            // A live member moved, or another process claims its id: tell the process
            // at the old address, which refutes if it still runs (and so learns of
            // the other one), and is gone otherwise.
            let news = Update::Alive {
                id,
                addr,
                incarnation: inc,
                meta: Meta::Digest(0),
            };
            let msg = Message::Gossip {
                updates: vec![news],
            };
            self.send(old_addr, Some(id), false, &msg);
        }
        self.merging.suspicions.remove(&id);
        self.timers.cancel(Timer::Suspicion(id));
        let (new_digest, fetch) = self.store_alive(now, id, addr, inc, &meta);
        let m = self.member(id).expect("known member");
        if !prior.is_live() && !self.merging.quiet {
            self.note_learned(now);
        }
        if prior != State::Alive {
            self.emit(MemberEvent::Alive(m));
        } else if new_digest != old_digest && !fetch {
            self.emit(MemberEvent::Updated(m));
        }
        self.rebroadcast_alive(id, addr, inc, meta, new_digest);
    }

    /// News that this node is alive at `inc` from `addr`: refuted when it is a newer
    /// incarnation or another life's (another address or metadata) at ours; a claim
    /// at another address is the first sign of a second process with this id.
    fn on_alive_self(&mut self, now: Instant, addr: SocketAddr, inc: Incarnation, meta: &Meta) {
        let digest = match meta {
            Meta::Inline(b) => wire::meta_digest(b),
            Meta::Digest(d) => *d,
        };
        let stale_life = inc == self.incarnation
            && (addr != self.addr || digest != wire::meta_digest(&self.meta));
        if !(inc > self.incarnation || stale_life) || self.leaving {
            return;
        }
        let elsewhere = addr != self.addr;
        let proven = elsewhere && self.merging.claims.refuted_at.is_some_and(|r| inc >= r);
        if elsewhere && self.merging.claims.yielded {
            // The id belongs to the earlier process: stop the contest.
            self.stats.claims_elsewhere += 1;
            self.merging.claims.pending = true;
            return;
        }
        self.refute(now, inc, None);
        if elsewhere {
            self.on_claim_elsewhere(addr, proven);
        }
    }

    /// The answer to a metadata fetch: the bytes behind a digest we already hold, at
    /// the incarnation we hold. Stores them (reporting `Updated`) and returns true; any
    /// other update returns false and goes through the usual precedence.
    fn fill_fetched_meta(&mut self, id: NodeId, inc: Incarnation, meta: &Meta) -> bool {
        let Meta::Inline(bytes) = meta else {
            return false;
        };
        let Some(cur) = self.members.get(id) else {
            return false;
        };
        let awaited = cur.meta_pending
            && cur.is_live()
            && cur.incarnation == inc
            && cur.meta_digest == wire::meta_digest(bytes);
        if !awaited {
            return false;
        }
        self.members.update(id, |m| m.set_meta(bytes.clone()));
        if let Some(m) = self.member(id) {
            self.emit(MemberEvent::Updated(m));
        }
        true
    }

    /// Writes an accepted alive update; returns the new digest and whether the bytes
    /// must be fetched (only the digest came).
    fn store_alive(
        &mut self,
        now: Instant,
        id: NodeId,
        addr: SocketAddr,
        inc: Incarnation,
        meta: &Meta,
    ) -> (u64, bool) {
        let (digest, bytes) = match meta {
            Meta::Inline(b) => (wire::meta_digest(b), Some(b.clone())),
            Meta::Digest(d) => (*d, None),
        };
        let t = self.members.stamp(now);
        let fetch = self.members.update(id, |m| {
            if m.state != State::Alive {
                m.since = t;
            }
            m.state = State::Alive;
            m.incarnation = inc;
            m.set_addr(addr);
            m.meta_digest = digest;
            match bytes {
                Some(b) => m.set_meta(b),
                None => m.refresh_pending(),
            }
            m.meta_pending
        });
        if fetch == Some(true) {
            self.send(addr, Some(id), true, &Message::MetaRequest);
        }
        (digest, fetch.unwrap_or(false))
    }

    fn rebroadcast_alive(
        &mut self,
        id: NodeId,
        addr: SocketAddr,
        incarnation: Incarnation,
        meta: Meta,
        digest: u64,
    ) {
        let meta = match meta {
            Meta::Inline(b) if b.len() + 64 > self.cfg.max_datagram_bytes / 2 => {
                Meta::Digest(digest)
            }
            other => other,
        };
        self.broadcasts.push(Update::Alive {
            id,
            addr,
            incarnation,
            meta,
        });
    }

    fn add_member(
        &mut self,
        now: Instant,
        id: NodeId,
        addr: SocketAddr,
        inc: Incarnation,
        meta: Meta,
    ) {
        if self.members.len() >= self.cfg.max_members && !self.evict_one() {
            self.stats.table_full += 1;
            tracing::warn!(member = %id, "member table full; member not added");
            return;
        }
        let (bytes, digest) = match &meta {
            Meta::Inline(b) => (b.clone(), wire::meta_digest(b)),
            Meta::Digest(d) => (Vec::new(), *d),
        };
        let fetch = wire::meta_digest(&bytes) != digest;
        let m = Member {
            id,
            addr,
            incarnation: inc,
            state: State::Alive,
            meta: bytes,
            meta_digest: digest,
            since: now,
        };
        self.members.insert(&m, Some(&mut self.rng));
        if fetch {
            self.send(addr, Some(id), true, &Message::MetaRequest);
        }
        self.emit(MemberEvent::Joined(m));
        if !self.merging.quiet {
            self.rebroadcast_alive(id, addr, inc, meta, digest);
            self.note_learned(now);
        }
    }

    /// Drops the oldest departed or dead record to make room; false when there is none.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .members
            .iter()
            .filter(|m| !m.is_live() && m.id != self.me)
            .min_by_key(|m| (m.state == State::Dead, m.since))
            .map(|m| m.id);
        match victim {
            Some(id) => {
                self.members.remove(id);
                true
            }
            None => false,
        }
    }

    pub(super) fn on_suspect(&mut self, now: Instant, id: NodeId, inc: Incarnation, from: NodeId) {
        if id == self.me {
            if inc >= self.incarnation && !self.leaving {
                self.refute(now, inc, Some(from));
            }
            return;
        }
        let Some(cur) = self.members.get(id) else {
            return;
        };
        if cur.state == State::Suspect && cur.incarnation == inc {
            self.confirm_suspicion(id, from);
            return;
        }
        if !overrides(cur.state, cur.incarnation, State::Suspect, inc) {
            return;
        }
        let n = self.members.live();
        let min = self.cfg.suspicion_min(n);
        let (max, k) = if self.cfg.lifeguard {
            let k = self.cfg.suspicion_mult.saturating_sub(2);
            let k = if (n as u32).saturating_sub(2) < k {
                0
            } else {
                k
            };
            (min * self.cfg.suspicion_max_mult, k)
        } else {
            (min, 0)
        };
        let s = Suspicion::new(inc, from, now, min, max, k);
        self.timers.set(Timer::Suspicion(id), s.deadline());
        self.merging.suspicions.insert(id, s);
        let t = self.members.stamp(now);
        self.members.update(id, |m| {
            m.state = State::Suspect;
            m.incarnation = inc;
            m.since = t;
        });
        self.emit(MemberEvent::Suspect {
            id,
            incarnation: inc,
        });
        self.broadcasts.push(Update::Suspect {
            id,
            incarnation: inc,
            from,
        });
    }

    fn confirm_suspicion(&mut self, id: NodeId, from: NodeId) {
        let Some(s) = self.merging.suspicions.get_mut(&id) else {
            return;
        };
        if !s.confirm(from) {
            return;
        }
        let (deadline, incarnation) = (s.deadline(), s.incarnation);
        self.timers.set(Timer::Suspicion(id), deadline);
        self.broadcasts.push(Update::Suspect {
            id,
            incarnation,
            from,
        });
    }

    pub(super) fn on_suspicion_timeout(&mut self, now: Instant, id: NodeId) {
        let Some(s) = self.merging.suspicions.remove(&id) else {
            return;
        };
        let still = self
            .members
            .get(id)
            .is_some_and(|m| m.state == State::Suspect && m.incarnation == s.incarnation);
        if still {
            self.stats.deaths_declared += 1;
            self.on_dead(now, id, s.incarnation, self.me);
        }
    }

    pub(super) fn on_dead(&mut self, now: Instant, id: NodeId, inc: Incarnation, from: NodeId) {
        self.on_down(now, id, inc, Some(from));
    }

    pub(super) fn on_left(&mut self, now: Instant, id: NodeId, inc: Incarnation) {
        self.on_down(now, id, inc, None);
    }

    /// News that member `id` is down at `inc`: declared dead by `dead_by`, or gone by
    /// its own leave (`None`). Refuted when about this node; applied, reported and
    /// passed on when it overrides what the table holds.
    fn on_down(&mut self, now: Instant, id: NodeId, inc: Incarnation, dead_by: Option<NodeId>) {
        if id == self.me {
            if inc >= self.incarnation && !self.leaving {
                self.refute(now, inc, dead_by);
            }
            return;
        }
        let state = match dead_by {
            Some(_) => State::Dead,
            None => State::Left,
        };
        let Some(cur) = self.members.get(id) else {
            return;
        };
        if !overrides(cur.state, cur.incarnation, state, inc) {
            return;
        }
        self.set_down(now, id, inc, state);
        let incarnation = inc;
        let (event, update) = match dead_by {
            Some(from) => (
                MemberEvent::Failed { id, incarnation },
                Update::Dead {
                    id,
                    incarnation,
                    from,
                },
            ),
            None => (
                MemberEvent::Left { id, incarnation },
                Update::Left { id, incarnation },
            ),
        };
        self.emit(event);
        self.broadcasts.push(update);
    }

    fn set_down(&mut self, now: Instant, id: NodeId, inc: Incarnation, state: State) {
        self.merging.suspicions.remove(&id);
        self.timers.cancel(Timer::Suspicion(id));
        let t = self.members.stamp(now);
        self.members.update(id, |m| {
            m.state = state;
            m.incarnation = inc;
            m.since = t;
        });
    }

    /// News said this node's id is alive at `addr`, not its own address, at an
    /// incarnation it had to refute; `proven` when that incarnation is at or above the
    /// one this node took to refute an earlier such claim.
    fn on_claim_elsewhere(&mut self, addr: SocketAddr, proven: bool) {
        self.stats.claims_elsewhere += 1;
        self.merging.claims.pending = true;
        let newcomer = *self
            .merging
            .claims
            .newcomer
            .get_or_insert(self.merging.quiet);
        self.merging.claims.refuted_at = Some(self.incarnation);
        let c = &mut self.merging.claims;
        c.yielded |= proven && newcomer;
        if proven && !c.reported.contains(&addr) && c.reported.len() < MAX_REPORTED {
            c.reported.push(addr);
            self.emit(MemberEvent::Duplicate { addr, newcomer });
        }
    }

    /// News says this node is suspect, dead, gone or older than it is: raise the
    /// incarnation above it and say so, directly to the accuser when known.
    pub(super) fn refute(&mut self, now: Instant, accused: Incarnation, accuser: Option<NodeId>) {
        self.stats.refutations += 1;
        if self.cfg.lifeguard {
            // Being suspected hints that we are the slow one.
            self.awareness.apply(1);
        }
        self.bump_incarnation(now, accused.max(self.incarnation).saturating_add(1));
        if let Some(a) = accuser.filter(|a| *a != self.me) {
            let own = self.own_update(false);
            self.send_to_member(a, true, &Message::Gossip { updates: vec![own] });
        }
    }

    /// Sets this node's incarnation (and current metadata) and gossips it.
    pub(super) fn bump_incarnation(&mut self, _now: Instant, inc: Incarnation) {
        self.incarnation = inc;
        let me = self.me;
        let meta = self.meta.clone();
        self.members.update(me, |m| {
            m.incarnation = inc;
            m.meta_digest = wire::meta_digest(&meta);
            m.set_meta(meta);
        });
        let up = self.own_update(true);
        self.broadcasts.push(up);
    }
}

/// Most other addresses a node reports a duplicate of its id at.
const MAX_REPORTED: usize = 16;

/// Claims of this node's own id at other addresses. The first proves nothing: it may
/// be this node's previous life (a restart at a new address, not yet declared dead).
/// What merging gossip keeps between messages: the suspicions running, the claims of
/// this node's id seen elsewhere, and whether a join reply is being merged.
#[derive(Debug, Default)]
pub(super) struct Merging {
    /// Suspected members and their Lifeguard timers' state.
    suspicions: HashMap<NodeId, Suspicion, FixedState>,
    /// Claims of this node's id at other addresses: see [`Claims`].
    claims: Claims,
    /// Set while merging a join reply: members learned from it are not re-gossiped.
    quiet: bool,
}

impl Merging {
    /// Marks whether what is merged next comes in a join reply (not re-gossiped).
    pub(super) fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }
}

/// One at an incarnation at or above the one this node took to refute an earlier claim
/// does: another live process raised its incarnation after it saw this node's.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// The incarnation this node took when it last refuted a claim elsewhere.
    refuted_at: Option<Incarnation>,
    /// Whether the first claim came while this node was joining (it is the later
    /// process).
    pub(super) newcomer: Option<bool>,
    /// Addresses reported as duplicates (at most [`MAX_REPORTED`]).
    reported: Vec<SocketAddr>,
    /// A claim arrived since the engine last asked.
    pub(super) pending: bool,
    /// This process is the later of two live processes with one id: it no longer
    /// refutes the other's claims (the id stays the earlier one's in every table).
    pub(super) yielded: bool,
}
