//! One node's election role: a voter (when its id is in the voter set) and any number
//! of candidacies, one per group it runs for. Sans-IO like the rest of the core:
//! messages in through [`Election::handle`], out through [`Election::poll_message`];
//! leadership changes through [`Election::poll_event`]; one next deadline.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::candidate::{Action, Candidacy, StepDown};
use super::query::{Confirmed, QueryError, QueryTally};
use super::voter::{Instance, Process, Term, Verdict, Voter};
use crate::config::{ConfigError, ElectionConfig, Validated};
pub use crate::wire::election::{ElectionMsg, WireVerdict};
use crate::wire::NodeId;
pub use crate::wire::MAX_GROUP_NAME;

/// A leadership change on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElectionEvent {
    /// This node leads `group` with fencing token `term` until `deadline`.
    Elected {
        /// The group.
        group: String,
        /// The term.
        term: Term,
        /// This node's clock.
        deadline: Instant,
    },
    /// The leadership was renewed.
    Renewed {
        /// The group.
        group: String,
        /// The term.
        term: Term,
        /// The new deadline.
        deadline: Instant,
    },
    /// This node stopped leading `group`.
    SteppedDown {
        /// The group.
        group: String,
        /// The term that ended.
        term: Term,
        /// Why.
        reason: StepDown,
    },
    /// As a voter this node granted a new highest term: persist it if durable.
    TermRaised {
        /// The group.
        group: String,
        /// The term.
        term: Term,
    },
    /// The answer to a confirmed-leader query: the leader a quorum of voters confirmed.
    Confirmed {
        /// The query.
        query: u32,
        /// The group.
        group: String,
        /// The leader and its term, `None` when nobody leads, or why no answer.
        result: Result<Confirmed, QueryError>,
    },
}

/// Why a campaign could not start. Nothing changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CampaignError {
    /// The group name is empty or longer than [`crate::MAX_GROUP_NAME`].
    #[error("invalid group name (1..={MAX_GROUP_NAME} bytes)")]
    BadName,
    /// This node already runs for the group.
    #[error("already running for group {0:?}")]
    AlreadyRunning(String),
    /// This node already runs for `max_groups` groups.
    #[error("already running for the maximum number of groups")]
    TooManyGroups,
    /// The cluster config names no voters: elections are off.
    #[error("elections are off: the cluster config names no voters")]
    Disabled,
    /// Publishing the candidacy would exceed `Config::max_group_state_bytes`.
    #[error("group state too large to publish the candidacy")]
    StateTooLarge,
    /// The node has left the cluster.
    #[error("the node has left the cluster")]
    Left,
}

/// One node's election state.
#[derive(Debug)]
pub struct Election {
    me: NodeId,
    instance: Instance,
    cfg: ElectionConfig,
    voter: Option<Voter>,
    campaigns: BTreeMap<String, Candidacy>,
    /// Messages to send: to a process (instance 0: whichever process has the id).
    out: VecDeque<(Process, ElectionMsg)>,
    events: VecDeque<ElectionEvent>,
    /// Pending leader queries: group, answers, deadline.
    queries: BTreeMap<u32, (String, QueryTally, Instant)>,
    next_query: u32,
    /// Late renewal rounds of campaigns that ended (the running ones count their own).
    renewals_late_ended: u64,
}

impl Election {
    /// Node `me`'s election role in the process life `instance` (drawn at start, never
    /// 0), started at `now` (a voter starts in quarantine). Refuses settings that name
    /// no voters (elections off).
    pub fn new(
        me: NodeId,
        instance: Instance,
        cfg: Validated<ElectionConfig>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let cfg = cfg.into_inner();
        if !cfg.enabled() {
            return Err(ConfigError::Invalid {
                field: "voters",
                reason: "an election needs at least one voter".into(),
            });
        }
        let quarantine = super::lease::quarantine_for(cfg.quarantine, cfg.unsafe_variant);
        let voter = cfg.voters.contains(&me).then(|| {
            Voter::new(now, quarantine, cfg.timing.lease * 2, cfg.max_groups)
                .with_variant(cfg.unsafe_variant)
                .with_grace(cfg.timing.rank_backoff)
        });
        Ok(Election {
            me,
            instance,
            voter,
            cfg,
            campaigns: BTreeMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            queries: BTreeMap::new(),
            next_query: 0,
            renewals_late_ended: 0,
        })
    }

