//! Fuzzing harnesses for quorate.
//!
//! The targets in `fuzz_targets/` are one line each: the logic lives in [`harness`],
//! plain functions of the input bytes that panic on a finding. The root crate's
//! `tests/fuzz_corpus.rs` includes the same module and replays every file of
//! `corpus/<target>/` through it, so `cargo test` keeps the corpus passing.

pub mod harness;
