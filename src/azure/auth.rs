//! Credentials, through azure_identity. In `auto` mode the first configured method
//! wins, in this order: a service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID,
//! AZURE_CLIENT_SECRET), workload identity (AZURE_FEDERATED_TOKEN_FILE, what AKS gives),
//! GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, set in a job with
//! `permissions: id-token: write`: GitHub's ID token is the client assertion), managed
//! identity (when the host announces one through IDENTITY_ENDPOINT; on a plain Azure VM,
//! force it with `--auth managed-identity`), then the Azure CLI's login. When none is
//! configured, one error lists what was tried.
//!
//! azure_identity caches tokens and refreshes them before they expire; it does not
//! retry (its pipeline's retries are off): the ARM client retries token requests with the
//! same policy as every other request. Each token request is bounded: an HTTP request by
//! the transport's timeouts, and every method (the `az` run included) by a timeout
//! around `get_token`. A failure names the endpoint asked, its HTTP status, error code
//! and description; never a secret.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::headers::HeaderName;
use azure_core::http::{ClientOptions, RawResponse, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    Executor, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::azure::Trust;
use crate::azure::client::ClientSettings;
use crate::azure::endpoints::Endpoints;
use crate::env::EnvVars;

/// How to authenticate (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    /// The first configured method, in the order service-principal, workload-identity,
    /// github-oidc, managed-identity, azure-cli.
    Auto,
    /// AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET.
    ServicePrincipal,
    /// AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE.
    WorkloadIdentity,
    /// AZURE_CLIENT_ID, AZURE_TENANT_ID, and GitHub's ACTIONS_ID_TOKEN_REQUEST_URL and
    /// ACTIONS_ID_TOKEN_REQUEST_TOKEN: a federated credential, no stored secret.
    GithubOidc,
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
            AuthMethod::GithubOidc => "GitHub Actions OIDC",
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
    #[error(
        "{method} could not get a token for {scope} from {endpoint}: {message}{}",
        crate::azure::client::after_tries(*attempts)
    )]
    Token {
        method: &'static str,
        scope: String,
        /// Where the token was asked for: a URL, or the command run.
        endpoint: String,
        /// What the endpoint answered: HTTP status, error code, description, request id.
        message: String,
        /// HTTP status of the answer, when there was one.
        status: Option<u16>,
        /// Worth another try (429, 5xx, a lost connection).
        transient: bool,
        retry_after: Option<Duration>,
        attempts: usize,
    },
    #[error("{method}: timed out after {} waiting for a token from {endpoint}", seconds(*timeout))]
    TimedOut {
        method: &'static str,
        endpoint: String,
        timeout: Duration,
    },
}

impl AuthError {
    /// The same failure, after `attempts` tries.
    pub fn after(mut self, tries: usize) -> Self {
        if let AuthError::Token { attempts, .. } = &mut self {
            *attempts = tries;
        }
        self
    }
}

/// `30 s`, `1.5 s`, `200 ms`.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

type Make = dyn Fn() -> Result<Arc<dyn TokenCredential>, AuthError> + Send + Sync;

