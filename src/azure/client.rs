//! The ARM client: one pinned api-version per resource type, bearer tokens, bounded
//! concurrency, retries that honour Retry-After, nextLink paging, and errors that carry
//! the operation, resource, HTTP status, ARM error code, message and x-ms-request-id of
//! the last answer.
//!
//! Retries (the policy in `azure::retry`, shared with blob storage and token requests):
//! 429 always (the request was not processed); 5xx and lost connections only for
//! idempotent requests (GET, PUT, DELETE and read-only POSTs). A 429 also closes a shared
//! gate until its Retry-After, so the other requests in flight wait instead of adding to
//! the storm. A 401 saying the token expired renews the token once and tries again.
//!
//! Every wait is bounded: connecting (`connect_timeout`), each try (`timeout`), each
//! token request (`token_timeout`), and the retries of a request (the policy's budget).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::azure::auth::{AuthError, Credential, seconds};
use crate::azure::endpoints::Endpoints;
use crate::azure::retry::{self, Gate, GaveUp, Outcome};
pub use crate::azure::retry::{RetryPolicy, Sleep, tokio_sleep};
use crate::ids::ResourceId;

#[derive(Clone)]
pub struct ClientSettings {
    /// Requests in flight at once.
    pub max_parallel: usize,
    pub retry: RetryPolicy,
    /// Per try of an ARM request.
    pub timeout: Duration,
    /// Setting up a connection to any endpoint.
    pub connect_timeout: Duration,
    /// Per try of getting a token (an HTTP request, or a run of `az`).
    pub token_timeout: Duration,
    /// Per try of a blob request (up to 4 MiB of body).
    pub blob_timeout: Duration,
    pub sleep: Sleep,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            max_parallel: DEFAULT_MAX_PARALLEL,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            token_timeout: Duration::from_secs(30),
            blob_timeout: Duration::from_secs(120),
            sleep: tokio_sleep(),
        }
    }
}

/// How long a failure to get a token stands for the requests that follow it.
const KEEP_SIGN_IN_FAILURE: Duration = Duration::from_secs(10);

/// Requests in flight by default. A plan reads every resource at once (each workspace's
/// children alongside it); a 429 closes the shared gate, so a burst backs off together.
pub const DEFAULT_MAX_PARALLEL: usize = 1024;

/// ` (after 6 tries)`, or nothing after one try.
pub fn after_tries(attempts: usize) -> String {
    if attempts > 1 {
        format!(" (after {attempts} tries)")
    } else {
        String::new()
    }
}

/// What a request is about, for errors and logs: "read compute" + its id.
#[derive(Debug, Clone)]
pub struct Operation {
    pub action: &'static str,
    pub resource: String,
}

impl Operation {
    pub fn new(action: &'static str, resource: impl Into<String>) -> Self {
        Operation {
            action,
            resource: resource.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    /// The body as sent; decode it with [`Response::decode`] (only what is needed).
    pub text: String,
    pub request_id: Option<String>,
    pub etag: Option<String>,
    /// Long-running operations: where to poll (`Azure-AsyncOperation`, `Location`) and
    /// how long to wait between polls (`Retry-After`).
    pub async_operation: Option<String>,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Response {
    /// Decode the body into `T` (typically a struct of the few fields wanted: the rest is
    /// skipped without building JSON values for it). An empty body decodes from `null`.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        operation: &Operation,
    ) -> Result<T, ArmError> {
        let text = if self.text.trim().is_empty() {
            "null"
        } else {
            &self.text
        };
        serde_json::from_str(text).map_err(|error| ArmError::Body {
            action: operation.action,
            resource: operation.resource.clone(),
            message: error.to_string(),
        })
    }
}

/// One page of a list answer.
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

/// A resource that was read, or the ARM code saying why it is not there
/// (`ResourceNotFound`, `ResourceGroupNotFound`, `ParentResourceNotFound`, ...).
#[derive(Debug, Clone)]
pub enum Found {
    Present(Response),
    Missing { code: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    #[error(
        "failed to {action} {resource}: HTTP {status} {code}: {message}{}{}",
        request_id.as_deref().map(|id| format!(" (x-ms-request-id: {id})")).unwrap_or_default(),
        after_tries(*attempts)
    )]
    Status {
        action: &'static str,
        resource: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        attempts: usize,
    },
    #[error("failed to {action} {resource}: {message}{}", after_tries(*attempts))]
    Transport {
        action: &'static str,
        resource: String,
        message: String,
        attempts: usize,
    },
    #[error("failed to {action} {resource}: {source}")]
    Auth {
        action: &'static str,
        resource: String,
        source: Box<AuthError>,
    },
    /// A long-running operation that ended in `Failed` or `Canceled` (or never ended).
    #[error("failed to {action} {resource}: the operation ended {status}: {code}: {message}")]
    Operation {
        action: &'static str,
        resource: String,
        status: String,
        code: String,
        message: String,
    },
    #[error("failed to {action} {resource}: the response is not JSON: {message}")]
    Body {
        action: &'static str,
        resource: String,
        message: String,
    },
}

impl ArmError {
    /// The same error, after `tries` tries.
    fn after(mut self, tries: usize) -> Self {
        if let ArmError::Status { attempts, .. } | ArmError::Transport { attempts, .. } = &mut self
        {
            *attempts = tries;
        }
        self
    }

