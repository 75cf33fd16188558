//! Incremental bookkeeping of every node's view of the membership, compared with the
//! truth (which nodes are really up), so that "every view is complete and correct" and
//! "every node has noticed the crash" are O(1) questions after each event.

use crate::net::NodeIdx;

/// Who sees whom as live, against who is up.
#[derive(Debug)]
pub struct Views {
    n: usize,
    words: usize,
    /// Row `o`, bit `m`: node `o` sees `m` as live (alive or suspect).
    bits: Vec<u64>,
    up: Vec<bool>,
    /// Per observer: members whose liveness it gets wrong.
    wrong: Vec<u32>,
    n_up: usize,
    /// Up observers with at least one wrong member.
    wrong_observers: usize,
    /// Per subject: up observers that see it as live.
    seen_by: Vec<u32>,
}

impl Views {
    /// `n` nodes, all up, each seeing only itself.
    pub fn new(n: usize) -> Self {
        let words = n.div_ceil(64).max(1);
        let mut v = Views {
            n,
            words,
            bits: vec![0; n * words],
            up: vec![true; n],
            wrong: vec![n.saturating_sub(1) as u32; n],
            n_up: n,
            wrong_observers: if n > 1 { n } else { 0 },
            seen_by: vec![1; n],
        };
        for o in 0..n {
            v.bits[o * words + o / 64] |= 1 << (o % 64);
        }
        v
    }

    fn bit(&self, o: usize, m: usize) -> bool {
        self.bits[o * self.words + m / 64] & (1 << (m % 64)) != 0
    }

    fn set_wrong(&mut self, o: usize, delta: i32) {
        let before = self.wrong[o];
        let after = (i64::from(before) + i64::from(delta)) as u32;
        self.wrong[o] = after;
        if self.up[o] {
            match (before == 0, after == 0) {
                (true, false) => self.wrong_observers += 1,
                (false, true) => self.wrong_observers -= 1,
                _ => {}
            }
        }
    }

    /// Observer `o` now sees `m` as `live` (or not).
    pub fn set(&mut self, o: NodeIdx, m: NodeIdx, live: bool) {
        let (o, m) = (o as usize, m as usize);
        if o >= self.n || m >= self.n || self.bit(o, m) == live {
            return;
        }
        self.bits[o * self.words + m / 64] ^= 1 << (m % 64);
        if !self.up[o] {
            return;
        }
        if live {
            self.seen_by[m] += 1;
        } else {
            self.seen_by[m] -= 1;
        }
        // Matching the truth now means it was wrong before.
        let delta = if live == self.up[m] { -1 } else { 1 };
        self.set_wrong(o, delta);
    }

    /// Node `x` stopped (crash or departure).
    pub fn down(&mut self, x: NodeIdx) {
        let x = x as usize;
        if !self.up[x] {
            return;
        }
        if self.wrong[x] > 0 {
            self.wrong_observers -= 1;
        }
        for m in 0..self.n {
            if self.bit(x, m) {
                self.seen_by[m] -= 1;
            }
        }
        self.up[x] = false;
        self.n_up -= 1;
        for o in 0..self.n {
            if o != x && self.up[o] {
                let delta = if self.bit(o, x) { 1 } else { -1 };
                self.set_wrong(o, delta);
            }
        }
    }

    /// Node `x` started afresh (restart): it sees only itself.
    pub fn up(&mut self, x: NodeIdx) {
        let x = x as usize;
        if self.up[x] {
            return;
        }
        self.up[x] = true;
        self.n_up += 1;
        for o in 0..self.n {
            if o != x && self.up[o] {
                let delta = if self.bit(o, x) { -1 } else { 1 };
                self.set_wrong(o, delta);
            }
        }
        let row = x * self.words;
        self.bits[row..row + self.words].fill(0);
        self.bits[row + x / 64] |= 1 << (x % 64);
        self.seen_by[x] = (0..self.n)
            .filter(|&o| self.up[o] && self.bit(o, x))
            .count() as u32;
        self.wrong[x] = (self.n_up - 1) as u32;
        if self.wrong[x] > 0 {
            self.wrong_observers += 1;
        }
    }

    /// Whether `x` is up.
    pub fn is_up(&self, x: NodeIdx) -> bool {
        self.up.get(x as usize).copied().unwrap_or(false)
    }

    /// Number of nodes up.
    pub fn n_up(&self) -> usize {
        self.n_up
    }

    /// Whether every up node sees exactly the up nodes as live.
    pub fn converged(&self) -> bool {
        self.wrong_observers == 0
    }

    /// Up nodes whose view is wrong somewhere.
    pub fn wrong_observers(&self) -> usize {
        self.wrong_observers
    }

    /// Number of up nodes that see `x` as live.
    pub fn seen_by(&self, x: NodeIdx) -> u32 {
        self.seen_by.get(x as usize).copied().unwrap_or(0)
    }

    /// Whether `o` sees `m` as live.
    pub fn sees(&self, o: NodeIdx, m: NodeIdx) -> bool {
        (o as usize) < self.n && (m as usize) < self.n && self.bit(o as usize, m as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_detects_and_restarts() {
        let mut v = Views::new(3);
        assert!(!v.converged());
        for o in 0..3 {
            for m in 0..3 {
                v.set(o, m, true);
            }
        }
        assert!(v.converged());
        v.down(2);
        assert!(!v.converged());
        assert_eq!(v.seen_by(2), 2);
        v.set(0, 2, false);
        v.set(1, 2, false);
        assert_eq!(v.seen_by(2), 0);
        assert!(v.converged());
        v.up(2);
        assert!(!v.converged());
        v.set(2, 0, true);
        v.set(2, 1, true);
        v.set(0, 2, true);
        assert!(!v.converged());
        v.set(1, 2, true);
        assert!(v.converged());
    }
}
