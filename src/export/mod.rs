//! `amlspec export`, pure: what a workspace holds (`observe::contents`, ARM's JSON) ->
//! a manifest that plans "No changes" against it, plus a note for everything that the
//! manifest cannot say (skipped, or exported with what it loses). No I/O, no clock.
//!
//! How each kind is exported, so that `plan` finds exactly what is there:
//! - registries: container-registry connections with a user name and password; the
//!   password becomes a `${NAME}` reference (never read: connections are listed, not
//!   `listsecrets`), the variable named after the connection;
//! - environments: the newest version of each, pinned (`version:`), so plan compares
//!   that version's definition rather than deriving a new content-addressed one; a conda
//!   file is written beside the manifest; a Dockerfile build only when its context was
//!   one Dockerfile whose text could be read back (`dockerfile:`);
//! - clusters: AmlCompute, with their scale settings;
//! - jobs: the latest run of each job amlspec submitted, when its submitted name can be
//!   derived again from what the manifest says (so plan matches it and never submits it
//!   again). A run submitted by another client has a name no manifest can produce:
//!   declaring it would run it again, so it is left out, as are runs with a code
//!   snapshot (export does not download code).

pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::desired::{RunDefinition, run_name};
use crate::observe::contents::{BuildRead, Contents};
use crate::spec::model::Distribution;

/// How the manifest is written.
#[derive(Debug, Clone)]
pub struct Options {
    pub subscription_id: String,
    pub resource_group: String,
    pub workspace: String,
    /// The modeline's schema reference.
    pub schema: String,
    /// When it was read (RFC 3339), for the header.
    pub exported_at: String,
    /// Files beside the manifest may be written (conda files); not on stdout.
    pub side_files: bool,
}