    /// ARM refused the token because it expired: `ExpiredAuthenticationToken`, or
    /// `InvalidAuthenticationToken` whose message says it expired.
    fn token_expired(&self) -> bool {
        match self {
            ArmError::Status {
                status: 401,
                code,
                message,
                ..
            } => {
                code == "ExpiredAuthenticationToken"
                    || code == "InvalidAuthenticationToken"
                        && message.to_ascii_lowercase().contains("expired")
            }
            _ => false,
        }
    }
}

/// Counts of requests sent, for benchmarks and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

pub struct ArmClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    scope: String,
    credential: Credential,
    limiter: Semaphore,
    /// Closed after a 429 until its Retry-After.
    gate: Gate,
    /// The last `Authorization` header and when its token expires.
    bearer: Mutex<Option<(reqwest::header::HeaderValue, time::OffsetDateTime)>>,
    /// Held while asking the credential for a token, so that requests that need one at
    /// the same moment share one answer (one `az` run, not one per request).
    signing_in: tokio::sync::Mutex<()>,
    /// The last failure to get a token and when: requests within `KEEP_SIGN_IN_FAILURE`
    /// of it fail with it rather than asking again.
    sign_in_failure: Mutex<Option<(AuthError, Instant)>>,
    /// The last `Authorization` header ARM said had expired: a token equal to it is not
    /// used again, the credential is asked for a fresh one.
    rejected: Mutex<Option<reqwest::header::HeaderValue>>,
    settings: ClientSettings,
    pub stats: Stats,
}

type Attempt = Outcome<Response, ArmError>;

