//! One function per command, called by `cli` with its parsed arguments. Each wires the
//! stages together (spec -> desired -> observe -> plan -> render) and decides the exit
//! code; the stages themselves know nothing about the command line.

pub mod apply;
pub mod export;
pub mod logs;
pub mod plan;
pub mod show;
pub mod signals;
pub mod validate;

use std::io::Write;
use std::process::ExitCode;

use crate::render;
use crate::render::redact;
use crate::spec::Loaded;

/// Follow `jobs` with their output, on stderr (progress beside the command's data),
/// until each ends or `stop` resolves.
pub async fn follow_jobs(
    client: &crate::azure::client::ArmClient,
    jobs: Vec<crate::ids::ResourceId>,
    started: std::time::Instant,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<Vec<crate::apply::follow::JobState>> {
    let states: Vec<_> = jobs
        .iter()
        .cloned()
        .map(crate::apply::follow::JobState::new)
        .collect();
    let mut stderr = redact::stderr();
    write!(stderr, "{}", render::apply::following(&states))?;
    stderr.flush()?;
    let several = jobs.len() > 1;
    Ok(crate::apply::follow::follow(client, jobs, stop, |event| {
        let mut stderr = redact::stderr();
        let _ = writeln!(
            stderr,
            "{}",
            render::apply::follow_progress(started.elapsed(), &event, several)
        );
        let _ = stderr.flush();
    })
    .await)
}

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
