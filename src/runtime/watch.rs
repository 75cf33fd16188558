//! Watching a running node's events over the status protocol (`quorate watch`): the
//! client asks once ([`watch_events`]) and the node sends each event as it happens, one
//! frame each, on the same stream until the client closes it or the node stops.
//!
//! What a watcher may cost the node is bounded: each watch reads the node's event
//! broadcast like any subscriber ([`crate::EventStream`]), so the node never waits for
//! it; a watcher that falls [`crate::NodeConfig::event_capacity`] events behind loses
//! the oldest ones and is told how many ([`Watched::Lagged`]), then goes on. Frames on
//! their way wait in QUIC's flow-control windows, not in a queue of the node's.

#![allow(clippy::disallowed_methods)] // the wall clock, for the events' timestamps

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::{Connection, ConnectionError, Endpoint, ReadError, RecvStream, SendStream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::conn::code;
use super::frame::{read_frame, write_frame, FrameError};
use super::identity::Identity;
use super::status::{ask_stream, Ask, StatusError, StatusResponse, MAX_REPORT};
use crate::election::{ElectionEvent, StepDown, Term};
use crate::engine::Event;
use crate::groups::{GroupEvent, LeaderChange};
use crate::swim::{Member, MemberEvent};
use crate::wire::{Incarnation, NodeId, State};

/// How often a watching client pings the node, so that a quiet watch outlives the
/// connections' idle timeout (`Config::connection_idle`, 10 s at the shortest preset).
const WATCH_KEEP_ALIVE: Duration = Duration::from_secs(2);

/// A member as a watch stream carries it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct WireMember {
    id: NodeId,
    addr: SocketAddr,
    incarnation: Incarnation,
    state: State,
    meta: Vec<u8>,
}

/// An event as a watch stream carries it. The variant order is the encoding: add at
/// the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum WireEvent {
    Joined(WireMember),
    Suspect(NodeId, Incarnation),
    Alive(WireMember),
    Failed(NodeId, Incarnation),
    Left(NodeId, Incarnation),
    Updated(WireMember),
    Duplicate {
        addr: SocketAddr,
        newcomer: bool,
    },
    GroupCreated(String),
    GroupDeleted(String),
    GroupJoined(String, NodeId, Vec<u8>),
    GroupLeft(String, NodeId),
    CapabilitiesUpdated(String, NodeId, Vec<u8>),
    Leader(String, Option<NodeId>, Term),
    /// This node leads: group, term, the lease's end in Unix ms (the node's clock).
    Elected(String, Term, u64),
    Renewed(String, Term, u64),
    /// This node stopped leading: group, term, resigned (else the lease expired).
    SteppedDown(String, Term, bool),
}

/// One frame of a watch: an event, when the node took it (Unix ms).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct WireWatched {
    at_ms: u64,
    event: WireEvent,
}

/// What a watch stream brings ([`EventWatch::next`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Watched {
    /// An event of the node's.
    Event(WatchedEvent),
    /// The watch fell behind: this many of the node's events were lost (the node does
    /// not wait for a slow watcher). Later events follow.
    Lagged(u64),
}

/// One event of the watched node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchedEvent {
    /// When the node took it off its event stream, in Unix ms on the node's clock.
    pub at_ms: u64,
    /// The event. Instants in it (a leadership's deadline) are on this process's clock,
    /// converted from the node's wall clock.
    pub event: Event,
    /// For a leadership gained or renewed, the lease's end in Unix ms as the node's
    /// clock has it.
    pub lease_until_ms: Option<u64>,
}

