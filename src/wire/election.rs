//! What leader election carries: the messages between candidates, voters and askers
//! ([`ElectionMsg`]), a voter's verdict as it travels ([`WireVerdict`]), and the
//! numbers they name: terms (fencing tokens) and process instances. They travel in
//! [`super::Message::Election`], addressed from one process life to another.
//!
//! The election logic converts to and from these types; nothing here knows it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::NodeId;

/// A leadership's fencing token.
pub type Term = u64;

/// The number a process draws when it starts, to tell its life apart from other
/// processes with the same node id (a restart, or a duplicate).
pub type Instance = u64;

/// Election messages between candidates and voters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionMsg {
    /// Candidate → voter: promise me `group` at `term` for `lease`.
    Request {
        /// The group.
        group: String,
        /// The term.
        term: Term,
        /// The candidate's round.
        round: u32,
        /// Lease asked for.
        lease: Duration,
    },
    /// Voter → candidate: the answer.
    Answer {
        /// The group.
        group: String,
        /// The round answered.
        round: u32,
        /// The term asked for.
        term: Term,
        /// The verdict.
        verdict: WireVerdict,
    },
    /// Candidate → voter: drop your promise at `term`.
    Release {
        /// The group.
        group: String,
        /// The term.
        term: Term,
        /// A resignation: tell the candidates turned away that the group is vacant.
        /// (Grants released after a lost round do not: the candidates that split the
        /// vote would otherwise all retry at once, again and again.)
        vacate: bool,
    },
    /// Anyone → voter: whose promise for `group` do you hold?
    Query {
        /// The group.
        group: String,
        /// The asker's query number, echoed.
        id: u32,
    },
    /// Voter → asker: the holder of its unexpired promise, if any.
    Holder {
        /// The group.
        group: String,
        /// The query answered.
        id: u32,
        /// The holder and its term.
        holder: Option<(NodeId, Term)>,
    },
    /// Voter → candidates it turned away: `resigned` released the group, or its
    /// promise to `resigned` ran out, or (`None`) the voter's restart quarantine ended.
    Vacant {
        /// The group.
        group: String,
        /// The candidate that resigned or whose promise ran out, if any.
        resigned: Option<NodeId>,
        /// Every candidate this voter turned away meanwhile (at most the voter's
        /// limit, 64): each ranks itself among them as well as among the candidates
        /// its gossiped view has, which may lag.
        waiting: Vec<NodeId>,
    },
}

/// A verdict as carried on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireVerdict {
    /// Granted for `lease`.
    Granted(Duration),
    /// Held by `holder` at `term` for `remaining`.
    Held(NodeId, Term, Duration),
    /// Highest granted term is this.
    StaleTerm(Term),
    /// Restarted voter, `remaining` quarantine.
    Quarantine(Duration),
    /// Too many groups.
    TooManyGroups,
}
