//! The validated manifest: what later stages (observe, plan, apply) consume.
//!
//! Names are newtypes that can only be built by checking Azure's rules, paths are
//! resolved against the manifest's folder, references are resolved, and every value
//! that reaches Azure is already in the form Azure wants (a full image reference, the
//! conda file's text). Each resource keeps its `Origin` so later stages can point back
//! at the line that declared it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::diagnostic::Span;
use crate::spec::names::{self, NameProblem, NameRule};
use crate::spec::secret::Secret;

/// Every workspace of a run, in the order first declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Specs {
    pub workspaces: Vec<WorkspaceSpec>,
}

/// Where a resource was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub span: Span,
    /// Key path of the declaration, e.g. `clusters[0]`.
    pub path: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.display(),
            self.span.line,
            self.span.column
        )
    }
}

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub const RULE: &'static NameRule = &$rule;

            pub fn parse(text: &str) -> Result<Self, NameProblem> {
                Self::RULE.check(text)?;
                Ok($name(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// `Microsoft.MachineLearningServices/workspaces` name.
    WorkspaceName,
    names::WORKSPACE
);
checked_name!(
    /// Resource group name.
    ResourceGroupName,
    names::RESOURCE_GROUP
);
checked_name!(
    /// Workspace connection name (a registry entry).
    ConnectionName,
    names::CONNECTION
);
checked_name!(
    /// Compute name (a cluster).
    ComputeName,
    names::COMPUTE
);
checked_name!(
    /// Name of an environment amlspec creates.
    AssetName,
    names::ASSET
);
checked_name!(
    /// Name of an existing environment a job refers to.
    ExistingAssetName,
    names::EXISTING_ASSET
);
checked_name!(
    /// Pinned environment version.
    AssetVersion,
    names::ASSET_VERSION
);
checked_name!(
    /// Job name before its content hash is appended.
    JobName,
    names::JOB
);
checked_name!(
    /// Experiment name.
    ExperimentName,
    names::EXPERIMENT
);

/// Azure subscription id, lower-cased GUID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(String);

impl SubscriptionId {
    pub fn parse(text: &str) -> Option<Self> {
        names::is_guid(text).then(|| SubscriptionId(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Azure region programmatic name, lower-cased (`westeurope`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location(String);

impl Location {
    pub fn parse(text: &str) -> Option<Self> {
        names::is_location(text).then(|| Location(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Identity of a workspace: Azure names are case-insensitive, so the key is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspaceKey {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceSpec {
    pub name: WorkspaceName,
    pub subscription_id: SubscriptionId,
    pub resource_group: ResourceGroupName,
    pub location: Option<Location>,
    pub create_if_missing: bool,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub registries: Vec<Registry>,
    pub environments: Vec<Environment>,
    pub clusters: Vec<Cluster>,
    pub jobs: Vec<Job>,
    /// The first declaration of this workspace.
    pub origin: Origin,
}

impl WorkspaceSpec {
    pub fn key(&self) -> WorkspaceKey {
        WorkspaceKey {
            subscription_id: self.subscription_id.as_str().to_string(),
            resource_group: self.resource_group.as_str().to_ascii_lowercase(),
            name: self.name.as_str().to_ascii_lowercase(),
        }
    }
}

/// A private container registry, as a workspace connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    pub name: ConnectionName,
    /// Host and optional port, lower-cased: the connection's `target`.
    pub address: String,
    pub username: String,
    pub password: Secret,
    /// The environment variable the password came from (a name, safe to show).
    pub password_variable: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: AssetName,
    /// `None`: amlspec derives a content-addressed version.
    pub version: Option<AssetVersion>,
    pub build: EnvironmentBuild,
    /// Registry whose credentials pull the base image.
    pub registry: Option<ConnectionName>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EnvironmentBuild {
    /// A base image, with user-managed dependencies or a conda environment on top.
    Image {
        image: String,
        conda: Option<CondaFile>,
    },
    /// An inline Dockerfile, uploaded alone as the build context.
    InlineDockerfile { text: String },
    /// A Dockerfile in a folder that is uploaded as the build context.
    DockerfileFile {
        /// The build context folder.
        context: PathBuf,
        /// The Dockerfile's path inside the context, with `/` separators.
        dockerfile: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CondaFile {
    pub path: PathBuf,
    /// The file's text: Azure takes the conda specification inline.
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmPriority {
    Dedicated,
    LowPriority,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: ComputeName,
    pub vm_size: String,
    pub vm_priority: VmPriority,
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// `None`: Azure's default.
    pub idle_seconds_before_scale_down: Option<u32>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}

/// The environment a job runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentRef {
    /// An `environments` entry of the same workspace.
    Declared(AssetName),
    /// An environment that already exists in the workspace; `None` means `@latest`.
    Existing {
        name: ExistingAssetName,
        version: Option<AssetVersion>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    PyTorch {
        processes_per_node: u32,
    },
    Mpi {
        processes_per_node: u32,
    },
    TensorFlow {
        worker_count: Option<u32>,
        parameter_server_count: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: JobName,
    pub experiment: ExperimentName,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Folder uploaded as the code snapshot.
    pub source_directory: Option<PathBuf>,
    /// The command as Azure runs it (a `script` with `arguments` becomes
    /// `python <script> <arguments>`).
    pub command: String,
    pub environment: EnvironmentRef,
    pub cluster: ComputeName,
    pub node_count: u32,
    pub distribution: Option<Distribution>,
    pub environment_variables: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub origin: Origin,
}
