#![no_main]
//! Fuzz target: `Retry-After` and obs-fold unfolding (the checks live in src/fuzz_checks.rs, shared with the corpus
//! replay of `cargo test`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| pan_offline::fuzzing::http_fields(data));
