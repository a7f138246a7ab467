//! `amlspec export`: connect -> read what the workspace holds (`observe::contents`) ->
//! a manifest (`export`) -> checked by amlspec's own validator (what it refuses is left
//! out, with the reason) -> written atomically, or to stdout. Warnings on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::azure::client::ArmError;
use crate::export::{self, BuildOut, Export, Options, entry_of};
use crate::observe::contents::{ContentsError, read_contents};
use crate::ops::connect::connect;
use crate::render::redact::{self, Redactor};
use crate::settings::ExportSettings;
use crate::spec::LoadOptions;
use crate::spec::interpolate::EnvVars;

/// Rounds of leaving out what the validator refuses (each may make a job lose its
/// cluster, found by the next).
const CHECK_ROUNDS: usize = 5;

pub async fn run(settings: ExportSettings) -> std::io::Result<ExitCode> {
    let ExportSettings {
        subscription_id,
        resource_group,
        workspace,
        out,
        force,
        schema,
        connection,
    } = settings;
    let env = EnvVars::from_process();
    // Nothing read from the workspace is a secret (connections are listed, never
    // `listsecrets`); the service principal's secret still never reaches the output.
    let values: Vec<String> = ["AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        .iter()
        .filter_map(|name| env.get(name).filter(|v| !v.is_empty()).map(str::to_string))
        .collect();
    redact::install(Redactor::new(values));

    // Refuse to overwrite before reading anything.
    let target = match &out {
        Some(path) => match output_path(path, &workspace, force) {
            Ok(path) => Some(path),
            Err(message) => return fail(&message, None),
        },
        None => None,
    };

    let connection = match connect(&connection, &env).await {
        Ok(connection) => connection,
        Err(error) => return fail(&error.to_string(), None),
    };
    let read = read_contents(
        &connection.client,
        &subscription_id,
        &resource_group,
        &workspace,
    )
    .await;
    connection.close().await;
    let contents = match read {
        Ok(contents) => contents,
        Err(error) => {
            let hint = hint_for(&error, &resource_group);
            return fail(&error.to_string(), hint.as_deref());
        }
    };

    let options = Options {
        subscription_id: subscription_id.clone(),
        resource_group: resource_group.clone(),
        workspace: workspace.clone(),
        schema,
        exported_at: now(),
        side_files: target.is_some(),
    };
    let mut exported = export::export(&contents, &options);
    if let Err(problems) = check(&mut exported, &options) {
        let message = format!(
            "the exported manifest does not validate, which is a bug in amlspec export: {}",
            problems.join("; ")
        );
        return fail(
            &message,
            Some("please report it with the workspace's shape (no names needed)"),
        );
    }
    let text = exported.render(&options);

    match &target {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let side: Vec<(PathBuf, Vec<u8>)> = exported
                .side_files()
                .into_iter()
                .map(|(relative, text)| (dir.join(relative), text))
                .collect();
            // A folder written back (a build context, code) must hold exactly what was
            // read, or its content hash changes: an existing one is refused too.
            let folders: Vec<PathBuf> = exported
                .side_folders()
                .into_iter()
                .map(|relative| dir.join(relative))
                .collect();
            if !force
                && let Some(taken) = folders
                    .iter()
                    .chain(side.iter().map(|(p, _)| p))
                    .find(|p| p.exists())
            {
                return fail(
                    &format!("`{}` exists", taken.display()),
                    Some("pass --force to overwrite it, or export to another folder"),
                );
            }
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(dir)?;
                for (file, text) in &side {
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    super::plan::write_atomically(file, text)?;
                }
                super::plan::write_atomically(path, text.as_bytes())
            };
            if let Err(error) = write() {
                return fail(
                    &format!("failed to write `{}`: {error}", path.display()),
                    None,
                );
            }
        }
        None => {
            let mut stdout = redact::stdout();
            write!(stdout, "{text}")?;
            stdout.flush()?;
        }
    }

    let mut stderr = redact::stderr();
    for note in &exported.notes {
        let verb = if note.skipped {
            "not exported"
        } else {
            "exported"
        };
        writeln!(
            stderr,
            "warning: {} {} {verb}: {}",
            note.kind,
            crate::diagnostic::quoted(&note.name),
            crate::diagnostic::escape(&note.message)
        )?;
    }
    writeln!(
        stderr,
        "{}",
        summary(&exported, &workspace, target.as_deref())
    )?;
    let variables: Vec<&str> = exported
        .registries
        .iter()
        .flat_map(|r| {
            let username = r.username.is_none().then_some(r.username_variable.as_str());
            username.into_iter().chain([r.password_variable.as_str()])
        })
        .collect();
    let file = target
        .as_ref()
        .map_or_else(|| "FILE".to_string(), |p| p.display().to_string());
    if variables.is_empty() {
        writeln!(
            stderr,
            "hint: check it with `amlspec plan {file}`: it should say \"No changes\""
        )?;
    } else {
        writeln!(
            stderr,
            "hint: set {}, then `amlspec plan {file}`: it should say \"No changes\"",
            variables.join(", ")
        )?;
    }
    stderr.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Where the manifest goes: `path`, or `path/<workspace>.yaml` for a folder; an
/// existing file only with `force`.
fn output_path(path: &Path, workspace: &str, force: bool) -> Result<PathBuf, String> {
    let file = if path.is_dir() {
        path.join(format!("{workspace}.yaml"))
    } else {
        path.to_path_buf()
    };
    if file.is_dir() {
        return Err(format!("`{}` is a folder", file.display()));
    }
    if !force && file.exists() {
        return Err(format!(
            "`{}` exists: pass --force to overwrite it",
            file.display()
        ));
    }
    Ok(file)
}

