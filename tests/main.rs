//! The one integration-test binary (linked once): the real `amlspec` command against
//! the in-process emulator (`cli`), and the emulator on its own (`emulator`).

#[path = "support/azurite.rs"]
mod azurite_support;
mod cli;
mod emulator;
#[path = "support/seed.rs"]
mod seed;
