#![no_main]
//! Fuzz target: the `expiredAt` parser (the checks live in src/fuzz_checks.rs, shared with the corpus
//! replay of `cargo test`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| pan_offline::fuzzing::expired_at(data));
