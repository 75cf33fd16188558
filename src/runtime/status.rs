//! The status query: a client (an admin identity, or a node's) opens a bidirectional
//! stream, sends a [`StatusRequest`] frame and reads back one response frame holding the
//! node's view of the cluster. It is a small message set of the runtime, separate from
//! the membership protocol, encoded with postcard in length-prefixed frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Endpoint, RecvStream, SendStream};
use serde::{Deserialize, Serialize};

use super::conn::canonical;
use super::frame::{read_frame, write_frame};
use super::identity::{Identity, IdentityError, MEMBER_SERVER_NAME};
use super::shared::{inc, Shared};
use super::tls;
use super::handle::Commands;
use crate::election::{quorum, Confirmed, Term};
use crate::wire::{Incarnation, NodeId, State};

/// Version of the status message set (2: groups, leaders and voters in the report;
/// 3: confirmed-leader queries).
const STATUS_VERSION: u16 = 3;
/// Largest request accepted.
const MAX_REQUEST: usize = 1024;
/// Largest report a client accepts.
const MAX_REPORT: usize = 256 << 20;
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

#[derive(Serialize, Deserialize)]
enum StatusResponse {
    Report(StatusReport),
    Refused(String),
    Confirmed(Confirmed),
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

/// Answers one status request on a bidirectional stream.
pub(crate) async fn serve(mut send: SendStream, mut recv: RecvStream, shared: Arc<Shared>) {
    let answer = async {
        let req = read_frame(&mut recv, MAX_REQUEST)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("empty request")?;
        let req: StatusRequest = postcard::from_bytes(&req).map_err(|e| e.to_string())?;
        let resp = respond(req, &shared).await;
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

/// The answer to `req`: a refusal, the report, or a leader the voters confirm.
async fn respond(req: StatusRequest, shared: &Shared) -> StatusResponse {
    if req.version != STATUS_VERSION {
        return StatusResponse::Refused(format!(
            "status version {} is not supported (this node speaks {STATUS_VERSION})",
            req.version
        ));
    }
    if req.cluster != shared.cluster {
        return StatusResponse::Refused(format!(
            "this node is in cluster {:?}, not {:?}",
            shared.cluster, req.cluster
        ));
    }
    let Some(group) = req.confirm else {
        return StatusResponse::Report(report(shared));
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

/// One request to the node at `addr`, within the query time bound.
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
    let query = query(identity, addr, req);
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Err(_) => Err(StatusError::Timeout { addr }),
        Ok(Ok(StatusResponse::Refused(reason))) => Err(StatusError::Refused { addr, reason }),
        Ok(r) => r,
    }
}

async fn query(
    identity: &Identity,
    addr: SocketAddr,
    req: StatusRequest,
) -> Result<StatusResponse, StatusError> {
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
    let client = quinn::ClientConfig::new(Arc::new(tls::client_crypto(identity)?));
    let conn = endpoint
        .connect_with(client, canonical(addr), MEMBER_SERVER_NAME)
        .map_err(|e| connect(e.to_string()))?
        .await
        .map_err(|e| connect(e.to_string()))?;
    let protocol = |reason: String| StatusError::Protocol { addr, reason };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect(e.to_string()))?;
    let bytes = postcard::to_stdvec(&req).map_err(|e| protocol(e.to_string()))?;
    write_frame(&mut send, &bytes)
        .await
        .map_err(|e| connect(e.to_string()))?;
    send.finish().map_err(|e| connect(e.to_string()))?;
    let resp = read_frame(&mut recv, MAX_REPORT)
        .await
        .map_err(|e| protocol(e.to_string()))?
        .ok_or_else(|| protocol("no answer".into()))?;
    conn.close(0u32.into(), b"done");
    endpoint.close(0u32.into(), b"done");
    postcard::from_bytes(&resp).map_err(|e| protocol(e.to_string()))
}
