//! The engine: every sans-IO protocol part of a node behind one input/output interface.
//! Drivers (the tokio runtime, the simulator) talk to this type only.
//!
//! It composes three layers fed by the same frames and timers:
//! - membership ([`crate::swim`]): who is in the cluster, alive or not;
//! - groups ([`crate::groups`]): this node's published state (metadata, groups joined,
//!   candidacies, leaderships) travels as its SWIM metadata, so every node knows every
//!   group, and a member that fails leaves its groups;
//! - election ([`crate::election`]): quorum leases, with each candidacy ranked among
//!   the live candidates this node sees in the gossiped group state.
//!
//! The engine is the only router between them (as quinn-proto's `Endpoint` routes
//! datagrams to its `Connection`s): it decodes each frame once and hands the message
//! to the layer it is for, and it sends the election's messages itself (`route.rs`);
//! it moves what one layer reports to the others (`Engine::pump`), and runs the
//! election's side of it (`leadership.rs`). The layers never call each other.

mod barrier;
mod leadership;
mod route;

pub use barrier::BarrierError;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::{Config, ConfigError};
use crate::election::{
    CampaignError, Election, ElectionEvent, Instance, Process, QueryError, Term,
};
use crate::groups::{check_name, GroupError, GroupEvent, Groups, LeaderChange, NodeState};
use crate::stats::{Gauges, Metric, Stats};
use crate::swim::{Member, MemberEvent, MetadataError, Swim, Transmit};
use crate::wire::{self, NodeId};

/// Something the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A membership change.
    Member(MemberEvent),
    /// A group change.
    Group(GroupEvent),
    /// A group's leader changed in this node's gossiped view (every node sees these).
    Leader(LeaderChange),
    /// This node's own leadership changed (elected, renewed, stepped down), as a
    /// voter it granted a new highest term (persist it when durable), or a leader
    /// query was answered.
    Leadership(ElectionEvent),
}

/// One node's protocol state machine.
#[derive(Debug)]
pub struct Engine {
    swim: Swim,
    groups: Groups,
    election: Option<Election>,
    /// Digest of each member's application metadata (members with non-empty metadata
    /// only), to report metadata changes and not group changes as `Updated`.
    user_digests: HashMap<NodeId, u64>,
    events: VecDeque<Event>,
    published: Vec<u8>,
    /// The own-state version `published` was encoded from.
    published_version: u64,
    shared_version: u64,
    views_changed: bool,
    max_events: usize,
    /// Bumped whenever some member's group state changed in this node's view.
    group_version: u64,
    /// Groups whose leadership was renewed in this pump (preemption is checked then).
    renewed: Vec<String>,
    /// When this node first saw each lower-id candidate of a group it leads.
    lower_since: HashMap<(String, NodeId), Instant>,
    /// This process life's instance, drawn at start (never 0).
    instance: Instance,
    /// Where each process that sent an election message was (answers go there, not
    /// to whatever address membership holds for its id: two processes may share it).
    routes: HashMap<Process, SocketAddr>,
    /// The last address of every voter ever seen, kept after membership forgets it:
    /// candidates reach voters at once when a partition heals.
    voter_addrs: HashMap<NodeId, SocketAddr>,
    /// Frames the engine made (election messages), in order: every one of them was
    /// made before any frame membership still holds.
    transmits: VecDeque<Transmit>,
    /// The layers' state peers sent with anti-entropy, for the group registry.
    shared_in: VecDeque<Vec<u8>>,
    /// What the engine itself counted (frames in, refused frames, election frames out,
    /// misrouted election messages, dropped events); [`Engine::stats`] adds the
    /// layers' counts.
    stats: Stats,
    /// The lowest term a campaign of this process starts above (see
    /// [`Engine::set_term_floor`]).
    term_floor: Term,
    /// When this process last handled an input (a frame or a timer).
    last_input: Instant,
    /// Read-your-writes barriers waiting for a quorum of voters.
    barriers: barrier::Barriers,
}

/// The term floor for a wall-clock reading of `unix_ms` milliseconds since the Unix
/// epoch: 1024 terms per millisecond, so that terms issued since an earlier floor
/// (one per election round) stay below a floor taken any later, and still 2^13 years
/// away from the largest term.
pub fn term_floor_at(unix_ms: u64) -> Term {
    unix_ms.saturating_mul(1024)
}

