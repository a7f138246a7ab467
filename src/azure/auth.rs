//! Credentials, through azure_identity. In `auto` mode the first configured method
//! wins, in this order: a service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID,
//! AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE, what GitHub
//! Actions OIDC and AKS give), managed identity (when the host announces one through
//! IDENTITY_ENDPOINT; on a plain Azure VM, force it with `--auth managed-identity`), then
//! the Azure CLI's login. When none is configured, one error lists what was tried.
//!
//! azure_identity caches tokens and refreshes them before they expire.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::azure::endpoints::Endpoints;
use crate::spec::interpolate::EnvVars;

/// How to authenticate (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// The first configured method, in the order service-principal, workload-identity,
    /// managed-identity, azure-cli.
    Auto,
    /// AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET.
    ServicePrincipal,
    /// AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE.
    WorkloadIdentity,
    /// The host's managed identity (AZURE_CLIENT_ID selects a user-assigned one).
    ManagedIdentity,
    /// The account `az login` signed in.
    AzureCli,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::ServicePrincipal => "service principal",
            AuthMethod::WorkloadIdentity => "workload identity",
            AuthMethod::ManagedIdentity => "managed identity",
            AuthMethod::AzureCli => "Azure CLI",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no Azure credentials found; tried:\n{tried}")]
    NothingConfigured { tried: String },
    #[error("{method} is not configured: {missing}")]
    NotConfigured {
        method: &'static str,
        missing: String,
    },
    #[error("cannot set up {method} credentials: {message}")]
    Setup {
        method: &'static str,
        message: String,
    },
    #[error("{method} could not get a token for {scope}: {message}")]
    Token {
        method: &'static str,
        scope: String,
        message: String,
    },
}

/// A credential and the method it came from (for messages).
#[derive(Clone, Debug)]
pub struct Credential {
    pub method: AuthMethod,
    inner: Arc<dyn TokenCredential>,
}

impl Credential {
    /// A bearer token for `scope` and when it expires, from azure_identity's cache when
    /// still fresh.
    pub async fn token(&self, scope: &str) -> Result<(String, time::OffsetDateTime), AuthError> {
        let token = self
            .inner
            .get_token(&[scope], None)
            .await
            .map_err(|error| AuthError::Token {
                method: self.method.name(),
                scope: scope.to_string(),
                message: first_line(&error.to_string()),
            })?;
        Ok((token.token.secret().to_string(), token.expires_on))
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_string()
}

/// Build the credential for `method`. `transport`, when given, is the HTTP client the
/// credential uses (one that trusts the local emulator's certificate).
pub fn credential(
    method: AuthMethod,
    endpoints: &Endpoints,
    env: &EnvVars,
    transport: Option<reqwest::Client>,
) -> Result<Credential, AuthError> {
    let options = || client_options(endpoints, transport.clone());
    let chosen = match method {
        AuthMethod::Auto => detect(env)?,
        forced => forced,
    };
    let setup = |error: azure_core::Error| AuthError::Setup {
        method: chosen.name(),
        message: first_line(&error.to_string()),
    };
    let inner: Arc<dyn TokenCredential> = match chosen {
        AuthMethod::ServicePrincipal => {
            let [tenant, client, secret] = required(
                env,
                chosen,
                &["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"],
            )?;
            let options = ClientSecretCredentialOptions {
                client_options: options(),
            };
            ClientSecretCredential::new(&tenant, client, Secret::new(secret), Some(options))
                .map_err(setup)?
        }
        AuthMethod::WorkloadIdentity => {
            let [tenant, client, file] = required(
                env,
                chosen,
                &[
                    "AZURE_TENANT_ID",
                    "AZURE_CLIENT_ID",
                    "AZURE_FEDERATED_TOKEN_FILE",
                ],
            )?;
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options(),
                },
                client_id: Some(client),
                tenant_id: Some(tenant),
                token_file_path: Some(file.into()),
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(setup)?
        }
        AuthMethod::ManagedIdentity => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: env
                    .get("AZURE_CLIENT_ID")
                    .map(|id| UserAssignedId::ClientId(id.to_string())),
                client_options: options(),
            };
            ManagedIdentityCredential::new(Some(options)).map_err(setup)?
        }
        AuthMethod::AzureCli => AzureCliCredential::new(None).map_err(setup)?,
        AuthMethod::Auto => unreachable!("detect picks a concrete method"),
    };
    Ok(Credential {
        method: chosen,
        inner,
    })
}

