//! Connect to Azure, or to the local emulator started in-process: endpoints,
//! credentials and the ARM client that plan and apply use.

use std::path::PathBuf;

use crate::azure::auth::{self, AuthMethod};
use crate::azure::client::{ArmClient, ClientSettings, RetryPolicy};
use crate::azure::endpoints::{Cloud, EndpointError, Endpoints, is_loopback};
use crate::azure::registry::RegistryClient;
use crate::azure::{Trust, http_client};
#[cfg(feature = "emulator")]
use crate::emulator::{Emulator, EmulatorConfig, EmulatorError, TlsConfig};
use crate::settings::{AzureTarget, ConnectionSettings, Target};
use crate::spec::interpolate::EnvVars;

pub struct Connection {
    pub client: ArmClient,
    /// The in-process emulator, when `--emulator` was given: [`Connection::close`] shuts
    /// it down.
    #[cfg(feature = "emulator")]
    emulator: Option<Emulator>,
}

impl Connection {
    /// Done with Azure: stop the in-process emulator, if there is one, cleanly (its
    /// state is saved).
    pub async fn close(self) {
        #[cfg(feature = "emulator")]
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("cannot read the CA certificate `{path}`: {source}")]
    CaCert {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up HTTPS: {0}")]
    Tls(#[from] reqwest::Error),
    #[cfg(feature = "emulator")]
    #[error("cannot start the local emulator: {0}")]
    Emulator(#[from] EmulatorError),
    #[error(
        "this amlspec was built without the local emulator (the `emulator` feature); \
         use a release binary or `cargo install` without `--no-default-features` for \
         `--emulator`, or run an emulator elsewhere and pass its `--arm-endpoint`"
    )]
    NoEmulator,
    #[error("cannot create `{path}`: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Connect as the settings say.
pub async fn connect(
    connection: &ConnectionSettings,
    env: &EnvVars,
) -> Result<Connection, ConnectError> {
    let defaults = ClientSettings::default();
    let settings = ClientSettings {
        max_parallel: connection.max_parallel,
        retry: RetryPolicy {
            max_attempts: connection.max_retries as usize + 1,
            ..defaults.retry.clone()
        },
        ..defaults
    };
    let args: &AzureTarget = match &connection.target {
        #[cfg(feature = "emulator")]
        Target::Emulator { state_dir } => return connect_emulator(state_dir, settings).await,
        #[cfg(not(feature = "emulator"))]
        Target::Emulator { .. } => return Err(ConnectError::NoEmulator),
        Target::Azure(target) => target,
    };
    let (endpoints, ca) = endpoints_and_ca(args)?;
    let trust = trust(&endpoints, ca.as_deref());
    let http = http_client(trust, &settings)?;
    let credential = auth::credential(
        args.auth.unwrap_or(AuthMethod::Auto),
        &endpoints,
        env,
        trust,
        &settings,
    )?;
    tracing::info!(method = credential.method.name(), arm = %endpoints.resource_manager, "connecting");
    Ok(Connection {
        client: ArmClient::new(http, endpoints, credential, settings),
        #[cfg(feature = "emulator")]
        emulator: None,
    })
}

/// The endpoints `args` name, and the CA certificate (PEM) they say to trust too.
fn endpoints_and_ca(args: &AzureTarget) -> Result<(Endpoints, Option<String>), ConnectError> {
    let endpoints = Endpoints::with_overrides(
        args.cloud.unwrap_or(Cloud::Public),
        args.arm_endpoint.as_deref(),
        args.authority_host.as_deref(),
        args.storage_suffix.as_deref(),
    )?;
    let ca = match &args.ca_cert {
        Some(path) => {
            Some(
                std::fs::read_to_string(path).map_err(|source| ConnectError::CaCert {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    Ok((endpoints, ca))
}

/// Endpoints all on loopback trust only the given CA: no public CA vouches for them.
fn trust<'a>(endpoints: &Endpoints, ca: Option<&'a str>) -> Trust<'a> {
    match ca {
        Some(pem) if endpoints.all_loopback() => Trust::Only(pem),
        Some(pem) => Trust::SystemAnd(pem),
        None => Trust::System,
    }
}

/// The client that asks container registries whether images can be pulled (preflight),
/// or `None` under `--emulator`, whose in-process emulator serves no registries.
///
/// When the ARM endpoint is on loopback (an emulator such as `amlspec emulator`), every
/// registry host is asked at the ARM endpoint's address instead of its own: the emulator
/// serves the registries it was given on its one port, and nothing leaves the machine.
/// Otherwise registries are asked where DNS says, trusting the system's roots and the
/// `--ca-cert` given.
pub fn registry_client(
    connection: &ConnectionSettings,
) -> Result<Option<RegistryClient>, ConnectError> {
    let Target::Azure(args) = &connection.target else {
        return Ok(None);
    };
    let settings = ClientSettings::default();
    let (endpoints, ca) = endpoints_and_ca(args)?;
    let arm = &endpoints.resource_manager;
    if !is_loopback(arm) {
        let trust = ca.as_deref().map_or(Trust::System, Trust::SystemAnd);
        return Ok(Some(RegistryClient::new(trust, &settings)?));
    }
    let port = arm.port_or_known_default().unwrap_or(443);
    let ip = match arm.host() {
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
        // `localhost` and `*.localhost`.
        _ => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let trust = trust(&endpoints, ca.as_deref());
    Ok(Some(RegistryClient::routed_to(
        trust,
        &settings,
        std::net::SocketAddr::new(ip, port),
    )?))
}

#[cfg(feature = "emulator")]
/// Start the emulator in-process over HTTPS (a fresh self-signed CA, trusted by this
/// client only) and sign in as its service principal through azure_identity, exactly
/// as against Azure. It knows every subscription: it starts before the specs name theirs.
pub async fn connect_emulator(
    state_dir: &std::path::Path,
    settings: ClientSettings,
) -> Result<Connection, ConnectError> {
    std::fs::create_dir_all(state_dir).map_err(|source| ConnectError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    ignore_in_git(state_dir).map_err(|source| ConnectError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let config = EmulatorConfig {
        state_dir: Some(state_dir.to_path_buf()),
        tls: TlsConfig::SelfSigned { write_ca_to: None },
        any_subscription: true,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    let client = client_for_emulator(&emulator, settings)?;
    tracing::info!(arm = %client.endpoints().resource_manager, state = %state_dir.display(), "started the local emulator");
    Ok(Connection {
        client,
        emulator: Some(emulator),
    })
}

#[cfg(feature = "emulator")]
/// `.amlspec/` holds what stands in for Azure (the emulator's signing key, stored
/// registry passwords): a `.gitignore` of `*` in the folder that holds the state folder
/// keeps `git add -A` from staging any of it. An existing `.gitignore` is left alone.
fn ignore_in_git(state_dir: &std::path::Path) -> std::io::Result<()> {
    let Some(parent) = state_dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let path = parent.join(".gitignore");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => std::io::Write::write_all(
            &mut file,
            b"# Written by amlspec: local emulator state, never to be committed.\n*\n",
        ),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(feature = "emulator")]
/// An ARM client for a running emulator, signed in as its seeded service principal.
pub fn client_for_emulator(
    emulator: &Emulator,
    settings: ClientSettings,
) -> Result<ArmClient, ConnectError> {
    let endpoints = Endpoints::with_overrides(
        Cloud::Public,
        Some(&emulator.arm_endpoint()),
        Some(&emulator.authority_host()),
        Some(&emulator.storage_suffix()),
    )?;
    let trust = emulator.ca_cert_pem().map_or(Trust::System, Trust::Only);
    let http = http_client(trust, &settings)?;
    let principal: EnvVars = [
        ("AZURE_TENANT_ID", emulator.tenant_id()),
        ("AZURE_CLIENT_ID", emulator.client_id()),
        ("AZURE_CLIENT_SECRET", emulator.client_secret()),
    ]
    .into_iter()
    .collect();
    let credential = auth::credential(
        AuthMethod::ServicePrincipal,
        &endpoints,
        &principal,
        trust,
        &settings,
    )?;
    Ok(ArmClient::new(http, endpoints, credential, settings))
}

/// What a build without the emulator does with `--emulator`.
#[cfg(all(test, not(feature = "emulator")))]
mod slim_tests {
    use super::*;
    use crate::settings::ConnectionSettings;

    #[tokio::test]
    async fn without_the_emulator_feature_emulator_is_refused_saying_why() {
        let settings = ConnectionSettings {
            target: Target::Emulator {
                state_dir: PathBuf::from("never-created"),
            },
            max_parallel: 1,
            max_retries: 0,
        };
        let Err(error) = connect(&settings, &EnvVars::default()).await else {
            panic!("a slim build connected to an emulator");
        };
        let message = error.to_string();
        assert!(message.contains("`emulator` feature"), "{message}");
        assert!(message.contains("--arm-endpoint"), "{message}");
        assert!(!std::path::Path::new("never-created").exists());
    }
}
