//! The connection pool: at most one active connection per peer address, chosen the same
//! way on both ends.
//!
//! Connections are opened lazily (the first frame to an address dials it) and the pool
//! keeps one *active* connection per address for sending; frames are read from every open
//! connection. When two connections to the same peer exist — both ends dialed at once,
//! or the peer restarted, or our old connection died without us noticing — the newer one
//! replaces the older, except during a race (the older is younger than the race window
//! and the two were initiated by different ends): then the connection initiated by the
//! lower node id wins on both ends. The higher-id end closes the loser after the race
//! window (so frames already in flight on it are still read); the lower-id end keeps it
//! as a standby, promoted if the active connection closes. Connections without traffic
//! for the idle timeout are closed.
//!
//! This module only keeps the books; the transport does the I/O it asks for.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::swim::Transmit;
use crate::wire::NodeId;

/// A pooled connection (generic so the books can be tested without QUIC).
#[derive(Debug)]
pub(crate) struct Link<C> {
    pub conn: C,
    pub id: usize,
    pub peer: NodeId,
    pub initiator: NodeId,
    pub since: Instant,
    pub last_used: Instant,
    /// When we close it (a retired loser on the arbiter's side).
    pub close_at: Option<Instant>,
}

/// Whether `new` replaces the active `old` (see the module doc).
pub(crate) fn new_wins<C>(old: &Link<C>, new: &Link<C>, race: Duration) -> bool {
    if old.peer != new.peer || old.initiator == new.initiator {
        return true;
    }
    if new.since.saturating_duration_since(old.since) > race {
        return true;
    }
    new.initiator < old.initiator
}

/// Transmits waiting for a connection to an address being dialed.
#[derive(Debug)]
pub(crate) struct Dial {
    pub id: u64,
    pub queue: VecDeque<Transmit>,
}

/// What the caller must do after a change to the books.
#[derive(Debug)]
pub(crate) struct Actions<C> {
    /// Close these now.
    pub close: Vec<(C, CloseReason)>,
    /// Transmits that can go out on the active connection now.
    pub flush: Vec<Transmit>,
    /// Transmits dropped (wrong peer at that address, queue overflow).
    pub dropped: u64,
}

impl<C> Default for Actions<C> {
    fn default() -> Self {
        Actions {
            close: Vec::new(),
            flush: Vec::new(),
            dropped: 0,
        }
    }
}

/// Why the pool closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// It lost the one-connection-per-pair tie-break.
    Duplicate,
    /// No traffic for the idle timeout.
    Idle,
    /// Another node now answers at that address.
    Replaced,
}

/// The books: active links, standbys, dials in progress.
#[derive(Debug)]
pub(crate) struct Pool<C> {
    me: NodeId,
    race: Duration,
    idle: Duration,
    dial_queue: usize,
    next_dial: u64,
    active: HashMap<SocketAddr, Link<C>>,
    spare: Vec<(SocketAddr, Link<C>)>,
    dialing: HashMap<SocketAddr, Dial>,
}

/// Where a transmit goes.
pub(crate) enum Route<C> {
    /// On this connection.
    Send(C, Transmit),
    /// Queued for a connection; `dial` is set when a dial must start (with that id),
    /// `dropped` when the queue overflowed and its oldest transmit went.
    Queued { dial: Option<u64>, dropped: bool },
}

impl<C: Clone> Pool<C> {
    /// Every pooled connection, active and standby.
    pub fn connections(&self) -> impl Iterator<Item = &C> {
        let active = self.active.values().map(|l| &l.conn);
        active.chain(self.spare.iter().map(|(_, l)| &l.conn))
    }

    pub fn new(me: NodeId, race: Duration, idle: Duration, dial_queue: usize) -> Self {
        Pool {
            me,
            race,
            idle,
            dial_queue: dial_queue.max(1),
            next_dial: 0,
            active: HashMap::new(),
            spare: Vec::new(),
            dialing: HashMap::new(),
        }
    }

