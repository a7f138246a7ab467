//! `amlspec emulator`: flags -> [`EmulatorConfig`] -> serve until Ctrl-C / SIGTERM.
//!
//! HTTPS by default: clients (plan among them) refuse plain http to anything but an
//! in-process emulator, so a fresh self-signed CA is written where the ready line says
//! (`ca=`): `<state>/ca.pem`, or with state in memory, a private temporary folder that is
//! removed on exit. The admin key for `/admin/...` goes beside it (`admin_key_file=`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{
    BlobBackend, Capacity, DEFAULT_CLI_PORT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    DEFAULT_STORAGE_SUFFIX, DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID, Emulator, EmulatorConfig,
    FaultRule, ServicePrincipal, SimMode, SimTimings, TlsConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimArg {
    /// Operations and jobs move on by themselves (virtual clock).
    Auto,
    /// Nothing moves until `POST /admin/step`.
    Explicit,
}

/// Serve the local Azure emulator (ARM, Entra ID tokens, Blob) on a loopback port.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Loopback address to bind (anything else is refused).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = DEFAULT_CLI_PORT)]
    pub port: u16,
    /// Folder for durable state; omitted, state lives in memory.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// PEM certificate (chain) for HTTPS; needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Write the fresh self-signed CA certificate to FILE instead of the default place
    /// (`<state>/ca.pem`, or a temporary folder when state is in memory).
    #[arg(long, value_name = "FILE")]
    pub tls_self_signed: Option<PathBuf>,
    /// Serve plain http instead of HTTPS (plan and apply only accept it from an
    /// in-process emulator).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_self_signed"])]
    pub plain_http: bool,
    /// How operations and jobs progress.
    #[arg(long, value_enum, default_value_t = SimArg::Auto)]
    pub sim: SimArg,
    /// Seconds a long-running operation takes (auto mode).
    #[arg(long, default_value_t = 2)]
    pub lro_seconds: u64,
    /// Seconds per job status before Running (auto mode).
    #[arg(long, default_value_t = 1)]
    pub job_phase_seconds: u64,
    /// Seconds a job stays Running (auto mode).
    #[arg(long, default_value_t = 3)]
    pub job_running_seconds: u64,
    /// Retry-After seconds on asynchronous answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Fault rule, repeatable: KIND[:ARG[:ARG]][,p=P][,n=COUNT][,on=arm|blob|token|registry][,path=TEXT][,method=M]
    /// with KIND latency:MS[:JITTER_MS], throttle[:RETRY_AFTER], error:500|503, drop, lose-answer, fail-lro, expired-token.
    #[arg(long = "fault", value_name = "SPEC", value_parser = FaultRule::parse)]
    pub faults: Vec<FaultRule>,
    /// Seed for random fault decisions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Tenant id the token endpoint serves.
    #[arg(long, default_value = DEFAULT_TENANT_ID)]
    pub tenant: String,
    /// Subscription the emulator knows (repeatable).
    #[arg(long = "subscription", default_values_t = [DEFAULT_SUBSCRIPTION_ID.to_string()])]
    pub subscriptions: Vec<String>,
    /// Client id of the seeded service principal.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// Client secret of the seeded service principal.
    #[arg(long, env = "AMLSPEC_EMULATOR_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET)]
    pub client_secret: String,
    /// Storage endpoint suffix: accounts are {account}.blob.SUFFIX:PORT (must contain "core.").
    #[arg(long, default_value = DEFAULT_STORAGE_SUFFIX)]
    pub storage_suffix: String,
    /// Items per page before lists carry nextLink.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    /// Point datastores and upload SAS URLs at an external Azurite account URL instead of
    /// the built-in blob service, e.g. http://127.0.0.1:10000/devstoreaccount1.
    #[arg(long, value_name = "URL", requires = "azurite_key")]
    pub azurite_endpoint: Option<String>,
    /// Azurite account name.
    #[arg(long, default_value = "devstoreaccount1")]
    pub azurite_account: String,
    /// Azurite account key (base64).
    #[arg(long, requires = "azurite_endpoint")]
    pub azurite_key: Option<String>,
    /// A VM size the region does not offer, repeatable: LOCATION:SIZE
    /// (e.g. `westeurope:Standard_NC6s_v3`).
    #[arg(long = "vm-size-unavailable", value_name = "LOCATION:SIZE", value_parser = parse_location_size)]
    pub vm_sizes_unavailable: Vec<(String, String)>,
    /// A VM family's dedicated-vCPU limit in a region, repeatable: LOCATION:FAMILY=LIMIT
    /// (e.g. `westeurope:standardNCASv3_T4Family=8`). Default 48 per family.
    #[arg(long = "family-quota", value_name = "LOCATION:FAMILY=LIMIT", value_parser = parse_family_quota)]
    pub family_quotas: Vec<(String, String, u64)>,
    /// A region's total dedicated-vCPU limit, repeatable: LOCATION=LIMIT. Default 100.
    #[arg(long = "total-cores-quota", value_name = "LOCATION=LIMIT", value_parser = parse_total_cores)]
    pub total_cores_quotas: Vec<(String, u64)>,
}

fn parse_location_size(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((location, size)) if !location.is_empty() && !size.is_empty() => {
            Ok((location.to_string(), size.to_string()))
        }
        _ => Err(format!("`{value}`: expected LOCATION:SIZE")),
    }
}

