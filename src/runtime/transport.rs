//! The QUIC transport of one node: its endpoint (client and server at once), the
//! connection pool, and the execution of the engine's transmits.
//!
//! Datagram transmits go out as QUIC datagrams on the pooled connection (on a stream when
//! the connection cannot carry a datagram that large); reliable ones each on a new
//! unidirectional stream, sent by a spawned task. Nothing here blocks the driver: a
//! transmit to an address without a connection waits in a bounded queue while a task
//! dials.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use quinn::{
    Connection, ConnectionId, ConnectionIdGenerator, Endpoint, EndpointConfig, SendDatagramError,
    TransportConfig,
};
use rand::TryRngCore;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::conn::{self, code};
use super::identity::{Identity, IdentityError};
use super::pool::{CloseReason, Link, Pool, Route};
use super::shared::{add, inc, ConnEvent, Shared, Timings};
use super::tls;
use super::wire::WireCount;
use crate::config::Config;
use crate::swim::Transmit;

/// Most transmits waiting for one address's connection; the oldest are dropped.
const DIAL_QUEUE: usize = 64;
/// Most stream sends in flight at once per node; beyond, transmits are dropped.
const MAX_STREAM_SENDS: usize = 256;
/// Most concurrent incoming unidirectional streams per connection.
const MAX_UNI_STREAMS: u32 = 64;
/// Most concurrent incoming bidirectional (status) streams per connection.
const MAX_BI_STREAMS: u32 = 4;
/// Bytes a peer may send on one connection ahead of what this node has read, all
/// streams together (QUIC's connection flow-control window; quinn's default is
/// unbounded). 4 MiB is three of quinn's default stream windows: a large push-pull
/// still streams at 4 MiB per round trip, and an unread connection holds at most this.
const RECEIVE_WINDOW: u32 = 4 << 20;
/// QUIC's first round-trip estimate before any sample (RFC 9002's and quinn's default).
const DEFAULT_INITIAL_RTT: std::time::Duration = std::time::Duration::from_millis(333);
/// Bytes buffered for one incoming connection attempt before it is accepted or
/// refused (quinn's default: 10 MiB; the accept loop decides at once).
const INCOMING_BUFFER: u64 = 64 << 10;

/// Bytes of the connection ids this node issues. Every packet a peer sends to this node
/// carries one (QUIC's short header), so each byte saved is a byte off every packet of
/// the cluster; quinn's default is 8. A node's connection ids only tell its own
/// connections apart (a few per connection, at most a few thousand connections: quinn
/// draws again on a collision), no load balancer routes by them and connections never
/// migrate, so 4 random bytes (4 billion values) are plenty.
pub(crate) const LOCAL_CID_LEN: usize = 4;

/// The endpoint settings: connection ids of [`LOCAL_CID_LEN`] random bytes.
pub(crate) fn endpoint_config() -> EndpointConfig {
    let mut ec = EndpointConfig::default();
    ec.cid_generator(|| Box::new(ShortCids));
    ec
}

/// Connection ids of [`LOCAL_CID_LEN`] bytes from the operating system's random source
/// (QUIC asks for ids an observer cannot link to each other).
struct ShortCids;

impl ConnectionIdGenerator for ShortCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut id = [0u8; LOCAL_CID_LEN];
        // The OS source fails only when the kernel has none to give; a node cannot run
        // TLS without one either.
        rand::rngs::OsRng
            .try_fill_bytes(&mut id)
            .expect("the operating system's random source failed");
        ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        LOCAL_CID_LEN
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The QUIC transport parameters for `cfg`: the idle timeout is
/// `Config::connection_idle` with no keep-alive; datagram buffers follow the datagram
/// size; no path MTU discovery; the first round-trip guess is `Config::probe_timeout`
/// (at most 333 ms).
pub(crate) fn transport_config(cfg: &Config) -> TransportConfig {
    let t = Timings::new(cfg);
    let mut tc = TransportConfig::default();
    tc.max_idle_timeout(t.quic_idle.try_into().ok())
        .keep_alive_interval(None)
        .max_concurrent_uni_streams(MAX_UNI_STREAMS.into())
        .max_concurrent_bidi_streams(MAX_BI_STREAMS.into())
        .receive_window(RECEIVE_WINDOW.into())
        .datagram_receive_buffer_size(Some(cfg.max_datagram_bytes.max(1200) * 256))
        .datagram_send_buffer_size(cfg.max_datagram_bytes.max(1200) * 256);
    // Path MTU discovery pads probes of up to 1452 bytes on every new connection (and
    // again every 10 minutes), about two thirds of what a node sends while joining 50
    // (278 kB against 84 kB): SWIM's datagrams fit the 1200 bytes every QUIC path
    // carries (`max_datagram_bytes`), so only the occasional large state transfer
    // loses, a few percent of its header bytes.
    tc.mtu_discovery_config(None)
        // The round-trip guess before any sample: a handshake packet that got no
        // answer (a seed not up yet, a loss) is sent again after three times this.
        // quinn's 333 ms is for the open Internet; `probe_timeout` already bounds the
        // round trip.
        .initial_rtt(cfg.probe_timeout.min(DEFAULT_INITIAL_RTT));
    tc
}

