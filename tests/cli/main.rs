//! The integration test binary: the real `amlspec` command, the spec corpus, and the
//! editor schema. One binary, so it links once.

mod apply;
mod azure;
#[path = "../support/azurite.rs"]
mod azurite_support;
mod blob;
mod common;
mod corpus;
mod layering;
#[cfg(unix)]
mod paths;
mod plan;
mod retry;
mod schema;
#[path = "../support/seed.rs"]
mod seed;
mod stalls;
mod validate;
