//! Every message quorate nodes exchange, the versioned envelope around them and the
//! codec (postcard).
//!
//! A frame is `header | body`: the header (protocol version, cluster name) is decoded
//! first, so a node of another cluster or of an incompatible version is refused with a
//! clear reason before the body is even looked at. Decoding is bounded (the caller gives
//! the frame limit) and never panics on arbitrary input: malformed frames come back as
//! [`DecodeError`].
//!
//! The body is one [`Message`]: the membership messages, whose parts live in [`swim`],
//! or an election message of [`election`]. This module is the bottom layer: it
//! depends on no other part of the crate, and every layer above imports its types.

pub mod election;
pub mod swim;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use election::{ElectionMsg, Instance, Term, WireVerdict};
pub use swim::{meta_digest, Incarnation, MemberRecord, Meta, State, Update};

/// Protocol version spoken by this build. A frame with another version is refused.
pub const PROTOCOL_VERSION: u16 = 3;

/// Longest accepted cluster name, in bytes.
pub const MAX_CLUSTER_NAME: usize = 64;

/// Longest group name, in bytes (group state and election messages carry them).
pub const MAX_GROUP_NAME: usize = 128;

/// A node's identity: unique in the cluster, bound to the node's certificate, and the
/// order used to pick leaders (lowest id first).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for NodeId {
    fn from(v: u64) -> Self {
        NodeId(v)
    }
}

/// A protocol message (the envelope's body). A variant's place in this list is its tag
/// on the wire: add new variants at the end, never reorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Direct probe of `target`.
    Ping {
        /// Probe sequence number, echoed by the ack.
        seq: u32,
        /// Who the sender means to probe (a node now at a reused address ignores it).
        target: NodeId,
        /// Piggybacked gossip.
        updates: Vec<Update>,
    },
    /// Answer to a `Ping` (or relayed answer to a `PingReq`).
    Ack {
        /// The sequence number being answered.
        seq: u32,
        /// Piggybacked gossip.
        updates: Vec<Update>,
    },
    /// An indirect prober's "I could not reach the target either" (Lifeguard).
    Nack {
        /// The sequence number of the `PingReq`.
        seq: u32,
    },
    /// Ask the receiver to probe `target` for the sender.
    PingReq {
        /// Sequence number the relayed ack (or nack) carries.
        seq: u32,
        /// The member to probe.
        target: NodeId,
        /// Where it listens.
        addr: SocketAddr,
        /// Whether the sender wants a nack when the target does not answer.
        want_nack: bool,
        /// Piggybacked gossip.
        updates: Vec<Update>,
    },
    /// Gossip only (gossip rounds, refutations, leave announcements, metadata replies).
    Gossip {
        /// The updates.
        updates: Vec<Update>,
    },
    /// Full-state exchange, always on a stream: a join and its answer (periodic
    /// anti-entropy goes by [`Message::SyncDigest`]).
    PushPull {
        /// Sent by a joining node.
        join: bool,
        /// This is the answer to a push-pull (do not answer it again).
        reply: bool,
        /// The sender's whole member table, itself included.
        members: Vec<MemberRecord>,
        /// State of the layers above membership (the group registry), opaque to SWIM.
        shared: Vec<u8>,
    },
    /// Ask a member for its own metadata (sent when only a digest reached us).
    MetaRequest,
    /// Lease election between a candidate and a voter (or a leader query), between
    /// two process lives: a promise, a release and an answer belong to the process
    /// that drew `from` at start, never to its bare node id.
    Election {
        /// The sending process's instance (drawn at its start, never 0).
        from: Instance,
        /// The process it is for; 0 when any process with the receiver's id will do
        /// (requests, releases, queries). A process with another instance drops it.
        to: Instance,
        /// The message.
        msg: ElectionMsg,
    },
    /// Anti-entropy, first step (on a stream): the sender's member table summarised
    /// as `2^level` bucket hashes, 4 bytes each. The receiver answers with a
    /// [`Message::SyncDiff`] naming the buckets where its own table differs.
    SyncDigest {
        /// Summary level: `2^level` buckets (at most 256).
        level: u8,
        /// The bucket hashes, little-endian, in bucket order.
        hashes: Vec<u8>,
        /// State of the layers above membership, as in [`Message::PushPull`].
        shared: Vec<u8>,
    },
    /// Anti-entropy, later steps: the sender's records of the `buckets` that differ.
    /// When `buckets` is not empty the receiver answers with its own records of them
    /// (a `SyncDiff` with no buckets, which ends the exchange).
    SyncDiff {
        /// Summary level of the exchange.
        level: u8,
        /// The buckets that differ, when an answer is wanted.
        buckets: Vec<u16>,
        /// The sender's records in the buckets that differ.
        members: Vec<MemberRecord>,
        /// State of the layers above membership, as in [`Message::PushPull`].
        shared: Vec<u8>,
    },
    /// A read-your-writes barrier (`Node::sync`), always on a stream: the sender's
    /// whole member table and layer state, as in a push-pull. The receiver merges it,
    /// then (unless this is the answer) answers with its own under the same `id`; so
    /// when the answer arrives, the receiver holds everything the sender knew, and the
    /// sender everything the receiver knew.
    Barrier {
        /// The sender's barrier number, echoed in the answer.
        id: u32,
        /// This is the answer (do not answer it again).
        reply: bool,
        /// The sender's whole member table, itself included.
        members: Vec<MemberRecord>,
        /// State of the layers above membership, as in [`Message::PushPull`].
        shared: Vec<u8>,
    },
}

