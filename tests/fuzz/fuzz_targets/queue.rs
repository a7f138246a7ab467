#![no_main]
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz queue`: see tests/fuzz/bodies/queue.rs.

#[path = "../bodies/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../bodies/queue.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
