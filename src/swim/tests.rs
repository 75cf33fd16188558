//! Engine-level tests: a few engines exchanging frames directly (instant delivery).

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{MemberEvent, Swim};
use crate::config::Config;
use crate::wire::{NodeId, State};

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))
}

/// Frames in, as the engine hands them over: decoded and checked, then the message.
trait Deliver {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, peer: Option<NodeId>, b: &[u8]);
    fn handle_stream(&mut self, now: Instant, from: SocketAddr, peer: Option<NodeId>, b: &[u8]);
}

impl Deliver for Swim {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, peer: Option<NodeId>, b: &[u8]) {
        deliver(self, now, from, peer, b, false);
    }

    fn handle_stream(&mut self, now: Instant, from: SocketAddr, peer: Option<NodeId>, b: &[u8]) {
        deliver(self, now, from, peer, b, true);
    }
}

fn deliver(n: &mut Swim, now: Instant, from: SocketAddr, peer: Option<NodeId>, b: &[u8], s: bool) {
    let env = crate::wire::decode(b, &n.config().cluster_name, usize::MAX).unwrap();
    assert_eq!(peer, Some(env.from), "the sender is the authenticated peer");
    n.handle_message(now, from, env.from, env.msg, s);
}

fn node(i: u64, meta: Vec<u8>, t0: Instant) -> Swim {
    let cfg = Config::local().validated().unwrap();
    Swim::new(NodeId(i), addr(i), meta, cfg, i, t0).unwrap()
}

/// Delivers every pending frame (and the frames they cause) among `nodes`.
fn pump(nodes: &mut [Swim], now: Instant) {
    for _ in 0..100 {
        let mut frames = Vec::new();
        for n in nodes.iter_mut() {
            while let Some(t) = n.poll_transmit() {
                frames.push((n.id(), n.addr, t));
            }
        }
        if frames.is_empty() {
            return;
        }
        for (from, from_addr, t) in frames {
            if let Some(to) = nodes.iter_mut().find(|n| n.addr == t.to) {
                if t.reliable {
                    to.handle_stream(now, from_addr, Some(from), &t.payload);
                } else {
                    to.handle_datagram(now, from_addr, Some(from), &t.payload);
                }
            }
        }
    }
    panic!("frames kept flowing");
}

/// Runs timers and deliveries in `step`s for `total`.
fn run(nodes: &mut [Swim], from: Instant, total: Duration) -> Instant {
    let step = Duration::from_millis(10);
    let mut now = from;
    while now < from + total {
        now += step;
        for n in nodes.iter_mut() {
            n.handle_timeout(now);
        }
        pump(nodes, now);
    }
    now
}

fn events(n: &mut Swim) -> Vec<MemberEvent> {
    std::iter::from_fn(|| n.poll_event()).collect()
}

#[test]
fn metadata_too_large_for_a_datagram_arrives_by_fetch() {
    let t0 = Instant::now();
    let big = vec![b'x'; 2000];
    let mut nodes = vec![node(1, vec![], t0), node(2, vec![], t0)];
    nodes[1].join(t0, &[addr(1)]);
    let now = run(&mut nodes, t0, Duration::from_millis(500));
    events(&mut nodes[0]);
    nodes[1].set_metadata(now, big.clone()).unwrap();
    run(&mut nodes, now, Duration::from_secs(2));
    assert_eq!(nodes[0].member(NodeId(2)).unwrap().meta, big);
    let updated = events(&mut nodes[0])
        .into_iter()
        .any(|e| matches!(e, MemberEvent::Updated(m) if m.id == NodeId(2) && m.meta == big));
    assert!(updated, "the application hears of the new metadata");
}

