//! Builders of protocol values from fuzzer bytes.
//!
//! The wire types live in the library and carry no `Arbitrary` derive, so each is
//! built here from an [`Unstructured`], field by field, through their public
//! constructors. Values lean towards what the engine under test can act on (node ids
//! 0..=7 at their usual addresses, a handful of group names, small terms and
//! durations) and keep a share of extremes (`u64::MAX`, `Duration::MAX`). When a
//! message type gains a field, the one builder for it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use quorate::election::{ElectionMsg, WireVerdict};
use quorate::groups::registry::{Entry, Registry};
use quorate::groups::NodeState;
use quorate::wire::{MemberRecord, Message, Meta, NodeId, State, Update};

/// Most elements a generated list holds.
const MAX_LIST: usize = 6;

/// Group names the builders favour, so that messages and user commands meet.
pub const GROUPS: [&str; 4] = ["g", "workers", "db", "x"];

/// The address node `id` listens on in the harness's imaginary cluster.
pub fn peer_addr(id: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, (id >> 8) as u8, id as u8], 7000))
}

/// A node id: mostly 0..=7, sometimes any.
pub fn node_id(u: &mut Unstructured<'_>) -> Result<NodeId> {
    Ok(match u.ratio(1u8, 8)? {
        true => NodeId(u.arbitrary()?),
        false => NodeId(u.int_in_range(0..=7)?),
    })
}

/// A number (term, incarnation, stamp): small, an extreme, or any.
pub fn number(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => u64::MAX,
        1 => u64::MAX - 1,
        2 => u.arbitrary()?,
        _ => u.int_in_range(0..=15)?,
    })
}

/// A duration: some milliseconds, zero, the maximum, or any valid one.
pub fn duration(u: &mut Unstructured<'_>) -> Result<Duration> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
        _ => Duration::from_millis(u.int_in_range(0..=5000)?),
    })
}

/// Up to `max` bytes.
pub fn bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let n = u.arbitrary_len::<u8>()?.min(max);
    Ok(u.bytes(n)?.to_vec())
}

/// A group name: one of [`GROUPS`] or any string.
pub fn group(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.ratio(1u8, 8)? {
        true => u.arbitrary::<&str>()?.to_owned(),
        false => (*u.choose(&GROUPS)?).to_owned(),
    })
}

/// A socket address: usually a harness node's, sometimes any IPv4 or IPv6 one.
pub fn addr(u: &mut Unstructured<'_>) -> Result<SocketAddr> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u.arbitrary::<u32>()?)),
            u.arbitrary()?,
        ),
        1 => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(u.arbitrary::<u128>()?)),
            u.arbitrary()?,
        ),
        _ => peer_addr(u.int_in_range(0..=7)?),
    })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=MAX_LIST)?;
    (0..n).map(|_| item(u)).collect()
}

fn state(u: &mut Unstructured<'_>) -> Result<State> {
    Ok(*u.choose(&[State::Alive, State::Suspect, State::Dead, State::Left])?)
}

fn entry(u: &mut Unstructured<'_>) -> Result<Entry> {
    Ok(Entry {
        name: group(u)?,
        stamp: number(u)?,
        author: node_id(u)?,
        exists: u.arbitrary()?,
    })
}

/// A member's published state (metadata and group state), encoded as the engine
/// publishes it, or raw bytes.
pub fn published(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if u.ratio(1u8, 4)? {
        return bytes(u, 64);
    }
    let mut s = NodeState::with_user(bytes(u, 16)?);
    let mut joined = BTreeMap::new();
    let mut running = BTreeSet::new();
    let mut leading = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=3)? {
        match u.int_in_range(0u8..=2)? {
            0 => {
                joined.insert(group(u)?, bytes(u, 8)?);
            }
            1 => {
                running.insert(group(u)?);
            }
            _ => {
                leading.insert(group(u)?, number(u)?);
            }
        }
    }
    s.joined = joined;
    s.running = running;
    s.leading = leading;
    s.authored = list(u, entry)?;
    Ok(s.encode())
}

/// The group registry as push-pull carries it, or raw bytes.
pub fn shared(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if u.ratio(1u8, 4)? {
        return bytes(u, 64);
    }
    let mut r = Registry::new(64);
    for e in list(u, entry)? {
        let _ = r.merge(e);
    }
    Ok(r.encode())
}

/// A membership update.
pub fn update(u: &mut Unstructured<'_>) -> Result<Update> {
    let id = node_id(u)?;
    Ok(match u.int_in_range(0u8..=3)? {
        0 => Update::Alive {
            id,
            addr: match u.ratio(3u8, 4)? {
                true => peer_addr(id.0),
                false => addr(u)?,
            },
            incarnation: number(u)?,
            meta: match u.ratio(1u8, 4)? {
                true => Meta::Digest(u.arbitrary()?),
                false => Meta::Inline(published(u)?),
            },
        },
        1 => Update::Suspect {
            id,
            incarnation: number(u)?,
            from: node_id(u)?,
        },
        2 => Update::Dead {
            id,
            incarnation: number(u)?,
            from: node_id(u)?,
        },
        _ => Update::Left {
            id,
            incarnation: number(u)?,
        },
    })
}

