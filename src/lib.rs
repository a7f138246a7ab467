//! amlspec: a declarative reconciler for Azure Machine Learning.
//!
//! Stages, each a module, data flowing one way:
//! `spec` (load -> validate) -> `observe` -> `plan` -> `apply`, with `render` doing all
//! printing and `cli` wiring arguments to stages. `emulator` is the local Azure used by
//! tests and by `--emulator`; it shares no code with the client side, and a build
//! without the `emulator` feature leaves it out.

pub mod apply;
pub mod azure;
pub mod bodies;
pub mod cli;
pub mod commands;
pub mod desired;
pub mod diagnostic;
pub mod duration;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod env;
pub mod export;
pub mod hash;
pub mod ids;
pub mod observe;
pub mod oci;
pub mod ops;
pub mod plan;
pub mod render;
pub mod secret;
pub mod settings;
pub mod snapshot;
pub mod spec;
