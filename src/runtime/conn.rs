//! The tasks around QUIC connections: accepting, dialing, reading datagrams and streams,
//! and sending on streams. They talk to the driver through channels only.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use quinn::{Connection, Endpoint, Incoming, RecvStream, VarInt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;

use super::validity::certificate_refusal;
use super::frame::{read_body, read_len, write_frame, FrameError};
use super::identity::{node_server_name, PeerKind, MEMBER_SERVER_NAME};
use super::shared::{inc, ConnEvent, Inbound, Shared};
use super::tls::peer_of;
use crate::wire::NodeId;

/// Application close codes.
pub(crate) mod code {
    use quinn::VarInt;
    /// The node shut down.
    pub const SHUTDOWN: VarInt = VarInt::from_u32(0);
    /// The node left the cluster.
    pub const LEFT: VarInt = VarInt::from_u32(1);
    /// No traffic for the idle timeout.
    pub const IDLE: VarInt = VarInt::from_u32(2);
    /// Lost the one-connection-per-pair tie-break.
    pub const DUPLICATE: VarInt = VarInt::from_u32(3);
    /// The peer's certificate binds no usable identity.
    pub const REFUSED: VarInt = VarInt::from_u32(4);
    /// Stream error: a frame over the limit or truncated.
    pub const BAD_FRAME: VarInt = VarInt::from_u32(5);
    /// Refused: this node holds as many connections of that kind as it allows.
    pub const BUSY: VarInt = VarInt::from_u32(6);
    /// A client connection reached its lifetime.
    pub const EXPIRED: VarInt = VarInt::from_u32(7);
    /// The peer's certificate was revoked.
    pub const REVOKED: VarInt = VarInt::from_u32(8);
}

/// The canonical form of a peer address (IPv4-mapped IPv6 becomes IPv4).
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Accepts incoming connections until the endpoint closes; beyond
/// `NodeConfig::max_handshakes` handshakes under way, new ones are refused at once.
pub(crate) async fn accept_loop(endpoint: Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        match shared.limits.handshakes.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(accept_one(incoming, permit, shared.clone()));
            }
            Err(_) => {
                inc(&shared.counters.refused_busy);
                tracing::debug!(remote = %incoming.remote_address(), "too many handshakes; refused");
                incoming.refuse();
            }
        }
    }
}

async fn accept_one(incoming: Incoming, handshake_slot: OwnedSemaphorePermit, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let handshake = async { incoming.accept()?.await };
    let outcome = timeout(shared.timings.handshake, handshake).await;
    drop(handshake_slot);
    let conn = match outcome {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            inc(&shared.counters.handshakes_refused);
            match certificate_refusal(&e) {
                Some(why) => shared.refusals.record(remote, why, std::time::Instant::now()),
                None => tracing::debug!(%remote, error = %e, "incoming handshake refused"),
            }
            return;
        }
        Err(_) => {
            inc(&shared.counters.handshakes_refused);
            tracing::debug!(%remote, "incoming handshake timed out");
            return;
        }
    };
    if super::revoke::revoked(&conn, &shared) {
        inc(&shared.counters.handshakes_refused);
        return conn.close(code::REVOKED, b"certificate revoked");
    }
    match peer_of(&conn) {
        Some(PeerKind::Node(id)) if id != shared.me => {
            let open = shared.counters.open_connections.load(Ordering::Relaxed);
            if open >= shared.limits.nodes {
                return busy(&conn, &shared, "too many node connections");
            }
            let up = ConnEvent::Up {
                conn,
                peer: id,
                initiator: id,
                dial: None,
            };
            let _ = shared.conn_events.send(up).await;
        }
        Some(PeerKind::Client(name)) => {
            let Ok(slot) = shared.limits.clients.clone().try_acquire_owned() else {
                return busy(&conn, &shared, "too many client connections");
            };
            tracing::debug!(%remote, client = %name, "status client connected");
            serve_client(conn, slot, shared).await;
        }
        other => {
            inc(&shared.counters.handshakes_refused);
            tracing::warn!(%remote, identity = ?other, "refused a peer without a usable identity");
            conn.close(code::REFUSED, b"no usable identity");
        }
    }
}

