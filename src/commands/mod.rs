//! One function per command, called by `cli` with its parsed arguments. Each wires the
//! stages together (spec -> desired -> observe -> plan -> render) and decides the exit
//! code; the stages themselves know nothing about the command line.

pub mod apply;
pub mod plan;
pub mod validate;

use std::io::Write;
use std::process::ExitCode;

use crate::render;
use crate::render::redact;
use crate::spec::Loaded;

pub fn schema() -> std::io::Result<ExitCode> {
    write!(
        std::io::stdout(),
        "{}",
        crate::spec::schema::json_schema_text()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Whether output to stderr may carry colour (anstream strips it when it must not).
pub fn styled() -> bool {
    !matches!(
        anstream::ColorChoice::global(),
        anstream::ColorChoice::Never
    )
}

/// Print load problems in human form on stderr (secrets masked), with the closing
/// summary when there are errors.
pub fn print_problems(loaded: &Loaded) -> std::io::Result<()> {
    let redactor = redact::active();
    let mut stderr = redact::stderr();
    for problem in &loaded.problems {
        writeln!(
            stderr,
            "{}\n",
            render::diagnostics::human(&redactor.diagnostic(problem), &loaded.sources, styled())
        )?;
    }
    if loaded.has_errors() {
        writeln!(
            stderr,
            "{}",
            render::diagnostics::summary(&loaded.problems, loaded.files.len())
        )?;
    }
    stderr.flush()
}
