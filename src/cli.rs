//! Command line: clap arguments -> settings (`settings`, resolved once here) -> one
//! function per command (in `commands`) -> exit code.
//!
//! Data goes to stdout (plans, the schema, JSON reports, GitHub annotations); everything
//! meant for people alongside it (problems, progress) goes to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::azure::auth::AuthMethod;
use crate::azure::client::DEFAULT_MAX_PARALLEL;
use crate::azure::endpoints::Cloud;
use crate::commands;
use crate::settings::{
    ApplyFormat, ApplySettings, AzureTarget, ConnectionSettings, DiagnosticFormat,
    EMULATOR_STATE_DIR, ExportSettings, LogsSettings, PlanFormat, PlanSettings, ShowSettings,
    Target, ValidateSettings,
};
use crate::spec::LoadOptions;

/// `--version`: the release, the git revision it was built from, and the Azure ML
/// api-version it speaks.
static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (git {}, Azure ML api-version {})",
        env!("CARGO_PKG_VERSION"),
        env!("AMLSPEC_GIT_REVISION"),
        crate::azure::ML_API_VERSION
    )
});

/// Declarative reconciler for Azure Machine Learning: a committed YAML manifest
/// describes a workspace, its registries, environments, clusters and jobs.
#[derive(Debug, Parser)]
#[command(
    name = "amlspec",
    version,
    long_version = LONG_VERSION.as_str(),
    about,
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG, when set,
    /// takes precedence (e.g. RUST_LOG=amlspec=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// When to use colour. `auto` colours only a terminal and honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Also write the whole log, at trace level, to this file (appended; secret values
    /// masked as on stderr): for a CI job to keep as an artifact. AMLSPEC_LOG_FILE is the
    /// same.
    #[arg(long, value_name = "FILE", env = "AMLSPEC_LOG_FILE", global = true)]
    pub log_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files without touching Azure. Exit 0 when valid, 1 when not, 2 on a
    /// usage error.
    ///
    /// Reports every problem in every file at once, each with file:line:column, the key
    /// path and, where it helps, a hint. `${NAME}` references are expanded from the
    /// environment, so variables the spec uses must be set.
    Validate(ValidateArgs),
    /// Read live Azure state and show what apply would change.
    ///
    /// Reads exactly the resources the specs name (concurrently) and compares them with
    /// the specs. Exit 0 when the plan can be applied (or, with --detailed-exitcode,
    /// when there is nothing to change), 1 on errors or when something is blocked, 2
    /// with --detailed-exitcode when there are changes.
    Plan(PlanArgs),
    /// Make the plan, show it, and carry it out: create what is missing, update what may
    /// change in place, submit the jobs that have not run.
    ///
    /// Asks for confirmation on a terminal (--auto-approve skips it; without a terminal it
    /// is required). A plan saved by `plan --out` is applied as reviewed, without asking,
    /// after checking that nothing moved since it was made. Blocked plans are not applied;
    /// replacements need --allow-replace. Every step is safe to repeat: after a failure
    /// or an interruption, apply again. Exit 0 when everything was done, 1 when something
    /// failed or was refused, 130/143 when stopped by Ctrl-C/SIGTERM.
    Apply(ApplyArgs),
    /// Show a plan saved by `plan --out` in any plan format, without reading Azure.
    ///
    /// Exit 0, or 1 when the plan is blocked (with --detailed-exitcode: 0 no changes,
    /// 2 changes), as `plan` would have.
    Show(ShowArgs),
    /// Show the output and status of a job of the specs; with --follow, as it is written,
    /// until the job ends.
    ///
    /// JOB is the job's name in the spec (`pets-resnet34`) or as submitted
    /// (`pets-resnet34-980bcba1`). The job's output goes to stdout, its status to stderr.
    /// Exit 0 when the job completed (or, without --follow, has not ended yet), 1 when it
    /// ended otherwise, 130/143 when stopped by Ctrl-C/SIGTERM (the job goes on).
    Logs(LogsArgs),
    /// Write a manifest of an existing workspace: its container registries, environments,
    /// clusters and the jobs amlspec submitted, so that `plan` of it says "No changes".
    ///
    /// How a team with a workspace adopts amlspec. Registry passwords are never read or
    /// written: each becomes a `${NAME}` reference to set before planning. An environment
    /// is exported as its newest version, pinned. Files the manifest names are written
    /// beside it (conda files under `conda/`, build contexts under `environments/`, jobs'
    /// code under `code/`), so they need --out. What a manifest cannot declare (other
    /// connection and compute kinds, jobs submitted by other clients, whatever cannot be
    /// read back as it is in Azure) is left out with a warning on stderr naming it and
    /// why. Without --out the manifest goes to stdout. Exit 0 when written, 1 when the
    /// workspace cannot be read or a file exists (see --force).
    Export(ExportArgs),
    /// Print the JSON Schema of the manifest (for editors; committed as
    /// schemas/amlspec.schema.json).
    Schema,
    /// Print a shell completion script: `amlspec completions bash > /etc/bash_completion.d/amlspec`,
    /// `amlspec completions zsh > "${fpath[1]}/_amlspec"`, `amlspec completions fish >
    /// ~/.config/fish/completions/amlspec.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `amlspec man > amlspec.1 && man ./amlspec.1`.
    Man,
    /// Serve the local Azure emulator (ARM, Entra ID tokens, Blob) on a loopback port.
    #[cfg(feature = "emulator")]
    Emulator(Box<crate::emulator::cli::EmulatorArgs>),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Spec files, or folders whose *.yaml / *.yml files are specs (not recursive).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Output format: `human` text on stderr; `json` (versioned report) or `github`
    /// (workflow annotations on the offending lines) on stdout.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,

    /// Allow spec paths (source_directory, dockerfile_path, build_context, conda_file)
    /// that resolve outside the manifest's repository: its git work tree, else its folder.
    #[arg(long)]
    pub allow_outside_repo: bool,

    /// Check everything but the values of unset `${NAME}` variables (warned about): for
    /// pull requests from forks, which get no secrets.
    #[arg(long)]
    pub allow_unset: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Spec files, or folders whose *.yaml / *.yml files are specs (not recursive).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Output format: `human` (terraform-like), `json` (versioned, for policy tools),
    /// `markdown` (for a pull-request comment) or `github` (the human plan plus
    /// annotations on the spec lines of changed resources; markdown is appended to
    /// $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,

    /// Save the plan (JSON, no secrets) for `apply`, which refuses it if live state or
    /// the specs moved since.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Only this resource (an address as the plan shows it, e.g.
    /// `ml-rg/pets-ws/cluster/gpu-cluster`; a workspace's address takes everything in it)
    /// and what it needs. Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,

    /// Also list what each existing workspace holds that no spec declares (clusters,
    /// container registries, environments): one list request per kind. Nothing is ever
    /// deleted.
    #[arg(long)]
    pub unmanaged: bool,

    #[command(flatten)]
    pub specs: SpecArgs,

    #[command(flatten)]
    pub preflight: PreflightArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Spec files, or folders whose *.yaml / *.yml files are specs (not recursive); or
    /// one plan saved by `plan --out`.
    #[arg(required = true, value_name = "FILE|DIR|PLANFILE")]
    pub paths: Vec<PathBuf>,

    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// Allow replacing resources whose fixed attributes changed (a cluster's VM size or
    /// priority): each is deleted, then created again, losing its nodes.
    #[arg(long)]
    pub allow_replace: bool,

    /// Only this resource (an address as the plan shows it, e.g.
    /// `ml-rg/pets-ws/cluster/gpu-cluster`; a workspace's address takes everything in it)
    /// and what it needs. Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,

    /// Follow the jobs this apply submits until each ends, showing every change of
    /// status; exit 1 when one does not complete.
    #[arg(long)]
    pub wait: bool,

    /// The closing report: `human` or `json` (versioned, on stdout; the plan and
    /// progress then go to stderr).
    #[arg(long, value_enum, default_value_t = ApplyFormat::Human)]
    pub format: ApplyFormat,

    /// How long one long-running operation (creating a workspace or a cluster) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub operation_timeout: u64,

    #[command(flatten)]
    pub specs: SpecArgs,

    #[command(flatten)]
    pub preflight: PreflightArgs,

    #[command(flatten)]
    pub azure: AzureArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `plan --out`.
    #[arg(value_name = "PLANFILE")]
    pub path: PathBuf,

    /// Output format, as for `plan`.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 when blocked.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job: its name in the spec, or its submitted name.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// Spec files, or folders whose *.yaml / *.yml files are specs (not recursive).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Follow the output as it is written, until the job ends.
    #[arg(short, long)]
    pub follow: bool,

    /// Allow spec paths (source_directory, dockerfile_path, build_context, conda_file)
    /// that resolve outside the manifest's repository: its git work tree, else its folder.
    #[arg(long)]
    pub allow_outside_repo: bool,

    #[command(flatten)]
    pub azure: AzureArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Subscription id (a GUID) of the workspace.
    #[arg(long, value_name = "ID", env = "AZURE_SUBSCRIPTION_ID", value_parser = subscription_id)]
    pub subscription: String,

    /// Resource group of the workspace.
    #[arg(long, short = 'g', value_name = "NAME", value_parser = name_of(&crate::spec::names::RESOURCE_GROUP))]
    pub resource_group: String,

    /// The workspace's name.
    #[arg(long, short = 'w', value_name = "NAME", value_parser = name_of(&crate::spec::names::WORKSPACE))]
    pub workspace: String,

    /// Write the manifest to FILE (atomically), or to DIR/<workspace>.yaml when DIR is a
    /// folder; the files it names go beside it (`conda/`, `environments/`, `code/`).
    /// Without it, the manifest goes to stdout, and what needs such files is left out.
    #[arg(long, short = 'o', value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,

    /// Overwrite the manifest and the files beside it when they exist.
    #[arg(long)]
    pub force: bool,

    /// The JSON schema the manifest's `yaml-language-server` modeline names: a path
    /// relative to the manifest, or a URL.
    #[arg(
        long,
        value_name = "PATH|URL",
        default_value = "../schemas/amlspec.schema.json"
    )]
    pub schema: String,

    #[command(flatten)]
    pub azure: AzureArgs,
}

