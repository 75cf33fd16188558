//! A campaign delegated to a running node (`quorate elect --node`, `quorate lock
//! --node`): a client that is not a member asks a node, over the status protocol, to
//! run for a group on its behalf, and learns on the same stream when that node leads
//! and until when.
//!
//! The lease end the client acts on must never lie after the node's own: the node
//! tells how long is *left* ([`WireSeat::Leading`]), and the client counts that from
//! when it *sent* the poll the node answered (the node's answer cannot have been
//! computed earlier), so whatever the transit time, the client's deadline comes first.
//! Changes are pushed at once too (a lost leadership is acted on without waiting for a
//! poll), but a pushed lease end is only a cue to poll: it carries no anchor.
//!
//! The campaign belongs to the stream: the node resigns it when the client asks, when
//! the client finishes or resets the stream, when the connection fails, or when the
//! client stays silent for longer than [`silence_bound`].

#![allow(clippy::disallowed_methods)] // tokio's clock, in the runtime

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{RecvStream, SendStream};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::elect::Seat;
use super::frame::{read_frame, write_frame};
use super::handle::{Commands, WeakCommands};
use super::identity::Identity;
use super::shared::Shared;
use super::status::{ask_stream, Ask, StatusError, StatusResponse};
use crate::election::{Term, Timing};
use crate::wire::NodeId;

/// Largest client frame the node reads (a poll or a resignation).
const MAX_INPUT: usize = 64;
/// Largest node frame the client reads.
const MAX_OUTPUT: usize = 1024;
/// Polls awaiting an answer that the client remembers (older ones are forgotten, and
/// their answers ignored).
const MAX_OUTSTANDING: usize = 32;

/// What the client sends after its request. The variant order is the encoding: add
/// at the end.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Input {
    /// Tell me where the campaign stands now; the answer names this number.
    Poll(u64),
    /// Resign the campaign and tell me once the voters confirmed the release.
    Resign,
}

/// Where a delegated campaign stands, as the node sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum WireSeat {
    /// Running, not leading.
    Running,
    /// Leading with `term`; the lease ends `remaining_ms` after the node looked.
    Leading { term: Term, remaining_ms: u64 },
    /// The campaign ended: resigned (a lock's leadership ended, or it was resigned on
    /// the node), or the node left or stopped.
    Ended { resigned: bool },
}

/// The node's timing a client needs: when to worry about a lease and how much of it
/// to keep in hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct WireTiming {
    lease_ms: u64,
    renew_ms: u64,
    margin_ms: u64,
}

/// How long the node waits for a client frame before it takes the client for gone and
/// resigns: a lease, and at least three of the client's longest poll intervals.
fn silence_bound(t: &Timing) -> Duration {
    t.lease.max(3 * MAX_POLL)
}

/// The longest time between two polls.
const MAX_POLL: Duration = Duration::from_secs(1);

/// How often the client polls: a quarter of the renewal interval, so its deadline
/// trails the node's by little more than that (10 ms to 1 s).
fn poll_interval(renew: Duration) -> Duration {
    (renew / 4).clamp(Duration::from_millis(10), MAX_POLL)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

// ---------------------------------------------------------------- the node's side

/// Resigns the campaign when dropped, unless disarmed (it ended, or was resigned with
/// confirmation).
struct ResignOnDrop {
    cmds: WeakCommands,
    group: String,
    id: u64,
    armed: bool,
}

impl Drop for ResignOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.cmds.resign_now(self.group.clone(), self.id);
        }
    }
}

/// The seat as sent: the lease left now.
fn wire_seat(seat: Seat) -> WireSeat {
    match seat {
        Seat::Running => WireSeat::Running,
        Seat::Leading { term, deadline } => WireSeat::Leading {
            term,
            remaining_ms: millis(deadline.saturating_duration_since(now())),
        },
        Seat::Resigned => WireSeat::Ended { resigned: true },
        Seat::Stopped => WireSeat::Ended { resigned: false },
    }
}

async fn send_response(send: &mut SendStream, resp: &StatusResponse) -> Result<(), String> {
    let bytes = postcard::to_stdvec(resp).map_err(|e| e.to_string())?;
    write_frame(send, &bytes).await.map_err(|e| e.to_string())
}