impl ArmClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        credential: Credential,
        settings: ClientSettings,
    ) -> Self {
        ArmClient {
            http,
            scope: endpoints.arm_scope(),
            endpoints,
            credential,
            limiter: Semaphore::new(settings.max_parallel.max(1)),
            gate: Gate::default(),
            bearer: Mutex::new(None),
            signing_in: tokio::sync::Mutex::new(()),
            sign_in_failure: Mutex::new(None),
            rejected: Mutex::new(None),
            settings,
            stats: Stats::default(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The HTTP client (its trust and timeouts), for blob uploads next to ARM.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The URL of a resource id at an api-version.
    pub fn url(&self, id: &ResourceId, api_version: &str) -> Url {
        let mut url = self
            .endpoints
            .resource_manager
            .join(id.as_str().trim_start_matches('/'))
            .expect("ids are valid paths");
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        url
    }

    /// The URL of a resource at its provider's api-version ([`super::api_version_of`]).
    pub fn url_of(&self, id: &ResourceId) -> Url {
        self.url(id, super::api_version_of(id))
    }

    /// GET a resource; a 404 is `Found::Missing` with its ARM error code.
    pub async fn get(&self, operation: &Operation, url: Url) -> Result<Found, ArmError> {
        found(self.send(operation, Method::GET, url, None, true).await)
    }

    /// POST an action that only reads (e.g. `listsecrets`): safe to retry.
    pub async fn post_read(
        &self,
        operation: &Operation,
        url: Url,
        body: Option<Value>,
    ) -> Result<Found, ArmError> {
        found(self.send(operation, Method::POST, url, body, true).await)
    }

    /// GET a list and follow `nextLink` to the end (or until `limit` items).
    pub async fn list(
        &self,
        operation: &Operation,
        url: Url,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.send(operation, Method::GET, url, None, true).await?;
            let page: Page = response.decode(operation)?;
            items.extend(page.value);
            if limit.is_some_and(|limit| items.len() >= limit) {
                items.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
            next = match page.next_link.as_deref() {
                Some(link) if !link.is_empty() => {
                    Some(Url::parse(link).map_err(|e| ArmError::Body {
                        action: operation.action,
                        resource: operation.resource.clone(),
                        message: format!("bad nextLink `{link}`: {e}"),
                    })?)
                }
                _ => None,
            };
        }
        Ok(items)
    }

    /// Send one request with retries. `idempotent`: may be repeated after a 5xx or a
    /// lost connection.
    pub async fn send(
        &self,
        operation: &Operation,
        method: Method,
        url: Url,
        body: Option<Value>,
        idempotent: bool,
    ) -> Result<Response, ArmError> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // The request's own state (retries, the HTTP exchange: a few kilobytes) is made
        // only once it may go. A plan of 10,000 resources starts 10,000 reads at once:
        // waiting here, each is a small future, not a large one (issue #10's 128 MB).
        Box::pin(self.send_now(operation, method, url, body, idempotent)).await
    }

    /// [`Self::send`] once its permit is held.
    async fn send_now(
        &self,
        operation: &Operation,
        method: Method,
        url: Url,
        body: Option<Value>,
        idempotent: bool,
    ) -> Result<Response, ArmError> {
        let body = body.as_ref();
        let mut renewed = false;
        loop {
            // The `Authorization` header of the last try.
            let used = Mutex::new(None);
            let result = retry::run(
                &self.settings.retry,
                &self.settings.sleep,
                Some(&self.gate),
                |attempt| {
                    let (used, method, url) = (&used, method.clone(), url.clone());
                    async move {
                        self.stats.requests.fetch_add(1, Ordering::Relaxed);
                        if attempt > 1 {
                            self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        }
                        let (outcome, header) =
                            self.attempt(operation, method, url, body, idempotent).await;
                        *used.lock().expect("never poisoned") = header;
                        outcome
                    }
                },
            )
            .await;
            let GaveUp { error, attempts } = match result {
                Ok(response) => return Ok(response),
                Err(gave_up) => gave_up,
            };
            let used = used.into_inner().expect("never poisoned");
            if let Some(header) = used.filter(|_| !renewed && error.token_expired()) {
                tracing::info!(action = operation.action, resource = %operation.resource, "the token expired; renewing it and trying again");
                renewed = true;
                self.reject(&header);
                continue;
            }
            return Err(error.after(attempts));
        }
    }

    /// Get the first token now, so that the first reads need not wait for it. A failure
    /// is not kept: the first read tries again and reports it with its context.
    pub async fn sign_in(&self) {
        if let Err(error) = self.authorization().await {
            tracing::debug!(%error, "signing in early failed; the first read tries again");
        }
    }

    /// The `Authorization` header, built once per token: azure_identity is asked again
    /// only when the token is within five minutes of expiring (as it refreshes then),
    /// by one request at a time; the others wait for its answer. A failure is kept for
    /// `KEEP_SIGN_IN_FAILURE`, so a burst of requests fails with one sign-in attempt.
    async fn authorization(&self) -> Result<reqwest::header::HeaderValue, AuthError> {
        if let Some(header) = self.fresh_bearer() {
            return Ok(header);
        }
        let _signing_in = self.signing_in.lock().await;
        if let Some(header) = self.fresh_bearer() {
            return Ok(header);
        }
        if let Some((error, at)) = &*self
            .sign_in_failure
            .lock()
            .expect("the sign-in failure lock is never poisoned")
            && at.elapsed() < KEEP_SIGN_IN_FAILURE
        {
            return Err(error.clone());
        }
        match self.new_bearer().await {
            Ok((header, expires)) => {
                *self
                    .bearer
                    .lock()
                    .expect("the token lock is never poisoned") = Some((header.clone(), expires));
                Ok(header)
            }
            Err(error) => {
                *self
                    .sign_in_failure
                    .lock()
                    .expect("the sign-in failure lock is never poisoned") =
                    Some((error.clone(), Instant::now()));
                Err(error)
            }
        }
    }

    /// Ask the credential for a token: the `Authorization` header (sensitive, so never
    /// HPACK-indexed nor shown by Debug) and when the token expires. A token ARM said
    /// had expired is not taken from azure_identity's cache again.
    async fn new_bearer(
        &self,
    ) -> Result<(reqwest::header::HeaderValue, time::OffsetDateTime), AuthError> {
        let rejected = self
            .rejected
            .lock()
            .expect("the token lock is never poisoned")
            .clone();
        let (header, expires) = self.bearer_from_credential().await?;
        if rejected.as_ref() != Some(&header) {
            return Ok((header, expires));
        }
        self.credential.reset()?;
        self.bearer_from_credential().await
    }

    /// A token from the credential, with the shared retry policy: 429, 5xx and lost
    /// connections are tried again; a timeout is not (a stall ends in one error).
    async fn bearer_from_credential(
        &self,
    ) -> Result<(reqwest::header::HeaderValue, time::OffsetDateTime), AuthError> {
        let (token, expires) = retry::run(
            &self.settings.retry,
            &self.settings.sleep,
            None,
            |_| async {
                match self
                    .credential
                    .token(&self.scope, self.settings.token_timeout)
                    .await
                {
                    Ok(token) => Outcome::Done(token),
                    Err(
                        error @ AuthError::Token {
                            transient: true,
                            retry_after,
                            ..
                        },
                    ) => Outcome::Retry {
                        error,
                        after: retry_after,
                        throttled: false,
                    },
                    Err(error) => Outcome::Fail(error),
                }
            },
        )
        .await
        .map_err(|gave_up| gave_up.error.after(gave_up.attempts))?;
        let mut header = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| AuthError::Token {
                method: self.credential.method.name(),
                scope: self.scope.clone(),
                endpoint: self.credential.endpoint.clone(),
                message: "the token is not valid header text".into(),
                status: None,
                transient: false,
                retry_after: None,
                attempts: 1,
            })?;
        header.set_sensitive(true);
        Ok((header, expires))
    }

    /// ARM said the token in `used` expired: forget it, unless a newer one replaced it.
    fn reject(&self, used: &reqwest::header::HeaderValue) {
        *self
            .rejected
            .lock()
            .expect("the token lock is never poisoned") = Some(used.clone());
        let mut bearer = self
            .bearer
            .lock()
            .expect("the token lock is never poisoned");
        if bearer.as_ref().is_some_and(|(header, _)| header == used) {
            *bearer = None;
        }
    }

    /// The `Authorization` header if its token is not within five minutes of expiring.
    fn fresh_bearer(&self) -> Option<reqwest::header::HeaderValue> {
        let guard = self
            .bearer
            .lock()
            .expect("the token lock is never poisoned");
        let (header, expires) = guard.as_ref()?;
        (time::OffsetDateTime::now_utc() < *expires - time::Duration::minutes(5))
            .then(|| header.clone())
    }

    /// One try, and the `Authorization` header it sent.
    async fn attempt(
        &self,
        operation: &Operation,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotent: bool,
    ) -> (Attempt, Option<reqwest::header::HeaderValue>) {
        let authorization = match self.authorization().await {
            Ok(header) => header,
            Err(source) => {
                let error = ArmError::Auth {
                    action: operation.action,
                    resource: operation.resource.clone(),
                    source: Box::new(source),
                };
                return (Outcome::Fail(error), None);
            }
        };
        let outcome = self
            .try_once(
                operation,
                method,
                url,
                body,
                idempotent,
                authorization.clone(),
            )
            .await;
        (outcome, Some(authorization))
    }

    async fn try_once(
        &self,
        operation: &Operation,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotent: bool,
        authorization: reqwest::header::HeaderValue,
    ) -> Attempt {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header("Accept", "application/json")
            .header("x-ms-client-request-id", &client_request_id)
            .timeout(self.settings.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        tracing::debug!(%method, url = %redact_query(&url), %client_request_id, "request");
        let timeout = self.settings.timeout;
        let response = match request.send().await {
            Ok(response) => response,
            // Nothing reached the server: always safe to try again.
            Err(error) if error.is_connect() => {
                return Outcome::Retry {
                    error: transport(
                        operation,
                        format!("cannot connect: {}", error_chain(&error)),
                    ),
                    after: None,
                    throttled: false,
                };
            }
            Err(error) => return lost(operation, idempotent, "connection failed", &error, timeout),
        };
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-ms-request-id");
        let etag = header("etag");
        let async_operation = header("azure-asyncoperation");
        let location = header("location");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        tracing::debug!(%method, url = %redact_query(&url), status = status.as_u16(), request_id = request_id.as_deref().unwrap_or("-"), "response");
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                return lost(
                    operation,
                    idempotent,
                    "reading the response failed",
                    &error,
                    timeout,
                );
            }
        };
        if status.is_success() {
            return Outcome::Done(Response {
                status,
                text,
                request_id,
                etag,
                async_operation,
                location,
                retry_after,
            });
        }
        let (code, message) = error_code(&text);
        let error = ArmError::Status {
            action: operation.action,
            resource: operation.resource.clone(),
            status: status.as_u16(),
            code,
            message,
            request_id,
            attempts: 1,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Outcome::Retry {
                error,
                after: retry_after.or(Some(Duration::from_secs(1))),
                throttled: true,
            };
        }
        if status.is_server_error() && idempotent {
            return Outcome::Retry {
                error,
                after: retry_after,
                throttled: false,
            };
        }
        Outcome::Fail(error)
    }
}

