//! Emulator settings: who may sign in, which subscriptions exist, where state lives, how
//! time moves, which faults to inject.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::faults::FaultRule;

/// Default tenant, subscription and service principal: stable, so that docs and scripts
/// can name them. Override them with [`EmulatorConfig`] fields or CLI flags.
pub const DEFAULT_TENANT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const DEFAULT_SUBSCRIPTION_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const DEFAULT_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-client-secret";
/// Storage endpoint suffix: accounts are `{account}.blob.core.localhost`. It must contain
/// `core.` because azure-storage-blob finds the account name by splitting on `.blob.core.`.
pub const DEFAULT_STORAGE_SUFFIX: &str = "core.localhost";
/// Port the CLI listens on when `--port` is not given.
pub const DEFAULT_CLI_PORT: u16 = 8443;

/// How simulated asynchronous work (LROs, job status) moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SimMode {
    /// Work completes when the emulator's clock passes each phase's deadline.
    #[default]
    Auto,
    /// Nothing moves until `Admin::step` (or `POST /admin/step`) says so.
    Explicit,
}

/// How long each simulated phase lasts in [`SimMode::Auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTimings {
    /// Long-running ARM operations (compute provisioning, deletes, workspace creation).
    pub lro: Duration,
    /// Each job status before Running (NotStarted, Queued, Preparing).
    pub job_phase: Duration,
    /// Running, before Completed.
    pub job_running: Duration,
    /// `Retry-After` seconds sent with 201/202 answers and polled operations.
    pub retry_after_secs: u64,
}

impl Default for SimTimings {
    fn default() -> Self {
        SimTimings {
            lro: Duration::from_secs(2),
            job_phase: Duration::from_secs(1),
            job_running: Duration::from_secs(3),
            retry_after_secs: 1,
        }
    }
}

/// A service principal the token endpoint knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePrincipal {
    pub client_id: String,
    /// Secret for the client-credentials grant; `None` refuses secrets for this client.
    pub client_secret: Option<String>,
    /// Federated credentials accepted as client assertions (workload identity).
    #[serde(default)]
    pub federated: Vec<FederatedCredential>,
    /// ARM scopes this principal may act on (id prefixes such as `/subscriptions/{id}` or
    /// `/subscriptions/{id}/resourceGroups/{rg}`). Empty: every known subscription.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A federated identity credential: an assertion with this issuer and subject is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
}

/// TLS for the listening port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsConfig {
    /// Plain HTTP.
    #[default]
    None,
    /// PEM files given by the user.
    Files { cert: PathBuf, key: PathBuf },
    /// A fresh CA and server certificate for 127.0.0.1, localhost,
    /// `*.blob.{storage suffix}`, `*.azurecr.io` and the hosts of
    /// [`EmulatorConfig::registries`]; the CA certificate is written to `write_ca_to` if set.
    SelfSigned { write_ca_to: Option<PathBuf> },
}

/// Where blob data for workspace datastores and pending uploads lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BlobBackend {
    /// The emulator's own blob service on the same port.
    #[default]
    Local,
    /// An external Azurite: datastores and SAS URLs point at it, containers are created
    /// there. `endpoint` is the account URL, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    Azurite {
        endpoint: String,
        account: String,
        key: String,
    },
}

/// Everything [`super::Emulator::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Loopback address to bind; port 0 picks a free port. Non-loopback is refused.
    pub bind: SocketAddr,
    /// Folder for durable state; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    pub tls: TlsConfig,
    pub tenant_id: String,
    pub subscriptions: Vec<String>,
    /// Every subscription id exists, not only `subscriptions` (the in-process emulator
    /// behind `--emulator`, started before the specs name theirs).
    pub any_subscription: bool,
    pub principals: Vec<ServicePrincipal>,
    pub token_lifetime: Duration,
    pub sim_mode: SimMode,
    pub timings: SimTimings,
    pub faults: Vec<FaultRule>,
    /// Seed for every random fault decision.
    pub seed: u64,
    pub storage_suffix: String,
    /// Items per page before a list answer carries `nextLink`.
    pub page_size: usize,
    pub blob_backend: BlobBackend,
    /// Where to write the admin key (owner-only) that `/admin/...` HTTP requests must send
    /// as `x-amlspec-admin-key`; `None` writes it nowhere (in-process users have
    /// [`super::Emulator::admin_key`] and the [`super::Admin`] handle).
    pub admin_key_file: Option<PathBuf>,
    /// VM sizes offered and quota limits per region (`locations/{location}/vmSizes`,
    /// `usages`, `quotas`); [`super::Admin`] changes them while running.
    pub capacity: super::capacity::Capacity,
    /// Container registries to serve from the start; more can be added through
    /// [`super::Admin::add_registry`]. Their hosts are also in the self-signed certificate.
    pub registries: Vec<super::registry::RegistrySeed>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_dir: None,
            tls: TlsConfig::None,
            tenant_id: DEFAULT_TENANT_ID.to_string(),
            subscriptions: vec![DEFAULT_SUBSCRIPTION_ID.to_string()],
            any_subscription: false,
            principals: vec![ServicePrincipal {
                client_id: DEFAULT_CLIENT_ID.to_string(),
                client_secret: Some(DEFAULT_CLIENT_SECRET.to_string()),
                federated: Vec::new(),
                scopes: Vec::new(),
            }],
            token_lifetime: Duration::from_secs(3600),
            sim_mode: SimMode::Auto,
            timings: SimTimings::default(),
            faults: Vec::new(),
            seed: 0,
            storage_suffix: DEFAULT_STORAGE_SUFFIX.to_string(),
            page_size: 100,
            blob_backend: BlobBackend::Local,
            admin_key_file: None,
            capacity: Default::default(),
            registries: Vec::new(),
        }
    }
}

impl EmulatorConfig {
    /// Whether subscription `id` exists here.
    pub fn knows_subscription(&self, id: &str) -> bool {
        self.any_subscription
            || self
                .subscriptions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(id))
    }
}