#[test]
fn leaving_while_the_join_is_in_flight_is_still_a_departure() {
    let t0 = Instant::now();
    let mut nodes = vec![node(1, vec![], t0), node(2, vec![], t0)];
    nodes[1].join(t0, &[addr(1)]);
    // The join request reaches the seed; its answer is still on the way when 2 leaves.
    let join = nodes[1].poll_transmit().unwrap();
    nodes[0].handle_stream(t0, addr(2), Some(NodeId(2)), &join.payload);
    let answer = nodes[0].poll_transmit().unwrap();
    nodes[1].leave(t0);
    nodes[1].handle_stream(t0, addr(1), Some(NodeId(1)), &answer.payload);
    // A departing node lingers briefly to flush its frames, then stops.
    let now = run(&mut nodes, t0, Duration::from_millis(300));
    nodes.truncate(1);
    run(&mut nodes, now, Duration::from_secs(5));
    assert_eq!(nodes[0].member(NodeId(2)).unwrap().state, State::Left);
    let failed = events(&mut nodes[0])
        .into_iter()
        .any(|e| matches!(e, MemberEvent::Failed { .. }));
    assert!(!failed, "a departure is never reported as a failure");
}

#[test]
fn a_suspected_member_refutes_with_a_higher_incarnation() {
    let t0 = Instant::now();
    let mut nodes = vec![
        node(1, vec![], t0),
        node(2, vec![], t0),
        node(3, vec![], t0),
    ];
    nodes[1].join(t0, &[addr(1)]);
    nodes[2].join(t0, &[addr(1)]);
    let now = run(&mut nodes, t0, Duration::from_millis(500));
    // Node 1 suspects node 2 (as after a lost probe round); the news reaches node 2.
    nodes[0].on_suspect(now, NodeId(2), 0, NodeId(1));
    run(&mut nodes, now, Duration::from_millis(500));
    assert!(nodes[1].incarnation() > 0);
    for n in &nodes {
        let m = n.member(NodeId(2)).unwrap();
        assert_eq!(m.state, State::Alive, "node {} sees {m:?}", n.id());
    }
}

#[test]
fn an_accusation_at_the_highest_incarnation_saturates() {
    // Found by fuzzing (target `engine`): refuting news about this node at incarnation
    // `u64::MAX` overflowed. The incarnation stops at the top instead of wrapping to 0,
    // which every peer would take for old news.
    let t0 = Instant::now();
    let mut n = node(1, vec![], t0);
    let msg = crate::wire::Message::Gossip {
        updates: vec![crate::wire::Update::Suspect {
            id: NodeId(1),
            incarnation: u64::MAX,
            from: NodeId(2),
        }],
    };
    n.handle_datagram(t0, addr(2), Some(NodeId(2)), &frame(2, &msg));
    assert_eq!(n.incarnation(), u64::MAX);
    n.set_metadata(t0, b"still here".to_vec()).unwrap();
    assert_eq!(n.incarnation(), u64::MAX);
}

fn alive(i: u64) -> crate::wire::Update {
    crate::wire::Update::Alive {
        id: NodeId(i),
        addr: addr(i),
        incarnation: 0,
        meta: crate::wire::Meta::Inline(b"meta".to_vec()),
    }
}

/// Member `i` alive at incarnation 0, as a table record.
fn record(i: u64) -> crate::wire::MemberRecord {
    crate::wire::MemberRecord {
        id: NodeId(i),
        addr: addr(i),
        incarnation: 0,
        state: State::Alive,
        meta: Vec::new(),
    }
}

fn frame(from: u64, msg: &crate::wire::Message) -> Vec<u8> {
    crate::wire::encode(&Config::local().cluster_name, NodeId(from), msg, usize::MAX).unwrap()
}

