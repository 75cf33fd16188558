//! The status query: a client (an admin identity, or a node's) opens a bidirectional
//! stream, sends a request frame and reads back one response frame holding the node's
//! view of the cluster. It is a small message set of the runtime, separate from the
//! membership protocol, encoded with postcard in length-prefixed frames.
//!
//! Two request forms are understood: version 3 ([`StatusRequest`]: the report or a
//! confirmed leader), which the one-answer queries still send so that they work with
//! older nodes, and version 4 ([`RequestV4`], an [`Ask`]), which adds the streaming
//! requests: a watch of the node's events (`super::watch`), answered by many frames
//! on the same stream until the client closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Endpoint, RecvStream, SendStream};
use serde::{Deserialize, Serialize};

use super::conn::{canonical, Streaming};
use super::frame::{read_frame, write_frame};
use super::identity::{Identity, IdentityError, MEMBER_SERVER_NAME};
use super::shared::{inc, Shared};
use super::tls;
use super::handle::Commands;
use crate::election::{quorum, Confirmed, Term};
use crate::wire::{Incarnation, NodeId, State};

/// Version of the status message set (2: groups, leaders and voters in the report;
/// 3: confirmed-leader queries), still what the one-answer queries send.
const STATUS_VERSION: u16 = 3;
/// Version of the request form with an [`Ask`] (4: watches).
const ASK_VERSION: u16 = 4;
/// Largest request accepted: a revocation list and a little more.
const MAX_REQUEST: usize = super::revocation::MAX_REVOCATION_BYTES + 1024;
/// Largest report (or streamed frame) a client accepts.
pub(super) const MAX_REPORT: usize = 256 << 20;
/// Bound on a whole status query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a status query ([`query_status`]) failed. A status query changes nothing on the
/// node queried, whatever the outcome; the client's endpoint is closed again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// No local endpoint could be bound for the query; nothing was sent.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The local address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The identity cannot be used to build TLS; nothing was sent.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The query could not connect (unreachable, or not of the same cluster CA), or the
    /// connection failed while asking; no answer was read.
    #[error("cannot query {addr}: {reason}")]
    Connect {
        /// The node queried.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The node queried refused to answer (another cluster name or status version).
    #[error("{addr} refused the status query: {reason}")]
    Refused {
        /// The node queried.
        addr: SocketAddr,
        /// Its reason.
        reason: String,
    },
    /// The node queried sent an answer that could not be read.
    #[error("bad status answer from {addr}: {reason}")]
    Protocol {
        /// The node queried.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The status query got no answer in time (10 s); it was abandoned.
    #[error("no status answer from {addr} in time")]
    Timeout {
        /// The node queried.
        addr: SocketAddr,
    },
}

#[derive(Serialize, Deserialize)]
struct StatusRequest {
    version: u16,
    cluster: String,
    /// Ask the voters who leads this group, instead of the report.
    confirm: Option<String>,
}

/// The request form of version 4: what is asked, as an [`Ask`].
#[derive(Serialize, Deserialize)]
struct RequestV4 {
    version: u16,
    cluster: String,
    ask: Ask,
}

/// What a version-4 request asks. The variant order is the encoding: add at the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Ask {
    /// The node's view ([`StatusReport`]).
    Report,
    /// Who leads this group, as the voters confirm.
    Confirm(String),
    /// Every event from now on (only those of `group` when given), one frame each.
    Watch { group: Option<String> },
    /// Put this revocation list (DER) in force; `origin`: send it on to every member
    /// (a client's request), else it came from a member that does.
    Revoke { crl: Vec<u8>, origin: bool },
    /// Run for `group` on the client's behalf (`once`: a lock's campaign); the stream
    /// stays open both ways (`super::delegate`).
    Campaign { group: String, once: bool },
}

