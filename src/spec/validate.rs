//! Validate: `raw::Manifest` documents -> `model::Specs`, reporting every semantic
//! problem: Azure's naming rules, ranges between fields, mutually exclusive and
//! dependent keys, files and folders that must exist, references between entries,
//! duplicate names and conflicting workspace declarations across files.
//!
//! Two steps. `document` checks each entry on its own; `assemble` groups documents by
//! workspace and resolves what entries refer to. An entry with a problem is left out of
//! the model but its name stays known, so one mistake is not reported again as a
//! dangling reference.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, Span, did_you_mean, quoted};
use crate::spec::LoadOptions;
use crate::spec::model::{
    AssetName, AssetVersion, Cluster, ComputeName, CondaFile, ConnectionName, Distribution,
    Environment, EnvironmentBuild, EnvironmentRef, ExistingAssetName, ExperimentName, Job, JobName,
    Location, Origin, Registry, ResourceGroupName, Specs, SubscriptionId, VmPriority, WorkspaceKey,
    WorkspaceName, WorkspaceSpec,
};
use crate::spec::names::{self, NameProblem};
use crate::spec::paths::{self, Repository};
use crate::spec::raw::{self, KeyValues, Spanned};
use crate::spec::yaml;

/// One document's entries, checked on their own.
pub struct Document {
    pub file: PathBuf,
    workspace: Option<WorkspaceSpec>,
    /// Where the workspace was declared, even when it has problems.
    workspace_span: Span,
    registries: Vec<Registry>,
    environments: Vec<Environment>,
    clusters: Vec<Cluster>,
    jobs: Vec<Job>,
    /// Names declared by every entry, valid or not, with where they were declared.
    declared: Declared,
    references: Vec<Reference>,
}

#[derive(Default)]
struct Declared {
    registries: Vec<(String, Origin)>,
    environments: Vec<(String, Origin)>,
    clusters: Vec<(String, Origin)>,
    jobs: Vec<(String, Origin)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Registry,
    Environment,
    Cluster,
}

/// A name an entry refers to, resolved in `assemble`.
struct Reference {
    kind: RefKind,
    name: String,
    /// For environments: the reference named a version (`name:version`).
    version: Option<String>,
    span: Span,
    path: String,
    /// For a job's cluster: its node count, checked against the cluster's max_nodes.
    node_count: Option<u32>,
}

struct Checker<'p> {
    file: &'p Path,
    base_dir: PathBuf,
    options: LoadOptions,
    /// The manifest's canonical folder and its repository, found when a path needs them.
    repository: Option<(PathBuf, Repository)>,
    problems: &'p mut Vec<Diagnostic>,
}

/// Check one document's entries.
pub fn document(
    file: &Path,
    manifest: &raw::Manifest,
    options: LoadOptions,
    problems: &mut Vec<Diagnostic>,
) -> Document {
    let base_dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut checker = Checker {
        file,
        base_dir,
        options,
        repository: None,
        problems,
    };
    let mut doc = Document {
        file: file.to_path_buf(),
        workspace: None,
        workspace_span: Span::default(),
        registries: Vec::new(),
        environments: Vec::new(),
        clusters: Vec::new(),
        jobs: Vec::new(),
        declared: Declared::default(),
        references: Vec::new(),
    };
    if let Some(workspace) = manifest.workspace.get() {
        doc.workspace_span = workspace.span;
        doc.workspace = checker.workspace(workspace);
    }
    for entry in manifest.registries.iter().flatten() {
        checker.declare(&mut doc.declared.registries, &entry.value.name, entry);
        if let Some(registry) = checker.registry(entry) {
            doc.registries.push(registry);
        }
    }
    for entry in manifest.environments.iter().flatten() {
        checker.declare(&mut doc.declared.environments, &entry.value.name, entry);
        if let Some(environment) = checker.environment(entry, &mut doc.references) {
            doc.environments.push(environment);
        }
    }
    for entry in manifest.clusters.iter().flatten() {
        checker.declare(&mut doc.declared.clusters, &entry.value.name, entry);
        if let Some(cluster) = checker.cluster(entry) {
            doc.clusters.push(cluster);
        }
    }
    for entry in manifest.jobs.iter().flatten() {
        checker.declare(&mut doc.declared.jobs, &entry.value.name, entry);
        if let Some(job) = checker.job(entry, &mut doc.references) {
            doc.jobs.push(job);
        }
    }
    doc
}

