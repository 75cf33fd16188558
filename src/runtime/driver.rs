//! The driver: one tokio task per node owning the [`Engine`]. It feeds the engine
//! frames, timer expiries and commands, and executes what the engine polls out, without
//! ever waiting on a peer or on the application:
//!
//! - transmits go to the [`Transport`] (datagrams sent inline, streams and dials in
//!   spawned tasks with bounded queues);
//! - events go to a `tokio::sync::broadcast` channel: a subscriber that falls behind
//!   loses the oldest events (and is told how many), the driver never waits;
//! - the member list and counters are published through `watch` channels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::conn::code;
use super::elect::{Elections, QueryReply, Started};
use super::shared::{ConnEvent, GroupView, Inbound, Shared, Snapshot, Timings};
use super::transport::Transport;
use super::watchdog::Watchdog;
use crate::election::CampaignError;
use crate::engine::{BarrierError, Engine, Event};
use crate::groups::GroupError;
use crate::swim::{MemberEvent, MetadataError, Stats};

/// Most frames handled in one go before the driver looks at its other inputs.
const FRAME_BATCH: usize = 64;

/// A request from the node's handle (or a campaign handle), see [`super::handle`].
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish new metadata.
    SetMetadata {
        meta: Vec<u8>,
        reply: oneshot::Sender<Result<(), MetadataError>>,
    },
    /// A group operation.
    Group {
        group: String,
        op: GroupOp,
        reply: oneshot::Sender<Result<(), GroupError>>,
    },
    /// Start running for a group (`once`: a lock, ended with its first leadership).
    Campaign {
        group: String,
        once: bool,
        reply: oneshot::Sender<Result<Started, CampaignError>>,
    },
    /// Stop campaign `id` for `group` (a no-op when it already ended). The reply
    /// names this node and how long a confirmation by the voters may take, when
    /// elections are on.
    Resign {
        group: String,
        id: u64,
        reply: Option<oneshot::Sender<Option<(crate::wire::NodeId, std::time::Duration)>>>,
    },
    /// Read every counter and gauge of the engine.
    Metrics {
        reply: oneshot::Sender<Vec<crate::stats::Metric>>,
    },
    /// Read this node's leaderships: group and the lease left now.
    Leases {
        reply: oneshot::Sender<Vec<(String, std::time::Duration)>>,
    },
    /// Ask the voters who leads `group`.
    QueryLeader { group: String, reply: QueryReply },
    /// A read-your-writes barrier: answered once a quorum of voters and this node
    /// exchanged their states (see `crate::engine::Engine::begin_barrier`).
    Barrier {
        reply: oneshot::Sender<Result<(), BarrierError>>,
    },
    /// Leave gracefully, then stop.
    Leave { reply: oneshot::Sender<()> },
    /// Stop now.
    Shutdown { reply: oneshot::Sender<()> },
    /// Present a new identity (renewed certificate) from now on: new handshakes, both
    /// ways, use these; connections already open keep theirs.
    ReloadTls {
        server: Box<quinn::ServerConfig>,
        client: Box<quinn::ClientConfig>,
        reply: oneshot::Sender<()>,
    },
    /// Join (and rejoin when alone) through these seeds from now on.
    SetSeeds { seeds: Vec<SocketAddr> },
    /// Close every connection whose peer certificate `rev` revokes; replies how many.
    CloseRevoked {
        rev: super::revocation::Revocation,
        reply: oneshot::Sender<usize>,
    },
    /// Publish a leadership of `group` at `term` that no voter granted (a lying
    /// member, for tests of what the others make of it).
    ClaimLeadershipUnsafe {
        group: String,
        term: crate::election::Term,
        reply: oneshot::Sender<()>,
    },
}

/// A group operation (tooz's).
#[derive(Debug)]
pub(crate) enum GroupOp {
    Create,
    Delete,
    Join(Vec<u8>),
    Leave,
    Update(Vec<u8>),
}

/// The channels the driver publishes on.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub events: broadcast::Sender<Event>,
    pub snapshot: watch::Sender<Arc<Snapshot>>,
    pub stats: watch::Sender<Stats>,
}