/// One member's full record.
pub fn record(u: &mut Unstructured<'_>) -> Result<MemberRecord> {
    let id = node_id(u)?;
    Ok(MemberRecord {
        id,
        addr: match u.ratio(3u8, 4)? {
            true => peer_addr(id.0),
            false => addr(u)?,
        },
        incarnation: number(u)?,
        state: state(u)?,
        meta: published(u)?,
    })
}

/// A voter's verdict as carried on the wire.
pub fn verdict(u: &mut Unstructured<'_>) -> Result<WireVerdict> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => WireVerdict::Granted(duration(u)?),
        1 => WireVerdict::Held(node_id(u)?, number(u)?, duration(u)?),
        2 => WireVerdict::StaleTerm(number(u)?),
        3 => WireVerdict::Quarantine(duration(u)?),
        _ => WireVerdict::TooManyGroups,
    })
}

/// An election message.
pub fn election(u: &mut Unstructured<'_>) -> Result<ElectionMsg> {
    let group = group(u)?;
    Ok(match u.int_in_range(0u8..=5)? {
        0 => ElectionMsg::Request {
            group,
            term: number(u)?,
            round: u.arbitrary()?,
            lease: duration(u)?,
        },
        1 => ElectionMsg::Answer {
            group,
            round: u.int_in_range(0..=8)?,
            term: number(u)?,
            verdict: verdict(u)?,
        },
        2 => ElectionMsg::Release {
            group,
            term: number(u)?,
            vacate: u.arbitrary()?,
        },
        3 => ElectionMsg::Query {
            group,
            id: u.int_in_range(0..=8)?,
        },
        4 => ElectionMsg::Holder {
            group,
            id: u.int_in_range(0..=8)?,
            holder: match u.arbitrary()? {
                true => Some((node_id(u)?, number(u)?)),
                false => None,
            },
        },
        _ => ElectionMsg::Vacant {
            group,
            resigned: match u.ratio(1u8, 4)? {
                true => None,
                false => Some(node_id(u)?),
            },
            waiting: (0..u.int_in_range(0..=3)?)
                .map(|_| node_id(u))
                .collect::<Result<_>>()?,
        },
    })
}

/// A sync summary: `level` and bucket hashes of the right length (sometimes not).
fn digest(u: &mut Unstructured<'_>) -> Result<(u8, Vec<u8>)> {
    let level = u.int_in_range(0..=9)?;
    if u.ratio(1u8, 4)? {
        return Ok((level, bytes(u, 64)?));
    }
    let want = 4usize << level.min(8);
    let mut hashes = u.bytes(want.min(u.len()))?.to_vec();
    hashes.resize(want, 0);
    Ok((level, hashes))
}

/// A protocol message.
pub fn message(u: &mut Unstructured<'_>) -> Result<Message> {
    Ok(match u.int_in_range(0u8..=10)? {
        0 => Message::Ping {
            seq: u.int_in_range(0..=8)?,
            target: node_id(u)?,
            updates: list(u, update)?,
        },
        1 => Message::Ack {
            seq: u.int_in_range(0..=8)?,
            updates: list(u, update)?,
        },
        2 => Message::Nack {
            seq: u.int_in_range(0..=8)?,
        },
        3 => Message::PingReq {
            seq: u.arbitrary()?,
            target: node_id(u)?,
            addr: addr(u)?,
            want_nack: u.arbitrary()?,
            updates: list(u, update)?,
        },
        4 => Message::Gossip {
            updates: list(u, update)?,
        },
        5 => Message::PushPull {
            join: u.arbitrary()?,
            reply: u.arbitrary()?,
            members: list(u, record)?,
            shared: shared(u)?,
        },
        6 => Message::MetaRequest,
        7 => {
            let (level, hashes) = digest(u)?;
            Message::SyncDigest {
                level,
                hashes,
                shared: shared(u)?,
            }
        }
        8 => Message::SyncDiff {
            level: u.int_in_range(0..=9)?,
            buckets: list(u, |u| u.int_in_range(0..=300))?,
            members: list(u, record)?,
            shared: shared(u)?,
        },
        _ => Message::Election {
            // A few instances (and 0, "any process"), so that answers meant for this
            // process, for another with its id, and for anyone all occur.
            from: u.int_in_range(0..=3)?,
            to: u.int_in_range(0..=3)?,
            msg: election(u)?,
        },
    })
}
