//! The real `amlspec` command against the in-process emulator, the spec corpus, and the
//! editor schema (part of the one integration-test binary, tests/main.rs).

mod apply;
mod azure;
use crate::azurite_support;
mod blob;
mod campaign;
mod common;
mod corpus;
mod editor;
mod export;
mod layering;
mod logs;
mod meta;
mod observe;
#[cfg(unix)]
mod paths;
mod plan;
mod preflight;
mod registry_probe;
mod retry;
mod schema;
use crate::seed;
mod stalls;
mod validate;
mod workflow;