/// The channels the driver reads.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub cmds: mpsc::UnboundedReceiver<Command>,
    pub frames: mpsc::Receiver<Inbound>,
    pub conn_events: mpsc::Receiver<ConnEvent>,
}

struct Leaving {
    linger_until: Instant,
    deadline: Instant,
    replies: Vec<oneshot::Sender<()>>,
}

enum Exit {
    Shutdown(Option<oneshot::Sender<()>>),
    Left(Vec<oneshot::Sender<()>>),
}

/// The engine and everything around it.
pub(crate) struct Driver {
    engine: Engine,
    addr: SocketAddr,
    transport: Transport,
    timings: Timings,
    inputs: Inputs,
    outputs: Outputs,
    dirty: bool,
    leaving: Option<Leaving>,
    elections: Elections,
    /// The group view published last, and whether it must be rebuilt.
    groups: Arc<GroupView>,
    groups_dirty: bool,
    /// The engine's group version the published view was built from.
    group_version: u64,
    /// The barriers waiting for a quorum of voters, by number.
    barriers: HashMap<u32, oneshot::Sender<Result<(), BarrierError>>>,
    /// The application watchdog, and where its expiries are counted.
    watchdog: Option<(Arc<Watchdog>, Arc<Shared>)>,
    shared: Arc<Shared>,
}

