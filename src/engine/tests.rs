//! Engines with groups and elections exchanging frames directly (instant delivery,
//! 5 ms steps): the layers wired together, before any simulator or socket.

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Engine, Event};
use crate::config::Config;
use crate::election::lease::UnsafeVariant;
use crate::election::ElectionEvent;
use crate::groups::{GroupError, GroupEvent};
use crate::wire::NodeId;

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7100 + i as u16))
}

/// Engines by index `i` at `addr(i + 1)`; engine `i` is node `i + 1` unless a test adds
/// a second process with an existing id.
struct Net {
    nodes: Vec<Engine>,
    down: Vec<bool>,
    /// Running, but every frame to or from it is lost.
    cut: Vec<bool>,
    events: Vec<Vec<Event>>,
    now: Instant,
    /// Whether [`Net::run`] fails on two leaders at once (else it only counts them).
    strict: bool,
    /// The most processes that held "g" at one instant.
    most_leaders: usize,
}

impl Net {
    /// `n` engines, voters 1..=3, all joined through node 1.
    fn new(n: u64) -> Self {
        Self::with_config(n, voters_123(Config::local()))
    }

    fn with_config(n: u64, cfg: Config) -> Self {
        let t0 = Instant::now();
        let mut nodes: Vec<Engine> = (1..=n)
            .map(|i| Engine::new(NodeId(i), addr(i), vec![i as u8], cfg.clone(), i, t0).unwrap())
            .collect();
        for e in nodes.iter_mut().skip(1) {
            e.join(t0, &[addr(1)]);
        }
        let mut net = Net {
            down: vec![false; n as usize],
            cut: vec![false; n as usize],
            events: vec![Vec::new(); n as usize],
            nodes,
            now: t0,
            strict: true,
            most_leaders: 0,
        };
        net.run(Duration::from_secs(2));
        net
    }

    fn node(&mut self, id: u64) -> &mut Engine {
        &mut self.nodes[id as usize - 1]
    }

    fn pump(&mut self) {
        for _ in 0..200 {
            let mut frames = Vec::new();
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some(t) = n.poll_transmit() {
                    if !self.down[i] && !self.cut[i] {
                        frames.push((n.id(), addr(i as u64 + 1), t));
                    }
                }
                while let Some(e) = n.poll_event() {
                    self.events[i].push(e);
                }
            }
            if frames.is_empty() {
                return;
            }
            for (from, from_addr, t) in frames {
                let Some(i) = (0..self.nodes.len()).find(|i| addr(*i as u64 + 1) == t.to) else {
                    continue;
                };
                if self.down[i] || self.cut[i] {
                    continue;
                }
                let to = &mut self.nodes[i];
                if t.reliable {
                    to.handle_stream(self.now, from_addr, Some(from), &t.payload);
                } else {
                    to.handle_datagram(self.now, from_addr, Some(from), &t.payload);
                }
            }
        }
        panic!("frames kept flowing");
    }

    /// Leaders at this instant (lease running), by id.
    fn leaders(&self, group: &str) -> Vec<u64> {
        (0..self.nodes.len())
            .filter(|i| !self.down[*i])
            .filter(|i| {
                self.nodes[*i]
                    .leadership(group)
                    .is_some_and(|(_, d)| d > self.now)
            })
            .map(|i| i as u64 + 1)
            .collect()
    }

    /// Runs `total` in 5 ms steps, asserting at most one leader of "g" throughout.
    fn run(&mut self, total: Duration) {
        let end = self.now + total;
        while self.now < end {
            self.now += Duration::from_millis(5);
            for (i, n) in self.nodes.iter_mut().enumerate() {
                if !self.down[i] {
                    n.handle_timeout(self.now);
                }
            }
            self.pump();
            let l = self.leaders("g");
            self.most_leaders = self.most_leaders.max(l.len());
            assert!(!self.strict || l.len() <= 1, "two leaders: {l:?}");
        }
    }

    /// Starts another process of node `id` at the next free address, joining through
    /// node 2 and running for "g"; returns its index.
    fn start_twin(&mut self, id: u64, cfg: Config, seed: u64) -> usize {
        let i = self.nodes.len();
        let mut e =
            Engine::new(NodeId(id), addr(i as u64 + 1), vec![], cfg, seed, self.now).unwrap();
        e.join(self.now, &[addr(2)]);
        e.campaign(self.now, "g").unwrap();
        self.nodes.push(e);
        self.down.push(false);
        self.cut.push(false);
        self.events.push(Vec::new());
        i
    }

    fn duplicates_reported(&self, i: usize) -> usize {
        let dup =
            |e: &&Event| matches!(e, Event::Member(crate::swim::MemberEvent::Duplicate { .. }));
        self.events[i].iter().filter(dup).count()
    }

    /// Runs until `f` holds, at most `limit`; returns the time it took.
    fn until(&mut self, limit: Duration, f: impl Fn(&Net) -> bool) -> Duration {
        let start = self.now;
        while !f(self) {
            assert!(self.now - start < limit, "condition not met in {limit:?}");
            self.run(Duration::from_millis(5));
        }
        self.now - start
    }
}

