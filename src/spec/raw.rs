//! The manifest as written: one type per YAML mapping, every value with its position.
//!
//! These types are the single description of the manifest's shape. `read` builds them
//! from YAML (by hand, so that every problem in a file is reported in one run with its
//! exact position), `validate` turns them into the checked `model`, and schemars derives
//! the editor schema from them (doc comments become descriptions). A test proves that
//! the reader and the schema accept the same keys.
//!
//! Required keys are `Required<T>` and optional ones `Option<Spanned<T>>`: a value is
//! absent only when the reader has already reported why.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::diagnostic::Span;
use crate::spec::names;
use crate::spec::secret::Secret;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
    /// Key path, e.g. `environments[1].image`.
    pub path: String,
    /// The text as written when it used `${NAME}` interpolation, for messages.
    pub written: Option<String>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span, path: impl Into<String>) -> Self {
        Spanned {
            value,
            span,
            path: path.into(),
            written: None,
        }
    }
}

impl Spanned<String> {
    /// The value for a message: `` `abc` `` or `` `abc` (from `${X}`) ``.
    pub fn shown(&self) -> String {
        let value = crate::diagnostic::quoted(&self.value);
        match &self.written {
            Some(written) => format!("{value} (from {})", crate::diagnostic::quoted(written)),
            None => value,
        }
    }
}

/// A key the manifest must have. `None` only after the reader reported it missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Required<T>(pub Option<Spanned<T>>);

impl<T> Required<T> {
    pub fn get(&self) -> Option<&Spanned<T>> {
        self.0.as_ref()
    }
}

macro_rules! transparent_schema {
    ($wrapper:ident) => {
        impl<T: JsonSchema> JsonSchema for $wrapper<T> {
            fn inline_schema() -> bool {
                T::inline_schema()
            }
            fn schema_name() -> Cow<'static, str> {
                T::schema_name()
            }
            fn schema_id() -> Cow<'static, str> {
                T::schema_id()
            }
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                T::json_schema(generator)
            }
        }
    };
}
transparent_schema!(Spanned);
transparent_schema!(Required);

/// JSON-schema pattern for a text field that may also be a `${NAME}` reference.
fn interpolable(pattern: &str) -> String {
    let body = pattern.trim_start_matches('^').trim_end_matches('$');
    format!("^(?:{body}|.*\\$\\{{[A-Za-z_][A-Za-z0-9_]*\\}}.*)$")
}

/// A whole manifest: one workspace and what it should contain. Top-level keys that
/// start with `x-` are ignored (a place to define YAML anchors), and so is `$schema`
/// (with which az ml files start).
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, title = "amlspec manifest", extend("patternProperties" = {"^x-": {}, "^\\$schema$": {"type": "string"}}))]
pub struct Manifest {
    /// The Azure Machine Learning workspace that holds everything below.
    pub workspace: Required<Workspace>,
    /// Private container registries, created as workspace connections
    /// (category ContainerRegistry, authType UsernamePassword).
    pub registries: Option<Vec<Spanned<Registry>>>,
    /// Docker environments (Microsoft.MachineLearningServices workspaces/environments/versions).
    pub environments: Option<Vec<Spanned<Environment>>>,
    /// AmlCompute clusters (workspaces/computes).
    pub clusters: Option<Vec<Spanned<Cluster>>>,
    /// Command jobs to submit (workspaces/jobs), with their source snapshots (workspaces/codes).
    pub jobs: Option<Vec<Spanned<Job>>>,
}

