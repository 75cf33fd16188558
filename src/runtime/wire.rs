//! Counting what a node puts on the wire: a UDP socket wrapper that counts every
//! packet quinn sends, with its IP and UDP headers.
//!
//! quinn hands the socket one [`Transmit`] per send; with GSO one transmit carries
//! several packets of `segment_size` bytes each (the last may be shorter), so the
//! packets are counted per segment, and each packet adds its headers: 28 bytes over
//! IPv4 (20 IP + 8 UDP), 48 over IPv6 (40 + 8). An IPv4-mapped destination on a
//! dual-stack socket leaves as IPv4. Only sends the kernel accepted are counted. Link
//! layer framing (Ethernet's 14 to 38 bytes) is not: it differs per medium.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// IPv4 (20) and UDP (8) header bytes.
const IPV4_HEADERS: u64 = 28;
/// IPv6 (40) and UDP (8) header bytes.
const IPV6_HEADERS: u64 = 48;

/// Packets and bytes (IP and UDP headers included) sent through a [`CountingSocket`].
#[derive(Debug, Default)]
pub(crate) struct WireCount {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl WireCount {
    /// Packets sent so far.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Bytes sent so far, IP and UDP headers included.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn record(&self, t: &Transmit) {
        let (packets, bytes) = on_wire(t.destination, t.contents.len(), t.segment_size);
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Packets and bytes on the wire for `len` bytes of UDP payload sent to `to`, cut into
/// segments of `segment` bytes (GSO) when given.
fn on_wire(to: SocketAddr, len: usize, segment: Option<usize>) -> (u64, u64) {
    let packets = match segment {
        Some(s) if s > 0 && len > 0 => len.div_ceil(s),
        _ => 1,
    } as u64;
    let v4 = match to {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    let headers = if v4 { IPV4_HEADERS } else { IPV6_HEADERS };
    (packets, len as u64 + packets * headers)
}

/// A UDP socket that counts what it sends into a shared [`WireCount`].
pub(crate) struct CountingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    count: Arc<WireCount>,
}

impl CountingSocket {
    pub fn new(inner: Arc<dyn AsyncUdpSocket>, count: Arc<WireCount>) -> Self {
        CountingSocket { inner, count }
    }
}

impl fmt::Debug for CountingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingSocket")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for CountingSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.inner.try_send(transmit)?;
        self.count.record(transmit);
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_ip_version_and_segments() {
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:1".parse().unwrap();
        assert_eq!(on_wire(v4, 100, None), (1, 128));
        assert_eq!(on_wire(v6, 100, None), (1, 148));
        assert_eq!(on_wire(mapped, 100, None), (1, 128));
        // GSO: 2500 bytes in segments of 1200 are three packets.
        assert_eq!(on_wire(v4, 2500, Some(1200)), (3, 2500 + 3 * 28));
        assert_eq!(on_wire(v4, 2400, Some(1200)), (2, 2400 + 2 * 28));
    }
}