#[test]
fn groups_spread_to_every_node_and_failures_leave_them() {
    let mut net = Net::new(4);
    let now = net.now;
    net.node(1).create_group(now, "g").unwrap();
    net.run(Duration::from_millis(500));
    for i in 2..=4 {
        net.node(i)
            .join_group(now, "g", format!("cap{i}").into_bytes())
            .unwrap();
    }
    net.run(Duration::from_millis(500));
    for i in 1..=4 {
        let members = net.node(i).group_members("g").unwrap();
        let ids: Vec<u64> = members.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids, vec![2, 3, 4], "node {i}");
        assert_eq!(
            net.node(i).member_capabilities("g", NodeId(3)).unwrap(),
            b"cap3"
        );
    }
    // Application metadata is unchanged by group state, and no spurious Updated.
    let metas: Vec<Vec<u8>> = net.node(1).members().map(|m| m.meta).collect();
    assert!(metas.iter().all(|m| m.len() == 1), "{metas:?}");
    assert!(!net.events[0]
        .iter()
        .any(|e| matches!(e, Event::Member(crate::MemberEvent::Updated(_)))));
    assert_eq!(
        net.node(1).delete_group(now, "g"),
        Err(GroupError::NotEmpty("g".into()))
    );
    // Node 4 crashes: the others see it leave "g" when it is declared failed.
    net.down[3] = true;
    net.until(Duration::from_secs(10), |n| {
        n.nodes[0].group_members("g").unwrap().len() == 2
    });
    assert!(net.events[0].iter().any(|e| matches!(
        e,
        Event::Group(GroupEvent::Left {
            member: NodeId(4),
            ..
        })
    )));
    // Declared failed by some node's own suspicion (others may have heard it first).
    let declared: u64 = (1..=3).map(|i| net.node(i).stats().deaths_declared).sum();
    assert!(declared >= 1);
    let now = net.now;
    net.node(2).leave_group(now, "g").unwrap();
    net.node(3).leave_group(now, "g").unwrap();
    net.run(Duration::from_millis(500));
    net.node(1).delete_group(now, "g").unwrap();
    net.run(Duration::from_millis(500));
    assert!(net.node(3).group_list().is_empty());
}

fn voters_123(cfg: Config) -> Config {
    cfg.with_voters(vec![NodeId(1), NodeId(2), NodeId(3)])
}

