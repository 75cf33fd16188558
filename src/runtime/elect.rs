//! The driver's side of elections: one watch channel per running campaign (what the
//! [`crate::Campaign`] and [`crate::Leadership`] handles wait on), the callers waiting
//! for a quorum-confirmed leader, and the durable record of the terms this node granted
//! as a voter.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use super::terms::TermStore;
use crate::election::{CampaignError, Confirmed, ElectionEvent, QueryError, Term};
use crate::engine::Engine;

/// Where a campaign stands, as its handles see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seat {
    /// Running, not leading.
    Running,
    /// Leading with fencing token `term` until `deadline` (this node's clock; before
    /// every granting voter's promise ends).
    Leading { term: Term, deadline: Instant },
    /// The campaign was resigned (by a handle, or a lock's leadership ended).
    Resigned,
    /// The node left or stopped.
    Stopped,
}

/// A reply to a leader query.
pub(crate) type QueryReply = oneshot::Sender<Result<Confirmed, QueryError>>;

/// What a started campaign hands back: its id and its seat.
pub(crate) type Started = (u64, watch::Receiver<Seat>);

struct Slot {
    id: u64,
    /// A lock: the campaign ends with its first leadership.
    once: bool,
    seat: watch::Sender<Seat>,
}

/// The campaigns and queries of one node.
pub(crate) struct Elections {
    slots: HashMap<String, Slot>,
    queries: HashMap<u32, QueryReply>,
    next_id: u64,
    terms: Option<TermStore>,
}

impl Elections {
    /// No campaigns yet; granted terms are persisted to `terms` when given.
    pub fn new(terms: Option<TermStore>) -> Self {
        Elections {
            slots: HashMap::new(),
            queries: HashMap::new(),
            next_id: 0,
            terms,
        }
    }

    /// Starts running for `group`; `once`: stop at the end of the first leadership.
    pub fn campaign(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        group: &str,
        once: bool,
    ) -> Result<Started, CampaignError> {
        engine.campaign(now, group)?;
        self.next_id += 1;
        let (seat, rx) = watch::channel(Seat::Running);
        let slot = Slot {
            id: self.next_id,
            once,
            seat,
        };
        self.slots.insert(group.to_owned(), slot);
        Ok((self.next_id, rx))
    }

    /// Resigns campaign `id` for `group` (nothing when it already ended).
    pub fn resign(&mut self, engine: &mut Engine, now: Instant, group: &str, id: u64) {
        if self.slots.get(group).is_some_and(|s| s.id == id) {
            self.end(engine, now, group);
        }
    }

    fn end(&mut self, engine: &mut Engine, now: Instant, group: &str) {
        if let Some(slot) = self.slots.remove(group) {
            // The handles learn first that they no longer lead; the voters next.
            slot.seat.send_replace(Seat::Resigned);
            engine.resign(now, group);
        }
    }

    /// Asks the voters who leads `group`; `reply` gets the answer.
    pub fn query(&mut self, engine: &mut Engine, now: Instant, group: &str, reply: QueryReply) {
        match engine.query_leader(now, group) {
            Ok(id) => {
                self.queries.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Applies one of this node's election events.
    pub fn on_event(&mut self, engine: &mut Engine, now: Instant, e: &ElectionEvent) {
        match e {
            ElectionEvent::Elected {
                group,
                term,
                deadline,
            }
            | ElectionEvent::Renewed {
                group,
                term,
                deadline,
            } => {
                if let Some(slot) = self.slots.get(group) {
                    slot.seat.send_replace(Seat::Leading {
                        term: *term,
                        deadline: *deadline,
                    });
                }
            }
            ElectionEvent::SteppedDown { group, .. } => {
                let once = self.slots.get(group).map(|s| s.once);
                match once {
                    Some(true) => self.end(engine, now, group),
                    // Still running (lease not renewed, or handed over to a
                    // lower id by preemption): waiting for the next leadership.
                    Some(false) => {
                        if let Some(slot) = self.slots.get(group) {
                            slot.seat.send_replace(Seat::Running);
                        }
                    }
                    None => {}
                }
            }
            ElectionEvent::TermRaised { group, term } => {
                if let Some(store) = self.terms.as_mut() {
                    store.record(group, *term);
                }
            }
            ElectionEvent::Confirmed { query, result, .. } => {
                if let Some(reply) = self.queries.remove(query) {
                    let _ = reply.send(result.clone());
                }
            }
        }
    }

    /// Resigns every campaign (the application watchdog expired).
    pub fn resign_all(&mut self, engine: &mut Engine, now: Instant) {
        let groups: Vec<String> = self.slots.keys().cloned().collect();
        for group in groups {
            self.end(engine, now, &group);
        }
    }

    /// The node leaves or stops: every campaign ends (the engine resigns them on leave).
    pub fn stop(&mut self) {
        for (_, slot) in self.slots.drain() {
            slot.seat.send_replace(Seat::Stopped);
        }
        self.queries.clear();
    }
}