/// A clap parser that checks a name against an Azure naming rule.
fn name_of(
    rule: &'static crate::spec::names::NameRule,
) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |text: &str| {
        rule.check(text)
            .map(|()| text.to_string())
            .map_err(|problem| format!("{} ({})", problem.message, problem.hint))
    }
}

fn subscription_id(text: &str) -> Result<String, String> {
    crate::spec::model::SubscriptionId::parse(text)
        .map(|id| id.as_str().to_string())
        .ok_or_else(|| "a subscription id is a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)".into())
}

impl ExportArgs {
    fn settings(self, matches: &clap::ArgMatches) -> ExportSettings {
        let ExportArgs {
            subscription,
            resource_group,
            workspace,
            out,
            force,
            schema,
            azure,
        } = self;
        ExportSettings {
            subscription_id: subscription,
            resource_group,
            workspace,
            out,
            force,
            schema,
            connection: azure.settings("export", matches),
        }
    }
}

impl LogsArgs {
    fn settings(self, matches: &clap::ArgMatches) -> LogsSettings {
        let LogsArgs {
            job,
            paths,
            follow,
            allow_outside_repo,
            azure,
        } = self;
        LogsSettings {
            job,
            paths,
            follow,
            load: LoadOptions {
                allow_outside_repo,
                allow_secret_files: false,
                allow_unset: false,
            },
            connection: azure.settings("logs", matches),
        }
    }
}