impl Checker<'_> {
    fn error(&mut self, span: Span, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::error(self.file, Some(span), path, message));
        self.problems.last_mut().expect("just pushed")
    }

    fn origin<T>(&self, entry: &Spanned<T>) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            span: entry.span,
            path: entry.path.clone(),
        }
    }

    fn declare<T>(
        &self,
        into: &mut Vec<(String, Origin)>,
        name: &raw::Required<String>,
        entry: &Spanned<T>,
    ) {
        if let Some(name) = name.get() {
            let origin = Origin {
                file: self.file.to_path_buf(),
                span: name.span,
                path: entry.path.clone(),
            };
            into.push((name.value.clone(), origin));
        }
    }

    /// Check a name against its rule, reporting the problem at the value.
    fn name<T>(
        &mut self,
        value: &Spanned<String>,
        parse: fn(&str) -> Result<T, NameProblem>,
    ) -> Option<T> {
        match parse(&value.value) {
            Ok(name) => Some(name),
            Err(problem) => {
                let message = match &value.written {
                    Some(written) => format!("{} (from {})", problem.message, quoted(written)),
                    None => problem.message,
                };
                self.error(value.span, &value.path, message).hint = Some(problem.hint);
                None
            }
        }
    }

    fn required_name<T>(
        &mut self,
        value: &raw::Required<String>,
        parse: fn(&str) -> Result<T, NameProblem>,
    ) -> Option<T> {
        self.name(value.get()?, parse)
    }

    // ---- workspace ------------------------------------------------------------------

    fn workspace(&mut self, entry: &Spanned<raw::Workspace>) -> Option<WorkspaceSpec> {
        let ws = &entry.value;
        let name = self.required_name(&ws.name, WorkspaceName::parse);
        let subscription_id = ws.subscription_id.get().and_then(|id| {
            let parsed = SubscriptionId::parse(&id.value);
            if parsed.is_none() {
                self.error(
                    id.span,
                    &id.path,
                    format!("subscription id {} is not a GUID", id.shown()),
                )
                .hint = Some("find it with `az account show --query id -o tsv`".into());
            }
            parsed
        });
        let resource_group = self.required_name(&ws.resource_group, ResourceGroupName::parse);
        let location = ws.location.as_ref().and_then(|location| {
            let parsed = Location::parse(&location.value);
            if parsed.is_none() {
                let compact: String =
                    location.value.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
                let hint = if names::is_location(&compact) {
                    format!("use the region's programmatic name: `{compact}`")
                } else {
                    "use the region's programmatic name, e.g. `westeurope` (see `az account list-locations -o table`)"
                        .to_string()
                };
                self.error(location.span, &location.path, format!("{} is not an Azure region name", location.shown()))
                    .hint = Some(hint);
            }
            parsed
        });
        let create_if_missing = ws.create_if_missing.as_ref().is_some_and(|c| c.value);
        if let Some(create) = ws.create_if_missing.as_ref().filter(|c| c.value)
            && ws.location.is_none()
        {
            self.error(
                create.span,
                &create.path,
                "a workspace that may be created needs a `location`",
            )
            .hint = Some("add `location: <region>`, e.g. `location: westeurope`".into());
        }
        let tags = self.tags(ws.tags.as_ref(), TagRules::Arm);
        Some(WorkspaceSpec {
            name: name?,
            subscription_id: subscription_id?,
            resource_group: resource_group?,
            location: if ws.location.is_some() {
                Some(location?)
            } else {
                None
            },
            create_if_missing,
            description: ws.description.as_ref().map(|d| d.value.clone()),
            tags: tags?,
            registries: Vec::new(),
            environments: Vec::new(),
            clusters: Vec::new(),
            jobs: Vec::new(),
            origin: self.origin(entry),
        })
    }

    // ---- registries -----------------------------------------------------------------

    fn registry(&mut self, entry: &Spanned<raw::Registry>) -> Option<Registry> {
        let registry = &entry.value;
        let name = self.required_name(&registry.name, ConnectionName::parse);
        let address = registry.address.get().and_then(|address| {
            let text = address.value.trim_end_matches('/');
            if let Some((scheme, rest)) = text.split_once("://") {
                self.error(
                    address.span,
                    &address.path,
                    format!("the address must not include a scheme ({scheme}://)"),
                )
                .hint = Some(format!("write only the host: `{rest}`"));
                return None;
            }
            if !names::is_registry_address(text) {
                self.error(
                    address.span,
                    &address.path,
                    format!("{} is not a registry host name", address.shown()),
                )
                .hint = Some("write the registry's host, e.g. `myregistry.azurecr.io`".into());
                return None;
            }
            Some(text.to_ascii_lowercase())
        });
        let username = registry.username.get().and_then(|username| {
            if username.value.trim().is_empty() {
                self.error(username.span, &username.path, "the user name is empty");
                return None;
            }
            Some(username.value.clone())
        });
        let password = registry.password.get()?;
        Some(Registry {
            name: name?,
            address: address?,
            username: username?,
            password: password.value.value.clone(),
            password_variable: password.value.variable.clone(),
            origin: self.origin(entry),
        })
    }

    // ---- environments ---------------------------------------------------------------

    fn environment(
        &mut self,
        entry: &Spanned<raw::Environment>,
        references: &mut Vec<Reference>,
    ) -> Option<Environment> {
        let env = &entry.value;
        let name = self.required_name(&env.name, AssetName::parse);
        let version = match &env.version {
            Some(version) if version.value.eq_ignore_ascii_case("latest") => {
                self.error(version.span, &version.path, "`latest` is not a version")
                    .hint = Some(
                    "leave `version` out to let amlspec version the environment by its content"
                        .into(),
                );
                return None;
            }
            Some(version) => Some(self.name(version, AssetVersion::parse)?),
            None => None,
        };
        let registry = match &env.registry {
            Some(registry) => {
                references.push(Reference {
                    kind: RefKind::Registry,
                    name: registry.value.clone(),
                    version: None,
                    span: registry.span,
                    path: registry.path.clone(),
                    node_count: None,
                });
                Some(self.name(registry, ConnectionName::parse)?)
            }
            None => None,
        };
        let build = self.environment_build(entry);
        let tags = self.tags(env.tags.as_ref(), TagRules::Asset);
        Some(Environment {
            name: name?,
            version,
            build: build?,
            registry,
            description: env.description.as_ref().map(|d| d.value.clone()),
            tags: tags?,
            origin: self.origin(entry),
        })
    }

    fn environment_build(&mut self, entry: &Spanned<raw::Environment>) -> Option<EnvironmentBuild> {
        let env = &entry.value;
        let forms: Vec<(&str, Span, &str)> = [
            ("image", env.image.as_ref()),
            ("dockerfile", env.dockerfile.as_ref()),
            ("dockerfile_path", env.dockerfile_path.as_ref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v.span, v.path.as_str())))
        .collect();
        match forms.as_slice() {
            [] => {
                self.error(entry.span, &entry.path, "an environment needs one of `image`, `dockerfile` or `dockerfile_path`")
                    .hint = Some("use `image:` for a base image, `dockerfile:` for an inline Dockerfile, or `dockerfile_path:` for a Dockerfile file".into());
                return None;
            }
            [_] => {}
            [(first, ..), rest @ ..] => {
                for (key, span, path) in rest {
                    self.error(
                        *span,
                        path,
                        format!("`{key}` cannot be combined with `{first}`"),
                    )
                    .hint = Some(
                        "an environment is built either from a base image or from one Dockerfile"
                            .into(),
                    );
                }
                return None;
            }
        }
        if let Some(context) = &env.build_context
            && env.dockerfile_path.is_none()
        {
            self.error(
                context.span,
                &context.path,
                "`build_context` goes with `dockerfile_path`",
            )
            .hint = Some(if env.dockerfile.is_some() {
                "an inline `dockerfile` is uploaded on its own; to COPY files, put the Dockerfile in the context folder and use `dockerfile_path`".into()
            } else {
                "add `dockerfile_path:` naming the Dockerfile inside the context".into()
            });
            return None;
        }
        let managed = env.user_managed_dependencies.as_ref();
        if let Some(image) = &env.image {
            let image = self.image(image)?;
            if let (Some(flag), Some(conda)) = (managed.filter(|m| m.value), &env.conda_file) {
                self.error(
                    conda.span,
                    &conda.path,
                    "`conda_file` contradicts `user_managed_dependencies: true`",
                )
                .hint = Some(format!(
                    "user-managed dependencies use the image's Python as is; remove `conda_file`, or remove `user_managed_dependencies` (line {})",
                    flag.span.line
                ));
                return None;
            }
            if let Some(flag) = managed.filter(|m| !m.value)
                && env.conda_file.is_none()
            {
                self.error(flag.span, &flag.path, "dependencies that are not user-managed need a `conda_file`").hint = Some(
                    "add `conda_file: conda.yml`, or set `user_managed_dependencies: true` to use the image's Python as is"
                        .into(),
                );
                return None;
            }
            let conda = match &env.conda_file {
                Some(conda) => Some(self.conda_file(conda)?),
                None => None,
            };
            return Some(EnvironmentBuild::Image { image, conda });
        }
        // A Dockerfile build: dependencies belong in the Dockerfile.
        if let Some(conda) = &env.conda_file {
            self.error(conda.span, &conda.path, "`conda_file` cannot be used with a Dockerfile").hint = Some(
                "Azure ML cannot layer a conda file on a Dockerfile build: install the dependencies in the Dockerfile (e.g. `RUN conda env update -f conda.yml`)".into(),
            );
            return None;
        }
        if let Some(flag) = managed.filter(|m| !m.value) {
            self.error(
                flag.span,
                &flag.path,
                "a Dockerfile build always manages its own dependencies",
            )
            .hint = Some(
                "remove `user_managed_dependencies: false`; install dependencies in the Dockerfile"
                    .into(),
            );
            return None;
        }
        if let Some(text) = &env.dockerfile {
            self.dockerfile_text(text, &text.value, &text.path)?;
            return Some(EnvironmentBuild::InlineDockerfile {
                text: text.value.clone(),
            });
        }
        let dockerfile_path = env.dockerfile_path.as_ref().expect("one form is set");
        let dockerfile = self.existing_path(dockerfile_path, PathKind::File)?;
        let context = match &env.build_context {
            Some(context) => self.existing_path(context, PathKind::Dir)?,
            None => {
                // The Dockerfile may resolve inside while its folder, through a symlink,
                // does not; the whole folder is uploaded.
                let folder = Path::new(&dockerfile_path.value)
                    .parent()
                    .unwrap_or(Path::new(""));
                self.inside_repository(
                    dockerfile_path,
                    folder,
                    format!(
                        "the Dockerfile's folder {} (its build context)",
                        quoted(&folder.to_string_lossy())
                    ),
                )?;
                dockerfile
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            }
        };
        let Some(inside) = relative_inside(&dockerfile, &context) else {
            let context_span = env
                .build_context
                .as_ref()
                .map_or(dockerfile_path.span, |c| c.span);
            self.error(
                dockerfile_path.span,
                &dockerfile_path.path,
                format!(
                    "the Dockerfile {} is not inside the build context",
                    quoted(&dockerfile_path.value)
                ),
            )
            .hint = Some(format!(
                "Azure builds from the context folder only; move the Dockerfile into it or point `build_context` (line {}) at a folder that contains it",
                context_span.line
            ));
            return None;
        };
        let bytes = self.read_bounded(dockerfile_path, &dockerfile, &DOCKERFILE_LIMIT)?;
        let text = String::from_utf8_lossy(&bytes);
        self.dockerfile_text(dockerfile_path, &text, &dockerfile_path.path)?;
        Some(EnvironmentBuild::DockerfileFile {
            context,
            dockerfile: inside,
        })
    }

    fn dockerfile_text(&mut self, at: &Spanned<String>, text: &str, path: &str) -> Option<()> {
        // `FROM`, in any case, then whitespace and the base image. (Not a byte slice of
        // the line: text that is not ASCII must not panic.)
        let has_from = text.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next().is_some_and(|w| w.eq_ignore_ascii_case("from")) && words.next().is_some()
        });
        if text.trim().is_empty() {
            self.error(at.span, path, "the Dockerfile is empty");
            return None;
        }
        if !has_from {
            self.error(at.span, path, "the Dockerfile has no FROM instruction").hint =
                Some("start it with the base image, e.g. `FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04`".into());
            return None;
        }
        Some(())
    }

    /// Check an image reference. (With a `registry`, `assemble` completes it with the
    /// registry's address once every registry is known.)
    fn image(&mut self, image: &Spanned<String>) -> Option<String> {
        let reference = match ImageReference::parse(&image.value) {
            Ok(reference) => reference,
            Err(problem) => {
                self.error(image.span, &image.path, format!("{} is not a valid image reference: {problem}", image.shown()))
                    .hint = Some("write `[registry/]repository[:tag][@sha256:digest]`, e.g. `fastdotai/fastai2:latest`".into());
                return None;
            }
        };
        Some(reference.text)
    }

    fn conda_file(&mut self, conda: &Spanned<String>) -> Option<CondaFile> {
        let path = self.existing_path(conda, PathKind::File)?;
        let bytes = self.read_bounded(conda, &path, &CONDA_FILE_LIMIT)?;
        let problem = match yaml::decode(&bytes).and_then(|text| Ok((text, yaml::parse(text)?))) {
            Ok((text, documents)) => match documents.as_slice() {
                [document] if matches!(document.value, yaml::Value::Map(_)) => {
                    return Some(CondaFile {
                        path,
                        content: text.to_string(),
                    });
                }
                _ => "it must hold one YAML mapping (name, channels, dependencies)".to_string(),
            },
            Err(error) => match error.span {
                Some(span) => format!(
                    "line {}, column {}: {}",
                    span.line, span.column, error.message
                ),
                None => error.message,
            },
        };
        self.error(conda.span, &conda.path, format!("the conda file {} is not valid: {problem}", quoted(&conda.value)))
            .hint = Some("a conda file lists `channels:` and `dependencies:`; see `conda env export --from-history`".into());
        None
    }

    // ---- clusters -------------------------------------------------------------------

    fn cluster(&mut self, entry: &Spanned<raw::Cluster>) -> Option<Cluster> {
        let cluster = &entry.value;
        let name = self.required_name(&cluster.name, ComputeName::parse);
        let vm_size = cluster.vm_size.get().and_then(|size| {
            if names::is_vm_size(&size.value) {
                Some(size.value.clone())
            } else {
                self.error(size.span, &size.path, format!("{} is not an Azure VM size", size.shown())).hint =
                    Some("use the size's name, e.g. `STANDARD_NC6` or `Standard_DS3_v2` (`az vm list-sizes -l <region>`)".into());
                None
            }
        });
        let max_nodes = cluster.max_nodes.get().map(|m| m.value);
        let min_nodes = cluster.min_nodes.as_ref().map_or(0, |m| m.value);
        if let (Some(min), Some(max)) = (&cluster.min_nodes, max_nodes)
            && min.value > max
        {
            self.error(
                min.span,
                &min.path,
                format!("min_nodes ({}) is larger than max_nodes ({max})", min.value),
            )
            .hint = Some(
                "min_nodes is how many nodes stay up when idle; it must not exceed max_nodes"
                    .into(),
            );
            return None;
        }
        let tags = self.tags(cluster.tags.as_ref(), TagRules::Arm);
        Some(Cluster {
            name: name?,
            vm_size: vm_size?,
            vm_priority: match cluster.vm_priority.as_ref().map(|p| p.value) {
                Some(raw::VmPriority::LowPriority) => VmPriority::LowPriority,
                Some(raw::VmPriority::Dedicated) | None => VmPriority::Dedicated,
            },
            min_nodes,
            max_nodes: max_nodes?,
            idle_seconds_before_scale_down: cluster
                .idle_seconds_before_scale_down
                .as_ref()
                .map(|s| s.value),
            description: cluster.description.as_ref().map(|d| d.value.clone()),
            tags: tags?,
            origin: self.origin(entry),
        })
    }

    // ---- jobs -----------------------------------------------------------------------

    fn job(&mut self, entry: &Spanned<raw::Job>, references: &mut Vec<Reference>) -> Option<Job> {
        let job = &entry.value;
        let name = self.required_name(&job.name, JobName::parse);
        let experiment = match &job.experiment {
            Some(experiment) => self.name(experiment, ExperimentName::parse),
            None => Some(ExperimentName::parse("Default").expect("a valid name")),
        };
        let node_count = job.node_count.as_ref().map_or(1, |n| n.value);
        let environment = job.environment.get().and_then(|reference| {
            let parsed = self.environment_ref(reference)?;
            let (name, version) = match &parsed {
                EnvironmentRef::Declared(name) => (name.as_str().to_string(), None),
                EnvironmentRef::Existing { name, version } => (
                    name.as_str().to_string(),
                    Some(
                        version
                            .as_ref()
                            .map_or("latest", |v| v.as_str())
                            .to_string(),
                    ),
                ),
            };
            references.push(Reference {
                kind: RefKind::Environment,
                name,
                version,
                span: reference.span,
                path: reference.path.clone(),
                node_count: None,
            });
            Some(parsed)
        });
        // An `azureml:` prefix, as the az ml CLI writes `compute:`, is accepted.
        let cluster = job.cluster.get().map(|cluster| {
            let mut cluster = cluster.clone();
            if let Some(name) = cluster.value.strip_prefix("azureml:") {
                cluster.value = name.to_string();
            }
            cluster
        });
        let cluster = cluster.as_ref().and_then(|cluster| {
            references.push(Reference {
                kind: RefKind::Cluster,
                name: cluster.value.clone(),
                version: None,
                span: cluster.span,
                path: cluster.path.clone(),
                node_count: Some(node_count),
            });
            self.name(cluster, ComputeName::parse)
        });
        let source_directory = match &job.source_directory {
            Some(dir) => Some(self.existing_path(dir, PathKind::Dir)?),
            None => None,
        };
        let command = self.job_command(entry, source_directory.as_deref());
        let distribution = job.distribution.as_ref().map(|d| match &d.value {
            raw::Distribution::Pytorch { processes_per_node } => Distribution::PyTorch {
                processes_per_node: processes_per_node.as_ref().map_or(1, |p| p.value),
            },
            raw::Distribution::Mpi { processes_per_node } => Distribution::Mpi {
                processes_per_node: processes_per_node.as_ref().map_or(1, |p| p.value),
            },
            raw::Distribution::Tensorflow {
                worker_count,
                parameter_server_count,
            } => Distribution::TensorFlow {
                worker_count: worker_count.as_ref().map(|w| w.value),
                parameter_server_count: parameter_server_count.as_ref().map_or(0, |p| p.value),
            },
        });
        let environment_variables = self.environment_variables(job.environment_variables.as_ref());
        let tags = self.tags(job.tags.as_ref(), TagRules::Asset);
        Some(Job {
            name: name?,
            experiment: experiment?,
            display_name: job.display_name.as_ref().map(|d| d.value.clone()),
            description: job.description.as_ref().map(|d| d.value.clone()),
            source_directory,
            command: command?,
            environment: environment?,
            cluster: cluster?,
            node_count,
            distribution,
            environment_variables: environment_variables?,
            tags: tags?,
            origin: self.origin(entry),
        })
    }

    /// `name`, `name:version`, `name@latest` (an `azureml:` prefix, as the az ml CLI
    /// writes it, is accepted).
    fn environment_ref(&mut self, reference: &Spanned<String>) -> Option<EnvironmentRef> {
        let text = reference
            .value
            .strip_prefix("azureml:")
            .unwrap_or(&reference.value);
        let existing = |this: &mut Self, name: &str, version: Option<&str>| {
            let name = ExistingAssetName::parse(name).map_err(|problem| {
                this.error(reference.span, &reference.path, problem.message)
                    .hint = Some(problem.hint);
            });
            let version = version
                .map(AssetVersion::parse)
                .transpose()
                .map_err(|problem| {
                    this.error(reference.span, &reference.path, problem.message)
                        .hint = Some(problem.hint);
                });
            Some(EnvironmentRef::Existing {
                name: name.ok()?,
                version: version.ok()?,
            })
        };
        if let Some(name) = text.strip_suffix("@latest") {
            return existing(self, name, None);
        }
        if let Some((name, version)) = text.split_once(':') {
            return existing(self, name, Some(version));
        }
        if text.contains('@') {
            self.error(reference.span, &reference.path, format!("{} is not an environment reference", reference.shown()))
                .hint = Some("write `name` for an environment declared here, or `name:version` / `name@latest` for an existing one".into());
            return None;
        }
        self.name(
            &Spanned {
                value: text.to_string(),
                ..reference.clone()
            },
            AssetName::parse,
        )
        .map(EnvironmentRef::Declared)
    }

    fn job_command(
        &mut self,
        entry: &Spanned<raw::Job>,
        source_directory: Option<&Path>,
    ) -> Option<String> {
        let job = &entry.value;
        if let Some(arguments) = &job.arguments
            && job.script.is_none()
        {
            self.error(
                arguments.span,
                &arguments.path,
                "`arguments` go with `script`",
            )
            .hint = Some("with `command`, write the arguments into the command itself".into());
            return None;
        }
        match (&job.command, &job.script) {
            (None, None) => {
                self.error(entry.span, &entry.path, "a job needs `command` or `script`").hint =
                    Some("e.g. `command: python train.py --epochs 5`, or `script: train.py` with `arguments:`".into());
                None
            }
            (Some(_), Some(script)) => {
                self.error(
                    script.span,
                    &script.path,
                    "`script` cannot be combined with `command`",
                )
                .hint = Some(
                    "use `command` for a full command line, or `script` and `arguments`".into(),
                );
                None
            }
            (Some(command), None) => {
                if command.value.trim().is_empty() {
                    self.error(command.span, &command.path, "the command is empty");
                    return None;
                }
                Some(command.value.trim().to_string())
            }
            (None, Some(script)) => {
                let Some(source_directory) = source_directory else {
                    if job.source_directory.is_none() {
                        self.error(
                            script.span,
                            &script.path,
                            "`script` needs a `source_directory` to find it in",
                        )
                        .hint = Some(
                            "add `source_directory:` naming the folder that holds the script"
                                .into(),
                        );
                    }
                    return None;
                };
                let relative = self.path_inside(script, source_directory)?;
                let mut command = format!("python {}", shell_quote(&relative));
                for argument in job.arguments.iter().flat_map(|a| a.value.0.iter()) {
                    command.push(' ');
                    command.push_str(&shell_quote(&argument.value));
                }
                Some(command)
            }
        }
    }

    /// A script path inside the snapshot folder: relative, not escaping it, existing.
    fn path_inside(&mut self, script: &Spanned<String>, dir: &Path) -> Option<String> {
        let relative = Path::new(&script.value);
        let escapes = relative.is_absolute()
            || relative.components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            });
        if escapes {
            self.error(
                script.span,
                &script.path,
                format!(
                    "the script {} must be inside source_directory",
                    quoted(&script.value)
                ),
            )
            .hint = Some("write its path relative to source_directory, without `..`".into());
            return None;
        }
        let full = dir.join(relative);
        if !full.is_file() {
            self.error(
                script.span,
                &script.path,
                format!("the script {} does not exist", quoted(&script.value)),
            )
            .hint = Some(format!("looked for {}", full.display()));
            return None;
        }
        Some(
            relative
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("/"),
        )
    }

    fn environment_variables(
        &mut self,
        vars: Option<&Spanned<KeyValues>>,
    ) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in vars.iter().flat_map(|v| v.value.0.iter()) {
            if !crate::spec::interpolate::is_variable_name(&key.value) {
                self.error(
                    key.span,
                    &key.path,
                    format!(
                        "{} is not a valid environment variable name",
                        quoted(&key.value)
                    ),
                )
                .hint = Some("use letters, digits and `_`, not starting with a digit".into());
                ok = false;
            }
            out.insert(key.value.clone(), value.value.clone());
        }
        ok.then_some(out)
    }

    fn tags(
        &mut self,
        tags: Option<&Spanned<KeyValues>>,
        rules: TagRules,
    ) -> Option<BTreeMap<String, String>> {
        let Some(tags) = tags else {
            return Some(BTreeMap::new());
        };
        let mut ok = true;
        if rules == TagRules::Arm && tags.value.0.len() > names::MAX_TAGS {
            self.error(
                tags.span,
                &tags.path,
                format!(
                    "{} tags; Azure allows at most {}",
                    tags.value.0.len(),
                    names::MAX_TAGS
                ),
            );
            ok = false;
        }
        let mut out = BTreeMap::new();
        for (key, value) in &tags.value.0 {
            if key.value.is_empty() {
                self.error(key.span, &key.path, "a tag name is empty");
                ok = false;
            } else if rules == TagRules::Arm {
                if key.value.chars().count() > names::MAX_TAG_NAME {
                    self.error(
                        key.span,
                        &key.path,
                        format!("tag name is longer than {} characters", names::MAX_TAG_NAME),
                    );
                    ok = false;
                }
                if let Some(bad) = key
                    .value
                    .chars()
                    .find(|c| names::TAG_NAME_FORBIDDEN.contains(c))
                {
                    self.error(
                        key.span,
                        &key.path,
                        format!("tag name {} contains `{bad}`", quoted(&key.value)),
                    )
                    .hint = Some("Azure tag names cannot contain < > % & \\ ? /".into());
                    ok = false;
                }
                if value.value.chars().count() > names::MAX_TAG_VALUE {
                    self.error(
                        value.span,
                        &value.path,
                        format!(
                            "tag value is longer than {} characters",
                            names::MAX_TAG_VALUE
                        ),
                    );
                    ok = false;
                }
            }
            out.insert(key.value.clone(), value.value.clone());
        }
        ok.then_some(out)
    }

    // ---- files ----------------------------------------------------------------------

    /// Read a file a value names, through a bounded reader (see
    /// [`crate::spec::read_regular_file`]): a named pipe, a device or a file over the
    /// limit is reported at the value, and never read whole.
    fn read_bounded(
        &mut self,
        value: &Spanned<String>,
        file: &Path,
        limit: &FileLimit,
    ) -> Option<Vec<u8>> {
        let problem = match crate::spec::read_regular_file(file, limit.bytes) {
            Ok(bytes) => return Some(bytes),
            Err(crate::spec::FileError::TooLarge { size, .. }) => {
                let size =
                    size.map_or_else(|| "larger".to_string(), |size| format!("{size} bytes"));
                self.error(
                    value.span,
                    &value.path,
                    format!(
                        "the {} {} is {size}, more than the {} MiB {}",
                        limit.noun,
                        quoted(&value.value),
                        limit.bytes / (1024 * 1024),
                        limit.accepted_by
                    ),
                )
                .hint = Some(format!(
                    "is this the right file? a {} is a few kilobytes",
                    limit.noun
                ));
                return None;
            }
            Err(error) => error,
        };
        self.error(
            value.span,
            &value.path,
            format!("cannot read {}: {problem}", file.display()),
        );
        None
    }

    fn existing_path(&mut self, value: &Spanned<String>, kind: PathKind) -> Option<PathBuf> {
        let relative = Path::new(&value.value);
        if relative.is_absolute() {
            self.error(
                value.span,
                &value.path,
                format!("{} is an absolute path", quoted(&value.value)),
            )
            .hint = Some(
                "write paths relative to the manifest, so the spec works on every machine".into(),
            );
            return None;
        }
        self.inside_repository(value, relative, quoted(&value.value))?;
        let full = self.base_dir.join(relative);
        let (exists_as_wanted, what) = match kind {
            PathKind::File => (full.is_file(), "file"),
            PathKind::Dir => (full.is_dir(), "folder"),
        };
        if exists_as_wanted {
            return Some(full);
        }
        let message = if full.exists() {
            format!("{} is not a {what}", quoted(&value.value))
        } else {
            format!("the {what} {} does not exist", quoted(&value.value))
        };
        self.error(value.span, &value.path, message).hint = Some(format!(
            "paths are relative to the manifest; looked for {}",
            full.display()
        ));
        None
    }

    /// Refuse a path that resolves (through `..` or symlinks) outside the manifest's
    /// repository, unless `--allow-outside-repo` allows it. `relative` is what `at`
    /// names (or a folder derived from it), `described` how the error names it. A
    /// missing path inside passes, for `existing_path` to report.
    fn inside_repository(
        &mut self,
        at: &Spanned<String>,
        relative: &Path,
        described: String,
    ) -> Option<()> {
        if self.options.allow_outside_repo {
            return Some(());
        }
        if self.repository.is_none() {
            let found = std::fs::canonicalize(&self.base_dir).and_then(|base| {
                let repository = Repository::find(&base)?;
                Ok((base, repository))
            });
            match found {
                Ok(found) => self.repository = Some(found),
                Err(error) => {
                    self.error(
                        at.span,
                        &at.path,
                        format!(
                            "cannot resolve the manifest's folder `{}`: {error}",
                            self.base_dir.display()
                        ),
                    );
                    return None;
                }
            }
        }
        let (base, repository) = self.repository.as_ref().expect("found above");
        let paths::Resolved::Outside(resolved) = paths::resolve(base, relative, repository) else {
            return Some(());
        };
        let message = format!(
            "{described} resolves to `{}`, outside {}",
            resolved.display(),
            repository.describe()
        );
        self.error(at.span, &at.path, message).hint = Some(
            "a spec may name only files inside its repository, so that a change to it cannot make amlspec read or upload other files; pass `--allow-outside-repo` to allow this".into(),
        );
        None
    }
}

