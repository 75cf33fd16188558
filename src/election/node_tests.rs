//! Tests of one node's election role: five nodes exchanging messages directly.

#![allow(clippy::disallowed_methods)] // a base instant for the tests only

use super::*;

/// Five nodes, voters 1..=3, every node running for "g" ranked by id; messages take
/// `latency`; crashed nodes neither send nor receive.
struct Net {
    nodes: Vec<Election>,
    crashed: Vec<bool>,
    queue: Vec<(Instant, Process, Process, ElectionMsg)>,
    latency: Duration,
}

impl Net {
    fn new(t0: Instant) -> Self {
        let cfg = ElectionConfig::lan(vec![NodeId(1), NodeId(2), NodeId(3)]);
        let cfg = cfg.validated().unwrap();
        let mut nodes: Vec<Election> = (1..=5)
            .map(|i| Election::new(NodeId(i), 100 + i, cfg.clone(), t0).unwrap())
            .collect();
        for (i, n) in nodes.iter_mut().enumerate() {
            n.campaign(t0, "g", i as u32, 0).unwrap();
        }
        Net {
            nodes,
            crashed: vec![false; 5],
            queue: Vec::new(),
            latency: Duration::from_millis(1),
        }
    }

    fn step(&mut self, now: Instant) {
        let (due, rest): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|m| m.0 <= now);
        self.queue = rest;
        for (_, from, to, msg) in due {
            let i = to.id.0 as usize - 1;
            let wrong = to.instance != 0 && to != self.nodes[i].process();
            if !wrong && !self.crashed[i] && !self.crashed[from.id.0 as usize - 1] {
                self.nodes[i].handle(now, from, msg);
            }
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if self.crashed[i] {
                continue;
            }
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
            let me = n.process();
            while let Some((to, msg)) = n.poll_message() {
                self.queue.push((now + self.latency, me, to, msg));
            }
            while n.poll_event().is_some() {}
        }
    }

    /// Leaders at `now`: (id, term) of every live node whose lease runs.
    fn leaders(&self, now: Instant) -> Vec<(u64, Term)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.crashed[*i])
            .filter_map(|(i, n)| {
                n.leadership("g")
                    .filter(|(_, d)| *d > now)
                    .map(|(t, _)| (i as u64 + 1, t))
            })
            .collect()
    }

    /// Runs `ms` milliseconds, checking at most one leader at every step.
    fn run(&mut self, from: Instant, ms: u64) -> Instant {
        let mut now = from;
        for _ in 0..ms {
            now += Duration::from_millis(1);
            self.step(now);
            let l = self.leaders(now);
            assert!(l.len() <= 1, "two leaders at {:?}: {l:?}", now - from);
        }
        now
    }
}

#[test]
fn lowest_id_leads_after_quarantine_then_fails_over_with_higher_term() {
    let t0 = Instant::now();
    let mut net = Net::new(t0);
    let now = net.run(t0, 3000);
    let first = net.leaders(now);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, 1, "lowest id leads: {first:?}");
    // Crash the leader (a voter too): the survivors hold a quorum of 2 of 3.
    net.crashed[0] = true;
    let crashed_at = now;
    let mut now = now;
    let mut failover = None;
    for _ in 0..3000 {
        now = net.run(now, 1);
        if failover.is_none() && !net.leaders(now).is_empty() {
            failover = Some(now - crashed_at);
        }
    }
    let second = net.leaders(now);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].0, 2, "next lowest id: {second:?}");
    assert!(
        second[0].1 > first[0].1,
        "terms increase: {first:?} -> {second:?}"
    );
    // The old promises end within one lease; the new leader follows within a round.
    assert!(
        failover.unwrap() <= Duration::from_millis(1200),
        "{failover:?}"
    );
}

#[test]
fn resignation_hands_over_within_a_few_round_trips() {
    let t0 = Instant::now();
    let mut net = Net::new(t0);
    let now = net.run(t0, 3000);
    assert_eq!(net.leaders(now)[0].0, 1);
    net.nodes[0].resign(now, "g");
    let mut now = now;
    let start = now;
    while net.leaders(now).is_empty() {
        now = net.run(now, 1);
        assert!(now - start < Duration::from_millis(1000), "no handover");
    }
    assert_eq!(net.leaders(now)[0].0, 2);
    assert!(
        now - start <= Duration::from_millis(200),
        "{:?}",
        now - start
    );
}