    /// Replaces the voter set (the unsafe `GossipQuorum` variant only, which takes the
    /// members it sees live as the voters; the voter set is otherwise fixed). A node
    /// votes only if it was a voter from the start.
    #[doc(hidden)]
    pub fn set_voters_unsafe(&mut self, voters: Vec<NodeId>) {
        for c in self.campaigns.values_mut() {
            c.set_voters(voters.len());
        }
        self.cfg.voters = voters;
    }

    /// The voter role, if this node votes.
    pub fn voter(&self) -> Option<&Voter> {
        self.voter.as_ref()
    }

    /// This process: the node id and its instance.
    pub fn process(&self) -> Process {
        Process::new(self.me, self.instance)
    }

    /// Raises a group's highest term from this voter's persisted state (a restart).
    pub fn learn_term(&mut self, group: &str, term: Term) {
        if let Some(v) = self.voter.as_mut() {
            v.learn(group, term);
        }
        if let Some(c) = self.campaigns.get_mut(group) {
            c.observe_term(term);
        }
    }

    /// A member gossips that it leads `group` at `term`. A hint only: no quorum backs
    /// it, so nothing here changes (a member could claim any term, the largest
    /// included, and would otherwise disable the group). Under the unsafe
    /// `gossip-terms` variant it raises the voter's and candidacy's terms, wrapping.
    pub fn observe_gossip(&mut self, group: &str, term: Term) {
        if self.cfg.unsafe_variant != Some(super::lease::UnsafeVariant::GossipTerms) {
            return;
        }
        if let Some(v) = self.voter.as_mut() {
            v.learn(group, term);
        }
        if let Some(c) = self.campaigns.get_mut(group) {
            c.observe_gossiped_term_unsafe(term);
        }
    }

    /// Another live process claims this node's id: as a voter, grant nothing for a
    /// quarantine (two processes voting under one id would be two votes), or never
    /// again when `retire` (this process is the later of the two).
    pub fn conflict(&mut self, now: Instant, retire: bool) {
        if let Some(v) = self.voter.as_mut() {
            v.conflict(now, retire);
        }
    }

    /// Starts running for `group` with `rank` among the live candidates (0 = lowest id).
    pub fn campaign(
        &mut self,
        now: Instant,
        group: &str,
        rank: u32,
        known_term: Term,
    ) -> Result<(), CampaignError> {
        if group.is_empty() || group.len() > MAX_GROUP_NAME {
            return Err(CampaignError::BadName);
        }
        if self.campaigns.contains_key(group) {
            return Err(CampaignError::AlreadyRunning(group.to_owned()));
        }
        if self.campaigns.len() >= self.cfg.max_groups {
            return Err(CampaignError::TooManyGroups);
        }
        let voters = self.cfg.voters.len();
        let timing = self.cfg.timing.for_variant(self.cfg.unsafe_variant);
        let highest_first =
            self.cfg.unsafe_variant == Some(super::lease::UnsafeVariant::HighestFirst);
        let c = Candidacy::new(now, timing, voters, rank, known_term)
            .with_id(self.me)
            .highest_first_unsafe(highest_first);
        self.campaigns.insert(group.to_owned(), c);
        self.handle_timeout(now);
        Ok(())
    }

    /// Stops running for `group`; a leader steps down and releases at once.
    pub fn resign(&mut self, now: Instant, group: &str) {
        if let Some(c) = self.campaigns.remove(group) {
            self.renewals_late_ended += c.renewals_late();
            let actions = c.resign();
            self.act(now, group, actions);
        }
    }

    /// Updates the live candidates for `group` with a lower id than this node's (its
    /// rank is their number, less those a voter since said are gone).
    pub fn set_lower(&mut self, group: &str, lower: Vec<NodeId>) {
        if let Some(c) = self.campaigns.get_mut(group) {
            c.set_lower(lower);
        }
    }

