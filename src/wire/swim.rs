//! What membership (SWIM + Lifeguard) carries: the gossip [`Update`]s piggybacked on
//! probes, a member's [`State`] and [`Incarnation`], its metadata ([`Meta`]) and the
//! full [`MemberRecord`]s of anti-entropy. The messages themselves are the SWIM
//! variants of [`super::Message`].

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::NodeId;

/// A member's incarnation number. Only the member itself raises it: to refute a
/// suspicion, to come back after being declared dead, or to publish new metadata.
pub type Incarnation = u64;

/// The liveness state a member is gossiped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Answering probes.
    Alive,
    /// Missed a probe round; declared dead unless it refutes in time.
    Suspect,
    /// Declared failed after an unrefuted suspicion.
    Dead,
    /// Announced its own graceful departure.
    Left,
}

impl State {
    /// Whether a member in this state counts as live (alive or suspect).
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }
}

/// A membership update: what gossip carries, newest first, piggybacked on probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    /// `id` is alive at `incarnation`, reachable at `addr`.
    Alive {
        /// The member.
        id: NodeId,
        /// Where it listens.
        addr: SocketAddr,
        /// Its incarnation.
        incarnation: Incarnation,
        /// Its metadata, inline when it fits a datagram, else only its digest.
        meta: Meta,
    },
    /// `from` suspects `id` at `incarnation`.
    Suspect {
        /// The suspected member.
        id: NodeId,
        /// The incarnation suspected.
        incarnation: Incarnation,
        /// Who suspects it (a confirmation when independent).
        from: NodeId,
    },
    /// `from` declared `id` dead at `incarnation`.
    Dead {
        /// The failed member.
        id: NodeId,
        /// The incarnation declared dead.
        incarnation: Incarnation,
        /// Who declared it.
        from: NodeId,
    },
    /// `id` left the cluster gracefully at `incarnation`.
    Left {
        /// The departed member.
        id: NodeId,
        /// Its last incarnation.
        incarnation: Incarnation,
    },
}

impl Update {
    /// The member this update is about.
    pub fn id(&self) -> NodeId {
        match self {
            Update::Alive { id, .. }
            | Update::Suspect { id, .. }
            | Update::Dead { id, .. }
            | Update::Left { id, .. } => *id,
        }
    }
}

/// Member metadata as carried by an `Alive` update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Meta {
    /// The bytes themselves.
    Inline(Vec<u8>),
    /// Too large for a datagram: only the digest travels; a receiver whose copy differs
    /// fetches the bytes from the member over a stream.
    Digest(u64),
}

/// One member's full record, as exchanged by push-pull anti-entropy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The member.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its incarnation.
    pub incarnation: Incarnation,
    /// Its state in the sender's view.
    pub state: State,
    /// Its metadata.
    pub meta: Vec<u8>,
}

/// A stable 64-bit digest of metadata bytes (FNV-1a), used to tell whether a copy is
/// current without carrying the bytes.
pub fn meta_digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
