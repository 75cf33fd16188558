//! The I/O layer: cluster identities ([`identity`]: the CA and the certificates it
//! issues), mutual TLS (rustls with ring), QUIC transport (quinn), the tokio driver of
//! the engine, and a fault-injecting socket for tests.
//!
//! Most applications only need [`crate::Node`]; this module exposes the pieces for tools
//! and tests that speak to nodes directly: [`client_config`] builds a quinn client
//! configuration from an identity, [`write_frame`] writes the length-prefixed frames
//! nodes read from streams, [`TransportStats`] are the transport's counters, and
//! [`faults`] injects loss, delay and partitions under the real QUIC stack.
//!
//! Wire layout, for such tools: one QUIC connection per pair of nodes, ALPN
//! [`ALPN`]; SWIM probes, acks and gossip travel as QUIC datagrams, each holding one
//! [`crate::wire`] frame; larger messages (push-pull, metadata) travel on
//! unidirectional streams, each holding length-prefixed [`crate::wire`] frames (4-byte
//! big-endian length); status queries use bidirectional streams.

// The runtime is the I/O layer: it reads clocks, spawns tasks, draws OS randomness and
// keeps a voter's terms in a file.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub(crate) mod conn;
pub(crate) mod driver;
pub(crate) mod delegate;
pub(crate) mod elect;
pub mod faults;
mod frame;
pub(crate) mod handle;
mod metrics;
pub mod identity;
pub(crate) mod pool;
pub mod revocation;
pub(crate) mod revoke;
pub(crate) mod resolve;
pub(crate) mod shared;
mod start;
pub(crate) mod status;
pub(crate) mod terms;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod validity;
pub(crate) mod watch;
pub(crate) mod watchdog;
pub(crate) mod wire;

pub use frame::{write_frame, LEN_PREFIX};
pub use shared::TransportStats;
pub(crate) use start::{start, start_with_socket};
pub use start::{NodeConfig, StartError};
pub use status::{
    query_confirmed_leader, query_status, send_revocation, GroupMember, GroupStatus, MemberStatus, StatusError,
    StatusReport,
};
pub use tls::{client_crypto, peer_of, ALPN};
pub use transport::client_config;
pub use delegate::{
    campaign_through, DelegateError, DelegatedCampaign, DelegatedLeadership, DelegatedTiming,
};
pub use watch::{watch_events, EventWatch, Watched, WatchedEvent};
