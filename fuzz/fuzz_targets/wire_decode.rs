//! Fuzz target `wire_decode`: see `quorate_fuzz::harness::wire_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_fuzz::harness::wire_decode(data));