/// A quinn client configuration presenting `identity` and trusting only its cluster CA,
/// with the transport parameters derived from `cfg`. Dial a node with server name
/// [`super::identity::node_server_name`] (or [`super::identity::MEMBER_SERVER_NAME`]
/// for any node of the cluster).
pub fn client_config(
    identity: &Identity,
    cfg: &Config,
) -> Result<quinn::ClientConfig, IdentityError> {
    let mut client = quinn::ClientConfig::new(Arc::new(tls::client_crypto(identity)?));
    client.transport_config(Arc::new(transport_config(cfg)));
    Ok(client)
}

/// The server side of a node's endpoint: at most `max_handshakes` connection attempts
/// wait for the accept loop, each buffering at most [`INCOMING_BUFFER`] bytes.
pub(crate) fn server_config(
    identity: &Identity,
    cfg: &Config,
    max_handshakes: usize,
) -> Result<quinn::ServerConfig, IdentityError> {
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(tls::server_crypto(identity)?));
    server
        .transport_config(Arc::new(transport_config(cfg)))
        .max_incoming(max_handshakes)
        .incoming_buffer_size(INCOMING_BUFFER)
        .incoming_buffer_size_total(INCOMING_BUFFER.saturating_mul(max_handshakes as u64))
        // Peers are known by their listen address: a connection never migrates.
        .migration(false);
    Ok(server)
}

/// The node's transport: endpoint, pool, and the limits on work in flight.
pub(crate) struct Transport {
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    pool: Pool<Connection>,
    shared: Arc<Shared>,
    sends: Arc<Semaphore>,
    /// UDP bytes sent by connections this node closed.
    closed_udp_bytes: std::sync::atomic::AtomicU64,
    /// What the node's socket sent, headers included.
    wire: Arc<WireCount>,
}

impl Transport {
    pub fn new(
        endpoint: Endpoint,
        client: quinn::ClientConfig,
        shared: Arc<Shared>,
        wire: Arc<WireCount>,
    ) -> Self {
        let t = shared.timings;
        Transport {
            pool: Pool::new(shared.me, t.race, t.pool_idle, DIAL_QUEUE),
            endpoint,
            client,
            shared,
            sends: Arc::new(Semaphore::new(MAX_STREAM_SENDS)),
            closed_udp_bytes: Default::default(),
            wire,
        }
    }

    /// Handshakes from now on present the identity these configs hold (a renewed
    /// certificate); open connections keep theirs until they close.
    pub fn reload_tls(&mut self, server: quinn::ServerConfig, client: quinn::ClientConfig) {
        self.endpoint.set_server_config(Some(server));
        self.client = client;
    }

    /// Executes one transmit of the engine.
    pub fn send(&mut self, t: Transmit, now: Instant) {
        let (to, peer) = (t.to, t.peer);
        match self.pool.route(t, now) {
            Route::Send(conn, t) => self.send_on(conn, t.reliable, Bytes::from(t.payload)),
            Route::Queued { dial, dropped } => {
                if dropped {
                    inc(&self.shared.counters.send_dropped);
                }
                self.start_dial(to, peer, dial);
            }
        }
    }

    fn start_dial(&self, to: SocketAddr, expect: Option<crate::wire::NodeId>, dial: Option<u64>) {
        if let Some(dial) = dial {
            let task = conn::dial(
                self.endpoint.clone(),
                self.client.clone(),
                to,
                expect,
                dial,
                self.shared.clone(),
            );
            tokio::spawn(task);
        }
    }

    fn send_on(&mut self, conn: Connection, reliable: bool, payload: Bytes) {
        if !reliable {
            match conn.send_datagram(payload.clone()) {
                Ok(()) => return inc(&self.shared.counters.datagrams_out),
                Err(SendDatagramError::ConnectionLost(_)) => {
                    // The connection died under us: forget it; the next frame redials.
                    let addr = conn::canonical(conn.remote_address());
                    self.pool.lost(addr, conn.stable_id());
                    return inc(&self.shared.counters.send_dropped);
                }
                // Too large for this path (or no datagram support): use a stream.
                Err(_) => {}
            }
        }
        match self.sends.clone().try_acquire_owned() {
            Ok(permit) => conn::spawn_stream_send(conn, payload, permit, self.shared.clone()),
            Err(_) => {
                inc(&self.shared.counters.send_dropped);
                tracing::debug!("too many stream sends in flight; frame dropped");
            }
        }
    }