    /// Updates this node's rank among the live candidates for `group`.
    pub fn set_rank(&mut self, group: &str, rank: u32) {
        if let Some(c) = self.campaigns.get_mut(group) {
            c.set_rank(rank);
        }
    }

    /// Renewal rounds of this node's leaderships that a quorum had not granted within
    /// half a round timeout, since it started.
    pub fn renewals_late(&self) -> u64 {
        let running: u64 = self.campaigns.values().map(Candidacy::renewals_late).sum();
        self.renewals_late_ended + running
    }

    /// The groups this node runs for.
    pub fn campaigns(&self) -> impl Iterator<Item = &str> {
        self.campaigns.keys().map(String::as_str)
    }

    /// Whether this node runs for `group`.
    pub fn is_running(&self, group: &str) -> bool {
        self.campaigns.contains_key(group)
    }

    /// The settings in force.
    pub fn config(&self) -> &ElectionConfig {
        &self.cfg
    }

    /// Asks every voter who holds `group`; the answer comes as
    /// [`ElectionEvent::Confirmed`] with the returned query number, within
    /// `2 * round_timeout`.
    pub fn query(&mut self, now: Instant, group: &str) -> Result<u32, QueryError> {
        if self.queries.len() >= self.cfg.max_groups {
            return Err(QueryError::Busy);
        }
        self.next_query = self.next_query.wrapping_add(1);
        let id = self.next_query;
        let deadline = now + self.cfg.timing.round_timeout * 2;
        let tally = QueryTally::new(self.cfg.voters.len());
        self.queries.insert(id, (group.to_owned(), tally, deadline));
        for v in self.cfg.voters.clone() {
            let msg = ElectionMsg::Query {
                group: group.to_owned(),
                id,
            };
            self.send(now, Process::new(v, 0), msg);
        }
        Ok(id)
    }

    fn on_holder(&mut self, from: NodeId, id: u32, holder: Option<(NodeId, Term)>) {
        let Some((group, tally, _)) = self.queries.get_mut(&id) else {
            return;
        };
        if let Some(result) = tally.record(from, holder) {
            let group = group.clone();
            self.queries.remove(&id);
            self.events.push_back(ElectionEvent::Confirmed {
                query: id,
                group,
                result: Ok(result),
            });
        }
    }

    fn expire_queries(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .queries
            .iter()
            .filter(|(_, q)| q.2 <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some((group, _, _)) = self.queries.remove(&id) {
                self.events.push_back(ElectionEvent::Confirmed {
                    query: id,
                    group,
                    result: Err(QueryError::NoQuorum),
                });
            }
        }
    }

    /// The leadership this node holds for `group`: `(term, deadline)`.
    pub fn leadership(&self, group: &str) -> Option<(Term, Instant)> {
        self.campaigns.get(group)?.leadership()
    }

    /// A message from process `from` (its id authenticated by the transport; the
    /// caller has dropped messages addressed to another process with this node's id).
    pub fn handle(&mut self, now: Instant, from: Process, msg: ElectionMsg) {
        match msg {
            ElectionMsg::Request {
                group,
                term,
                round,
                lease,
            } => self.on_request(now, from, group, term, round, lease),
            ElectionMsg::Answer {
                group,
                round,
                term,
                verdict,
            } => self.on_answer(now, from, group, round, term, verdict),
            ElectionMsg::Release {
                group,
                term,
                vacate,
            } => self.on_release(now, from, group, term, vacate),
            ElectionMsg::Query { group, id } => {
                let Some(v) = self.voter.as_ref().filter(|v| !v.quarantined(now)) else {
                    return;
                };
                let holder = v.promise(now, &group).map(|p| (p.holder.id, p.term));
                self.send(now, from, ElectionMsg::Holder { group, id, holder });
            }
            ElectionMsg::Holder { id, holder, .. } => {
                if self.cfg.voters.contains(&from.id) {
                    self.on_holder(from.id, id, holder);
                }
            }
            ElectionMsg::Vacant {
                group,
                resigned,
                waiting,
            } => self.on_vacant(now, from, group, resigned, waiting),
        }
    }

