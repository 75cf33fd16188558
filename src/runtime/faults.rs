//! A fault-injecting UDP socket for tests: drop, delay, and block (partition) traffic
//! by address, under the real QUIC stack.
//!
//! [`Faults`] is a cloneable handle; share one between every node of a test and change
//! the rules while they run. A node uses it when its [`super::NodeConfig::faults`] is set
//! (or wrap any socket with [`FaultySocket::new`] for [`crate::Node::start_with_socket`]).
//! Rules apply to the packets of the wrapped socket whose local address is known, so bind
//! nodes to a concrete address (e.g. `127.0.0.1:0`), not a wildcard:
//!
//! - blocked pairs: packets from `a` to `b` are dropped, on sending and on receiving;
//! - drop: every packet sent is dropped with this probability;
//! - delay: every packet sent leaves this much later (sent from a tokio task).
//!
//! ```no_run
//! # async fn demo(a: std::net::SocketAddr, b: std::net::SocketAddr, c: std::net::SocketAddr) {
//! use quorate::runtime::faults::Faults;
//! let faults = Faults::new();
//! faults.partition(&[a, b], &[c]); // {a, b} and {c} cannot talk
//! faults.heal(); // they can again
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
struct Rules {
    blocked: HashSet<(SocketAddr, SocketAddr)>,
    drop: f64,
    delay: Duration,
    rng: SmallRng,
    dropped: u64,
}

/// What to do with one outgoing packet.
enum Verdict {
    Pass,
    Drop,
    Delay(Duration),
}

/// A cloneable handle on the fault rules shared by [`FaultySocket`]s.
#[derive(Clone)]
pub struct Faults {
    rules: Arc<Mutex<Rules>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.lock();
        f.debug_struct("Faults")
            .field("blocked", &r.blocked.len())
            .field("drop", &r.drop)
            .field("delay", &r.delay)
            .finish()
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// No faults yet; random drops seeded from the OS.
    pub fn new() -> Self {
        Self::with_rng(SmallRng::from_os_rng())
    }

    /// No faults yet; random drops replay from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::with_rng(SmallRng::seed_from_u64(seed))
    }

    fn with_rng(rng: SmallRng) -> Self {
        Faults {
            rules: Arc::new(Mutex::new(Rules {
                blocked: HashSet::new(),
                drop: 0.0,
                delay: Duration::ZERO,
                rng,
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rules> {
        // The rules stay consistent even if a holder panicked: recover them.
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops every packet between `a` and `b`, both ways.
    pub fn block(&self, a: SocketAddr, b: SocketAddr) {
        let mut r = self.lock();
        r.blocked.insert((a, b));
        r.blocked.insert((b, a));
    }

    /// Drops every packet from `from` to `to` (one way).
    pub fn block_one_way(&self, from: SocketAddr, to: SocketAddr) {
        self.lock().blocked.insert((from, to));
    }

    /// Lets packets between `a` and `b` through again, both ways.
    pub fn unblock(&self, a: SocketAddr, b: SocketAddr) {
        let mut r = self.lock();
        r.blocked.remove(&(a, b));
        r.blocked.remove(&(b, a));
    }

    /// Cuts every path between a member of `side_a` and a member of `side_b`.
    pub fn partition(&self, side_a: &[SocketAddr], side_b: &[SocketAddr]) {
        for a in side_a {
            for b in side_b {
                self.block(*a, *b);
            }
        }
    }

    /// Removes every block (drop and delay stay as they are).
    pub fn heal(&self) {
        self.lock().blocked.clear();
    }

    /// Drops each packet sent with probability `p` (clamped to `0.0..=1.0`).
    pub fn set_drop(&self, p: f64) {
        self.lock().drop = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    }

    /// Delays each packet sent by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        let mut r = self.lock();
        r.blocked.clear();
        r.drop = 0.0;
        r.delay = Duration::ZERO;
    }

    /// Packets dropped so far (blocked or by chance).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn on_send(&self, from: SocketAddr, to: SocketAddr) -> Verdict {
        let mut r = self.lock();
        let dropped = r.blocked.contains(&(from, to)) || {
            let p = r.drop;
            p > 0.0 && r.rng.random_bool(p)
        };
        if dropped {
            r.dropped += 1;
            Verdict::Drop
        } else if r.delay.is_zero() {
            Verdict::Pass
        } else {
            Verdict::Delay(r.delay)
        }
    }

    fn on_recv(&self, from: SocketAddr, to: SocketAddr) -> bool {
        let mut r = self.lock();
        let blocked = r.blocked.contains(&(from, to));
        if blocked {
            r.dropped += 1;
        }
        !blocked
    }
}

/// A UDP socket applying [`Faults`] to another one.
pub struct FaultySocket {
    inner: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    faults: Faults,
}

impl fmt::Debug for FaultySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultySocket")
            .field("local", &self.local)
            .field("faults", &self.faults)
            .finish()
    }
}

impl FaultySocket {
    /// Wraps `inner`; its local address is read once, here.
    pub fn new(inner: Arc<dyn AsyncUdpSocket>, faults: Faults) -> io::Result<Self> {
        Ok(FaultySocket {
            local: inner.local_addr()?,
            inner,
            faults,
        })
    }
}

impl AsyncUdpSocket for FaultySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        match self.faults.on_send(self.local, transmit.destination) {
            Verdict::Pass => self.inner.try_send(transmit),
            // A dropped packet looks sent, as on a lossy network.
            Verdict::Drop => Ok(()),
            Verdict::Delay(delay) => {
                let inner = self.inner.clone();
                let (destination, ecn, src_ip) =
                    (transmit.destination, transmit.ecn, transmit.src_ip);
                let (contents, segment_size) = (transmit.contents.to_vec(), transmit.segment_size);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let t = Transmit {
                        destination,
                        ecn,
                        contents: &contents,
                        segment_size,
                        src_ip,
                    };
                    // A full socket buffer later is a loss, as for any datagram.
                    let _ = inner.try_send(&t);
                });
                Ok(())
            }
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let n = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            let mut kept = 0;
            for i in 0..n {
                if !self.faults.on_recv(meta[i].addr, self.local) {
                    continue;
                }
                if kept != i {
                    let (head, tail) = bufs.split_at_mut(i);
                    let len = meta[i].len.min(head[kept].len()).min(tail[0].len());
                    head[kept][..len].copy_from_slice(&tail[0][..len]);
                    meta[kept] = meta[i];
                    meta[kept].len = len;
                }
                kept += 1;
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
            // Everything was filtered: poll again (registers the waker if nothing is left).
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