/// The most a file named by a spec may hold, and who says so.
struct FileLimit {
    noun: &'static str,
    bytes: u64,
    accepted_by: &'static str,
}

/// Azure builds an environment from a build context of at most 1 MB in all, Dockerfile
/// included ("Custom environments" in Azure Machine Learning's service limits,
/// learn.microsoft.com/azure/machine-learning/resource-limits-capacity): a larger
/// Dockerfile can never build. Read as 1 MiB, so nothing Azure accepts is refused.
const DOCKERFILE_LIMIT: FileLimit = FileLimit {
    noun: "Dockerfile",
    bytes: 1024 * 1024,
    accepted_by: "Azure accepts in a build context",
};

/// Azure documents no limit for a conda file, which travels inline in the environment
/// version's request body (`condaFile`). 1 MiB, as for a Dockerfile: hundreds of times
/// a real one (a few kilobytes), and far below ARM's 4 MB request limit.
const CONDA_FILE_LIMIT: FileLimit = FileLimit {
    noun: "conda file",
    bytes: 1024 * 1024,
    accepted_by: "amlspec reads",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    File,
    Dir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagRules {
    /// Tracked ARM resources (workspace, compute): Azure's tag limits apply.
    Arm,
    /// Asset tags (environments, jobs): free-form.
    Asset,
}

/// `file`'s path inside `dir` with `/` separators, if it is inside.
fn relative_inside(file: &Path, dir: &Path) -> Option<String> {
    let file = std::fs::canonicalize(file).ok()?;
    let dir = std::fs::canonicalize(dir).ok()?;
    let inside = file.strip_prefix(&dir).ok()?;
    Some(
        inside
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Quote an argument for the POSIX shell that runs a job's command, only when needed.
pub fn shell_quote(argument: &str) -> String {
    let plain = !argument.is_empty()
        && argument
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
    if plain {
        argument.to_string()
    } else {
        format!("'{}'", argument.replace('\'', r"'\''"))
    }
}

/// A container image reference: `[host[:port]/]path[:tag][@digest]`.
struct ImageReference {
    text: String,
    host: Option<String>,
}

impl ImageReference {
    fn parse(text: &str) -> Result<ImageReference, String> {
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.chars().any(char::is_whitespace) {
            return Err("it contains spaces".into());
        }
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        if let Some(digest) = digest {
            let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
            if !valid {
                return Err("the digest must be `sha256:` and 64 lower-case hex digits".into());
            }
        }
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return Err(format!("the tag {} is not valid", quoted(tag)));
            }
        }
        let mut components: Vec<&str> = name.split('/').collect();
        let host = match components.first() {
            Some(first)
                if components.len() > 1
                    && (first.contains(['.', ':']) || *first == "localhost") =>
            {
                if !names::is_registry_address(first) {
                    return Err(format!("the registry host {} is not valid", quoted(first)));
                }
                Some(components.remove(0).to_ascii_lowercase())
            }
            _ => None,
        };
        for component in &components {
            if component.is_empty() {
                return Err("it has an empty path segment".into());
            }
            if component.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err("repository names must be lower case".into());
            }
            let valid = component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && component.starts_with(|c: char| c.is_ascii_alphanumeric())
                && component.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                return Err(format!(
                    "the path segment {} is not valid",
                    quoted(component)
                ));
            }
        }
        Ok(ImageReference {
            text: text.to_string(),
            host,
        })
    }
}

