//! Groups: named sets of members with per-member capabilities (tooz's group API), and
//! the gossiped side of elections (who runs, who leads).
//!
//! Every node knows every group. Which groups exist is a cluster-wide last-writer-wins
//! registry ([`registry`]); who is in a group, who runs for its leadership and who leads
//! it is part of each member's own published state ([`state`]), which travels as its
//! SWIM metadata. So a member that fails or leaves leaves its groups at once, in every
//! view, and a node that joins the cluster learns all groups with its first push-pull.
//!
//! [`Groups`] is pure: the engine feeds it members' states as they change and asks it
//! for group events, leader changes, and each candidacy's rank.

pub mod registry;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};

use crate::wire::{NodeId, Term};
use registry::{Change, Registry};
pub use state::NodeState;

pub use crate::wire::MAX_GROUP_NAME;

/// A group operation was refused (tooz's error cases). Nothing changed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// The name is empty, longer than [`crate::MAX_GROUP_NAME`] bytes, or has control
    /// characters.
    #[error("invalid group name (1..={MAX_GROUP_NAME} bytes, no control characters)")]
    BadName,
    /// The group does not exist (tooz `GroupNotCreated`).
    #[error("group {0:?} does not exist")]
    NotCreated(String),
    /// The group exists already (tooz `GroupAlreadyExist`).
    #[error("group {0:?} already exists")]
    AlreadyExists(String),
    /// This node is in the group already (tooz `MemberAlreadyExist`).
    #[error("already a member of group {0:?}")]
    AlreadyJoined(String),
    /// This node is not in the group (tooz `MemberNotJoined`).
    #[error("not a member of group {0:?}")]
    NotJoined(String),
    /// The group still has members (tooz `GroupNotEmpty`).
    #[error("group {0:?} still has members")]
    NotEmpty(String),
    /// The registry or this node already holds `Config::max_groups` groups.
    #[error("too many groups")]
    TooManyGroups,
    /// This node's group state would exceed `Config::max_group_state_bytes`.
    #[error("group state of {len} bytes exceeds the limit of {limit}")]
    StateTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The node has left the cluster.
    #[error("the node has left the cluster")]
    Left,
}

/// A change to a group, as this node saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// The group was created.
    Created {
        /// The group.
        group: String,
    },
    /// The group was deleted.
    Deleted {
        /// The group.
        group: String,
    },
    /// `member` joined `group`.
    Joined {
        /// The group.
        group: String,
        /// The member.
        member: NodeId,
        /// Its capabilities.
        capabilities: Vec<u8>,
    },
    /// `member` left `group` (by leaving it, or by failing or leaving the cluster).
    Left {
        /// The group.
        group: String,
        /// The member.
        member: NodeId,
    },
    /// `member` changed its capabilities in `group`.
    CapabilitiesUpdated {
        /// The group.
        group: String,
        /// The member.
        member: NodeId,
        /// The new capabilities.
        capabilities: Vec<u8>,
    },
}

/// The leader of a group changed in this node's gossiped view.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaderChange {
    /// The group.
    pub group: String,
    /// The new leader, `None` when the group has none now.
    pub leader: Option<NodeId>,
    /// The new leader's term, or the last leader's when there is none.
    pub term: Term,
}

impl LeaderChange {
    /// A change of `group`'s leader to `leader` (`None`: no leader) at `term`.
    pub fn new(group: impl Into<String>, leader: Option<NodeId>, term: Term) -> Self {
        LeaderChange {
            group: group.into(),
            leader,
            term,
        }
    }
}

/// Checks a group name.
pub fn check_name(name: &str) -> Result<(), GroupError> {
    if name.is_empty() || name.len() > MAX_GROUP_NAME || name.chars().any(char::is_control) {
        return Err(GroupError::BadName);
    }
    Ok(())
}