/// The answers. The variant order is the encoding: add at the end.
#[derive(Serialize, Deserialize)]
pub(super) enum StatusResponse {
    Report(StatusReport),
    Refused(String),
    Confirmed(Confirmed),
    /// A watch was accepted by this node; events follow.
    Watching(NodeId),
    /// One event of a watch.
    Event(super::watch::WireWatched),
    /// A watch fell behind: this many events were lost.
    Lagged(u64),
    /// A revocation list was taken: whether it was newer, and the number now held.
    Revocation { fresh: bool, number: u64 },
    /// A delegated campaign was started by this node, with its election timing.
    Campaigning {
        node: NodeId,
        timing: super::delegate::WireTiming,
    },
    /// Where a delegated campaign stands: the answer to poll `seq`, or a change (0).
    Seat {
        seq: u64,
        seat: super::delegate::WireSeat,
    },
    /// A delegated campaign was resigned: whether a quorum of voters confirmed it.
    Released { confirmed: bool },
}

/// One node's view of the cluster, as answered to a status query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The cluster the node is in.
    pub cluster: String,
    /// The node that answered.
    pub node: NodeId,
    /// Its advertised address.
    pub addr: SocketAddr,
    /// Its own incarnation.
    pub incarnation: Incarnation,
    /// Every member in its table (itself included), sorted by id.
    pub members: Vec<MemberStatus>,
    /// Every group it knows of (created, led or run for), sorted by name.
    pub groups: Vec<GroupStatus>,
    /// The voters of the cluster's elections (empty when elections are off).
    pub voters: Vec<NodeId>,
    /// How many of the voters are alive in its view (itself included).
    pub voters_alive: usize,
    /// Whether those are a quorum of the voters: a candidate here could be elected.
    pub quorum: bool,
}

/// One group in a [`StatusReport`], as the answering node's gossiped view has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupStatus {
    /// The group's name.
    pub name: String,
    /// Its members (ids and capabilities), by id; empty for a group that was never
    /// created (only led or run for: an election or a lock).
    pub members: Vec<GroupMember>,
    /// Its gossiped leader and that leader's term (a hint: `confirmed_leader` asks
    /// the voters).
    pub leader: Option<(NodeId, Term)>,
    /// The live candidates running for it, by id.
    pub candidates: Vec<NodeId>,
}

/// A member of a group in a [`GroupStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupMember {
    /// Its node id.
    pub id: NodeId,
    /// The capabilities it joined (or last updated) with.
    pub capabilities: Vec<u8>,
}

/// One member in a [`StatusReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemberStatus {
    /// Its id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state in the answering node's view.
    pub state: State,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its metadata.
    pub meta: Vec<u8>,
}

fn report(shared: &Shared) -> StatusReport {
    let snap = shared.snapshot.borrow().clone();
    let mut members: Vec<MemberStatus> = snap
        .members
        .iter()
        .map(|m| MemberStatus {
            id: m.id,
            addr: m.addr,
            state: m.state,
            incarnation: m.incarnation,
            meta: m.meta.clone(),
        })
        .collect();
    members.sort_by_key(|m| m.id);
    let voters_alive = snap.voters_alive(&shared.voters);
    StatusReport {
        cluster: shared.cluster.clone(),
        node: shared.me,
        addr: snap.addr,
        incarnation: snap.incarnation,
        groups: groups(&snap.groups),
        voters: shared.voters.clone(),
        voters_alive,
        quorum: !shared.voters.is_empty() && voters_alive >= quorum(shared.voters.len()),
        members,
    }
}

