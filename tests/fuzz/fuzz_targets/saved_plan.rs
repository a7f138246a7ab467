#![no_main]
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz saved_plan`: see tests/fuzz/bodies/saved_plan.rs.

#[path = "../bodies/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../bodies/saved_plan.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
