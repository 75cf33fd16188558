//! quorate: embedded membership and leader election for edge clusters.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod election;
pub mod engine;
pub mod swim;
pub mod wire;

#[cfg(feature = "runtime")]
pub mod identity;
#[cfg(feature = "runtime")]
pub mod node;
#[cfg(feature = "runtime")]
pub mod runtime;

pub use config::{Config, ConfigError};
pub use engine::{Engine, Event};
pub use swim::{Member, MemberEvent, MetadataError, Stats, Transmit};
pub use wire::{Incarnation, NodeId, State};

#[cfg(feature = "runtime")]
pub use identity::{ClusterCa, Identity, IdentityError};
#[cfg(feature = "runtime")]
pub use node::{
    query_status, EventStream, MemberStatus, Node, NodeConfig, NodeError, StatusReport,
};
#[cfg(feature = "runtime")]
pub use runtime::TransportStats;
