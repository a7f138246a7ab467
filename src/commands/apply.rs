//! `amlspec apply`: make the plan (or reload a saved one and check it still holds),
//! show it, refuse what may not be done, confirm, turn it into steps
//! (`plan::step::steps`), execute them (`apply::execute`), optionally follow the jobs
//! (`apply::follow`), report.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::plan::{plan_and_inputs, print_errors};
use super::signals::Signals;
use crate::apply::drive::{Event, Ran};
use crate::apply::execute::{ExecuteOptions, execute};
use crate::apply::follow::JobState;
use crate::apply::report::{ApplyOutcome, Report};
use crate::plan::step::{self, Step};
use crate::plan::{self, Action, Address, Kind, Plan};
use crate::render;
use crate::settings::{ApplyFormat, ApplySettings};
use crate::spec::interpolate::EnvVars;

/// Saved plans larger than this are not plans (a spec, most likely).
const MAX_SAVED_PLAN_BYTES: u64 = 256 * 1024 * 1024;

pub async fn run(settings: ApplySettings) -> std::io::Result<ExitCode> {
    let env = EnvVars::from_process();
    let saved = match saved_plan(&settings.paths) {
        Ok(saved) => saved,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let paths = match &saved {
        Some(saved) if saved.specs.is_empty() => {
            print_errors([
                "the saved plan names no spec files (it was made by an older amlspec): make it again with `amlspec plan --out`",
            ])?;
            return Ok(ExitCode::FAILURE);
        }
        Some(_) if !settings.targets.is_empty() => {
            print_errors([
                "a saved plan keeps the targets it was made with: make it again with `amlspec plan --target ... --out`",
            ])?;
            return Ok(ExitCode::FAILURE);
        }
        Some(saved) => saved.specs.iter().map(PathBuf::from).collect(),
        None => settings.paths.clone(),
    };
    let targets = saved.as_ref().map_or(&settings.targets, |s| &s.targets);
    let Ok((plan, ready)) = plan_and_inputs(
        paths,
        targets,
        settings.load,
        settings.preflight,
        &settings.connection,
        &env,
        false,
    )
    .await?
    else {
        return Ok(ExitCode::FAILURE);
    };
    let code = apply_plan(&settings, saved.as_ref(), &plan, &ready).await;
    ready.connection.close().await;
    code
}

/// The one path given, read as a saved plan when its content is one (a JSON object
/// with `format_version`); `None` for specs (which the spec loader reads and checks).
fn saved_plan(paths: &[PathBuf]) -> Result<Option<Plan>, String> {
    let [path] = paths else {
        return Ok(None);
    };
    let Some(text) = saved_plan_text(path) else {
        return Ok(None);
    };
    plan::parse_saved(path, &text)
        .map(Some)
        .map_err(|error| error.to_string())
}

/// The text of `path` when it is a file of JSON with `format_version`.
fn saved_plan_text(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX_SAVED_PLAN_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .is_ok_and(|value| value.get("format_version").is_some())
        .then_some(text)
}

async fn apply_plan(
    settings: &ApplySettings,
    saved: Option<&Plan>,
    plan: &Plan,
    ready: &crate::ops::prepare::Ready,
) -> std::io::Result<ExitCode> {
    let redactor = render::redact::active();
    let shown = render::plan::redacted(plan, &redactor);
    let styled = super::styled();
    // The plan is data in human mode; beside a JSON report it goes to stderr.
    {
        let text = render::plan::human(&shown, styled);
        if settings.format == ApplyFormat::Json {
            let mut stderr = render::redact::stderr();
            write!(stderr, "{text}")?;
            stderr.flush()?;
        } else {
            let mut stdout = render::redact::stdout();
            write!(stdout, "{text}")?;
            stdout.flush()?;
        }
    }
    if let Some(saved) = saved {
        let moved = plan::stale(saved, &shown);
        if !moved.is_empty() {
            let mut lines = vec![
                "the saved plan no longer describes what apply would do; make it again with `amlspec plan --out`. What moved:".to_string(),
            ];
            lines.extend(moved.iter().map(|m| format!("  {m}")));
            print_errors([lines.join("\n")])?;
            return Ok(ExitCode::FAILURE);
        }
    }
    if plan.is_blocked() {
        print_errors([
            "the plan is blocked (see above): nothing was applied; change the specs or Azure and try again",
        ])?;
        return Ok(ExitCode::FAILURE);
    }
    let replacements: Vec<&Address> = plan
        .resources()
        .filter(|r| r.needs_allow_replace())
        .map(|r| &r.address)
        .collect();
    if !replacements.is_empty() && !settings.allow_replace {
        let list: Vec<String> = replacements.iter().map(|a| format!("  {a}")).collect();
        print_errors([format!(
            "the plan replaces (deletes, then creates) {}; nothing was applied. Pass --allow-replace to do it:\n{}",
            render::count(replacements.len(), "resource", "resources"),
            list.join("\n")
        )])?;
        return Ok(ExitCode::FAILURE);
    }
    let steps = match step::steps(plan, &ready.desired) {
        Ok(steps) => steps,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    if steps.is_empty() {
        // "No changes" was shown with the plan.
        return Ok(ExitCode::SUCCESS);
    }
    // A saved plan was reviewed when it was made: applying it is the approval.
    if saved.is_none() && !settings.auto_approve && !confirm(&replacements).await? {
        return Ok(ExitCode::FAILURE);
    }

    let started = Instant::now();
    let signals = Signals::listen();
    let client = &ready.connection.client;
    let options = ExecuteOptions {
        max_parallel: settings.connection.max_parallel,
        operation_timeout: settings.operation_timeout,
    };
    let mut log: Vec<Event<Address, String>> = Vec::new();
    let kinds = |address: &Address| -> (Kind, Action) {
        steps
            .iter()
            .find(|s| &s.address == address)
            .map(|s| (s.kind.clone(), s.action))
            .unwrap_or((Kind::Workspace, Action::Create))
    };
    let ran = {
        let on_event = |event: &Event<Address, String>| {
            let line = render::apply::progress(started.elapsed(), event, kinds);
            let mut stderr = render::redact::stderr();
            let _ = writeln!(stderr, "{line}");
            let _ = stderr.flush();
            log.push(event.clone());
        };
        let run = execute(client, steps.clone(), &options, signals.stopped(), on_event);
        tokio::select! {
            ran = run => Some(ran),
            () = signals.give_up(settings.grace) => None,
        }
    };
    let ran = match ran {
        Some(Ok(ran)) => ran,
        Some(Err(error)) => {
            print_errors([format!(
                "the plan's steps cannot be ordered: {error}; this is a bug in amlspec"
            )])?;
            return Ok(ExitCode::FAILURE);
        }
        None => {
            let mut stderr = render::redact::stderr();
            writeln!(
                stderr,
                "Stopped waiting for the steps still running; they may still finish in Azure, and the next apply picks up from there."
            )?;
            ran_from(&steps, &log)
        }
    };

    let mut jobs: Vec<JobState> = Vec::new();
    if settings.wait && !ran.stopped {
        let submitted: Vec<_> = steps
            .iter()
            .filter(|s| s.kind == Kind::Job && ran.done.contains(&s.address))
            .map(|s| s.id().clone())
            .collect();
        if !submitted.is_empty() {
            jobs = super::follow_jobs(client, submitted, started, signals.stopped()).await?;
        }
    }

    let mut report = Report::new(&steps, &ran, &jobs);
    if signals.signal().is_some() {
        report.outcome = ApplyOutcome::Interrupted;
    }
    match settings.format {
        ApplyFormat::Human => {
            let mut stdout = render::redact::stdout();
            write!(
                stdout,
                "{}",
                render::apply::human(&report, started.elapsed())
            )?;
            if let Some(signal) = signals.signal()
                && !jobs.is_empty()
            {
                writeln!(
                    stdout,
                    "Stopped following after {}; the jobs go on in Azure.",
                    signal.name()
                )?;
            }
            stdout.flush()?;
        }
        ApplyFormat::Json => {
            let mut stdout = render::redact::stdout();
            write!(stdout, "{}", render::apply::json(&report))?;
            stdout.flush()?;
        }
    }
    Ok(match (signals.signal(), report.outcome) {
        (Some(signal), _) => ExitCode::from(signal.exit_code()),
        (None, ApplyOutcome::Succeeded) => ExitCode::SUCCESS,
        (None, _) => ExitCode::FAILURE,
    })
}

/// How a run ended, from its events, when the run itself was given up (its steps did
/// not finish within the grace after a stop).
fn ran_from(steps: &[Step], log: &[Event<Address, String>]) -> Ran<Address, String> {
    let mut ran = Ran {
        done: Vec::new(),
        failed: Vec::new(),
        skipped: Vec::new(),
        not_started: Vec::new(),
        stopped: true,
    };
    for event in log {
        match event {
            Event::Started(_) => {}
            Event::Done(address) => ran.done.push(address.clone()),
            Event::Failed(address, error) => ran.failed.push((address.clone(), error.clone())),
            Event::Skipped { key, because } => ran.skipped.push((key.clone(), because.clone())),
        }
    }
    for step in steps {
        let address = &step.address;
        if !ran.done.contains(address)
            && !ran.failed.iter().any(|(a, _)| a == address)
            && !ran.skipped.iter().any(|(a, _)| a == address)
        {
            ran.not_started.push(address.clone());
        }
    }
    ran
}

/// Ask on the terminal; only `yes` goes on. Without a terminal, refuse.
async fn confirm(replacements: &[&Address]) -> std::io::Result<bool> {
    if !std::io::stdin().is_terminal() {
        print_errors([
            "no terminal to confirm on: pass --auto-approve to apply without confirmation, or apply a plan saved with `amlspec plan --out` (reviewed when it was made)",
        ])?;
        return Ok(false);
    }
    {
        let mut stderr = render::redact::stderr();
        if !replacements.is_empty() {
            writeln!(
                stderr,
                "\nThis deletes and creates again {}.",
                render::count(replacements.len(), "resource", "resources")
            )?;
        }
        write!(
            stderr,
            "\nApply these changes? Only 'yes' will be accepted: "
        )?;
        stderr.flush()?;
    }
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(std::io::Error::other)??;
    if answer.trim() == "yes" {
        return Ok(true);
    }
    let mut stderr = render::redact::stderr();
    writeln!(stderr, "Apply cancelled: nothing was changed.")?;
    stderr.flush()?;
    Ok(false)
}