/// Reads the client's frames into a channel (frame reads are not cancel-safe, so they
/// run in a task of their own); the channel closes when the stream ends or fails.
fn read_inputs(mut recv: RecvStream) -> mpsc::Receiver<Result<Input, String>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let item = match read_frame(&mut recv, MAX_INPUT).await {
                Ok(Some(bytes)) => postcard::from_bytes(&bytes).map_err(|e| e.to_string()),
                Ok(None) => return,
                Err(e) => Err(e.to_string()),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// A campaign started for a client: its id, its seat, and the weak command sender.
type Running = (u64, watch::Receiver<Seat>, WeakCommands);

/// Why a campaign could not be started for a client now.
enum NotStarted {
    /// The node runs for the group already (its own campaign, or another client's):
    /// try again once that one ends.
    Busy,
    /// Refused for good, with the reason told to the client.
    Refused(String),
}

async fn start(shared: &Shared, group: &str, once: bool) -> Result<Running, NotStarted> {
    let Some(cmds) = shared.commands.upgrade().map(Commands::from) else {
        return Err(NotStarted::Refused("the node is stopping".into()));
    };
    match cmds.campaign(group, once).await {
        Ok(Ok((id, seat))) => Ok((id, seat, cmds.downgrade())),
        Ok(Err(crate::election::CampaignError::AlreadyRunning(_))) => Err(NotStarted::Busy),
        Ok(Err(e)) => Err(NotStarted::Refused(e.to_string())),
        Err(_) => Err(NotStarted::Refused("the node is stopping".into())),
    }
}

/// Runs for `group` on behalf of the client at the other end of the stream (`once`: a
/// lock's campaign, ended with its first leadership), until the client resigns or is
/// gone. While the node runs for the group already (for itself or another client),
/// the client waits, told `Running`. The campaign is resigned on every way out.
pub(super) async fn serve(
    send: &mut SendStream,
    recv: RecvStream,
    shared: &Arc<Shared>,
    group: String,
    once: bool,
) -> Result<(), String> {
    let first = match start(shared, &group, once).await {
        Err(NotStarted::Refused(reason)) => return refuse(send, reason).await,
        first => first,
    };
    let timing = shared.tls_params.0.election.timing.clone();
    let hello = StatusResponse::Campaigning {
        node: shared.me,
        timing: WireTiming {
            lease_ms: millis(timing.lease),
            renew_ms: millis(timing.renew_interval),
            margin_ms: millis(timing.margin),
        },
    };
    send_response(send, &hello).await?;
    let silence = silence_bound(&timing);
    let mut inputs = read_inputs(recv);
    let (id, mut seat, cmds) = match first {
        Ok(running) => running,
        Err(_) => match wait_turn(send, &mut inputs, shared, &group, once, silence).await? {
            Some(running) => running,
            None => return Ok(()),
        },
    };
    let mut guard = ResignOnDrop {
        cmds,
        group,
        id,
        armed: true,
    };
    if !follow(send, &mut seat, &mut inputs, silence).await? {
        guard.armed = false;
        return Ok(());
    }
    guard.armed = false;
    let confirmed = guard
        .cmds
        .resign_confirmed(&guard.group, guard.id)
        .await
        .is_ok();
    send_response(send, &StatusResponse::Released { confirmed }).await?;
    send.finish().map_err(|e| e.to_string())
}

/// Waits until the node can run for `group` for this client, answering polls with
/// `Running`; `None` when the client resigned or left first.
async fn wait_turn(
    send: &mut SendStream,
    inputs: &mut mpsc::Receiver<Result<Input, String>>,
    shared: &Shared,
    group: &str,
    once: bool,
    silence: Duration,
) -> Result<Option<Running>, String> {
    let retry = poll_interval(shared.tls_params.0.election.timing.renew_interval);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(retry) => match start(shared, group, once).await {
                Ok(running) => return Ok(Some(running)),
                Err(NotStarted::Busy) => {}
                Err(NotStarted::Refused(reason)) => {
                    let ended = StatusResponse::Refused(reason);
                    send_response(send, &ended).await?;
                    return Ok(None);
                }
            },
            input = inputs.recv() => {
                heard = tokio::time::Instant::now();
                match input {
                    Some(Ok(Input::Poll(seq))) => {
                        let seat = StatusResponse::Seat { seq, seat: WireSeat::Running };
                        send_response(send, &seat).await?;
                    }
                    Some(Ok(Input::Resign)) | None => {
                        let released = StatusResponse::Released { confirmed: true };
                        send_response(send, &released).await?;
                        return Ok(None);
                    }
                    Some(Err(e)) => return Err(format!("client frame: {e}")),
                }
            }
            () = tokio::time::sleep_until(heard + silence) => {
                return Err(format!("the client was silent for {silence:?}"));
            }
        }
    }
}

