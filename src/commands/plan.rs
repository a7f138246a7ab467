//! `amlspec plan`: load specs -> desired state -> observe Azure -> plan -> render.
//! Signing in overlaps loading the specs, and reading the workspaces overlaps working
//! out the desired state (content addressing hashes source folders).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use futures::FutureExt;

use crate::azure::client::ArmError;
use crate::azure::ids::ResourceId;
use crate::cli::{AzureArgs, PlanArgs, PlanFormat};
use crate::commands::connect::{ConnectError, Connection, connect};
use crate::desired::{self, Desired};
use crate::observe;
use crate::plan::{self, Plan};
use crate::render;
use crate::spec::interpolate::EnvVars;

/// Why no plan could be made; each has already been explained on stderr.
pub struct Failed;

pub fn run(args: PlanArgs) -> std::io::Result<ExitCode> {
    let PlanArgs {
        paths,
        format,
        out,
        detailed_exitcode,
        azure,
    } = args;
    let env = EnvVars::from_process();
    let Ok(plan) = make_plan(&paths, &azure, &env)? else {
        return Ok(ExitCode::FAILURE);
    };
    // Every form below, the saved plan and the step summary are made from the masked
    // plan; the writers mask again what escaping or formatting could have missed.
    let redactor = render::redact::active();
    let plan = render::plan::redacted(&plan, &redactor);
    let mut stdout = render::redact::stdout();
    let styled = super::styled();
    match format {
        PlanFormat::Human => write!(stdout, "{}", render::plan::human(&plan, styled))?,
        PlanFormat::Json => write!(stdout, "{}", render::plan::json(&plan))?,
        PlanFormat::Markdown => write!(stdout, "{}", render::plan::markdown(&plan))?,
        PlanFormat::Github => {
            write!(stdout, "{}", render::plan::human(&plan, styled))?;
            write!(stdout, "{}", render::plan::github_annotations(&plan))?;
            if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(summary)?;
                let mut file = render::redact::Masked::with(redactor.clone(), file);
                write!(file, "{}", render::plan::markdown(&plan))?;
                file.flush()?;
            }
        }
    }
    stdout.flush()?;
    if let Some(path) = out {
        let saved = render::plan::json(&plan);
        write_atomically(&path, redactor.redact(&saved).as_bytes())?;
        let mut stderr = render::redact::stderr();
        writeln!(stderr, "Saved the plan to {}.", path.display())?;
        stderr.flush()?;
    }
    Ok(exit_code(&plan, detailed_exitcode))
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

/// Everything up to the plan; problems are printed on stderr as they are found.
pub fn make_plan(
    paths: &[std::path::PathBuf],
    azure: &AzureArgs,
    env: &EnvVars,
) -> std::io::Result<Result<Plan, Failed>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Against Azure, sign in while the specs load: the first token (and the connection
    // it opens) needs nothing from the specs, and every read waits for it. The emulator
    // is started once the specs name its subscriptions.
    let early = (!azure.emulator).then(|| {
        let (azure, env) = (azure.clone(), env.clone());
        runtime.spawn(async move {
            let connection = connect(&azure, &env, &[]).await?;
            connection.client.sign_in().await;
            Ok::<_, ConnectError>(connection)
        })
    });
    let loaded = super::load(paths, env);
    super::print_problems(&loaded)?;
    let Some(specs) = loaded.specs else {
        // Do not wait for a sign-in (the Azure CLI, say) whose token is not needed.
        runtime.shutdown_background();
        return Ok(Err(Failed));
    };
    let mut subscriptions: Vec<String> = specs
        .workspaces
        .iter()
        .map(|w| w.subscription_id.as_str().to_string())
        .collect();
    subscriptions.dedup();
    let workspace_ids: Vec<ResourceId> =
        specs.workspaces.iter().map(ResourceId::workspace).collect();

    // Content addressing hashes every job's source folder, which takes a while for big
    // folders; reading the workspaces needs nothing from it, so both go on at once. The
    // manifest digest (which depends only on the specs) is worked out next, while the
    // children are read.
    let (worked_out, desired) = tokio::sync::oneshot::channel();
    let digest = runtime.spawn_blocking(move || {
        let desired = desired::desired(&specs).map(Arc::new).map_err(Arc::new);
        tracing::info!(ok = desired.is_ok(), "worked out the desired state");
        let _ = worked_out.send(desired.clone());
        desired.ok().map(|desired| plan::manifest_digest(&desired))
    });
    // Dropped unsent only if working it out panicked: `digest` then holds the panic.
    let desired = async move { desired.await.ok() }.boxed().shared();
    let ready = desired
        .clone()
        .map(|desired| desired.and_then(Result::ok))
        .boxed()
        .shared();
    let observed = observe_all(
        &runtime,
        azure,
        env,
        early,
        &subscriptions,
        &workspace_ids,
        ready,
    );

    // Problems of the specs' own content (an unreadable source folder) come first.
    let desired = match runtime.block_on(desired) {
        Some(Ok(desired)) => desired,
        None => match runtime.block_on(digest) {
            Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
            Ok(_) => unreachable!("the desired state is sent unless working it out panicked"),
        },
        Some(Err(errors)) => {
            print_errors(errors.iter())?;
            runtime.shutdown_background();
            return Ok(Err(Failed));
        }
    };
    let observed = match observed {
        Ok(Some(observed)) => observed,
        Ok(None) => unreachable!("the desired state was worked out"),
        Err(errors) => {
            print_errors(errors)?;
            return Ok(Err(Failed));
        }
    };
    let manifest_digest = match runtime.block_on(digest) {
        Ok(Some(digest)) => digest,
        Ok(None) => unreachable!("the desired state was worked out"),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    };
    // Nothing runs on the runtime any more: do not wait for its idle threads to wind down.
    runtime.shutdown_background();
    let plan = plan::plan_with_digest(&desired, &observed, manifest_digest);
    tracing::info!(resources = plan.resources().count(), "planned");
    Ok(Ok(plan))
}

/// Connect (or take the connection made while the specs loaded) and read the workspaces,
/// then, once `desired` is ready, everything else it names; the errors as text when that
/// failed, `Ok(None)` when the desired state could not be worked out.
fn observe_all(
    runtime: &tokio::runtime::Runtime,
    azure: &AzureArgs,
    env: &EnvVars,
    early: Option<tokio::task::JoinHandle<Result<Connection, ConnectError>>>,
    subscriptions: &[String],
    workspace_ids: &[ResourceId],
    desired: observe::Pending<'static, Arc<Desired>>,
) -> Result<Option<observe::Observed>, Vec<String>> {
    runtime.block_on(async {
        let connection = match early {
            Some(task) => task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
            None => connect(azure, env, subscriptions).await,
        };
        let connection = match connection {
            Ok(connection) => connection,
            Err(error) => return Err(vec![error.to_string()]),
        };
        let observed = observe::observe_while(&connection.client, workspace_ids, desired).await;
        tracing::info!(
            requests = connection
                .client
                .stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed),
            "observed"
        );
        if let Some(emulator) = connection.emulator {
            emulator.shutdown().await;
        }
        observed.map_err(|errors| error_lines(&errors))
    })
}

/// `error: ...` on stderr, one line per error.
fn print_errors(errors: impl IntoIterator<Item = impl std::fmt::Display>) -> std::io::Result<()> {
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
