//! The probe order: every live member once per pass, in an order shuffled for each pass,
//! which bounds detection time (SWIM §4.3).
//!
//! A slot carries the member's id and IPv4 address, so the next target is read from
//! this one array, in sequence. Reading the member's record instead costs a cache miss
//! on a large table, once per probe period on every node (a third of a 10,000-node
//! simulation). Members whose state or address changed since the pass began are
//! *stale*: their slot may be out of date, so their record is read. A few are tracked by
//! id; when more change in one pass, every slot is checked until the next pass.

use std::net::{Ipv4Addr, SocketAddrV4};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::index::grow_for_one;
use crate::wire::NodeId;

/// A member as the probe order knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub id: NodeId,
    /// Its address when IPv4 and live at the start of the pass; [`NO_V4`] otherwise
    /// (the record is read).
    pub v4: SocketAddrV4,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            id: NodeId::default(),
            v4: NO_V4,
        }
    }
}

/// The address of a slot whose record must be read.
pub(crate) const NO_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);

/// What the order gives next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// An alive member, unchanged since the pass began.
    Fresh(Slot),
    /// A member whose record must be read (it may have changed, or left the table).
    Check(NodeId),
    /// The pass is over.
    End,
}

/// Ids tracked as stale before every slot is checked instead.
const STALE_MAX: usize = 4;

/// Slots taken from the array at a time (one cache line of them).
const AHEAD: usize = 4;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ProbeOrder {
    slots: Vec<Slot>,
    /// The first slot not yet taken.
    pos: usize,
    /// The next slots, taken a cache line at a time: probes are a probe period apart,
    /// long enough for the array to leave the cache in between.
    ahead: [Slot; AHEAD],
    ahead_at: usize,
    ahead_len: usize,
    stale: [NodeId; STALE_MAX],
    /// Stale ids in `stale`; above [`STALE_MAX`]: more changed, every slot is checked.
    stale_len: usize,
}

impl ProbeOrder {
    /// The next slot of the pass.
    pub fn next(&mut self) -> Next {
        if self.ahead_at == self.ahead_len {
            let n = (self.slots.len() - self.pos).min(AHEAD);
            if n == 0 {
                return Next::End;
            }
            self.ahead[..n].copy_from_slice(&self.slots[self.pos..self.pos + n]);
            (self.pos, self.ahead_at, self.ahead_len) = (self.pos + n, 0, n);
        }
        let s = self.ahead[self.ahead_at];
        self.ahead_at += 1;
        if s.v4 == NO_V4 || self.is_stale(s.id) {
            Next::Check(s.id)
        } else {
            Next::Fresh(s)
        }
    }

    fn is_stale(&self, id: NodeId) -> bool {
        self.stale_len > STALE_MAX || self.stale[..self.stale_len].contains(&id)
    }

    /// Member `id` changed (state, address) or left the table: its slot may be wrong.
    pub fn mark_stale(&mut self, id: NodeId) {
        if self.is_stale(id) {
            return;
        }
        if let Some(s) = self.stale.get_mut(self.stale_len) {
            *s = id;
        }
        self.stale_len += 1;
    }

    /// Adds a member to the current pass: at a random place among the slots not yet
    /// visited with `rng`, else at the end.
    pub fn add(&mut self, slot: Slot, rng: Option<&mut SmallRng>) {
        grow_for_one(&mut self.slots);
        self.slots.push(slot);
        let last = self.slots.len() - 1;
        if let Some(rng) = rng {
            let at = rng.random_range(self.pos.min(last)..=last);
            self.slots.swap(at, last);
        }
    }

    /// Starts a new pass over `slots`, shuffled; `stale` are known to need their
    /// record read (suspects: a probe of a suspect carries its suspicion).
    pub fn restart(
        &mut self,
        slots: impl Iterator<Item = Slot>,
        stale: impl Iterator<Item = NodeId>,
        rng: &mut SmallRng,
    ) {
        self.slots.clear();
        self.slots.extend(slots);
        self.slots
            .shrink_to(self.slots.len() + self.slots.len() / 4);
        self.slots.shuffle(rng);
        (self.pos, self.ahead_at, self.ahead_len) = (0, 0, 0);
        self.stale_len = 0;
        for id in stale {
            self.mark_stale(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn slot(i: u64) -> Slot {
        Slot {
            id: NodeId(i),
            v4: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, i as u8), 7000),
        }
    }

    fn drain(o: &mut ProbeOrder) -> Vec<Next> {
        std::iter::from_fn(|| Some(o.next()).filter(|n| *n != Next::End)).collect()
    }

    #[test]
    fn a_pass_gives_every_slot_once_and_only_stale_ones_are_checked() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut o = ProbeOrder::default();
        o.restart((1..=6).map(slot), [NodeId(4)].into_iter(), &mut rng);
        o.mark_stale(NodeId(2));
        o.add(slot(7), Some(&mut rng));
        let mut seen: Vec<(u64, bool)> = drain(&mut o)
            .into_iter()
            .map(|n| match n {
                Next::Fresh(s) => (s.id.0, true),
                Next::Check(id) => (id.0, false),
                Next::End => unreachable!(),
            })
            .collect();
        seen.sort_unstable();
        let want = [1, 2, 3, 4, 5, 6, 7].map(|i| (i, i != 2 && i != 4));
        assert_eq!(seen, want);
        // A new pass forgets what went stale in the last one.
        o.restart((1..=3).map(slot), std::iter::empty(), &mut rng);
        assert!(drain(&mut o).iter().all(|n| matches!(n, Next::Fresh(_))));
    }

    #[test]
    fn many_changes_make_every_slot_checked_and_ipv6_is_always_checked() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut o = ProbeOrder::default();
        let v6 = Slot {
            id: NodeId(9),
            v4: NO_V4,
        };
        o.restart((1..=8).map(slot).chain([v6]), std::iter::empty(), &mut rng);
        for i in 1..=STALE_MAX as u64 {
            o.mark_stale(NodeId(i));
            o.mark_stale(NodeId(i)); // twice counts once
        }
        let fresh = |o: &mut ProbeOrder| {
            let all = drain(o);
            all.iter().filter(|n| matches!(n, Next::Fresh(_))).count()
        };
        assert_eq!(fresh(&mut o), 8 - STALE_MAX);
        o.restart((1..=8).map(slot), std::iter::empty(), &mut rng);
        for i in 1..=STALE_MAX as u64 + 1 {
            o.mark_stale(NodeId(i));
        }
        assert_eq!(fresh(&mut o), 0, "past the limit every slot is checked");
    }

    #[test]
    fn added_members_land_in_the_rest_of_the_pass() {
        for seed in 0..20 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut o = ProbeOrder::default();
            o.restart((1..=5).map(slot), std::iter::empty(), &mut rng);
            let first = o.next();
            o.add(slot(6), Some(&mut rng));
            let rest = drain(&mut o);
            assert_eq!(rest.len(), 5);
            assert!(rest.contains(&Next::Fresh(slot(6))), "seed {seed}");
            assert!(!rest.contains(&first), "seed {seed}");
        }
    }
}
