//! Target `engine`: one [`Engine`] with elections on, fed a sequence of operations
//! decoded from the input: frames from peers (raw bytes and well-formed messages),
//! clock advances with the timers due, and the application's commands.
//!
//! After every step the harness drains the engine's frames and events and checks:
//! - every frame it sends decodes under the configured limits, from this node;
//! - timers make progress: after `handle_timeout(now)`, `poll_timeout()` is not due
//!   again more than [`MAX_DUE_IN_A_ROW`] times at the same instant;
//! - a leadership never ends later than now plus the lease;
//! - within one candidacy (until the application resigns or leaves), the terms this
//!   node is elected with strictly rise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use quorate::election::{ElectionEvent, StepDown, Term};
use quorate::wire::{self, NodeId};
use quorate::{Config, Engine, Event};

use super::gen::{self, peer_addr};
use super::{sender, CLUSTER, STREAM_LIMIT};

/// Most operations one input runs (longer inputs are cut: short runs are cheap runs).
const MAX_OPS: usize = 48;

/// Most consecutive `handle_timeout` calls at one instant with a timer still due.
pub const MAX_DUE_IN_A_ROW: usize = 64;

/// One operation on the engine.
#[derive(Debug)]
enum Op {
    /// A frame from `peer`: over a stream when `reliable`, authenticated as the peer
    /// when `authenticated` (the transport's certificate check), else anonymous.
    Frame {
        peer: u64,
        authenticated: bool,
        reliable: bool,
        bytes: Vec<u8>,
    },
    /// The clock moves on by this much; due timers run.
    Advance(Duration),
    /// The clock moves to the next deadline.
    NextTimer,
    Campaign(String),
    Resign(String),
    CreateGroup(String),
    DeleteGroup(String),
    JoinGroup(String, Vec<u8>),
    LeaveGroup(String),
    UpdateCapabilities(String, Vec<u8>),
    SetMetadata(Vec<u8>),
    QueryLeader(String),
    RestoreTerm(String, Term),
    Join(Vec<SocketAddr>),
    Leave,
}

impl Op {
    fn build(u: &mut Unstructured<'_>) -> Result<Op> {
        Ok(match u.int_in_range(0u8..=19)? {
            0..=6 => Op::frame(u)?,
            7 | 8 => Op::Advance(match u.ratio(1u8, 8)? {
                true => Duration::from_secs(u.int_in_range(1..=7200)?),
                false => Duration::from_millis(u.int_in_range(0..=1000)?),
            }),
            9 => Op::NextTimer,
            10 => Op::Campaign(gen::group(u)?),
            11 => Op::Resign(gen::group(u)?),
            12 => Op::CreateGroup(gen::group(u)?),
            13 => Op::DeleteGroup(gen::group(u)?),
            14 => Op::JoinGroup(gen::group(u)?, gen::bytes(u, 16)?),
            15 => Op::LeaveGroup(gen::group(u)?),
            16 => match u.arbitrary()? {
                true => Op::UpdateCapabilities(gen::group(u)?, gen::bytes(u, 16)?),
                false => Op::SetMetadata(gen::bytes(u, 64)?),
            },
            17 => match u.arbitrary()? {
                true => Op::QueryLeader(gen::group(u)?),
                false => Op::RestoreTerm(gen::group(u)?, gen::number(u)?),
            },
            18 => Op::Join(vec![peer_addr(u.int_in_range(0..=7)?)]),
            _ => Op::Leave,
        })
    }

    /// A frame: raw bytes, or (mostly) a built message encoded as a peer would.
    fn frame(u: &mut Unstructured<'_>) -> Result<Op> {
        let peer = u.int_in_range(0..=7)?;
        let authenticated = u.ratio(7u8, 8)?;
        let reliable = u.ratio(1u8, 4)?;
        let bytes = match u.ratio(1u8, 8)? {
            true => gen::bytes(u, 256)?,
            false => {
                let from = sender(u, peer);
                let msg = gen::message(u)?;
                wire::encode(CLUSTER, from, &msg, STREAM_LIMIT).unwrap_or_default()
            }
        };
        Ok(Op::Frame {
            peer,
            authenticated,
            reliable,
            bytes,
        })
    }
}

/// The instant every run starts at (any fixed instant will do).
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // the harness's clock origin, once per process
    *BASE.get_or_init(Instant::now)
}

/// The engine under test and what the checks remember.
struct Run {
    engine: Engine,
    cfg: Config,
    now: Instant,
    /// Last term this node was elected with, per group, in the current candidacy.
    elected: HashMap<String, Term>,
}