/// This node's leaderships: group and the lease left at `now`.
fn leases(engine: &Engine, now: std::time::Instant) -> Vec<(String, std::time::Duration)> {
    let Some(e) = engine.election() else {
        return Vec::new();
    };
    e.campaigns()
        .filter_map(|g| {
            let (_, deadline) = e.leadership(g)?;
            Some((g.to_owned(), deadline.saturating_duration_since(now)))
        })
        .collect()
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    pub fn new(
        engine: Engine,
        addr: SocketAddr,
        transport: Transport,
        shared: &Arc<Shared>,
        inputs: Inputs,
        outputs: Outputs,
        elections: Elections,
    ) -> Self {
        Driver {
            engine,
            addr,
            transport,
            timings: shared.timings,
            inputs,
            outputs,
            dirty: true,
            leaving: None,
            elections,
            groups: Arc::default(),
            groups_dirty: true,
            group_version: 0,
            barriers: HashMap::new(),
            watchdog: shared.watchdog.clone().map(|w| (w, shared.clone())),
            shared: shared.clone(),
        }
    }

    /// Runs until shutdown, leave, or the node's handle is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.timings.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let exit = loop {
            self.flush();
            if let Some(exit) = self.leave_done() {
                break exit;
            }
            let deadline = self.engine.poll_timeout().map(Instant::from_std);
            let timer = async move {
                match deadline {
                    Some(d) => sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = self.inputs.cmds.recv() => match cmd {
                    // The handle is gone: stop as `shutdown` would.
                    None => break Exit::Shutdown(None),
                    Some(cmd) => {
                        if let Some(exit) = self.on_command(cmd) {
                            break exit;
                        }
                    }
                },
                Some(frame) = self.inputs.frames.recv() => {
                    self.on_frame(frame);
                    for _ in 1..FRAME_BATCH {
                        match self.inputs.frames.try_recv() {
                            Ok(frame) => self.on_frame(frame),
                            Err(_) => break,
                        }
                    }
                }
                Some(ev) = self.inputs.conn_events.recv() => {
                    self.transport.on_event(ev, Instant::now());
                }
                () = timer => self.engine.handle_timeout(now_std()),
                _ = tick.tick() => {
                    self.transport.sweep(Instant::now());
                    self.forget_abandoned_barriers();
                    self.check_watchdog();
                    self.shared.own_expiry.check(std::time::SystemTime::now(), now_std());
                    self.dirty = true;
                }
            }
        };
        self.stop(exit).await;
    }

    fn on_command(&mut self, cmd: Command) -> Option<Exit> {
        let now = now_std();
        match cmd {
            Command::SetMetadata { meta, reply } => {
                let result = self.engine.set_metadata(now, meta);
                self.dirty = true;
                let _ = reply.send(result);
            }
            Command::Group { group, op, reply } => {
                let result = self.group_op(now, &group, op);
                // Publish before answering: the caller's next snapshot read sees it.
                self.groups_dirty = true;
                self.dirty = true;
                self.flush();
                let _ = reply.send(result);
            }
            Command::Campaign { group, once, reply } => {
                let result = self.elections.campaign(&mut self.engine, now, &group, once);
                self.groups_dirty = true;
                self.dirty = true;
                let _ = reply.send(result);
            }
            Command::Resign { group, id, reply } => {
                self.elections.resign(&mut self.engine, now, &group, id);
                self.groups_dirty = true;
                self.dirty = true;
                self.flush();
                if let Some(reply) = reply {
                    // A voter that missed the release frees the promise within a
                    // lease anyway: the confirmation waits no longer than that.
                    let confirm = self
                        .engine
                        .election()
                        .map(|e| (self.engine.id(), e.config().timing.lease));
                    let _ = reply.send(confirm);
                }
            }
            Command::QueryLeader { group, reply } => {
                self.elections.query(&mut self.engine, now, &group, reply);
            }
            Command::Barrier { reply } => match self.engine.begin_barrier() {
                Ok(id) => {
                    self.barriers.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Metrics { reply } => {
                let _ = reply.send(self.engine.metrics().collect());
            }
            Command::Leases { reply } => {
                let _ = reply.send(leases(&self.engine, now));
            }
            Command::Leave { reply } => self.on_leave(now, reply),
            Command::Shutdown { reply } => return Some(Exit::Shutdown(Some(reply))),
            Command::ReloadTls {
                server,
                client,
                reply,
            } => {
                self.transport.reload_tls(*server, *client);
                let _ = reply.send(());
            }
            Command::SetSeeds { seeds } => self.engine.set_seeds(now, &seeds),
            Command::CloseRevoked { rev, reply } => {
                let _ = reply.send(self.transport.close_revoked(&rev));
            }
            Command::ClaimLeadershipUnsafe { group, term, reply } => {
                self.engine.claim_leadership_unsafe(now, &group, term);
                self.groups_dirty = true;
                self.dirty = true;
                self.flush();
                let _ = reply.send(());
            }
        }
        None
    }

    fn group_op(
        &mut self,
        now: std::time::Instant,
        group: &str,
        op: GroupOp,
    ) -> Result<(), GroupError> {
        let e = &mut self.engine;
        match op {
            GroupOp::Create => e.create_group(now, group),
            GroupOp::Delete => e.delete_group(now, group),
            GroupOp::Join(caps) => e.join_group(now, group, caps),
            GroupOp::Leave => e.leave_group(now, group),
            GroupOp::Update(caps) => e.update_capabilities(now, group, caps),
        }
    }

    fn on_leave(&mut self, now: std::time::Instant, reply: oneshot::Sender<()>) {
        if let Some(leaving) = &mut self.leaving {
            leaving.replies.push(reply);
            return;
        }
        tracing::info!(id = %self.engine.id(), "leaving the cluster");
        // The campaign handles learn first that they no longer lead; then the engine
        // resigns every candidacy (the releases go out with the next flush, and the
        // node lingers until they are sent) and announces the departure.
        self.elections.stop();
        self.engine.leave(now);
        let at = Instant::now();
        self.leaving = Some(Leaving {
            linger_until: at + self.timings.leave_linger,
            deadline: at + self.timings.leave_timeout,
            replies: vec![reply],
        });
        self.dirty = true;
    }

    fn on_frame(&mut self, f: Inbound) {
        let now = Instant::now();
        self.transport.touch(f.from, f.conn, now);
        if f.reliable {
            self.engine
                .handle_stream(now.into_std(), f.from, Some(f.peer), &f.bytes);
        } else {
            self.engine
                .handle_datagram(now.into_std(), f.from, Some(f.peer), &f.bytes);
        }
    }

    /// Executes the engine's outputs: events first (a granted term is persisted before
    /// the grant leaves, a leadership that ended is reported before the releases go
    /// out), then transmits.
    fn flush(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            self.dirty = true;
            match &e {
                Event::Leadership(le) => {
                    self.elections.on_event(&mut self.engine, now_std(), le);
                }
                Event::Group(_)
                | Event::Leader(_)
                | Event::Member(MemberEvent::Failed { .. } | MemberEvent::Left { .. }) => {
                    self.groups_dirty = true;
                }
                _ => {}
            }
            // No subscriber is fine; a lagging one loses its oldest events.
            let _ = self.outputs.events.send(e);
        }
        if self.engine.group_version() != self.group_version {
            self.group_version = self.engine.group_version();
            self.groups_dirty = true;
            self.dirty = true;
        }
        let now = Instant::now();
        while let Some(t) = self.engine.poll_transmit() {
            self.transport.send(t, now);
        }
        if self.dirty {
            self.dirty = false;
            self.publish();
        }
        // Answered after the snapshot is published: the caller's next read sees what
        // the voters brought.
        while let Some(id) = self.engine.poll_barrier() {
            if let Some(reply) = self.barriers.remove(&id) {
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Runs the watchdog's verdict: once the application is silent past its heartbeat
    /// timeout, the node leaves its groups and resigns every campaign (leaderships and
    /// locks included), as a failed node would, and stays a member.
    fn check_watchdog(&mut self) {
        let Some((watchdog, shared)) = &self.watchdog else {
            return;
        };
        if !watchdog.check(Instant::now()) || self.leaving.is_some() {
            return;
        }
        super::shared::inc(&shared.counters.watchdog_expiries);
        tracing::warn!(id = %self.engine.id(), "no heartbeat from the application in time: leaving every group, resigning every leadership");
        let now = now_std();
        self.elections.resign_all(&mut self.engine, now);
        let joined: Vec<String> = self.engine.groups().own().joined.keys().cloned().collect();
        for group in joined {
            let _ = self.engine.leave_group(now, &group);
        }
        self.groups_dirty = true;
        self.dirty = true;
    }

    /// Cancels the barriers whose caller stopped waiting (its deadline passed).
    fn forget_abandoned_barriers(&mut self) {
        let engine = &mut self.engine;
        self.barriers.retain(|id, reply| {
            let waiting = !reply.is_closed();
            if !waiting {
                engine.cancel_barrier(*id);
            }
            waiting
        });
    }

    fn publish(&mut self) {
        if std::mem::take(&mut self.groups_dirty) {
            self.groups = Arc::new(GroupView::of(&self.engine));
        }
        let snap = Snapshot {
            addr: self.addr,
            incarnation: self.engine.swim().incarnation(),
            members: self.engine.members().collect(),
            groups: self.groups.clone(),
            joined: self.engine.swim().is_joined(),
        };
        self.outputs.snapshot.send_replace(Arc::new(snap));
        let stats = self.engine.stats();
        self.outputs.stats.send_if_modified(|s| {
            let changed = *s != stats;
            *s = stats;
            changed
        });
    }

    /// A leave is done once the node lingered (gossiping its departure) and its reliable
    /// sends were delivered, or at the leave deadline.
    fn leave_done(&mut self) -> Option<Exit> {
        let leaving = self.leaving.as_mut()?;
        let now = Instant::now();
        let drained = now >= leaving.linger_until && !self.transport.busy();
        if drained || now >= leaving.deadline {
            return Some(Exit::Left(std::mem::take(&mut leaving.replies)));
        }
        None
    }

    async fn stop(mut self, exit: Exit) {
        self.elections.stop();
        self.publish();
        match exit {
            Exit::Shutdown(reply) => {
                tracing::info!(id = %self.engine.id(), "shutting down");
                self.transport.close(code::SHUTDOWN, "shutdown");
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            Exit::Left(replies) => {
                self.transport.close(code::LEFT, "left");
                self.transport
                    .wait_idle(std::time::Duration::from_millis(500))
                    .await;
                tracing::info!(id = %self.engine.id(), "left the cluster");
                for reply in replies {
                    let _ = reply.send(());
                }
            }
        }
    }
}