    /// Routes a transmit: the active link if it holds the expected peer, else the dial
    /// queue of that address (starting a dial unless one is under way).
    pub fn route(&mut self, t: Transmit, now: Instant) -> Route<C> {
        if let Some(link) = self.active.get_mut(&t.to) {
            if t.peer.map_or(true, |p| p == link.peer) {
                link.last_used = now;
                return Route::Send(link.conn.clone(), t);
            }
        }
        let mut dial = None;
        let queue = self.dialing.entry(t.to).or_insert_with(|| {
            self.next_dial += 1;
            dial = Some(self.next_dial);
            Dial {
                id: self.next_dial,
                queue: VecDeque::new(),
            }
        });
        let dropped = queue.queue.len() >= self.dial_queue;
        if dropped {
            queue.queue.pop_front();
        }
        queue.queue.push_back(t);
        Route::Queued { dial, dropped }
    }

    /// A connection came up (our dial `dial`, or accepted).
    pub fn up(&mut self, addr: SocketAddr, link: Link<C>, dial: Option<u64>) -> Actions<C> {
        let mut acts = Actions::default();
        let take = match self.active.get(&addr) {
            None => true,
            Some(old) => new_wins(old, &link, self.race),
        };
        if take {
            if let Some(old) = self.active.remove(&addr) {
                self.retire(addr, old, link.peer, &mut acts);
            }
            self.active.insert(addr, link);
        } else {
            self.retire(addr, link, self.active[&addr].peer, &mut acts);
        }
        let ours = dial.is_some_and(|d| self.dialing.get(&addr).is_some_and(|q| q.id == d));
        let queued = if ours {
            self.dialing.remove(&addr).map(|d| d.queue)
        } else {
            // Another connection came up while our dial is under way: send on it now, and
            // keep the (empty) entry so no second dial starts.
            self.dialing
                .get_mut(&addr)
                .map(|d| std::mem::take(&mut d.queue))
        };
        let active_peer = self.active[&addr].peer;
        for t in queued.into_iter().flatten() {
            if t.peer.map_or(true, |p| p == active_peer) {
                acts.flush.push(t);
            } else {
                acts.dropped += 1;
            }
        }
        acts
    }

    fn retire(
        &mut self,
        addr: SocketAddr,
        mut link: Link<C>,
        winner: NodeId,
        acts: &mut Actions<C>,
    ) {
        if link.peer != winner {
            acts.close.push((link.conn, CloseReason::Replaced));
        } else if self.me > link.peer {
            link.close_at = Some(link.since.max(link.last_used) + self.race);
            self.spare.push((addr, link));
        } else {
            self.spare.push((addr, link));
        }
    }

    /// Our dial `dial` to `addr` failed: its queue is dropped (count returned).
    pub fn dial_failed(&mut self, addr: SocketAddr, dial: u64) -> u64 {
        match self.dialing.get(&addr) {
            Some(d) if d.id == dial => self
                .dialing
                .remove(&addr)
                .map_or(0, |d| d.queue.len() as u64),
            _ => 0,
        }
    }

    /// Connection `id` to `addr` closed: forget it; promote a standby if it was active.
    pub fn down(&mut self, addr: SocketAddr, id: usize) {
        self.spare.retain(|(_, l)| l.id != id);
        if self.active.get(&addr).is_some_and(|l| l.id == id) {
            self.active.remove(&addr);
            let best = self
                .spare
                .iter()
                .enumerate()
                .filter(|(_, (a, l))| *a == addr && l.close_at.is_none())
                .max_by_key(|(_, (_, l))| l.last_used)
                .map(|(i, _)| i);
            if let Some(i) = best {
                let (_, link) = self.spare.swap_remove(i);
                self.active.insert(addr, link);
            }
        }
    }

    /// A frame arrived on connection `id`: it is in use.
    pub fn touch(&mut self, addr: SocketAddr, id: usize, now: Instant) {
        if let Some(l) = self.active.get_mut(&addr).filter(|l| l.id == id) {
            l.last_used = now;
        } else if let Some((_, l)) = self.spare.iter_mut().find(|(_, l)| l.id == id) {
            l.last_used = now;
        }
    }

