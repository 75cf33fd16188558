//! The codec on every kind of message: round trips, refusals, limits, and random or
//! mutated input that must never panic.

use std::net::SocketAddr;

use super::*;
use proptest::prelude::*;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn sample_messages() -> Vec<Message> {
    let mut all = membership_messages();
    all.extend(election_messages());
    all
}

fn membership_messages() -> Vec<Message> {
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
    ]
}

fn election_messages() -> Vec<Message> {
    vec![
        Message::Election {
            from: 0x1234_5678_9abc,
            to: 0,
            msg: ElectionMsg::Request {
                group: "g".into(),
                term: 7,
                round: 3,
                lease: std::time::Duration::from_millis(900),
            },
        },
        Message::Election {
            from: 1,
            to: u64::MAX,
            msg: ElectionMsg::Answer {
                group: "g".into(),
                round: 3,
                term: 7,
                verdict: WireVerdict::Held(NodeId(2), 6, std::time::Duration::from_millis(10)),
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