/// The workspace (Microsoft.MachineLearningServices/workspaces).
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("if" = {"properties": {"create_if_missing": {"const": true}}, "required": ["create_if_missing"]}),
    extend("then" = {"required": ["location"]})
)]
pub struct Workspace {
    /// Workspace name: 3 to 33 letters, digits, `-` or `_`, starting with a letter or digit.
    #[schemars(extend("pattern" = interpolable(names::WORKSPACE.pattern)), example = &"pets-ws")]
    pub name: Required<String>,
    /// Azure subscription id (a GUID); usually `${AZURE_SUBSCRIPTION_ID}`.
    #[schemars(extend("pattern" = interpolable(names::SUBSCRIPTION_ID_PATTERN)), example = &"${AZURE_SUBSCRIPTION_ID}")]
    pub subscription_id: Required<String>,
    /// Resource group that holds the workspace (1 to 90 characters).
    #[schemars(extend("pattern" = interpolable(names::RESOURCE_GROUP.pattern)), example = &"ml-rg")]
    pub resource_group: Required<String>,
    /// Azure region, by its programmatic name. Required when `create_if_missing` is true;
    /// otherwise, when given, it must match the existing workspace.
    #[schemars(extend("pattern" = interpolable(names::LOCATION_PATTERN)), example = &"westeurope")]
    pub location: Option<Spanned<String>>,
    /// Create the workspace (and its resource group, storage account, key vault and
    /// application insights) when it does not exist. When false (the default), a missing
    /// workspace is a plan error, like SDK v1's `Workspace.from_config`.
    #[schemars(example = true)]
    pub create_if_missing: Option<Spanned<bool>>,
    /// Workspace description (updated in place).
    pub description: Option<Spanned<String>>,
    /// ARM tags on the workspace (updated in place): at most 50, names up to 512
    /// characters without `<>%&\?/`, values up to 256 characters.
    pub tags: Option<Spanned<KeyValues>>,
}

/// A private container registry, stored as a workspace connection so Azure ML can pull
/// images from it.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Registry {
    /// Connection name, referred to by environments' `registry`: 3 to 33 letters, digits,
    /// `-` or `_`.
    #[schemars(extend("pattern" = interpolable(names::CONNECTION.pattern)), example = &"myregistry")]
    pub name: Required<String>,
    /// Registry host (and optional port), without a scheme: the connection's `target`.
    #[schemars(extend("pattern" = interpolable(names::REGISTRY_ADDRESS_PATTERN)), example = &"myregistry.azurecr.io")]
    pub address: Required<String>,
    /// User name for the registry.
    #[schemars(example = &"username")]
    pub username: Required<String>,
    /// Password: only a `${NAME}` reference to an environment variable; a literal
    /// password in the file is an error. Never printed or saved.
    #[schemars(example = &"${ACR_PASSWORD}")]
    pub password: Required<SecretRef>,
}

/// A Docker environment. Exactly one of `image`, `dockerfile`, `dockerfile_path`.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [
        {"required": ["image"]},
        {"required": ["dockerfile"]},
        {"required": ["dockerfile_path"]},
    ]),
    extend("dependencies" = {
        "conda_file": ["image"],
        "build_context": ["dockerfile_path"],
    }),
    extend("if" = {"properties": {"user_managed_dependencies": {"const": true}}, "required": ["user_managed_dependencies"]}),
    extend("then" = {"not": {"required": ["conda_file"]}})
)]
pub struct Environment {
    /// Environment name, 1 to 255 letters, digits, `-` or `_`.
    #[schemars(extend("pattern" = interpolable(names::ASSET.pattern)), example = &"fastai2")]
    pub name: Required<String>,
    /// Pinned version. Leave it out to let amlspec derive a content-addressed version, so
    /// a changed definition becomes a new version (versions are immutable in Azure).
    #[schemars(
        extend("pattern" = interpolable(names::ASSET_VERSION.pattern)),
        extend("type" = ["string", "number", "null"]),
        example = &"1"
    )]
    pub version: Option<Spanned<String>>,
    /// Base image reference; with `registry`, a reference without a host is pulled from
    /// that registry (SDK v1's `docker.base_image`).
    #[schemars(example = &"fastdotai/fastai2:latest")]
    pub image: Option<Spanned<String>>,
    /// Inline Dockerfile text (SDK v1's `base_dockerfile` string), uploaded as the build
    /// context. Not interpolated: `${VAR}` is left for Docker.
    #[schemars(example = &"FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\nRUN pip install fastai\n")]
    pub dockerfile: Option<Spanned<String>>,
    /// Path of a Dockerfile, relative to this manifest. Its folder (or `build_context`)
    /// is uploaded as the build context.
    #[schemars(example = &"docker/Dockerfile")]
    pub dockerfile_path: Option<Spanned<String>>,
    /// Build context folder, relative to this manifest; must contain the Dockerfile.
    /// Defaults to the Dockerfile's folder.
    #[schemars(example = &"docker")]
    pub build_context: Option<Spanned<String>>,
    /// Name of a `registries` entry whose credentials pull the base image.
    #[schemars(example = &"myregistry")]
    pub registry: Option<Spanned<String>>,
    /// true: use the image's own Python as is (SDK v1 `python.user_managed_dependencies`).
    /// Leave it out or set false and give `conda_file` to have Azure ML build a conda
    /// environment on top of `image`.
    pub user_managed_dependencies: Option<Spanned<bool>>,
    /// Conda environment file, relative to this manifest, built on top of `image`. Not
    /// available with a Dockerfile: install dependencies in the Dockerfile instead.
    #[schemars(example = &"conda.yml")]
    pub conda_file: Option<Spanned<String>>,
    /// Description of the environment version.
    pub description: Option<Spanned<String>>,
    /// Tags on the environment version.
    pub tags: Option<Spanned<KeyValues>>,
}

