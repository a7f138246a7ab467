//! Stage 5, apply: executes a plan's steps in dependency order, making no decisions of
//! its own (every fact a step needs is resolved by `plan`).

pub mod drive;
pub mod execute;
pub mod follow;
pub mod queue;
pub mod report;
