//! The integration test binary: the real `amlspec` command, the spec corpus, and the
//! editor schema. One binary, so it links once.

mod common;
mod corpus;
mod schema;
mod validate;
