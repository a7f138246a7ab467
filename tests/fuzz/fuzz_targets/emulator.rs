#![no_main]
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz emulator`: see tests/fuzz/bodies/emulator.rs.

#[path = "../bodies/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../bodies/emulator.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
