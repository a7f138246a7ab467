#![no_main]
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz spec`: see tests/fuzz/bodies/spec.rs.

#[path = "../bodies/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../bodies/spec.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