/// Everything that travels: header fields, then the sender and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Cluster name the sender belongs to.
    pub cluster: String,
    /// The sender's claimed id (checked against its certificate by the transport).
    pub from: NodeId,
    /// The body.
    pub msg: Message,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    version: u16,
    cluster: &'a str,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    from: NodeId,
    msg: &'a Message,
}

#[derive(Deserialize)]
struct Body {
    from: NodeId,
    msg: Message,
}

/// Why a frame was refused. Nothing was applied to any state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is longer than the limit for its channel; it was dropped unread.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The sender speaks another protocol version.
    #[error("protocol version {got} is not supported (this node speaks {want})")]
    Version {
        /// Version in the frame.
        got: u16,
        /// Our version.
        want: u16,
    },
    /// The sender belongs to another cluster.
    #[error("frame from cluster {got:?}, this node is in cluster {want:?}")]
    Cluster {
        /// Cluster in the frame.
        got: String,
        /// Our cluster.
        want: String,
    },
    /// The bytes are not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Why a message could not be encoded. Nothing was sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would exceed the limit.
    #[error("encoded frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The serializer failed (a bug: every message type is serializable).
    #[error("encoding failed: {0}")]
    Codec(String),
}

/// Encodes a frame for `cluster` from `from`, refusing to exceed `limit` bytes.
pub fn encode(
    cluster: &str,
    from: NodeId,
    msg: &Message,
    limit: usize,
) -> Result<Vec<u8>, EncodeError> {
    let header = Header {
        version: PROTOCOL_VERSION,
        cluster,
    };
    let out = postcard::to_extend(&header, Vec::with_capacity(128))
        .map_err(|e| EncodeError::Codec(e.to_string()))?;
    let out = postcard::to_extend(&BodyRef { from, msg }, out)
        .map_err(|e| EncodeError::Codec(e.to_string()))?;
    if out.len() > limit {
        return Err(EncodeError::TooLarge {
            len: out.len(),
            limit,
        });
    }
    Ok(out)
}

/// Decodes a frame meant for `cluster`, refusing frames longer than `limit`.
pub fn decode(bytes: &[u8], cluster: &str, limit: usize) -> Result<Envelope, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (header, rest): (Header<'_>, _) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if header.version != PROTOCOL_VERSION {
        return Err(DecodeError::Version {
            got: header.version,
            want: PROTOCOL_VERSION,
        });
    }
    if header.cluster.len() > MAX_CLUSTER_NAME || header.cluster != cluster {
        let mut got = header.cluster.to_owned();
        got.truncate(MAX_CLUSTER_NAME);
        return Err(DecodeError::Cluster {
            got,
            want: cluster.to_owned(),
        });
    }
    let (body, tail): (Body, _) =
        postcard::take_from_bytes(rest).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !tail.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            tail.len()
        )));
    }
    Ok(Envelope {
        cluster: header.cluster.to_owned(),
        from: body.from,
        msg: body.msg,
    })
}

/// Encoded size of one update (what it adds to a message's update list).
pub fn update_len(update: &Update) -> usize {
    postcard::experimental::serialized_size(update).unwrap_or(usize::MAX / 4)
}

/// Bytes a message's update list needs for its length prefix when it holds `n` updates.
pub fn varint_len(n: usize) -> usize {
    let mut n = n as u64;
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}
