//! The work shared by commands, below the command line and above the stages: connecting
//! to Azure (or the local emulator) and preparing a plan's inputs. Returns errors; prints
//! nothing.

pub mod connect;
pub mod load;
pub mod prepare;
