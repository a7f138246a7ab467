//! Command line: clap arguments -> one function per command -> exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative reconciler for Azure Machine Learning.
#[derive(Debug, Parser)]
#[command(name = "amlspec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the local Azure emulator (ARM, Entra ID tokens, Blob) on a loopback port.
    Emulator(crate::emulator::cli::EmulatorArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Emulator(args) => crate::emulator::cli::run(&args),
    }
}
