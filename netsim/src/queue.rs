//! The event queue: frames in flight and resumptions in a heap ordered by (time, tie),
//! and every node's next timer in an indexed heap with one slot per node.
//!
//! A node's deadline moves on most events it handles (an ack cancels the probe
//! timeout, news arms a gossip round), so a plain heap of timer events fills with
//! stale entries, each popped and thrown away; at 10,000 nodes they were most of the
//! heap and a fifth of the events. Here a node's slot is moved in place instead, and
//! the timer heap (16 bytes per node) stays small enough to live in cache.
//!
//! Order: earliest time first; at the same nanosecond, by tie. A frame's tie is its
//! sender, the sender's count of frames sent and the copy ([`frame_tie`]); a timer's
//! is its node, above every frame's ([`timer_tie`]). Ties depend on nothing but what
//! each node did, never on the order events were queued in, so the simulation runs
//! the same whether its nodes are handled by one thread or split among several.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::net::NodeIdx;

/// The largest node count ties can tell apart (node addresses use 24 bits as well).
pub(crate) const MAX_NODES: usize = 1 << 24;

const COUNT_BITS: u32 = 38;

/// The tie of copy `copy` (0 or 1) of the `count`th message `from` queued.
pub(crate) fn frame_tie(from: NodeIdx, count: u64, copy: bool) -> u64 {
    debug_assert!((from as usize) < MAX_NODES);
    (u64::from(from) << (COUNT_BITS + 1))
        | ((count & ((1 << COUNT_BITS) - 1)) << 1)
        | u64::from(copy)
}

/// The tie of node `node`'s timer: after every frame of the same nanosecond.
pub(crate) fn timer_tie(node: NodeIdx) -> u64 {
    (1 << 63) | u64::from(node)
}

/// A frame in flight.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub to: NodeIdx,
    pub from: NodeIdx,
    /// The receiver's epoch when sent (a restart since drops the frame).
    pub epoch: u32,
    pub reliable: bool,
    /// Already held back by a slow node once.
    pub late: bool,
    pub payload: Vec<u8>,
}

/// What the queue hands out.
#[derive(Debug)]
pub(crate) enum Ev {
    Deliver(Delivery),
    Resume {
        node: NodeIdx,
        epoch: u32,
    },
    /// Node `node`'s deadline is due.
    Timer {
        node: NodeIdx,
    },
}

/// An entry's place in the order: (time, tie).
pub(crate) type Key = (u64, u64);

#[derive(Debug)]
struct Queued {
    key: Key,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Reversed: the heap pops the earliest key first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.key.cmp(&self.key)
    }
}

/// The whole queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    events: BinaryHeap<Queued>,
    timers: TimerHeap,
}

impl Queue {
    /// Queues `ev` (not a timer) at `key`.
    pub fn push(&mut self, key: Key, ev: Ev) {
        debug_assert!(!matches!(ev, Ev::Timer { .. }) && key.1 < timer_tie(0));
        self.events.push(Queued { key, ev });
    }

    /// Node `node`'s next deadline is `at` (replacing any earlier setting).
    pub fn set_timer(&mut self, node: NodeIdx, at: u64) {
        self.timers.set(node, at);
    }

    /// Node `node` has no deadline.
    pub fn cancel_timer(&mut self, node: NodeIdx) {
        self.timers.remove(node);
    }