async fn refuse(send: &mut SendStream, reason: String) -> Result<(), String> {
    send_response(send, &StatusResponse::Refused(reason)).await?;
    send.finish().map_err(|e| e.to_string())
}

/// Pushes every change of the seat and answers every poll, until the client asks to
/// resign (`Ok(true)`) or the campaign ended on the node (`Ok(false)`). An error: the
/// client is gone or broke the protocol (the caller's guard resigns).
async fn follow(
    send: &mut SendStream,
    seat: &mut watch::Receiver<Seat>,
    inputs: &mut mpsc::Receiver<Result<Input, String>>,
    silence: Duration,
) -> Result<bool, String> {
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            changed = seat.changed() => {
                let now_seat = *seat.borrow_and_update();
                let wire = wire_seat(now_seat);
                send_response(send, &StatusResponse::Seat { seq: 0, seat: wire }).await?;
                if changed.is_err() || matches!(wire, WireSeat::Ended { .. }) {
                    let _ = send.finish();
                    return Ok(false);
                }
            }
            input = inputs.recv() => {
                heard = tokio::time::Instant::now();
                match input {
                    Some(Ok(Input::Poll(seq))) => {
                        let wire = wire_seat(*seat.borrow());
                        send_response(send, &StatusResponse::Seat { seq, seat: wire }).await?;
                    }
                    // A resignation, or the client finished its side cleanly.
                    Some(Ok(Input::Resign)) | None => return Ok(true),
                    Some(Err(e)) => return Err(format!("client frame: {e}")),
                }
            }
            () = tokio::time::sleep_until(heard + silence) => {
                return Err(format!("the client was silent for {silence:?}"));
            }
        }
    }
}

// ------------------------------------------------------------- the client's side

/// Why a delegated campaign gave no leadership ([`DelegatedCampaign::leadership`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegateError {
    /// The node ended the campaign: it was resigned there (a lock's leadership ended)
    /// or the node left or stopped. Nothing is held.
    #[error("node {node} ended the campaign ({why})")]
    Ended {
        /// The node that ran it.
        node: NodeId,
        /// Resigned, or the node stopped.
        why: &'static str,
    },
    /// The node refused to run for the group once its turn came (the group's
    /// campaign it waited for ended, and a new one was refused). Nothing is held.
    #[error("node {node} refused the campaign: {reason}")]
    Refused {
        /// The node asked.
        node: NodeId,
        /// Its reason.
        reason: String,
    },
    /// The connection to the node failed; the node resigns the campaign when it
    /// notices (at the latest after a lease of silence). Nothing is held.
    #[error("lost the connection to node {node}: {reason}")]
    Disconnected {
        /// The node that ran it.
        node: NodeId,
        /// Why.
        reason: String,
    },
}

/// Where a delegated campaign stands, as the client knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Running,
    /// Leading with `term` until `deadline` on this process's clock (anchored at a
    /// poll's sending, so never after the node's own deadline).
    Leading {
        term: Term,
        deadline: Instant,
    },
    Ended(DelegateError),
}

/// The election timing of the node that runs a [`DelegatedCampaign`]
/// ([`crate::config::Timing`]'s fields a client acts on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelegatedTiming {
    /// The lease a leadership is granted for.
    pub lease: Duration,
    /// How often the leader renews it.
    pub renew_interval: Duration,
    /// The safety margin the node keeps before every deadline.
    pub margin: Duration,
}