// ---- assembling documents into workspaces ---------------------------------------------

/// Group documents by workspace, resolve references, find duplicates and conflicting
/// declarations. Returns the model when nothing at all was wrong.
pub fn assemble(documents: Vec<Document>, problems: &mut Vec<Diagnostic>) -> Specs {
    // Group by workspace identity; a document whose workspace has problems is a group
    // of its own, so its references are still checked.
    let mut groups: Vec<(Option<WorkspaceKey>, Vec<Document>)> = Vec::new();
    for doc in documents {
        let key = doc.workspace.as_ref().map(WorkspaceSpec::key);
        match groups.iter_mut().find(|(k, _)| k.is_some() && *k == key) {
            Some((_, docs)) => docs.push(doc),
            None => groups.push((key, vec![doc])),
        }
    }
    let mut workspaces = Vec::new();
    for (_, docs) in groups {
        if let Some(workspace) = assemble_workspace(docs, problems) {
            workspaces.push(workspace);
        }
    }
    Specs { workspaces }
}

fn assemble_workspace(
    docs: Vec<Document>,
    problems: &mut Vec<Diagnostic>,
) -> Option<WorkspaceSpec> {
    let mut declared = Declared::default();
    for doc in &docs {
        declared
            .registries
            .extend(doc.declared.registries.iter().cloned());
        declared
            .environments
            .extend(doc.declared.environments.iter().cloned());
        declared
            .clusters
            .extend(doc.declared.clusters.iter().cloned());
        declared.jobs.extend(doc.declared.jobs.iter().cloned());
    }
    duplicates(&declared.registries, "registry", problems);
    duplicates(&declared.environments, "environment", problems);
    duplicates(&declared.clusters, "cluster", problems);
    duplicates(&declared.jobs, "job", problems);

    let mut workspace: Option<WorkspaceSpec> = None;
    for doc in &docs {
        let Some(this) = &doc.workspace else { continue };
        match &workspace {
            None => workspace = Some(this.clone()),
            Some(first) => conflicting_declarations(first, this, doc, problems),
        }
    }
    let registries: Vec<Registry> = docs
        .iter()
        .flat_map(|d| d.registries.iter().cloned())
        .collect();
    let clusters: Vec<Cluster> = docs
        .iter()
        .flat_map(|d| d.clusters.iter().cloned())
        .collect();
    let mut environments: Vec<Environment> = docs
        .iter()
        .flat_map(|d| d.environments.iter().cloned())
        .collect();
    same_registry_address(&registries, problems);

    for doc in &docs {
        for reference in &doc.references {
            resolve(
                reference,
                &doc.file,
                &declared,
                &environments,
                &clusters,
                problems,
            );
        }
    }
    // With every registry known, refer to each by its declared spelling (names compare
    // without case), then complete the image references that pull from one.
    for environment in &mut environments {
        if let Some(declared) = environment.registry.as_ref().and_then(|wanted| {
            registries
                .iter()
                .find(|r| r.name.as_str().eq_ignore_ascii_case(wanted.as_str()))
        }) {
            environment.registry = Some(declared.name.clone());
        }
    }
    for environment in &mut environments {
        let (Some(registry_name), EnvironmentBuild::Image { image, .. }) =
            (&environment.registry, &mut environment.build)
        else {
            continue;
        };
        let Some(registry) = registries
            .iter()
            .find(|r| r.name.as_str().eq_ignore_ascii_case(registry_name.as_str()))
        else {
            continue;
        };
        match ImageReference::parse(image).ok().and_then(|r| r.host) {
            None => *image = format!("{}/{image}", registry.address),
            Some(host) if host == registry.address => {}
            Some(host) => {
                let origin = &environment.origin;
                problems.push(
                    Diagnostic::error(
                        &origin.file,
                        Some(origin.span),
                        &format!("{}.image", origin.path),
                        format!("the image is on `{host}`, but registry `{registry_name}` is `{}`", registry.address),
                    )
                    .with_hint("leave the host out of `image` to pull from the registry, or fix `registry`"),
                );
            }
        }
    }
    let mut workspace = workspace?;
    workspace.registries = registries;
    workspace.environments = environments;
    workspace.clusters = clusters;
    workspace.jobs = docs.iter().flat_map(|d| d.jobs.iter().cloned()).collect();
    Some(workspace)
}

