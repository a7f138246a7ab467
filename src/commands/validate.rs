//! `amlspec validate`: load and check spec files; no network.

use std::io::Write;
use std::process::ExitCode;

use crate::render;
use crate::settings::{DiagnosticFormat, ValidateSettings};
use crate::spec::{self, interpolate::EnvVars};

pub fn run(settings: ValidateSettings) -> std::io::Result<ExitCode> {
    let ValidateSettings {
        paths,
        format,
        load,
    } = settings;
    let loaded = spec::load_with(&paths, &EnvVars::from_process(), load);
    match format {
        DiagnosticFormat::Human => {
            super::print_problems(&loaded)?;
            if !loaded.has_errors() {
                let mut stdout = anstream::stdout();
                for workspace in loaded.specs.iter().flat_map(|s| s.workspaces.iter()) {
                    writeln!(stdout, "{}", render::workspace_line(workspace))?;
                }
                writeln!(
                    stdout,
                    "{}",
                    render::diagnostics::summary(&loaded.problems, loaded.files.len())
                )?;
            }
        }
        DiagnosticFormat::Json => {
            write!(
                std::io::stdout(),
                "{}",
                render::diagnostics::json(&loaded.problems, &loaded.files)
            )?;
        }
        DiagnosticFormat::Github => {
            let mut stdout = std::io::stdout();
            for problem in &loaded.problems {
                writeln!(stdout, "{}", render::diagnostics::github(problem))?;
            }
        }
    }
    Ok(if loaded.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
