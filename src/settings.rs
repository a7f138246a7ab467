//! What each command runs with, resolved once from the command line (`cli`) and nothing
//! else: commands take these, never clap's types. `--emulator` is decided here: a
//! connection is either the in-process emulator or Azure, never a mix.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::azure::auth::AuthMethod;
use crate::azure::endpoints::Cloud;
use crate::spec::LoadOptions;

/// Where `--emulator` keeps its state, relative to the current folder.
pub const EMULATOR_STATE_DIR: &str = ".amlspec/emulator";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
    Github,
}

#[derive(Debug, Clone)]
pub struct ValidateSettings {
    pub paths: Vec<PathBuf>,
    pub format: DiagnosticFormat,
    pub load: LoadOptions,
}

#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub paths: Vec<PathBuf>,
    pub format: PlanFormat,
    /// Where to save the plan for `apply`.
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    /// Plan only these addresses and what they need (`--target`).
    pub targets: Vec<String>,
    /// Also list what the workspaces hold that no spec declares (`--unmanaged`).
    pub unmanaged: bool,
    pub load: LoadOptions,
    /// The preflight checks to make (`--skip-preflight` leaves some out).
    pub preflight: crate::observe::Preflight,
    pub connection: ConnectionSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct ApplySettings {
    /// Spec files and folders, or one plan saved by `plan --out`.
    pub paths: Vec<PathBuf>,
    pub format: ApplyFormat,
    /// Apply without asking.
    pub auto_approve: bool,
    /// Replace resources whose fixed attributes changed (delete, then create).
    pub allow_replace: bool,
    /// Follow the submitted jobs until they end.
    pub wait: bool,
    /// How long one long-running operation may take.
    pub operation_timeout: std::time::Duration,
    /// After Ctrl-C or SIGTERM, how long to let what runs finish.
    pub grace: std::time::Duration,
    /// Apply only these addresses and what they need (`--target`).
    pub targets: Vec<String>,
    pub load: LoadOptions,
    /// The preflight checks to make (`--skip-preflight` leaves some out).
    pub preflight: crate::observe::Preflight,
    pub connection: ConnectionSettings,
}

#[derive(Debug, Clone)]
pub struct ShowSettings {
    /// A plan saved by `plan --out`.
    pub path: PathBuf,
    pub format: PlanFormat,
    pub detailed_exitcode: bool,
}

#[derive(Debug, Clone)]
pub struct LogsSettings {
    /// The job, by its name in the spec or as submitted.
    pub job: String,
    pub paths: Vec<PathBuf>,
    /// Follow until the job ends.
    pub follow: bool,
    pub load: LoadOptions,
    pub connection: ConnectionSettings,
}

#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// The workspace to read (names checked against Azure's rules).
    pub subscription_id: String,
    pub resource_group: String,
    pub workspace: String,
    /// The manifest file, or a folder for `<workspace>.yaml`; `None`: stdout.
    pub out: Option<PathBuf>,
    /// Overwrite existing files.
    pub force: bool,
    /// The schema the modeline names.
    pub schema: String,
    pub connection: ConnectionSettings,
}

/// Where Azure is, how to sign in, and how hard to push.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub target: Target,
    /// Requests in flight at once.
    pub max_parallel: usize,
    /// Retries of a throttled, failed or dropped request.
    pub max_retries: u32,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// The local emulator, started in-process with its state in `state_dir`.
    Emulator {
        state_dir: PathBuf,
    },
    Azure(AzureTarget),
}

/// Azure's endpoints and sign-in, each `None` for the default.
#[derive(Debug, Clone, Default)]
pub struct AzureTarget {
    pub cloud: Option<Cloud>,
    pub arm_endpoint: Option<String>,
    pub authority_host: Option<String>,
    pub storage_suffix: Option<String>,
    /// A PEM CA certificate to trust too.
    pub ca_cert: Option<PathBuf>,
    pub auth: Option<AuthMethod>,
}