impl Run {
    /// Node 1..=4 (voters are 1, 2 and 3), a seed and possibly preemption on.
    fn new(u: &mut Unstructured<'_>) -> Result<Run> {
        let me = NodeId(u.int_in_range(1..=4)?);
        let seed: u64 = u.arbitrary()?;
        let mut cfg = Config::lan().with_voters(vec![NodeId(1), NodeId(2), NodeId(3)]);
        if u.ratio(1u8, 4)? {
            cfg.election.preempt_after = Some(cfg.election.timing.lease);
        }
        let meta = gen::bytes(u, 16)?;
        let now = base();
        let engine = Engine::new(me, peer_addr(me.0), meta, cfg.clone(), seed, now)
            .expect("the harness config is valid");
        Ok(Run {
            engine,
            cfg,
            now,
            elected: HashMap::new(),
        })
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        let e = &mut self.engine;
        match op {
            Op::Frame {
                peer,
                authenticated,
                reliable,
                bytes,
            } => {
                let id = authenticated.then_some(NodeId(peer));
                match reliable {
                    true => e.handle_stream(now, peer_addr(peer), id, &bytes),
                    false => e.handle_datagram(now, peer_addr(peer), id, &bytes),
                }
            }
            Op::Advance(d) => self.now += d,
            Op::NextTimer => {
                if let Some(t) = e.poll_timeout() {
                    self.now = self.now.max(t);
                }
            }
            Op::Campaign(g) => {
                let _ = e.campaign(now, &g);
            }
            Op::Resign(g) => {
                e.resign(now, &g);
                self.elected.remove(&g);
            }
            Op::CreateGroup(g) => {
                let _ = e.create_group(now, &g);
            }
            Op::DeleteGroup(g) => {
                let _ = e.delete_group(now, &g);
            }
            Op::JoinGroup(g, caps) => {
                let _ = e.join_group(now, &g, caps);
            }
            Op::LeaveGroup(g) => {
                let _ = e.leave_group(now, &g);
            }
            Op::UpdateCapabilities(g, caps) => {
                let _ = e.update_capabilities(now, &g, caps);
            }
            Op::SetMetadata(meta) => {
                let _ = e.set_metadata(now, meta);
            }
            Op::QueryLeader(g) => {
                let _ = e.query_leader(now, &g);
            }
            Op::RestoreTerm(g, t) => e.restore_term(&g, t),
            Op::Join(seeds) => e.join(now, &seeds),
            Op::Leave => {
                e.leave(now);
                self.elected.clear();
            }
        }
        self.drain();
        self.run_timers();
    }

    /// Runs the timers due at `now`, as a driver does, checking that they move on.
    fn run_timers(&mut self) {
        let mut due = 0;
        while self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
            due += 1;
            assert!(
                due <= MAX_DUE_IN_A_ROW,
                "busy loop: a timer is still due after {MAX_DUE_IN_A_ROW} handle_timeout calls \
                 at one instant (next {:?}, now {:?})",
                self.engine.poll_timeout(),
                self.now
            );
            self.engine.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Takes every frame and event out of the engine, checking each.
    fn drain(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            let limit = match t.reliable {
                true => self.cfg.max_stream_bytes,
                false => self.cfg.max_datagram_bytes,
            };
            match wire::decode(&t.payload, &self.cfg.cluster_name, limit) {
                Ok(env) => assert_eq!(env.from, self.engine.id(), "a frame from another id"),
                Err(e) => panic!("the engine sent a frame that does not decode: {e} ({t:?})"),
            }
        }
        while let Some(ev) = self.engine.poll_event() {
            if let Event::Leadership(ev) = ev {
                self.check_leadership(ev);
            }
        }
    }

    fn check_leadership(&mut self, ev: ElectionEvent) {
        let lease = self.cfg.election.timing.lease;
        match ev {
            ElectionEvent::Elected {
                group,
                term,
                deadline,
            } => {
                self.check_deadline(&group, deadline, lease);
                if let Some(&before) = self.elected.get(&group) {
                    assert!(term > before, "{group:?}: elected at {term} after {before}");
                }
                self.elected.insert(group, term);
            }
            ElectionEvent::Renewed {
                group, deadline, ..
            } => self.check_deadline(&group, deadline, lease),
            ElectionEvent::SteppedDown {
                group,
                reason: StepDown::Resigned,
                ..
            } => {
                // Preemption resigns and runs again on its own: a new candidacy.
                self.elected.remove(&group);
            }
            _ => {}
        }
        for group in gen::GROUPS {
            if let Some((_, deadline)) = self.engine.leadership(group) {
                self.check_deadline(group, deadline, lease);
            }
        }
    }

    fn check_deadline(&self, group: &str, deadline: Instant, lease: Duration) {
        assert!(
            deadline <= self.now + lease,
            "{group:?}: leadership until {:?} after now, more than the lease {lease:?}",
            deadline.saturating_duration_since(self.now)
        );
    }
}

/// Target `engine` (see the module documentation).
pub fn engine(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mut run) = Run::new(&mut u) else {
        return;
    };
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::build(&mut u) else {
            break;
        };
        run.apply(op);
    }
}
