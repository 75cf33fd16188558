//! The driver: one tokio task per node owning the [`Engine`]. It feeds the engine
//! frames, timer expiries and commands, and executes what the engine polls out, without
//! ever waiting on a peer or on the application:
//!
//! - transmits go to the [`Transport`] (datagrams sent inline, streams and dials in
//!   spawned tasks with bounded queues);
//! - events go to a `tokio::sync::broadcast` channel: a subscriber that falls behind
//!   loses the oldest events (and is told how many), the driver never waits;
//! - the member list and counters are published through `watch` channels.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::conn::code;
use super::shared::{ConnEvent, Inbound, Shared, Snapshot, Timings};
use super::transport::Transport;
use crate::engine::{Engine, Event};
use crate::swim::{MetadataError, Stats};

/// Most frames handled in one go before the driver looks at its other inputs.
const FRAME_BATCH: usize = 64;

/// A request from the [`crate::Node`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish new metadata.
    SetMetadata {
        meta: Vec<u8>,
        reply: oneshot::Sender<Result<(), MetadataError>>,
    },
    /// Leave gracefully, then stop.
    Leave { reply: oneshot::Sender<()> },
    /// Stop now.
    Shutdown { reply: oneshot::Sender<()> },
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
    pub cmds: mpsc::Receiver<Command>,
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
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    pub fn new(
        engine: Engine,
        addr: SocketAddr,
        transport: Transport,
        shared: &Shared,
        inputs: Inputs,
        outputs: Outputs,
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
        }
    }

    /// Runs until shutdown, leave, or the [`crate::Node`] handle is dropped.
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
                    self.dirty = true;
                }
            }
        };
        self.stop(exit).await;
    }

    fn on_command(&mut self, cmd: Command) -> Option<Exit> {
        match cmd {
            Command::SetMetadata { meta, reply } => {
                let result = self.engine.set_metadata(now_std(), meta);
                self.dirty = true;
                let _ = reply.send(result);
            }
            Command::Leave { reply } => match &mut self.leaving {
                Some(leaving) => leaving.replies.push(reply),
                None => {
                    tracing::info!(id = %self.engine.id(), "leaving the cluster");
                    self.engine.leave(now_std());
                    let now = Instant::now();
                    self.leaving = Some(Leaving {
                        linger_until: now + self.timings.leave_linger,
                        deadline: now + self.timings.leave_timeout,
                        replies: vec![reply],
                    });
                    self.dirty = true;
                }
            },
            Command::Shutdown { reply } => return Some(Exit::Shutdown(Some(reply))),
        }
        None
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

    /// Executes the engine's outputs.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.engine.poll_transmit() {
            self.transport.send(t, now);
        }
        while let Some(e) = self.engine.poll_event() {
            self.dirty = true;
            // No subscriber is fine; a lagging one loses its oldest events.
            let _ = self.outputs.events.send(e);
        }
        if self.dirty {
            self.dirty = false;
            self.publish();
        }
    }

    fn publish(&mut self) {
        let snap = Snapshot {
            addr: self.addr,
            incarnation: self.engine.swim().incarnation(),
            members: self.engine.members().collect(),
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