fn duplicates(declared: &[(String, Origin)], what: &str, problems: &mut Vec<Diagnostic>) {
    // The first declaration of each name, by a map: thousands of entries stay linear.
    let mut firsts: std::collections::HashMap<String, &Origin> = std::collections::HashMap::new();
    for (name, origin) in declared {
        let first = *firsts.entry(name.to_ascii_lowercase()).or_insert(origin);
        if !std::ptr::eq(first, origin) {
            problems.push(
                Diagnostic::error(
                    &origin.file,
                    Some(origin.span),
                    &format!("{}.name", origin.path),
                    format!(
                        "{what} {} is declared twice in this workspace",
                        quoted(name)
                    ),
                )
                .with_hint(format!(
                    "the first declaration is at {first} (names are compared ignoring case)"
                )),
            );
        }
    }
}

fn same_registry_address(registries: &[Registry], problems: &mut Vec<Diagnostic>) {
    let mut firsts: std::collections::HashMap<&str, &Registry> = std::collections::HashMap::new();
    for registry in registries {
        let first = *firsts.entry(registry.address.as_str()).or_insert(registry);
        if !std::ptr::eq(first, registry) {
            let origin = &registry.origin;
            problems.push(
                Diagnostic::error(
                    &origin.file,
                    Some(origin.span),
                    &format!("{}.address", origin.path),
                    format!(
                        "registries `{}` and `{}` both point at `{}`",
                        first.name, registry.name, registry.address
                    ),
                )
                .with_hint(
                    "Azure ML picks a registry's credentials by host; keep one entry per address",
                ),
            );
        }
    }
}