/// Every group as this node knows it.
#[derive(Clone, Debug)]
pub struct Groups {
    me: NodeId,
    own: NodeState,
    /// Live members that publish group state (this node included when it does).
    views: BTreeMap<NodeId, NodeState>,
    registry: Registry,
    /// The leader last reported per group: `(leader, term)`.
    reported: BTreeMap<String, (Option<NodeId>, Term)>,
    max_groups: usize,
    max_bytes: usize,
    /// Bumped by every change of this node's own state.
    own_version: u64,
}

impl Groups {
    /// Node `me` with metadata `user`, at most `max_groups` groups and
    /// `max_bytes` of group state.
    pub fn new(me: NodeId, user: Vec<u8>, max_groups: usize, max_bytes: usize) -> Self {
        Groups {
            me,
            own: NodeState::with_user(user),
            views: BTreeMap::new(),
            registry: Registry::new(max_groups),
            reported: BTreeMap::new(),
            max_groups,
            max_bytes,
            own_version: 0,
        }
    }

    /// This node's own state.
    pub fn own(&self) -> &NodeState {
        &self.own
    }

    /// Changes whenever this node's own state changed (to republish it only then).
    pub fn own_version(&self) -> u64 {
        self.own_version
    }

    /// Whether `id` publishes group state in this node's view.
    pub fn has_view(&self, id: NodeId) -> bool {
        self.views.contains_key(&id)
    }

    /// Every existing group.
    pub fn groups(&self) -> Vec<String> {
        self.registry.groups().map(str::to_owned).collect()
    }

    /// Whether `group` exists.
    pub fn exists(&self, group: &str) -> bool {
        self.registry.exists(group)
    }

    /// The members of `group` with their capabilities, by id.
    pub fn members(&self, group: &str) -> Result<Vec<(NodeId, Vec<u8>)>, GroupError> {
        if !self.registry.exists(group) {
            return Err(GroupError::NotCreated(group.to_owned()));
        }
        Ok(self
            .views
            .iter()
            .filter_map(|(id, s)| s.joined.get(group).map(|c| (*id, c.clone())))
            .collect())
    }