/// After Ctrl-C or SIGTERM, how long what runs may take to finish (a second signal ends
/// the wait at once).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl ApplyArgs {
    fn settings(self, matches: &clap::ArgMatches) -> ApplySettings {
        let ApplyArgs {
            paths,
            auto_approve,
            allow_replace,
            targets,
            wait,
            format,
            operation_timeout,
            specs,
            preflight,
            azure,
        } = self;
        ApplySettings {
            paths,
            format,
            auto_approve,
            allow_replace,
            wait,
            operation_timeout: std::time::Duration::from_secs(operation_timeout),
            grace: STOP_GRACE,
            targets,
            load: specs.load_options(),
            preflight: preflight.preflight(),
            connection: azure.settings("apply", matches),
        }
    }
}

/// What specs may make amlspec read and upload (plan and apply).
#[derive(Debug, Clone, Copy, Args)]
pub struct SpecArgs {
    /// Allow spec paths (source_directory, dockerfile_path, build_context, conda_file)
    /// that resolve outside the manifest's repository: its git work tree, else its folder.
    #[arg(long)]
    pub allow_outside_repo: bool,

    /// Upload files that look like credentials (`.env`, private keys, cloud and tool
    /// credential files) when they are in a job's source_directory or a build context.
    /// Without it such a plan is blocked: better, list them in `.amlignore`.
    #[arg(long)]
    pub allow_secret_files: bool,
}

impl SpecArgs {
    fn load_options(self) -> LoadOptions {
        LoadOptions {
            allow_outside_repo: self.allow_outside_repo,
            allow_secret_files: self.allow_secret_files,
            allow_unset: false,
        }
    }
}

