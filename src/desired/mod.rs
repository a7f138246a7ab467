//! Stage 2, desired: `model::Specs` + the local files they name -> every Azure resource
//! the manifest wants, with its ARM id and its content-derived names. Reads files
//! (snapshots, build contexts), never the network.
//!
//! Content addressing, so an unchanged manifest plans to nothing and a changed one to
//! exactly the new version or run:
//! - an unpinned environment's version is the first 12 hex digits of a sha256 over its
//!   definition (image, conda file text, build context content hash and Dockerfile path,
//!   OS type); description and tags are left out, since Azure updates those in place;
//! - a code snapshot is identified by Azure ML's own content hash (hash version 202208),
//!   so code that any Azure ML client uploaded is found and reused;
//! - a job is submitted as `<name>-<8 hex digits>`, a sha256 over what defines the run:
//!   command, code content hash, environment (declared name and version, or the
//!   reference as written for an existing one, `@latest` included), cluster, node count,
//!   distribution, environment variables and experiment. Tags and description are left
//!   out (Azure updates them in place on a submitted job), and so is the display name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::hash::{canonical, sha256_hex};
use crate::ids::ResourceId;
use crate::snapshot::{self, Snapshot, SnapshotError};
use crate::spec::model::{
    Cluster, Distribution, EnvironmentBuild, EnvironmentRef, Origin, Specs, VmPriority,
    WorkspaceSpec,
};
use crate::spec::secret::Secret;

#[derive(Debug, Clone)]
pub struct Desired {
    pub workspaces: Vec<DesiredWorkspace>,
    /// Files that look like credentials may be uploaded (`--allow-secret-files`).
    pub allow_secret_files: bool,
}

