//! `amlspec validate`: load and check spec files; no network.

use std::io::Write;
use std::process::ExitCode;

use crate::render;
use crate::render::redact::{self, Masked};
use crate::settings::{DiagnosticFormat, ValidateSettings};
use crate::spec::interpolate::EnvVars;

pub fn run(settings: ValidateSettings) -> std::io::Result<ExitCode> {
    let ValidateSettings {
        paths,
        format,
        load,
    } = settings;
    // From here on, what the specs' secret keys take is masked in everything written.
    let loaded = crate::ops::load::load(&paths, &EnvVars::from_process(), load);
    let redactor = redact::active();
    match format {
        DiagnosticFormat::Human => {
            super::print_problems(&loaded)?;
            if !loaded.has_errors() {
                let mut stdout = redact::stdout();
                for workspace in loaded.specs.iter().flat_map(|s| s.workspaces.iter()) {
                    writeln!(stdout, "{}", render::workspace_line(workspace))?;
                }
                writeln!(
                    stdout,
                    "{}",
                    render::diagnostics::summary(&loaded.problems, loaded.files.len())
                )?;
                stdout.flush()?;
            }
        }
        DiagnosticFormat::Json => {
            // Masked before rendering too, so JSON escaping cannot hide a secret.
            let problems: Vec<_> = loaded
                .problems
                .iter()
                .map(|p| redactor.diagnostic(p))
                .collect();
            let mut stdout = Masked::new(std::io::stdout());
            write!(
                stdout,
                "{}",
                render::diagnostics::json(&problems, &loaded.files)
            )?;
            stdout.flush()?;
        }
        DiagnosticFormat::Github => {
            let mut stdout = Masked::new(std::io::stdout());
            let paths = render::GithubPaths::from_process();
            for problem in &loaded.problems {
                let problem = redactor.diagnostic(problem);
                writeln!(stdout, "{}", render::diagnostics::github(&problem, &paths))?;
            }
            stdout.flush()?;
        }
    }
    Ok(if loaded.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