#[test]
fn a_candidate_not_told_of_a_lost_round_release_still_hears_of_the_resignation() {
    let t0 = Instant::now();
    let cfg = ElectionConfig::lan(vec![NodeId(9)]);
    let now = t0 + cfg.quarantine;
    let lease = cfg.timing.lease;
    let mut v = Election::new(NodeId(9), 9, cfg.validated().unwrap(), t0).unwrap();
    let p = |id| Process::new(NodeId(id), id);
    let req = |term, round| ElectionMsg::Request {
        group: "g".into(),
        term,
        round,
        lease,
    };
    let release = |term, vacate| ElectionMsg::Release {
        group: "g".into(),
        term,
        vacate,
    };
    v.handle(now, p(2), req(1, 1));
    v.handle(now, p(3), req(2, 1)); // turned away: node 2 holds it
    v.handle(now, p(2), release(1, false)); // node 2's round lost: 3 not told
    v.handle(now, p(2), req(3, 2));
    v.handle(now, p(2), release(3, true)); // node 2 resigns
    let vacant: Vec<Process> = std::iter::from_fn(|| v.poll_message())
        .filter(|(_, m)| matches!(m, ElectionMsg::Vacant { .. }))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(vacant, vec![p(3)]);
}

#[test]
fn bad_config_and_campaigns_are_refused() {
    let t0 = Instant::now();
    let mut cfg = ElectionConfig::lan(vec![NodeId(1), NodeId(1)]);
    assert!(cfg.clone().validated().is_err());
    let none = ElectionConfig::lan(vec![]).validated().unwrap();
    assert!(Election::new(NodeId(1), 1, none, t0).is_err());
    cfg.voters = vec![NodeId(1)];
    cfg.timing.renew_interval = cfg.timing.lease;
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("renew_interval"));
    let cfg = ElectionConfig::lan(vec![NodeId(1)]).validated().unwrap();
    let mut e = Election::new(NodeId(1), 1, cfg, t0).unwrap();
    assert_eq!(e.campaign(t0, "", 0, 0), Err(CampaignError::BadName));
    e.campaign(t0, "g", 0, 0).unwrap();
    assert!(matches!(
        e.campaign(t0, "g", 0, 0),
        Err(CampaignError::AlreadyRunning(_))
    ));
}

#[test]
fn a_lost_round_frees_the_voters_whose_answer_never_came() {
    // A one-way cut: voter 3 hears candidate 5, but its grant never reaches it. Unless
    // the lost round releases voter 3 too, node 5 holds it for a lease, and takes it
    // again with every new round, keeping it from every other candidate.
    let t0 = Instant::now();
    let cfg = ElectionConfig::lan(vec![NodeId(1), NodeId(2), NodeId(3)]);
    let round_timeout = cfg.timing.round_timeout;
    let mut c = Election::new(NodeId(5), 5, cfg.validated().unwrap(), t0).unwrap();
    c.campaign(t0, "g", 0, 0).unwrap(); // rank 0: asks at once
    let at = t0 + Duration::from_millis(1);
    let Some((_, ElectionMsg::Request { term, round, .. })) = c.poll_message() else {
        panic!("no request")
    };
    while c.poll_message().is_some() {}
    let held = |id| ElectionMsg::Answer {
        group: "g".into(),
        round,
        term,
        verdict: WireVerdict::Held(NodeId(id), 7, Duration::from_millis(500)),
    };
    let p = |id| Process::new(NodeId(id), id);
    c.handle(at, p(1), held(1));
    c.handle(at, p(2), held(1)); // a quorum is out of reach: the round is lost
    let released = |c: &mut Election| -> Vec<NodeId> {
        std::iter::from_fn(|| c.poll_message())
            .filter(|(_, m)| {
                matches!(m, ElectionMsg::Release { term: t, vacate: false, .. } if *t == term)
            })
            .map(|(to, _)| to.id)
            .collect()
    };
    // Nothing granted yet: an answer may still be on its way until the round expires.
    assert!(released(&mut c).is_empty());
    assert!(c.poll_timeout().unwrap() <= t0 + round_timeout);
    c.handle_timeout(t0 + round_timeout);
    assert!(released(&mut c).contains(&NodeId(3)));
}

#[test]
fn a_candidate_asks_above_the_term_its_own_voter_granted() {
    // Node 1's own voter granted node 2 term 40: a round of node 1 at a lower term
    // would be refused by its own voter, and node 1 would back off as if outbid.
    let t0 = Instant::now();
    let cfg = ElectionConfig::lan(vec![NodeId(1), NodeId(2), NodeId(3)]);
    let now = t0 + cfg.quarantine;
    let lease = cfg.timing.lease;
    let mut e = Election::new(NodeId(1), 1, cfg.validated().unwrap(), t0).unwrap();
    let req = ElectionMsg::Request {
        group: "g".into(),
        term: 40,
        round: 1,
        lease,
    };
    e.handle(now, Process::new(NodeId(2), 2), req);
    while e.poll_message().is_some() {}
    e.campaign(now + lease * 2, "g", 0, 0).unwrap();
    let asked: Vec<Term> = std::iter::from_fn(|| e.poll_message())
        .filter_map(|(_, m)| match m {
            ElectionMsg::Request { term, .. } => Some(term),
            _ => None,
        })
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|t| *t > 40),
        "{asked:?}"
    );
}
