//! What the `quorate` command shares with other front ends (the Python package): the
//! cluster directory that `quorate init` writes ([`cluster`]) and how events are named
//! and printed, as text or JSON ([`view`]).

pub mod cluster;
pub mod view;
