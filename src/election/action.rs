//! What a candidacy asks its caller to do ([`Action`]), and why a leadership ended
//! ([`StepDown`]): the candidacy decides, the election node sends and reports.

use std::time::Instant;

use super::voter::Term;
use crate::wire::NodeId;

/// Why a leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepDown {
    /// No renewal reached a quorum before the deadline.
    LeaseExpired,
    /// The application resigned.
    Resigned,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a lease request for `term` (round `round`) to every voter.
    Request {
        /// The term.
        term: Term,
        /// Round number, echoed by answers.
        round: u32,
    },
    /// Send the round's request again to one voter (it became free mid-round).
    RequestOne {
        /// The voter.
        voter: NodeId,
        /// The term.
        term: Term,
        /// Round number.
        round: u32,
    },
    /// Tell `voter` to drop its promise at `term`.
    Release {
        /// The voter.
        voter: NodeId,
        /// The term released.
        term: Term,
    },
    /// Tell every voter to drop a promise at `term`, without freeing the group for
    /// higher ids: sent when a lost round would have expired, for the voters whose
    /// answer never came. A grant can be lost on the way back (a one-way cut); the
    /// voter would be held for a lease, and again by every later round. A voter that
    /// holds nothing of `term` ignores it.
    ReleaseRound {
        /// The term released.
        term: Term,
    },
    /// Tell every voter to drop its promise at `term` (resignation).
    ReleaseAll {
        /// The term released.
        term: Term,
    },
    /// This node now leads with fencing token `term` until `deadline`.
    Elected {
        /// The term.
        term: Term,
        /// The leadership ends then unless renewed (this node's clock).
        deadline: Instant,
    },
    /// The leadership was extended.
    Renewed {
        /// The term.
        term: Term,
        /// The new deadline.
        deadline: Instant,
    },
    /// This node no longer leads.
    SteppedDown {
        /// The term that ended.
        term: Term,
        /// Why.
        reason: StepDown,
    },
}
