//! A suspicion and its timeout. With Lifeguard the timeout starts at `max` and shrinks
//! toward `min` as independent confirmations arrive:
//! `max(min, max - (max - min) * log(c + 1) / log(k + 1))` for `c` confirmations out of
//! the `k` expected.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::wire::{Incarnation, NodeId};

/// One member under suspicion.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    /// The incarnation suspected.
    pub incarnation: Incarnation,
    start: Instant,
    min: Duration,
    max: Duration,
    k: u32,
    /// Distinct members that suspected it (the first accuser included).
    accusers: BTreeSet<NodeId>,
}

impl Suspicion {
    /// A suspicion raised by `from` at `start`.
    pub fn new(
        incarnation: Incarnation,
        from: NodeId,
        start: Instant,
        min: Duration,
        max: Duration,
        k: u32,
    ) -> Self {
        let mut accusers = BTreeSet::new();
        accusers.insert(from);
        Suspicion {
            incarnation,
            start,
            min,
            max: max.max(min),
            k,
            accusers,
        }
    }

    /// Records a confirmation; true when `from` is a new, independent accuser (only
    /// those shorten the timeout, and only they are worth re-gossiping).
    pub fn confirm(&mut self, from: NodeId) -> bool {
        if self.accusers.len() as u32 > self.k {
            return false;
        }
        self.accusers.insert(from)
    }

    /// When the member is declared dead unless it refutes.
    pub fn deadline(&self) -> Instant {
        let confirmations = self.accusers.len().saturating_sub(1) as u32;
        self.start + timeout(self.min, self.max, self.k, confirmations)
    }
}

/// Lifeguard's dynamic suspicion timeout for `c` confirmations out of `k` expected.
pub(crate) fn timeout(min: Duration, max: Duration, k: u32, c: u32) -> Duration {
    if k == 0 || max <= min {
        return min;
    }
    let frac = (f64::from(c) + 1.0).ln() / (f64::from(k) + 1.0).ln();
    let shrink = (max - min).as_secs_f64() * frac.min(1.0);
    let t = max.as_secs_f64() - shrink;
    Duration::from_secs_f64(t).max(min)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need some instant as an origin
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(6);

    #[test]
    fn no_confirmation_waits_max_and_k_reaches_min() {
        assert_eq!(timeout(MIN, MAX, 3, 0), MAX);
        assert_eq!(timeout(MIN, MAX, 3, 3), MIN);
        assert_eq!(timeout(MIN, MAX, 3, 10), MIN);
    }

    #[test]
    fn shrinks_logarithmically() {
        // k=3, c=1: 6 - 5 * ln2/ln4 = 3.5s
        let t = timeout(MIN, MAX, 3, 1);
        assert!((t.as_secs_f64() - 3.5).abs() < 1e-9, "{t:?}");
        let t2 = timeout(MIN, MAX, 3, 2);
        assert!(t2 < t && t2 > MIN);
    }

    #[test]
    fn plain_swim_uses_min() {
        assert_eq!(timeout(MIN, MAX, 0, 0), MIN);
        assert_eq!(timeout(MIN, MIN, 3, 0), MIN);
    }

    #[test]
    fn only_independent_confirmations_count() {
        let t0 = Instant::now();
        let mut s = Suspicion::new(1, NodeId(1), t0, MIN, MAX, 2);
        assert_eq!(s.deadline(), t0 + MAX);
        assert!(!s.confirm(NodeId(1)));
        assert_eq!(s.deadline(), t0 + MAX);
        assert!(s.confirm(NodeId(2)));
        assert!(s.deadline() < t0 + MAX);
        assert!(s.confirm(NodeId(3)));
        assert_eq!(s.deadline(), t0 + MIN);
        assert!(
            !s.confirm(NodeId(4)),
            "beyond k confirmations nothing changes"
        );
    }
}