fn conflicting_declarations(
    first: &WorkspaceSpec,
    this: &WorkspaceSpec,
    doc: &Document,
    problems: &mut Vec<Diagnostic>,
) {
    let show = |value: &Option<String>| value.as_deref().map_or("(not set)".to_string(), quoted);
    let mut differences = Vec::new();
    if first.location != this.location {
        let location = |l: &Option<Location>| l.as_ref().map(|l| l.as_str().to_string());
        differences.push(format!(
            "location {} vs {}",
            show(&location(&first.location)),
            show(&location(&this.location))
        ));
    }
    if first.create_if_missing != this.create_if_missing {
        differences.push(format!(
            "create_if_missing {} vs {}",
            first.create_if_missing, this.create_if_missing
        ));
    }
    if first.description != this.description {
        differences.push("description".into());
    }
    if first.tags != this.tags {
        differences.push("tags".into());
    }
    if first.name.as_str() != this.name.as_str()
        || first.resource_group.as_str() != this.resource_group.as_str()
    {
        differences.push("the letter case of its name or resource group".into());
    }
    if differences.is_empty() {
        return;
    }
    problems.push(
        Diagnostic::error(
            &doc.file,
            Some(doc.workspace_span),
            "workspace",
            format!("workspace `{}` is declared differently at {} ({})", this.name, first.origin, differences.join(", ")),
        )
        .with_hint("every file that names this workspace must declare it the same way; or declare it fully in one file only"),
    );
}