fn transport(operation: &Operation, message: String) -> ArmError {
    ArmError::Transport {
        action: operation.action,
        resource: operation.resource.clone(),
        message,
        attempts: 1,
    }
}

/// A connection lost mid-request (or no answer within `timeout`): retried when the
/// request is idempotent; otherwise it may have been processed, so it is an error.
fn lost(
    operation: &Operation,
    idempotent: bool,
    what: &str,
    error: &reqwest::Error,
    timeout: Duration,
) -> Attempt {
    let cause = if error.is_timeout() {
        format!("no answer within {}", seconds(timeout))
    } else {
        format!("{what}: {}", error_chain(error))
    };
    if idempotent {
        return Outcome::Retry {
            error: transport(operation, cause),
            after: None,
            throttled: false,
        };
    }
    Outcome::Fail(transport(
        operation,
        format!("{cause} (not retried: the request may have been processed)"),
    ))
}

/// A read's answer: a 404 means the resource is missing, which is not an error.
fn found(result: Result<Response, ArmError>) -> Result<Found, ArmError> {
    match result {
        Ok(response) => Ok(Found::Present(response)),
        Err(ArmError::Status {
            status: 404, code, ..
        }) => Ok(Found::Missing { code }),
        Err(error) => Err(error),
    }
}

/// The ARM error code and message of a failed response (`{"error":{"code","message"}}`).
fn error_code(text: &str) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("(no code)")
        .to_string();
    let message = match error.and_then(|e| e.get("message")).and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None => truncate(text.trim(), 200),
    };
    (code, message)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// URLs in logs lose their query beyond api-version: SAS tokens live there.
pub(crate) fn redact_query(url: &Url) -> String {
    let mut shown = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k == "api-version")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    shown.set_query(None);
    if !kept.is_empty() {
        shown.query_pairs_mut().extend_pairs(kept);
    }
    shown.to_string()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_come_from_the_arm_body() {
        let (code, message) =
            error_code(r#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("ResourceNotFound", "gone")
        );
        let (code, message) = error_code("<html>bad gateway</html>");
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("(no code)", "<html>bad gateway</html>")
        );
    }

    #[test]
    fn logged_urls_keep_only_the_api_version() {
        let url = Url::parse("https://a.blob.core.windows.net/c?sv=2021&sig=secret&api-version=1")
            .unwrap();
        assert_eq!(
            redact_query(&url),
            "https://a.blob.core.windows.net/c?api-version=1"
        );
    }
}