/// A campaign a running node runs on this client's behalf ([`campaign_through`]).
///
/// Dropping it closes the connection: the node resigns the campaign without
/// confirmation. [`DelegatedCampaign::resign`] waits for the voters' confirmation.
#[derive(Debug)]
pub struct DelegatedCampaign {
    node: NodeId,
    timing: DelegatedTiming,
    known: watch::Receiver<Known>,
    resign: mpsc::Sender<oneshot::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

/// One leadership held through a [`DelegatedCampaign`].
#[derive(Debug)]
pub struct DelegatedLeadership {
    term: Term,
    last_deadline: std::sync::Mutex<Instant>,
    known: watch::Receiver<Known>,
}

/// Asks the node at `addr` (as `identity`, a client identity of cluster
/// `cluster_name`) to run for `group` on this client's behalf (`once`: a lock's
/// campaign, ended with its first leadership). The node leads in its own name: its id
/// is the leader the voters and the members see, and its term is the fencing token.
///
/// Fails as [`crate::query_status`] does, and with [`StatusError::Refused`] when the
/// node refuses the candidacy (elections off, a bad name, a campaign of its own for
/// the group), naming why.
pub async fn campaign_through(
    identity: &Identity,
    addr: SocketAddr,
    cluster_name: &str,
    group: &str,
    once: bool,
) -> Result<DelegatedCampaign, StatusError> {
    let ask = Ask::Campaign {
        group: group.to_owned(),
        once,
    };
    let opened = ask_stream(identity, addr, cluster_name, ask, MAX_POLL).await?;
    let StatusResponse::Campaigning { node, timing } = opened.first else {
        return Err(StatusError::Protocol {
            addr,
            reason: "answered another question".into(),
        });
    };
    let timing = DelegatedTiming {
        lease: Duration::from_millis(timing.lease_ms),
        renew_interval: Duration::from_millis(timing.renew_ms),
        margin: Duration::from_millis(timing.margin_ms),
    };
    let (known_tx, known) = watch::channel(Known::Running);
    let (resign, resign_rx) = mpsc::channel(1);
    let client = Client {
        node,
        send: opened.send,
        known: known_tx,
        polls: VecDeque::new(),
        next_seq: 1,
    };
    let link = (opened.conn, opened.endpoint);
    let every = poll_interval(timing.renew_interval);
    let task = tokio::spawn(client.run(opened.recv, resign_rx, every, link));
    Ok(DelegatedCampaign {
        node,
        timing,
        known,
        resign,
        task,
    })
}

impl DelegatedCampaign {
    /// The node that runs the campaign (and leads, when it does).
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// That node's election timing: its lease, renewal interval and safety margin.
    pub fn timing(&self) -> DelegatedTiming {
        self.timing
    }

    /// Waits until the node leads the group (at once when it leads now), and returns
    /// the leadership with the fencing token and a lease end on this process's clock.
    pub async fn leadership(&mut self) -> Result<DelegatedLeadership, DelegateError> {
        loop {
            let known = self.known.borrow_and_update().clone();
            match known {
                Known::Leading { term, deadline } if deadline > now() => {
                    return Ok(DelegatedLeadership {
                        term,
                        last_deadline: std::sync::Mutex::new(deadline),
                        known: self.known.clone(),
                    })
                }
                Known::Ended(e) => return Err(e),
                Known::Running | Known::Leading { .. } => {}
            }
            if self.known.changed().await.is_err() {
                return Err(DelegateError::Disconnected {
                    node: self.node,
                    reason: "the client task ended".into(),
                });
            }
        }
    }

    /// Resigns: the node steps down, releases its voters and stops running for the
    /// group. True once a quorum of voters confirmed the release; false when they did
    /// not within a lease, or the node could not be told or could not answer (it
    /// resigns on its own once it notices the client gone).
    pub async fn resign(self) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.resign.send(reply).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

impl Drop for DelegatedCampaign {
    fn drop(&mut self) {
        // After `resign` the task has finished; otherwise dropping the connection
        // tells the node to resign.
        self.task.abort();
    }
}

impl DelegatedLeadership {
    /// The fencing token: the term of the node's leadership.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The lease's end on this process's clock, pushed back as the node renews; once
    /// the leadership ended, the last one seen. It never lies after the node's own.
    pub fn deadline(&self) -> Instant {
        let mut last = self
            .last_deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Known::Leading { term, deadline } = *self.known.borrow() {
            if term == self.term {
                *last = deadline;
            }
        }
        *last
    }

