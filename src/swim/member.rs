//! Members, the precedence of their states, and the member table.
//!
//! The table keeps members in a vector (stable iteration order, O(1) random picks) with
//! an index by id, plus a shuffled round-robin probe order (the `order` module): every
//! live member is probed once per pass, which bounds detection time (SWIM §4.3).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::digest::{self, TableDigest};
use super::index::{grow_for_one, IdIndex};
use super::order::{Next, ProbeOrder, Slot, NO_V4};
use crate::wire::{Incarnation, MemberRecord, NodeId, State};

/// A member as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its state.
    pub state: State,
    /// Its metadata (empty until known).
    pub meta: Vec<u8>,
    /// Digest of the newest metadata we heard of; differs from `meta`'s own digest
    /// while a fetch is outstanding.
    pub(crate) meta_digest: u64,
    /// When the state last changed, on this node's clock.
    pub(crate) since: Instant,
}

impl Member {
    /// Whether the member counts as live (alive or suspect).
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}

/// Whether news that a member is `new` at `new_inc` overrides our `cur` at `cur_inc`.
///
/// - Alive wins over anything with a strictly higher incarnation (refutation, rejoin).
/// - Suspect wins over Alive at the same or higher incarnation, and over an older
///   suspicion; never over Dead or Left.
/// - Dead wins over Alive and Suspect at the same or higher incarnation.
/// - Left wins over Alive, Suspect and Dead at the same or higher incarnation: a member
///   that announced its departure is reported as having left even when a detector got
///   there first.
pub(crate) fn overrides(
    cur: State,
    cur_inc: Incarnation,
    new: State,
    new_inc: Incarnation,
) -> bool {
    use State::*;
    match (new, cur) {
        (Alive, _) => new_inc > cur_inc,
        (Suspect, Alive) => new_inc >= cur_inc,
        (Suspect, Suspect) => new_inc > cur_inc,
        (Suspect, Dead | Left) => false,
        (Dead, Alive | Suspect) => new_inc >= cur_inc,
        (Dead, Dead | Left) => false,
        (Left, Alive | Suspect | Dead) => new_inc >= cur_inc,
        (Left, Left) => false,
    }
}

/// What a record keeps out of line, only when needed: an IPv6 address, or metadata.
#[derive(Debug, Default)]
struct Extra {
    v6: Option<SocketAddrV6>,
    meta: Vec<u8>,
}

/// A member as the table stores it (48 bytes; every node keeps one per member of the
/// cluster). The public [`Member`] is built from it on demand.
#[derive(Debug)]
pub(crate) struct Rec {
    pub id: NodeId,
    pub incarnation: Incarnation,
    pub state: State,
    /// Digest of the newest metadata we heard of (see [`Member`]).
    pub meta_digest: u64,
    /// When the state last changed, as a [`Members::stamp`].
    pub since: u64,
    /// The address when IPv4 (else it is in `extra`).
    v4: SocketAddrV4,
    /// The metadata held is not the newest heard of (`meta_digest`): a fetch is due.
    /// Kept, not recomputed, so that the many repeats of news already applied are
    /// turned away without reading (and hashing) the metadata out of line.
    pub meta_pending: bool,
    extra: Option<Box<Extra>>,
}