/// Node 1 leads; a second process with id 1 starts elsewhere and runs too, then goes;
/// then node 1 stalls for two leases, a replacement with its id starts meanwhile, and
/// node 1 wakes up beside it. Returns the most leaders at one instant and the
/// duplicates each process of id 1 reported.
fn twins_of_the_leader(variant: Option<UnsafeVariant>) -> (usize, [usize; 3]) {
    let mut cfg = voters_123(Config::local());
    cfg.election.unsafe_variant = variant;
    let mut net = Net::with_config(5, cfg.clone());
    net.strict = false;
    let now = net.now;
    for i in 1..=5 {
        net.node(i).campaign(now, "g").unwrap();
    }
    net.until(Duration::from_secs(3), |n| n.leaders("g") == vec![1]);
    let twin = net.start_twin(1, cfg.clone(), 99);
    net.run(Duration::from_secs(5));
    net.down[twin] = true;
    net.run(Duration::from_secs(2));
    let lease = cfg.election.timing.lease;
    net.down[0] = true; // stalled
    net.run(lease / 2);
    let replacement = net.start_twin(1, cfg, 100);
    net.run(lease * 2);
    net.down[0] = false; // wakes beside its replacement
    net.run(Duration::from_secs(5));
    let reported = [0, twin, replacement].map(|i| net.duplicates_reported(i));
    (net.most_leaders, reported)
}

#[test]
fn a_second_process_with_the_leaders_id_never_leads_beside_it() {
    let (leaders, reported) = twins_of_the_leader(None);
    assert_eq!(leaders, 1, "two processes led at once");
    assert!(
        reported.iter().all(|r| *r > 0),
        "duplicates reported: {reported:?}"
    );
    // Promises by bare id (the old rule): the twin takes the leadership over while the
    // first process still holds it.
    let (leaders, _) = twins_of_the_leader(Some(UnsafeVariant::BareIdPromise));
    assert!(leaders >= 2, "the broken variant went unnoticed");
}

#[test]
fn lowest_candidate_leads_fails_over_and_hands_over() {
    let mut net = Net::new(5);
    let now = net.now;
    for i in 1..=5 {
        net.node(i).campaign(now, "g").unwrap();
    }
    net.until(Duration::from_secs(3), |n| n.leaders("g") == vec![1]);
    net.run(Duration::from_millis(500));
    let (first_term, _) = net.node(1).leadership("g").unwrap();
    let g = net.node(1).gauges();
    assert_eq!((g.members, g.members_alive, g.members_dead), (5, 5, 0));
    assert_eq!((g.campaigns, g.leaderships, g.groups_led), (1, 1, 1));
    assert_eq!(net.node(2).gauges().leaderships, 0);
    let metrics: Vec<_> = net.node(1).metrics().collect();
    let value = |name| metrics.iter().find(|m| m.name == name).map(|m| m.value);
    assert_eq!(value("leaderships"), Some(1));
    assert_eq!(value("frames_out"), Some(net.node(1).stats().frames_out));
    let s = net.node(2).stats();
    assert!(s.probes_sent > 0 && s.acks_received > 0 && s.acks_received <= s.probes_sent);
    assert!(s.bytes_in > 0 && s.leader_changes >= 1 && s.deaths_declared == 0, "{s:?}");
    for i in 1..=5 {
        assert_eq!(
            net.node(i).leader("g"),
            Some((NodeId(1), first_term)),
            "node {i}"
        );
    }
    // Any node, voter or not, gets the quorum-confirmed answer.
    let now = net.now;
    let q = net.node(5).query_leader(now, "g").unwrap();
    net.run(Duration::from_millis(50));
    let confirmed = net.events[4].iter().find_map(|e| match e {
        Event::Leadership(ElectionEvent::Confirmed { query, result, .. }) if *query == q => {
            Some(result.clone())
        }
        _ => None,
    });
    assert_eq!(confirmed, Some(Ok(Some((NodeId(1), first_term)))));
    // The leader crashes: node 2 takes over with a higher term within about a lease.
    net.down[0] = true;
    let took = net.until(Duration::from_secs(5), |n| n.leaders("g") == vec![2]);
    let lease = Config::local().election.timing.lease;
    assert!(took <= lease * 2, "failover took {took:?}");
    let (second_term, _) = net.node(2).leadership("g").unwrap();
    assert!(second_term > first_term);
    net.run(Duration::from_millis(500));
    assert_eq!(net.node(5).leader("g"), Some((NodeId(2), second_term)));
    // Node 2 resigns: node 3 leads in a few round trips, not a lease.
    let now = net.now;
    net.node(2).resign(now, "g");
    let took = net.until(Duration::from_secs(2), |n| n.leaders("g") == vec![3]);
    assert!(took < lease / 2, "handover took {took:?}");
    let stepped = net.events[1].iter().any(|e| {
        matches!(e, Event::Leadership(ElectionEvent::SteppedDown { term, .. }) if *term == second_term)
    });
    assert!(stepped);
    net.run(Duration::from_millis(500));
    // Node 5 saw every change in order: 1, nobody (or straight to 2), 2, 3.
    let seen: Vec<Option<u64>> = net.events[4]
        .iter()
        .filter_map(|e| match e {
            Event::Leader(c) if c.group == "g" => Some(c.leader.map(|l| l.0)),
            _ => None,
        })
        .filter(Option::is_some)
        .collect();
    assert_eq!(seen, vec![Some(1), Some(2), Some(3)]);
}