/// An AmlCompute cluster.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Cluster {
    /// Compute name: 3 to 24 letters, digits or `-`, starting with a letter, not ending
    /// in `-<digits>`.
    #[schemars(extend("pattern" = interpolable(names::COMPUTE.pattern)), example = &"gpu-cluster")]
    pub name: Required<String>,
    /// Azure VM size of the nodes (immutable: changing it means replacing the cluster).
    #[schemars(extend("pattern" = interpolable(names::VM_SIZE_PATTERN)), example = &"STANDARD_NC6")]
    pub vm_size: Required<String>,
    /// dedicated (default) or low_priority (immutable).
    pub vm_priority: Option<Spanned<VmPriority>>,
    /// Nodes kept running when idle (default 0), at most `max_nodes`. Updated in place.
    #[schemars(range(max = 10000))]
    pub min_nodes: Option<Spanned<u32>>,
    /// Most nodes the cluster scales out to, at least 1. Updated in place.
    #[schemars(range(min = 1, max = 10000), example = 4)]
    pub max_nodes: Required<u32>,
    /// Seconds a node stays idle before it is released (Azure's default is 120).
    /// Updated in place.
    #[schemars(range(max = 31536000), example = 1800)]
    pub idle_seconds_before_scale_down: Option<Spanned<u32>>,
    /// Description of the compute (immutable in Azure).
    pub description: Option<Spanned<String>>,
    /// ARM tags on the compute.
    pub tags: Option<Spanned<KeyValues>>,
}

/// VM priority of a cluster's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(rename_all = "snake_case")]
pub enum VmPriority {
    /// Dedicated VMs.
    Dedicated,
    /// Low-priority (spot) VMs: cheaper, may be preempted.
    LowPriority,
}