fn resolve(
    reference: &Reference,
    file: &Path,
    declared: &Declared,
    environments: &[Environment],
    clusters: &[Cluster],
    problems: &mut Vec<Diagnostic>,
) {
    let (names, what, section) = match reference.kind {
        RefKind::Registry => (&declared.registries, "registry", "registries"),
        RefKind::Environment => (&declared.environments, "environment", "environments"),
        RefKind::Cluster => (&declared.clusters, "cluster", "clusters"),
    };
    let found = names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&reference.name));
    let mut problem = |message: String, hint: String| {
        problems.push(
            Diagnostic::error(file, Some(reference.span), &reference.path, message).with_hint(hint),
        );
    };
    match (reference.kind, found, &reference.version) {
        // `name:version` / `name@latest` of an environment not declared here: an existing one.
        (RefKind::Environment, None, Some(_)) => {}
        (RefKind::Environment, Some(_), Some(version)) => {
            let pinned = environments
                .iter()
                .find(|e| e.name.as_str().eq_ignore_ascii_case(&reference.name))
                .and_then(|e| e.version.as_ref());
            if pinned.is_none_or(|pinned| pinned.as_str() != version) {
                problem(
                    format!(
                        "environment `{}` is declared in this workspace; refer to it by name only",
                        reference.name
                    ),
                    format!(
                        "write `environment: {}`; amlspec picks the version it manages",
                        reference.name
                    ),
                );
            }
        }
        (_, None, _) => {
            let candidates = names.iter().map(|(name, _)| name.as_str());
            let hint = match did_you_mean(&reference.name, candidates) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => {
                    format!("declare it under `{section}:` in this workspace")
                }
                None => format!(
                    "declared {section}: {}",
                    names
                        .iter()
                        .map(|(name, _)| name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let hint = if reference.kind == RefKind::Environment {
                format!(
                    "{hint}; an existing environment is written `name:version` or `name@latest`"
                )
            } else {
                hint
            };
            problem(format!("unknown {what} {}", quoted(&reference.name)), hint);
        }
        (RefKind::Cluster, Some(_), _) => {
            let cluster = clusters
                .iter()
                .find(|c| c.name.as_str().eq_ignore_ascii_case(&reference.name));
            if let (Some(cluster), Some(node_count)) = (cluster, reference.node_count)
                && node_count > cluster.max_nodes
            {
                problem(
                    format!(
                        "the job needs {node_count} nodes but cluster `{}` has at most {}",
                        cluster.name, cluster.max_nodes
                    ),
                    format!(
                        "lower `node_count` or raise the cluster's `max_nodes` ({})",
                        cluster.origin
                    ),
                );
            }
        }
        (_, Some(_), _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for ok in [
            "fastdotai/fastai2:latest",
            "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04",
            "localhost:5000/x/y:1.0",
            "ubuntu",
            "myregistry.azurecr.io/team/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageReference::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Fastdotai/x",
            "a b",
            "x:",
            "x@sha256:12",
            "x:-bad",
            "a//b",
            // Each rule of a path segment on its own: a character, the first, the last.
            "team/b$c",
            "team/-app",
            "team/app-",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ImageReference::parse("myregistry.azurecr.io/x")
                .unwrap()
                .host
                .as_deref(),
            Some("myregistry.azurecr.io")
        );
        assert_eq!(
            ImageReference::parse("fastdotai/fastai2").unwrap().host,
            None
        );
        // A dotted name alone is a repository (on Docker Hub), not a host.
        assert_eq!(ImageReference::parse("my.image").unwrap().host, None);
        // The tag is looked for after the last `/` only: a colon just before it is
        // not a tag separator, whatever it makes of the rest.
        let problem = |text: &str| ImageReference::parse(text).err().map(|e| e.to_string());
        assert_eq!(
            problem("registry.io/app:/x").as_deref(),
            Some("the path segment `app:` is not valid")
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--epochs"), "--epochs");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

/// Azure's tag limits are inclusive: 50 tags, names of 512 characters and values of 256
/// are allowed; one more of each is refused, each with its own problem.
#[cfg(test)]
#[test]
fn tag_limits_allow_exactly_the_limit() {
    let problems = |tags: &[(String, String)]| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        let mut text = "workspace:\n  name: tags-ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  tags:\n".to_string();
        for (name, value) in tags {
            text.push_str(&format!("    {name}: {value}\n"));
        }
        std::fs::write(&path, text).unwrap();
        let loaded = crate::spec::load(&[path], &crate::env::EnvVars::default());
        loaded.problems.iter().map(|p| p.message.clone()).collect()
    };
    let many = |count: usize| -> Vec<(String, String)> {
        (0..count).map(|i| (format!("t{i}"), "v".into())).collect()
    };
    assert_eq!(problems(&many(names::MAX_TAGS)), Vec::<String>::new());
    assert_eq!(
        problems(&many(names::MAX_TAGS + 1)),
        ["51 tags; Azure allows at most 50"]
    );
    let at = |name: usize, value: usize| vec![("n".repeat(name), "v".repeat(value))];
    assert_eq!(
        problems(&at(names::MAX_TAG_NAME, names::MAX_TAG_VALUE)),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(&at(names::MAX_TAG_NAME + 1, names::MAX_TAG_VALUE + 1)),
        [
            "tag name is longer than 512 characters",
            "tag value is longer than 256 characters"
        ]
    );
}