impl Rec {
    /// Whether the member counts as live (alive or suspect).
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }

    pub fn addr(&self) -> SocketAddr {
        match self.extra.as_ref().and_then(|e| e.v6) {
            Some(v6) => SocketAddr::V6(v6),
            None => SocketAddr::V4(self.v4),
        }
    }

    /// The record as a probe-order slot.
    pub fn slot(&self) -> Slot {
        let v6 = self.extra.as_ref().is_some_and(|e| e.v6.is_some());
        Slot {
            id: self.id,
            v4: if v6 { NO_V4 } else { self.v4 },
        }
    }

    pub fn meta(&self) -> &[u8] {
        self.extra.as_ref().map_or(&[], |e| &e.meta)
    }

    pub fn set_addr(&mut self, addr: SocketAddr) {
        match addr {
            SocketAddr::V4(a) => {
                self.v4 = a;
                if let Some(e) = &mut self.extra {
                    e.v6 = None;
                }
            }
            SocketAddr::V6(a) => self.extra.get_or_insert_with(Box::default).v6 = Some(a),
        }
        self.tidy();
    }

    pub fn set_meta(&mut self, meta: Vec<u8>) {
        if !meta.is_empty() || self.extra.is_some() {
            self.extra.get_or_insert_with(Box::default).meta = meta;
        }
        self.tidy();
        self.refresh_pending();
    }

    /// Recomputes [`Rec::meta_pending`] after `meta_digest` or the metadata changed.
    pub fn refresh_pending(&mut self) {
        self.meta_pending = crate::wire::meta_digest(self.meta()) != self.meta_digest;
    }

    /// Drops the out-of-line part when it holds nothing.
    fn tidy(&mut self) {
        if self
            .extra
            .as_ref()
            .is_some_and(|e| e.v6.is_none() && e.meta.is_empty())
        {
            self.extra = None;
        }
    }

    /// This record's hash in the table digest.
    fn digest_hash(&self) -> u64 {
        digest::record_hash(self.id, self.incarnation, self.state, self.meta_digest)
    }

    /// The record push-pull sends.
    pub fn record(&self) -> MemberRecord {
        MemberRecord {
            id: self.id,
            addr: self.addr(),
            incarnation: self.incarnation,
            state: self.state,
            meta: self.meta().to_vec(),
        }
    }
}

/// Removes `id` from an unordered list.
fn forget(list: &mut Vec<NodeId>, id: NodeId) {
    if let Some(i) = list.iter().position(|&d| d == id) {
        list.swap_remove(i);
    }
}

/// The next member to probe, as [`Members::next_probe_target`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub id: NodeId,
    pub addr: SocketAddr,
    /// Its incarnation when it is suspect (a probe carries the suspicion).
    pub suspect: Option<Incarnation>,
}

/// The member table (this node included).
#[derive(Debug)]
pub(crate) struct Members {
    list: Vec<Rec>,
    index: IdIndex,
    /// The round-robin probe order (see the `order` module).
    order: ProbeOrder,
    live: usize,
    /// Ids of the members in state Dead, in no order: healing picks one at random
    /// every reconnect interval, and sampling a large table for a rare dead member
    /// costs a cache miss per try.
    dead: Vec<NodeId>,
    /// Ids of the members in state Left, in no order. With `dead`, the only members
    /// reaping looks at: scanning the whole table every reap interval was a fifth of
    /// a 10,000-node simulation.
    left: Vec<NodeId>,
    /// Where the records' `since` stamps count from.
    origin: Instant,
    /// Bucket hashes of the records, kept up to date (anti-entropy compares them).
    digest: TableDigest,
}

impl Members {
    /// A table holding only `me`; its `since` is the origin of the table's stamps.
    pub fn new(me: &Member) -> Self {
        let mut t = Members {
            list: Vec::new(),
            index: IdIndex::default(),
            order: ProbeOrder::default(),
            live: 0,
            dead: Vec::new(),
            left: Vec::new(),
            origin: me.since,
            digest: TableDigest::default(),
        };
        t.insert(me, None);
        t
    }

