//! Dissemination: the transmit-limited queue of pending updates. Each update is sent at
//! most `retransmit_mult * ceil(log2(n + 1))` times, fewest-sent first and newest first
//! among equals, packed into whatever room a datagram has left. A newer update about a
//! member replaces the pending one.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::index::{grow_for_one, IdIndex};
use crate::wire::{update_len, Incarnation, Meta, NodeId, Update};

/// No update encodes in fewer bytes (`Left` with one-byte id and incarnation).
const MIN_UPDATE_LEN: usize = 3;

/// Updates that do not fit the room left, skipped before a datagram is closed.
const MAX_MISSES: usize = 8;

/// What an entry holds; the common updates are stored without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Alive, IPv4, empty inline metadata.
    Alive,
    /// Alive, IPv4, metadata by digest (`word`).
    AliveDigest,
    /// Suspect, accused by `word`.
    Suspect,
    /// Dead, declared by `word`.
    Dead,
    Left,
    /// Anything else (IPv6 address, inline metadata): the update itself, boxed.
    Boxed,
}

/// A pending update (56 bytes; during a mass join every node holds thousands).
#[derive(Debug)]
struct Entry {
    id: NodeId,
    incarnation: Incarnation,
    /// The metadata digest or the accuser, as `kind` says.
    word: u64,
    seq: u64,
    boxed: Option<Box<Update>>,
    v4: SocketAddrV4,
    kind: Kind,
    transmits: u32,
    len: u32,
}

impl Entry {
    fn new(update: Update, len: usize, seq: u64) -> Self {
        let mut e = Entry {
            id: update.id(),
            incarnation: 0,
            word: 0,
            seq,
            boxed: None,
            v4: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            kind: Kind::Left,
            transmits: 0,
            len: u32::try_from(len).unwrap_or(u32::MAX),
        };
        match update {
            Update::Alive {
                addr: SocketAddr::V4(a),
                incarnation,
                meta,
                ..
            } if !matches!(&meta, Meta::Inline(b) if !b.is_empty()) => {
                e.v4 = a;
                e.incarnation = incarnation;
                (e.kind, e.word) = match meta {
                    Meta::Digest(d) => (Kind::AliveDigest, d),
                    Meta::Inline(_) => (Kind::Alive, 0),
                };
            }
            Update::Suspect {
                incarnation, from, ..
            } => (e.kind, e.incarnation, e.word) = (Kind::Suspect, incarnation, from.0),
            Update::Dead {
                incarnation, from, ..
            } => (e.kind, e.incarnation, e.word) = (Kind::Dead, incarnation, from.0),
            Update::Left { incarnation, .. } => (e.kind, e.incarnation) = (Kind::Left, incarnation),
            other => (e.kind, e.boxed) = (Kind::Boxed, Some(Box::new(other))),
        }
        e
    }

    fn update(&self) -> Update {
        let (id, incarnation) = (self.id, self.incarnation);
        let alive = |meta| Update::Alive {
            id,
            addr: SocketAddr::V4(self.v4),
            incarnation,
            meta,
        };
        match self.kind {
            Kind::Alive => alive(Meta::Inline(Vec::new())),
            Kind::AliveDigest => alive(Meta::Digest(self.word)),
            Kind::Suspect => Update::Suspect {
                id,
                incarnation,
                from: NodeId(self.word),
            },
            Kind::Dead => Update::Dead {
                id,
                incarnation,
                from: NodeId(self.word),
            },
            Kind::Left => Update::Left { id, incarnation },
            Kind::Boxed => (**self.boxed.as_ref().expect("boxed update")).clone(),
        }
    }
}

/// Pending updates, one per member. Entries live in slots that do not move (freed
/// slots are reused), indexed by member id and ordered by (transmits, newest first).
#[derive(Debug)]
pub(crate) struct Broadcasts {
    slots: Vec<Entry>,
    free: Vec<u32>,
    index: IdIndex,
    order: BTreeSet<(u32, Reverse<u64>, u32)>,
    next_seq: u64,
    max: usize,
    dropped: u64,
}

impl Broadcasts {
    /// An empty queue holding at most `max` updates.
    pub fn new(max: usize) -> Self {
        Broadcasts {
            slots: Vec::new(),
            free: Vec::new(),
            index: IdIndex::default(),
            order: BTreeSet::new(),
            next_seq: 0,
            max: max.max(1),
            dropped: 0,
        }
    }

