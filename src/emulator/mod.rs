//! Local Azure: an emulator of the Entra ID token endpoint, Azure Resource Manager (resource
//! groups, storage accounts, key vaults, Application Insights, Azure ML workspaces and their
//! computes, connections, datastores, codes, environments and jobs) and the Blob service,
//! held to Azure's contract (the vendored OpenAPI in `tests/fixtures/azure-rest-specs`).
//! Input: an [`EmulatorConfig`]; output: a loopback HTTP(S) server and an [`Emulator`]
//! handle. It imports nothing from the client side of the crate.
//!
//! One port serves everything: ARM (`/subscriptions/...`, regional VM sizes and quotas
//! among it), tokens (`/{tenant}/oauth2/v2.0/token`), discovery documents, cloud metadata
//! (`/metadata/endpoints`), admin (`/admin/...`), blob (Host `{account}.blob.{storage
//! suffix}`, or path-style `/{account}/{container}/...`) and container registries (Host
//! `{registry host}`, `/v2/...` and `/oauth2/token`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), amlspec::emulator::EmulatorError> {
//! use amlspec::emulator::{Emulator, EmulatorConfig, SimMode};
//!
//! let emu = Emulator::start(EmulatorConfig {
//!     sim_mode: SimMode::Explicit,
//!     ..EmulatorConfig::default()
//! })
//! .await?;
//! let arm = emu.arm_endpoint();            // "http://127.0.0.1:PORT"
//! let token_url = emu.token_url();         // ".../{tenant}/oauth2/v2.0/token"
//! let (id, secret) = (emu.client_id().to_string(), emu.client_secret().to_string());
//! // ... PUT a compute, then move its provisioning forward:
//! emu.admin().step("/subscriptions/.../computes/gpu-cluster").ok();
//! emu.shutdown().await;
//! # let _ = (arm, token_url, id, secret);
//! # Ok(()) }
//! ```
//!
//! Time: long-running operations and jobs move on a virtual clock in [`SimMode::Auto`]
//! (wall clock plus [`Admin::advance_clock`]) or only by [`Admin::step`] in
//! [`SimMode::Explicit`]; tests never need to sleep.

mod admin;
mod arm;
mod auth;
mod azurite;
mod blob;
mod capacity;
pub mod cli;
mod config;
mod faults;
mod model;
pub mod openapi;
mod registry;
mod reply;
mod runs;
mod server;
mod store;
mod tls;
mod util;
mod world;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use admin::{ADMIN_KEY_HEADER, Admin, AdminError};
pub use capacity::{Capacity, RegionOverrides, VmSize, normalize_location};
pub use config::{
    BlobBackend, DEFAULT_CLI_PORT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    DEFAULT_STORAGE_SUFFIX, DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID, EmulatorConfig,
    FederatedCredential, ServicePrincipal, SimMode, SimTimings, TlsConfig,
};
pub use faults::{Fault, FaultRule, FaultTarget};
pub use registry::{OCI_MANIFEST, RegistryInfo, RegistrySeed, RegistryUser, RepositorySeed};

use faults::FaultState;
pub use store::StoreError;
pub use world::Traffic;
use world::{Shared, World};

/// HTTP/2 streams one client connection may have open at once: a plan reads a whole
/// manifest at once, so this is well above a client's parallelism.
const MAX_CONCURRENT_STREAMS: u32 = 8192;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("refusing to listen on {addr}: the emulator only binds loopback addresses")]
    NotLoopback { addr: SocketAddr },
    #[error("failed to listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("failed to read TLS file `{path}`")]
    ReadTls {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the CA certificate to `{path}`")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup failed: {message}")]
    Tls { message: String },
    #[error("invalid registry in the configuration: {message}")]
    Registry { message: String },
    #[error("the configuration names no service principal")]
    NoPrincipal,
    #[error("failed to write the admin key to `{path}`")]
    WriteAdminKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running emulator. Dropping it stops accepting connections; [`Emulator::shutdown`]