    /// Completes when this leadership ends (the node stepped down, the campaign
    /// ended, the connection failed) or at its deadline, whichever comes first.
    pub async fn lost(&self) {
        let mut known = self.known.clone();
        loop {
            let deadline = match *known.borrow_and_update() {
                Known::Leading { term, deadline } if term == self.term => deadline,
                _ => return,
            };
            *self
                .last_deadline
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = deadline;
            if deadline <= now() {
                return;
            }
            tokio::select! {
                changed = known.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline.into()) => return,
            }
        }
    }
}

/// The client's task: polls, applies the node's answers, resigns on request.
struct Client {
    node: NodeId,
    send: SendStream,
    known: watch::Sender<Known>,
    /// Polls sent and not yet answered: number, when sent.
    polls: VecDeque<(u64, Instant)>,
    next_seq: u64,
}

/// What the node sends, read in a task of its own (frame reads are not cancel-safe).
fn read_outputs(mut recv: RecvStream) -> mpsc::Receiver<Result<StatusResponse, String>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let item = match read_frame(&mut recv, MAX_OUTPUT).await {
                Ok(Some(bytes)) => postcard::from_bytes(&bytes).map_err(|e| e.to_string()),
                Ok(None) => Err("the node ended the stream".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

impl Client {
    async fn run(
        mut self,
        recv: RecvStream,
        mut resign: mpsc::Receiver<oneshot::Sender<bool>>,
        every: Duration,
        link: (quinn::Connection, quinn::Endpoint),
    ) {
        let mut outputs = read_outputs(recv);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut answer = None;
        let ended = loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = self.poll().await {
                        break self.disconnected(e);
                    }
                }
                out = outputs.recv() => {
                    let out = out.unwrap_or_else(|| Err("the node ended the stream".into()));
                    if let Err(e) = self.on_output(out).await {
                        break e;
                    }
                }
                reply = resign.recv() => {
                    let confirmed = match reply {
                        Some(_) => self.resign(&mut outputs).await,
                        None => false,
                    };
                    answer = reply.map(|r| (r, confirmed));
                    break DelegateError::Ended { node: self.node, why: "resigned" };
                }
            }
        };
        self.known.send_replace(Known::Ended(ended));
        // Closed before the caller hears back (it may drop this task then).
        super::status::close(&link.0, &link.1).await;
        if let Some((reply, confirmed)) = answer {
            let _ = reply.send(confirmed);
        }
    }

    fn disconnected(&self, reason: String) -> DelegateError {
        DelegateError::Disconnected {
            node: self.node,
            reason,
        }
    }

    /// Sends a poll and remembers when.
    async fn poll(&mut self) -> Result<(), String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.polls.len() == MAX_OUTSTANDING {
            self.polls.pop_front();
        }
        self.polls.push_back((seq, now()));
        let bytes = postcard::to_stdvec(&Input::Poll(seq)).map_err(|e| e.to_string())?;
        write_frame(&mut self.send, &bytes)
            .await
            .map_err(|e| e.to_string())
    }

    /// Applies one frame of the node's; an error ends the campaign for the client.
    async fn on_output(&mut self, out: Result<StatusResponse, String>) -> Result<(), DelegateError> {
        let seat = match out {
            Ok(StatusResponse::Seat { seq, seat }) => (seq, seat),
            Ok(StatusResponse::Refused(reason)) => {
                return Err(DelegateError::Refused {
                    node: self.node,
                    reason,
                })
            }
            Ok(_) => return Err(self.disconnected("unexpected frame".into())),
            Err(e) => return Err(self.disconnected(e)),
        };
        let (seq, seat) = seat;
        let anchor = self.anchor(seq);
        let action = apply(&self.known.borrow(), seat, anchor, self.node);
        match action {
            Apply::Set(k) => {
                self.known.send_replace(k);
            }
            Apply::PollNow => {
                if let Err(e) = self.poll().await {
                    return Err(self.disconnected(e));
                }
            }
            Apply::Keep => {}
            Apply::End(e) => return Err(e),
        }
        Ok(())
    }

    /// When poll `seq` was sent (none for a pushed change or a forgotten poll).
    fn anchor(&mut self, seq: u64) -> Option<Instant> {
        if seq == 0 {
            return None;
        }
        let at = self.polls.iter().position(|(s, _)| *s == seq)?;
        let (_, sent) = self.polls[at];
        self.polls.drain(..=at);
        Some(sent)
    }

    /// Asks the node to resign and waits for its confirmation (at most a little over
    /// what the node waits itself).
    async fn resign(&mut self, outputs: &mut mpsc::Receiver<Result<StatusResponse, String>>) -> bool {
        self.known.send_replace(Known::Running);
        let Ok(bytes) = postcard::to_stdvec(&Input::Resign) else {
            return false;
        };
        if write_frame(&mut self.send, &bytes).await.is_err() {
            return false;
        }
        let _ = self.send.finish();
        let wait = async {
            while let Some(Ok(out)) = outputs.recv().await {
                if let StatusResponse::Released { confirmed } = out {
                    return confirmed;
                }
            }
            false
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or(false)
    }
}