    /// A connection event from the tasks.
    pub fn on_event(&mut self, ev: ConnEvent, now: Instant) {
        match ev {
            ConnEvent::Up {
                conn,
                peer,
                initiator,
                dial,
            } => {
                let addr = conn::canonical(conn.remote_address());
                conn::spawn_readers(conn.clone(), addr, peer, self.shared.clone());
                super::revoke::offer(&conn, &self.shared);
                let link = Link {
                    id: conn.stable_id(),
                    conn,
                    peer,
                    initiator,
                    since: now,
                    last_used: now,
                    close_at: None,
                };
                let acts = self.pool.up(addr, link, dial);
                add(&self.shared.counters.send_dropped, acts.dropped);
                for (c, why) in acts.close {
                    self.close_one(&c, why);
                }
                for t in acts.flush {
                    self.send(t, now);
                }
            }
            ConnEvent::DialFailed { to, dial } => {
                let dropped = self.pool.dial_failed(to, dial);
                add(&self.shared.counters.send_dropped, dropped);
            }
            ConnEvent::Down { addr, id } => self.pool.down(addr, id),
        }
    }

    /// A frame arrived on connection `conn` from `from`.
    pub fn touch(&mut self, from: SocketAddr, conn: usize, now: Instant) {
        self.pool.touch(from, conn, now);
    }

    /// Housekeeping: idle connections and tie-break losers are closed.
    pub fn sweep(&mut self, now: Instant) {
        for (c, why) in self.pool.sweep(now) {
            self.close_one(&c, why);
        }
        let open: u64 = self
            .pool
            .connections()
            .map(|c| c.stats().udp_tx.bytes)
            .sum();
        let closed = self.closed_udp_bytes.load(Ordering::Relaxed);
        let counters = &self.shared.counters;
        counters
            .udp_bytes_out
            .store(closed + open, Ordering::Relaxed);
        counters
            .wire_packets_out
            .store(self.wire.packets(), Ordering::Relaxed);
        counters
            .wire_bytes_out
            .store(self.wire.bytes(), Ordering::Relaxed);
    }

    fn close_one(&self, c: &Connection, why: CloseReason) {
        let counters = &self.shared.counters;
        self.closed_udp_bytes
            .fetch_add(c.stats().udp_tx.bytes, Ordering::Relaxed);
        match why {
            CloseReason::Idle => {
                inc(&counters.idle_closed);
                conn::close(c, code::IDLE, "idle");
            }
            CloseReason::Duplicate | CloseReason::Replaced => {
                inc(&counters.duplicates_closed);
                conn::close(c, code::DUPLICATE, "duplicate");
            }
        }
        tracing::trace!(peer = %c.remote_address(), ?why, "closed a connection");
    }

    /// Closes every connection whose peer certificate `rev` revokes; returns how many.
    pub fn close_revoked(&self, rev: &super::revocation::Revocation) -> usize {
        let mut closed = 0;
        for c in self.pool.all() {
            if super::tls::peer_serial(c).is_some_and(|s| rev.revokes_serial(&s)) {
                conn::close(c, code::REVOKED, "certificate revoked");
                closed += 1;
            }
        }
        closed
    }

    /// Whether reliable sends or dials are still under way.
    pub fn busy(&self) -> bool {
        self.sends.available_permits() < MAX_STREAM_SENDS || self.pool.dials() > 0
    }

    /// Closes every connection and the endpoint.
    pub fn close(&self, code: quinn::VarInt, reason: &str) {
        for c in self.pool.all() {
            conn::close(c, code, reason);
        }
        self.endpoint.close(code, reason.as_bytes());
    }

    /// Waits (bounded) until the close reached the peers.
    pub async fn wait_idle(&self, bound: std::time::Duration) {
        let _ = tokio::time::timeout(bound, self.endpoint.wait_idle()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_short_and_random() {
        let mut g = ShortCids;
        let a = g.generate_cid();
        let b = g.generate_cid();
        assert_eq!((a.len(), b.len(), g.cid_len()), (LOCAL_CID_LEN, LOCAL_CID_LEN, 4));
        assert_ne!(a, b);
    }

    #[test]
    fn no_mtu_discovery_and_the_probe_timeout_as_first_round_trip() {
        let lan = format!("{:?}", transport_config(&Config::lan()));
        assert!(lan.contains("mtu_discovery_config: None"), "{lan}");
        assert!(lan.contains("initial_rtt: 100ms"), "{lan}");
        let wan = format!("{:?}", transport_config(&Config::wan()));
        assert!(wan.contains("initial_rtt: 333ms"), "{wan}");
    }
}
