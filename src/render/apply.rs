//! What `apply` prints: one progress line per event (plain, so a CI log reads well),
//! each job's status changes under `--wait`, and the closing report.

use std::fmt::Write as _;
use std::time::Duration;

use crate::apply::drive::Event;
use crate::apply::follow::{FollowEvent, JobState};
use crate::apply::report::{ApplyOutcome, Report, StepResult};
use crate::diagnostic::escape as escape_text;
use crate::plan::{Action, Address, Kind};

/// `[+  12.3s]`: time since the apply started.
fn stamp(elapsed: Duration) -> String {
    format!("[+{:>6.1}s]", elapsed.as_secs_f64())
}

/// What a step does, as an -ing and an -ed word.
fn verbs(kind: &Kind, action: Action) -> (&'static str, &'static str) {
    match (kind, action) {
        (Kind::Code, _) => ("uploading", "uploaded"),
        (Kind::Job, _) => ("submitting", "submitted"),
        (_, Action::Update) => ("updating in place", "updated"),
        (_, Action::Replace) => ("REPLACING (delete, then create)", "replaced"),
        _ => ("creating", "created"),
    }
}

/// One line for a step's event. `step` gives the kind and action of `address`.
pub fn progress(
    elapsed: Duration,
    event: &Event<Address, String>,
    step: impl Fn(&Address) -> (Kind, Action),
) -> String {
    let line = match event {
        Event::Started(address) => {
            let (kind, action) = step(address);
            format!("{address}: {}...", verbs(&kind, action).0)
        }
        Event::Done(address) => {
            let (kind, action) = step(address);
            format!("{address}: {}", verbs(&kind, action).1)
        }
        Event::Failed(address, error) => format!("{address}: FAILED: {error}"),
        Event::Skipped { key, because } => {
            format!("{key}: skipped: it needs {because}, which failed")
        }
    };
    format!("{} {}", stamp(elapsed), escape_text(&line))
}

/// One line for what following saw. A line of a job's output is shown as written
/// (escaped), after `[job name] ` when `several` jobs are followed at once.
pub fn follow_progress(elapsed: Duration, event: &FollowEvent<'_>, several: bool) -> String {
    let line = match event {
        FollowEvent::Line { id, line } => {
            return if several {
                format!("[{}] {}", escape_text(id.name()), escape_text(line))
            } else {
                escape_text(line).into_owned()
            };
        }
        FollowEvent::LogsUnavailable { id, error } => format!(
            "job {}: its output cannot be shown ({error}); following its status",
            id.name()
        ),
        FollowEvent::Status(job) => {
            let status = job.status.as_deref().unwrap_or("unknown");
            let mut line = format!("job {}: {status}", job.id.name());
            if job.is_terminal()
                && let Some(url) = &job.studio_url
            {
                let _ = write!(line, " ({url})");
            }
            if let Some(error) = &job.error {
                let _ = write!(line, ": {error}");
            }
            line
        }
        FollowEvent::ReadFailed { id, error } => {
            format!(
                "job {}: could not read its status ({error}); trying again",
                id.name()
            )
        }
    };
    format!("{} {}", stamp(elapsed), escape_text(&line))
}

/// How a followed job ended (or stands): status, how long it ran, where to see it, its
/// error.
pub fn job_summary(job: &JobState) -> String {
    let mut line = format!(
        "job {}: {}",
        job.id.name(),
        job.status.as_deref().unwrap_or("status unknown")
    );
    if let Some(duration) = job.duration {
        let _ = write!(line, " after {:.1}s", duration.as_secs_f64());
    }
    if let Some(url) = &job.studio_url {
        let _ = write!(line, " ({url})");
    }
    if let Some(error) = &job.error {
        let _ = write!(line, ": {error}");
    }
    format!("{}\n", escape_text(&line))
}

/// The jobs being followed, with where to watch them.
pub fn following(jobs: &[JobState]) -> String {
    let mut out = String::new();
    for job in jobs {
        let _ = writeln!(
            out,
            "Following job {} until it ends (Ctrl-C stops following, not the job).",
            escape_text(job.id.name())
        );
    }
    out
}

/// The closing report, human form.
pub fn human(report: &Report, elapsed: Duration) -> String {
    let mut out = String::new();
    let failed: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.result == StepResult::Failed)
        .collect();
    let skipped = count(report, StepResult::Skipped);
    let not_started = count(report, StepResult::NotStarted);
    let done = format!(
        "{} created, {} updated, {} replaced, {} submitted",
        report.done(Action::Create)
            - report
                .steps
                .iter()
                .filter(|s| s.kind == Kind::Job && s.result == StepResult::Done)
                .count(),
        report.done(Action::Update),
        report.done(Action::Replace),
        report
            .steps
            .iter()
            .filter(|s| s.kind == Kind::Job && s.result == StepResult::Done)
            .count(),
    );
    let seconds = elapsed.as_secs_f64();
    match report.outcome {
        ApplyOutcome::Succeeded => {
            let _ = writeln!(out, "Apply complete in {seconds:.1}s: {done}.");
        }
        ApplyOutcome::Failed => {
            let _ = writeln!(
                out,
                "Apply failed after {seconds:.1}s: {done}; {} failed, {} skipped.",
                failed.len(),
                skipped
            );
        }
        ApplyOutcome::Interrupted => {
            let _ = writeln!(
                out,
                "Apply interrupted after {seconds:.1}s: {done}; {} failed, {} skipped, {} not started.",
                failed.len(),
                skipped,
                not_started
            );
        }
    }
    for step in &failed {
        let line = format!(
            "  failed: {}: {}",
            step.address,
            step.error.as_deref().unwrap_or("")
        );
        let _ = writeln!(out, "{}", escape_text(&line));
    }
    for job in &report.jobs {
        let mut line = format!(
            "  job {}: {}",
            job.id.rsplit('/').next().unwrap_or_default(),
            job.status.as_deref().unwrap_or("not seen")
        );
        if let Some(seconds) = job.duration_seconds {
            let _ = write!(line, " after {seconds:.1}s");
        }
        if let Some(url) = &job.studio_url {
            let _ = write!(line, " ({url})");
        }
        if let Some(error) = &job.error {
            let _ = write!(line, ": {error}");
        }
        let _ = writeln!(out, "{}", escape_text(&line));
    }
    if report.outcome != ApplyOutcome::Succeeded && report.jobs.iter().all(|j| j.status.is_some()) {
        let _ = writeln!(
            out,
            "Run apply again to finish: what is done is kept, and nothing is made twice."
        );
    }
    out
}

fn count(report: &Report, result: StepResult) -> usize {
    report.steps.iter().filter(|s| s.result == result).count()
}

/// `--format json`: the report itself, versioned.
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_escape_what_azure_said() {
        let address = Address::resource_group("rg");
        let line = progress(
            Duration::from_millis(1500),
            &Event::Failed(address.clone(), "bad\x1b[31m\nthing".to_string()),
            |_| (Kind::ResourceGroup, Action::Create),
        );
        assert!(!line.contains('\x1b') && !line.contains('\n'), "{line:?}");
        assert!(line.starts_with("[+   1.5s] rg: FAILED: bad"), "{line}");
        let started = progress(Duration::ZERO, &Event::Started(address.clone()), |_| {
            (Kind::Cluster, Action::Replace)
        });
        assert!(started.ends_with("rg: REPLACING (delete, then create)..."));
        let done = progress(Duration::ZERO, &Event::Done(address), |_| {
            (Kind::Cluster, Action::Update)
        });
        assert!(done.ends_with("rg: updated"));
    }
}
