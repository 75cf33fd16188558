//! Free running: between scenario checks, shards run without waiting for each other at
//! every window. Each shard publishes its progress `P` after every event (every event
//! before `P` has run and every frame those events sent to other shards is in their
//! inboxes); a frame sent at `P` or later arrives at `P + reach` at the earliest, so a
//! shard may run every event before the smallest of the others' `P` plus `reach`. A
//! shard waits only when it is a whole `reach` ahead of the slowest, so the imbalance
//! of lock-step windows (a few dozen events each, the slower shard setting the pace)
//! averages out.
//!
//! Each node still handles its events in key order, so what every node does, and
//! every shard's log, is the same as in lock-step windows or on one thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::queue::Ev;
use crate::shard::{Ctx, Outgoing, Shard};
use crate::worker::Bell;

/// What the shards of one free run share.
#[derive(Debug)]
pub(crate) struct Free {
    /// The smallest link latency, ns (at least 1).
    reach: u64,
    /// Run every event due at or before this time.
    until: u64,
    /// Nodes per shard.
    per: usize,
    /// Each shard's progress: every event before it has run, its frames delivered.
    progress: Vec<Progress>,
    /// Frames for each shard's nodes, sent by the others.
    inboxes: Vec<Mutex<Vec<Outgoing>>>,
    /// Where each shard waits for the others' progress.
    bells: Vec<Bell>,
}

/// A shard's progress, alone in its cache lines (it is written after every event,
/// and read by the other shards).
#[derive(Debug)]
#[repr(align(128))]
struct Progress(AtomicU64);

fn next_at(shard: &Shard) -> u64 {
    shard.next_key().map_or(u64::MAX, |(at, _)| at)
}

impl Free {
    /// `shards` shards starting at `now` (nothing before it is left to run).
    pub fn new(shards: usize, per: usize, now: u64, until: u64, reach: u64) -> Self {
        Free {
            reach: reach.max(1),
            until,
            per,
            progress: (0..shards).map(|_| Progress(AtomicU64::new(now))).collect(),
            inboxes: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            bells: (0..shards).map(|_| Bell::default()).collect(),
        }
    }

    /// Runs shard `s` (number `s` of the run) to the end, an event at a time, as far
    /// as the others' progress allows.
    pub fn run(&self, shard: &mut Shard, ctx: &Ctx<'_>, s: usize) {
        let end = self.until + 1;
        let mut bound = self.progress[s].0.load(Ordering::SeqCst);
        loop {
            let next = next_at(shard);
            if next < bound {
                shard.step(ctx, bound - 1);
                if !shard.outbox.is_empty() {
                    self.post_outbox(shard);
                }
                // Nothing this shard runs from now on is earlier than its next event,
                // nor than the bound (whatever reaches it later arrives after that).
                self.publish(s, next_at(shard).min(bound));
                continue;
            }
            self.publish(s, bound);
            if bound >= end {
                break;
            }
            let mut fresh = self.bound(s);
            if fresh <= bound {
                self.bells[s].wait(|| {
                    fresh = self.bound(s);
                    fresh > bound
                });
            }
            bound = fresh;
            // After reading the others' progress: every frame sent before it is here.
            self.take_inbox(shard, s);
        }
        shard.now = shard.now.max(self.until);
    }

    /// Shard `s` has run everything before `p`; the others may run further.
    fn publish(&self, s: usize, p: u64) {
        let mine = &self.progress[s].0;
        if p <= mine.load(Ordering::Relaxed) {
            return;
        }
        mine.store(p, Ordering::SeqCst);
        for (r, bell) in self.bells.iter().enumerate() {
            if r != s {
                bell.ring();
            }
        }
    }

    /// How far shard `s` may run (exclusive), given the others' progress.
    fn bound(&self, s: usize) -> u64 {
        let others = (0..self.progress.len())
            .filter(|&r| r != s)
            .map(|r| self.progress[r].0.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX);
        others.saturating_add(self.reach).min(self.until + 1)
    }

    fn take_inbox(&self, shard: &mut Shard, s: usize) {
        let mut inbox = self.inboxes[s]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, d) in inbox.drain(..) {
            shard.push(key, Ev::Deliver(d));
        }
    }

    /// Hands the frames for other shards over, one lock per receiving shard.
    fn post_outbox(&self, shard: &mut Shard) {
        let out = &mut shard.outbox;
        let target = |o: &Outgoing| o.1.to as usize / self.per;
        while let Some(t) = out.first().map(target) {
            let mut inbox = self.inboxes[t]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut i = 0;
            while i < out.len() {
                if target(&out[i]) == t {
                    inbox.push(out.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
    }

    /// After the run: frames still in an inbox (due after `until`) join their queues.
    pub fn finish(&self, shards: &mut [Shard]) {
        for (s, shard) in shards.iter_mut().enumerate() {
            self.take_inbox(shard, s);
        }
    }
}