/// also waits for the server task to end.
pub struct Emulator {
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Emulator {
    /// Loads state, binds the loopback port and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        if !config.bind.ip().is_loopback() {
            return Err(EmulatorError::NotLoopback { addr: config.bind });
        }
        if config.principals.is_empty() {
            return Err(EmulatorError::NoPrincipal);
        }
        let store = match &config.state_dir {
            Some(dir) => store::Store::open(dir)?,
            None => store::Store::in_memory(),
        };
        let mut world = World::new(store)?;
        world.capacity = config.capacity.clone();
        for seed in &config.registries {
            world
                .registries
                .seed(seed.clone())
                .map_err(|e| EmulatorError::Registry {
                    message: e.to_string(),
                })?;
        }
        world::make_durable(world.durability_point())?;
        std::thread::spawn(openapi::prewarm);
        let listener = TcpListener::bind(config.bind).map_err(|source| EmulatorError::Bind {
            addr: config.bind,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| EmulatorError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.bind,
                source,
            })?;
        let material = match &config.tls {
            TlsConfig::None => None,
            TlsConfig::Files { cert, key } => Some(tls::from_files(cert, key)?),
            TlsConfig::SelfSigned { write_ca_to } => {
                let registry_hosts: Vec<String> =
                    config.registries.iter().map(|r| r.host.clone()).collect();
                let m = tls::self_signed(&config.storage_suffix, &registry_hosts)?;
                if let (Some(path), Some(pem)) = (write_ca_to, &m.ca_pem) {
                    store::write_private(path, pem.as_bytes()).map_err(|source| {
                        EmulatorError::WriteCa {
                            path: path.clone(),
                            source,
                        }
                    })?;
                }
                Some(m)
            }
        };
        let scheme = if material.is_some() { "https" } else { "http" };
        // A fresh key per start: a key file left over from an earlier run opens nothing.
        let admin_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Some(path) = &config.admin_key_file {
            store::write_private(path, format!("{admin_key}\n").as_bytes()).map_err(|source| {
                EmulatorError::WriteAdminKey {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        let faults = FaultState::new(config.faults.clone(), config.seed);
        let shared = Arc::new(Shared {
            admin_key,
            base_url: format!("{scheme}://{addr}"),
            scheme,
            port: addr.port(),
            world: Mutex::new(world),
            faults: Mutex::new(faults),
            config,
            traffic: Mutex::new(world::Traffic::default()),
        });
        let app = server::router(shared.clone());
        let handle = axum_server::Handle::new();
        let ca_pem = material.as_ref().and_then(|m| m.ca_pem.clone());
        let task = match material {
            None => {
                // TCP_NODELAY: without it a response's headers and body frames wait on
                // the client's delayed ACK (40 ms on Linux) for every small answer.
                let mut server = axum_server::from_tcp(listener)
                    .map_err(|source| EmulatorError::Bind { addr, source })?
                    .acceptor(axum_server::accept::NoDelayAcceptor::new())
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http2()
                    .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
                tokio::spawn(async move { server.serve(app.into_make_service()).await })
            }
            Some(m) => {
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                let rustls_config = axum_server::tls_rustls::RustlsConfig::from_pem(
                    m.cert_chain_pem.into_bytes(),
                    m.key_pem.into_bytes(),
                )
                .await
                .map_err(|e| EmulatorError::Tls {
                    message: e.to_string(),
                })?;
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls_config)
                    .acceptor(axum_server::accept::NoDelayAcceptor::new());
                let mut server = axum_server::from_tcp(listener)
                    .map_err(|source| EmulatorError::Bind { addr, source })?
                    .acceptor(acceptor)
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http2()
                    .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
                tokio::spawn(async move { server.serve(app.into_make_service()).await })
            }
        };
        Ok(Emulator {
            shared,
            handle,
            addr,
            ca_pem,
            task,
        })
    }

    /// The bound socket address (loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://127.0.0.1:PORT`, no trailing slash: ARM, admin and path-style blob base.
    pub fn endpoint(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Azure Resource Manager base URL (same as [`Emulator::endpoint`]).
    pub fn arm_endpoint(&self) -> String {
        self.endpoint()
    }

    /// The Entra ID authority host (same port).
    pub fn authority_host(&self) -> String {
        self.endpoint()
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.endpoint(), self.tenant_id())
    }

    /// `{endpoint}/metadata/endpoints?api-version=2022-09-01`.
    pub fn metadata_url(&self) -> String {
        format!(
            "{}/metadata/endpoints?api-version=2022-09-01",
            self.endpoint()
        )
    }

    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// The first configured subscription.
    pub fn subscription_id(&self) -> &str {
        self.shared
            .config
            .subscriptions
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Client id of the first (seeded) service principal.
    pub fn client_id(&self) -> &str {
        &self.shared.config.principals[0].client_id
    }

    /// Client secret of the first (seeded) service principal.
    pub fn client_secret(&self) -> &str {
        self.shared.config.principals[0]
            .client_secret
            .as_deref()
            .unwrap_or_default()
    }

    /// Storage suffix including the port, e.g. `core.localhost:8443`: an account's blob
    /// endpoint is `{scheme}://{account}.blob.{suffix}`. Resolve such names to
    /// [`Emulator::addr`] (reqwest: `ClientBuilder::resolve`).
    pub fn storage_suffix(&self) -> String {
        format!("{}:{}", self.shared.config.storage_suffix, self.addr.port())
    }

    /// Virtual-host blob endpoint of an account, with a trailing slash.
    pub fn blob_endpoint(&self, account: &str) -> String {
        format!(
            "{}://{account}.blob.{}/",
            self.shared.scheme,
            self.storage_suffix()
        )
    }

    /// Path-style blob endpoint of an account (no DNS needed), no trailing slash.
    pub fn blob_endpoint_path_style(&self, account: &str) -> String {
        format!("{}/{account}", self.endpoint())
    }

    /// A reqwest client builder ready for this emulator: trusts its CA (self-signed TLS),
    /// bypasses proxies, and resolves `localhost`, `127.0.0.1`, every
    /// `{account}.blob.{storage suffix}` name and every registry host the emulator serves
    /// (at the time of the lookup) to the emulator's address; any other name fails to
    /// resolve, so nothing leaves the machine.
    pub fn reqwest_client_builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(LoopbackResolver {
                addr: self.addr,
                suffix: format!(".{}", self.shared.config.storage_suffix),
                shared: self.shared.clone(),
            }));
        if let Some(pem) = &self.ca_pem
            && let Ok(cert) = reqwest::Certificate::from_pem(pem.as_bytes())
        {
            builder = builder.tls_certs_merge([cert]);
        }
        builder
    }

    /// PEM of the CA to trust when TLS is self-signed.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The key `/admin/...` HTTP requests must send in the `x-amlspec-admin-key` header
    /// (the [`Admin`] handle needs none).
    pub fn admin_key(&self) -> &str {
        &self.shared.admin_key
    }

    /// Base URL of a container registry served here: `{scheme}://{host}:{port}`, no
    /// trailing slash. Connect to [`Emulator::addr`] and send this host name (TLS: as
    /// SNI too; the self-signed certificate names `*.azurecr.io` and the hosts of
    /// [`EmulatorConfig::registries`]); [`Emulator::reqwest_client_builder`] does both.
    pub fn registry_endpoint(&self, host: &str) -> String {
        format!(
            "{}://{}:{}",
            self.shared.scheme,
            registry::host_key(host),
            self.addr.port()
        )
    }

    /// Whether a registry is served under `host` (any case, with or without port).
    pub fn serves_registry(&self, host: &str) -> bool {
        self.shared
            .world
            .lock()
            .is_ok_and(|w| w.registries.knows(host))
    }

    /// Controls: faults, stepping, clock, job failure, token expiry, capacity, registries.
    pub fn admin(&self) -> Admin {
        Admin {
            shared: self.shared.clone(),
        }
    }

    /// The line printed when the emulator is ready. It names the files a client needs: the
    /// CA to trust (`ca=`, self-signed TLS) and the admin key (`admin_key_file=`), never
    /// the key itself.
    pub fn ready_line(&self) -> String {
        let config = &self.shared.config;
        let mut files = String::new();
        if let TlsConfig::SelfSigned {
            write_ca_to: Some(path),
        } = &config.tls
        {
            files.push_str(&format!(" ca={}", path.display()));
        }
        if let Some(path) = &config.admin_key_file {
            files.push_str(&format!(" admin_key_file={}", path.display()));
        }
        format!(
            "amlspec emulator ready: arm={} authority={} tenant={} subscription={} client_id={} blob={}://{{account}}.blob.{} metadata={} state={}{files}",
            self.arm_endpoint(),
            self.authority_host(),
            self.tenant_id(),
            self.subscription_id(),
            self.client_id(),
            self.shared.scheme,
            self.storage_suffix(),
            self.metadata_url(),
            self.shared
                .config
                .state_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "memory".to_string()),
        )
    }

    /// Stops accepting connections, waits for the server task to end and lets go of the
    /// state folder (another emulator may use it from then on).
    pub async fn shutdown(mut self) {
        self.handle.shutdown();
        let _ = (&mut self.task).await;
        self.close_store();
    }

    fn close_store(&self) {
        let mut world = self.shared.world.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = world.store.close() {
            tracing::warn!(target: "amlspec::emulator", "{e}");
        }
    }
}

/// Resolves the emulator's host names to its loopback address and refuses all others.
struct LoopbackResolver {
    addr: SocketAddr,
    suffix: String,
    shared: Arc<Shared>,
}

impl reqwest::dns::Resolve for LoopbackResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let ours = host == "localhost"
            || host == "127.0.0.1"
            || host.ends_with(&self.suffix)
            || self
                .shared
                .world
                .lock()
                .is_ok_and(|w| w.registries.knows(&host));
        let addr = self.addr;
        Box::pin(async move {
            if ours {
                let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
                Ok(addrs)
            } else {
                Err(
                    format!("the emulator's resolver only knows its own names, not `{host}`")
                        .into(),
                )
            }
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.handle.shutdown();
        self.close_store();
    }
}
