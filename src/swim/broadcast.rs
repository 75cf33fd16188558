//! Dissemination: the transmit-limited queue of pending updates. Each update is sent at
//! most `retransmit_mult * ceil(log2(n + 1))` times, fewest-sent first and newest first
//! among equals, packed into whatever room a datagram has left. A newer update about a
//! member replaces the pending one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use super::timer::FixedState;
use crate::wire::{update_len, NodeId, Update};

/// No update encodes in fewer bytes (`Left` with one-byte id and incarnation).
const MIN_UPDATE_LEN: usize = 3;

/// Updates that do not fit the room left, skipped before a datagram is closed.
const MAX_MISSES: usize = 8;

#[derive(Debug)]
struct Entry {
    update: Update,
    len: usize,
    transmits: u32,
    seq: u64,
}

/// Pending updates, one per member.
#[derive(Debug)]
pub(crate) struct Broadcasts {
    entries: HashMap<NodeId, Entry, FixedState>,
    order: BTreeSet<(u32, Reverse<u64>, NodeId)>,
    next_seq: u64,
    max: usize,
    dropped: u64,
}

impl Broadcasts {
    /// An empty queue holding at most `max` updates.
    pub fn new(max: usize) -> Self {
        Broadcasts {
            entries: HashMap::default(),
            order: BTreeSet::new(),
            next_seq: 0,
            max: max.max(1),
            dropped: 0,
        }
    }

    /// Queues `update`, replacing any pending update about the same member. When full,
    /// the most-sent (then oldest) update is dropped.
    pub fn push(&mut self, update: Update) {
        let id = update.id();
        self.remove(id);
        if self.entries.len() >= self.max {
            if let Some(&(t, s, victim)) = self.order.last() {
                self.order.remove(&(t, s, victim));
                self.entries.remove(&victim);
                self.dropped += 1;
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let len = update_len(&update);
        self.order.insert((0, Reverse(seq), id));
        self.entries.insert(
            id,
            Entry {
                update,
                len,
                transmits: 0,
                seq,
            },
        );
    }

    /// Drops the pending update about `id`, if any.
    pub fn remove(&mut self, id: NodeId) {
        if let Some(e) = self.entries.remove(&id) {
            self.order.remove(&(e.transmits, Reverse(e.seq), id));
        }
    }

    /// The pending update about `id`, if any.
    #[cfg(test)]
    pub fn get(&self, id: NodeId) -> Option<&Update> {
        self.entries.get(&id).map(|e| &e.update)
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
        for &(t, s, id) in &self.order {
            if room < MIN_UPDATE_LEN || misses >= MAX_MISSES {
                break;
            }
            if Some(id) == exclude {
                continue;
            }
            let e = &self.entries[&id];
            if e.len <= room {
                room -= e.len;
                picked.push((t, s, id));
            } else {
                misses += 1;
            }
        }
        for key @ (t, s, id) in picked {
            self.order.remove(&key);
            let e = self.entries.get_mut(&id).expect("entry of ordered key");
            out.push(e.update.clone());
            e.transmits = t + 1;
            if e.transmits >= limit {
                self.entries.remove(&id);
            } else {
                self.order.insert((t + 1, s, id));
            }
        }
        if self.entries.is_empty() && self.entries.capacity() > 256 {
            // A burst (a mass join) is over: give its room back.
            self.entries.shrink_to(16);
        }
        out
    }

    /// Number of pending updates.
    pub fn len(&self) -> usize {
        self.entries.len()
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
        assert_eq!(q.get(NodeId(1)), Some(&left(1, 5)));
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
    fn exclude_skips_one_member() {
        let mut q = Broadcasts::new(4);
        q.push(left(1, 0));
        q.push(left(2, 0));
        assert_eq!(q.take(1000, 10, Some(NodeId(2))), vec![left(1, 0)]);
    }
}