/// A credential and the method it came from (for messages).
#[derive(Clone)]
pub struct Credential {
    pub method: AuthMethod,
    /// Where tokens come from, for messages: the token URL or the command.
    pub endpoint: String,
    /// Builds a fresh credential (with an empty token cache).
    make: Arc<Make>,
    inner: Arc<Mutex<Arc<dyn TokenCredential>>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("method", &self.method)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// A bearer token for `scope` and when it expires, from azure_identity's cache when
    /// still fresh; given up after `timeout`.
    pub async fn token(
        &self,
        scope: &str,
        timeout: Duration,
    ) -> Result<(String, time::OffsetDateTime), AuthError> {
        let inner = self
            .inner
            .lock()
            .expect("the credential lock is never poisoned")
            .clone();
        let timed_out = || AuthError::TimedOut {
            method: self.method.name(),
            endpoint: self.endpoint.clone(),
            timeout,
        };
        let token = match tokio::time::timeout(timeout, inner.get_token(&[scope], None)).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(error)) if timed_out_in(&error) => return Err(timed_out()),
            Ok(Err(error)) => return Err(self.failure(scope, &error)),
            Ok(Ok(token)) => token,
        };
        Ok((token.token.secret().to_string(), token.expires_on))
    }

    /// Forget every cached token: the next `token` asks the endpoint again.
    pub fn reset(&self) -> Result<(), AuthError> {
        let fresh = (self.make)()?;
        *self
            .inner
            .lock()
            .expect("the credential lock is never poisoned") = fresh;
        Ok(())
    }

    fn failure(&self, scope: &str, error: &azure_core::Error) -> AuthError {
        let (message, status, transient, retry_after) = match http_answer(error) {
            Some(answer) => {
                let status = u16::from(answer.status());
                (
                    describe_answer(answer),
                    Some(status),
                    status == 408 || status == 429 || status >= 500,
                    answer
                        .headers()
                        .get_optional_str(&HeaderName::from_static("retry-after"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                )
            }
            None => (describe_error(error), None, connection_lost(error), None),
        };
        AuthError::Token {
            method: self.method.name(),
            scope: scope.to_string(),
            endpoint: self.endpoint.clone(),
            message,
            status,
            transient,
            retry_after,
            attempts: 1,
        }
    }
}

/// The errors azure_core wraps, outermost first.
fn chain(error: &azure_core::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
}

/// The HTTP answer behind a failure (azure_identity wraps it in
/// `ErrorKind::HttpResponse { raw_response }`), if any.
fn http_answer(error: &azure_core::Error) -> Option<&RawResponse> {
    chain(error).find_map(|e| match e.downcast_ref::<azure_core::Error>()?.kind() {
        azure_core::error::ErrorKind::HttpResponse { raw_response, .. } => raw_response.as_deref(),
        _ => None,
    })
}

fn timed_out_in(error: &azure_core::Error) -> bool {
    chain(error).any(|e| {
        e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// A request that did not get an answer (nothing to do with the credential itself).
fn connection_lost(error: &azure_core::Error) -> bool {
    chain(error).any(|e| {
        e.downcast_ref::<azure_core::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                azure_core::error::ErrorKind::Connection | azure_core::error::ErrorKind::Io
            )
        })
    })
}

/// `HTTP 401 invalid_client (AADSTS7000215): Invalid client secret provided. (x-ms-request-id: ...)`.
/// Entra answers `{"error", "error_description", "error_codes"}`; managed identity
/// endpoints and gateways sometimes `{"error": {"code", "message"}}` or text.
fn describe_answer(answer: &RawResponse) -> String {
    let status = u16::from(answer.status());
    let body: &[u8] = answer.body().as_ref();
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |value: Option<&serde_json::Value>| {
        value
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let (mut code, mut description) = (None, None);
    if let Some(json) = &json {
        match json.get("error") {
            Some(serde_json::Value::Object(inner)) => {
                code = field(inner.get("code"));
                description = field(inner.get("message"));
            }
            error => {
                code = field(error);
                description =
                    field(json.get("error_description")).or_else(|| field(json.get("message")));
            }
        }
    }
    let description = description
        .map(|d| entra_description(&d))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(200).collect()
        });
    let request_id = ["x-ms-request-id", "x-ms-correlation-request-id"]
        .iter()
        .find_map(|name| {
            answer
                .headers()
                .get_optional_str(&HeaderName::from_static(name))
                .map(str::to_string)
        })
        .or_else(|| json.as_ref().and_then(|j| field(j.get("trace_id"))));
    let mut message = format!("HTTP {status}");
    if let Some(code) = code {
        message.push_str(&format!(" {code}"));
    }
    if !description.is_empty() {
        message.push_str(&format!(": {description}"));
    }
    if let Some(id) = request_id {
        message.push_str(&format!(" (x-ms-request-id: {id})"));
    }
    message
}

