//! The fuzzing harnesses: one function per target, taking the raw input and panicking
//! on a finding (a panic inside quorate, or a broken invariant).
//!
//! These functions are the whole logic of the cargo-fuzz targets, and the root crate's
//! `tests/fuzz_corpus.rs` includes this module to replay the stored corpus under
//! `cargo test`. They use the library's public API only.

mod engine;
pub mod gen;
mod identity;

pub use engine::engine;
pub use identity::identity;

use arbitrary::Unstructured;
use quorate::wire::{self, NodeId};

/// The cluster name of every harness frame (the default one, [`quorate::Config::lan`]'s).
pub const CLUSTER: &str = "quorate";

/// Frame limit of a datagram ([`quorate::Config::lan`]'s `max_datagram_bytes`).
pub const DATAGRAM_LIMIT: usize = 1150;

/// Frame limit of a stream in the harnesses (smaller than the default 32 MiB, which no
/// fuzzer input reaches anyway).
pub const STREAM_LIMIT: usize = 1 << 20;

/// Target `wire_decode`: [`wire::decode`] never panics, and what it accepts re-encodes
/// to a frame that decodes to the same envelope.
///
/// The first byte picks the mode: raw bytes decoded under a datagram or stream limit,
/// or a message built from the rest ([`gen::message`]) that must survive an
/// encode/decode round trip exactly, and none of whose strict prefixes decodes.
pub fn wire_decode(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limit = match mode & 2 {
        0 => DATAGRAM_LIMIT,
        _ => STREAM_LIMIT,
    };
    if mode & 1 == 0 {
        check_frame(rest, limit);
        return;
    }
    let mut u = Unstructured::new(rest);
    let (Ok(from), Ok(msg)) = (gen::node_id(&mut u), gen::message(&mut u)) else {
        return;
    };
    let bytes = match wire::encode(CLUSTER, from, &msg, STREAM_LIMIT) {
        Ok(b) => b,
        Err(e) => panic!("a built message does not encode: {e} ({msg:?})"),
    };
    let env = wire::decode(&bytes, CLUSTER, STREAM_LIMIT).expect("an encoded frame decodes");
    assert_eq!(
        (env.from, &env.msg),
        (from, &msg),
        "round trip changed the frame"
    );
    let cut = u.arbitrary::<usize>().unwrap_or(0) % bytes.len();
    assert!(
        wire::decode(&bytes[..cut], CLUSTER, STREAM_LIMIT).is_err(),
        "a strict prefix of a frame decoded"
    );
    check_frame(&bytes, limit);
}

/// Decodes `bytes`; when that works, the envelope re-encodes within `limit` and decodes
/// again to itself.
fn check_frame(bytes: &[u8], limit: usize) {
    let Ok(env) = wire::decode(bytes, CLUSTER, limit) else {
        return;
    };
    let again = match wire::encode(&env.cluster, env.from, &env.msg, limit) {
        Ok(b) => b,
        Err(e) => panic!("a decoded frame does not re-encode: {e} ({env:?})"),
    };
    assert_eq!(
        wire::decode(&again, CLUSTER, limit).as_ref(),
        Ok(&env),
        "re-encoding changed the envelope"
    );
}

/// The claimed sender of a frame the engine harness builds for `peer`.
fn sender(u: &mut Unstructured<'_>, peer: u64) -> NodeId {
    match u.ratio(1u8, 8) {
        Ok(true) => gen::node_id(u).unwrap_or(NodeId(peer)),
        _ => NodeId(peer),
    }
}
