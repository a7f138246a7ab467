//! Integration tests of the local Azure emulator: each module drives a real in-process
//! emulator over HTTP (or the real binary, for persistence) on 127.0.0.1 only.

mod assets;
mod auth;
mod azurite;
use crate::azurite_support;
mod bench;
mod blob;
mod capacity;
mod cli;
mod contract;
mod faults;
mod identity;
mod jobs;
mod lro;
mod persistence;
mod registry;
mod runs;
mod security;
mod state;
mod support;
mod validation;