#[derive(Debug, Clone)]
pub struct DesiredWorkspace {
    pub spec: WorkspaceSpec,
    pub id: ResourceId,
    pub resource_group: ResourceId,
    /// What a new workspace is created with (deterministic, globally unique names).
    pub dependencies: WorkspaceDependencies,
    pub registries: Vec<DesiredRegistry>,
    pub environments: Vec<DesiredEnvironment>,
    /// Existing environments that jobs refer to (`name:version`, `name@latest`).
    pub existing_environments: Vec<ExistingEnvironment>,
    pub clusters: Vec<DesiredCluster>,
    /// Distinct code snapshots of the jobs, by content hash.
    pub codes: Vec<DesiredCode>,
    pub jobs: Vec<DesiredJob>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceDependencies {
    pub storage_account: ResourceId,
    pub key_vault: ResourceId,
    pub application_insights: ResourceId,
}

#[derive(Debug, Clone)]
pub struct DesiredRegistry {
    pub name: String,
    pub id: ResourceId,
    pub target: String,
    pub username: String,
    pub password: Secret,
    pub password_variable: String,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct DesiredEnvironment {
    pub name: String,
    pub version: String,
    /// The version was written in the manifest (else it is content-derived).
    pub pinned: bool,
    pub id: ResourceId,
    pub definition: EnvironmentDefinition,
    pub registry: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

/// What an environment version is made of; immutable once created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentDefinition {
    pub image: Option<String>,
    pub conda_file: Option<String>,
    pub build: Option<BuildContext>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    pub source: BuildSource,
    /// The Dockerfile's path inside the context.
    pub dockerfile_path: String,
    /// Content hash of the context (hash version 202208).
    pub hash: String,
    pub files: usize,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildSource {
    /// An inline Dockerfile: the context is that one file.
    Inline {
        dockerfile: String,
    },
    Folder(Snapshot),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingEnvironment {
    pub name: String,
    /// `None`: the latest version.
    pub version: Option<String>,
}

impl ExistingEnvironment {
    /// `name:version`, or `name@latest`.
    pub fn reference(&self) -> String {
        match &self.version {
            Some(version) => format!("{}:{version}", self.name),
            None => format!("{}@latest", self.name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DesiredCluster {
    pub name: String,
    pub id: ResourceId,
    pub spec: Cluster,
}

#[derive(Debug, Clone)]
pub struct DesiredCode {
    pub hash: String,
    pub snapshot: Snapshot,
    /// Name and version to create it under when no code with this hash exists.
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct DesiredJob {
    /// The name written in the manifest.
    pub base_name: String,
    /// The submitted name: `<base_name>-<8 hex>`.
    pub name: String,
    pub id: ResourceId,
    pub code_hash: Option<String>,
    pub environment: JobEnvironment,
    pub cluster: String,
    pub compute_id: ResourceId,
    pub command: String,
    pub experiment: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub node_count: u32,
    pub distribution: Option<Distribution>,
    pub environment_variables: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnvironment {
    /// An environment of this manifest: its version id.
    Declared {
        name: String,
        version: String,
        id: ResourceId,
    },
    /// An existing environment; `version` `None` means the latest.
    Existing(ExistingEnvironment),
}

impl JobEnvironment {
    /// How the job names its environment, in its submitted name's hash and in plans:
    /// `name:version`, or `name@latest` for the latest version of an existing one.
    pub fn reference(&self) -> String {
        match self {
            JobEnvironment::Declared { name, version, .. } => format!("{name}:{version}"),
            JobEnvironment::Existing(existing) => existing.reference(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("{origin}: {what}: {source}")]
    Snapshot {
        origin: Origin,
        what: String,
        source: SnapshotError,
    },
}

/// Compute the desired state of every workspace. Reads the files that snapshots and
/// build contexts hold.
pub fn desired(specs: &Specs) -> Result<Desired, Vec<DesiredError>> {
    let mut errors = Vec::new();
    let mut snapshots: BTreeMap<PathBuf, Snapshot> = BTreeMap::new();
    let mut workspaces = Vec::new();
    for spec in &specs.workspaces {
        workspaces.push(workspace(spec, &mut snapshots, &mut errors));
    }
    if errors.is_empty() {
        Ok(Desired {
            workspaces,
            allow_secret_files: false,
        })
    } else {
        Err(errors)
    }
}

fn workspace(
    spec: &WorkspaceSpec,
    snapshots: &mut BTreeMap<PathBuf, Snapshot>,
    errors: &mut Vec<DesiredError>,
) -> DesiredWorkspace {
    let id = workspace_id(spec);
    let sub = spec.subscription_id.as_str();
    let rg = spec.resource_group.as_str();
    let registries = spec
        .registries
        .iter()
        .map(|r| DesiredRegistry {
            name: r.name.to_string(),
            id: id.child("connections", r.name.as_str()),
            target: r.address.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            password_variable: r.password_variable.clone(),
            origin: r.origin.clone(),
        })
        .collect();
    let mut environments = Vec::new();
    for env in &spec.environments {
        let build = match &env.build {
            EnvironmentBuild::Image { .. } => None,
            EnvironmentBuild::InlineDockerfile { text } => Some(BuildContext {
                hash: single_file_hash("Dockerfile", text.as_bytes()),
                source: BuildSource::Inline {
                    dockerfile: text.clone(),
                },
                dockerfile_path: "Dockerfile".into(),
                files: 1,
                total_bytes: text.len() as u64,
            }),
            EnvironmentBuild::DockerfileFile {
                context,
                dockerfile,
            } => match cached_snapshot(context, snapshots) {
                Ok(snapshot) => Some(BuildContext {
                    hash: snapshot.hash.clone(),
                    files: snapshot.files.len(),
                    total_bytes: snapshot.total_bytes,
                    source: BuildSource::Folder(snapshot),
                    dockerfile_path: dockerfile.clone(),
                }),
                Err(source) => {
                    errors.push(DesiredError::Snapshot {
                        origin: env.origin.clone(),
                        what: format!("build context of environment `{}`", env.name),
                        source,
                    });
                    continue;
                }
            },
        };
        let (image, conda_file) = match &env.build {
            EnvironmentBuild::Image { image, conda } => (
                Some(image.clone()),
                conda.as_ref().map(|c| c.content.clone()),
            ),
            _ => (None, None),
        };
        let definition = EnvironmentDefinition {
            image,
            conda_file,
            build,
        };
        let (version, pinned) = match &env.version {
            Some(version) => (version.to_string(), true),
            None => (definition.content_version(), false),
        };
        environments.push(DesiredEnvironment {
            name: env.name.to_string(),
            id: id
                .child("environments", env.name.as_str())
                .child("versions", &version),
            version,
            pinned,
            definition,
            registry: env.registry.as_ref().map(ToString::to_string),
            description: env.description.clone(),
            tags: env.tags.clone(),
            origin: env.origin.clone(),
        });
    }
    let clusters = spec
        .clusters
        .iter()
        .map(|c| DesiredCluster {
            name: c.name.to_string(),
            id: id.child("computes", c.name.as_str()),
            spec: c.clone(),
        })
        .collect();

    let mut codes: Vec<DesiredCode> = Vec::new();
    let mut existing_environments: Vec<ExistingEnvironment> = Vec::new();
    let mut jobs = Vec::new();
    for job in &spec.jobs {
        let code_hash = match &job.source_directory {
            Some(dir) => match cached_snapshot(dir, snapshots) {
                Ok(snapshot) => {
                    let hash = snapshot.hash.clone();
                    if !codes.iter().any(|c| c.hash == hash) {
                        codes.push(DesiredCode {
                            name: format!("amlspec-{}", &hash[..32]),
                            version: "1".into(),
                            hash: hash.clone(),
                            snapshot,
                        });
                    }
                    Some(hash)
                }
                Err(source) => {
                    errors.push(DesiredError::Snapshot {
                        origin: job.origin.clone(),
                        what: format!("source_directory of job `{}`", job.name),
                        source,
                    });
                    continue;
                }
            },
            None => None,
        };
        let environment = match &job.environment {
            EnvironmentRef::Declared(name) => {
                let declared = environments
                    .iter()
                    .find(|e| e.name.eq_ignore_ascii_case(name.as_str()));
                let Some(declared) = declared else {
                    // Its environment failed above; that error is reported already.
                    continue;
                };
                JobEnvironment::Declared {
                    name: declared.name.clone(),
                    version: declared.version.clone(),
                    id: declared.id.clone(),
                }
            }
            // `name:version` of an environment declared here with that version (which
            // validation allows) is the declared one, made by this apply if missing.
            EnvironmentRef::Existing {
                name,
                version: Some(version),
            } if let Some(declared) = environments.iter().find(|e| {
                e.name.eq_ignore_ascii_case(&name.to_string()) && e.version == version.to_string()
            }) =>
            {
                JobEnvironment::Declared {
                    name: declared.name.clone(),
                    version: declared.version.clone(),
                    id: declared.id.clone(),
                }
            }
            EnvironmentRef::Existing { name, version } => {
                let existing = ExistingEnvironment {
                    name: name.to_string(),
                    version: version.as_ref().map(ToString::to_string),
                };
                if !existing_environments.contains(&existing) {
                    existing_environments.push(existing.clone());
                }
                JobEnvironment::Existing(existing)
            }
        };
        let cluster = spec
            .clusters
            .iter()
            .find(|c| c.name.as_str().eq_ignore_ascii_case(job.cluster.as_str()))
            .map_or_else(|| job.cluster.to_string(), |c| c.name.to_string());
        let name = run_name(
            job.name.as_str(),
            &RunDefinition {
                command: &job.command,
                code_hash: code_hash.as_deref(),
                environment: &environment.reference(),
                cluster: &cluster,
                node_count: job.node_count,
                distribution: job.distribution,
                environment_variables: &job.environment_variables,
                experiment: job.experiment.as_str(),
            },
        );
        jobs.push(DesiredJob {
            base_name: job.name.to_string(),
            id: id.child("jobs", &name),
            name,
            code_hash,
            environment,
            compute_id: id.child("computes", &cluster),
            cluster,
            command: job.command.clone(),
            experiment: job.experiment.to_string(),
            display_name: job.display_name.clone(),
            description: job.description.clone(),
            node_count: job.node_count,
            distribution: job.distribution,
            environment_variables: job.environment_variables.clone(),
            tags: job.tags.clone(),
            origin: job.origin.clone(),
        });
    }
    DesiredWorkspace {
        dependencies: dependencies(spec),
        resource_group: ResourceId::resource_group(sub, rg),
        id,
        spec: spec.clone(),
        registries,
        environments,
        existing_environments,
        clusters,
        codes,
        jobs,
    }
}

/// Everything that defines a run, hashed into its submitted name.
#[derive(Debug, Clone, Copy)]
pub struct RunDefinition<'a> {
    pub command: &'a str,
    pub code_hash: Option<&'a str>,
    /// As [`JobEnvironment::reference`] spells it.
    pub environment: &'a str,
    pub cluster: &'a str,
    pub node_count: u32,
    pub distribution: Option<Distribution>,
    pub environment_variables: &'a BTreeMap<String, String>,
    pub experiment: &'a str,
}

/// A job's submitted name: `<base>-<8 hex digits>` of sha256 over its run definition.
pub fn run_name(base: &str, run: &RunDefinition<'_>) -> String {
    let definition = json!({
        "command": run.command,
        "code": run.code_hash,
        "environment": run.environment,
        "cluster": run.cluster.to_ascii_lowercase(),
        "node_count": run.node_count,
        "distribution": run.distribution.map(distribution_json),
        "environment_variables": run.environment_variables,
        "experiment": run.experiment,
    });
    format!("{base}-{}", &sha256_hex(&canonical(&definition))[..8])
}

impl EnvironmentDefinition {
    /// The content-derived version: 12 hex digits of a sha256 over the definition.
    pub fn content_version(&self) -> String {
        let definition = json!({
            "image": self.image,
            "conda_file": self.conda_file,
            "build": self.build.as_ref().map(|b| json!({"context": b.hash, "dockerfile_path": b.dockerfile_path})),
            "os_type": "Linux",
        });
        sha256_hex(&canonical(&definition))[..12].to_string()
    }
}

pub fn distribution_json(distribution: Distribution) -> Value {
    match distribution {
        Distribution::PyTorch { processes_per_node } => {
            json!({"type": "pytorch", "processes_per_node": processes_per_node})
        }
        Distribution::Mpi { processes_per_node } => {
            json!({"type": "mpi", "processes_per_node": processes_per_node})
        }
        Distribution::TensorFlow {
            worker_count,
            parameter_server_count,
        } => {
            json!({"type": "tensorflow", "worker_count": worker_count, "parameter_server_count": parameter_server_count})
        }
    }
}

pub fn vm_priority_name(priority: VmPriority) -> &'static str {
    match priority {
        VmPriority::Dedicated => "Dedicated",
        VmPriority::LowPriority => "LowPriority",
    }
}

fn cached_snapshot(
    dir: &std::path::Path,
    cache: &mut BTreeMap<PathBuf, Snapshot>,
) -> Result<Snapshot, SnapshotError> {
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if let Some(snapshot) = cache.get(&key) {
        return Ok(snapshot.clone());
    }
    let snapshot = snapshot::snapshot(dir)?;
    cache.insert(key, snapshot.clone());
    Ok(snapshot)
}

/// Azure ML's content hash of a context made of one file.
pub fn single_file_hash(name: &str, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"1");
    hasher.update(format!("#{name}#{}", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// Names for the resources a new workspace needs: derived from the workspace's
/// identity so that re-running a failed creation finds the same ones.
fn dependencies(spec: &WorkspaceSpec) -> WorkspaceDependencies {
    let key = spec.key();
    let digest = sha256_hex(&format!(
        "{}/{}/{}",
        key.subscription_id, key.resource_group, key.name
    ));
    let suffix = &digest[..8];
    let mut base: String = spec
        .name
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
        base.insert(0, 'w');
    }
    let sub = spec.subscription_id.as_str();
    let rg = spec.resource_group.as_str();
    let storage = format!("{}{suffix}", truncate(&base, 16));
    let vault = format!("{}-{suffix}", truncate(&base, 15));
    let insights = format!("{}-insights", spec.name);
    WorkspaceDependencies {
        storage_account: ResourceId::provider(
            sub,
            rg,
            "Microsoft.Storage/storageAccounts",
            &storage,
        ),
        key_vault: ResourceId::provider(sub, rg, "Microsoft.KeyVault/vaults", &vault),
        application_insights: ResourceId::provider(
            sub,
            rg,
            "Microsoft.Insights/components",
            &insights,
        ),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    &text[..text.len().min(max)]
}

/// The ARM id of the workspace `spec` declares.
pub fn workspace_id(spec: &WorkspaceSpec) -> ResourceId {
    ResourceId::workspace(
        spec.subscription_id.as_str(),
        spec.resource_group.as_str(),
        spec.name.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            r#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }

    #[test]
    fn single_file_context_hash_matches_a_folder_with_that_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM ubuntu\n").unwrap();
        let folder = snapshot::snapshot(dir.path()).unwrap();
        assert_eq!(
            single_file_hash("Dockerfile", b"FROM ubuntu\n"),
            folder.hash
        );
    }

    /// A job naming a declared environment with the version the spec pins is on that
    /// declared environment (made by the same apply), not on an existing one to look
    /// for; another version, or one not declared here, is an existing environment.
    #[test]
    fn a_declared_environment_named_with_its_version_is_the_declared_one() {
        let spec = |reference: &str| {
            format!(
                "{}environments:\n  - name: fastai2\n    version: \"3\"\n    image: fastdotai/fastai2:latest\n    user_managed_dependencies: true\nclusters:\n  - name: cpu\n    vm_size: STANDARD_D2_V3\n    max_nodes: 1\njobs:\n  - name: train\n    command: python -c 1\n    environment: {reference}\n    cluster: cpu\n",
                crate::plan::testing::WORKSPACE
            )
        };
        for reference in ["fastai2", "fastai2:3", "FastAI2:3", "azureml:fastai2:3"] {
            let desired = crate::plan::testing::desired_with_passwords(&spec(reference));
            let ws = &desired.workspaces[0];
            assert!(ws.existing_environments.is_empty(), "{reference}");
            match &ws.jobs[0].environment {
                JobEnvironment::Declared { name, version, .. } => {
                    assert_eq!((name.as_str(), version.as_str()), ("fastai2", "3"))
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
        let desired = crate::plan::testing::desired_with_passwords(&spec("other:3"));
        let ws = &desired.workspaces[0];
        assert!(matches!(
            &ws.jobs[0].environment,
            JobEnvironment::Existing(existing) if existing.name == "other"
        ));
        assert_eq!(ws.existing_environments.len(), 1);
    }
    /// How a job names its environment, in its submitted name's hash and in plans.
    #[test]
    fn references_name_a_version_or_the_latest() {
        let pinned = ExistingEnvironment {
            name: "curated".into(),
            version: Some("7".into()),
        };
        assert_eq!(pinned.reference(), "curated:7");
        let latest = ExistingEnvironment {
            name: "curated".into(),
            version: None,
        };
        assert_eq!(latest.reference(), "curated@latest");
        assert_eq!(
            JobEnvironment::Existing(latest).reference(),
            "curated@latest"
        );
        let job_on = |reference: &str| {
            let spec = format!(
                "{}environments:\n  - name: fastai2\n    version: \"3\"\n    image: fastdotai/fastai2:latest\n    user_managed_dependencies: true\nclusters:\n  - name: cpu\n    vm_size: STANDARD_D2_V3\n    max_nodes: 1\njobs:\n  - name: train\n    command: python -c 1\n    environment: {reference}\n    cluster: cpu\n",
                crate::plan::testing::WORKSPACE
            );
            let desired = crate::plan::testing::desired_with_passwords(&spec);
            desired.workspaces[0].jobs[0].clone()
        };
        assert_eq!(job_on("fastai2").environment.reference(), "fastai2:3");
        assert_eq!(job_on("other:4").environment.reference(), "other:4");
        // The reference is part of what names the run.
        assert_ne!(job_on("other:4").name, job_on("other:5").name);
        assert_ne!(job_on("other:4").name, job_on("other@latest").name);
    }

    /// Jobs that run the same folder share one code asset; another folder is another.
    #[test]
    fn jobs_on_the_same_folder_share_one_code() {
        let job = |name: &str, folder: &str| {
            format!(
                "  - name: {name}\n    command: python train.py\n    source_directory: {folder}\n    environment: curated@latest\n    cluster: cpu\n"
            )
        };
        let spec = format!(
            "{}clusters:\n  - name: cpu\n    vm_size: STANDARD_D2_V3\n    max_nodes: 1\njobs:\n{}{}{}",
            crate::plan::testing::WORKSPACE,
            job("one", "src"),
            job("two", "src"),
            job("three", "other")
        );
        let desired = crate::plan::testing::desired_with_files(
            &spec,
            &[
                ("src/train.py", "print(1)\n"),
                ("other/train.py", "print(2)\n"),
            ],
        );
        let ws = &desired.workspaces[0];
        assert_eq!(ws.codes.len(), 2);
        let hashes: Vec<_> = ws
            .jobs
            .iter()
            .map(|j| j.code_hash.clone().unwrap())
            .collect();
        assert_eq!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
        assert_eq!(hashes[0], ws.codes[0].hash);
        assert_eq!(hashes[2], ws.codes[1].hash);
    }

    /// An unpinned environment's version is 12 hex digits of a sha256 over its
    /// definition as canonical JSON. The scheme is pinned here: changing it would make
    /// every user's environments new versions.
    #[test]
    fn an_environment_version_is_a_hash_of_its_definition() {
        let version = |image: &str| {
            EnvironmentDefinition {
                image: Some(image.into()),
                conda_file: None,
                build: None,
            }
            .content_version()
        };
        let expected = &crate::hash::sha256_hex(
            r#"{"build":null,"conda_file":null,"image":"ubuntu:22.04","os_type":"Linux"}"#,
        )[..12];
        assert_eq!(version("ubuntu:22.04"), expected);
        assert_ne!(version("ubuntu:24.04"), expected);
    }
}