/// The preflight checks plan makes (plan and apply).
#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// Skip preflight checks: all of them, or those named (`--skip-preflight=image`,
    /// `--skip-preflight=vm-size,quota`). Preflight asks Azure, with three reads per
    /// subscription and region, whether each new cluster's VM size is offered there and
    /// whether the clusters' and jobs' vCPUs fit the quota; and asks each registry, as a
    /// container runtime would, whether the images that new environments and new jobs
    /// use can be pulled with the declared credentials (under `--emulator`, the
    /// emulator's stand-ins for the declared registries).
    #[arg(
        long,
        value_enum,
        value_name = "CHECK",
        num_args = 0..,
        require_equals = true,
        value_delimiter = ','
    )]
    pub skip_preflight: Option<Vec<PreflightCheck>>,
}

/// One preflight check, as `--skip-preflight` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreflightCheck {
    VmSize,
    Quota,
    Image,
}

impl PreflightArgs {
    fn preflight(&self) -> crate::observe::Preflight {
        let Some(skipped) = &self.skip_preflight else {
            return crate::observe::Preflight::ALL;
        };
        // `--skip-preflight` alone skips everything.
        let skips = |check| skipped.is_empty() || skipped.contains(&check);
        crate::observe::Preflight {
            vm_sizes: !skips(PreflightCheck::VmSize),
            quotas: !skips(PreflightCheck::Quota),
            images: !skips(PreflightCheck::Image),
        }
    }
}

/// The connection options that `--emulator` replaces: (argument id, option).
const EMULATOR_REPLACES: [(&str, &str); 6] = [
    ("cloud", "--cloud"),
    ("arm_endpoint", "--arm-endpoint"),
    ("authority_host", "--authority-host"),
    ("storage_suffix", "--storage-suffix"),
    ("ca_cert", "--ca-cert"),
    ("auth", "--auth"),
];

impl ValidateArgs {
    fn settings(self) -> ValidateSettings {
        let ValidateArgs {
            paths,
            format,
            allow_outside_repo,
            allow_unset,
        } = self;
        ValidateSettings {
            paths,
            format,
            load: LoadOptions {
                allow_outside_repo,
                allow_secret_files: false,
                allow_unset,
            },
        }
    }
}

impl PlanArgs {
    /// `matches`: the plan subcommand's, to tell options given on the command line from
    /// those that came from the environment.
    fn settings(self, matches: &clap::ArgMatches) -> PlanSettings {
        let PlanArgs {
            paths,
            format,
            out,
            detailed_exitcode,
            targets,
            unmanaged,
            specs,
            preflight,
            azure,
        } = self;
        PlanSettings {
            paths,
            format,
            out,
            detailed_exitcode,
            targets,
            unmanaged,
            load: specs.load_options(),
            preflight: preflight.preflight(),
            connection: azure.settings("plan", matches),
        }
    }
}

impl AzureArgs {
    /// Under `--emulator`, a connection option given on the command line is a usage
    /// error (exit 2), and one that came from an `AMLSPEC_*` variable (a shell or CI set
    /// up for Azure) is ignored: the explicit `--emulator` wins over the environment.
    fn settings(self, command: &str, matches: &clap::ArgMatches) -> ConnectionSettings {
        let AzureArgs {
            emulator,
            cloud,
            arm_endpoint,
            authority_host,
            storage_suffix,
            ca_cert,
            auth,
            max_parallel,
            max_retries,
        } = self;
        let target = if emulator {
            for (id, option) in EMULATOR_REPLACES {
                match matches.value_source(id) {
                    Some(clap::parser::ValueSource::CommandLine) => {
                        let mut cli = Cli::command();
                        cli.build();
                        cli.find_subcommand_mut(command)
                            .expect("a subcommand with connection options")
                            .error(
                                clap::error::ErrorKind::ArgumentConflict,
                                format!("the argument '--emulator' cannot be used with '{option}'"),
                            )
                            .exit()
                    }
                    Some(clap::parser::ValueSource::EnvVariable) => {
                        tracing::info!("--emulator: ignoring {option} from the environment");
                    }
                    _ => {}
                }
            }
            Target::Emulator {
                state_dir: EMULATOR_STATE_DIR.into(),
            }
        } else {
            Target::Azure(AzureTarget {
                cloud,
                arm_endpoint,
                authority_host,
                storage_suffix,
                ca_cert,
                auth,
            })
        };
        ConnectionSettings {
            target,
            max_parallel: max_parallel as usize,
            max_retries,
        }
    }
}

