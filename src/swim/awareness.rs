//! Lifeguard's local health multiplier: a node that misses its own deadlines (no ack,
//! missing nacks, having to refute) concludes *it* is slow and stretches its probe
//! interval and timeout instead of accusing healthy members.

use std::time::Duration;

/// The local health score, `0..=max`; 0 is healthy.
#[derive(Clone, Debug)]
pub(crate) struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    /// A healthy score with the given ceiling (0 disables the multiplier).
    pub fn new(max: u32) -> Self {
        Awareness { score: 0, max }
    }

    /// Adds `delta` (may be negative), clamped to `0..=max`.
    pub fn apply(&mut self, delta: i32) {
        let next = i64::from(self.score) + i64::from(delta);
        self.score = next.clamp(0, i64::from(self.max)) as u32;
    }

    /// The current score.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// `d` stretched by the score: `d * (score + 1)`.
    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_scales() {
        let mut a = Awareness::new(8);
        a.apply(-3);
        assert_eq!(a.score(), 0);
        a.apply(5);
        a.apply(5);
        assert_eq!(a.score(), 8);
        assert_eq!(
            a.scale(Duration::from_millis(100)),
            Duration::from_millis(900)
        );
        a.apply(-1);
        assert_eq!(a.score(), 7);
        let mut off = Awareness::new(0);
        off.apply(3);
        assert_eq!(
            off.scale(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
