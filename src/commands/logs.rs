//! `amlspec logs JOB FILE|DIR...`: the output of a job of the specs (named as in the
//! spec or as submitted) and its status; with `--follow`, as it is written, until the
//! job ends, the way `apply --wait` shows it. The job's lines go to stdout (they are
//! this command's data), its status to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::plan::print_errors;
use super::signals::Signals;
use crate::apply::follow::{self, FollowEvent, JobState};
use crate::desired::{self, Desired};
use crate::ids::ResourceId;
use crate::ops::connect::connect;
use crate::render;
use crate::settings::LogsSettings;
use crate::spec::interpolate::EnvVars;

pub async fn run(settings: LogsSettings) -> std::io::Result<ExitCode> {
    let env = EnvVars::from_process();
    let loaded = crate::ops::load::load(&settings.paths, &env, settings.load);
    super::print_problems(&loaded)?;
    let Some(specs) = loaded.specs else {
        return Ok(ExitCode::FAILURE);
    };
    let desired = match tokio::task::spawn_blocking(move || desired::desired(&specs)).await {
        Ok(Ok(desired)) => desired,
        Ok(Err(errors)) => {
            print_errors(errors.iter())?;
            return Ok(ExitCode::FAILURE);
        }
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    };
    let (job, name) = match find_job(&desired, &settings.job) {
        Ok(found) => found,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let connection = match connect(&settings.connection, &env).await {
        Ok(connection) => connection,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let started = Instant::now();
    let client = &connection.client;
    let print = |event: FollowEvent<'_>| {
        // A one-time look ends with the summary, which says the status.
        if !settings.follow && matches!(event, FollowEvent::Status(_)) {
            return;
        }
        let text = render::apply::follow_progress(started.elapsed(), &event, false);
        if matches!(event, FollowEvent::Line { .. }) {
            let mut stdout = render::redact::stdout();
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        } else {
            let mut stderr = render::redact::stderr();
            let _ = writeln!(stderr, "{text}");
            let _ = stderr.flush();
        }
    };
    let signals = Signals::listen();
    let states = if settings.follow {
        follow::follow(client, vec![job], signals.stopped(), print).await
    } else {
        follow::look(client, vec![job], print).await
    };
    connection.close().await;
    let state = states.into_iter().next().expect("one job was looked at");
    let mut stderr = render::redact::stderr();
    if let Some(signal) = signals.signal() {
        writeln!(
            stderr,
            "Stopped following after {}; the job goes on in Azure. Follow it again with: amlspec logs --follow {} {}",
            signal.name(),
            shell_word(&name),
            paths_text(&settings.paths)
        )?;
        return Ok(ExitCode::from(signal.exit_code()));
    }
    write!(stderr, "{}", render::apply::job_summary(&state))?;
    Ok(exit_code(&state, settings.follow))
}

/// 0 for a job that completed (or, without `--follow`, has not ended yet), 1 for one
/// that ended otherwise or was not read.
fn exit_code(state: &JobState, followed: bool) -> ExitCode {
    match state.status.as_deref() {
        Some("Completed") => ExitCode::SUCCESS,
        Some(_) if !followed && !state.is_terminal() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The job `wanted` names, by its name in the spec or as submitted: its id and
/// submitted name.
fn find_job(desired: &Desired, wanted: &str) -> Result<(ResourceId, String), String> {
    let jobs: Vec<_> = desired.workspaces.iter().flat_map(|w| &w.jobs).collect();
    let matching: Vec<_> = jobs
        .iter()
        .filter(|j| j.name == wanted || j.base_name == wanted)
        .collect();
    match matching.as_slice() {
        [job] => Ok((job.id.clone(), job.name.clone())),
        [] => {
            let known: Vec<String> = jobs
                .iter()
                .map(|j| format!("{} (submitted as {})", j.base_name, j.name))
                .collect();
            Err(if known.is_empty() {
                format!("no job `{wanted}`: the specs declare no jobs")
            } else {
                format!(
                    "no job `{wanted}` in the specs; they declare: {}",
                    known.join(", ")
                )
            })
        }
        several => Err(format!(
            "`{wanted}` names a job in {} workspaces; name it as submitted: {}",
            several.len(),
            several
                .iter()
                .map(|j| j.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Spec paths, for a command to print.
fn paths_text(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| shell_word(&p.display().to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}
