//! Connect to Azure, or to the local emulator started in-process: endpoints,
//! credentials, the ARM client that plan and apply use and the registry client of
//! preflight. Connecting sends nothing; signing in is the first request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::azure::auth::{self, AuthMethod};
use crate::azure::client::{ArmClient, ClientSettings, RetryPolicy};
use crate::azure::endpoints::{Cloud, EndpointError, Endpoints, is_loopback};
use crate::azure::registry::RegistryClient;
#[cfg(feature = "emulator")]
use crate::azure::registry::{ImageRef, Reference};
use crate::azure::{Trust, http_client};
#[cfg(feature = "emulator")]
use crate::emulator::{
    Emulator, EmulatorConfig, EmulatorError, RegistrySeed, RegistryUser, RepositorySeed, TlsConfig,
};
use crate::observe::images::{Ask, ImageProbes};
use crate::settings::{AzureTarget, ConnectionSettings, Target};
use crate::spec::interpolate::EnvVars;
#[cfg(feature = "emulator")]
use crate::spec::model::EnvironmentBuild;
use crate::spec::model::WorkspaceSpec;

/// Clients for Azure (or the emulator), made without sending anything: signing in is
/// the first request.
pub struct Connection {
    /// Shared, so that signing in can start in a task of its own.
    pub client: Arc<ArmClient>,
    /// Asks container registries whether images can be pulled (preflight).
    pub registry: RegistryClient,
    /// The in-process emulator, when `--emulator` was given: [`Connection::close`] shuts
    /// it down.
    #[cfg(feature = "emulator")]
    emulator: Option<Emulator>,
}

