//! The timer table: one absolute deadline per timer key, the earliest one polled.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

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

/// The first tick of a grid `last + k * every` (k ≥ 1) at or after `now`: where a
/// periodic timer that was left idle since `last` picks up again.
pub(crate) fn next_tick(last: Instant, every: Duration, now: Instant) -> Instant {
    let since = now.saturating_duration_since(last).as_nanos();
    let step = every.as_nanos().max(1);
    let k = since.div_ceil(step).max(1);
    let k = u32::try_from(k).unwrap_or(u32::MAX);
    last + every * k
}

/// Deadlines keyed by an enum; setting a key again moves its deadline.
///
/// A node normally has half a dozen timers armed (probe, probe timeout, gossip,
/// push-pull, reconnect, reap), and every event it handles reads and moves some of
/// them, so they live in one small vector that a scan covers in a cache line or three.
/// Past [`Timers::SMALL`] keys (a mass failure arms a suspicion timer per member) the
/// table switches to a key index plus a time-ordered set, and back once it drains to
/// a quarter of that. Both forms give the same order: earliest first, ties by key.
#[derive(Debug)]
pub(crate) enum Timers<K: Ord + Hash + Copy> {
    /// Few keys: unsorted (deadline, key) pairs.
    Small(Vec<(Instant, K)>),
    /// Many keys.
    Large {
        by_key: HashMap<K, Instant, FixedState>,
        by_time: BTreeSet<(Instant, K)>,
    },
}

impl<K: Ord + Hash + Copy> Default for Timers<K> {
    fn default() -> Self {
        Timers::Small(Vec::new())
    }
}

impl<K: Ord + Hash + Copy> Timers<K> {
    /// Most keys kept in the small form.
    pub const SMALL: usize = 32;

    /// Arms (or re-arms) `key` to fire at `at`.
    pub fn set(&mut self, key: K, at: Instant) {
        match self {
            Timers::Small(v) => {
                if let Some(slot) = v.iter_mut().find(|(_, k)| *k == key) {
                    slot.0 = at;
                    return;
                }
                v.push((at, key));
                if v.len() > Self::SMALL {
                    self.grow();
                }
            }
            Timers::Large { by_key, by_time } => {
                if let Some(old) = by_key.insert(key, at) {
                    by_time.remove(&(old, key));
                }
                by_time.insert((at, key));
            }
        }
    }

    /// Disarms `key`.
    pub fn cancel(&mut self, key: K) {
        match self {
            Timers::Small(v) => {
                if let Some(i) = v.iter().position(|(_, k)| *k == key) {
                    v.swap_remove(i);
                }
            }
            Timers::Large { by_key, by_time } => {
                if let Some(old) = by_key.remove(&key) {
                    by_time.remove(&(old, key));
                }
                self.shrink();
            }
        }
    }

    /// The deadline of `key`, if armed.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        match self {
            Timers::Small(v) => v.iter().find(|(_, k)| *k == key).map(|(t, _)| *t),
            Timers::Large { by_key, .. } => by_key.get(&key).copied(),
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        match self {
            Timers::Small(v) => v.iter().map(|(t, _)| *t).min(),
            Timers::Large { by_time, .. } => by_time.first().map(|(t, _)| *t),
        }
    }

    /// Removes and returns one key due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        match self {
            Timers::Small(v) => {
                let (i, &(at, key)) = v.iter().enumerate().min_by_key(|(_, e)| **e)?;
                if at > now {
                    return None;
                }
                v.swap_remove(i);
                Some(key)
            }
            Timers::Large { by_key, by_time } => {
                let &(at, key) = by_time.first()?;
                if at > now {
                    return None;
                }
                by_time.pop_first();
                by_key.remove(&key);
                self.shrink();
                Some(key)
            }
        }
    }

    /// Number of armed timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        match self {
            Timers::Small(v) => v.len(),
            Timers::Large { by_key, .. } => by_key.len(),
        }
    }

    /// Small form to large.
    fn grow(&mut self) {
        if let Timers::Small(v) = self {
            let by_key = v.iter().map(|&(t, k)| (k, t)).collect();
            let by_time = v.drain(..).collect();
            *self = Timers::Large { by_key, by_time };
        }
    }

    /// Large form back to small once it holds a quarter of [`Timers::SMALL`].
    fn shrink(&mut self) {
        if let Timers::Large { by_time, .. } = self {
            if by_time.len() <= Self::SMALL / 4 {
                let v = std::mem::take(by_time).into_iter().collect();
                *self = Timers::Small(v);
            }
        }
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

    #[test]
    fn idle_periodic_timer_resumes_on_its_grid() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_tick(t0, ms(100), t0), t0 + ms(100));
        assert_eq!(next_tick(t0, ms(100), t0 + ms(1)), t0 + ms(100));
        assert_eq!(next_tick(t0, ms(100), t0 + ms(100)), t0 + ms(100));
        assert_eq!(next_tick(t0, ms(100), t0 + ms(101)), t0 + ms(200));
        assert_eq!(next_tick(t0, ms(100), t0 + ms(3050)), t0 + ms(3100));
    }

    /// The two forms agree with each other and with a plain model, through growth
    /// past the small limit and the shrink back.
    #[test]
    fn both_forms_keep_the_same_order() {
        let t0 = Instant::now();
        let at = |x: u64| t0 + Duration::from_millis(x);
        let mut t = Timers::default();
        let mut model: BTreeSet<(Instant, u32)> = BTreeSet::new();
        let mut rng = 12345u64;
        let mut step = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now = 0;
        let (mut large, mut back) = (false, false);
        for round in 0..4000 {
            let r = step();
            let key = (r % 97) as u32;
            let old = model.iter().find(|(_, k)| *k == key).copied();
            // First fill (sets win), then drain (cancels and expiries win).
            let set = if round < 2000 { r % 5 < 3 } else { r % 5 == 0 };
            match if set { 0 } else { 3 + r % 2 } {
                0 => {
                    let later = if round < 2000 { 10_000 } else { 0 };
                    let when = at(now + later + step() % 50);
                    if let Some(o) = old {
                        model.remove(&o);
                    }
                    model.insert((when, key));
                    t.set(key, when);
                }
                3 => {
                    if let Some(o) = old {
                        model.remove(&o);
                    }
                    t.cancel(key);
                }
                _ => {
                    now += step() % 20;
                    while let Some(k) = t.pop_due(at(now)) {
                        let first = model.pop_first().expect("model has it");
                        assert_eq!((round, first.1), (round, k));
                        assert!(first.0 <= at(now));
                    }
                    assert!(model.first().map_or(true, |(w, _)| *w > at(now)));
                }
            }
            assert_eq!(t.len(), model.len());
            assert_eq!(t.next(), model.first().map(|(w, _)| *w));
            assert_eq!(
                t.deadline(key),
                model.iter().find(|(_, k)| *k == key).map(|e| e.0)
            );
            let is_large = matches!(t, Timers::Large { .. });
            back |= large && !is_large;
            large |= is_large;
        }
        assert!(large && back, "both forms and the way back were exercised");
    }
}