fn client_options(endpoints: &Endpoints, transport: Option<reqwest::Client>) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = endpoints
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_string();
    ClientOptions {
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        transport: transport.map(|client| Transport::new(Arc::new(client))),
        ..Default::default()
    }
}

fn required<const N: usize>(
    env: &EnvVars,
    method: AuthMethod,
    names: &[&str; N],
) -> Result<[String; N], AuthError> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| env.get(name).is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        return Err(AuthError::NotConfigured {
            method: method.name(),
            missing: format!("{} not set", missing.join(", ")),
        });
    }
    Ok(names.map(|name| env.get(name).unwrap_or_default().to_string()))
}

/// The first configured method, or one error that lists what was tried.
fn detect(env: &EnvVars) -> Result<AuthMethod, AuthError> {
    let set = |name: &str| env.get(name).is_some_and(|v| !v.is_empty());
    if set("AZURE_CLIENT_SECRET") && set("AZURE_CLIENT_ID") && set("AZURE_TENANT_ID") {
        return Ok(AuthMethod::ServicePrincipal);
    }
    if set("AZURE_FEDERATED_TOKEN_FILE") && set("AZURE_CLIENT_ID") && set("AZURE_TENANT_ID") {
        return Ok(AuthMethod::WorkloadIdentity);
    }
    if set("IDENTITY_ENDPOINT") || set("MSI_ENDPOINT") {
        return Ok(AuthMethod::ManagedIdentity);
    }
    if az_on_path(env) {
        return Ok(AuthMethod::AzureCli);
    }
    let missing = |names: &[&str]| {
        names
            .iter()
            .copied()
            .filter(|n| !set(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tried = [
        format!(
            "  - service principal: {} not set",
            missing(&["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"])
        ),
        format!(
            "  - workload identity (GitHub Actions OIDC, AKS): {} not set",
            missing(&["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"])
        ),
        "  - managed identity: none announced (IDENTITY_ENDPOINT not set); on an Azure VM use `--auth managed-identity`"
            .to_string(),
        "  - Azure CLI: `az` is not on PATH; install it and run `az login`".to_string(),
        "to try amlspec without Azure, add `--emulator`".to_string(),
    ];
    Err(AuthError::NothingConfigured {
        tried: tried.join("\n"),
    })
}

fn az_on_path(env: &EnvVars) -> bool {
    let Some(path) = env.get("PATH") else {
        return false;
    };
    std::env::split_paths(path).any(|dir| dir.join("az").is_file() || dir.join("az.cmd").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::endpoints::Cloud;

    fn env(pairs: &[(&str, &str)]) -> EnvVars {
        pairs.iter().copied().collect()
    }

    #[test]
    fn auto_picks_the_first_configured_method() {
        let sp = env(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
        ]);
        assert_eq!(detect(&sp).unwrap(), AuthMethod::ServicePrincipal);
        let wi = env(&[
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
        ]);
        assert_eq!(detect(&wi).unwrap(), AuthMethod::WorkloadIdentity);
        assert_eq!(
            detect(&env(&[("IDENTITY_ENDPOINT", "http://x")])).unwrap(),
            AuthMethod::ManagedIdentity
        );
    }

    #[test]
    fn nothing_configured_lists_what_was_tried() {
        let error = detect(&env(&[("AZURE_CLIENT_ID", "c")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("service principal: AZURE_TENANT_ID, AZURE_CLIENT_SECRET not set"),
            "{error}"
        );
        assert!(error.contains("workload identity"), "{error}");
        assert!(error.contains("managed identity"), "{error}");
        assert!(error.contains("Azure CLI"), "{error}");
        assert!(error.contains("--emulator"), "{error}");
    }

    #[test]
    fn forcing_a_method_names_what_is_missing() {
        let endpoints = Endpoints::for_cloud(Cloud::Public);
        let error =
            credential(AuthMethod::ServicePrincipal, &endpoints, &env(&[]), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "service principal is not configured: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set"
        );
    }
}