/// A command job, submitted once per distinct definition.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("oneOf" = [{"required": ["command"]}, {"required": ["script"]}]),
    extend("dependencies" = {"arguments": ["script"], "script": ["source_directory"]})
)]
pub struct Job {
    /// Job name. The run is submitted as `<name>-<hash>`, where the hash covers
    /// everything that defines the run: an unchanged job is never submitted twice.
    #[schemars(extend("pattern" = interpolable(names::JOB.pattern)), example = &"pets-resnet34")]
    pub name: Required<String>,
    /// Experiment the run belongs to (default `Default`).
    #[schemars(extend("pattern" = interpolable(names::EXPERIMENT.pattern)), example = &"fastai-custom-image")]
    pub experiment: Option<Spanned<String>>,
    /// Display name in the studio (defaults to the submitted name).
    pub display_name: Option<Spanned<String>>,
    /// Description of the run.
    pub description: Option<Spanned<String>>,
    /// Folder uploaded as the run's code snapshot, relative to this manifest.
    /// `.amlignore` (else `.gitignore`) rules inside it are honoured.
    #[schemars(example = &"fastai-example")]
    pub source_directory: Option<Spanned<String>>,
    /// Command to run in the snapshot folder. Not interpolated: `${VAR}` and
    /// `${{inputs.x}}` are left for the job.
    #[schemars(example = &"python train.py --epochs 5")]
    pub command: Option<Spanned<String>>,
    /// Python script inside `source_directory` to run, instead of `command`.
    #[schemars(example = &"train.py")]
    pub script: Option<Spanned<String>>,
    /// Arguments passed to `script`.
    pub arguments: Option<Spanned<Arguments>>,
    /// Environment to run in: the name of an `environments` entry, or an existing one as
    /// `name:version` or `name@latest`.
    #[schemars(example = &"fastai2")]
    pub environment: Required<String>,
    /// Name of a `clusters` entry to run on.
    #[schemars(example = &"gpu-cluster")]
    pub cluster: Required<String>,
    /// Number of nodes (default 1), at most the cluster's `max_nodes`.
    #[schemars(range(min = 1, max = 10000))]
    pub node_count: Option<Spanned<u32>>,
    /// Distributed training: processes per node for pytorch and mpi; workers and
    /// parameter servers for tensorflow.
    pub distribution: Option<Spanned<Distribution>>,
    /// Environment variables set for the run.
    pub environment_variables: Option<Spanned<KeyValues>>,
    /// Tags on the run.
    pub tags: Option<Spanned<KeyValues>>,
}

/// How a distributed job starts its processes.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(tag = "type", rename_all = "snake_case", deny_unknown_fields, transform = describe_distribution_type)]
pub enum Distribution {
    /// PyTorch distributed (torch.distributed launch).
    Pytorch {
        /// Processes started on each node (default 1), typically one per GPU.
        #[schemars(range(min = 1, max = 1024))]
        processes_per_node: Option<Spanned<u32>>,
    },
    /// MPI (Horovod and friends).
    Mpi {
        /// Processes started on each node (default 1), typically one per GPU.
        #[schemars(range(min = 1, max = 1024))]
        processes_per_node: Option<Spanned<u32>>,
    },
    /// TensorFlow parameter-server training.
    Tensorflow {
        /// Worker processes (default: the job's node_count).
        #[schemars(range(min = 1, max = 10000))]
        worker_count: Option<Spanned<u32>>,
        /// Parameter-server processes (default 0).
        #[schemars(range(max = 10000))]
        parameter_server_count: Option<Spanned<u32>>,
    },
}

/// Give the `type` key of each distribution variant a description for editors.
fn describe_distribution_type(schema: &mut Schema) {
    let Some(variants) = schema.get_mut("oneOf").and_then(|v| v.as_array_mut()) else {
        return;
    };
    for variant in variants {
        if let Some(kind) = variant
            .pointer_mut("/properties/type")
            .and_then(|t| t.as_object_mut())
        {
            kind.insert(
                "description".into(),
                "Distribution kind: pytorch, mpi or tensorflow.".into(),
            );
        }
    }
}

/// A secret taken from an environment variable: written `${NAME}` in the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    pub variable: String,
    pub value: Secret,
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$",
            "description": "A secret, written only as a `${NAME}` reference to an environment variable.",
        })
    }
}

/// Names to text values (tags, environment variables). Numbers and booleans are taken
/// as their text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyValues(pub Vec<(Spanned<String>, Spanned<String>)>);

impl JsonSchema for KeyValues {
    fn schema_name() -> Cow<'static, str> {
        "KeyValues".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        })
    }
}

/// Script arguments: text, numbers or booleans, passed as text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Arguments(pub Vec<Spanned<String>>);

impl JsonSchema for Arguments {
    fn schema_name() -> Cow<'static, str> {
        "Arguments".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": {"type": ["string", "number", "boolean"]},
        })
    }
}