    /// Queues `update`, replacing any pending update about the same member. When full,
    /// the most-sent (then oldest) update is dropped.
    pub fn push(&mut self, update: Update) {
        self.remove(update.id());
        if self.len() >= self.max {
            if let Some(&(t, s, victim)) = self.order.last() {
                self.order.remove(&(t, s, victim));
                self.release(victim);
                self.dropped += 1;
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let len = update_len(&update);
        let e = Entry::new(update, len, seq);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = e;
                slot
            }
            None => {
                grow_for_one(&mut self.slots);
                self.slots.push(e);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 updates")
            }
        };
        let slots = &self.slots;
        self.index.insert(slot, |p| slots[p as usize].id);
        self.order.insert((0, Reverse(seq), slot));
    }

    /// Unindexes the entry in `slot` and frees the slot (its key must be out of `order`).
    fn release(&mut self, slot: u32) {
        let slots = &self.slots;
        self.index
            .remove(slots[slot as usize].id, |p| slots[p as usize].id);
        self.slots[slot as usize].boxed = None;
        self.free.push(slot);
        if self.len() == 0 {
            self.slots.clear();
            self.free.clear();
            if self.slots.capacity() > 256 {
                // A burst (a mass join) is over: give its room back.
                self.slots = Vec::new();
                self.free = Vec::new();
                self.index = IdIndex::default();
            }
        }
    }

    fn slot_of(&self, id: NodeId) -> Option<u32> {
        let slots = &self.slots;
        self.index.get(id, |p| slots[p as usize].id)
    }

    /// Drops the pending update about `id`, if any.
    pub fn remove(&mut self, id: NodeId) {
        if let Some(slot) = self.slot_of(id) {
            let e = &self.slots[slot as usize];
            self.order.remove(&(e.transmits, Reverse(e.seq), slot));
            self.release(slot);
        }
    }

    /// The pending update about `id`, if any.
    #[cfg(test)]
    pub fn get(&self, id: NodeId) -> Option<Update> {
        self.slot_of(id).map(|s| self.slots[s as usize].update())
    }

    /// Takes updates fitting in `budget` bytes (each counted as sent once), skipping
    /// `exclude`. Updates sent `limit` times are retired.
    pub fn take(&mut self, budget: usize, limit: u32, exclude: Option<NodeId>) -> Vec<Update> {
        let mut out = Vec::new();
        let mut picked = Vec::new();
        let mut room = budget;
        // Stop after a few updates that do not fit: scanning a long queue for one small
        // enough would make every datagram cost O(queue).
        let mut misses = 0;
        for &(t, s, slot) in &self.order {
            if room < MIN_UPDATE_LEN || misses >= MAX_MISSES {
                break;
            }
            let e = &self.slots[slot as usize];
            if Some(e.id) == exclude {
                continue;
            }
            let len = e.len as usize;
            if len <= room {
                room -= len;
                picked.push((t, s, slot));
            } else {
                misses += 1;
            }
        }
        for key @ (t, s, slot) in picked {
            self.order.remove(&key);
            let e = &mut self.slots[slot as usize];
            out.push(e.update());
            e.transmits = t + 1;
            if e.transmits >= limit {
                self.release(slot);
            } else {
                self.order.insert((t + 1, s, slot));
            }
        }
        out
    }

