#![no_main]
//! `cargo +nightly fuzz run saved_plan`: see fuzz/bodies/saved_plan.rs.

#[path = "../bodies/input.rs"]
#[allow(dead_code)]
mod input;
#[path = "../bodies/saved_plan.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
