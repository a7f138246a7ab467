//! `amlspec plan`: prepare (load the specs, work out the desired state, read Azure; see
//! `ops::prepare`) -> plan -> render.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::azure::client::ArmError;
use crate::observe::Preflight;
use crate::ops::prepare::{PrepareError, Prepared, Ready, prepare};
use crate::plan::{self, Plan};
use crate::render;
use crate::settings::{ConnectionSettings, PlanFormat, PlanSettings};
use crate::spec::{LoadOptions, interpolate::EnvVars};

/// Why no plan could be made; each has already been explained on stderr.
pub struct Failed;

pub async fn run(settings: PlanSettings) -> std::io::Result<ExitCode> {
    let PlanSettings {
        paths,
        format,
        out,
        detailed_exitcode,
        targets,
        unmanaged,
        load,
        preflight,
        connection,
    } = settings;
    let env = EnvVars::from_process();
    let annotate = format == PlanFormat::Github;
    let Ok((mut plan, ready)) = plan_and_inputs(
        paths,
        &targets,
        load,
        preflight,
        &connection,
        &env,
        annotate,
    )
    .await?
    else {
        return Ok(ExitCode::FAILURE);
    };
    let listed = if unmanaged {
        let exists: Vec<bool> = ready
            .observed
            .workspaces
            .iter()
            .map(|w| w.workspace.present().is_some())
            .collect();
        let client = &ready.connection.client;
        crate::observe::inventory::read_inventory(client, &ready.desired, &exists).await
    } else {
        Ok(Vec::new())
    };
    ready.connection.close().await;
    match listed {
        Ok(inventories) => plan.unmanaged = plan::unmanaged(&ready.desired, &inventories),
        Err(errors) => {
            print_errors(error_lines(&errors))?;
            return Ok(ExitCode::FAILURE);
        }
    }
    // Every form below, the saved plan and the step summary are made from the masked
    // plan; the writers mask again what escaping or formatting could have missed.
    let redactor = render::redact::active();
    let plan = render::plan::redacted(&plan, &redactor);
    print_plan(&plan, format)?;
    if let Some(path) = out {
        let saved = render::plan::json(&plan);
        write_atomically(&path, redactor.redact(&saved).as_bytes())?;
        let mut stderr = render::redact::stderr();
        writeln!(stderr, "Saved the plan to {}.", path.display())?;
        stderr.flush()?;
    }
    Ok(exit_code(&plan, detailed_exitcode))
}

/// Print `plan` (masked already) in `format` on stdout; `github` also appends the
/// markdown form to `$GITHUB_STEP_SUMMARY` when set.
pub fn print_plan(plan: &Plan, format: PlanFormat) -> std::io::Result<()> {
    let redactor = render::redact::active();
    let mut stdout = render::redact::stdout();
    let styled = super::styled();
    match format {
        PlanFormat::Human => write!(stdout, "{}", render::plan::human(plan, styled))?,
        PlanFormat::Json => write!(stdout, "{}", render::plan::json(plan))?,
        PlanFormat::Markdown => write!(stdout, "{}", render::plan::markdown(plan))?,
        PlanFormat::Github => {
            write!(stdout, "{}", render::plan::human(plan, styled))?;
            write!(
                stdout,
                "{}",
                render::plan::github_annotations(plan, &render::GithubPaths::from_process())
            )?;
            if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(summary)?;
                let mut file = render::redact::Masked::with(redactor.clone(), file);
                write!(
                    file,
                    "{}",
                    render::plan::markdown_within(plan, render::plan::STEP_SUMMARY_LIMIT)
                )?;
                file.flush()?;
            }
        }
    }
    stdout.flush()
}

/// 1 when the plan cannot be applied; with `--detailed-exitcode`, 2 when it changes
/// something and 0 when it does not.
pub fn exit_code(plan: &Plan, detailed: bool) -> ExitCode {
    if plan.is_blocked() {
        ExitCode::FAILURE
    } else if detailed && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// The plan and what it was made from (the connection still open, for `apply`), with
/// every problem printed on stderr; with `annotate`, also as GitHub workflow
/// annotations on stdout (`plan --format github`: a CI run shows why no plan was made).
pub async fn plan_and_inputs(
    paths: Vec<std::path::PathBuf>,
    targets: &[String],
    load: LoadOptions,
    preflight: Preflight,
    connection: &ConnectionSettings,
    env: &EnvVars,
    annotate: bool,
) -> std::io::Result<Result<(Plan, Ready), Failed>> {
    let specs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let Prepared { loaded, ready } = prepare(paths, load, preflight, connection, env).await;
    super::print_problems(&loaded)?;
    if annotate {
        annotate_problems(&loaded)?;
    }
    let errors: Vec<String> = match &ready {
        Ok(_) | Err(PrepareError::Specs) => Vec::new(),
        Err(PrepareError::Desired(errors)) => errors.iter().map(|e| e.to_string()).collect(),
        Err(PrepareError::Connect(error)) => vec![error.to_string()],
        Err(PrepareError::Observe(errors)) => error_lines(errors),
    };
    if !errors.is_empty() {
        print_errors(&errors)?;
        if annotate {
            let mut stdout = render::redact::stdout();
            for error in &errors {
                writeln!(
                    stdout,
                    "::error title=amlspec plan::{}",
                    render::escape_data(&crate::diagnostic::escape(error))
                )?;
            }
            stdout.flush()?;
        }
    }
    let Ok(ready) = ready else {
        return Ok(Err(Failed));
    };
    let mut plan = plan::plan_with_digest(
        &ready.desired,
        &ready.observed,
        ready.manifest_digest.clone(),
    );
    plan.specs = specs;
    let plan = match plan::targeted(plan, targets) {
        Ok(plan) => plan,
        Err(error) => {
            print_errors([error])?;
            ready.connection.close().await;
            return Ok(Err(Failed));
        }
    };
    tracing::info!(resources = plan.resources().count(), "planned");
    Ok(Ok((plan, ready)))
}

/// The specs' problems as GitHub annotations on their lines, on stdout.
fn annotate_problems(loaded: &crate::spec::Loaded) -> std::io::Result<()> {
    let redactor = render::redact::active();
    let paths = render::GithubPaths::from_process();
    let mut stdout = render::redact::stdout();
    for problem in &loaded.problems {
        let problem = redactor.diagnostic(problem);
        writeln!(stdout, "{}", render::diagnostics::github(&problem, &paths))?;
    }
    stdout.flush()
}

/// `error: ...` on stderr, one line per error.
pub fn print_errors(
    errors: impl IntoIterator<Item = impl std::fmt::Display>,
) -> std::io::Result<()> {
    let mut stderr = render::redact::stderr();
    for error in errors {
        writeln!(stderr, "error: {error}")?;
    }
    stderr.flush()
}

/// The errors of reading, one line each; a sign-in failure (the same for every read it
/// stopped) is said once, without the reads.
fn error_lines(errors: &[ArmError]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for error in errors {
        let line = match error {
            ArmError::Auth { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// Write through a temporary file in the same folder and rename, so a reader never
/// sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("plan")
    ));
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)
}