    /// Number of pending updates.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Updates dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(id: u64, inc: u64) -> Update {
        Update::Left {
            id: NodeId(id),
            incarnation: inc,
        }
    }

    #[test]
    fn each_update_is_sent_limit_times() {
        let mut q = Broadcasts::new(16);
        q.push(left(1, 0));
        for _ in 0..3 {
            assert_eq!(q.take(1000, 3, None).len(), 1);
        }
        assert!(q.take(1000, 3, None).is_empty());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn fewest_sent_then_newest_first_within_budget() {
        let mut q = Broadcasts::new(16);
        q.push(left(1, 0));
        q.push(left(2, 0));
        let one = update_len(&left(1, 0));
        // Room for one: the newest (2) goes first.
        assert_eq!(q.take(one, 10, None), vec![left(2, 0)]);
        // Now 1 has been sent fewer times than 2.
        assert_eq!(q.take(one, 10, None), vec![left(1, 0)]);
    }

    #[test]
    fn newer_update_replaces_pending_one() {
        let mut q = Broadcasts::new(16);
        q.push(left(1, 0));
        q.take(1000, 10, None);
        q.push(left(1, 5));
        assert_eq!(q.len(), 1);
        assert_eq!(q.get(NodeId(1)), Some(left(1, 5)));
    }

    #[test]
    fn full_queue_drops_most_sent() {
        let mut q = Broadcasts::new(2);
        q.push(left(1, 0));
        q.take(1000, 10, None);
        q.push(left(2, 0));
        q.push(left(3, 0));
        assert_eq!(q.len(), 2);
        assert!(q.get(NodeId(1)).is_none());
        assert_eq!(q.dropped(), 1);
    }

    #[test]
    fn entries_are_compact_and_round_trip() {
        assert!(std::mem::size_of::<Entry>() <= 56);
        let alive = |addr: &str, meta| Update::Alive {
            id: NodeId(7),
            addr: addr.parse().unwrap(),
            incarnation: 3,
            meta,
        };
        let all = [
            alive("10.0.0.1:7000", Meta::Inline(Vec::new())),
            alive("10.0.0.1:7000", Meta::Inline(vec![1, 2])),
            alive("10.0.0.1:7000", Meta::Digest(99)),
            alive("[::1]:7000", Meta::Digest(99)),
            Update::Suspect {
                id: NodeId(7),
                incarnation: 3,
                from: NodeId(9),
            },
            Update::Dead {
                id: NodeId(7),
                incarnation: 3,
                from: NodeId(9),
            },
            left(7, 3),
        ];
        for u in all {
            assert_eq!(Entry::new(u.clone(), update_len(&u), 1).update(), u);
        }
    }

    /// The queue as a plain map and ordered set, to check the slot bookkeeping against.
    #[derive(Default)]
    struct Model {
        entries: std::collections::HashMap<NodeId, (Update, u32, u64)>,
        next_seq: u64,
    }

    impl Model {
        fn push(&mut self, u: Update, max: usize) {
            self.entries.remove(&u.id());
            if self.entries.len() >= max {
                let victim = *self
                    .entries
                    .iter()
                    .max_by_key(|(_, (_, t, s))| (*t, Reverse(*s)))
                    .unwrap()
                    .0;
                self.entries.remove(&victim);
            }
            self.next_seq += 1;
            self.entries.insert(u.id(), (u, 0, self.next_seq));
        }

        fn take(&mut self, budget: usize, limit: u32, exclude: Option<NodeId>) -> Vec<Update> {
            let mut keys: Vec<_> = self
                .entries
                .iter()
                .map(|(id, (_, t, s))| (*t, Reverse(*s), *id))
                .collect();
            keys.sort();
            let (mut room, mut misses, mut out) = (budget, 0, Vec::new());
            for (_, _, id) in keys {
                if room < MIN_UPDATE_LEN || misses >= MAX_MISSES {
                    break;
                }
                if Some(id) == exclude {
                    continue;
                }
                let len = update_len(&self.entries[&id].0);
                if len > room {
                    misses += 1;
                    continue;
                }
                room -= len;
                let e = self.entries.get_mut(&id).unwrap();
                out.push(e.0.clone());
                e.1 += 1;
                if e.1 >= limit {
                    self.entries.remove(&id);
                }
            }
            out
        }
    }

    #[test]
    fn matches_the_model_under_random_use() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(11);
        let (mut q, mut m) = (Broadcasts::new(40), Model::default());
        for _ in 0..20_000 {
            let id = NodeId(rng.random_range(0..60));
            match rng.random_range(0..10) {
                0..=4 => {
                    let u = if rng.random_bool(0.5) {
                        left(id.0, rng.random_range(0..1000))
                    } else {
                        Update::Alive {
                            id,
                            addr: SocketAddr::from(([10, 0, 0, 1], 7000)),
                            incarnation: rng.random_range(0..1 << 20),
                            meta: Meta::Inline(vec![0; rng.random_range(0..3)]),
                        }
                    };
                    q.push(u.clone());
                    m.push(u, 40);
                }
                5 => {
                    q.remove(id);
                    m.entries.remove(&id);
                }
                _ => {
                    let budget = rng.random_range(0..120);
                    let ex = rng.random_bool(0.2).then_some(id);
                    assert_eq!(q.take(budget, 4, ex), m.take(budget, 4, ex));
                }
            }
            assert_eq!(q.len(), m.entries.len());
        }
    }

    #[test]
    fn exclude_skips_one_member() {
        let mut q = Broadcasts::new(4);
        q.push(left(1, 0));
        q.push(left(2, 0));
        assert_eq!(q.take(1000, 10, Some(NodeId(2))), vec![left(1, 0)]);
    }
}
