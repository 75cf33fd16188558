//! Sans-IO building blocks of leader election by quorum-acknowledged leases.
//!
//! A candidate asks every voter for a lease on a group at a term; a voter grants when it
//! holds no unexpired promise to anyone else and the term is above every term it granted
//! before ([`voter`]). With grants from a majority the candidate leads until a deadline
//! short enough that every granting voter's promise outlives it, whatever the clock
//! drift within the configured bound ([`lease`]); [`tally`] counts one round's answers.
//! Any two majorities share a voter, so at most one candidate leads at any instant, and
//! each new leader's term (its fencing token) is higher than every earlier one.

mod action;
pub mod candidate;
pub mod lease;
pub mod node;
pub mod query;
pub mod renewal;
pub mod tally;
mod verdict;
pub mod voter;

pub use crate::config::{ElectionConfig, Timing};
pub use candidate::{Action, Candidacy, StepDown};
pub use lease::{leader_deadline, quorum, safe_duration};
pub use node::{CampaignError, Election, ElectionEvent, ElectionMsg, WireVerdict, MAX_GROUP_NAME};
pub use query::{Confirmed, QueryError, QueryTally};
pub use tally::{Outcome, Tally};
pub use voter::{Denial, Instance, Process, Promise, Term, Verdict, Voter};

#[cfg(test)]
mod tests;
