//! The timer table: one absolute deadline per timer key, the earliest one polled.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

/// Deterministic hasher state (no per-process random keys, so simulations replay).
pub(crate) type FixedState = BuildHasherDefault<FastHasher>;

/// A fast multiplicative hasher for the small keys of the engine's tables (node ids,
/// sequence numbers, timer keys). The keys come from authenticated cluster members
/// only, so SipHash's flooding resistance buys nothing here, and it dominated the cost
/// of applying gossip.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so the low bits (bucket index) depend on every input bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

/// Deadlines keyed by an enum; setting a key again moves its deadline.
#[derive(Debug)]
pub(crate) struct Timers<K: Ord + Hash + Copy> {
    by_key: HashMap<K, Instant, FixedState>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Hash + Copy> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            by_key: HashMap::default(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Hash + Copy> Timers<K> {
    /// Arms (or re-arms) `key` to fire at `at`.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Disarms `key`.
    pub fn cancel(&mut self, key: K) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
    }

    /// The deadline of `key`, if armed.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Removes and returns one key due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_key.remove(&key);
        Some(key)
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need some instant as an origin
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_rearm_moves() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::default();
        t.set(1u8, t0 + ms(30));
        t.set(2u8, t0 + ms(10));
        t.set(3u8, t0 + ms(20));
        t.set(2u8, t0 + ms(40)); // moved
        assert_eq!(t.next(), Some(t0 + ms(20)));
        assert_eq!(t.pop_due(t0 + ms(25)), Some(3));
        assert_eq!(t.pop_due(t0 + ms(25)), None);
        t.cancel(1);
        assert_eq!(t.pop_due(t0 + ms(100)), Some(2));
        assert_eq!(t.len(), 0);
    }
}
