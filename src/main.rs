use std::process::ExitCode;

fn main() -> ExitCode {
    amlspec::cli::main()
}