#[test]
fn gossip_that_grows_the_table_by_a_quarter_brings_the_next_exchange_forward() {
    use crate::wire::Message;
    let t0 = Instant::now();
    let mut n = node(1, vec![], t0);
    n.join(t0, &[addr(2)]);
    while n.poll_transmit().is_some() {}
    // Node 2 answers the join with 40 members (a join's news does not count).
    let members = (2..=41).map(record).collect();
    let pp = Message::PushPull {
        join: false,
        reply: true,
        members,
        shared: Vec::new(),
    };
    n.handle_stream(t0, addr(2), Some(NodeId(2)), &frame(2, &pp));
    assert_eq!(n.members().count(), 41);
    // The exchange planned right after a join goes out; the next is a period away.
    n.handle_timeout(t0 + Duration::from_secs(2));
    while n.poll_transmit().is_some() {}
    let periodic = n.timers.deadline(super::Timer::PushPull).unwrap();
    let now = t0 + Duration::from_secs(3);
    assert!(periodic > now + Duration::from_secs(5));
    // Gossip brings 9 more: under a quarter of 41, the period stands.
    let some = Message::Gossip {
        updates: (42..=50).map(alive).collect(),
    };
    n.handle_datagram(now, addr(3), Some(NodeId(3)), &frame(3, &some));
    assert_eq!(n.stats().catch_ups, 0);
    assert_eq!(n.timers.deadline(super::Timer::PushPull), Some(periodic));
    // Two more make a quarter: the next exchange comes now, not a period later.
    let more = Message::Gossip {
        updates: vec![alive(51), alive(52)],
    };
    n.handle_datagram(now, addr(3), Some(NodeId(3)), &frame(3, &more));
    assert_eq!(n.stats().catch_ups, 1);
    assert_eq!(n.timers.deadline(super::Timer::PushPull), Some(now));
    n.handle_timeout(now);
    let sent = std::iter::from_fn(|| n.poll_transmit()).any(|t| t.reliable);
    assert!(sent, "a full exchange went out");
}

#[test]
fn an_idle_node_wakes_only_to_probe_and_gossips_while_there_is_news() {
    use super::Timer;
    let t0 = Instant::now();
    let every = Config::local().gossip_interval;
    let mut nodes = vec![node(1, vec![], t0), node(2, vec![], t0)];
    nodes[1].join(t0, &[addr(1)]);
    let mut now = run(&mut nodes, t0, Duration::from_secs(3));
    // The join's news has been spread: no gossip round is armed.
    for n in &nodes {
        assert_eq!(n.broadcasts.len(), 0);
        assert_eq!(n.timers.deadline(Timer::Gossip), None, "node {}", n.id());
    }
    // News arms the next round on the grid of the last one; it goes out then.
    now += Duration::from_millis(3);
    nodes[0].set_metadata(now, b"v2".to_vec()).unwrap();
    let at = nodes[0]
        .timers
        .deadline(Timer::Gossip)
        .expect("armed by news");
    let grid = at.duration_since(nodes[0].gossip_tick).as_nanos() % every.as_nanos();
    assert!(
        at > now && at <= now + every && grid == 0,
        "{at:?} on the grid"
    );
    run(&mut nodes, now, Duration::from_secs(3));
    assert_eq!(nodes[1].member(NodeId(1)).unwrap().meta, b"v2");
    assert_eq!(nodes[0].timers.deadline(Timer::Gossip), None, "idle again");
}

fn decode_msg(t: &super::Transmit) -> crate::wire::Message {
    let cfg = Config::local();
    crate::wire::decode(&t.payload, &cfg.cluster_name, usize::MAX)
        .unwrap()
        .msg
}