/// Every group of `view`: created ones, and those only led or run for.
fn groups(view: &super::shared::GroupView) -> Vec<GroupStatus> {
    let names: std::collections::BTreeSet<&String> = view
        .groups
        .keys()
        .chain(view.leaders.keys())
        .chain(view.candidates.keys())
        .collect();
    names
        .into_iter()
        .map(|name| GroupStatus {
            name: name.clone(),
            members: view.groups.get(name).map_or_else(Vec::new, |ms| {
                ms.iter()
                    .map(|(id, c)| GroupMember {
                        id: *id,
                        capabilities: c.clone(),
                    })
                    .collect()
            }),
            leader: view.leaders.get(name).copied(),
            candidates: view.candidates.get(name).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A request of either form, checked: the version and the cluster, then what is asked.
fn parse_request(bytes: &[u8], shared: &Shared) -> Result<Ask, String> {
    let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(|e| e.to_string())?;
    let (cluster, ask) = match version {
        STATUS_VERSION => {
            let req: StatusRequest = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            let ask = req.confirm.map_or(Ask::Report, Ask::Confirm);
            (req.cluster, ask)
        }
        ASK_VERSION => {
            let req: RequestV4 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
            (req.cluster, req.ask)
        }
        v => {
            return Err(format!(
                "status version {v} is not supported (this node speaks {STATUS_VERSION} and \
                 {ASK_VERSION})"
            ))
        }
    };
    if cluster != shared.cluster {
        return Err(format!(
            "this node is in cluster {:?}, not {cluster:?}",
            shared.cluster
        ));
    }
    Ok(ask)
}

/// Answers one status request on a bidirectional stream: one answer within the query
/// bound, or, for a watch, frames until the client closes the stream (the connection
/// stays open meanwhile, counted in `streaming`).
pub(crate) async fn serve(
    mut send: SendStream,
    mut recv: RecvStream,
    shared: Arc<Shared>,
    streaming: Streaming,
) {
    let read = async {
        let req = read_frame(&mut recv, MAX_REQUEST)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("empty request")?;
        Ok::<_, String>(parse_request(&req, &shared))
    };
    let ask = match tokio::time::timeout(QUERY_TIMEOUT, read).await {
        Ok(Ok(ask)) => ask,
        Ok(Err(error)) => return tracing::debug!(%error, "status query failed"),
        Err(_) => return tracing::debug!("status query timed out"),
    };
    if let Ok(Ask::Watch { group }) = ask {
        let _open = streaming.open();
        inc(&shared.counters.status_queries);
        let events = shared.events.resubscribe();
        if let Err(error) = super::watch::serve(&mut send, events, group, shared.me).await {
            tracing::debug!(%error, "watch ended");
        }
        return;
    }
    if let Ok(Ask::Campaign { group, once }) = ask {
        let _open = streaming.open();
        inc(&shared.counters.status_queries);
        if let Err(error) = super::delegate::serve(&mut send, recv, &shared, group, once).await {
            tracing::debug!(%error, "delegated campaign ended");
        }
        return;
    }
    let answer = async {
        let resp = match ask {
            Ok(ask) => respond(ask, &shared).await,
            Err(refusal) => StatusResponse::Refused(refusal),
        };
        let bytes = postcard::to_stdvec(&resp).map_err(|e| e.to_string())?;
        write_frame(&mut send, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let _ = send.stopped().await;
        Ok::<_, String>(())
    };
    match tokio::time::timeout(QUERY_TIMEOUT, answer).await {
        Ok(Ok(())) => inc(&shared.counters.status_queries),
        Ok(Err(error)) => tracing::debug!(%error, "status query failed"),
        Err(_) => tracing::debug!("status query timed out"),
    }
}

/// The answer to a one-answer request: the report, or a leader the voters confirm.
async fn respond(ask: Ask, shared: &Arc<Shared>) -> StatusResponse {
    let group = match ask {
        Ask::Report => return StatusResponse::Report(report(shared)),
        Ask::Confirm(group) => group,
        Ask::Watch { .. } | Ask::Campaign { .. } => {
            return StatusResponse::Refused("not a one-answer request".into())
        }
        Ask::Revoke { crl, origin } => return revoke(shared, &crl, origin).await,
    };
    // A weak sender: a query in flight must not keep a stopping node's driver alive.
    let Some(tx) = shared.commands.upgrade() else {
        return StatusResponse::Refused("the node is stopping".into());
    };
    match Commands::from(tx).query_leader(&group).await {
        Ok(Ok(confirmed)) => StatusResponse::Confirmed(confirmed),
        Ok(Err(e)) => StatusResponse::Refused(e.to_string()),
        Err(_) => StatusResponse::Refused("the node is stopping".into()),
    }
}

/// Applies a revocation list sent by a client (`origin`) or a member.
async fn revoke(shared: &Arc<Shared>, crl: &[u8], origin: bool) -> StatusResponse {
    use super::revoke::{apply, Source};
    let source = if origin { Source::Origin } else { Source::Peer };
    match apply(shared, crl, source).await {
        Ok(a) => StatusResponse::Revocation {
            fresh: a.fresh,
            number: a.number,
        },
        Err(e) => StatusResponse::Refused(e.to_string()),
    }
}

/// Gives the node at `addr` a revocation list (PEM or DER) to put in force and send
/// to every member (`quorate revoke`), as `identity`. Returns what the node did:
/// whether the list was newer than its own, and the number it holds now. Fails as
/// [`query_status`] does, and with [`StatusError::Refused`] when the node refused the
/// list (not signed by the cluster CA, malformed), naming why.
pub async fn send_revocation(
    identity: &Identity,
    addr: SocketAddr,
    cluster_name: &str,
    crl: Vec<u8>,
) -> Result<super::revocation::RevocationApplied, StatusError> {
    let ask = Ask::Revoke { crl, origin: true };
    let opened = ask_stream(identity, addr, cluster_name, ask, QUERY_TIMEOUT).await?;
    close(&opened.conn, &opened.endpoint).await;
    match opened.first {
        StatusResponse::Revocation { fresh, number } => {
            Ok(super::revocation::RevocationApplied { fresh, number })
        }
        _ => Err(StatusError::Protocol {
            addr,
            reason: "answered another question".into(),
        }),
    }
}

/// Offers a revocation list (DER) to the member at the other end of `conn`, on a
/// stream of that connection; the member sends it on no further.
pub(super) async fn offer_revocation(
    conn: &quinn::Connection,
    cluster: &str,
    crl: &[u8],
) -> Result<(), String> {
    let req = RequestV4 {
        version: ASK_VERSION,
        cluster: cluster.to_owned(),
        ask: Ask::Revoke {
            crl: crl.to_vec(),
            origin: false,
        },
    };
    let bytes = postcard::to_stdvec(&req).map_err(|e| e.to_string())?;
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        write_frame(&mut send, &bytes).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        read_frame(&mut recv, 1024)
            .await
            .map_err(|e| e.to_string())
            .map(|_| ())
    };
    tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Asks the node at `addr` for its view of cluster `cluster_name`, as `identity` (a
/// client identity issued by [`crate::ClusterCa::issue_client`], or a node's).
///
/// Uses its own short-lived QUIC endpoint on an ephemeral port. Fails with
/// [`StatusError::Connect`] when the handshake fails (unreachable, or not of the same
/// CA), [`StatusError::Refused`] when the node is in another cluster, and
/// [`StatusError::Timeout`] after 10 s.
pub async fn query_status(
    identity: &Identity,
    addr: SocketAddr,
    cluster_name: &str,
) -> Result<StatusReport, StatusError> {
    match ask(identity, addr, cluster_name, None).await? {
        StatusResponse::Report(report) => Ok(report),
        _ => Err(StatusError::Protocol {
            addr,
            reason: "answered another question".into(),
        }),
    }
}

/// Asks the node at `addr` which node leads `group` as a quorum of voters confirms it
/// (as [`crate::Node::confirmed_leader`] does there): `None` when none does. Fails as
/// [`query_status`] does, and with [`StatusError::Refused`] when the voters could not
/// confirm (no quorum answered in time, elections off).
pub async fn query_confirmed_leader(
    identity: &Identity,
    addr: SocketAddr,
    cluster_name: &str,
    group: &str,
) -> Result<Confirmed, StatusError> {
    match ask(identity, addr, cluster_name, Some(group.to_owned())).await? {
        StatusResponse::Confirmed(c) => Ok(c),
        _ => Err(StatusError::Protocol {
            addr,
            reason: "answered another question".into(),
        }),
    }
}

/// One version-3 request to the node at `addr`, within the query time bound.
async fn ask(
    identity: &Identity,
    addr: SocketAddr,
    cluster: &str,
    confirm: Option<String>,
) -> Result<StatusResponse, StatusError> {
    let req = StatusRequest {
        version: STATUS_VERSION,
        cluster: cluster.to_owned(),
        confirm,
    };
    let query = async {
        let bytes = postcard::to_stdvec(&req).map_err(|e| StatusError::Protocol {
            addr,
            reason: e.to_string(),
        })?;
        let opened = open(identity, addr, &bytes, None, true).await?;
        close(&opened.conn, &opened.endpoint).await;
        Ok(opened.first)
    };
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Err(_) => Err(StatusError::Timeout { addr }),
        Ok(Ok(StatusResponse::Refused(reason))) => Err(StatusError::Refused { addr, reason }),
        Ok(r) => r,
    }
}

/// How long a client waits for its connection close to go out.
const CLOSE_FLUSH: Duration = Duration::from_millis(50);

/// Closes a client's connection and endpoint, and waits (a little) until the close
/// went out: a process that exits at once would leave the node holding the
/// connection, and one of its client slots, until the connection's lifetime ends.
pub(super) async fn close(conn: &quinn::Connection, endpoint: &Endpoint) {
    conn.close(0u32.into(), b"done");
    endpoint.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(CLOSE_FLUSH, endpoint.wait_idle()).await;
}

/// A request sent and its first answer read, with what carries the rest.
pub(super) struct Opened {
    pub first: StatusResponse,
    pub send: SendStream,
    pub recv: RecvStream,
    pub conn: quinn::Connection,
    pub endpoint: Endpoint,
}

/// Sends a version-4 request for `ask` and reads its first answer, within the query
/// time bound; the connection pings every `keep_alive` from then on. A refusal is
/// [`StatusError::Refused`].
pub(super) async fn ask_stream(
    identity: &Identity,
    addr: SocketAddr,
    cluster: &str,
    ask: Ask,
    keep_alive: Duration,
) -> Result<Opened, StatusError> {
    let req = RequestV4 {
        version: ASK_VERSION,
        cluster: cluster.to_owned(),
        ask,
    };
    let bytes = postcard::to_stdvec(&req).map_err(|e| StatusError::Protocol {
        addr,
        reason: e.to_string(),
    })?;
    // A delegated campaign goes on talking on the stream; other requests are whole.
    let finish = !matches!(req.ask, Ask::Campaign { .. });
    let opened = open(identity, addr, &bytes, Some(keep_alive), finish);
    match tokio::time::timeout(QUERY_TIMEOUT, opened).await {
        Err(_) => Err(StatusError::Timeout { addr }),
        Ok(Ok(Opened {
            first: StatusResponse::Refused(reason),
            ..
        })) => Err(StatusError::Refused { addr, reason }),
        Ok(r) => r,
    }
}

/// Connects to `addr` on an endpoint of its own, sends the request `bytes` on a new
/// stream (finished after it when `finish`) and reads the first answer.
async fn open(
    identity: &Identity,
    addr: SocketAddr,
    bytes: &[u8],
    keep_alive: Option<Duration>,
    finish: bool,
) -> Result<Opened, StatusError> {
    let connect = |reason: String| StatusError::Connect { addr, reason };
    let bind: SocketAddr = if addr.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = Endpoint::client(bind).map_err(|e| StatusError::Bind {
        addr: bind,
        source: e,
    })?;
    let mut client = quinn::ClientConfig::new(Arc::new(tls::client_crypto(identity)?));
    if keep_alive.is_some() {
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(keep_alive);
        client.transport_config(Arc::new(transport));
    }
    let conn = endpoint
        .connect_with(client, canonical(addr), MEMBER_SERVER_NAME)
        .map_err(|e| connect(e.to_string()))?
        .await
        .map_err(|e| connect(e.to_string()))?;
    let protocol = |reason: String| StatusError::Protocol { addr, reason };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect(e.to_string()))?;
    write_frame(&mut send, bytes)
        .await
        .map_err(|e| connect(e.to_string()))?;
    if finish {
        send.finish().map_err(|e| connect(e.to_string()))?;
    }
    let resp = read_frame(&mut recv, MAX_REPORT)
        .await
        .map_err(|e| protocol(e.to_string()))?
        .ok_or_else(|| protocol("no answer".into()))?;
    let first = postcard::from_bytes(&resp).map_err(|e| protocol(e.to_string()))?;
    Ok(Opened {
        first,
        send,
        recv,
        conn,
        endpoint,
    })
}