/// Closes a connection refused for want of room.
fn busy(conn: &Connection, shared: &Shared, why: &str) {
    inc(&shared.counters.refused_busy);
    tracing::debug!(remote = %conn.remote_address(), why, "connection refused");
    conn.close(code::BUSY, why.as_bytes());
}

/// The streaming requests (watches) running on one connection: a client connection
/// stays open past its lifetime while one runs.
#[derive(Clone, Debug)]
pub(crate) struct Streaming(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for Streaming {
    fn default() -> Self {
        Streaming(Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl Streaming {
    /// Counts one streaming request until the returned guard is dropped.
    pub fn open(&self) -> StreamingGuard {
        self.0.send_modify(|n| *n += 1);
        StreamingGuard(self.clone())
    }

    /// Waits until no streaming request runs.
    async fn idle(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One streaming request running (see [`Streaming::open`]).
pub(crate) struct StreamingGuard(Streaming);

impl Drop for StreamingGuard {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A client identity may only ask for status, on bidirectional streams, for at most
/// `NodeConfig::client_lifetime`; it holds one client slot meanwhile. A connection
/// with a watch running stays open until the watches end (the client closes them, or
/// the node stops), but takes no new request once its lifetime is over.
async fn serve_client(conn: Connection, slot: OwnedSemaphorePermit, shared: Arc<Shared>) {
    let clients = &shared.counters.client_connections;
    clients.fetch_add(1, Ordering::Relaxed);
    let streaming = Streaming::default();
    let serve = async {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let serve = super::status::serve(send, recv, shared.clone(), streaming.clone());
            tokio::spawn(serve);
        }
    };
    if timeout(shared.limits.client_lifetime, serve).await.is_err() {
        tokio::select! {
            () = streaming.idle() => {}
            _ = conn.closed() => {}
        }
        conn.close(code::EXPIRED, b"client connection lifetime over");
    }
    clients.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
}

/// Dials `to`, expecting node `expect` there (any cluster node when `None`), and reports
/// the outcome to the driver.
pub(crate) async fn dial(
    endpoint: Endpoint,
    client: quinn::ClientConfig,
    to: SocketAddr,
    expect: Option<NodeId>,
    dial: u64,
    shared: Arc<Shared>,
) {
    let name = expect.map_or_else(|| MEMBER_SERVER_NAME.to_owned(), node_server_name);
    let handshake = async {
        let connecting = endpoint
            .connect_with(client, to, &name)
            .map_err(|e| e.to_string())?;
        connecting.await.map_err(|e| {
            if let Some(why) = certificate_refusal(&e) {
                shared.refusals.record(to, why, std::time::Instant::now());
            }
            e.to_string()
        })
    };
    let outcome = match timeout(shared.timings.handshake, handshake).await {
        Ok(Ok(conn)) if super::revoke::revoked(&conn, &shared) => {
            conn.close(code::REVOKED, b"certificate revoked");
            Err("the peer's certificate is revoked".to_owned())
        }
        Ok(Ok(conn)) => match peer_of(&conn) {
            Some(PeerKind::Node(id)) if id != shared.me && expect.map_or(true, |e| e == id) => {
                shared.refusals.clear(to);
                Ok(conn_up(conn, id, shared.me, dial))
            }
            other => {
                conn.close(code::REFUSED, b"unexpected identity");
                Err(format!("unexpected peer identity {other:?}"))
            }
        },
        Ok(Err(e)) => Err(e),
        Err(_) => Err("handshake timed out".to_owned()),
    };
    let event = outcome.unwrap_or_else(|error| {
        inc(&shared.counters.dials_failed);
        tracing::debug!(%to, ?expect, %error, "dial failed");
        ConnEvent::DialFailed { to, dial }
    });
    let _ = shared.conn_events.send(event).await;
}

fn conn_up(conn: Connection, peer: NodeId, me: NodeId, dial: u64) -> ConnEvent {
    ConnEvent::Up {
        conn,
        peer,
        initiator: me,
        dial: Some(dial),
    }
}

/// Starts reading a member connection: datagrams, streams, status queries.
pub(crate) fn spawn_readers(conn: Connection, addr: SocketAddr, peer: NodeId, shared: Arc<Shared>) {
    shared
        .counters
        .open_connections
        .fetch_add(1, Ordering::Relaxed);
    inc(&shared.counters.connections_opened);
    tokio::spawn(read_datagrams(conn.clone(), addr, peer, shared.clone()));
    tokio::spawn(accept_streams(conn, addr, peer, shared));
}

async fn read_datagrams(conn: Connection, addr: SocketAddr, peer: NodeId, shared: Arc<Shared>) {
    let id = conn.stable_id();
    loop {
        let bytes = match conn.read_datagram().await {
            Ok(bytes) => bytes,
            Err(e) => {
                // A client certificate is checked after the dialer's handshake
                // completed: a refusal of ours arrives as the connection's close.
                if let Some(why) = certificate_refusal(&e) {
                    shared.refusals.record(addr, why, std::time::Instant::now());
                }
                break;
            }
        };
        inc(&shared.counters.datagrams_in);
        let frame = Inbound {
            conn: id,
            from: addr,
            peer,
            reliable: false,
            bytes,
        };
        if shared.frames.send(frame).await.is_err() {
            break;
        }
    }
    shared
        .counters
        .open_connections
        .fetch_sub(1, Ordering::Relaxed);
    let _ = shared.conn_events.send(ConnEvent::Down { addr, id }).await;
}

async fn accept_streams(conn: Connection, addr: SocketAddr, peer: NodeId, shared: Arc<Shared>) {
    loop {
        tokio::select! {
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    let task = read_stream(recv, conn.stable_id(), addr, peer, shared.clone());
                    tokio::spawn(task);
                }
                Err(_) => break,
            },
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    let streaming = Streaming::default();
                    tokio::spawn(super::status::serve(send, recv, shared.clone(), streaming));
                }
                Err(_) => break,
            },
        }
    }
}

async fn read_stream(
    mut recv: RecvStream,
    conn: usize,
    from: SocketAddr,
    peer: NodeId,
    shared: Arc<Shared>,
) {
    loop {
        let frame = async {
            let Some(len) = read_len(&mut recv, shared.max_stream_bytes).await? else {
                return Ok(None);
            };
            // Frames being read share one memory budget: a peer announcing large frames
            // waits (flow control holds its data) instead of growing our memory.
            let permits = u32::try_from(len).unwrap_or(u32::MAX);
            let permit = shared.stream_budget.acquire_many(permits).await;
            let body = read_body(&mut recv, len).await?;
            drop(permit);
            Ok::<_, FrameError>(Some(body))
        };
        match frame.await {
            Ok(Some(body)) => {
                inc(&shared.counters.streams_in);
                let frame = Inbound {
                    conn,
                    from,
                    peer,
                    reliable: true,
                    bytes: Bytes::from(body),
                };
                if shared.frames.send(frame).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(FrameError::Read(e)) => {
                tracing::debug!(%from, %peer, error = %e, "stream failed");
                return;
            }
            Err(e) => {
                inc(&shared.counters.malformed_streams);
                tracing::warn!(%from, %peer, error = %e, "dropped a malformed stream");
                let _ = recv.stop(code::BAD_FRAME);
                return;
            }
        }
    }
}

/// Sends one frame on a new unidirectional stream, in its own task; `permit` bounds how
/// many run at once.
pub(crate) fn spawn_stream_send(
    conn: Connection,
    payload: Bytes,
    permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
) {
    tokio::spawn(async move {
        let _permit = permit;
        let send = async {
            let mut stream = conn.open_uni().await.map_err(|e| e.to_string())?;
            write_frame(&mut stream, &payload)
                .await
                .map_err(|e| e.to_string())?;
            stream.finish().map_err(|e| e.to_string())?;
            stream.stopped().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        let error = match timeout(shared.timings.send_timeout, send).await {
            Ok(Ok(())) => return inc(&shared.counters.streams_out),
            Ok(Err(error)) => error,
            Err(_) => "timed out".to_owned(),
        };
        inc(&shared.counters.send_dropped);
        tracing::debug!(to = %conn.remote_address(), %error, "stream send failed");
    });
}

/// Closes a connection with an application code.
pub(crate) fn close(conn: &Connection, code: VarInt, reason: &str) {
    conn.close(code, reason.as_bytes());
}