/// Entra's description without its trailing `Trace ID: .. Correlation ID: .. Timestamp: ..`
/// (the request id says the same), on one line.
fn entra_description(text: &str) -> String {
    let text = text.split("Trace ID:").next().unwrap_or(text);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A failure without an HTTP answer: azure_identity's wording minus its boilerplate
/// ("ClientSecretCredential authentication failed." and the troubleshooting link).
fn describe_error(error: &azure_core::Error) -> String {
    let text = error.to_string();
    let text = text.split("To troubleshoot, visit").next().unwrap_or(&text);
    let text = match text.split_once("authentication failed.") {
        Some((_, rest)) if !rest.trim().is_empty() => rest,
        _ => text,
    };
    let one_line = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut message = one_line(text);
    // The innermost cause says what actually happened (e.g. "connection refused").
    if let Some(cause) = chain(error).last()
        && !std::ptr::addr_eq(cause, error as &dyn std::error::Error)
    {
        let cause = one_line(&cause.to_string());
        if !message.contains(&cause) {
            message.push_str(&format!(": {cause}"));
        }
    }
    message
}

/// Build the credential for `method`; its HTTP requests go through a client that
/// trusts `trust` and times out as `settings` say.
pub fn credential(
    method: AuthMethod,
    endpoints: &Endpoints,
    env: &EnvVars,
    trust: Trust<'_>,
    settings: &ClientSettings,
) -> Result<Credential, AuthError> {
    let chosen = match method {
        AuthMethod::Auto => detect(env)?,
        forced => forced,
    };
    let setup = move |error: azure_core::Error| AuthError::Setup {
        method: chosen.name(),
        message: first_line(&error.to_string()),
    };
    let transport = crate::azure::http_builder(trust, settings)
        .and_then(|builder| {
            builder
                .timeout(settings.token_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
        })
        .map_err(|error| AuthError::Setup {
            method: chosen.name(),
            message: format!("cannot set up HTTPS: {error}"),
        })?;
    let http = transport.clone();
    let options = {
        let endpoints = endpoints.clone();
        move || client_options(&endpoints, transport.clone())
    };
    let authority = endpoints.authority_host.as_str().trim_end_matches('/');
    let (endpoint, make): (String, Arc<Make>) = match chosen {
        AuthMethod::ServicePrincipal => {
            let [tenant, client, secret] = required(
                env,
                chosen,
                &["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"],
            )?;
            (
                format!("{authority}/{tenant}/oauth2/v2.0/token"),
                Arc::new(move || {
                    let options = ClientSecretCredentialOptions {
                        client_options: options(),
                    };
                    let credential: Arc<dyn TokenCredential> = ClientSecretCredential::new(
                        &tenant,
                        client.clone(),
                        Secret::new(secret.clone()),
                        Some(options),
                    )
                    .map_err(setup)?;
                    Ok(credential)
                }),
            )
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
            (
                format!("{authority}/{tenant}/oauth2/v2.0/token"),
                Arc::new(move || {
                    let options = WorkloadIdentityCredentialOptions {
                        credential_options: ClientAssertionCredentialOptions {
                            client_options: options(),
                        },
                        client_id: Some(client.clone()),
                        tenant_id: Some(tenant.clone()),
                        token_file_path: Some(file.clone().into()),
                    };
                    let credential: Arc<dyn TokenCredential> =
                        WorkloadIdentityCredential::new(Some(options)).map_err(setup)?;
                    Ok(credential)
                }),
            )
        }
        AuthMethod::GithubOidc => {
            let [tenant, client, url, token] = required(
                env,
                chosen,
                &[
                    "AZURE_TENANT_ID",
                    "AZURE_CLIENT_ID",
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                ],
            )?;
            let assertion = GithubIdToken {
                http,
                url: github_token_url(&url).map_err(|message| AuthError::Setup {
                    method: chosen.name(),
                    message,
                })?,
                request_token: Secret::new(token),
            };
            (
                format!("{authority}/{tenant}/oauth2/v2.0/token"),
                Arc::new(move || {
                    let credential: Arc<dyn TokenCredential> = ClientAssertionCredential::new(
                        tenant.clone(),
                        client.clone(),
                        assertion.clone(),
                        Some(ClientAssertionCredentialOptions {
                            client_options: options(),
                        }),
                    )
                    .map_err(setup)?;
                    Ok(credential)
                }),
            )
        }
        AuthMethod::ManagedIdentity => {
            let client = env.get("AZURE_CLIENT_ID").map(str::to_string);
            let endpoint = env
                .get("IDENTITY_ENDPOINT")
                .or_else(|| env.get("MSI_ENDPOINT"))
                .filter(|e| !e.is_empty())
                .unwrap_or("http://169.254.169.254/metadata/identity/oauth2/token")
                .to_string();
            (
                endpoint,
                Arc::new(move || {
                    let options = ManagedIdentityCredentialOptions {
                        user_assigned_id: client.clone().map(UserAssignedId::ClientId),
                        client_options: options(),
                    };
                    let credential: Arc<dyn TokenCredential> =
                        ManagedIdentityCredential::new(Some(options)).map_err(setup)?;
                    Ok(credential)
                }),
            )
        }
        AuthMethod::AzureCli => {
            let executor = Arc::new(KillOnDrop {
                path: env.get("PATH").map(std::ffi::OsString::from),
            });
            (
                "`az account get-access-token`".to_string(),
                Arc::new(move || {
                    let options = AzureCliCredentialOptions {
                        executor: Some(executor.clone()),
                        ..Default::default()
                    };
                    let credential: Arc<dyn TokenCredential> =
                        AzureCliCredential::new(Some(options)).map_err(setup)?;
                    Ok(credential)
                }),
            )
        }
        AuthMethod::Auto => unreachable!("detect picks a concrete method"),
    };
    let inner = make()?;
    Ok(Credential {
        method: chosen,
        endpoint,
        make,
        inner: Arc::new(Mutex::new(inner)),
    })
}

/// Runs `az` for azure_identity; a run that is given up on (the token timeout) is killed
/// rather than left behind. `PATH` is the one amlspec was given, which is also where
/// `auto` looked for `az`.
#[derive(Debug)]
struct KillOnDrop {
    path: Option<std::ffi::OsString>,
}

// `Executor` is an `async_trait`; this is what the macro would write.
impl Executor for KillOnDrop {
    fn run<'a, 'b, 'c, 'd, 'f>(
        &'a self,
        program: &'b std::ffi::OsStr,
        args: &'c [&'d std::ffi::OsStr],
    ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<std::process::Output>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        'd: 'f,
        Self: 'f,
    {
        let mut command = tokio::process::Command::new(program);
        command.args(args).kill_on_drop(true);
        if let Some(path) = &self.path {
            command.env("PATH", path);
        }
        Box::pin(async move { command.output().await })
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_string()
}

fn client_options(endpoints: &Endpoints, transport: reqwest::Client) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = endpoints
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_string();
    ClientOptions {
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        transport: Some(Transport::new(Arc::new(transport))),
        // The ARM client retries token requests with its own policy and budget.
        retry: RetryOptions::none(),
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
    if set("ACTIONS_ID_TOKEN_REQUEST_URL")
        && set("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        && set("AZURE_CLIENT_ID")
        && set("AZURE_TENANT_ID")
    {
        return Ok(AuthMethod::GithubOidc);
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
            "  - workload identity (AKS): {} not set",
            missing(&["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"])
        ),
        format!(
            "  - GitHub Actions OIDC (`permissions: id-token: write`): {} not set",
            missing(&[
                "AZURE_CLIENT_ID",
                "AZURE_TENANT_ID",
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
            ])
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

/// The audience Entra ID expects of a federated credential's assertion.
const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// GitHub's ID token endpoint for Azure: `ACTIONS_ID_TOKEN_REQUEST_URL` with
/// `audience=api://AzureADTokenExchange`; https, or http on loopback (a local stand-in).
fn github_token_url(text: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(text)
        .map_err(|e| format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"))?;
    let loopback = crate::azure::endpoints::is_loopback(&url);
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("ACTIONS_ID_TOKEN_REQUEST_URL must be https (http only on loopback)".into());
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "audience")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("audience", FEDERATED_AUDIENCE);
    Ok(url)
}

/// GitHub Actions' ID token, asked for each time a client assertion is needed (GitHub's
/// tokens live minutes; azure_identity caches the Azure token they buy).
#[derive(Clone)]
struct GithubIdToken {
    http: reqwest::Client,
    url: url::Url,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: a secret, never shown.
    request_token: Secret,
}

impl std::fmt::Debug for GithubIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubIdToken")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ClientAssertion for GithubIdToken {
    async fn secret(
        &self,
        _: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        let fail = |message: String| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!("cannot get GitHub's ID token: {message}"),
            )
        };
        let response = self
            .http
            .get(self.url.clone())
            .bearer_auth(self.request_token.secret())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!(
                "HTTP {status} from {}; does the job have `permissions: id-token: write`?",
                self.url.host_str().unwrap_or_default()
            )));
        }
        #[derive(serde::Deserialize)]
        struct IdToken {
            value: String,
        }
        let token: IdToken = response
            .json()
            .await
            .map_err(|e| fail(format!("the answer has no `value`: {}", e.without_url())))?;
        Ok(token.value)
    }
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
        let github = [
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_TENANT_ID", "t"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "r"),
            ("IDENTITY_ENDPOINT", "http://x"),
        ];
        assert_eq!(detect(&env(&github)).unwrap(), AuthMethod::GithubOidc);
        // Without the client it is for, GitHub's token is not enough.
        assert_eq!(
            detect(&env(&github[1..])).unwrap(),
            AuthMethod::ManagedIdentity
        );
        assert_eq!(
            detect(&env(&[("IDENTITY_ENDPOINT", "http://x")])).unwrap(),
            AuthMethod::ManagedIdentity
        );
    }

    #[test]
    fn githubs_token_url_gets_azures_audience_and_stays_https() {
        let url = github_token_url("https://pipelines.actions.githubusercontent.com/abc/_apis/token?api-version=2.0&audience=other").unwrap();
        assert_eq!(
            url.as_str(),
            "https://pipelines.actions.githubusercontent.com/abc/_apis/token?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"
        );
        assert!(github_token_url("http://127.0.0.1:9/t").is_ok());
        assert!(github_token_url("http://example.com/t").is_err());
        assert!(github_token_url("not a url").is_err());
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
        assert!(error.contains("GitHub Actions OIDC"), "{error}");
        assert!(error.contains("managed identity"), "{error}");
        assert!(error.contains("Azure CLI"), "{error}");
        assert!(error.contains("--emulator"), "{error}");
    }

    #[test]
    fn forcing_a_method_names_what_is_missing() {
        let endpoints = Endpoints::for_cloud(Cloud::Public);
        let error = credential(
            AuthMethod::ServicePrincipal,
            &endpoints,
            &env(&[]),
            Trust::System,
            &ClientSettings::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "service principal is not configured: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set"
        );
    }
}
