//! Fuzz target `identity`: see `quorate_fuzz::harness::identity`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| quorate_fuzz::harness::identity(data));
