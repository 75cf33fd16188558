//! Fuzz target `engine`: see `quorate_fuzz::harness::engine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_fuzz::harness::engine(data));
