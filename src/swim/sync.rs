//! Gossip rounds, anti-entropy (digest first, then the buckets that differ), joining through seeds, reconnecting to dead
//! members (so partitions heal by themselves) and forgetting old records.

use std::net::SocketAddr;
use std::time::Instant;

use super::{digest, Swim, Timer};

/// Joining and the full-state exchange (push-pull): the seeds, whether a seed has
/// answered, and what decides when the next exchange is due.
#[derive(Debug)]
pub(super) struct Exchange {
    /// The seeds joined through (retried until one answers).
    seeds: Vec<SocketAddr>,
    /// Whether a seed answered (or there were none).
    joined: bool,
    /// Members learned (or seen back alive) since the last full exchange, by gossip
    /// or by that exchange itself (joins excepted).
    learned: usize,
    /// Table size at the last full exchange.
    synced: usize,
    /// When the last full exchange was sent or received.
    last_sync: Option<Instant>,
    /// Opaque state of the layers above, sent with every push-pull (what peers send
    /// back goes to those layers straight from the engine).
    pub(super) shared_out: Vec<u8>,
    /// Barrier answers not yet taken by the engine: `(barrier, member)`.
    pub(super) answered: std::collections::VecDeque<(u32, NodeId)>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            seeds: Vec::new(),
            joined: false,
            learned: 0,
            synced: 1,
            last_sync: None,
            shared_out: Vec::new(),
            answered: std::collections::VecDeque::new(),
        }
    }
}
use crate::wire::{MemberRecord, Message, Meta, NodeId, State, Update};

impl Swim {
    /// Whether a seed (or any member) has answered a join.
    pub fn is_joined(&self) -> bool {
        self.exchange.joined
    }