    /// Connection `id` lost an operation (e.g. a datagram found it closed): forget it.
    pub fn lost(&mut self, addr: SocketAddr, id: usize) {
        self.down(addr, id);
    }

    /// Closes idle links and retired losers whose grace ran out.
    pub fn sweep(&mut self, now: Instant) -> Vec<(C, CloseReason)> {
        let mut out = Vec::new();
        let idle = self.idle;
        let expired: Vec<SocketAddr> = self
            .active
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_used) >= idle)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            if let Some(l) = self.active.remove(&addr) {
                out.push((l.conn, CloseReason::Idle));
            }
        }
        let mut keep = Vec::with_capacity(self.spare.len());
        for (addr, l) in self.spare.drain(..) {
            if l.close_at.is_some_and(|t| now >= t) {
                out.push((l.conn, CloseReason::Duplicate));
            } else if now.saturating_duration_since(l.last_used) >= idle {
                out.push((l.conn, CloseReason::Idle));
            } else {
                keep.push((addr, l));
            }
        }
        self.spare = keep;
        self.shrink();
        out
    }

    /// Gives back the room of connections and dials long gone (after a burst of
    /// peers, the maps would otherwise keep their largest size).
    fn shrink(&mut self) {
        fn roomy(len: usize, cap: usize) -> bool {
            cap > 64 && cap > len * 4
        }
        if roomy(self.active.len(), self.active.capacity()) {
            self.active.shrink_to_fit();
        }
        if roomy(self.dialing.len(), self.dialing.capacity()) {
            self.dialing.shrink_to_fit();
        }
        if roomy(self.spare.len(), self.spare.capacity()) {
            self.spare.shrink_to_fit();
        }
    }

    /// Number of dials under way.
    pub fn dials(&self) -> usize {
        self.dialing.len()
    }

    /// Active connections.
    #[cfg(test)]
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Every connection held (active and retired), for closing them all.
    pub fn all(&self) -> impl Iterator<Item = &C> {
        self.active
            .values()
            .map(|l| &l.conn)
            .chain(self.spare.iter().map(|(_, l)| &l.conn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RACE: Duration = Duration::from_millis(500);
    const IDLE: Duration = Duration::from_secs(2);

    fn addr() -> SocketAddr {
        "127.0.0.1:7000".parse().unwrap()
    }

    fn link(id: usize, peer: u64, initiator: u64, since: Instant) -> Link<usize> {
        Link {
            conn: id,
            id,
            peer: NodeId(peer),
            initiator: NodeId(initiator),
            since,
            last_used: since,
            close_at: None,
        }
    }

    fn transmit(peer: Option<u64>) -> Transmit {
        Transmit {
            to: addr(),
            peer: peer.map(NodeId),
            reliable: false,
            payload: vec![1],
        }
    }

    /// Both ends of a simultaneous dial pick the same connection, whatever order they
    /// see them in; the higher id closes the loser after the race window.
    #[test]
    fn simultaneous_dials_settle_on_the_lower_initiator() {
        let t0 = Instant::now();
        // Node 1 sees its own dial (conn 10) first, then node 2's (conn 20).
        let mut low = Pool::new(NodeId(1), RACE, IDLE, 8);
        low.up(addr(), link(10, 2, 1, t0), None);
        low.up(addr(), link(20, 2, 2, t0 + Duration::from_millis(3)), None);
        // Node 2 sees its own dial (conn 20) first, then node 1's (conn 10).
        let mut high = Pool::new(NodeId(2), RACE, IDLE, 8);
        high.up(addr(), link(20, 1, 2, t0), None);
        high.up(addr(), link(10, 1, 1, t0 + Duration::from_millis(3)), None);
        for pool in [&mut low, &mut high] {
            match pool.route(transmit(None), t0) {
                Route::Send(conn, _) => assert_eq!(conn, 10),
                Route::Queued { .. } => panic!("no active link"),
            }
        }
        // The lower id keeps the loser as a standby; the higher id closes it later.
        assert!(low.sweep(t0 + RACE * 2).is_empty());
        let closed = high.sweep(t0 + RACE * 2);
        assert_eq!(closed, vec![(20, CloseReason::Duplicate)]);
        // When node 2 closes it, node 1 forgets its standby.
        low.down(addr(), 20);
        assert_eq!(low.all().count(), 1);
    }

    #[test]
    fn a_later_connection_replaces_an_old_one() {
        let t0 = Instant::now();
        let mut pool = Pool::new(NodeId(1), RACE, IDLE, 8);
        pool.up(addr(), link(10, 2, 1, t0), None);
        // The peer restarted (or lost our connection) and dialed again much later.
        pool.up(addr(), link(20, 2, 2, t0 + RACE * 3), None);
        assert!(matches!(
            pool.route(transmit(Some(2)), t0),
            Route::Send(20, _)
        ));
        // Same initiator: the newer always wins.
        pool.up(addr(), link(30, 2, 2, t0 + RACE * 3), None);
        assert!(matches!(
            pool.route(transmit(Some(2)), t0),
            Route::Send(30, _)
        ));
    }

    #[test]
    fn another_node_at_the_address_replaces_the_old_one() {
        let t0 = Instant::now();
        let mut pool = Pool::new(NodeId(1), RACE, IDLE, 8);
        pool.up(addr(), link(10, 2, 1, t0), None);
        let acts = pool.up(addr(), link(20, 3, 3, t0), None);
        assert_eq!(acts.close, vec![(10, CloseReason::Replaced)]);
        // A frame meant for node 2 does not go to node 3: it waits for a dial.
        assert!(matches!(
            pool.route(transmit(Some(2)), t0),
            Route::Queued { dial: Some(_), .. }
        ));
    }

    #[test]
    fn dial_queue_is_bounded_and_flushed_to_the_right_peer() {
        let t0 = Instant::now();
        let mut pool = Pool::new(NodeId(1), RACE, IDLE, 2);
        let Route::Queued { dial: Some(d), .. } = pool.route(transmit(None), t0) else {
            panic!("should dial");
        };
        assert!(matches!(
            pool.route(transmit(Some(9)), t0),
            Route::Queued {
                dial: None,
                dropped: false
            }
        ));
        assert!(matches!(
            pool.route(transmit(Some(2)), t0),
            Route::Queued {
                dial: None,
                dropped: true
            }
        ));
        let acts = pool.up(addr(), link(10, 2, 1, t0), Some(d));
        assert_eq!(acts.flush.len(), 1, "the frame for node 2");
        assert_eq!(acts.dropped, 1, "the frame for node 9");
        assert_eq!(pool.dials(), 0);
        // A failed dial drops its queue.
        let mut pool = Pool::<usize>::new(NodeId(1), RACE, IDLE, 2);
        let Route::Queued { dial: Some(d), .. } = pool.route(transmit(None), t0) else {
            panic!("should dial");
        };
        assert_eq!(pool.dial_failed(addr(), d + 1), 0, "another dial's failure");
        assert_eq!(pool.dial_failed(addr(), d), 1);
        assert_eq!(pool.dials(), 0);
    }

    #[test]
    fn idle_links_close_and_standbys_take_over() {
        let t0 = Instant::now();
        let mut pool = Pool::new(NodeId(1), RACE, IDLE, 8);
        pool.up(addr(), link(10, 2, 1, t0), None);
        pool.up(addr(), link(20, 2, 2, t0), None); // standby (we are the lower id)
        pool.touch(addr(), 20, t0 + IDLE / 2);
        // The active link closes: the standby takes over.
        pool.down(addr(), 10);
        assert_eq!(pool.active(), 1);
        assert!(matches!(
            pool.route(transmit(None), t0 + IDLE / 2),
            Route::Send(20, _)
        ));
        assert!(pool.sweep(t0 + IDLE).is_empty());
        assert_eq!(pool.sweep(t0 + IDLE * 2), vec![(20, CloseReason::Idle)]);
        assert_eq!(pool.active(), 0);
    }
}