impl WatchedEvent {
    /// An event taken at `at_ms` (Unix ms), with the lease end it names, if any.
    pub fn new(at_ms: u64, event: Event, lease_until_ms: Option<u64>) -> Self {
        WatchedEvent {
            at_ms,
            event,
            lease_until_ms,
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall-clock time (Unix ms) of a point on this process's monotonic clock.
fn wall_ms(at: Instant) -> u64 {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match at.checked_duration_since(now) {
        Some(ahead) => unix_ms(wall + ahead),
        None => unix_ms(wall - now.duration_since(at)),
    }
}

/// The point on this process's monotonic clock of a wall-clock time (Unix ms).
fn instant_of(ms: u64) -> Instant {
    let (now, wall) = (Instant::now(), unix_ms(SystemTime::now()));
    match ms.checked_sub(wall) {
        Some(ahead) => now + Duration::from_millis(ahead),
        None => now
            .checked_sub(Duration::from_millis(wall - ms))
            .unwrap_or(now),
    }
}

fn wire_member(m: &Member) -> WireMember {
    WireMember {
        id: m.id,
        addr: m.addr,
        incarnation: m.incarnation,
        state: m.state,
        meta: m.meta.clone(),
    }
}

fn member_of(m: WireMember) -> Member {
    Member {
        id: m.id,
        addr: m.addr,
        incarnation: m.incarnation,
        state: m.state,
        meta: m.meta,
        meta_digest: 0,
        since: Instant::now(),
    }
}

/// The group an event is about, if any.
pub(super) fn group_of(event: &Event) -> Option<&str> {
    match event {
        Event::Group(
            GroupEvent::Created { group }
            | GroupEvent::Deleted { group }
            | GroupEvent::Joined { group, .. }
            | GroupEvent::Left { group, .. }
            | GroupEvent::CapabilitiesUpdated { group, .. },
        ) => Some(group),
        Event::Leader(c) => Some(&c.group),
        Event::Leadership(
            ElectionEvent::Elected { group, .. }
            | ElectionEvent::Renewed { group, .. }
            | ElectionEvent::SteppedDown { group, .. },
        ) => Some(group),
        _ => None,
    }
}

fn wire_member_event(e: &MemberEvent) -> Option<WireEvent> {
    Some(match e {
        MemberEvent::Joined(m) => WireEvent::Joined(wire_member(m)),
        MemberEvent::Alive(m) => WireEvent::Alive(wire_member(m)),
        MemberEvent::Updated(m) => WireEvent::Updated(wire_member(m)),
        MemberEvent::Suspect { id, incarnation } => WireEvent::Suspect(*id, *incarnation),
        MemberEvent::Failed { id, incarnation } => WireEvent::Failed(*id, *incarnation),
        MemberEvent::Left { id, incarnation } => WireEvent::Left(*id, *incarnation),
        MemberEvent::Duplicate { addr, newcomer } => WireEvent::Duplicate {
            addr: *addr,
            newcomer: *newcomer,
        },
    })
}

fn wire_group_event(e: &GroupEvent) -> WireEvent {
    match e.clone() {
        GroupEvent::Created { group } => WireEvent::GroupCreated(group),
        GroupEvent::Deleted { group } => WireEvent::GroupDeleted(group),
        GroupEvent::Joined {
            group,
            member,
            capabilities,
        } => WireEvent::GroupJoined(group, member, capabilities),
        GroupEvent::Left { group, member } => WireEvent::GroupLeft(group, member),
        GroupEvent::CapabilitiesUpdated {
            group,
            member,
            capabilities,
        } => WireEvent::CapabilitiesUpdated(group, member, capabilities),
    }
}

/// The wire form of `event`; `None` for events a watch does not carry (a voter's
/// raised term, the answer to a query of this node's).
pub(super) fn to_wire(event: &Event) -> Option<WireEvent> {
    Some(match event {
        Event::Member(e) => wire_member_event(e)?,
        Event::Group(e) => wire_group_event(e),
        Event::Leader(c) => WireEvent::Leader(c.group.clone(), c.leader, c.term),
        Event::Leadership(ElectionEvent::Elected {
            group,
            term,
            deadline,
        }) => WireEvent::Elected(group.clone(), *term, wall_ms(*deadline)),
        Event::Leadership(ElectionEvent::Renewed {
            group,
            term,
            deadline,
        }) => WireEvent::Renewed(group.clone(), *term, wall_ms(*deadline)),
        Event::Leadership(ElectionEvent::SteppedDown {
            group,
            term,
            reason,
        }) => WireEvent::SteppedDown(group.clone(), *term, *reason == StepDown::Resigned),
        Event::Leadership(_) => return None,
    })
}

/// The event `w` stands for, and the lease end it names (Unix ms), if any.
pub(super) fn from_wire(w: WireEvent) -> (Event, Option<u64>) {
    let member = |e| Event::Member(e);
    let group = |e| Event::Group(e);
    let event = match w {
        WireEvent::Joined(m) => member(MemberEvent::Joined(member_of(m))),
        WireEvent::Alive(m) => member(MemberEvent::Alive(member_of(m))),
        WireEvent::Updated(m) => member(MemberEvent::Updated(member_of(m))),
        WireEvent::Suspect(id, incarnation) => member(MemberEvent::Suspect { id, incarnation }),
        WireEvent::Failed(id, incarnation) => member(MemberEvent::Failed { id, incarnation }),
        WireEvent::Left(id, incarnation) => member(MemberEvent::Left { id, incarnation }),
        WireEvent::Duplicate { addr, newcomer } => {
            member(MemberEvent::Duplicate { addr, newcomer })
        }
        WireEvent::GroupCreated(g) => group(GroupEvent::Created { group: g }),
        WireEvent::GroupDeleted(g) => group(GroupEvent::Deleted { group: g }),
        WireEvent::GroupJoined(g, member, capabilities) => group(GroupEvent::Joined {
            group: g,
            member,
            capabilities,
        }),
        WireEvent::GroupLeft(g, member) => group(GroupEvent::Left { group: g, member }),
        WireEvent::CapabilitiesUpdated(g, member, capabilities) => {
            group(GroupEvent::CapabilitiesUpdated {
                group: g,
                member,
                capabilities,
            })
        }
        WireEvent::Leader(g, leader, term) => Event::Leader(LeaderChange::new(g, leader, term)),
        WireEvent::Elected(group, term, until) => {
            let deadline = instant_of(until);
            let e = ElectionEvent::Elected {
                group,
                term,
                deadline,
            };
            return (Event::Leadership(e), Some(until));
        }
        WireEvent::Renewed(group, term, until) => {
            let deadline = instant_of(until);
            let e = ElectionEvent::Renewed {
                group,
                term,
                deadline,
            };
            return (Event::Leadership(e), Some(until));
        }
        WireEvent::SteppedDown(group, term, resigned) => {
            let reason = match resigned {
                true => StepDown::Resigned,
                false => StepDown::LeaseExpired,
            };
            Event::Leadership(ElectionEvent::SteppedDown {
                group,
                term,
                reason,
            })
        }
    };
    (event, None)
}

/// Serves one watch on `send` until the client closes it (or the connection fails), or
/// the node stops (the stream is then finished). `events` is a fresh subscription.
pub(super) async fn serve(
    send: &mut SendStream,
    mut events: broadcast::Receiver<Event>,
    group: Option<String>,
    me: NodeId,
) -> Result<(), String> {
    write(send, &StatusResponse::Watching(me)).await?;
    let stopped = send.stopped();
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            _ = &mut stopped => return Ok(()),
            ev = events.recv() => match ev {
                Ok(ev) => {
                    let wanted = group.as_deref().map_or(true, |g| group_of(&ev) == Some(g));
                    match to_wire(&ev).filter(|_| wanted) {
                        Some(event) => StatusResponse::Event(WireWatched {
                            at_ms: unix_ms(SystemTime::now()),
                            event,
                        }),
                        None => continue,
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => StatusResponse::Lagged(n),
                Err(broadcast::error::RecvError::Closed) => {
                    send.finish().map_err(|e| e.to_string())?;
                    return Ok(());
                }
            },
        };
        write(send, &frame).await?;
    }
}

async fn write(send: &mut SendStream, frame: &StatusResponse) -> Result<(), String> {
    let bytes = postcard::to_stdvec(frame).map_err(|e| e.to_string())?;
    write_frame(send, &bytes).await.map_err(|e| e.to_string())
}

/// A watch of one node's events (see [`watch_events`]). Dropping it closes the watch.
#[derive(Debug)]
pub struct EventWatch {
    addr: SocketAddr,
    node: NodeId,
    recv: RecvStream,
    _send: SendStream,
    conn: Connection,
    endpoint: Endpoint,
}

impl EventWatch {
    /// The node watched.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The next event (or lag report); waits as long as the node is quiet. `Ok(None)`
    /// once the node ended the watch (it stopped or left). Errors:
    /// [`StatusError::Connect`] when the connection failed (the node crashed or is
    /// unreachable), [`StatusError::Protocol`] on a frame that cannot be read.
    pub async fn next(&mut self) -> Result<Option<Watched>, StatusError> {
        let addr = self.addr;
        let frame = match read_frame(&mut self.recv, MAX_REPORT).await {
            Ok(frame) => frame,
            // The node closed the connection as it stopped or left: the watch is over.
            Err(FrameError::Read(ReadError::ConnectionLost(
                ConnectionError::ApplicationClosed(close),
            ))) if [code::SHUTDOWN, code::LEFT].contains(&close.error_code) => None,
            Err(e) => {
                return Err(StatusError::Connect {
                    addr,
                    reason: e.to_string(),
                })
            }
        };
        let Some(bytes) = frame else { return Ok(None) };
        let protocol = |reason: String| StatusError::Protocol { addr, reason };
        match postcard::from_bytes(&bytes).map_err(|e| protocol(e.to_string()))? {
            StatusResponse::Event(w) => {
                let (event, lease_until_ms) = from_wire(w.event);
                Ok(Some(Watched::Event(WatchedEvent {
                    at_ms: w.at_ms,
                    event,
                    lease_until_ms,
                })))
            }
            StatusResponse::Lagged(n) => Ok(Some(Watched::Lagged(n))),
            _ => Err(protocol("not a watch frame".into())),
        }
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.close(0u32.into(), b"done");
    }
}

/// Watches the node at `addr` of cluster `cluster_name`, as `identity` (a client
/// identity, or a node's): every event it reports from now on (membership, groups,
/// leaders, its own leaderships), or only those of `group` (its group changes, leader
/// changes and leaderships). Returns once the node accepted the watch; errors as
/// [`crate::query_status`]'s (a node that does not know watches refuses the request:
/// [`StatusError::Refused`]).
pub async fn watch_events(
    identity: &Identity,
    addr: SocketAddr,
    cluster_name: &str,
    group: Option<&str>,
) -> Result<EventWatch, StatusError> {
    let ask = Ask::Watch {
        group: group.map(str::to_owned),
    };
    let opened = ask_stream(identity, addr, cluster_name, ask, WATCH_KEEP_ALIVE).await?;
    match opened.first {
        StatusResponse::Watching(node) => Ok(EventWatch {
            addr,
            node,
            recv: opened.recv,
            _send: opened.send,
            conn: opened.conn,
            endpoint: opened.endpoint,
        }),
        _ => Err(StatusError::Protocol {
            addr,
            reason: "answered another question".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_wire() {
        let now = Instant::now();
        let events = [
            Event::Group(GroupEvent::Joined {
                group: "g".into(),
                member: NodeId(3),
                capabilities: b"gpu".to_vec(),
            }),
            Event::Leader(LeaderChange::new("g", None, 9)),
            Event::Member(MemberEvent::Failed {
                id: NodeId(4),
                incarnation: 2,
            }),
            Event::Leadership(ElectionEvent::SteppedDown {
                group: "g".into(),
                term: 7,
                reason: StepDown::Resigned,
            }),
        ];
        for e in events {
            let w = to_wire(&e).unwrap();
            let bytes = postcard::to_stdvec(&w).unwrap();
            let back = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(from_wire(back), (e, None));
        }
        let elected = Event::Leadership(ElectionEvent::Elected {
            group: "g".into(),
            term: 7,
            deadline: now + Duration::from_millis(900),
        });
        let (back, until) = from_wire(to_wire(&elected).unwrap());
        let Event::Leadership(ElectionEvent::Elected { deadline, .. }) = back else {
            panic!("{back:?}");
        };
        let off = deadline.max(now + Duration::from_millis(900))
            - deadline.min(now + Duration::from_millis(900));
        assert!(off <= Duration::from_millis(5), "{off:?}");
        assert!(until.is_some());
    }

    #[test]
    fn only_group_events_name_a_group() {
        let leader = Event::Leader(LeaderChange::new("g", Some(NodeId(1)), 1));
        assert_eq!(group_of(&leader), Some("g"));
        let failed = Event::Member(MemberEvent::Failed {
            id: NodeId(4),
            incarnation: 2,
        });
        assert_eq!(group_of(&failed), None);
    }
}