    /// Joins through `seeds` (retried every `join_retry_interval` until one answers).
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.exchange.seeds = seeds.iter().copied().filter(|a| *a != self.addr).collect();
        self.exchange.seeds.dedup();
        if self.exchange.seeds.is_empty() {
            self.exchange.joined = true;
            return;
        }
        self.exchange.joined = false;
        self.on_join_timer(now);
    }

    /// Replaces the seeds (the join timer, if running, retries them next).
    pub fn set_seeds(&mut self, seeds: &[SocketAddr]) {
        self.exchange.seeds = seeds.iter().copied().filter(|a| *a != self.addr).collect();
        self.exchange.seeds.dedup();
    }

    /// Sets the opaque state sent with every push-pull (the group registry).
    pub fn set_shared(&mut self, shared: Vec<u8>) {
        self.exchange.shared_out = shared;
    }

    /// Gossip round: pending updates go to `gossip_nodes` random members (recently dead
    /// ones included, so a falsely declared member hears of it and refutes).
    /// Rounds run only while there is news (see `Swim::schedule_gossip`).
    pub(super) fn on_gossip_timer(&mut self, now: Instant) {
        self.gossip_tick = now;
        if self.broadcasts.len() == 0 {
            return;
        }
        self.timers
            .set(Timer::Gossip, now + self.cfg.gossip_interval);
        let me = self.me;
        let grace = self.cfg.gossip_to_the_dead;
        let to = self
            .members
            .pick(self.cfg.gossip_nodes, &mut self.rng, |m| {
                m.id != me
                    && (m.is_live()
                        || (m.state == State::Dead && self.members.age(m.since, now) < grace))
            });
        for id in to {
            let msg = self.with_gossip(Vec::new(), |updates| Message::Gossip { updates });
            if matches!(&msg, Message::Gossip { updates } if updates.is_empty()) {
                break;
            }
            self.send_to_member(id, false, &msg);
        }
    }

    /// Periodic full-state exchange with one random live member.
    pub(super) fn on_push_pull_timer(&mut self, now: Instant) {
        let every = self.cfg.push_pull_interval_for(self.members.live());
        if every.is_zero() {
            return; // anti-entropy disabled
        }
        self.timers.set(Timer::PushPull, now + every);
        let me = self.me;
        let to = self
            .members
            .pick(1, &mut self.rng, |m| m.id != me && m.state == State::Alive);
        if let Some(&id) = to.first() {
            self.send_digest(id);
            self.synced_at(now);
        }
    }

    /// Starts an anti-entropy exchange with member `id`: our table's summary first;
    /// only the buckets where the tables differ travel in full (see
    /// [`Message::SyncDigest`]). Two tables that agree cost a kilobyte at 10,000
    /// members instead of two copies of the table.
    fn send_digest(&mut self, id: NodeId) {
        let level = digest::level_for(self.members.len());
        let msg = Message::SyncDigest {
            level,
            hashes: self.members.summary(level),
            shared: self.exchange.shared_out.clone(),
        };
        self.send_to_member(id, true, &msg);
    }

    /// A peer's summary: answer with our records of the buckets that differ, and ask
    /// for theirs.
    pub(super) fn on_sync_digest(
        &mut self,
        from: SocketAddr,
        sender: NodeId,
        level: u8,
        hashes: &[u8],
    ) {
        let Some(buckets) = self.members.differing(level, hashes) else {
            self.stats.malformed += 1;
            return;
        };
        self.stats.syncs_in_agreement += u64::from(buckets.is_empty());
        let members = self.table_records(self.members.records_in(level, &buckets));
        let msg = Message::SyncDiff {
            level,
            buckets,
            members,
            shared: self.exchange.shared_out.clone(),
        };
        self.send(from, Some(sender), true, &msg);
    }

    /// A peer's records of the buckets where our tables differ; when it names them,
    /// it wants ours too.
    pub(super) fn on_sync_diff(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        level: u8,
        buckets: &[u16],
        members: Vec<MemberRecord>,
    ) {
        let valid = level <= digest::FINE_BITS && buckets.len() <= digest::FINE;
        if !valid || buckets.iter().any(|&b| u32::from(b) >= 1 << level) {
            self.stats.malformed += 1;
            return;
        }
        if !buckets.is_empty() {
            // Ours as they were before theirs came in.
            let mine = self.table_records(self.members.records_in(level, buckets));
            let msg = Message::SyncDiff {
                level,
                buckets: Vec::new(),
                members: mine,
                shared: Vec::new(),
            };
            self.send(from, Some(sender), true, &msg);
        }
        let before = self.exchange.learned;
        self.merge_records(now, sender, members);
        // Members this exchange brought: we were behind, and may still be (gossip
        // under a storm loses news for some nodes). Exchange again soon, until an
        // exchange brings nothing; each costs a summary when the tables agree.
        let behind = self.exchange.learned > before;
        self.synced_at(now);
        if behind {
            self.catch_up(now);
        }
    }

    fn synced_at(&mut self, now: Instant) {
        self.exchange.learned = 0;
        self.exchange.synced = self.members.len();
        self.exchange.last_sync = Some(now);
    }

    /// Catch-up anti-entropy. Gossip carries a datagram's worth of news at a time, so
    /// while many members appear at once (a mass join, a healed partition) a node can
    /// be far behind; once gossip, or the last full exchange itself, has grown its
    /// table by a quarter, it exchanges again early (at most once per five probe
    /// periods) instead of waiting out the push-pull period, which grows with the
    /// cluster. Members a join brings do not count.
    pub(super) fn note_learned(&mut self, now: Instant) {
        self.exchange.learned += 1;
        if self.exchange.learned * 4 >= self.exchange.synced.max(8) {
            self.catch_up(now);
        }
    }

    /// Brings the next exchange forward to five probe periods after the last one.
    fn catch_up(&mut self, now: Instant) {
        if self.cfg.push_pull_interval.is_zero() {
            return;
        }
        let gap = self.cfg.probe_interval * 5;
        let soonest = self.exchange.last_sync.map_or(now, |t| t + gap).max(now);
        if self
            .timers
            .deadline(Timer::PushPull)
            .is_some_and(|d| d <= soonest)
        {
            return;
        }
        self.stats.catch_ups += 1;
        self.timers.set(Timer::PushPull, soonest);
    }

    /// Our whole table as a push-pull message (joins).
    fn push_pull_msg(&self, join: bool, reply: bool) -> Message {
        let members = self.members.iter().map(|m| m.record()).collect();
        Message::PushPull {
            join,
            reply,
            members: self.table_records(members),
            shared: self.exchange.shared_out.clone(),
        }
    }

    /// Records to send on a stream; metadata is left out (receivers fetch it by
    /// digest) when all of it would not fit `max_stream_bytes`.
    pub(super) fn table_records(&self, mut members: Vec<MemberRecord>) -> Vec<MemberRecord> {
        let meta_total: usize = members.iter().map(|r| r.meta.len()).sum();
        if meta_total + members.len() * 48 > self.cfg.max_stream_bytes {
            for r in &mut members {
                r.meta.clear();
            }
        }
        members
    }

    pub(super) fn on_push_pull(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        join: bool,
        reply: bool,
        members: Vec<MemberRecord>,
    ) {
        // The answer to our join: what the seed knows, the cluster already knows, so
        // the members it brings are not re-gossiped (each would otherwise be sent
        // `retransmit_limit` times by every joining node).
        let mut quiet = false;
        if !reply {
            let msg = self.push_pull_msg(false, true);
            self.send(from, Some(sender), true, &msg);
        } else if !self.exchange.joined {
            self.exchange.joined = true;
            self.timers.cancel(Timer::Join);
            quiet = true;
            if self.leaving {
                // We left while the join was in flight: the seed has just added us, so
                // it hears of the departure directly (the pending `Left` stays queued).
                let left = Update::Left {
                    id: self.me,
                    incarnation: self.incarnation,
                };
                let msg = Message::Gossip {
                    updates: vec![left],
                };
                self.send(from, Some(sender), true, &msg);
            } else {
                self.announce_after_join(now);
            }
        }
        let _ = join;
        self.merging.set_quiet(quiet);
        self.merge_records(now, sender, members);
        self.merging.set_quiet(false);
        self.synced_at(now);
    }

    /// Records from a full or partial exchange. One that brings a quarter of the table
    /// is news enough for another exchange soon (`note_learned` arms it while
    /// merging): the cluster is changing faster than gossip carries.
    pub(super) fn merge_records(&mut self, now: Instant, sender: NodeId, members: Vec<MemberRecord>) {
        self.members
            .reserve(members.len().saturating_sub(self.members.len()));
        for r in members {
            self.merge_record(now, sender, r);
        }
    }

    /// After a join: announce ourselves too (the seed is then not the only source of
    /// the news, which matters while many nodes join at once), and plan one more full
    /// exchange soon for members that joined at the same moment.
    fn announce_after_join(&mut self, now: Instant) {
        let own = self.own_update(true);
        self.broadcasts.push(own);
        if !self.cfg.push_pull_interval.is_zero() {
            let periods = rand::Rng::random_range(&mut self.rng, 5..=10);
            self.timers
                .set(Timer::PushPull, now + self.cfg.probe_interval * periods);
        }
    }

    /// One remote record. A remote "dead" is only taken as a suspicion (as memberlist
    /// does): the member gets its chance to refute, which matters after a partition.
    fn merge_record(&mut self, now: Instant, sender: NodeId, r: MemberRecord) {
        let meta = if r.meta.is_empty() && r.id != self.me {
            // Stripped (or truly empty): pass the digest we hold if the record is not
            // newer, else an empty inline value would wrongly overwrite.
            match self.members.get(r.id) {
                Some(m) if m.incarnation >= r.incarnation => Meta::Digest(m.meta_digest),
                _ => Meta::Inline(Vec::new()),
            }
        } else {
            Meta::Inline(r.meta)
        };
        let update = match r.state {
            State::Alive => Update::Alive {
                id: r.id,
                addr: r.addr,
                incarnation: r.incarnation,
                meta,
            },
            State::Suspect | State::Dead => Update::Suspect {
                id: r.id,
                incarnation: r.incarnation,
                from: sender,
            },
            State::Left => Update::Left {
                id: r.id,
                incarnation: r.incarnation,
            },
        };
        if r.id == self.me && r.state == State::Dead {
            // Declared dead over there: refute straight back to that side.
            if !self.leaving && r.incarnation >= self.incarnation {
                self.refute(now, r.incarnation, Some(sender));
            }
            return;
        }
        self.apply(now, sender, update);
    }

    /// Join attempt: push-pull with every seed until one answers.
    pub(super) fn on_join_timer(&mut self, now: Instant) {
        if self.exchange.joined || self.leaving || self.exchange.seeds.is_empty() {
            return;
        }
        self.timers
            .set(Timer::Join, now + self.cfg.join_retry_interval);
        let msg = self.push_pull_msg(true, false);
        for addr in self.exchange.seeds.clone() {
            self.send(addr, None, true, &msg);
        }
    }

    /// Healing: when alone, retry the seeds; otherwise push-pull with one dead member,
    /// which after a partition merges the two sides.
    pub(super) fn on_reconnect_timer(&mut self, now: Instant) {
        self.timers
            .set(Timer::Reconnect, now + self.cfg.reconnect_interval);
        if self.members.live() <= 1 && !self.exchange.seeds.is_empty() {
            let i = rand::Rng::random_range(&mut self.rng, 0..self.exchange.seeds.len());
            let msg = self.push_pull_msg(true, false);
            self.send(self.exchange.seeds[i], None, true, &msg);
            return;
        }
        if let Some(id) = self.members.random_dead(&mut self.rng) {
            self.send_digest(id);
        }
    }

    /// Forgets departed and long-dead members.
    pub(super) fn on_reap_timer(&mut self, now: Instant) {
        self.timers.set(Timer::Reap, now + self.reap_interval());
        let (left, dead) = (self.cfg.left_retention, self.cfg.dead_retention);
        let gone: Vec<NodeId> = self
            .members
            .departed()
            .filter(|m| {
                let age = self.members.age(m.since, now);
                (m.state == State::Left && age >= left) || (m.state == State::Dead && age >= dead)
            })
            .map(|m| m.id)
            .filter(|id| *id != self.me)
            .collect();
        for id in gone {
            self.members.remove(id);
            self.broadcasts.remove(id);
        }
    }
}