fn parse_family_quota(value: &str) -> Result<(String, String, u64), String> {
    let bad = || format!("`{value}`: expected LOCATION:FAMILY=LIMIT");
    let (location, rest) = value.split_once(':').ok_or_else(bad)?;
    let (family, limit) = rest.split_once('=').ok_or_else(bad)?;
    let limit = limit.parse().map_err(|_| bad())?;
    if location.is_empty() || family.is_empty() {
        return Err(bad());
    }
    Ok((location.to_string(), family.to_string(), limit))
}

fn parse_total_cores(value: &str) -> Result<(String, u64), String> {
    let bad = || format!("`{value}`: expected LOCATION=LIMIT");
    let (location, limit) = value.split_once('=').ok_or_else(bad)?;
    if location.is_empty() {
        return Err(bad());
    }
    Ok((location.to_string(), limit.parse().map_err(|_| bad())?))
}

impl EmulatorArgs {
    /// Resolves every flag into a configuration (no flag left unread). `files` is the
    /// folder for the CA certificate and admin key when no `--state` folder is given.
    pub fn config(&self, files: &Path) -> EmulatorConfig {
        let EmulatorArgs {
            bind,
            port,
            state,
            tls_cert,
            tls_key,
            tls_self_signed,
            plain_http,
            sim,
            lro_seconds,
            job_phase_seconds,
            job_running_seconds,
            retry_after,
            token_lifetime,
            faults,
            seed,
            tenant,
            subscriptions,
            client_id,
            client_secret,
            storage_suffix,
            page_size,
            azurite_endpoint,
            azurite_account,
            azurite_key,
            vm_sizes_unavailable,
            family_quotas,
            total_cores_quotas,
        } = self.clone();
        let mut capacity = Capacity::default();
        for (location, size) in &vm_sizes_unavailable {
            capacity.set_available(location, size, false);
        }
        for (location, family, limit) in &family_quotas {
            capacity.set_family_limit(location, family, *limit);
        }
        for (location, limit) in &total_cores_quotas {
            capacity.set_total_cores_limit(location, *limit);
        }
        let files = state.clone().unwrap_or_else(|| files.to_path_buf());
        let tls = match (tls_cert, tls_key, tls_self_signed) {
            (Some(cert), Some(key), _) => TlsConfig::Files { cert, key },
            (_, _, Some(path)) => TlsConfig::SelfSigned {
                write_ca_to: Some(path),
            },
            _ if plain_http => TlsConfig::None,
            _ => TlsConfig::SelfSigned {
                write_ca_to: Some(files.join("ca.pem")),
            },
        };
        let blob_backend = match (azurite_endpoint, azurite_key) {
            (Some(endpoint), Some(key)) => BlobBackend::Azurite {
                endpoint,
                account: azurite_account,
                key,
            },
            _ => BlobBackend::Local,
        };
        EmulatorConfig {
            bind: SocketAddr::new(bind, port),
            state_dir: state,
            tls,
            tenant_id: tenant,
            subscriptions,
            any_subscription: false,
            principals: vec![ServicePrincipal {
                client_id,
                client_secret: Some(client_secret),
                federated: Vec::new(),
                scopes: Vec::new(),
            }],
            token_lifetime: Duration::from_secs(token_lifetime),
            sim_mode: match sim {
                SimArg::Auto => SimMode::Auto,
                SimArg::Explicit => SimMode::Explicit,
            },
            timings: SimTimings {
                lro: Duration::from_secs(lro_seconds),
                job_phase: Duration::from_secs(job_phase_seconds),
                job_running: Duration::from_secs(job_running_seconds),
                retry_after_secs: retry_after,
            },
            faults,
            seed,
            storage_suffix,
            page_size,
            blob_backend,
            admin_key_file: Some(files.join("admin-key")),
            capacity,
            registries: Vec::new(),
        }
    }

    /// True when the CA and admin key need a temporary folder (no `--state`).
    fn needs_temporary_folder(&self) -> bool {
        self.state.is_none()
    }
}

/// A private temporary folder, removed when dropped.
struct TempFolder(PathBuf);

impl TempFolder {
    fn create() -> std::io::Result<TempFolder> {
        let path = std::env::temp_dir().join(format!(
            "amlspec-emulator-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path)?;
        Ok(TempFolder(path))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the emulator until interrupted. Ready line on stdout, errors on stderr.
pub fn run(args: &EmulatorArgs) -> ExitCode {
    // One line per request with RUST_LOG=amlspec::emulator=info (stderr). A subscriber
    // set up earlier by the CLI wins.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let temporary = if args.needs_temporary_folder() {
        match TempFolder::create() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!(
                    "error: failed to create a temporary folder for the emulator's CA and admin key in `{}`: {e}",
                    std::env::temp_dir().display()
                );
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let files = temporary.as_ref().map(|t| t.0.clone()).unwrap_or_default();
    let config = args.config(&files);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let emulator = match Emulator::start(config).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    eprintln!("  caused by: {s}");
                    source = s.source();
                }
                return ExitCode::FAILURE;
            }
        };
        println!("{}", emulator.ready_line());
        wait_for_signal().await;
        emulator.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