    /// `at` as a record stamp: nanoseconds since the origin.
    pub fn stamp(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// Time from the stamp `since` to `now`.
    pub fn age(&self, since: u64, now: Instant) -> Duration {
        Duration::from_nanos(self.stamp(now).saturating_sub(since))
    }

    /// The public view of a record.
    pub fn member(&self, r: &Rec) -> Member {
        Member {
            id: r.id,
            addr: r.addr(),
            incarnation: r.incarnation,
            state: r.state,
            meta: r.meta().to_vec(),
            meta_digest: r.meta_digest,
            since: self.origin + Duration::from_nanos(r.since),
        }
    }

    fn pos(&self, id: NodeId) -> Option<usize> {
        let list = &self.list;
        self.index
            .get(id, |p| list[p as usize].id)
            .map(|p| p as usize)
    }

    pub fn get(&self, id: NodeId) -> Option<&Rec> {
        self.pos(id).map(|i| &self.list[i])
    }

    /// Number of members in the table, this node included.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Number of live (alive or suspect) members, this node included.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Makes room for `additional` more members at once (a push-pull brings many).
    pub fn reserve(&mut self, additional: usize) {
        self.list.reserve_exact(additional);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rec> {
        self.list.iter()
    }

    /// Adds a member not yet in the table; with an RNG it joins the probe order at a
    /// random place in the remaining pass.
    pub fn insert(&mut self, m: &Member, rng: Option<&mut SmallRng>) {
        debug_assert!(self.pos(m.id).is_none());
        if m.is_live() {
            self.live += 1;
        }
        if let Some(list) = self.departed_list(m.state) {
            list.push(m.id);
        }
        let mut r = Rec {
            id: m.id,
            incarnation: m.incarnation,
            state: m.state,
            meta_digest: m.meta_digest,
            since: self.stamp(m.since),
            v4: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            meta_pending: false,
            extra: None,
        };
        r.set_addr(m.addr);
        r.set_meta(m.meta.clone());
        if let (Some(rng), true) = (rng, r.is_live()) {
            self.order.add(r.slot(), Some(rng));
        }
        self.digest.toggle(r.id, r.digest_hash());
        grow_for_one(&mut self.list);
        self.list.push(r);
        let list = &self.list;
        let pos = u32::try_from(list.len() - 1).expect("fewer than 2^32 members");
        self.index.insert(pos, |p| list[p as usize].id);
    }

    /// Applies `f` to a member, keeping the live count right.
    pub fn update<R>(&mut self, id: NodeId, f: impl FnOnce(&mut Rec) -> R) -> Option<R> {
        let i = self.pos(id)?;
        let m = &mut self.list[i];
        let (was, before, old, inc) = (m.is_live(), m.digest_hash(), m.state, m.incarnation);
        let r = f(m);
        let after = m.digest_hash();
        let (id, new, live) = (m.id, m.state, m.is_live());
        if after != before {
            self.digest.toggle(id, before ^ after);
        }
        // An address changes only with a newer incarnation (a rejoin).
        if old != new || m.incarnation != inc {
            self.order.mark_stale(id);
        }
        if live && !was {
            self.order.add(m.slot(), None);
        }
        if old != new {
            if let Some(list) = self.departed_list(old) {
                forget(list, id);
            }
            if let Some(list) = self.departed_list(new) {
                list.push(id);
            }
        }
        match (was, live) {
            (true, false) => self.live -= 1,
            (false, true) => self.live += 1,
            _ => {}
        }
        Some(r)
    }

    /// Removes a member (rare: members are forgotten long after they fail or leave).
    pub fn remove(&mut self, id: NodeId) -> Option<Rec> {
        let list = &self.list;
        let i = self.index.remove(id, |p| list[p as usize].id)? as usize;
        let last = list.len() - 1;
        if i != last {
            let moved = list[last].id;
            self.index.set(moved, i as u32, |p| list[p as usize].id);
        }
        self.order.mark_stale(id);
        let m = self.list.swap_remove(i);
        self.digest.toggle(m.id, m.digest_hash());
        if let Some(list) = self.departed_list(m.state) {
            forget(list, m.id);
        }
        if m.is_live() {
            self.live -= 1;
        }
        Some(m)
    }

    /// The list keeping members in `state`, when one does (Dead, Left).
    fn departed_list(&mut self, state: State) -> Option<&mut Vec<NodeId>> {
        match state {
            State::Dead => Some(&mut self.dead),
            State::Left => Some(&mut self.left),
            State::Alive | State::Suspect => None,
        }
    }

    /// The members in state Dead or Left, in no order.
    pub fn departed(&self) -> impl Iterator<Item = &Rec> {
        let ids = self.dead.iter().chain(&self.left);
        ids.filter_map(|&id| self.get(id))
    }

    /// A member in state Dead, chosen at random.
    pub fn random_dead(&self, rng: &mut SmallRng) -> Option<NodeId> {
        if self.dead.is_empty() {
            return None;
        }
        Some(self.dead[rng.random_range(0..self.dead.len())])
    }

    /// The table summarised at `level` (see the `digest` module).
    pub fn summary(&self, level: u8) -> Vec<u8> {
        self.digest.summary(level)
    }

    /// The buckets at `level` where a peer's summary differs from ours (`None`: the
    /// summary is malformed).
    pub fn differing(&self, level: u8, theirs: &[u8]) -> Option<Vec<u16>> {
        self.digest.differing(level, theirs)
    }

    /// The records in `buckets` at `level`.
    pub fn records_in(&self, level: u8, buckets: &[u16]) -> Vec<MemberRecord> {
        let mut wanted = [false; digest::FINE];
        for &b in buckets {
            if let Some(w) = wanted.get_mut(usize::from(b)) {
                *w = true;
            }
        }
        self.list
            .iter()
            .filter(|r| wanted[digest::bucket_at(r.id, level)])
            .map(Rec::record)
            .collect()
    }

    /// The next member to probe: round-robin over a shuffled list of live members,
    /// reshuffled after each full pass.
    pub fn next_probe_target(&mut self, me: NodeId, rng: &mut SmallRng) -> Option<Target> {
        for _ in 0..2 {
            loop {
                match self.order.next() {
                    Next::End => break,
                    Next::Fresh(s) if s.id != me => {
                        return Some(Target {
                            id: s.id,
                            addr: SocketAddr::V4(s.v4),
                            suspect: None,
                        })
                    }
                    Next::Fresh(_) => {}
                    Next::Check(id) => {
                        let Some(m) = self.get(id).filter(|m| m.id != me && m.is_live()) else {
                            continue;
                        };
                        let suspect = (m.state == State::Suspect).then_some(m.incarnation);
                        let addr = m.addr();
                        return Some(Target { id, addr, suspect });
                    }
                }
            }
            let live = self.list.iter().filter(|m| m.id != me && m.is_live());
            let suspects = live.clone().filter(|m| m.state == State::Suspect);
            self.order
                .restart(live.map(Rec::slot), suspects.map(|m| m.id), rng);
        }
        None
    }

    /// Up to `k` distinct members satisfying `ok`, chosen at random. Small tables are
    /// scanned; large ones sampled (bounded attempts, so a rare kind may be missed).
    pub fn pick(
        &self,
        k: usize,
        rng: &mut SmallRng,
        mut ok: impl FnMut(&Rec) -> bool,
    ) -> Vec<NodeId> {
        if k == 0 || self.list.is_empty() {
            return Vec::new();
        }
        if self.list.len() <= 64 {
            let mut all: Vec<NodeId> = self.list.iter().filter(|m| ok(m)).map(|m| m.id).collect();
            let (picked, _) = all.partial_shuffle(rng, k);
            return picked.to_vec();
        }
        let mut out = Vec::with_capacity(k);
        for _ in 0..(k * 8 + 16) {
            let m = &self.list[rng.random_range(0..self.list.len())];
            if !out.contains(&m.id) && ok(m) {
                out.push(m.id);
                if out.len() == k {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests need some instant as an origin
mod tests {
    use super::*;
    use rand::SeedableRng;
    use State::*;

    #[test]
    fn incarnation_ordering() {
        // Alive needs a strictly newer incarnation.
        assert!(!overrides(Alive, 3, Alive, 3));
        assert!(overrides(Suspect, 3, Alive, 4));
        assert!(!overrides(Suspect, 3, Alive, 3));
        assert!(overrides(Dead, 3, Alive, 4));
        assert!(overrides(Left, 3, Alive, 4));
        // Suspect: same incarnation over alive, newer over suspect, never over dead.
        assert!(overrides(Alive, 3, Suspect, 3));
        assert!(!overrides(Alive, 3, Suspect, 2));
        assert!(!overrides(Suspect, 3, Suspect, 3));
        assert!(overrides(Suspect, 3, Suspect, 4));
        assert!(!overrides(Dead, 3, Suspect, 9));
        // Dead over live states at same or newer incarnation only.
        assert!(overrides(Alive, 3, Dead, 3));
        assert!(overrides(Suspect, 3, Dead, 3));
        assert!(!overrides(Alive, 3, Dead, 2));
        assert!(!overrides(Dead, 3, Dead, 4));
        // Left is final unless the member comes back with a newer incarnation.
        assert!(overrides(Dead, 3, Left, 3));
        assert!(!overrides(Left, 3, Dead, 3));
        assert!(!overrides(Left, 3, Left, 4));
    }

    fn member(id: u64, state: State) -> Member {
        Member {
            id: NodeId(id),
            addr: SocketAddr::from(([127, 0, 0, 1], 7000 + id as u16)),
            incarnation: 0,
            state,
            meta: vec![],
            meta_digest: 0,
            since: Instant::now(),
        }
    }

    #[test]
    fn probe_order_visits_every_live_member_once_per_pass() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut t = Members::new(&member(0, Alive));
        for i in 1..=9 {
            t.insert(
                &member(i, if i == 5 { Dead } else { Alive }),
                Some(&mut rng),
            );
        }
        let mut seen: Vec<u64> = (0..8)
            .map(|_| t.next_probe_target(NodeId(0), &mut rng).unwrap().id.0)
            .collect();
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 4, 6, 7, 8, 9]);
    }

    #[test]
    fn removal_during_a_pass_skips_the_removed_and_keeps_the_moved() {
        for seed in 0..50 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut t = Members::new(&member(0, Alive));
            for i in 1..=9 {
                t.insert(&member(i, Alive), Some(&mut rng));
            }
            let mut seen = vec![t.next_probe_target(NodeId(0), &mut rng).unwrap().id.0];
            seen.push(t.next_probe_target(NodeId(0), &mut rng).unwrap().id.0);
            // Remove one not yet probed this pass: the last record moves into its place.
            let gone = (1..=9).find(|i| !seen.contains(i)).unwrap();
            t.remove(NodeId(gone));
            while seen.len() < 8 {
                seen.push(t.next_probe_target(NodeId(0), &mut rng).unwrap().id.0);
            }
            seen.sort();
            let want: Vec<u64> = (1..=9).filter(|&i| i != gone).collect();
            assert_eq!(seen, want, "seed {seed}");
        }
    }

    /// Changes during a pass reach the probe: a member that turned suspect is probed
    /// with its suspicion, one that died is skipped, one that came back at a new address
    /// is probed there, and one that came back from the dead is probed in this pass.
    #[test]
    fn changes_during_a_pass_reach_the_probe() {
        for seed in 0..30 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut t = Members::new(&member(0, Alive));
            for i in 1..=8 {
                let st = if i == 8 { Dead } else { Alive };
                t.insert(&member(i, st), Some(&mut rng));
            }
            let first = t.next_probe_target(NodeId(0), &mut rng).unwrap();
            let others: Vec<u64> = (1..=7).filter(|&i| i != first.id.0).collect();
            let (suspect, dead, moved) = (others[0], others[1], others[2]);
            let new_addr = SocketAddr::from(([10, 0, 0, 9], 9000));
            t.update(NodeId(suspect), |m| (m.state, m.incarnation) = (Suspect, 2));
            t.update(NodeId(dead), |m| m.state = Dead);
            t.update(NodeId(moved), |m| {
                m.incarnation = 1;
                m.set_addr(new_addr);
            });
            t.update(NodeId(8), |m| (m.state, m.incarnation) = (Alive, 1));
            let mut rest = Vec::new();
            while rest.len() < 6 {
                rest.push(t.next_probe_target(NodeId(0), &mut rng).unwrap());
            }
            let by = |id: u64| rest.iter().find(|x| x.id == NodeId(id)).copied();
            assert_eq!(by(suspect).unwrap().suspect, Some(2), "seed {seed}");
            assert_eq!(by(dead), None, "seed {seed}");
            assert_eq!(by(moved).unwrap().addr, new_addr, "seed {seed}");
            assert!(by(8).is_some(), "seed {seed}: back from the dead");
            assert!(rest
                .iter()
                .all(|x| x.id == NodeId(suspect) || x.suspect.is_none()));
        }
    }

    #[test]
    fn live_count_and_removal_keep_index_right() {
        let mut t = Members::new(&member(0, Alive));
        t.insert(&member(1, Alive), None);
        t.insert(&member(2, Alive), None);
        assert_eq!(t.live(), 3);
        t.update(NodeId(1), |m| m.state = Dead);
        assert_eq!(t.live(), 2);
        t.remove(NodeId(0));
        assert_eq!(t.get(NodeId(2)).unwrap().id, NodeId(2));
        assert_eq!(t.get(NodeId(1)).unwrap().state, Dead);
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn records_are_compact_and_round_trip() {
        assert!(std::mem::size_of::<Rec>() <= 48);
        let mut t = Members::new(&member(0, Alive));
        let mut v6 = member(1, Suspect);
        v6.addr = "[fe80::1%3]:7001".parse().unwrap();
        v6.meta = b"zone=a".to_vec();
        t.insert(&v6, None);
        assert_eq!(t.member(t.get(NodeId(1)).unwrap()), v6);
        let me = member(0, Alive);
        assert_eq!(t.member(t.get(NodeId(0)).unwrap()).addr, me.addr);
        t.update(NodeId(1), |r| {
            r.set_addr(me.addr);
            r.set_meta(Vec::new());
        });
        let r = t.get(NodeId(1)).unwrap();
        assert!(r.extra.is_none());
        assert_eq!((r.addr(), r.meta()), (me.addr, &[][..]));
    }

    #[test]
    fn pick_returns_distinct_matching_members() {
        let mut rng = SmallRng::seed_from_u64(7);
        for n in [10u64, 200] {
            let mut t = Members::new(&member(0, Alive));
            for i in 1..n {
                t.insert(&member(i, if i % 2 == 0 { Alive } else { Dead }), None);
            }
            let got = t.pick(3, &mut rng, |m| m.state == Alive && m.id != NodeId(0));
            assert_eq!(got.len(), 3);
            let mut d = got.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3);
            assert!(got.iter().all(|id| id.0 % 2 == 0 && id.0 != 0));
        }
    }

    #[test]
    fn dead_members_are_tracked_through_every_change() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut t = Members::new(&member(0, Alive));
        assert_eq!(t.random_dead(&mut rng), None);
        t.insert(&member(1, Dead), Some(&mut rng));
        t.insert(&member(2, Alive), Some(&mut rng));
        t.insert(&member(3, Alive), Some(&mut rng));
        assert_eq!(t.random_dead(&mut rng), Some(NodeId(1)));
        t.update(NodeId(2), |m| m.state = Dead);
        t.update(NodeId(1), |m| m.state = Alive); // came back
        for _ in 0..10 {
            assert_eq!(t.random_dead(&mut rng), Some(NodeId(2)));
        }
        t.update(NodeId(3), |m| m.state = Dead);
        let mut picked: Vec<u64> = (0..40)
            .map(|_| t.random_dead(&mut rng).unwrap().0)
            .collect();
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked, vec![2, 3]);
        t.remove(NodeId(2));
        t.update(NodeId(3), |m| m.state = Left);
        assert_eq!(t.random_dead(&mut rng), None);
        let departed = |t: &Members| {
            let mut d: Vec<(u64, State)> = t.departed().map(|m| (m.id.0, m.state)).collect();
            d.sort_unstable_by_key(|&(id, _)| id);
            d
        };
        assert_eq!(departed(&t), vec![(3, Left)]);
        t.insert(&member(4, Left), Some(&mut rng));
        t.update(NodeId(1), |m| m.state = Dead);
        assert_eq!(departed(&t), vec![(1, Dead), (3, Left), (4, Left)]);
        t.update(NodeId(3), |m| m.state = Alive); // rejoined
        t.remove(NodeId(4));
        assert_eq!(departed(&t), vec![(1, Dead)]);
    }
}