/// Node 1 starts an anti-entropy exchange with node 2 at `now`; returns the stream
/// messages they sent each other until neither had more.
fn sync_exchange(nodes: &mut [Swim], now: Instant) -> Vec<crate::wire::Message> {
    nodes[0].timers.set(super::Timer::PushPull, now);
    nodes[0].handle_timeout(now);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut moved = false;
        for (i, j) in [(0, 1), (1, 0)] {
            while let Some(t) = nodes[i].poll_transmit() {
                if !t.reliable {
                    continue; // probes and gossip are not what this test is about
                }
                seen.push(decode_msg(&t));
                let from = nodes[i].addr;
                let id = nodes[i].id();
                nodes[j].handle_stream(now, from, Some(id), &t.payload);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    seen
}

#[test]
fn anti_entropy_sends_a_summary_and_then_only_the_buckets_that_differ() {
    use crate::wire::{MemberRecord, Message};
    let t0 = Instant::now();
    // Nodes 1 and 2 both hold the same 200 other members (a join answer each).
    let others: Vec<MemberRecord> = (10..210).map(record).collect();
    let mut nodes = vec![node(1, vec![], t0), node(2, vec![], t0)];
    for (i, seed) in [(0, 2), (1, 1)] {
        let mut members = others.clone();
        members.push(record(seed));
        let pp = Message::PushPull {
            join: false,
            reply: true,
            members,
            shared: Vec::new(),
        };
        nodes[i].join(t0, &[addr(seed)]);
        while nodes[i].poll_transmit().is_some() {}
        nodes[i].handle_stream(t0, addr(seed), Some(NodeId(seed)), &frame(seed, &pp));
        while nodes[i].poll_transmit().is_some() {}
    }
    let (a, b) = (&nodes[0].members, &nodes[1].members);
    assert_eq!(a.summary(8), b.summary(8), "same records, same summary");

    // Tables that agree: a summary goes out, an empty answer comes back.
    let exchange = |nodes: &mut Vec<Swim>| sync_exchange(nodes, t0 + Duration::from_secs(1));
    let seen = exchange(&mut nodes);
    assert!(matches!(&seen[0], Message::SyncDigest { level: 4, hashes, .. } if hashes.len() == 64));
    assert!(
        matches!(&seen[1], Message::SyncDiff { buckets, members, .. }
        if buckets.is_empty() && members.is_empty())
    );
    assert_eq!(seen.len(), 2);
    assert_eq!(nodes[1].stats().syncs_in_agreement, 1);

    // Node 2 hears of member 500; the next exchange carries its bucket alone.
    let news = Message::Gossip {
        updates: vec![alive(500)],
    };
    nodes[1].handle_datagram(t0, addr(3), Some(NodeId(3)), &frame(3, &news));
    let seen = exchange(&mut nodes);
    let Message::SyncDiff {
        buckets, members, ..
    } = &seen[1]
    else {
        panic!("a diff answers the summary: {seen:?}");
    };
    assert_eq!(buckets.len(), 1);
    assert!(members.iter().any(|r| r.id == NodeId(500)));
    assert!(members.len() < 40, "one bucket of 16, not the table of 203");
    assert!(matches!(&seen[2], Message::SyncDiff { buckets, .. } if buckets.is_empty()));
    assert_eq!(seen.len(), 3);
    assert_eq!(nodes[0].member(NodeId(500)).unwrap().state, State::Alive);
    assert_eq!(nodes[0].members.summary(8), nodes[1].members.summary(8));
}

#[test]
fn malformed_summaries_and_diffs_are_counted_and_change_nothing() {
    use crate::wire::Message;
    let t0 = Instant::now();
    let mut n = node(1, vec![], t0);
    let before = n.members.summary(8);
    for msg in [
        Message::SyncDigest {
            level: 3,
            hashes: vec![0; 5],
            shared: vec![],
        },
        Message::SyncDigest {
            level: 40,
            hashes: vec![],
            shared: vec![],
        },
        Message::SyncDiff {
            level: 2,
            buckets: vec![4],
            members: vec![],
            shared: vec![],
        },
        Message::SyncDiff {
            level: 9,
            buckets: vec![],
            members: vec![],
            shared: vec![],
        },
    ] {
        n.handle_stream(t0, addr(2), Some(NodeId(2)), &frame(2, &msg));
    }
    assert_eq!(n.stats().malformed, 4);
    assert!(n.poll_transmit().is_none(), "nothing answered");
    assert_eq!(n.members.summary(8), before);
}