/// What a seat the node sent does to what the client knows.
#[derive(Debug, PartialEq, Eq)]
enum Apply {
    Set(Known),
    /// A leadership was pushed, unanchored: ask when it ends.
    PollNow,
    Keep,
    End(DelegateError),
}

/// The pure rule: a lease end is taken only from an answered poll, counted from when
/// the poll was sent, and never moves back within one term.
fn apply(known: &Known, seat: WireSeat, anchor: Option<Instant>, node: NodeId) -> Apply {
    match (seat, anchor) {
        (WireSeat::Running, _) => match known {
            Known::Running => Apply::Keep,
            _ => Apply::Set(Known::Running),
        },
        (WireSeat::Ended { resigned }, _) => Apply::End(DelegateError::Ended {
            node,
            why: if resigned { "resigned" } else { "the node stopped" },
        }),
        (WireSeat::Leading { term, remaining_ms }, Some(sent)) => {
            let mut deadline = sent + Duration::from_millis(remaining_ms);
            if let Known::Leading { term: t, deadline: d } = known {
                if *t == term {
                    deadline = deadline.max(*d);
                }
            }
            Apply::Set(Known::Leading { term, deadline })
        }
        (WireSeat::Leading { .. }, None) => Apply::PollNow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_end_counts_from_when_the_poll_was_sent() {
        let sent = Instant::now();
        let seat = WireSeat::Leading {
            term: 4,
            remaining_ms: 900,
        };
        let got = apply(&Known::Running, seat, Some(sent), NodeId(1));
        let want = Known::Leading {
            term: 4,
            deadline: sent + Duration::from_millis(900),
        };
        assert_eq!(got, Apply::Set(want));
    }

    #[test]
    fn a_pushed_lease_end_only_asks_for_a_poll() {
        let seat = WireSeat::Leading {
            term: 4,
            remaining_ms: 900,
        };
        assert_eq!(apply(&Known::Running, seat, None, NodeId(1)), Apply::PollNow);
    }

    #[test]
    fn a_late_answer_never_moves_the_deadline_back() {
        let sent = Instant::now();
        let known = Known::Leading {
            term: 4,
            deadline: sent + Duration::from_millis(900),
        };
        let seat = WireSeat::Leading {
            term: 4,
            remaining_ms: 100,
        };
        let got = apply(&known, seat, Some(sent), NodeId(1));
        assert_eq!(got, Apply::Set(known));
    }

    #[test]
    fn a_new_term_replaces_the_old_deadline() {
        let sent = Instant::now();
        let known = Known::Leading {
            term: 4,
            deadline: sent + Duration::from_millis(900),
        };
        let seat = WireSeat::Leading {
            term: 6,
            remaining_ms: 100,
        };
        let want = Known::Leading {
            term: 6,
            deadline: sent + Duration::from_millis(100),
        };
        assert_eq!(apply(&known, seat, Some(sent), NodeId(1)), Apply::Set(want));
    }

    #[test]
    fn losing_and_ending_are_taken_at_once() {
        let known = Known::Leading {
            term: 4,
            deadline: Instant::now() + Duration::from_secs(1),
        };
        assert_eq!(
            apply(&known, WireSeat::Running, None, NodeId(1)),
            Apply::Set(Known::Running)
        );
        let ended = apply(&known, WireSeat::Ended { resigned: false }, None, NodeId(1));
        assert!(matches!(ended, Apply::End(DelegateError::Ended { .. })));
    }

    #[test]
    fn polls_stay_within_bounds() {
        assert_eq!(poll_interval(Duration::from_millis(8)), Duration::from_millis(10));
        assert_eq!(poll_interval(Duration::from_millis(400)), Duration::from_millis(100));
        assert_eq!(poll_interval(Duration::from_secs(60)), MAX_POLL);
    }
}