/// The manifest to write, and what it could not say.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub workspace: WorkspaceOut,
    pub registries: Vec<RegistryOut>,
    pub environments: Vec<EnvironmentOut>,
    pub clusters: Vec<ClusterOut>,
    pub jobs: Vec<JobOut>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceOut {
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegistryOut {
    pub name: String,
    pub address: String,
    /// `None`: Azure did not return it; a `${NAME}` reference is written instead.
    pub username: Option<String>,
    pub username_variable: String,
    pub password_variable: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentOut {
    pub name: String,
    pub version: String,
    pub build: BuildOut,
    pub registry: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BuildOut {
    Image {
        image: String,
        /// The conda file's text, written beside the manifest.
        conda: Option<String>,
    },
    Dockerfile {
        text: String,
    },
    /// A build context folder, written beside the manifest under `context_path`.
    Folder {
        /// Where Azure has it (its content hash is in it).
        uri: String,
        dockerfile_path: String,
        files: Vec<(String, Vec<u8>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOut {
    pub name: String,
    pub vm_size: String,
    pub low_priority: bool,
    pub min_nodes: u64,
    pub max_nodes: u64,
    pub idle_seconds: Option<u64>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobOut {
    pub name: String,
    /// The run it stands for.
    pub submitted: String,
    pub experiment: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub command: String,
    /// An `environments` entry by name, or `name:version`.
    pub environment: String,
    pub cluster: String,
    pub node_count: u32,
    pub distribution: Option<Distribution>,
    pub environment_variables: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Its code snapshot, written beside the manifest as its `source_directory`.
    pub code: Option<CodeOut>,
    /// The run's status in Azure.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeOut {
    /// The content hash the run was submitted with.
    pub hash: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Something the manifest does not say as Azure has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// `registry`, `environment`, `cluster`, `job`, `connection`, `compute`, `workspace`.
    pub kind: &'static str,
    pub name: String,
    pub message: String,
    /// Left out of the manifest (else exported, with what it loses).
    pub skipped: bool,
}

impl Note {
    fn skipped(kind: &'static str, name: &str, message: impl Into<String>) -> Note {
        Note {
            kind,
            name: name.to_string(),
            message: message.into(),
            skipped: true,
        }
    }

    fn lossy(kind: &'static str, name: &str, message: impl Into<String>) -> Note {
        Note {
            kind,
            name: name.to_string(),
            message: message.into(),
            skipped: false,
        }
    }
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// Tags as text, as `observe::live` reads them (so plan compares the same values).
fn tags(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| match v {
            Value::String(text) => (k.clone(), text.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}

fn count(value: Option<&Value>) -> Option<u64> {
    value.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// The environment variable for a connection's secret: `MY_ACR_PASSWORD` for `my-acr`.
pub fn variable_for(name: &str, what: &str) -> String {
    let mut variable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !variable.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        variable.insert(0, '_');
    }
    format!("{variable}_{what}")
}

/// Sort key of a name: as Azure compares them, without case.
fn by_name(name: &str) -> (String, String) {
    (name.to_ascii_lowercase(), name.to_string())
}

/// Turn what a workspace holds into a manifest, noting what does not fit.
pub fn export(contents: &Contents, options: &Options) -> Export {
    let mut notes = Vec::new();
    let ws = &contents.workspace;
    let workspace = WorkspaceOut {
        name: text(ws, "/name").unwrap_or_else(|| options.workspace.clone()),
        subscription_id: options.subscription_id.to_ascii_lowercase(),
        resource_group: options.resource_group.clone(),
        location: text(ws, "/location").map(|l| l.to_ascii_lowercase().replace(' ', "")),
        description: non_empty(text(ws, "/properties/description")),
        tags: tags(ws.get("tags")),
    };
    let registries = registries(&contents.connections, &mut notes);
    let environments = environments(contents, &registries, options, &mut notes);
    let clusters = clusters(&contents.computes, &mut notes);
    let mut export = Export {
        workspace,
        registries,
        environments,
        clusters,
        jobs: Vec::new(),
        notes,
    };
    let mut notes = std::mem::take(&mut export.notes);
    export.jobs = jobs(contents, &export, options, &mut notes);
    export.notes = notes;
    export.notes.sort();
    export.notes.dedup();
    export
}

fn registries(connections: &[Value], notes: &mut Vec<Note>) -> Vec<RegistryOut> {
    let mut out = Vec::new();
    let mut variables = BTreeSet::new();
    for connection in connections {
        let Some(name) = text(connection, "/name") else {
            continue;
        };
        let category = text(connection, "/properties/category").unwrap_or_default();
        let auth = text(connection, "/properties/authType").unwrap_or_default();
        if category != "ContainerRegistry" {
            notes.push(Note::skipped(
                "connection",
                &name,
                format!("its category is {category}; a manifest declares only container registries (ContainerRegistry)"),
            ));
            continue;
        }
        if auth != "UsernamePassword" {
            notes.push(Note::skipped(
                "registry",
                &name,
                format!("it signs in with {auth}; a manifest's registries sign in with a user name and password (UsernamePassword)"),
            ));
            continue;
        }
        let target = text(connection, "/properties/target").unwrap_or_default();
        if !crate::spec::names::is_registry_address(&target) {
            notes.push(Note::skipped(
                "registry",
                &name,
                format!(
                    "its target {} is not a registry host (and optional port), which is what a manifest's `address` holds",
                    crate::diagnostic::quoted(&target)
                ),
            ));
            continue;
        }
        // Two names that differ only in punctuation would share a variable.
        let mut password_variable = variable_for(&name, "PASSWORD");
        let mut n = 2;
        while !variables.insert(password_variable.clone()) {
            password_variable = format!("{}_{n}", variable_for(&name, "PASSWORD"));
            n += 1;
        }
        let username = non_empty(text(connection, "/properties/credentials/username"));
        if username.is_none() {
            notes.push(Note::lossy(
                "registry",
                &name,
                format!(
                    "Azure did not return its user name: set {} to it",
                    variable_for(&name, "USERNAME")
                ),
            ));
        }
        out.push(RegistryOut {
            username_variable: variable_for(&name, "USERNAME"),
            password_variable,
            address: target.to_ascii_lowercase(),
            username,
            name,
        });
    }
    out.sort_by_key(|r| by_name(&r.name));
    out
}

/// The host of an image reference, when it names one (`host[:port]/repository...`).
fn image_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

fn environments(
    contents: &Contents,
    registries: &[RegistryOut],
    options: &Options,
    notes: &mut Vec<Note>,
) -> Vec<EnvironmentOut> {
    let mut out = Vec::new();
    for container in &contents.environments {
        let name = &container.name;
        let Some(newest) = container.versions.first() else {
            notes.push(Note::skipped(
                "environment",
                name,
                "it has no version to declare",
            ));
            continue;
        };
        let version = text(newest, "/name").unwrap_or_default();
        let label = format!("{name}:{version}");
        if container.versions.len() > 1 {
            notes.push(Note::lossy(
                "environment",
                &label,
                format!(
                    "the newest of {} versions; a manifest declares one version per environment (the others stay in Azure, and jobs may still name them as `{name}:<version>`)",
                    container.versions.len()
                ),
            ));
        }
        let p = &newest["properties"];
        if text(p, "/environmentType").as_deref() == Some("Curated") {
            notes.push(Note::skipped(
                "environment",
                &label,
                "it is curated by Azure ML; jobs name it as `name:version` or `name@latest`",
            ));
            continue;
        }
        if text(p, "/osType").is_some_and(|os| os.eq_ignore_ascii_case("Windows")) {
            notes.push(Note::skipped(
                "environment",
                &label,
                "it is a Windows environment; a manifest declares Linux ones",
            ));
            continue;
        }
        for (key, what) in [
            ("/inferenceConfig", "its inference configuration"),
            ("/autoRebuild", "its automatic rebuild"),
        ] {
            let set = match p.pointer(key) {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => s != "Disabled",
                Some(_) => true,
            };
            if set {
                notes.push(Note::lossy(
                    "environment",
                    &label,
                    format!("{what} is not in the manifest (the version keeps it; a new version would not)"),
                ));
            }
        }
        let image = non_empty(text(p, "/image"));
        let conda = non_empty(text(p, "/condaFile"));
        let context = non_empty(text(p, "/build/contextUri"));
        let build = match (image, context) {
            (Some(image), None) => {
                if conda.is_some() && !options.side_files {
                    notes.push(Note::skipped(
                        "environment",
                        &label,
                        "it has a conda file, which a manifest names as a file beside it: export with --out to write it",
                    ));
                    continue;
                }
                BuildOut::Image { image, conda }
            }
            (None, Some(uri)) => {
                let dockerfile_path =
                    text(p, "/build/dockerfilePath").unwrap_or_else(|| "Dockerfile".into());
                let cannot = |why: &str| {
                    Note::skipped(
                        "environment",
                        &label,
                        format!(
                            "{why}, so export cannot write it: copy its build context `{}` next to the manifest and declare it with `dockerfile_path` and `version: {version}`",
                            crate::diagnostic::escape(&uri),
                        ),
                    )
                };
                match contents.builds.get(&uri) {
                    Some(Ok(BuildRead::Dockerfile(text))) => {
                        BuildOut::Dockerfile { text: text.clone() }
                    }
                    Some(Ok(BuildRead::Folder(files))) => {
                        if !options.side_files {
                            notes.push(Note::skipped(
                                "environment",
                                &label,
                                "its build context is a folder, which a manifest names beside it: export with --out to write it",
                            ));
                            continue;
                        }
                        if let Some((bad, _)) =
                            files.iter().find(|(relative, _)| !safe_relative(relative))
                        {
                            notes.push(cannot(&format!(
                                "its build context holds {}, not a plain relative path",
                                crate::diagnostic::quoted(bad)
                            )));
                            continue;
                        }
                        if !safe_relative(&dockerfile_path)
                            || !files
                                .iter()
                                .any(|(relative, _)| *relative == dockerfile_path)
                        {
                            notes.push(cannot(&format!(
                                "its Dockerfile {} is not in its build context",
                                crate::diagnostic::quoted(&dockerfile_path)
                            )));
                            continue;
                        }
                        notes.extend(credential_files("environment", &label, files));
                        BuildOut::Folder {
                            uri: uri.clone(),
                            dockerfile_path,
                            files: files.clone(),
                        }
                    }
                    Some(Err(why)) => {
                        notes.push(cannot(why));
                        continue;
                    }
                    None => {
                        notes.push(cannot("its build context was not read"));
                        continue;
                    }
                }
            }
            (Some(_), Some(_)) => {
                notes.push(Note::skipped(
                    "environment",
                    &label,
                    "it has both an image and a build context; a manifest gives one",
                ));
                continue;
            }
            (None, None) => {
                notes.push(Note::skipped(
                    "environment",
                    &label,
                    "it has neither an image nor a build context",
                ));
                continue;
            }
        };
        let registry = match &build {
            BuildOut::Image { image, .. } => image_host(image).and_then(|host| {
                registries
                    .iter()
                    .find(|r| r.address == host)
                    .map(|r| r.name.clone())
            }),
            BuildOut::Dockerfile { .. } | BuildOut::Folder { .. } => None,
        };
        out.push(EnvironmentOut {
            name: name.clone(),
            version,
            build,
            registry,
            description: non_empty(text(p, "/description")),
            tags: tags(p.get("tags")),
        });
    }
    out.sort_by_key(|e| by_name(&e.name));
    out
}

fn clusters(computes: &[Value], notes: &mut Vec<Note>) -> Vec<ClusterOut> {
    let mut out = Vec::new();
    for compute in computes {
        let Some(name) = text(compute, "/name") else {
            continue;
        };
        let p = &compute["properties"];
        let kind = text(p, "/computeType").unwrap_or_default();
        if !kind.eq_ignore_ascii_case("AmlCompute") {
            notes.push(Note::skipped(
                "compute",
                &name,
                format!("it is a {kind}; a manifest declares AmlCompute clusters"),
            ));
            continue;
        }
        let aml = &p["properties"];
        let Some(vm_size) = non_empty(text(aml, "/vmSize")) else {
            notes.push(Note::skipped("cluster", &name, "Azure gave no VM size"));
            continue;
        };
        let scale = &aml["scaleSettings"];
        let max_nodes = count(scale.get("maxNodeCount")).unwrap_or(0);
        if max_nodes == 0 {
            notes.push(Note::skipped(
                "cluster",
                &name,
                "its most nodes is 0; a manifest's max_nodes is at least 1",
            ));
            continue;
        }
        if text(p, "/provisioningState").as_deref() == Some("Failed") {
            notes.push(Note::lossy(
                "cluster",
                &name,
                "its provisioning failed in Azure: plan will propose to create it again",
            ));
        }
        for (key, what) in [
            ("/subnet", "its subnet"),
            ("/userAccountCredentials", "its admin user account"),
            ("/virtualMachineImage", "its custom VM image"),
        ] {
            if aml.pointer(key).is_some_and(|v| !v.is_null()) {
                notes.push(Note::lossy(
                    "cluster",
                    &name,
                    format!("{what} is not in the manifest: plan does not compare it, and a replacement would lose it"),
                ));
            }
        }
        if text(aml, "/osType").is_some_and(|os| os.eq_ignore_ascii_case("Windows")) {
            notes.push(Note::lossy(
                "cluster",
                &name,
                "it runs Windows, which the manifest does not say: a replacement would run Linux",
            ));
        }
        if compute.get("identity").is_some_and(|v| !v.is_null()) {
            notes.push(Note::lossy(
                "cluster",
                &name,
                "its managed identity is not in the manifest: a replacement would have none",
            ));
        }
        out.push(ClusterOut {
            low_priority: text(aml, "/vmPriority")
                .is_some_and(|p| p.eq_ignore_ascii_case("LowPriority")),
            min_nodes: count(scale.get("minNodeCount")).unwrap_or(0),
            max_nodes,
            idle_seconds: scale
                .get("nodeIdleTimeBeforeScaleDown")
                .and_then(Value::as_str)
                .and_then(crate::duration::iso8601_seconds),
            description: non_empty(text(p, "/description")),
            tags: tags(compute.get("tags")),
            vm_size,
            name,
        });
    }
    out.sort_by_key(|c| by_name(&c.name));
    out
}

/// A job's last segment of an ARM id of kind `kind` (`.../computes/{name}`).
fn id_part<'t>(id: &'t str, kind: &str) -> Option<&'t str> {
    let parts: Vec<&str> = id.split('/').collect();
    let at = parts.iter().rposition(|p| p.eq_ignore_ascii_case(kind))?;
    parts.get(at + 1).copied()
}

fn distribution(value: &Value) -> Result<Option<Vec<Distribution>>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let n = |key: &str| count(value.get(key)).and_then(|n| u32::try_from(n).ok());
    let kind = text(value, "/distributionType").unwrap_or_default();
    Ok(Some(match kind.as_str() {
        "PyTorch" => vec![Distribution::PyTorch {
            processes_per_node: n("processCountPerInstance").unwrap_or(1),
        }],
        "Mpi" => vec![Distribution::Mpi {
            processes_per_node: n("processCountPerInstance").unwrap_or(1),
        }],
        "TensorFlow" => {
            let parameter_server_count = n("parameterServerCount").unwrap_or(0);
            // amlspec sends the worker count the spec gives, or the node count.
            let mut candidates = vec![Distribution::TensorFlow {
                worker_count: None,
                parameter_server_count,
            }];
            if let Some(workers) = n("workerCount") {
                candidates.insert(
                    0,
                    Distribution::TensorFlow {
                        worker_count: Some(workers),
                        parameter_server_count,
                    },
                );
            }
            candidates
        }
        other => {
            return Err(format!(
                "its distribution {other} is not one a manifest declares"
            ));
        }
    }))
}

fn jobs(
    contents: &Contents,
    export: &Export,
    options: &Options,
    notes: &mut Vec<Note>,
) -> Vec<JobOut> {
    let jobs = &contents.jobs;
    let mut foreign = Vec::new();
    // The latest run of each job name, by submission order.
    let mut latest: BTreeMap<String, (String, JobOut)> = BTreeMap::new();
    let mut older: BTreeMap<String, usize> = BTreeMap::new();
    for job in jobs {
        let Some(submitted) = text(job, "/name") else {
            continue;
        };
        let p = &job["properties"];
        let Some(base) = text(p, "/properties/amlspec_job") else {
            foreign.push(submitted);
            continue;
        };
        let mut warnings = Vec::new();
        match job_out(
            &submitted,
            &base,
            job,
            export,
            contents,
            options,
            &mut warnings,
        ) {
            Ok(out) => {
                notes.append(&mut warnings);
                let created = text(job, "/systemData/createdAt").unwrap_or_default();
                let key = base.to_ascii_lowercase();
                match latest.get(&key) {
                    Some((seen, _)) if *seen > created => {
                        *older.entry(key).or_default() += 1;
                    }
                    Some(_) => {
                        *older.entry(key.clone()).or_default() += 1;
                        latest.insert(key, (created, out));
                    }
                    None => {
                        latest.insert(key, (created, out));
                    }
                }
            }
            Err(why) => notes.push(Note::skipped("job", &submitted, why)),
        }
    }
    // Each by name, up to a few; a workspace may hold thousands.
    foreign.sort();
    const NAMED: usize = 5;
    let why = "it was not submitted by amlspec: a manifest's job is submitted under a name made from its definition, so declaring it would run it again";
    for name in foreign.iter().take(NAMED) {
        notes.push(Note::skipped("job", name, why));
    }
    if foreign.len() > NAMED {
        notes.push(Note::skipped(
            "job",
            &format!("{} more runs", foreign.len() - NAMED),
            why.replace("it was", "they were")
                .replace("declaring it would run it", "declaring them would run them"),
        ));
    }
    let mut out = Vec::new();
    for (key, (_, job)) in latest {
        if let Some(n) = older.get(&key) {
            notes.push(Note::lossy(
                "job",
                &job.name,
                format!(
                    "run {} is declared, the latest; {n} earlier run(s) stay in Azure (a manifest declares one run per job)",
                    crate::diagnostic::quoted(&job.submitted)
                ),
            ));
        }
        if let Some(status @ ("Failed" | "Canceled")) = job.status.as_deref() {
            notes.push(Note::lossy(
                "job",
                &job.name,
                format!(
                    "run {} ended {status}; declared as it is, apply does not run it again (change the job to run it anew)",
                    crate::diagnostic::quoted(&job.submitted)
                ),
            ));
        }
        out.push(job);
    }
    out.sort_by_key(|j| by_name(&j.name));
    out
}

/// The manifest entry that reproduces run `submitted`, or why there is none.
fn job_out(
    submitted: &str,
    base: &str,
    job: &Value,
    export: &Export,
    contents: &Contents,
    options: &Options,
    warnings: &mut Vec<Note>,
) -> Result<JobOut, String> {
    let p = &job["properties"];
    let kind = text(p, "/jobType").unwrap_or_default();
    if kind != "Command" {
        return Err(format!(
            "it is a {kind} job; a manifest declares command jobs"
        ));
    }
    let code = match non_empty(text(p, "/codeId")) {
        None => None,
        Some(code_id) => {
            let read = match contents.codes.get(&code_id) {
                Some(Ok(read)) => read,
                Some(Err(why)) => {
                    return Err(format!(
                        "{why}: declare the job with its `source_directory` (an unchanged folder plans as this run)"
                    ));
                }
                None => return Err("its code snapshot was not read".into()),
            };
            if !options.side_files {
                return Err(
                    "its code snapshot is a folder, which a manifest names beside it: export with --out to write it"
                        .into(),
                );
            }
            if let Some((bad, _)) = read.files.iter().find(|(r, _)| !safe_relative(r)) {
                return Err(format!(
                    "its code snapshot holds {}, not a plain relative path",
                    crate::diagnostic::quoted(bad)
                ));
            }
            let Some(hash) = read.hash.clone() else {
                return Err("its code version records no content hash (hash_sha256)".into());
            };
            if let Some(note) = credential_files("job", base, &read.files) {
                warnings.push(note);
            }
            Some(CodeOut {
                hash,
                files: read.files.clone(),
            })
        }
    };
    let command = text(p, "/command").unwrap_or_default();
    let environment_id = text(p, "/environmentId").unwrap_or_default();
    let (Some(env_name), Some(env_version)) = (
        id_part(&environment_id, "environments"),
        id_part(&environment_id, "versions"),
    ) else {
        return Err(format!(
            "its environment {} is not a workspace environment version",
            crate::diagnostic::quoted(&environment_id)
        ));
    };
    let compute_id = text(p, "/computeId").unwrap_or_default();
    let Some(cluster) = id_part(&compute_id, "computes") else {
        return Err("it names no compute".into());
    };
    let Some(cluster) = export
        .clusters
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(cluster))
    else {
        return Err(format!(
            "its cluster {} is not exported",
            crate::diagnostic::quoted(cluster)
        ));
    };
    let node_count = count(p.pointer("/resources/instanceCount"))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    let experiment = non_empty(text(p, "/experimentName")).unwrap_or_else(|| "Default".into());
    let environment_variables = tags(p.get("environmentVariables"));
    let distributions = distribution(p.get("distribution").unwrap_or(&Value::Null))?;
    let declared = export
        .environments
        .iter()
        .find(|e| e.name == env_name && e.version == env_version);
    let references = [
        format!("{env_name}:{env_version}"),
        format!("{env_name}@latest"),
    ];
    let distributions: Vec<Option<Distribution>> = match distributions {
        None => vec![None],
        Some(list) => list.into_iter().map(Some).collect(),
    };
    for reference in &references {
        for distribution in &distributions {
            let name = run_name(
                base,
                &RunDefinition {
                    command: &command,
                    code_hash: code.as_ref().map(|c| c.hash.as_str()),
                    environment: reference,
                    cluster: &cluster.name,
                    node_count,
                    distribution: *distribution,
                    environment_variables: &environment_variables,
                    experiment: &experiment,
                },
            );
            if name != submitted {
                continue;
            }
            let environment = match (reference.ends_with("@latest"), declared) {
                (false, Some(declared)) => declared.name.clone(),
                _ => reference.clone(),
            };
            let display_name = non_empty(text(p, "/displayName")).filter(|d| d != submitted);
            return Ok(JobOut {
                name: base.to_string(),
                submitted: submitted.to_string(),
                experiment,
                display_name,
                description: non_empty(text(p, "/description")),
                command,
                environment,
                cluster: cluster.name.clone(),
                node_count,
                distribution: *distribution,
                environment_variables,
                tags: tags(p.get("tags")),
                code,
                status: text(p, "/status"),
            });
        }
    }
    Err("its definition was changed after submission, or it names resources not exported: its name cannot be derived again, so declaring it would submit a new run".into())
}

/// The section and index a diagnostic's key path points into (`environments[2].image`).
pub fn entry_of(path: &str) -> Option<(&str, usize)> {
    let (section, rest) = path.split_once('[')?;
    let (index, _) = rest.split_once(']')?;
    Some((section, index.parse().ok()?))
}

impl Export {
    /// Leave out the entry at `section[index]` (as the rendered manifest numbers them),
    /// noting `why`; false when there is no such entry.
    pub fn drop_entry(&mut self, section: &str, index: usize, why: &str) -> bool {
        let name = match section {
            "registries" if index < self.registries.len() => {
                let r = self.registries.remove(index);
                ("registry", r.name)
            }
            "environments" if index < self.environments.len() => {
                let e = self.environments.remove(index);
                ("environment", format!("{}:{}", e.name, e.version))
            }
            "clusters" if index < self.clusters.len() => {
                ("cluster", self.clusters.remove(index).name)
            }
            "jobs" if index < self.jobs.len() => ("job", self.jobs.remove(index).submitted),
            _ => return false,
        };
        self.notes.push(Note::skipped(
            name.0,
            &name.1,
            format!("the manifest would not be valid: {why}"),
        ));
        self.cascade();
        true
    }

    /// Leave out an optional key of the workspace (`location`, `description`, `tags`),
    /// noting `why`; false for any other key (the workspace itself cannot be left out).
    pub fn drop_workspace_key(&mut self, key: &str, why: &str) -> bool {
        let ws = &mut self.workspace;
        let dropped = match key {
            "location" => ws.location.take().is_some(),
            "description" => ws.description.take().is_some(),
            "tags" => !std::mem::take(&mut ws.tags).is_empty(),
            _ => false,
        };
        if dropped {
            let name = ws.name.clone();
            self.notes.push(Note::lossy(
                "workspace",
                &name,
                format!("its {key} is left out, as the manifest would not be valid: {why}"),
            ));
        }
        dropped
    }

    /// What refers to entries that are gone: an environment loses its `registry`, a job
    /// whose cluster or declared environment is gone is left out.
    fn cascade(&mut self) {
        for env in &mut self.environments {
            if let Some(registry) = &env.registry
                && !self.registries.iter().any(|r| &r.name == registry)
            {
                env.registry = None;
            }
        }
        let clusters: Vec<String> = self.clusters.iter().map(|c| c.name.clone()).collect();
        let environments: Vec<String> = self.environments.iter().map(|e| e.name.clone()).collect();
        let mut notes = Vec::new();
        self.jobs.retain(|job| {
            let env_ok =
                job.environment.contains([':', '@']) || environments.contains(&job.environment);
            let cluster_ok = clusters.contains(&job.cluster);
            if !(env_ok && cluster_ok) {
                notes.push(Note::skipped(
                    "job",
                    &job.submitted,
                    "its cluster or environment is not exported",
                ));
            }
            env_ok && cluster_ok
        });
        self.notes.extend(notes);
        self.notes.sort();
        self.notes.dedup();
    }

    /// Files to write beside the manifest (conda files, build contexts): (path relative
    /// to it, bytes).
    pub fn side_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for e in &self.environments {
            match &e.build {
                BuildOut::Image {
                    conda: Some(conda), ..
                } => files.push((conda_path(&e.name), conda.clone().into_bytes())),
                BuildOut::Folder { files: context, .. } => {
                    for (relative, bytes) in context {
                        files.push((
                            format!("{}/{relative}", context_path(&e.name)),
                            bytes.clone(),
                        ));
                    }
                }
                _ => {}
            }
        }
        for j in &self.jobs {
            for (relative, bytes) in j.code.iter().flat_map(|c| &c.files) {
                files.push((format!("{}/{relative}", code_path(&j.name)), bytes.clone()));
            }
        }
        files
    }

    /// The folders written whole beside the manifest (build contexts, code snapshots).
    pub fn side_folders(&self) -> Vec<String> {
        let contexts = self
            .environments
            .iter()
            .filter(|e| matches!(e.build, BuildOut::Folder { .. }))
            .map(|e| context_path(&e.name));
        let codes = self
            .jobs
            .iter()
            .filter(|j| j.code.is_some())
            .map(|j| code_path(&j.name));
        contexts.chain(codes).collect()
    }

    /// The manifest's text.
    pub fn render(&self, options: &Options) -> String {
        use yaml::{block, comment, literal_text, scalar};
        let mut out = String::new();
        let line = |out: &mut String, text: &str| {
            out.push_str(text);
            out.push('\n');
        };
        line(
            &mut out,
            &format!(
                "# yaml-language-server: $schema={}",
                comment(&options.schema)
            ),
        );
        line(&mut out, "#");
        line(
            &mut out,
            &format!(
                "# Exported by amlspec {} from workspace {} (resource group {}, subscription {})",
                env!("CARGO_PKG_VERSION"),
                comment(&options.workspace),
                comment(&options.resource_group),
                comment(&options.subscription_id),
            ),
        );
        line(
            &mut out,
            &format!(
                "# at {}. A starting point: `amlspec plan` it against the workspace (\"No changes\").",
                comment(&options.exported_at)
            ),
        );
        if !self.registries.is_empty() {
            line(
                &mut out,
                "# Passwords are never exported: set the variables named below before planning.",
            );
        }
        let ws = &self.workspace;
        line(&mut out, "workspace:");
        line(&mut out, &format!("  name: {}", literal_text(&ws.name)));
        line(
            &mut out,
            &format!("  subscription_id: {}", literal_text(&ws.subscription_id)),
        );
        line(
            &mut out,
            &format!("  resource_group: {}", literal_text(&ws.resource_group)),
        );
        if let Some(location) = &ws.location {
            line(&mut out, &format!("  location: {}", literal_text(location)));
        }
        if let Some(description) = &ws.description {
            line(
                &mut out,
                &format!("  description: {}", literal_text(description)),
            );
        }
        map(&mut out, "  ", "tags", &ws.tags);

        if !self.registries.is_empty() {
            line(&mut out, "");
            line(&mut out, "registries:");
            for r in &self.registries {
                line(&mut out, &format!("  - name: {}", literal_text(&r.name)));
                line(
                    &mut out,
                    &format!("    address: {}", literal_text(&r.address)),
                );
                match &r.username {
                    Some(username) => {
                        line(
                            &mut out,
                            &format!("    username: {}", literal_text(username)),
                        );
                    }
                    None => {
                        line(
                            &mut out,
                            &format!(
                                "    # Set {} to the registry's user name.",
                                r.username_variable
                            ),
                        );
                        line(
                            &mut out,
                            &format!("    username: ${{{}}}", r.username_variable),
                        );
                    }
                }
                line(
                    &mut out,
                    &format!(
                        "    # Set {} to the registry's password (never exported).",
                        r.password_variable
                    ),
                );
                line(
                    &mut out,
                    &format!("    password: ${{{}}}", r.password_variable),
                );
            }
        }

        if !self.environments.is_empty() {
            line(&mut out, "");
            line(&mut out, "environments:");
            for e in &self.environments {
                line(&mut out, &format!("  - name: {}", literal_text(&e.name)));
                line(
                    &mut out,
                    &format!("    version: {}", literal_text(&e.version)),
                );
                match &e.build {
                    BuildOut::Image { image, conda } => {
                        line(&mut out, &format!("    image: {}", literal_text(image)));
                        if let Some(registry) = &e.registry {
                            line(
                                &mut out,
                                &format!("    registry: {}", literal_text(registry)),
                            );
                        }
                        if conda.is_some() {
                            line(
                                &mut out,
                                &format!("    conda_file: {}", literal_text(&conda_path(&e.name))),
                            );
                        }
                    }
                    BuildOut::Dockerfile { text } => {
                        line(&mut out, &format!("    dockerfile: {}", block(text, 6)));
                    }
                    BuildOut::Folder {
                        dockerfile_path, ..
                    } => {
                        let context = context_path(&e.name);
                        line(
                            &mut out,
                            &format!(
                                "    dockerfile_path: {}",
                                literal_text(&format!("{context}/{dockerfile_path}"))
                            ),
                        );
                        line(
                            &mut out,
                            &format!("    build_context: {}", literal_text(&context)),
                        );
                    }
                }
                if let Some(description) = &e.description {
                    line(
                        &mut out,
                        &format!("    description: {}", literal_text(description)),
                    );
                }
                map(&mut out, "    ", "tags", &e.tags);
            }
        }

        if !self.clusters.is_empty() {
            line(&mut out, "");
            line(&mut out, "clusters:");
            for c in &self.clusters {
                line(&mut out, &format!("  - name: {}", literal_text(&c.name)));
                line(
                    &mut out,
                    &format!("    vm_size: {}", literal_text(&c.vm_size)),
                );
                if c.low_priority {
                    line(&mut out, "    vm_priority: low_priority");
                }
                line(&mut out, &format!("    min_nodes: {}", c.min_nodes));
                line(&mut out, &format!("    max_nodes: {}", c.max_nodes));
                if let Some(idle) = c.idle_seconds {
                    line(
                        &mut out,
                        &format!("    idle_seconds_before_scale_down: {idle}"),
                    );
                }
                if let Some(description) = &c.description {
                    line(
                        &mut out,
                        &format!("    description: {}", literal_text(description)),
                    );
                }
                map(&mut out, "    ", "tags", &c.tags);
            }
        }

        if !self.jobs.is_empty() {
            line(&mut out, "");
            line(&mut out, "jobs:");
            for j in &self.jobs {
                line(
                    &mut out,
                    &format!("  # Declares run {}.", comment(&j.submitted)),
                );
                line(&mut out, &format!("  - name: {}", literal_text(&j.name)));
                if j.experiment != "Default" {
                    line(
                        &mut out,
                        &format!("    experiment: {}", literal_text(&j.experiment)),
                    );
                }
                if let Some(display_name) = &j.display_name {
                    line(
                        &mut out,
                        &format!("    display_name: {}", literal_text(display_name)),
                    );
                }
                if let Some(description) = &j.description {
                    line(
                        &mut out,
                        &format!("    description: {}", literal_text(description)),
                    );
                }
                if j.code.is_some() {
                    line(
                        &mut out,
                        &format!(
                            "    source_directory: {}",
                            literal_text(&code_path(&j.name))
                        ),
                    );
                }
                // Commands are not interpolated: written as they are.
                line(&mut out, &format!("    command: {}", scalar(&j.command)));
                line(
                    &mut out,
                    &format!("    environment: {}", literal_text(&j.environment)),
                );
                line(
                    &mut out,
                    &format!("    cluster: {}", literal_text(&j.cluster)),
                );
                if j.node_count != 1 {
                    line(&mut out, &format!("    node_count: {}", j.node_count));
                }
                if let Some(distribution) = &j.distribution {
                    line(&mut out, "    distribution:");
                    match distribution {
                        Distribution::PyTorch { processes_per_node } => {
                            line(&mut out, "      type: pytorch");
                            line(
                                &mut out,
                                &format!("      processes_per_node: {processes_per_node}"),
                            );
                        }
                        Distribution::Mpi { processes_per_node } => {
                            line(&mut out, "      type: mpi");
                            line(
                                &mut out,
                                &format!("      processes_per_node: {processes_per_node}"),
                            );
                        }
                        Distribution::TensorFlow {
                            worker_count,
                            parameter_server_count,
                        } => {
                            line(&mut out, "      type: tensorflow");
                            if let Some(workers) = worker_count {
                                line(&mut out, &format!("      worker_count: {workers}"));
                            }
                            line(
                                &mut out,
                                &format!("      parameter_server_count: {parameter_server_count}"),
                            );
                        }
                    }
                }
                map(
                    &mut out,
                    "    ",
                    "environment_variables",
                    &j.environment_variables,
                );
                map(&mut out, "    ", "tags", &j.tags);
            }
        }

        let skipped: Vec<&Note> = self.notes.iter().filter(|n| n.skipped).collect();
        if !skipped.is_empty() {
            line(&mut out, "");
            line(
                &mut out,
                "# Not exported (amlspec leaves these as they are in Azure):",
            );
            for note in skipped {
                line(
                    &mut out,
                    &format!(
                        "#   {} {}: {}",
                        note.kind,
                        comment(&note.name),
                        comment(&note.message)
                    ),
                );
            }
        }
        out
    }
}

/// A note when files to write back look like credentials (Azure holds them because
/// they were uploaded; written beside the manifest, they could end up in git).
fn credential_files(kind: &'static str, name: &str, files: &[(String, Vec<u8>)]) -> Option<Note> {
    let found: Vec<String> = files
        .iter()
        .map(|(relative, _)| relative.as_str())
        .filter(|relative| crate::snapshot::likely_secret(relative))
        .map(crate::diagnostic::quoted)
        .collect();
    (!found.is_empty()).then(|| {
        Note::lossy(
            kind,
            name,
            format!(
                "its files include what looks like credentials, written as they were uploaded: {}; keep them out of git with a .gitignore above that folder (one inside it would change its content hash)",
                found.join(", ")
            ),
        )
    })
}

/// Where a job's code snapshot goes, relative to the manifest.
pub fn code_path(job: &str) -> String {
    format!("code/{job}")
}

/// Where an environment's build context goes, relative to the manifest.
pub fn context_path(environment: &str) -> String {
    format!("environments/{environment}")
}

/// A path inside a folder: relative, `/`-separated, no `.`, `..` or empty parts, no
/// backslash or control characters.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Where an environment's conda file goes, relative to the manifest.
pub fn conda_path(environment: &str) -> String {
    format!("conda/{environment}.yml")
}

/// `key:` and its entries, sorted, when there are any.
fn map(out: &mut String, indent: &str, key: &str, entries: &BTreeMap<String, String>) {
    if entries.is_empty() {
        return;
    }
    out.push_str(&format!("{indent}{key}:\n"));
    for (k, v) in entries {
        out.push_str(&format!(
            "{indent}  {}: {}\n",
            yaml::scalar(k),
            yaml::literal_text(v)
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const WS: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws";

    fn options(side_files: bool) -> Options {
        Options {
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            workspace: "ws".into(),
            schema: "schema.json".into(),
            exported_at: "2026-01-01T00:00:00Z".into(),
            side_files,
        }
    }

    /// A run as amlspec submits it: named from its definition, `amlspec_job` set.
    fn run(base: &str, environment: &str, created: &str, change: impl Fn(&mut Value)) -> Value {
        let variables = BTreeMap::new();
        let name = run_name(
            base,
            &RunDefinition {
                command: "python train.py",
                code_hash: None,
                environment,
                cluster: "gpu",
                node_count: 2,
                distribution: Some(Distribution::TensorFlow {
                    worker_count: None,
                    parameter_server_count: 1,
                }),
                environment_variables: &variables,
                experiment: "Default",
            },
        );
        let (env, version) = environment
            .split_once(':')
            .unwrap_or((environment.trim_end_matches("@latest"), "3"));
        let mut job = json!({
            "name": name,
            "systemData": {"createdAt": created},
            "properties": {
                "jobType": "Command", "command": "python train.py",
                "environmentId": format!("{WS}/environments/{env}/versions/{version}"),
                "computeId": format!("{WS}/computes/gpu"),
                "experimentName": "Default", "displayName": name,
                "resources": {"instanceCount": 2},
                // amlspec sends the node count when the spec gives no worker count.
                "distribution": {"distributionType": "TensorFlow", "workerCount": 2, "parameterServerCount": 1},
                "properties": {"amlspec_job": base},
                "status": "Failed",
            }
        });
        change(&mut job);
        job
    }

    fn contents(jobs: Vec<Value>) -> Contents {
        Contents {
            workspace: json!({"name": "ws", "location": "West Europe"}),
            connections: Vec::new(),
            environments: vec![crate::observe::contents::EnvironmentVersions {
                name: "tf".into(),
                versions: vec![
                    json!({"name": "3", "properties": {"image": "tensorflow/tensorflow:2.15.0"}}),
                    json!({"name": "2", "properties": {"image": "tensorflow/tensorflow:2.14.0"}}),
                ],
            }],
            computes: vec![
                json!({"name": "gpu", "properties": {"computeType": "AmlCompute",
                "properties": {"vmSize": "STANDARD_NC6", "scaleSettings": {"maxNodeCount": "4"}}}}),
            ],
            jobs,
            builds: BTreeMap::new(),
            codes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_run_is_declared_only_when_its_name_can_be_derived_again() {
        let jobs = vec![
            // Latest of its name, on the exported version: the declared environment.
            run("train", "tf:3", "2026-01-02", |_| {}),
            // An earlier run of the same job, on another environment.
            run("train", "tf@latest", "2026-01-01", |_| {}),
            // An older version and `@latest` are references to existing ones.
            run("old", "tf:2", "2026-01-01", |_| {}),
            run("latest", "tf@latest", "2026-01-01", |_| {}),
            // Its command changed after submission: no manifest names it.
            run("edited", "tf:3", "2026-01-01", |j| {
                j["properties"]["command"] = json!("python other.py");
            }),
            run("elsewhere", "tf:3", "2026-01-01", |j| {
                j["properties"]["computeId"] = json!(format!("{WS}/computes/instance"));
            }),
        ];
        let export = export(&contents(jobs), &options(false));
        let declared: Vec<(&str, &str)> = export
            .jobs
            .iter()
            .map(|j| (j.name.as_str(), j.environment.as_str()))
            .collect();
        assert_eq!(
            declared,
            [("latest", "tf@latest"), ("old", "tf:2"), ("train", "tf")]
        );
        assert_eq!(export.workspace.location.as_deref(), Some("westeurope"));
        let notes: Vec<(bool, &str)> = export
            .notes
            .iter()
            .filter(|n| n.kind == "job")
            .map(|n| (n.skipped, n.name.as_str()))
            .collect();
        // Older runs of train; train, old and latest failed; edited and elsewhere.
        assert_eq!(notes.len(), 6, "{:#?}", export.notes);
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.name == "old" && n.message.contains("ended Failed")),
            "{:#?}",
            export.notes
        );
        assert!(notes.contains(&(false, "train")), "older runs are noted");
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.name.starts_with("edited-")
                    && n.message.contains("cannot be derived again")),
            "{:#?}",
            export.notes
        );
        assert!(
            export.notes.iter().any(|n| n.name.starts_with("elsewhere-")
                && n.message.contains("cluster `instance` is not exported")),
            "{:#?}",
            export.notes
        );
        // The rendered tensorflow job says what reproduces its name.
        let text = export.render(&options(false));
        assert!(
            text.contains(
                "    distribution:\n      type: tensorflow\n      parameter_server_count: 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn dropping_an_entry_takes_what_depends_on_it() {
        let mut export = export(
            &contents(vec![run("train", "tf:3", "2026-01-02", |_| {})]),
            &options(false),
        );
        assert_eq!(export.jobs.len(), 1);
        assert!(export.drop_entry("clusters", 0, "a reason"));
        assert!(export.jobs.is_empty());
        assert!(!export.drop_entry("clusters", 0, "nothing there"));
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.kind == "cluster" && n.message.ends_with("a reason"))
        );
    }

    #[test]
    fn a_workspace_loses_only_optional_keys() {
        let mut export = export(&contents(Vec::new()), &options(false));
        export.workspace.tags.insert("k".into(), "v".into());
        assert!(export.drop_workspace_key("tags", "too long"));
        assert!(export.workspace.tags.is_empty());
        assert!(!export.drop_workspace_key("tags", "again"));
        assert!(!export.drop_workspace_key("name", "never"));
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.kind == "workspace" && !n.skipped && n.message.ends_with("too long"))
        );
    }

    #[test]
    fn variables_are_named_after_their_connection() {
        assert_eq!(variable_for("my-acr", "PASSWORD"), "MY_ACR_PASSWORD");
        assert_eq!(variable_for("1acr", "PASSWORD"), "_1ACR_PASSWORD");
        let connection = |name: &str| {
            json!({"name": name, "properties": {"category": "ContainerRegistry", "authType": "UsernamePassword",
                "target": "x.azurecr.io", "credentials": {"username": "u"}}})
        };
        let mut notes = Vec::new();
        let out = registries(&[connection("a-b"), connection("a_b")], &mut notes);
        let variables: Vec<&str> = out.iter().map(|r| r.password_variable.as_str()).collect();
        assert_eq!(variables, ["A_B_PASSWORD", "A_B_PASSWORD_2"]);
    }
}