impl Connection {
    /// Start asking the registries whether the images of `specs` can be pulled.
    ///
    /// Under `--emulator`, the in-process emulator stands in for the registries the
    /// manifest declares, as it stands in for Azure: each declared registry host is
    /// served there, with the declared username and password, holding the images the
    /// manifest names on it; images on other hosts are not asked (nothing leaves the
    /// machine). So the check runs as against Azure Container Registry, but what it
    /// finds is the stand-in's, not your registry's.
    pub fn image_probes(&self, specs: &[WorkspaceSpec]) -> ImageProbes {
        #[cfg(feature = "emulator")]
        if let Some(emulator) = &self.emulator {
            for seed in stand_in_registries(specs) {
                if let Err(error) = emulator.admin().add_registry(seed) {
                    tracing::debug!(%error, "the emulator could not stand in for a registry");
                }
            }
            return ImageProbes::start(&self.registry, specs, Ask::DeclaredRegistries);
        }
        ImageProbes::start(&self.registry, specs, Ask::Every)
    }

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
    let registry = registry_client(&endpoints, ca.as_deref(), &settings)?;
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
        client: Arc::new(ArmClient::new(http, endpoints, credential, settings)),
        registry,
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

/// The client that asks container registries whether images can be pulled (preflight).
///
/// When the ARM endpoint is on loopback (an emulator such as `amlspec emulator`), every
/// registry host is asked at the ARM endpoint's address instead of its own: the emulator
/// serves the registries it was given on its one port, and nothing leaves the machine.
/// Otherwise registries are asked where DNS says, trusting the system's roots and the
/// `--ca-cert` given.
fn registry_client(
    endpoints: &Endpoints,
    ca: Option<&str>,
    settings: &ClientSettings,
) -> Result<RegistryClient, ConnectError> {
    let arm = &endpoints.resource_manager;
    if !is_loopback(arm) {
        let trust = ca.map_or(Trust::System, Trust::SystemAnd);
        return Ok(RegistryClient::new(trust, settings)?);
    }
    let port = arm.port_or_known_default().unwrap_or(443);
    let ip = match arm.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        // `localhost` and `*.localhost`.
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    Ok(RegistryClient::routed_to(
        trust(endpoints, ca),
        settings,
        SocketAddr::new(ip, port),
    )?)
}

#[cfg(feature = "emulator")]
/// The registries the in-process emulator serves in place of those `specs` declare: one
/// per declared host, with each declared username and password, holding every tag the
/// manifest's images name on that host (an image named by digest cannot be stood in for).
fn stand_in_registries(specs: &[WorkspaceSpec]) -> Vec<RegistrySeed> {
    let mut seeds: Vec<RegistrySeed> = Vec::new();
    for ws in specs {
        for registry in &ws.registries {
            let index = match seeds.iter().position(|s| s.host == registry.address) {
                Some(index) => index,
                None => {
                    seeds.push(RegistrySeed {
                        host: registry.address.clone(),
                        ..RegistrySeed::default()
                    });
                    seeds.len() - 1
                }
            };
            let seed = &mut seeds[index];
            seed.users.retain(|u| u.username != registry.username);
            seed.users.push(RegistryUser {
                username: registry.username.clone(),
                password: registry.password.expose().to_string(),
                repositories: None,
            });
        }
        for env in &ws.environments {
            let EnvironmentBuild::Image { image, .. } = &env.build else {
                continue;
            };
            let Ok(image) = ImageRef::parse(image) else {
                continue;
            };
            let (Some(seed), Reference::Tag(tag)) = (
                seeds.iter_mut().find(|s| s.host == image.registry),
                &image.reference,
            ) else {
                continue;
            };
            match seed
                .repositories
                .iter_mut()
                .find(|r| r.name == image.repository)
            {
                Some(repository) if repository.tags.contains(tag) => {}
                Some(repository) => repository.tags.push(tag.clone()),
                None => seed.repositories.push(RepositorySeed {
                    name: image.repository.clone(),
                    tags: vec![tag.clone()],
                }),
            }
        }
    }
    seeds
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
    let registry = RegistryClient::routed_to(
        emulator.ca_cert_pem().map_or(Trust::System, Trust::Only),
        &settings,
        emulator.addr(),
    )?;
    let client = client_for_emulator(&emulator, settings)?;
    tracing::info!(arm = %client.endpoints().resource_manager, state = %state_dir.display(), "started the local emulator");
    Ok(Connection {
        client: Arc::new(client),
        registry,
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

#[cfg(all(test, feature = "emulator"))]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_registries_hold_the_declared_users_and_every_tag_named() {
        let workspace = |name: &str, username: &str, password: &str, environments: &str| {
            format!(
                "workspace:\n  name: {name}\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nregistries:\n  - name: acr\n    address: team.azurecr.io\n    username: {username}\n    password: ${{{password}}}\nenvironments:\n{environments}"
            )
        };
        let text = format!(
            "{}---\n{}",
            workspace(
                "ws1",
                "puller",
                "P",
                "  - name: a\n    image: team/app:1\n    registry: acr\n  - name: b\n    image: team.azurecr.io/team/app:2\n  - name: c\n    image: team/app:1\n    registry: acr\n  - name: pinned\n    image: team/app@sha256:0000000000000000000000000000000000000000000000000000000000000000\n    registry: acr\n  - name: public\n    image: ubuntu:22.04\n"
            ),
            workspace(
                "ws2",
                "other",
                "Q",
                "  - name: d\n    image: base:latest\n    registry: acr\n"
            )
        );
        let specs = crate::plan::testing::specs_with_passwords(&text);
        let seeds = stand_in_registries(&specs.workspaces);
        // One registry (the public image's host is not stood in for).
        assert_eq!(seeds.len(), 1, "{seeds:?}");
        let seed = &seeds[0];
        assert_eq!(seed.host, "team.azurecr.io");
        let users: Vec<(&str, &str)> = seed
            .users
            .iter()
            .map(|u| (u.username.as_str(), u.password.as_str()))
            .collect();
        assert_eq!(
            users,
            [
                ("puller", "a-long-enough-password-value"),
                ("other", "another-password-value")
            ]
        );
        // Each tag once; an image by digest cannot be stood in for.
        assert_eq!(
            seed.repositories,
            [
                RepositorySeed {
                    name: "team/app".into(),
                    tags: vec!["1".into(), "2".into()],
                },
                RepositorySeed {
                    name: "base".into(),
                    tags: vec!["latest".into()],
                },
            ]
        );
    }
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