/// Validate the manifest as `amlspec validate` would (in a private temporary folder,
/// with its conda files, every `${NAME}` unset), leaving out each entry it refuses;
/// the problems that no entry explains otherwise.
fn check(exported: &mut Export, options: &Options) -> Result<(), Vec<String>> {
    for _ in 0..CHECK_ROUNDS {
        let problems = validate(exported, options).map_err(|e| vec![e.to_string()])?;
        if problems.is_empty() {
            return Ok(());
        }
        // From the last entry back, so indices stay true as entries go.
        let mut entries: Vec<(String, usize, String)> = Vec::new();
        let mut other = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        for (path, message) in problems {
            match entry_of(&path) {
                Some((section, index)) if section != "workspace" => {
                    if !entries.iter().any(|(s, i, _)| s == section && *i == index) {
                        entries.push((section.to_string(), index, message));
                    }
                }
                _ => {
                    let key = path
                        .strip_prefix("workspace.")
                        .map(|rest| rest.split(['.', '[']).next().unwrap_or_default());
                    match key {
                        Some(key) if dropped.iter().any(|d| d == key) => {}
                        Some(key) if exported.drop_workspace_key(key, &message) => {
                            dropped.push(key.to_string());
                        }
                        _ => other.push(format!("{path}: {message}")),
                    }
                }
            }
        }
        if !other.is_empty() {
            return Err(other);
        }
        entries.sort_by(|a, b| (&a.0, b.1).cmp(&(&b.0, a.1)));
        for (section, index, message) in entries {
            exported.drop_entry(&section, index, &message);
        }
    }
    Err(vec![
        "it still does not validate after leaving out what was refused".into(),
    ])
}

/// The validator's errors on the manifest: (key path, message).
fn validate(exported: &Export, options: &Options) -> std::io::Result<Vec<(String, String)>> {
    let dir = std::env::temp_dir().join(format!("amlspec-export-{}", uuid::Uuid::new_v4()));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    let result = (|| -> std::io::Result<Vec<(String, String)>> {
        let spec = dir.join("manifest.yaml");
        for (relative, text) in exported.side_files() {
            let file = dir.join(relative);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(file, text)?;
        }
        std::fs::write(&spec, exported.render(options))?;
        // A build context written back must hash as Azure has it, or plan would block.
        let mut problems = Vec::new();
        for (index, env) in exported.environments.iter().enumerate() {
            let BuildOut::Folder { uri, .. } = &env.build else {
                continue;
            };
            let folder = dir.join(export::context_path(&env.name));
            match crate::snapshot::snapshot(&folder) {
                Ok(snapshot) if uri.contains(&snapshot.hash) => {}
                Ok(_) => problems.push((
                    format!("environments[{index}]"),
                    "its build context, written back, does not hash to the content hash in its URI (ignore rules inside it?)".to_string(),
                )),
                Err(error) => problems.push((format!("environments[{index}]"), error.to_string())),
            }
        }
        // So must a job's code, or plan would submit it again.
        for (index, job) in exported.jobs.iter().enumerate() {
            let Some(code) = &job.code else {
                continue;
            };
            let folder = dir.join(export::code_path(&job.name));
            match crate::snapshot::snapshot(&folder) {
                Ok(snapshot) if snapshot.hash == code.hash => {}
                Ok(_) => problems.push((
                    format!("jobs[{index}]"),
                    "its code snapshot, written back, does not hash to the content hash it was submitted with (ignore rules inside it?)".to_string(),
                )),
                Err(error) => problems.push((format!("jobs[{index}]"), error.to_string())),
            }
        }
        let loaded = crate::spec::load_with(
            &[spec],
            &EnvVars::default(),
            LoadOptions {
                allow_outside_repo: false,
                allow_secret_files: false,
                allow_unset: true,
            },
        );
        problems.extend(
            loaded
                .problems
                .iter()
                .filter(|p| p.is_error())
                .map(|p| (p.path.clone(), p.message.clone())),
        );
        Ok(problems)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn summary(exported: &Export, workspace: &str, target: Option<&Path>) -> String {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let skipped = exported.notes.iter().filter(|n| n.skipped).count();
    format!(
        "Exported workspace {} with {}, {}, {} and {}{}{}.",
        crate::diagnostic::quoted(workspace),
        count(exported.registries.len(), "registry", "registries"),
        count(exported.environments.len(), "environment", "environments"),
        count(exported.clusters.len(), "cluster", "clusters"),
        count(exported.jobs.len(), "job", "jobs"),
        target.map_or_else(String::new, |p| format!(" to {}", p.display())),
        if skipped > 0 {
            format!("; {skipped} left out (warnings above)")
        } else {
            String::new()
        }
    )
}

/// What to do about a failed read.
fn hint_for(error: &ContentsError, resource_group: &str) -> Option<String> {
    match error {
        ContentsError::Missing {
            what: "workspace", ..
        } => Some(format!(
            "check the names: `az ml workspace list -g {resource_group}` lists the workspaces of the group"
        )),
        ContentsError::Missing { .. } => {
            Some("check the resource group's name and the subscription (`--subscription`)".into())
        }
        ContentsError::Arm(ArmError::Status { status: 403, .. }) => Some(
            "export only reads: grant the identity Reader on the workspace (or its resource group)"
                .into(),
        ),
        ContentsError::Arm(_) => None,
    }
}

fn fail(message: &str, hint: Option<&str>) -> std::io::Result<ExitCode> {
    let mut stderr = redact::stderr();
    writeln!(stderr, "error: {message}")?;
    if let Some(hint) = hint {
        writeln!(stderr, "hint: {hint}")?;
    }
    stderr.flush()?;
    Ok(ExitCode::FAILURE)
}

/// The time of the export, to the second, for the header.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
