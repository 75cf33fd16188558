//! The cluster-wide registry of groups: which groups exist. A last-writer-wins map
//! keyed by group name; each entry carries a Lamport stamp and its author, and the
//! higher `(stamp, author)` wins, so every node that has seen the same entries agrees
//! whatever the order it saw them in. A creation is an entry with `exists = true`, a
//! deletion one with `exists = false` (a tombstone, kept so an old creation cannot
//! bring the group back).
//!
//! Entries spread with their author's node state (fast, by gossip) and with every
//! push-pull (so they outlive their author).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::NodeId;

/// One registry entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The group.
    pub name: String,
    /// Lamport stamp: above every stamp the author had seen.
    pub stamp: u64,
    /// The node that wrote it (breaks ties between equal stamps).
    pub author: NodeId,
    /// Created (`true`) or deleted (`false`).
    pub exists: bool,
}

impl Entry {
    fn key(&self) -> (u64, NodeId, bool) {
        (self.stamp, self.author, self.exists)
    }
}

/// What merging an entry changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing (the entry was not newer, or did not change existence).
    None,
    /// The group now exists.
    Created,
    /// The group no longer exists.
    Deleted,
}

/// The registry: at most `max` entries; when full, the oldest tombstone is forgotten
/// to make room, and a creation with no tombstone to forget is refused.
#[derive(Clone, Debug)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
    clock: u64,
    max: usize,
    version: u64,
}

impl Registry {
    /// An empty registry holding at most `max` entries.
    pub fn new(max: usize) -> Self {
        Registry {
            entries: BTreeMap::new(),
            clock: 0,
            max,
            version: 0,
        }
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|e| e.exists)
    }

    /// Every existing group, by name.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.entries
            .values()
            .filter(|e| e.exists)
            .map(|e| e.name.as_str())
    }

    /// Bumped by every accepted entry.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every entry (for push-pull).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// A new local entry for `name` by `author` (not merged yet). The clock stops at
    /// `u64::MAX` (only a malformed or hostile stamp gets it there) rather than wrap.
    pub fn stamp(&mut self, name: &str, author: NodeId, exists: bool) -> Entry {
        self.clock = self.clock.saturating_add(1);
        Entry {
            name: name.to_owned(),
            stamp: self.clock,
            author,
            exists,
        }
    }

    /// Whether there is room for one more group.
    pub fn has_room(&self, name: &str) -> bool {
        self.entries.contains_key(name)
            || self.entries.len() < self.max
            || self.entries.values().any(|e| !e.exists)
    }

    /// Merges `e`: kept if its `(stamp, author)` is higher than the entry held.
    pub fn merge(&mut self, e: Entry) -> Change {
        self.clock = self.clock.max(e.stamp);
        let before = self.exists(&e.name);
        match self.entries.get(&e.name) {
            Some(old) if old.key() >= e.key() => return Change::None,
            Some(_) => {}
            None => {
                if self.entries.len() >= self.max && !self.forget_oldest_tombstone() {
                    return Change::None;
                }
            }
        }
        let now = e.exists;
        self.entries.insert(e.name.clone(), e);
        self.version += 1;
        match (before, now) {
            (false, true) => Change::Created,
            (true, false) => Change::Deleted,
            _ => Change::None,
        }
    }

    fn forget_oldest_tombstone(&mut self) -> bool {
        let oldest = self
            .entries
            .values()
            .filter(|e| !e.exists)
            .min_by_key(|e| e.key())
            .map(|e| e.name.clone());
        oldest.is_some_and(|n| self.entries.remove(&n).is_some())
    }

    /// The wire form of every entry (postcard), for push-pull.
    pub fn encode(&self) -> Vec<u8> {
        let all: Vec<&Entry> = self.entries.values().collect();
        postcard::to_allocvec(&all).unwrap_or_default()
    }

    /// Reads entries sent by push-pull; malformed bytes read as none.
    pub fn decode(bytes: &[u8]) -> Vec<Entry> {
        postcard::from_bytes(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, stamp: u64, author: u64, exists: bool) -> Entry {
        Entry {
            name: name.into(),
            stamp,
            author: NodeId(author),
            exists,
        }
    }

    #[test]
    fn higher_stamp_wins_in_any_order() {
        let entries = [e("g", 1, 1, true), e("g", 2, 1, false), e("g", 2, 2, true)];
        let mut orders = vec![vec![0, 1, 2], vec![2, 1, 0], vec![1, 0, 2], vec![1, 2, 0]];
        orders.dedup();
        for order in orders {
            let mut r = Registry::new(8);
            for i in order {
                r.merge(entries[i].clone());
            }
            assert!(r.exists("g"), "(2, node 2) wins");
        }
    }

    #[test]
    fn merge_reports_changes_and_stamps_follow_the_clock() {
        let mut r = Registry::new(8);
        assert_eq!(r.merge(e("g", 5, 1, true)), Change::Created);
        assert_eq!(r.merge(e("g", 5, 1, true)), Change::None);
        let del = r.stamp("g", NodeId(2), false);
        assert!(del.stamp > 5);
        assert_eq!(r.merge(del), Change::Deleted);
        assert_eq!(r.merge(e("g", 3, 9, true)), Change::None, "older creation");
        assert_eq!(r.groups().count(), 0);
    }

    #[test]
    fn full_registry_forgets_tombstones_first() {
        let mut r = Registry::new(2);
        r.merge(e("a", 1, 1, true));
        r.merge(e("b", 2, 1, false));
        assert!(r.has_room("c"));
        assert_eq!(r.merge(e("c", 3, 1, true)), Change::Created);
        assert!(!r.has_room("d"));
        assert_eq!(r.merge(e("d", 4, 1, true)), Change::None);
        assert!(r.exists("a") && r.exists("c") && !r.exists("d"));
    }

    #[test]
    fn encode_round_trips_and_garbage_is_empty() {
        let mut r = Registry::new(8);
        r.merge(e("a", 1, 1, true));
        r.merge(e("b", 2, 3, false));
        let back = Registry::decode(&r.encode());
        assert_eq!(back.len(), 2);
        assert!(Registry::decode(&[0xff, 0x01]).is_empty());
    }

    #[test]
    fn a_stamp_at_the_top_of_the_clock_saturates() {
        // Found by fuzzing (target `engine`): merging an entry stamped `u64::MAX`, then
        // creating a group, overflowed the clock.
        let mut r = Registry::new(8);
        r.merge(e("g", u64::MAX, 2, true));
        let mine = r.stamp("h", NodeId(1), true);
        assert_eq!(mine.stamp, u64::MAX);
        assert_eq!(r.merge(mine), Change::Created);
    }
}
