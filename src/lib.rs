//! quorate: embedded membership and leader election for edge clusters.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod election;
pub mod engine;
pub mod swim;
pub mod wire;

pub use config::{Config, ConfigError};
pub use engine::{Engine, Event};
pub use swim::{Member, MemberEvent, MetadataError, Stats, Transmit};
pub use wire::{Incarnation, NodeId, State};