    /// The live candidates for `group`, by id.
    pub fn candidates(&self, group: &str) -> Vec<NodeId> {
        self.views
            .iter()
            .filter(|(_, s)| s.running.contains(group))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every group with live candidates, each with its candidates by id.
    pub fn all_candidates(&self) -> BTreeMap<String, Vec<NodeId>> {
        let mut out: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
        for (id, s) in &self.views {
            for g in &s.running {
                out.entry(g.clone()).or_default().push(*id);
            }
        }
        out
    }

    /// The live candidates for `group` with an id below this node's.
    pub fn lower_candidates(&self, group: &str) -> Vec<NodeId> {
        let below = self.views.range(..self.me);
        below
            .filter(|(_, s)| s.running.contains(group))
            .map(|(id, _)| *id)
            .collect()
    }

    /// This node's rank among the live candidates of `group`: how many have a lower
    /// id (0 = this node would lead).
    pub fn rank(&self, group: &str) -> u32 {
        let below = self.views.range(..self.me);
        below.filter(|(_, s)| s.running.contains(group)).count() as u32
    }

    /// The gossiped leader of `group`: the live member announcing the highest term.
    pub fn leader(&self, group: &str) -> Option<(NodeId, Term)> {
        self.views
            .iter()
            .filter_map(|(id, s)| s.leading.get(group).map(|t| (*id, *t)))
            .max_by_key(|(id, t)| (*t, std::cmp::Reverse(*id)))
    }

    /// Every group with a gossiped leader.
    pub fn leaders(&self) -> BTreeMap<String, (NodeId, Term)> {
        let names: BTreeSet<&String> = self.views.values().flat_map(|s| s.leading.keys()).collect();
        names
            .into_iter()
            .filter_map(|g| self.leader(g).map(|l| (g.clone(), l)))
            .collect()
    }

    /// A live member published `state` (`None`: it failed or left). Returns the group
    /// events this causes.
    pub fn observe(&mut self, id: NodeId, state: Option<NodeState>) -> Vec<GroupEvent> {
        if id == self.me {
            return Vec::new();
        }
        let new = state.filter(NodeState::has_groups);
        let mut out = Vec::new();
        if let Some(s) = &new {
            for e in &s.authored {
                out.extend(self.merge_entry(e.clone()));
            }
        }
        let old = match new {
            Some(s) => self.views.insert(id, s),
            None => self.views.remove(&id),
        };
        let empty = BTreeMap::new();
        let before = old.as_ref().map_or(&empty, |s| &s.joined);
        let after = self.views.get(&id).map_or(&empty, |s| &s.joined);
        out.extend(diff_joined(id, before, after));
        out
    }

    /// Entries received by push-pull.
    pub fn merge_shared(&mut self, bytes: &[u8]) -> Vec<GroupEvent> {
        Registry::decode(bytes)
            .into_iter()
            .filter_map(|e| self.merge_entry(e))
            .collect()
    }

    /// Bumped whenever the registry changes (to re-encode [`Groups::shared`]).
    pub fn registry_version(&self) -> u64 {
        self.registry.version()
    }

    /// The registry in wire form, for push-pull.
    pub fn shared(&self) -> Vec<u8> {
        self.registry.encode()
    }

    fn merge_entry(&mut self, e: registry::Entry) -> Option<GroupEvent> {
        if check_name(&e.name).is_err() {
            return None;
        }
        let group = e.name.clone();
        match self.registry.merge(e) {
            Change::Created => Some(GroupEvent::Created { group }),
            Change::Deleted => Some(GroupEvent::Deleted { group }),
            Change::None => None,
        }
    }

    /// Leader changes since the last call, in group order.
    pub fn leader_changes(&mut self) -> Vec<LeaderChange> {
        let now = self.leaders();
        let mut out = Vec::new();
        for (g, (id, term)) in &now {
            if self.reported.get(g) != Some(&(Some(*id), *term)) {
                out.push(LeaderChange {
                    group: g.clone(),
                    leader: Some(*id),
                    term: *term,
                });
                self.reported.insert(g.clone(), (Some(*id), *term));
            }
        }
        for (g, (id, term)) in &mut self.reported {
            if id.is_some() && !now.contains_key(g) {
                *id = None;
                out.push(LeaderChange {
                    group: g.clone(),
                    leader: None,
                    term: *term,
                });
            }
        }
        out
    }

    // ---- this node's own changes: each returns the events, the caller publishes ----

    /// Creates `group`.
    pub fn create(&mut self, group: &str) -> Result<Vec<GroupEvent>, GroupError> {
        check_name(group)?;
        if self.registry.exists(group) {
            return Err(GroupError::AlreadyExists(group.to_owned()));
        }
        if !self.registry.has_room(group) {
            return Err(GroupError::TooManyGroups);
        }
        let e = self.registry.stamp(group, self.me, true);
        self.change_own(|s| s.author(e.clone()))?;
        Ok(self.merge_entry(e).into_iter().collect())
    }

    /// Deletes `group`, refused while it has members.
    pub fn delete(&mut self, group: &str) -> Result<Vec<GroupEvent>, GroupError> {
        if !self.registry.exists(group) {
            return Err(GroupError::NotCreated(group.to_owned()));
        }
        if self.views.values().any(|s| s.joined.contains_key(group)) {
            return Err(GroupError::NotEmpty(group.to_owned()));
        }
        let e = self.registry.stamp(group, self.me, false);
        self.change_own(|s| s.author(e.clone()))?;
        Ok(self.merge_entry(e).into_iter().collect())
    }

    /// Joins `group` with `capabilities`.
    pub fn join(&mut self, group: &str, caps: Vec<u8>) -> Result<Vec<GroupEvent>, GroupError> {
        if !self.registry.exists(group) {
            return Err(GroupError::NotCreated(group.to_owned()));
        }
        if self.own.joined.contains_key(group) {
            return Err(GroupError::AlreadyJoined(group.to_owned()));
        }
        if self.own.joined.len() >= self.max_groups {
            return Err(GroupError::TooManyGroups);
        }
        let g = group.to_owned();
        self.change_own(|s| {
            s.joined.insert(g, caps);
        })
    }

    /// Leaves `group`.
    pub fn leave(&mut self, group: &str) -> Result<Vec<GroupEvent>, GroupError> {
        if !self.own.joined.contains_key(group) {
            return Err(GroupError::NotJoined(group.to_owned()));
        }
        self.change_own(|s| {
            s.joined.remove(group);
        })
    }

    /// Replaces this node's capabilities in `group`.
    pub fn update(&mut self, group: &str, caps: Vec<u8>) -> Result<Vec<GroupEvent>, GroupError> {
        if !self.own.joined.contains_key(group) {
            return Err(GroupError::NotJoined(group.to_owned()));
        }
        let g = group.to_owned();
        self.change_own(|s| {
            s.joined.insert(g, caps);
        })
    }

    /// Marks this node as running (or not) for `group`.
    pub fn set_running(&mut self, group: &str, running: bool) -> Result<(), GroupError> {
        if running && self.own.running.len() >= self.max_groups {
            return Err(GroupError::TooManyGroups);
        }
        self.change_own(|s| {
            if running {
                s.running.insert(group.to_owned());
            } else {
                s.running.remove(group);
            }
        })
        .map(drop)
    }

    /// Records this node's leadership of `group` (`None`: it ended).
    pub fn set_leading(&mut self, group: &str, term: Option<Term>) {
        let r = self.change_own(|s| match term {
            Some(t) => {
                s.leading.insert(group.to_owned(), t);
            }
            None => {
                s.leading.remove(group);
            }
        });
        if r.is_err() {
            // Over the byte limit: publish without it rather than claim nothing changed;
            // the leadership itself is unaffected (the gossiped answer is a hint).
            tracing::warn!(group, "leadership not published: group state too large");
        }
    }

    /// Replaces this node's metadata.
    pub fn set_user(&mut self, user: Vec<u8>) {
        self.own.user = user;
        self.own_version += 1;
    }

    /// Applies `f` to this node's state if the result stays within the byte limit, and
    /// returns the events its own membership changes cause.
    fn change_own(
        &mut self,
        f: impl FnOnce(&mut NodeState),
    ) -> Result<Vec<GroupEvent>, GroupError> {
        let mut next = self.own.clone();
        f(&mut next);
        let len = next.group_bytes();
        if len > self.max_bytes {
            return Err(GroupError::StateTooLarge {
                len,
                limit: self.max_bytes,
            });
        }
        let events = diff_joined(self.me, &self.own.joined, &next.joined);
        self.own = next;
        self.own_version += 1;
        if self.own.has_groups() {
            self.views.insert(self.me, self.own.clone());
        } else {
            self.views.remove(&self.me);
        }
        Ok(events)
    }
}

/// The events between two versions of one member's joined groups.
fn diff_joined(
    member: NodeId,
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<GroupEvent> {
    let mut out = Vec::new();
    for (g, caps) in after {
        match before.get(g) {
            None => out.push(GroupEvent::Joined {
                group: g.clone(),
                member,
                capabilities: caps.clone(),
            }),
            Some(old) if old != caps => out.push(GroupEvent::CapabilitiesUpdated {
                group: g.clone(),
                member,
                capabilities: caps.clone(),
            }),
            Some(_) => {}
        }
    }
    for g in before.keys().filter(|g| !after.contains_key(*g)) {
        out.push(GroupEvent::Left {
            group: g.clone(),
            member,
        });
    }
    out
}

#[cfg(test)]
mod tests;
