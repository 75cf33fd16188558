//! A node's own published state: the application's metadata and the node's part of the
//! group state (groups joined with capabilities, candidacies, leaderships, group
//! creations and deletions it made). It travels as the member's metadata in SWIM, with
//! the member's incarnation, so it spreads by gossip and push-pull like any metadata,
//! and a member that fails or leaves takes all of it with it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::registry::Entry;
use crate::wire::Term;

/// Most registry entries a node keeps in its own state (its latest creations and
/// deletions); older ones live on in every node's registry and in push-pull.
pub const MAX_AUTHORED: usize = 32;

/// What a member publishes about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The application's metadata.
    pub user: Vec<u8>,
    /// Groups joined, with the member's capabilities in each.
    pub joined: BTreeMap<String, Vec<u8>>,
    /// Groups the member runs for election in.
    pub running: BTreeSet<String>,
    /// Groups the member leads, with the term of each leadership.
    pub leading: BTreeMap<String, Term>,
    /// The member's latest group creations and deletions.
    pub authored: Vec<Entry>,
}

impl NodeState {
    /// The state of a node with metadata `user` and no groups.
    pub fn with_user(user: Vec<u8>) -> Self {
        NodeState {
            user,
            ..NodeState::default()
        }
    }

    /// Whether the member publishes any group state.
    pub fn has_groups(&self) -> bool {
        !(self.joined.is_empty()
            && self.running.is_empty()
            && self.leading.is_empty()
            && self.authored.is_empty())
    }

    /// The wire form (postcard); empty for a node with no metadata and no groups, so
    /// such a node's gossip is as small as it can be.
    pub fn encode(&self) -> Vec<u8> {
        if self.user.is_empty() && !self.has_groups() {
            return Vec::new();
        }
        // Every field is serializable into a growing vector: this cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a member's published bytes; bytes that are not a node state (a member
    /// still fetching its metadata, or a malformed one) read as empty.
    pub fn decode(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return NodeState::default();
        }
        match postcard::take_from_bytes::<NodeState>(bytes) {
            Ok((s, [])) => s,
            _ => NodeState::default(),
        }
    }

    /// The application metadata within published bytes.
    pub fn user_of(bytes: &[u8]) -> Vec<u8> {
        Self::decode(bytes).user
    }

    /// Size of the group part, in bytes (the state less the metadata).
    pub fn group_bytes(&self) -> usize {
        let bare = NodeState {
            user: Vec::new(),
            ..self.clone()
        };
        postcard::to_allocvec(&bare).map_or(usize::MAX, |v| v.len())
    }

    /// Records an authored registry entry, keeping the latest [`MAX_AUTHORED`].
    pub fn author(&mut self, e: Entry) {
        self.authored.retain(|x| x.name != e.name);
        self.authored.push(e);
        if self.authored.len() > MAX_AUTHORED {
            self.authored.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeId;

    #[test]
    fn round_trips_and_bad_bytes_read_empty() {
        let mut s = NodeState::with_user(b"role=db".to_vec());
        s.joined.insert("g".into(), b"cap".to_vec());
        s.running.insert("g".into());
        s.leading.insert("g".into(), 4);
        s.author(Entry {
            name: "g".into(),
            stamp: 1,
            author: NodeId(3),
            exists: true,
        });
        let bytes = s.encode();
        assert_eq!(NodeState::decode(&bytes), s);
        assert_eq!(NodeState::user_of(&bytes), b"role=db");
        assert_eq!(NodeState::decode(&[0xff, 0xff, 0xff]), NodeState::default());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(NodeState::decode(&trailing), NodeState::default());
        assert!(s.has_groups());
        assert!(!NodeState::with_user(vec![1]).has_groups());
        // Nothing to say, nothing sent: the member's gossip carries no metadata.
        assert!(NodeState::default().encode().is_empty());
    }

    #[test]
    fn authored_entries_are_bounded_and_replaced_by_name() {
        let mut s = NodeState::default();
        for i in 0..(MAX_AUTHORED as u64 + 5) {
            s.author(Entry {
                name: format!("g{i}"),
                stamp: i,
                author: NodeId(1),
                exists: true,
            });
        }
        assert_eq!(s.authored.len(), MAX_AUTHORED);
        s.author(Entry {
            name: format!("g{}", MAX_AUTHORED + 4),
            stamp: 99,
            author: NodeId(1),
            exists: false,
        });
        assert_eq!(s.authored.len(), MAX_AUTHORED);
        assert!(!s.authored.last().unwrap().exists);
    }
}