    /// Key of the next entry.
    pub fn next_key(&self) -> Option<Key> {
        let e = self.events.peek().map(|q| q.key);
        let t = self.timers.peek().map(|(at, node)| (at, timer_tie(node)));
        match (e, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next entry if it is due at or before `until`.
    pub fn pop_due(&mut self, until: u64) -> Option<(Key, Ev)> {
        let e = self.events.peek().map(|q| q.key);
        let t = self.timers.peek();
        match (e, t) {
            (Some(a), t) if a.0 <= until && t.map_or(true, |(b, _)| a.0 <= b) => {
                let q = self.events.pop().expect("peeked");
                Some((q.key, q.ev))
            }
            (_, Some((b, node))) if b <= until => {
                self.timers.remove(node);
                Some(((b, timer_tie(node)), Ev::Timer { node }))
            }
            _ => None,
        }
    }

    /// Entries queued (frames, resumptions and armed timers).
    pub fn len(&self) -> usize {
        self.events.len() + self.timers.heap.len()
    }
}

/// Where a node's slot is not in the heap.
const NONE: u32 = u32::MAX;

/// A binary min-heap of (deadline, node) with each node's position, so a deadline
/// moves in place. Ties go to the lower node index.
#[derive(Debug, Default)]
struct TimerHeap {
    heap: Vec<(u64, NodeIdx)>,
    /// Position of each node's entry in `heap`, or [`NONE`].
    pos: Vec<u32>,
}

impl TimerHeap {
    fn peek(&self) -> Option<(u64, NodeIdx)> {
        self.heap.first().copied()
    }

    fn set(&mut self, node: NodeIdx, at: u64) {
        let n = node as usize;
        if self.pos.len() <= n {
            self.pos.resize(n + 1, NONE);
        }
        match self.pos[n] {
            NONE => {
                self.heap.push((at, node));
                self.pos[n] = (self.heap.len() - 1) as u32;
                self.up(self.heap.len() - 1);
            }
            p => {
                let p = p as usize;
                let old = self.heap[p];
                self.heap[p] = (at, node);
                if (at, node) < old {
                    self.up(p);
                } else {
                    self.down(p);
                }
            }
        }
    }

    fn remove(&mut self, node: NodeIdx) {
        let Some(&p) = self.pos.get(node as usize) else {
            return;
        };
        if p == NONE {
            return;
        }
        let p = p as usize;
        self.pos[node as usize] = NONE;
        let last = self.heap.pop().expect("an entry at a recorded position");
        if p == self.heap.len() {
            return;
        }
        let old = self.heap[p];
        self.heap[p] = last;
        self.pos[last.1 as usize] = p as u32;
        if last < old {
            self.up(p);
        } else {
            self.down(p);
        }
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent] <= self.heap[i] {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.heap.len() && self.heap[l] < self.heap[m] {
                m = l;
            }
            if r < self.heap.len() && self.heap[r] < self.heap[m] {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].1 as usize] = a as u32;
        self.pos[self.heap[b].1 as usize] = b as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The indexed heap against a plain map of deadlines, through sets, moves both
    /// ways, removals and pops.
    #[test]
    fn timer_heap_matches_a_model() {
        let mut h = TimerHeap::default();
        let mut model: BTreeMap<NodeIdx, u64> = BTreeMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let r = rnd();
            let node = (r % 200) as NodeIdx;
            match r % 4 {
                0 | 1 => {
                    let at = rnd() % 1000;
                    h.set(node, at);
                    model.insert(node, at);
                }
                2 => {
                    h.remove(node);
                    model.remove(&node);
                }
                _ => {
                    let want = model.iter().map(|(&n, &t)| (t, n)).min();
                    assert_eq!(h.peek(), want);
                    if let Some((_, n)) = want {
                        h.remove(n);
                        model.remove(&n);
                    }
                }
            }
            assert_eq!(h.heap.len(), model.len());
        }
    }

    #[test]
    fn ties_order_by_sender_count_and_copy() {
        assert!(frame_tie(1, 7, false) < frame_tie(1, 7, true));
        assert!(frame_tie(1, 7, true) < frame_tie(1, 8, false));
        assert!(frame_tie(1, u64::MAX, true) < frame_tie(2, 0, false));
        let last = (MAX_NODES - 1) as NodeIdx;
        assert!(frame_tie(last, u64::MAX, true) < timer_tie(0));
        assert!(timer_tie(0) < timer_tie(1));
    }

    #[test]
    fn events_go_before_timers_at_the_same_time() {
        let mut q = Queue::default();
        q.set_timer(3, 10);
        q.set_timer(1, 10);
        q.push(
            (10, frame_tie(9, 1, false)),
            Ev::Resume { node: 9, epoch: 0 },
        );
        q.push(
            (10, frame_tie(7, 5, false)),
            Ev::Resume { node: 7, epoch: 0 },
        );
        q.set_timer(2, 5);
        q.set_timer(2, 20); // moved later
        assert_eq!(q.next_key(), Some((10, frame_tie(7, 5, false))));
        let order: Vec<String> = std::iter::from_fn(|| q.pop_due(15))
            .map(|((at, _), ev)| format!("{at}:{ev:?}"))
            .collect();
        assert_eq!(
            order,
            [
                "10:Resume { node: 7, epoch: 0 }",
                "10:Resume { node: 9, epoch: 0 }",
                "10:Timer { node: 1 }",
                "10:Timer { node: 3 }"
            ]
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(15).map(|(at, _)| at), None);
    }
}