    fn on_answer(
        &mut self,
        now: Instant,
        from: Process,
        group: String,
        round: u32,
        term: Term,
        verdict: WireVerdict,
    ) {
        if !self.cfg.voters.contains(&from.id) {
            return;
        }
        let granted = matches!(verdict, WireVerdict::Granted(_));
        let stray = self
            .campaigns
            .get(&group)
            .map_or(true, |c| c.stray_grant(round, term));
        if granted && stray {
            // A grant for a round given up (or a campaign ended): free the voter now
            // rather than leave it promised to nobody for a lease.
            let msg = ElectionMsg::Release {
                group,
                term,
                vacate: false,
            };
            self.send(now, from, msg);
            return;
        }
        if let Some(c) = self.campaigns.get_mut(&group) {
            let actions = c.on_verdict(now, from.id, round, verdict.into());
            self.act(now, &group, actions);
        }
    }

    /// A resignation frees the group for every candidate turned away; grants released
    /// after a lost round only for lower ids (who go first), so the candidates that
    /// split the vote do not all retry at once.
    fn on_release(&mut self, now: Instant, from: Process, group: String, term: Term, vacate: bool) {
        let Some(v) = self.voter.as_mut() else {
            return;
        };
        let (told, kept): (Vec<Process>, Vec<Process>) = v
            .release(now, &group, from, term)
            .unwrap_or_default()
            .into_iter()
            .partition(|w| vacate || w.id < from.id);
        // Those not told still wait for this voter: keep them on its list, or the next
        // release would forget them and they would sit out a lease.
        let waiting: Vec<NodeId> = told.iter().chain(&kept).map(|w| w.id).collect();
        v.keep_waiting(&group, kept);
        self.tell_vacant(now, &group, Some(from.id), told, waiting);
    }

    /// Tells `told` that `group` is vacant (`holder` resigned or its promise ran
    /// out), naming every candidate still waiting.
    fn tell_vacant(
        &mut self,
        now: Instant,
        group: &str,
        holder: Option<NodeId>,
        told: Vec<Process>,
        waiting: Vec<NodeId>,
    ) {
        for w in told {
            let msg = ElectionMsg::Vacant {
                group: group.to_owned(),
                resigned: holder,
                waiting: waiting.clone(),
            };
            self.send(now, w, msg);
        }
    }

