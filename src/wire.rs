//! Every message quorate nodes exchange, the versioned envelope around them and the
//! codec (postcard).
//!
//! A frame is `header | body`: the header (protocol version, cluster name) is decoded
//! first, so a node of another cluster or of an incompatible version is refused with a
//! clear reason before the body is even looked at. Decoding is bounded (the caller gives
//! the frame limit) and never panics on arbitrary input: malformed frames come back as
//! [`DecodeError`].

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Protocol version spoken by this build. A frame with another version is refused.
pub const PROTOCOL_VERSION: u16 = 3;

/// Longest accepted cluster name, in bytes.
pub const MAX_CLUSTER_NAME: usize = 64;

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

/// A protocol message (the envelope's body).
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
        from: crate::election::Instance,
        /// The process it is for; 0 when any process with the receiver's id will do
        /// (requests, releases, queries). A process with another instance drops it.
        to: crate::election::Instance,
        /// The message.
        msg: crate::election::ElectionMsg,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    fn sample_messages() -> Vec<Message> {
        let ups = vec![
            Update::Alive {
                id: NodeId(7),
                addr: addr(7001),
                incarnation: 3,
                meta: Meta::Inline(b"zone=a".to_vec()),
            },
            Update::Suspect {
                id: NodeId(2),
                incarnation: 1,
                from: NodeId(9),
            },
            Update::Dead {
                id: NodeId(4),
                incarnation: 0,
                from: NodeId(1),
            },
            Update::Left {
                id: NodeId(5),
                incarnation: 12,
            },
        ];
        vec![
            Message::Ping {
                seq: 1,
                target: NodeId(2),
                updates: ups.clone(),
            },
            Message::Ack {
                seq: u32::MAX,
                updates: vec![],
            },
            Message::Nack { seq: 5 },
            Message::PingReq {
                seq: 2,
                target: NodeId(3),
                addr: addr(9),
                want_nack: true,
                updates: ups.clone(),
            },
            Message::Gossip { updates: ups },
            Message::PushPull {
                join: true,
                reply: false,
                members: vec![MemberRecord {
                    id: NodeId(1),
                    addr: "[::1]:7000".parse().unwrap(),
                    incarnation: 4,
                    state: State::Suspect,
                    meta: vec![0; 5000],
                }],
                shared: vec![1, 2, 3],
            },
            Message::MetaRequest,
            Message::SyncDigest {
                level: 2,
                hashes: vec![7; 16],
                shared: vec![],
            },
            Message::SyncDiff {
                level: 2,
                buckets: vec![0, 3],
                members: vec![],
                shared: vec![9],
            },
            Message::Election {
                from: 0x1234_5678_9abc,
                to: 0,
                msg: crate::election::ElectionMsg::Request {
                    group: "g".into(),
                    term: 7,
                    round: 3,
                    lease: std::time::Duration::from_millis(900),
                },
            },
            Message::Election {
                from: 1,
                to: u64::MAX,
                msg: crate::election::ElectionMsg::Answer {
                    group: "g".into(),
                    round: 3,
                    term: 7,
                    verdict: crate::election::WireVerdict::Held(
                        NodeId(2),
                        6,
                        std::time::Duration::from_millis(10),
                    ),
                },
            },
        ]
    }

    #[test]
    fn round_trip_every_message() {
        for msg in sample_messages() {
            let bytes = encode("prod", NodeId(42), &msg, 1 << 20).unwrap();
            let env = decode(&bytes, "prod", 1 << 20).unwrap();
            assert_eq!(env.msg, msg);
            assert_eq!(env.from, NodeId(42));
            assert_eq!(env.cluster, "prod");
        }
    }

    #[test]
    fn other_cluster_and_version_are_refused_with_reason() {
        let msg = Message::Nack { seq: 1 };
        let bytes = encode("blue", NodeId(1), &msg, 1024).unwrap();
        assert_eq!(
            decode(&bytes, "green", 1024),
            Err(DecodeError::Cluster {
                got: "blue".into(),
                want: "green".into()
            })
        );
        let mut bytes = postcard::to_stdvec(&Header {
            version: PROTOCOL_VERSION + 1,
            cluster: "blue",
        })
        .unwrap();
        bytes.extend(
            postcard::to_stdvec(&BodyRef {
                from: NodeId(1),
                msg: &msg,
            })
            .unwrap(),
        );
        assert!(matches!(
            decode(&bytes, "blue", 1024),
            Err(DecodeError::Version { got, .. }) if got == PROTOCOL_VERSION + 1
        ));
    }

    #[test]
    fn limits_are_enforced_both_ways() {
        let msg = Message::Gossip {
            updates: vec![
                Update::Left {
                    id: NodeId(1),
                    incarnation: 1
                };
                100
            ],
        };
        assert!(matches!(
            encode("c", NodeId(1), &msg, 64),
            Err(EncodeError::TooLarge { .. })
        ));
        let bytes = encode("c", NodeId(1), &msg, 4096).unwrap();
        assert!(matches!(
            decode(&bytes, "c", 64),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            decode(&extra, "c", 4096),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn update_len_matches_the_encoding() {
        let msg = &sample_messages()[0];
        let Message::Ping { updates, .. } = msg else {
            unreachable!()
        };
        let empty = encode(
            "c",
            NodeId(1),
            &Message::Ping {
                seq: 1,
                target: NodeId(2),
                updates: vec![],
            },
            4096,
        )
        .unwrap()
        .len();
        let full = encode("c", NodeId(1), msg, 4096).unwrap().len();
        let sum: usize = updates.iter().map(update_len).sum();
        assert_eq!(
            full,
            empty - varint_len(0) + varint_len(updates.len()) + sum
        );
    }

    #[test]
    fn varint_len_boundaries() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes, "c", 4096);
        }

        #[test]
        fn mutated_frames_never_panic(
            which in 0usize..7,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let msg = &sample_messages()[which];
            let mut bytes = encode("c", NodeId(3), msg, 1 << 20).unwrap();
            for (pos, val) in flips {
                let i = pos % bytes.len();
                bytes[i] ^= val;
            }
            let keep = cut % (bytes.len() + 1);
            let _ = decode(&bytes, "c", 1 << 20);
            let _ = decode(&bytes[..keep], "c", 1 << 20);
        }
    }
}
