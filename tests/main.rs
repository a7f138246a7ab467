//! The one integration-test binary (linked once): the real `amlspec` command against
//! the in-process emulator (`cli`), the emulator on its own (`emulator`), and the fuzz
//! targets' corpora and findings replayed (`fuzz`).

#[path = "support/azurite.rs"]
mod azurite_support;
mod cli;
mod emulator;
mod fuzz;
#[path = "support/seed.rs"]
mod seed;