    fn on_vacant(
        &mut self,
        now: Instant,
        from: Process,
        group: String,
        resigned: Option<NodeId>,
        waiting: Vec<NodeId>,
    ) {
        if !self.cfg.voters.contains(&from.id) {
            return;
        }
        self.own_voters_term(&group);
        if let Some(c) = self.campaigns.get_mut(&group) {
            // The resigner (or the holder whose promise ran out) no longer counts in
            // the rank, once, however many voters say so; the candidates the voter
            // saw waiting do, even if this node's view does not have them yet.
            if let Some(id) = resigned {
                c.gone(now, id);
            }
            c.waiting(now, &waiting);
            let rank = c.rank();
            let actions = c.on_vacant(now, from.id, resigned, rank);
            self.act(now, &group, actions);
            self.handle_timeout(now);
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        from: Process,
        group: String,
        term: Term,
        round: u32,
        lease: Duration,
    ) {
        let Some(v) = self.voter.as_mut() else {
            return;
        };
        if group.is_empty() || group.len() > MAX_GROUP_NAME {
            return;
        }
        let verdict = match super::candidate::is_renewal(round) {
            true => v.renew(now, &group, from, term, lease),
            false => v.request(now, &group, from, term, lease),
        };
        if let Verdict::Granted { raised: true, .. } = verdict {
            self.events.push_back(ElectionEvent::TermRaised {
                group: group.clone(),
                term,
            });
        }
        let answer = ElectionMsg::Answer {
            group,
            round,
            term,
            verdict: verdict.into(),
        };
        self.send(now, from, answer);
    }

    /// Sends `msg` to `to`, delivering locally when `to` is this process (or this
    /// node's id with no process named).
    fn send(&mut self, now: Instant, to: Process, msg: ElectionMsg) {
        let me = self.process();
        if to.id == self.me && (to.instance == 0 || to == me) {
            self.handle(now, me, msg);
        } else {
            self.out.push_back((to, msg));
        }
    }

    fn act(&mut self, now: Instant, group: &str, actions: Vec<Action>) {
        for a in actions {
            self.act_one(now, group, a);
        }
    }

    fn act_one(&mut self, now: Instant, group: &str, a: Action) {
        let g = group.to_owned();
        let lease = self.cfg.timing.lease;
        let request = |term, round| ElectionMsg::Request {
            group: group.to_owned(),
            term,
            round,
            lease,
        };
        let release = |term, vacate| ElectionMsg::Release {
            group: group.to_owned(),
            term,
            vacate,
        };
        match a {
            Action::Request { term, round } => self.send_to_voters(now, request(term, round)),
            Action::RequestOne { voter, term, round } => {
                self.send(now, Process::new(voter, 0), request(term, round))
            }
            Action::Release { voter, term } => {
                self.send(now, Process::new(voter, 0), release(term, false))
            }
            Action::ReleaseRound { term } => self.send_to_voters(now, release(term, false)),
            Action::ReleaseAll { term } => self.send_to_voters(now, release(term, true)),
            Action::Elected { term, deadline } => self.events.push_back(ElectionEvent::Elected {
                group: g,
                term,
                deadline,
            }),
            Action::Renewed { term, deadline } => self.events.push_back(ElectionEvent::Renewed {
                group: g,
                term,
                deadline,
            }),
            Action::SteppedDown { term, reason } => {
                self.events.push_back(ElectionEvent::SteppedDown {
                    group: g,
                    term,
                    reason,
                })
            }
        }
    }

    fn send_to_voters(&mut self, now: Instant, msg: ElectionMsg) {
        for v in self.cfg.voters.clone() {
            self.send(now, Process::new(v, 0), msg.clone());
        }
    }

    /// Runs the candidacy timers and query deadlines due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_queries(now);
        let lapsed = match self.voter.as_mut() {
            Some(v) if v.next_lapse().is_some_and(|t| t <= now) => v.lapsed(now),
            _ => Vec::new(),
        };
        for (group, holder, waiters) in lapsed {
            let waiting = waiters.iter().map(|w| w.id).collect();
            self.tell_vacant(now, &group, holder, waiters, waiting);
        }
        let due: Vec<String> = self
            .campaigns
            .iter()
            .filter(|(_, c)| c.next_timer() <= now)
            .map(|(g, _)| g.clone())
            .collect();
        for g in due {
            // One span per election round or renewal step of a group, for tracing.
            let _round = tracing::debug_span!("election_round", group = %g).entered();
            self.own_voters_term(&g);
            if let Some(c) = self.campaigns.get_mut(&g) {
                let actions = c.on_timer(now);
                self.act(now, &g, actions);
            }
        }
    }

    /// Raises `group`'s next term above the highest this node's own voter granted: a
    /// round below it is refused by the very voter that sits beside the candidate,
    /// which then backs off as if another candidate had outbid it.
    fn own_voters_term(&mut self, group: &str) {
        let (Some(v), Some(c)) = (self.voter.as_ref(), self.campaigns.get_mut(group)) else {
            return;
        };
        c.observe_term(v.highest_term(group));
    }

    /// The next candidacy or query deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let queries = self.queries.values().map(|q| q.2);
        let lapse = self.voter.as_ref().and_then(Voter::next_lapse);
        self.campaigns
            .values()
            .map(Candidacy::next_timer)
            .chain(queries)
            .chain(lapse)
            .min()
    }

    /// The next message to send, and the process it is for (instance 0: whichever
    /// process runs that node id).
    pub fn poll_message(&mut self) -> Option<(Process, ElectionMsg)> {
        self.out.pop_front()
    }

    /// The next leadership change.
    pub fn poll_event(&mut self) -> Option<ElectionEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