/// Where Azure is and how to sign in.
#[derive(Debug, Clone, Args)]
pub struct AzureArgs {
    /// Run the local Azure emulator in-process (state in .amlspec/emulator/) and work
    /// against it: no Azure account needed.
    /// With it, the `AMLSPEC_*` connection variables of the environment are ignored (-v
    /// names them), and the connection options below are refused.
    #[arg(long)]
    pub emulator: bool,

    /// The Azure cloud.
    #[arg(long, value_enum, env = "AMLSPEC_CLOUD")]
    pub cloud: Option<Cloud>,

    /// Resource Manager URL, instead of the cloud's (http only for loopback addresses).
    #[arg(long, value_name = "URL", env = "AMLSPEC_ARM_ENDPOINT")]
    pub arm_endpoint: Option<String>,

    /// Entra ID authority host, instead of the cloud's (https).
    #[arg(long, value_name = "URL", env = "AMLSPEC_AUTHORITY_HOST")]
    pub authority_host: Option<String>,

    /// Blob storage endpoint suffix, instead of the cloud's (`core.windows.net`).
    #[arg(long, value_name = "SUFFIX", env = "AMLSPEC_STORAGE_SUFFIX")]
    pub storage_suffix: Option<String>,

    /// Trust this PEM CA certificate too (for a local emulator serving HTTPS).
    #[arg(long, value_name = "FILE", env = "AMLSPEC_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// How to sign in. `auto`: service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID,
    /// AZURE_CLIENT_SECRET), then workload identity (AZURE_FEDERATED_TOKEN_FILE), then a
    /// managed identity the host announces, then the Azure CLI.
    #[arg(long, value_enum, env = "AMLSPEC_AUTH")]
    pub auth: Option<AuthMethod>,

    /// Most requests in flight at once. A 429 from Azure pauses all of them for its
    /// Retry-After.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PARALLEL as u32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_parallel: u32,

    /// Retries of a request that Azure throttled (429), failed with a 5xx, or whose
    /// connection dropped; backoff doubles from 0.5 s, honouring Retry-After.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub max_retries: u32,
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Err(error) = init_tracing(cli.verbose, cli.color, cli.log_file.as_deref()) {
        let _ = writeln!(anstream::stderr(), "error: {error}");
        return ExitCode::FAILURE;
    }
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(args.settings()),
        Command::Plan(args) => {
            let (_, plan) = matches.subcommand().expect("a subcommand was given");
            run_async(commands::plan::run(args.settings(plan)))
        }
        Command::Apply(args) => {
            let (_, apply) = matches.subcommand().expect("a subcommand was given");
            run_async(commands::apply::run(args.settings(apply)))
        }
        Command::Show(args) => commands::show::run(ShowSettings {
            path: args.path,
            format: args.format,
            detailed_exitcode: args.detailed_exitcode,
        }),
        Command::Logs(args) => {
            let (_, logs) = matches.subcommand().expect("a subcommand was given");
            run_async(commands::logs::run(args.settings(logs)))
        }
        Command::Export(args) => {
            let (_, export) = matches.subcommand().expect("a subcommand was given");
            run_async(commands::export::run(args.settings(export)))
        }
        Command::Schema => commands::schema(),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "amlspec", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => return crate::emulator::cli::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Output went away (a closed pipe): nothing more can be said.
            let _ = writeln!(anstream::stderr(), "error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Run a command on the one runtime of this process. What is left on it when the command
/// is done (a sign-in no longer needed, idle worker threads) is not waited for.
fn run_async<T>(
    command: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(command);
    runtime.shutdown_background();
    result
}

fn init_tracing(verbose: u8, color: ColorWhen, log_file: Option<&Path>) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let ansi = match color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let default = match verbose {
        0 => "warn",
        1 => "amlspec=info",
        2 => "amlspec=debug",
        _ => "amlspec=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Every record is masked whole: no level shows a secret value.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(crate::render::redact::MASKED_STDERR)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    let file = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file `{}`: {e}", path.display()))?;
            crate::render::redact::log_to_file(file);
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(crate::render::redact::MASKED_LOG_FILE)
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(tracing_subscriber::EnvFilter::new("amlspec=trace")),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(())
}

/// A build without the emulator has no `emulator` command, and still takes `--emulator`
/// (connecting then says what is missing), so that scripts parse alike.
#[cfg(all(test, not(feature = "emulator")))]
mod slim_tests {
    use super::*;

    #[test]
    fn without_the_emulator_feature_there_is_no_emulator_command() {
        let error = Cli::try_parse_from(["amlspec", "emulator"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidSubcommand);
        assert!(Cli::try_parse_from(["amlspec", "plan", "--emulator", "specs"]).is_ok());
    }
}