/// A process's instance, from the seed its engine was started with: distinct for
/// every start, never 0, and independent of the protocol's random stream.
fn instance_of(seed: u64) -> Instance {
    // SplitMix64's finaliser.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

impl Engine {
    /// A node `id` advertising `addr` with metadata `meta`; `seed` seeds every random
    /// choice it makes. Refuses an invalid `cfg` or metadata over its limit. Takes part
    /// in elections when `cfg.election` names voters.
    pub fn new(
        id: NodeId,
        addr: SocketAddr,
        meta: Vec<u8>,
        cfg: Config,
        seed: u64,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let cfg = cfg.validated()?;
        Config::check_metadata(meta.len(), cfg.max_metadata_bytes, "max_metadata_bytes")?;
        let groups = Groups::new(id, meta, cfg.max_groups, cfg.max_group_state_bytes);
        let published = groups.own().encode();
        let instance = instance_of(seed);
        let election = match cfg.election.enabled() {
            true => Some(Election::new(id, instance, cfg.election(), now)?),
            false => None,
        };
        let max_events = cfg.max_events;
        Ok(Engine {
            swim: Swim::new(id, addr, published.clone(), cfg, seed, now)?,
            groups,
            election,
            user_digests: HashMap::new(),
            events: VecDeque::new(),
            published,
            published_version: 0,
            shared_version: 0,
            views_changed: false,
            max_events,
            renewed: Vec::new(),
            group_version: 0,
            lower_since: HashMap::new(),
            instance,
            routes: HashMap::new(),
            voter_addrs: HashMap::new(),
            transmits: VecDeque::new(),
            shared_in: VecDeque::new(),
            stats: Stats::default(),
            term_floor: 0,
            last_input: now,
            barriers: barrier::Barriers::default(),
        })
    }

    /// Every campaign this process starts asks a term above `floor`. The driver
    /// passes a reading of a clock that survives the loss of every disk (the wall
    /// clock: [`crate::term_floor_at`] of the Unix time in
    /// milliseconds): should every voter lose its persisted terms at once, the first
    /// leadership after the restart still gets a fencing token above every earlier
    /// one, as long as wall clocks do not go back. Terms then start high, and rise by
    /// one per round from there.
    pub fn set_term_floor(&mut self, floor: Term) {
        self.term_floor = floor;
    }

    /// Pretends to lead `group` at `term` in this node's published state, without any
    /// voter's grant: a lying member, for the simulator and the real-process tests
    /// only (through `Node::claim_leadership_unsafe`).
    #[doc(hidden)]
    pub fn claim_leadership_unsafe(&mut self, now: Instant, group: &str, term: Term) {
        self.groups.set_leading(group, Some(term));
        self.views_changed = true;
        self.pump(now);
    }

    /// This process life's instance (drawn at start from the seed; never 0).
    /// (Inner layer: for the simulator and tests, with the `internals` feature.)
    #[doc(hidden)]
    pub fn instance(&self) -> Instance {
        self.instance
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.swim.id()
    }

    /// The membership layer (read-only). Its members' metadata is the raw node state;
    /// [`Engine::members`] gives the application's metadata.
    /// (Inner layer: for the simulator and tests, with the `internals` feature.)
    #[doc(hidden)]
    pub fn swim(&self) -> &Swim {
        &self.swim
    }

    /// The group layer (read-only).
    /// (Inner layer: for the simulator and tests, with the `internals` feature.)
    #[doc(hidden)]
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// Changes whenever the group state of some member (groups joined, candidacies,
    /// leaderships) changed in this node's view: a cheap test for rebuilding a
    /// snapshot of it.
    pub fn group_version(&self) -> u64 {
        self.group_version
    }

    /// The election layer, when elections are on.
    /// (Inner layer: for the simulator and tests, with the `internals` feature.)
    #[doc(hidden)]
    pub fn election(&self) -> Option<&Election> {
        self.election.as_ref()
    }

    /// Every member in this node's table, with its application metadata.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.swim.members().map(user_member)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let own = &self.stats;
        let mut s = self.swim.stats();
        s.malformed += own.malformed;
        s.foreign += own.foreign;
        s.impersonation += own.impersonation;
        s.frames_in += own.frames_in;
        s.frames_out += own.frames_out;
        s.bytes_out += own.bytes_out;
        s.encode_failed += own.encode_failed;
        s.events_dropped += own.events_dropped;
        s.election_misrouted += own.election_misrouted;
        s.bytes_in += own.bytes_in;
        s.leader_changes += own.leader_changes;
        s.leases_expired += own.leases_expired;
        if let Some(e) = &self.election {
            s.renewals_late += e.renewals_late();
        }
        s
    }

    /// Levels of the engine's state: members by state, queues, groups, campaigns and
    /// leaderships. Read now, in time linear in the member table and the groups.
    pub fn gauges(&self) -> Gauges {
        let mut g = Gauges::default();
        for m in self.swim.members() {
            g.members += 1;
            match m.state {
                wire::State::Alive => g.members_alive += 1,
                wire::State::Suspect => g.members_suspect += 1,
                wire::State::Dead => g.members_dead += 1,
                wire::State::Left => g.members_left += 1,
            }
        }
        g.health_score = u64::from(self.swim.health_score());
        g.broadcasts_queued = self.swim.broadcasts_queued() as u64;
        g.groups = self.groups.groups().len() as u64;
        g.groups_led = self.groups.leaders().len() as u64;
        if let Some(e) = &self.election {
            for group in e.campaigns() {
                g.campaigns += 1;
                g.leaderships += u64::from(e.leadership(group).is_some());
            }
        }
        g
    }

    /// Every counter ([`Engine::stats`]) and gauge ([`Engine::gauges`]), by name: what
    /// an exporter lists.
    pub fn metrics(&self) -> impl Iterator<Item = Metric> {
        self.stats().metrics().chain(self.gauges().metrics())
    }

    /// Joins the cluster through `seeds`.
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.swim.join(now, seeds);
        self.pump(now);
    }

    /// Replaces the seeds the node joins through (while it has not joined) and retries
    /// when alone, without leaving or rejoining.
    pub fn set_seeds(&mut self, now: Instant, seeds: &[SocketAddr]) {
        self.swim.set_seeds(seeds);
        self.pump(now);
    }

    /// Leaves gracefully: resigns every candidacy (a leader steps down and releases its
    /// voters first), then announces the departure. Drain transmits before stopping.
    pub fn leave(&mut self, now: Instant) {
        let running: Vec<String> = self
            .election
            .as_ref()
            .map(|e| e.campaigns().map(str::to_owned).collect())
            .unwrap_or_default();
        for g in running {
            self.resign(now, &g);
        }
        self.swim.leave(now);
        self.pump(now);
    }

    /// Publishes new metadata.
    pub fn set_metadata(&mut self, now: Instant, meta: Vec<u8>) -> Result<(), MetadataError> {
        let limit = self.swim.config().max_metadata_bytes;
        if self.swim.is_leaving() {
            return Err(MetadataError::Left);
        }
        if meta.len() > limit {
            return Err(MetadataError::TooLarge {
                len: meta.len(),
                limit,
            });
        }
        self.groups.set_user(meta);
        self.publish(now);
        Ok(())
    }

    // ---- groups ----

    /// Creates `group` (tooz `create_group`).
    pub fn create_group(&mut self, now: Instant, group: &str) -> Result<(), GroupError> {
        self.group_op(now, |g| g.create(group))
    }

    /// Deletes `group`; refused while it has members (tooz `delete_group`).
    pub fn delete_group(&mut self, now: Instant, group: &str) -> Result<(), GroupError> {
        self.group_op(now, |g| g.delete(group))
    }

    /// Joins `group` with `capabilities` (tooz `join_group`).
    pub fn join_group(
        &mut self,
        now: Instant,
        group: &str,
        caps: Vec<u8>,
    ) -> Result<(), GroupError> {
        self.group_op(now, |g| g.join(group, caps))
    }

    /// Leaves `group` (tooz `leave_group`).
    pub fn leave_group(&mut self, now: Instant, group: &str) -> Result<(), GroupError> {
        self.group_op(now, |g| g.leave(group))
    }

    /// Replaces this node's capabilities in `group` (tooz `update_capabilities`).
    pub fn update_capabilities(
        &mut self,
        now: Instant,
        group: &str,
        caps: Vec<u8>,
    ) -> Result<(), GroupError> {
        self.group_op(now, |g| g.update(group, caps))
    }

    fn group_op(
        &mut self,
        now: Instant,
        op: impl FnOnce(&mut Groups) -> Result<Vec<GroupEvent>, GroupError>,
    ) -> Result<(), GroupError> {
        if self.swim.is_leaving() {
            return Err(GroupError::Left);
        }
        let events = op(&mut self.groups)?;
        for e in events {
            self.emit(Event::Group(e));
        }
        self.views_changed = true;
        self.pump(now);
        Ok(())
    }

    /// Every existing group.
    pub fn group_list(&self) -> Vec<String> {
        self.groups.groups()
    }

    /// The members of `group` with their capabilities (tooz `get_members` and
    /// `get_member_capabilities` for all at once).
    pub fn group_members(&self, group: &str) -> Result<Vec<(NodeId, Vec<u8>)>, GroupError> {
        self.groups.members(group)
    }

    /// One member's capabilities in `group` (tooz `get_member_capabilities`).
    pub fn member_capabilities(&self, group: &str, member: NodeId) -> Result<Vec<u8>, GroupError> {
        self.groups
            .members(group)?
            .into_iter()
            .find(|(id, _)| *id == member)
            .map(|(_, c)| c)
            .ok_or_else(|| GroupError::NotJoined(group.to_owned()))
    }

    // ---- election ----

    /// Runs for leadership of `group`. Any group name works, created or not (as
    /// kazoo's election path or an etcd election key).
    pub fn campaign(&mut self, now: Instant, group: &str) -> Result<(), CampaignError> {
        if self.swim.is_leaving() {
            return Err(CampaignError::Left);
        }
        let Some(election) = self.election.as_ref() else {
            return Err(CampaignError::Disabled);
        };
        check_name(group).map_err(|_| CampaignError::BadName)?;
        if election.is_running(group) {
            return Err(CampaignError::AlreadyRunning(group.to_owned()));
        }
        self.groups.set_running(group, true).map_err(|e| match e {
            GroupError::TooManyGroups => CampaignError::TooManyGroups,
            _ => CampaignError::StateTooLarge,
        })?;
        // A gossiped term is a hint no quorum backs: start from nothing, the voters'
        // answers tell the term to ask (except under the unsafe `gossip-terms`).
        let known: Term = match self.gossip_terms_unsafe() {
            true => self.groups.leader(group).map_or(0, |(_, t)| t),
            false => self.term_floor,
        };
        let rank = self.groups.rank(group);
        let result = match self.election.as_mut() {
            Some(e) => e.campaign(now, group, rank, known),
            None => Err(CampaignError::Disabled),
        };
        if result.is_err() {
            let _ = self.groups.set_running(group, false);
        }
        self.views_changed = true;
        self.pump(now);
        result
    }

    /// Stops running for `group`; a leader steps down and releases its voters at once,
    /// so the next candidate takes over within a round trip. No-op when not running.
    pub fn resign(&mut self, now: Instant, group: &str) {
        if let Some(e) = self.election.as_mut() {
            e.resign(now, group);
        }
        let _ = self.groups.set_running(group, false);
        self.views_changed = true;
        self.pump(now);
    }

    /// The leadership this node holds for `group`: its term (fencing token) and the
    /// deadline (this node's clock) before which it is the only leader.
    pub fn leadership(&self, group: &str) -> Option<(Term, Instant)> {
        self.election.as_ref()?.leadership(group)
    }

    /// The leader of `group` as gossip says (fast, may lag a change by a gossip
    /// round): the live member announcing the highest term.
    pub fn leader(&self, group: &str) -> Option<(NodeId, Term)> {
        self.groups.leader(group)
    }

    /// Asks the voters who leads `group` (any node may ask, member of the group or
    /// not). The answer comes as [`Event::Leadership`] with
    /// [`ElectionEvent::Confirmed`] carrying the returned query number, within two
    /// round timeouts.
    pub fn query_leader(&mut self, now: Instant, group: &str) -> Result<u32, QueryError> {
        let Some(e) = self.election.as_mut() else {
            return Err(QueryError::Disabled);
        };
        let id = e.query(now, group)?;
        self.pump(now);
        Ok(id)
    }

    /// Raises what this node knows of `group`'s highest term: a voter's persisted
    /// state after a restart (it then never grants a term at or below it again).
    pub fn restore_term(&mut self, group: &str, term: Term) {
        if let Some(e) = self.election.as_mut() {
            e.learn_term(group, term);
        }
    }

    // ---- I/O ----

    /// A datagram from `from`, sent by `peer` as authenticated by the transport.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
    ) {
        self.expire_leaderships(now);
        self.handle_frame(now, from, peer, bytes, false);
        self.pump(now);
    }

    /// A stream message from `from`, sent by `peer` as authenticated by the transport.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: Option<NodeId>,
        bytes: &[u8],
    ) {
        self.expire_leaderships(now);
        self.handle_frame(now, from, peer, bytes, true);
        self.pump(now);
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_leaderships(now);
        if self.swim.poll_timeout().is_some_and(|t| t <= now) {
            self.swim.handle_timeout(now);
        }
        self.pump(now);
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.next_transmit()
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let election = self.election.as_ref().and_then(Election::poll_timeout);
        match (self.swim.poll_timeout(), election) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 1024 {
            // A join reports every member at once; do not keep that much room forever.
            self.events.shrink_to(64);
        }
        e
    }

    // ---- internals ----

    fn emit(&mut self, e: Event) {
        if self.events.len() >= self.max_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Moves everything the layers produced to where it goes, until nothing moves.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(e) = self.swim.poll_event() {
                self.on_member_event(e);
                moved = true;
            }
            if moved {
                self.unsafe_gossip_quorum();
            }
            while let Some(bytes) = self.shared_in.pop_front() {
                for e in self.groups.merge_shared(&bytes) {
                    self.emit(Event::Group(e));
                }
            }
            if self.swim.take_claim_elsewhere() {
                let retire = self.swim.yielded_id() || self.swim.found_id_taken();
                if let Some(e) = self.election.as_mut() {
                    e.conflict(now, retire);
                }
            }
            moved |= self.drain_election();
            if !moved {
                break;
            }
        }
        // Counted once the registry states that came with them are merged.
        self.drain_barrier_answers();
        if std::mem::take(&mut self.views_changed) {
            self.group_version += 1;
            self.refresh_ranks();
            for c in self.groups.leader_changes() {
                self.stats.leader_changes += 1;
                self.emit(Event::Leader(c));
            }
        }
        self.publish(now);
        for group in std::mem::take(&mut self.renewed) {
            self.check_preemption(now, &group);
        }
    }

    fn on_member_event(&mut self, e: MemberEvent) {
        match e {
            MemberEvent::Joined(m) => {
                self.observe(&m);
                self.emit(Event::Member(MemberEvent::Joined(user_member(m))));
            }
            MemberEvent::Alive(m) => {
                self.observe(&m);
                self.emit(Event::Member(MemberEvent::Alive(user_member(m))));
            }
            MemberEvent::Updated(m) => {
                if self.observe(&m) {
                    self.emit(Event::Member(MemberEvent::Updated(user_member(m))));
                }
            }
            MemberEvent::Failed { id, .. } | MemberEvent::Left { id, .. } => {
                self.user_digests.remove(&id);
                for g in self.groups.observe(id, None) {
                    self.emit(Event::Group(g));
                }
                self.views_changed = true;
                self.emit(Event::Member(e));
            }
            e => self.emit(Event::Member(e)),
        }
    }

    /// Reads a live member's published state. Returns whether its application
    /// metadata changed.
    fn observe(&mut self, m: &Member) -> bool {
        let state = NodeState::decode(&m.meta);
        let digest = (!state.user.is_empty()).then(|| wire::meta_digest(&state.user));
        let before = match digest {
            Some(d) => self.user_digests.insert(m.id, d),
            None => self.user_digests.remove(&m.id),
        };
        if let Some(e) = self.election.as_mut() {
            if e.config().voters.contains(&m.id) {
                self.voter_addrs.insert(m.id, m.addr);
            }
            for (g, t) in &state.leading {
                e.observe_gossip(g, *t);
            }
        }
        let had_groups = self.groups.has_view(m.id) || state.has_groups();
        for g in self.groups.observe(m.id, Some(state)) {
            self.emit(Event::Group(g));
        }
        self.views_changed |= had_groups;
        before != digest
    }

    /// Publishes this node's state and the registry when they changed.
    fn publish(&mut self, now: Instant) {
        if self.groups.registry_version() != self.shared_version {
            self.shared_version = self.groups.registry_version();
            self.swim.set_shared(self.groups.shared());
        }
        if self.swim.is_leaving() {
            return;
        }
        if self.groups.own_version() == self.published_version {
            return;
        }
        self.published_version = self.groups.own_version();
        let state = self.groups.own().encode();
        if state != self.published {
            if let Err(e) = self.swim.set_metadata(now, state.clone()) {
                tracing::warn!(error = %e, "node state not published");
                return;
            }
            self.published = state;
        }
    }
}

/// `m` with its application metadata in place of its whole published state.
fn user_member(mut m: Member) -> Member {
    m.meta = NodeState::user_of(&m.meta);
    m
}

#[cfg(test)]
mod tests;
