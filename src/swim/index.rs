//! A compact index from node ids to positions in a table: open addressing with linear
//! probing over `u32` slots (4 bytes a slot instead of a hash map's 16 bytes of key and
//! value plus control byte). The keys are not stored: a slot holds a position and the
//! caller resolves the key of a position, so every node keeps one index over its table
//! of every other node at a few bytes a member.

use crate::wire::NodeId;

const EMPTY: u32 = u32::MAX;

/// Grows `v` by about a quarter when full instead of doubling it: the tables hold one
/// entry per cluster member on every node, so doubling's slack is what a large cluster
/// runs out of memory on.
pub(crate) fn grow_for_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.capacity() / 4).max(16));
    }
}

/// Positions by id; `key(pos)` gives the id stored at a position.
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    slots: Vec<u32>,
    len: usize,
}

impl IdIndex {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, id: NodeId) -> usize {
        // Fibonacci hashing: sequential ids spread over the whole table.
        let bits = self.slots.len().trailing_zeros();
        (id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The slot holding `id`, if indexed.
    fn slot_of(&self, id: NodeId, key: impl Fn(u32) -> NodeId) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut s = self.home(id);
        loop {
            match self.slots[s] {
                EMPTY => return None,
                p if key(p) == id => return Some(s),
                _ => s = (s + 1) & mask,
            }
        }
    }

    /// The position of `id`.
    pub fn get(&self, id: NodeId, key: impl Fn(u32) -> NodeId) -> Option<u32> {
        self.slot_of(id, key).map(|s| self.slots[s])
    }

    /// Indexes position `pos`, whose id must not be indexed yet. `key` must resolve
    /// every position indexed so far and `pos` (the table may be rehashed).
    pub fn insert(&mut self, pos: u32, key: impl Fn(u32) -> NodeId) {
        debug_assert!(pos != EMPTY);
        // Keep the load at most 3/4 so probe runs stay short.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow(&key);
        }
        self.place(pos, key(pos));
        self.len += 1;
    }

    fn place(&mut self, pos: u32, id: NodeId) {
        let mask = self.mask();
        let mut s = self.home(id);
        while self.slots[s] != EMPTY {
            s = (s + 1) & mask;
        }
        self.slots[s] = pos;
    }

    fn grow(&mut self, key: &impl Fn(u32) -> NodeId) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; cap]);
        for p in old.into_iter().filter(|&p| p != EMPTY) {
            self.place(p, key(p));
        }
    }

    /// Points the entry of `id` at position `pos` instead.
    pub fn set(&mut self, id: NodeId, pos: u32, key: impl Fn(u32) -> NodeId) {
        let s = self.slot_of(id, key).expect("indexed id");
        self.slots[s] = pos;
    }

    /// Unindexes `id`; returns its position. Later entries of the probe run move back
    /// into the hole (no tombstones).
    pub fn remove(&mut self, id: NodeId, key: impl Fn(u32) -> NodeId) -> Option<u32> {
        let mut hole = self.slot_of(id, &key)?;
        let pos = self.slots[hole];
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let p = self.slots[j];
            if p == EMPTY {
                break;
            }
            let home = self.home(key(p));
            // The entry may fill the hole if the hole lies on its path from home to j.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = p;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        Some(pos)
    }

    /// Number of slots.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn matches_a_hash_map_under_random_inserts_and_removals() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut ids: Vec<NodeId> = Vec::new();
        let mut idx = IdIndex::default();
        let mut model: HashMap<NodeId, ()> = HashMap::new();
        for round in 0..20_000 {
            let remove = !ids.is_empty() && rng.random_bool(0.4);
            if remove {
                // Swap-remove, as the member table does.
                let i = rng.random_range(0..ids.len());
                let id = ids[i];
                let last = ids.len() - 1;
                assert_eq!(idx.remove(id, |p| ids[p as usize]), Some(i as u32));
                if i != last {
                    idx.set(ids[last], i as u32, |p| ids[p as usize]);
                }
                ids.swap_remove(i);
                model.remove(&id);
            } else {
                // Small id range: sequential-ish ids and collisions.
                let id =
                    NodeId(rng.random_range(0..4_000u64) * if round % 2 == 0 { 1 } else { 64 });
                if model.insert(id, ()).is_some() {
                    continue;
                }
                ids.push(id);
                idx.insert(ids.len() as u32 - 1, |p| ids[p as usize]);
            }
            if round % 997 == 0 {
                for (i, &id) in ids.iter().enumerate() {
                    assert_eq!(idx.get(id, |p| ids[p as usize]), Some(i as u32));
                }
                assert_eq!(idx.get(NodeId(u64::MAX), |p| ids[p as usize]), None);
                assert!(idx.capacity() * 3 >= ids.len() * 4);
            }
        }
    }
}