#[test]
fn campaigns_need_voters_and_a_valid_name() {
    let t0 = Instant::now();
    let mut e = Engine::new(NodeId(1), addr(1), vec![], Config::local(), 1, t0).unwrap();
    assert_eq!(e.campaign(t0, "g"), Err(crate::CampaignError::Disabled));
    let cfg = Config::local().with_voters(vec![NodeId(1)]);
    let mut e = Engine::new(NodeId(1), addr(1), vec![], cfg, 1, t0).unwrap();
    assert_eq!(e.campaign(t0, ""), Err(crate::CampaignError::BadName));
    e.campaign(t0, "g").unwrap();
    assert!(matches!(
        e.campaign(t0, "g"),
        Err(crate::CampaignError::AlreadyRunning(_))
    ));
}

#[test]
fn preemption_hands_over_to_a_stable_lower_id_only_when_enabled() {
    for preempt in [false, true] {
        let t0 = Instant::now();
        let mut cfg = Config::local().with_voters(vec![NodeId(1), NodeId(2), NodeId(3)]);
        if preempt {
            cfg.election.preempt_after = Some(cfg.election.timing.lease);
        }
        let mut nodes: Vec<Engine> = (1..=3)
            .map(|i| Engine::new(NodeId(i), addr(i), vec![], cfg.clone(), i, t0).unwrap())
            .collect();
        for e in nodes.iter_mut().skip(1) {
            e.join(t0, &[addr(1)]);
        }
        let mut net = Net {
            down: vec![false; 3],
            cut: vec![false; 3],
            events: vec![Vec::new(); 3],
            nodes,
            now: t0,
            strict: true,
            most_leaders: 0,
        };
        net.run(Duration::from_secs(2));
        // Node 3 runs alone first and leads; node 1 joins the race later.
        let now = net.now;
        net.node(3).campaign(now, "g").unwrap();
        net.until(Duration::from_secs(3), |n| n.leaders("g") == vec![3]);
        let now = net.now;
        net.node(1).campaign(now, "g").unwrap();
        net.run(Duration::from_secs(4));
        let want = if preempt { vec![1] } else { vec![3] };
        assert_eq!(net.leaders("g"), want, "preempt={preempt}");
    }
}

#[test]
fn a_leader_cut_off_from_its_voters_counts_late_renewals_and_an_expired_lease() {
    let mut net = Net::new(4);
    let now = net.now;
    net.node(4).campaign(now, "g").unwrap();
    net.until(Duration::from_secs(3), |n| n.leaders("g") == vec![4]);
    net.run(Duration::from_secs(2));
    let s = net.node(4).stats();
    assert_eq!((s.renewals_late, s.leases_expired), (0, 0), "{s:?}");
    net.cut[3] = true;
    let lease = Config::local().election.timing.lease;
    net.run(lease * 2);
    let s = net.node(4).stats();
    assert!(s.renewals_late >= 1, "{s:?}");
    assert_eq!(s.leases_expired, 1, "{s:?}");
    let now = net.now;
    assert!(net.node(4).leadership("g").is_none_or(|(_, d)| d <= now));
}
