//! The engine's side of the election: running its timers before each input, applying
//! what it reports (leaderships in the published group state, events), ranking
//! candidacies by the gossiped group state, handing a group over to a lower id
//! (preemption), and the simulator's deliberately unsafe variants.

use std::time::Instant;

use super::{Engine, Event};
use crate::config::election::UnsafeVariant;
use crate::election::ElectionEvent;
use crate::wire::NodeId;

impl Engine {
    /// Runs the election's due timers before an input is handled: a leader whose
    /// deadline passed while its process stood still (stopped, starved of CPU) steps
    /// down, and says so, before anything the input brings is reported.
    pub(super) fn expire_leaderships(&mut self, now: Instant) {
        let idle = now.saturating_duration_since(self.last_input);
        self.last_input = self.last_input.max(now);
        if let Some(e) = self.election.as_mut() {
            if idle > e.config().quarantine {
                // This process stood still for longer than a lease (stopped, starved):
                // it may have been declared dead and replaced by another process with
                // its id that voted meanwhile. Grant nothing for a quarantine.
                e.conflict(now, false);
            }
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
                self.drain_election();
            }
        }
    }

    /// Sends the election's messages and applies its events. Returns whether any event
    /// came out (it may change what this node publishes).
    pub(super) fn drain_election(&mut self) -> bool {
        let Some(e) = self.election.as_mut() else {
            return false;
        };
        let mut out = Vec::new();
        while let Some(m) = e.poll_message() {
            out.push(m);
        }
        let mut events = Vec::new();
        while let Some(ev) = e.poll_event() {
            events.push(ev);
        }
        for (to, msg) in out {
            self.send_election(to, msg);
        }
        let any = !events.is_empty();
        for ev in events {
            match &ev {
                ElectionEvent::Elected { group, term, .. } => {
                    self.groups.set_leading(group, Some(*term));
                    self.views_changed = true;
                }
                ElectionEvent::SteppedDown { group, reason, .. } => {
                    if *reason == crate::election::StepDown::LeaseExpired {
                        self.stats.leases_expired += 1;
                    }
                    self.groups.set_leading(group, None);
                    self.lower_since.retain(|(g, _), _| g != group);
                    self.views_changed = true;
                }
                ElectionEvent::Renewed { group, .. } => self.renewed.push(group.clone()),
                _ => {}
            }
            self.emit(Event::Leadership(ev));
        }
        any
    }

    /// Tells each campaign the candidates ranked below it in the gossiped group state.
    pub(super) fn refresh_ranks(&mut self) {
        let Some(e) = self.election.as_mut() else {
            return;
        };
        let running: Vec<String> = e.campaigns().map(str::to_owned).collect();
        for g in running {
            e.set_lower(&g, self.groups.lower_candidates(&g));
        }
    }

    /// With preemption on, a leader hands `group` over to a lower-id candidate that
    /// has been live and running for `preempt_after`: it resigns (releasing its
    /// voters, who tell the waiting candidates) and runs again behind it.
    pub(super) fn check_preemption(&mut self, now: Instant, group: &str) {
        let Some(hold) = self
            .election
            .as_ref()
            .and_then(|e| e.config().preempt_after)
        else {
            return;
        };
        let me = self.id();
        let lower: Vec<NodeId> = self
            .groups
            .candidates(group)
            .into_iter()
            .filter(|id| *id < me)
            .collect();
        self.lower_since
            .retain(|(g, id), _| g != group || lower.contains(id));
        let mut stable = false;
        for id in lower {
            let since = *self
                .lower_since
                .entry((group.to_owned(), id))
                .or_insert(now);
            stable |= now.duration_since(since) >= hold;
        }
        if stable && self.leadership(group).is_some() {
            tracing::info!(group, "handing leadership over to a lower id");
            self.resign(now, group);
            if let Err(e) = self.campaign(now, group) {
                tracing::warn!(group, error = %e, "not running again after handing over");
            }
        }
    }

    /// The deliberately unsafe `GossipQuorum` variant (simulation only): the voters are
    /// the members this node sees live, so each side of a partition finds a quorum.
    pub(super) fn unsafe_gossip_quorum(&mut self) {
        let Some(e) = self.election.as_mut() else {
            return;
        };
        if e.config().unsafe_variant != Some(UnsafeVariant::GossipQuorum) {
            return;
        }
        let mut live: Vec<NodeId> = self
            .swim
            .members()
            .filter(|m| m.is_live())
            .map(|m| m.id)
            .collect();
        live.sort_unstable();
        if live != e.config().voters {
            e.set_voters_unsafe(live);
        }
    }

    /// Whether the deliberately unsafe `GossipTerms` variant runs (simulation only).
    pub(super) fn gossip_terms_unsafe(&self) -> bool {
        self.election
            .as_ref()
            .is_some_and(|e| e.config().unsafe_variant == Some(UnsafeVariant::GossipTerms))
    }
}
