//! Table digests for anti-entropy: a member table summarised as bucket hashes, so two
//! nodes whose tables agree learn it from a kilobyte instead of exchanging every
//! record, and nodes that disagree exchange only the buckets that differ.
//!
//! Each record (id, incarnation, state, metadata digest) hashes to 64 bits; a member
//! falls in one of [`FINE`] buckets by a hash of its id, and a bucket's hash is the
//! XOR of its records' hashes. The table keeps the fine buckets up to date on every
//! change (two record hashes per change). A digest at `level` groups them into
//! `2^level` coarse buckets (contiguous runs of fine ones, XORed), so the sender can
//! pick how fine a summary its table size deserves.

use crate::wire::{Incarnation, NodeId, State};

/// Bits of the finest bucket index.
pub(crate) const FINE_BITS: u8 = 8;
/// Number of fine buckets.
pub(crate) const FINE: usize = 1 << FINE_BITS;
/// Bytes of one bucket hash on the wire.
pub(crate) const HASH_BYTES: usize = 4;

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of one record as anti-entropy compares it.
pub(crate) fn record_hash(id: NodeId, inc: Incarnation, state: State, meta: u64) -> u64 {
    let state = match state {
        State::Alive => 1,
        State::Suspect => 2,
        State::Dead => 3,
        State::Left => 4,
    };
    mix(mix(mix(mix(id.0) ^ inc) ^ state) ^ meta)
}

/// The fine bucket of member `id`.
pub(crate) fn fine_bucket(id: NodeId) -> usize {
    (mix(id.0 ^ 0x5151_5151) >> (64 - FINE_BITS)) as usize
}

/// The coarse bucket of member `id` at `level` (`level <= FINE_BITS`).
pub(crate) fn bucket_at(id: NodeId, level: u8) -> usize {
    fine_bucket(id) >> (FINE_BITS - level.min(FINE_BITS))
}

/// The level a table of `n` members is summarised at: about 16 members per bucket,
/// from 1 bucket to [`FINE`].
pub(crate) fn level_for(n: usize) -> u8 {
    let buckets = (n / 16).max(1).next_power_of_two().min(FINE);
    buckets.trailing_zeros() as u8
}

/// The fine bucket hashes of a table.
#[derive(Debug, Clone)]
pub(crate) struct TableDigest {
    fine: Box<[u64; FINE]>,
}

impl Default for TableDigest {
    fn default() -> Self {
        TableDigest {
            fine: Box::new([0; FINE]),
        }
    }
}

impl TableDigest {
    /// Adds (or, again, removes) a record whose hash is `h`.
    pub fn toggle(&mut self, id: NodeId, h: u64) {
        self.fine[fine_bucket(id)] ^= h;
    }

    /// The `2^level` coarse bucket hashes, [`HASH_BYTES`] each, little-endian.
    pub fn summary(&self, level: u8) -> Vec<u8> {
        let level = level.min(FINE_BITS);
        let run = 1 << (FINE_BITS - level);
        self.fine
            .chunks(run)
            .flat_map(|c| {
                let h = c.iter().fold(0u64, |a, b| a ^ b);
                let h = (h ^ (h >> 32)) as u32;
                h.to_le_bytes()
            })
            .collect()
    }

    /// The coarse buckets at `level` where `theirs` (a [`TableDigest::summary`] of
    /// another table) differs from ours; `None` when `theirs` is malformed.
    pub fn differing(&self, level: u8, theirs: &[u8]) -> Option<Vec<u16>> {
        if level > FINE_BITS || theirs.len() != HASH_BYTES << level {
            return None;
        }
        let ours = self.summary(level);
        let diff = ours
            .chunks(HASH_BYTES)
            .zip(theirs.chunks(HASH_BYTES))
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| i as u16)
            .collect();
        Some(diff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(records: &[(u64, u64, State)]) -> TableDigest {
        let mut d = TableDigest::default();
        for &(id, inc, st) in records {
            d.toggle(NodeId(id), record_hash(NodeId(id), inc, st, 0));
        }
        d
    }

    #[test]
    fn equal_tables_agree_whatever_the_order() {
        let a = table(&[
            (1, 0, State::Alive),
            (2, 3, State::Suspect),
            (3, 1, State::Dead),
        ]);
        let b = table(&[
            (3, 1, State::Dead),
            (1, 0, State::Alive),
            (2, 3, State::Suspect),
        ]);
        for level in 0..=FINE_BITS {
            assert_eq!(a.summary(level), b.summary(level));
            assert_eq!(a.differing(level, &b.summary(level)), Some(vec![]));
        }
    }

    #[test]
    fn a_changed_or_missing_record_shows_in_its_bucket_only() {
        let base: Vec<(u64, u64, State)> = (1..=500).map(|i| (i, 0, State::Alive)).collect();
        let a = table(&base);
        let mut changed = base.clone();
        changed[41].2 = State::Suspect; // member 42
        changed.remove(99); // member 100
        let b = table(&changed);
        let level = level_for(500);
        assert_eq!(level, 5);
        let diff = a.differing(level, &b.summary(level)).unwrap();
        let mut want = vec![
            bucket_at(NodeId(42), level) as u16,
            bucket_at(NodeId(100), level) as u16,
        ];
        want.sort_unstable();
        want.dedup();
        assert_eq!(diff, want);
    }

    #[test]
    fn removing_what_was_added_restores_the_digest() {
        let mut d = table(&[(7, 2, State::Alive)]);
        let before = d.summary(FINE_BITS);
        let h = record_hash(NodeId(9), 4, State::Left, 77);
        d.toggle(NodeId(9), h);
        assert_ne!(d.summary(FINE_BITS), before);
        d.toggle(NodeId(9), h);
        assert_eq!(d.summary(FINE_BITS), before);
    }

    #[test]
    fn malformed_summaries_are_refused() {
        let d = TableDigest::default();
        assert_eq!(d.differing(3, &[0; 31]), None);
        assert_eq!(d.differing(9, &[0; HASH_BYTES << 9]), None);
        assert_eq!(d.differing(0, &[0; HASH_BYTES]), Some(vec![]));
    }

    #[test]
    fn levels_grow_with_the_table() {
        assert_eq!(level_for(1), 0);
        assert_eq!(level_for(32), 1);
        assert_eq!(level_for(1000), 6);
        assert_eq!(level_for(10_000), 8);
        assert_eq!(level_for(1 << 20), FINE_BITS);
    }
}
