//! Container registry preflight, client side: "can this image be pulled with these
//! credentials?", asked the way a container runtime asks (OCI distribution API).
//! Input: an [`ImageRef`] and optional [`RegistryCredentials`]; output: a [`Pullable`].
//!
//! One probe is one cheap round: `GET /v2/` (the challenge), a token from the realm it
//! names (Bearer) when asked for, and `HEAD /v2/<repository>/manifests/<reference>`.
//! A Bearer registry costs 3 requests, a Basic or open one 2. An Azure Container
//! Registry's challenge is known from its host name, so its token is asked alongside
//! `GET /v2/` (and used only if the challenge is the one expected): its 3 requests take
//! 2 round trips. A HEAD has no body, so a HEAD that does not answer 200 is asked again
//! once as a GET, whose error body (`errors[0].code`) tells a missing tag from a
//! missing repository and a denial from a wrong password: one more request, on the
//! failure path only.
//!
//! Bounds: the whole probe has [`PROBE_BUDGET`] (connecting is bounded by the project's
//! `connect_timeout` too); at most [`MAX_BODY`] bytes of any body are read; redirects
//! are followed only to https (or plain http on loopback), at most [`MAX_REDIRECTS`],
//! and reqwest drops `Authorization` on a redirect to another host, port or scheme.
//! No retries: a preflight that cannot get an answer says so ([`Pullable::Unreachable`],
//! a warning, not a block) rather than making a plan wait; a 429 or 5xx is an answer
//! that the registry could not be asked now.
//!
//! Credentials are a [`Secret`]: sent only in the `Authorization` header of the token
//! request (to the realm the registry names, or an ACR host's own `/oauth2/token`, over
//! https) or of the manifest request (Basic registries), marked sensitive there, never
//! logged and never part of an outcome.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::azure::client::ClientSettings;
use crate::azure::{Trust, http_builder};
pub use crate::oci::Pullable;
use crate::oci::{valid_repository, valid_tag};
use crate::secret::Secret;

/// The whole of one probe: every request, redirect and body read.
pub const PROBE_BUDGET: Duration = Duration::from_secs(10);
/// The most of any body (token answer, error) that is read.
pub const MAX_BODY: usize = 64 * 1024;
/// The most characters of a registry's message kept in an outcome.
pub const MAX_MESSAGE: usize = 300;
/// Redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// The manifest media types a runtime accepts: OCI index and manifest, Docker manifest
/// list and manifest (v2 schema 2).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

// --------------------------------------------------------------------------- references

/// A tag or a content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    /// `sha256:<64 hex>` (or another `algorithm:encoded` digest).
    Digest(String),
}

impl Reference {
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) | Reference::Digest(t) => t,
        }
    }
}

/// An image reference, normalized as Docker does: a first component with a `.` or `:`
/// (or `localhost`) is the registry host, otherwise the image is on Docker Hub
/// (`docker.io`, and a one-component name is under `library/`); no tag is `latest`; a
/// digest wins over a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Host, with port when one was given; lower case.
    pub registry: String,
    /// Lower case, as the distribution spec requires.
    pub repository: String,
    pub reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the image reference is empty")]
    Empty,
    #[error("`{host}` is not a registry host")]
    Host { host: String },
    #[error(
        "`{repository}` is not a repository name (lower-case letters, digits and `._-` \
         between `/`)"
    )]
    Repository { repository: String },
    #[error("`{tag}` is not a tag (letters, digits and `._-`, at most 128)")]
    Tag { tag: String },
    #[error("`{digest}` is not a digest (`sha256:` and 64 hex digits)")]
    Digest { digest: String },
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, ReferenceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let shown = |s: &str| crate::diagnostic::escape(&bounded(s, 200)).into_owned();
        let (name, digest) = match text.rsplit_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first.eq_ignore_ascii_case("localhost") =>
            {
                (first.to_ascii_lowercase(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if !valid_host(&registry) {
            return Err(ReferenceError::Host {
                host: shown(&registry),
            });
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(ReferenceError::Repository {
                repository: shown(&repository),
            });
        }
        let reference = match (digest, tag) {
            (Some(d), _) => {
                if !valid_digest(d) {
                    return Err(ReferenceError::Digest { digest: shown(d) });
                }
                Reference::Digest(d.to_string())
            }
            (None, Some(t)) => {
                if !valid_tag(t) {
                    return Err(ReferenceError::Tag { tag: shown(t) });
                }
                Reference::Tag(t.to_string())
            }
            (None, None) => Reference::Tag("latest".to_string()),
        };
        if let Some(t) = tag.filter(|_| digest.is_some())
            && !valid_tag(t)
        {
            return Err(ReferenceError::Tag { tag: shown(t) });
        }
        Ok(ImageRef {
            registry,
            repository,
            reference,
        })
    }

    /// The host (and port) requests go to: Docker Hub's API is `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}/{}:{t}", self.registry, self.repository),
            Reference::Digest(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
        }
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, rest)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                (None, rest.strip_prefix(':'))
            }
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        },
    };
    let name_ok = name.is_none_or(|n| {
        !n.is_empty()
            && n.len() <= 253
            && n.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    name_ok && port_ok
}

/// `sha256:<64 lower hex>`, or another `algorithm:encoded` of the spec's grammar.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    if algorithm == "sha256" {
        return encoded.len() == 64
            && encoded
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    }
    !algorithm.is_empty()
        && algorithm.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '_' | '-')
        })
        && encoded.len() >= 32
        && encoded.len() <= 128
        && encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | '_' | '-'))
}

// ------------------------------------------------------------------------- credentials

/// A registry username and password (an ACR admin user, or a token and its password).
/// `Debug` shows the username only.
#[derive(Debug, Clone)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: Secret,
}

// ----------------------------------------------------------------------------- outcome

// ---------------------------------------------------------------------- WWW-Authenticate

/// One challenge of a `WWW-Authenticate` header: its scheme (lower case) and parameters
/// (names lower case, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// The challenges of one `WWW-Authenticate` value (RFC 9110 §11.6.1): several may share
/// a header (`Bearer realm="a", Basic realm="b"`), values may be quoted strings holding
/// commas and `\`-escapes, schemes and parameter names are case-insensitive.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && matches!(s[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        while i < s.len() && matches!(s[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            while i < s.len() && matches!(s[i], b' ' | b'\t' | b',') {
                i += 1;
            }
            let start = i;
            let name = token(&mut i);
            skip_ws(&mut i);
            if name.is_empty() || i >= s.len() || s[i] != b'=' {
                // Not `name=`: the next challenge's scheme (or the end, or junk).
                i = start;
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = String::new();
                let mut chars = header[i..].char_indices();
                let mut end = header.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                v.push(e);
                            }
                        }
                        '"' => {
                            end = i + k + 1;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                i = end;
                v
            } else {
                let start = i;
                while i < s.len() && !matches!(s[i], b',' | b' ' | b'\t') {
                    i += 1;
                }
                header[start..i].to_string()
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(challenge);
    }
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ------------------------------------------------------------------------------ client

/// The registry probe's HTTP client. Build one per run and share it.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    budget: Duration,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// For Azure and public registries: the system's resolver (and `*.localhost`).
    pub fn new(trust: Trust<'_>, settings: &ClientSettings) -> Result<Self, reqwest::Error> {
        Self::from_builder(http_builder(trust, settings)?)
    }

    /// Each `(host, address)` connects to that address instead of asking DNS
    /// (`ClientBuilder::resolve`); the address's port is used when the image names
    /// none, so `myacr.azurecr.io` can reach `127.0.0.1:PORT`. TLS still checks the
    /// host name. Proxies are not used.
    pub fn with_resolve(
        trust: Trust<'_>,
        settings: &ClientSettings,
        overrides: &[(&str, SocketAddr)],
    ) -> Result<Self, reqwest::Error> {
        let mut builder = http_builder(trust, settings)?.no_proxy();
        for (host, addr) in overrides {
            builder = builder.resolve(host, *addr);
        }
        Self::from_builder(builder)
    }

    /// Every host name connects to `addr`: the local emulator, which serves each
    /// registry host it knows on its one port (and answers others that they are not
    /// registries). Nothing leaves the machine. Proxies are not used.
    pub fn routed_to(
        trust: Trust<'_>,
        settings: &ClientSettings,
        addr: SocketAddr,
    ) -> Result<Self, reqwest::Error> {
        let builder = http_builder(trust, settings)?
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(Everything(addr)));
        Self::from_builder(builder)
    }

    /// Another budget for the whole of one probe than [`PROBE_BUDGET`].
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, reqwest::Error> {
        let http = builder
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if secure_enough(attempt.url()) {
                    attempt.follow()
                } else {
                    attempt.error("refused a redirect to a URL that is not https")
                }
            }))
            .build()?;
        Ok(RegistryClient {
            http,
            budget: PROBE_BUDGET,
        })
    }

    /// Whether `image` can be pulled with `credentials` (anonymously without). Never
    /// fails: every failure is an outcome, within the budget.
    pub async fn probe(
        &self,
        image: &ImageRef,
        credentials: Option<&RegistryCredentials>,
    ) -> Pullable {
        match tokio::time::timeout(self.budget, self.ask(image, credentials)).await {
            Ok(outcome) => outcome,
            Err(_) => Pullable::Unreachable {
                message: format!("no answer within {} s", self.budget.as_secs_f64()),
            },
        }
    }

    async fn ask(&self, image: &ImageRef, credentials: Option<&RegistryCredentials>) -> Pullable {
        let scheme = if is_loopback_host(image.api_host()) {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{}", image.api_host());
        let Ok(ping_url) = Url::parse(&format!("{base}/v2/")) else {
            return unreachable(format!("`{base}` is not a URL"));
        };

        // 1. The challenge. An Azure Container Registry's is known from its name: its
        // token is asked alongside, and used if the challenge is the one expected.
        let expected = acr_challenge(image.api_host());
        let ping = self.send(self.http.get(ping_url.clone()), &ping_url);
        let (ping, early_token) = match &expected {
            Some(challenge) => {
                let (ping, token) = tokio::join!(ping, self.token(challenge, image, credentials));
                (ping, Some(token))
            }
            None => (ping.await, None),
        };
        let ping = match ping {
            Ok(r) => r,
            Err(message) => return unreachable(message),
        };
        let auth = match ping.status {
            StatusCode::OK => Auth::None,
            StatusCode::UNAUTHORIZED => {
                let challenges = ping.challenges();
                if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
                    let token = match (early_token, &expected) {
                        (Some(token), Some(asked)) if same_token_request(asked, bearer) => token,
                        _ => self.token(bearer, image, credentials).await,
                    };
                    match token {
                        Ok(token) => Auth::Bearer(token),
                        Err(outcome) => return outcome,
                    }
                } else if challenges.iter().any(|c| c.scheme == "basic") {
                    match credentials {
                        Some(c) => Auth::Basic(c),
                        None => {
                            return Pullable::Unauthorized {
                                message: ping.message_or(
                                    "the registry wants credentials and none were given",
                                ),
                            };
                        }
                    }
                } else {
                    return Pullable::Unauthorized {
                        message: ping.message_or("the registry wants an authentication scheme other than Bearer or Basic"),
                    };
                }
            }
            status => return unreachable(ping.unexpected(&format!("GET {ping_url}"), status)),
        };

        // 2. The manifest.
        let Ok(manifest_url) = Url::parse(&format!(
            "{base}/v2/{}/manifests/{}",
            image.repository,
            image.reference.as_str()
        )) else {
            return unreachable(format!("`{base}` is not a URL"));
        };
        let head = self
            .http
            .head(manifest_url.clone())
            .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT);
        let head = match self.send(auth.apply(head), &manifest_url).await {
            Ok(r) => r,
            Err(message) => return unreachable(message),
        };
        if head.status == StatusCode::OK {
            return Pullable::Yes {
                digest: head.digest().or_else(|| match &image.reference {
                    Reference::Digest(d) => Some(d.clone()),
                    Reference::Tag(_) => None,
                }),
            };
        }
        // A HEAD answer has no body: ask once more by GET for the registry's error code.
        // If that fails, the HEAD's status and challenge decide alone.
        let get = self
            .http
            .get(manifest_url.clone())
            .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT);
        let answer = match self.send(auth.apply(get), &manifest_url).await {
            Ok(get) if get.status == StatusCode::OK => {
                return Pullable::Yes {
                    digest: get.digest(),
                };
            }
            Ok(get) if get.status == head.status => get,
            _ => head,
        };
        classify_manifest(&answer, &auth, credentials.is_some(), &manifest_url)
    }

    /// A token from the realm of a Bearer challenge, with Basic credentials when given.
    async fn token(
        &self,
        challenge: &Challenge,
        image: &ImageRef,
        credentials: Option<&RegistryCredentials>,
    ) -> Result<Secret, Pullable> {
        let Some(realm) = challenge.param("realm") else {
            return Err(unreachable(
                "the registry's Bearer challenge names no realm".to_string(),
            ));
        };
        let Ok(mut url) = Url::parse(realm) else {
            return Err(unreachable(format!(
                "the registry's token realm `{}` is not a URL",
                bounded(realm, 200)
            )));
        };
        if !secure_enough(&url) {
            return Err(unreachable(format!(
                "refused to ask for a token at `{}`: not https",
                shown_url(&url)
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &format!("repository:{}:pull", image.repository));
        }
        let mut request = self.http.get(url.clone());
        if let Some(c) = credentials {
            request = request.basic_auth(&c.username, Some(c.password.expose()));
        }
        let answer = self.send(request, &url).await.map_err(unreachable)?;
        match answer.status {
            StatusCode::OK => {
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                match serde_json::from_slice::<Token>(&answer.body) {
                    Ok(Token { token: Some(t), .. })
                    | Ok(Token {
                        access_token: Some(t),
                        ..
                    }) if !t.is_empty() => Ok(Secret::new(t)),
                    _ => Err(unreachable(format!(
                        "the token answer from {} holds no token",
                        shown_url(&url)
                    ))),
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Pullable::Unauthorized {
                message: answer.message_or(if credentials.is_some() {
                    "the token endpoint refused the username and password"
                } else {
                    "the token endpoint refused an anonymous pull"
                }),
            }),
            status => Err(unreachable(
                answer.unexpected(&format!("GET {}", shown_url(&url)), status),
            )),
        }
    }

    /// Sends a request and reads at most [`MAX_BODY`] of its body. `Err` is a message.
    async fn send(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Answer, String> {
        let request = request.build().map_err(|e| transport(url, &e))?;
        let method = request.method().clone();
        let response = match self.http.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(target: "amlspec::registry", %method, url = %shown_url(url), error = %transport(url, &e), "registry request failed");
                return Err(transport(url, &e));
            }
        };
        let status = response.status();
        tracing::debug!(target: "amlspec::registry", %method, url = %shown_url(url), status = status.as_u16(), "registry answered");
        let headers = response.headers().clone();
        let body = read_bounded(response).await;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// How the manifest request authenticates.
enum Auth<'c> {
    None,
    Basic(&'c RegistryCredentials),
    Bearer(Secret),
}

impl Auth<'_> {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Basic(c) => request.basic_auth(&c.username, Some(c.password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

/// A manifest request that did not answer 200.
fn classify_manifest(
    answer: &Answer,
    auth: &Auth<'_>,
    with_credentials: bool,
    url: &Url,
) -> Pullable {
    let code = answer.error_code().unwrap_or_default();
    let insufficient_scope = answer
        .challenges()
        .iter()
        .any(|c| c.param("error") == Some("insufficient_scope"));
    match (answer.status, code.as_str()) {
        (_, "MANIFEST_UNKNOWN" | "TAG_INVALID" | "MANIFEST_BLOB_UNKNOWN") => Pullable::MissingTag {
            message: answer.message_or("manifest unknown"),
        },
        (_, "NAME_UNKNOWN" | "NAME_INVALID") => Pullable::MissingRepository {
            message: answer.message_or("repository name not known to registry"),
        },
        (StatusCode::NOT_FOUND, _) => Pullable::MissingTag {
            message: answer.message_or(
                "the registry has no manifest by that reference (HTTP 404, no error code)",
            ),
        },
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) if !with_credentials => {
            Pullable::Unauthorized {
                message: answer.message_or("the repository needs credentials, and none were given"),
            }
        }
        (StatusCode::FORBIDDEN, _) => Pullable::Denied {
            message: answer.message_or("forbidden (HTTP 403)"),
        },
        (StatusCode::UNAUTHORIZED, "DENIED") => Pullable::Denied {
            message: answer.message_or("denied"),
        },
        (StatusCode::UNAUTHORIZED, _) if insufficient_scope => Pullable::Denied {
            message: answer.message_or("insufficient_scope"),
        },
        // A token was granted for this scope and still refused; or Basic credentials
        // were refused outright.
        (StatusCode::UNAUTHORIZED, _) => match auth {
            Auth::Bearer(_) => Pullable::Denied {
                message: answer.message_or("the registry refused the token it granted"),
            },
            _ => Pullable::Unauthorized {
                message: answer.message_or("the registry refused the username and password"),
            },
        },
        (status, _) => unreachable(answer.unexpected(&format!("HEAD {}", shown_url(url)), status)),
    }
}

/// A response, with at most [`MAX_BODY`] of its body.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn challenges(&self) -> Vec<Challenge> {
        self.headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect()
    }

    fn first_error(&self) -> Option<Value> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body.get("errors")?.get(0).cloned()
    }

    fn error_code(&self) -> Option<String> {
        self.first_error()?
            .get("code")?
            .as_str()
            .map(str::to_ascii_uppercase)
    }

    /// `CODE: message` from the error body, escaped and bounded; or `fallback`.
    fn message_or(&self, fallback: &str) -> String {
        let from_body = self.first_error().and_then(|e| {
            let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            match (code.is_empty(), message.is_empty()) {
                (true, true) => None,
                (false, true) => Some(code.to_string()),
                (true, false) => Some(message.to_string()),
                (false, false) => Some(format!("{code}: {message}")),
            }
        });
        let from_header = || {
            self.challenges()
                .into_iter()
                .find_map(|c| c.param("error_description").map(str::to_string))
        };
        clean(
            &from_body
                .or_else(from_header)
                .unwrap_or_else(|| fallback.to_string()),
        )
    }

    fn unexpected(&self, request: &str, status: StatusCode) -> String {
        let what = match status.as_u16() {
            429 => "throttled",
            500..=599 => "the registry failed",
            404 => "not a registry",
            _ => "unexpected answer",
        };
        format!(
            "{what}: {request} answered HTTP {}: {}",
            status.as_u16(),
            self.message_or("(no error body)")
        )
    }

    fn digest(&self) -> Option<String> {
        self.headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|d| valid_digest(d))
            .map(str::to_string)
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    // A body that breaks off is kept as far as it came: only error codes are read from it.
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_BODY {
            break;
        }
    }
    out
}

fn unreachable(message: String) -> Pullable {
    Pullable::Unreachable {
        message: clean(&message),
    }
}

/// A transport failure, its causes joined, without the URL's query.
fn transport(url: &Url, error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else {
        let mut parts: Vec<String> = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
        while let Some(e) = source {
            let text = e.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = e.source();
        }
        if parts.is_empty() {
            parts.push(error.to_string());
        }
        parts.join(": ")
    };
    message.insert_str(0, &format!("{}: ", shown_url(url)));
    message
}

/// A URL for messages and logs: no query (a realm's query may carry anything), no
/// user info.
fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Control and invisible characters escaped, whitespace runs collapsed, at most
/// [`MAX_MESSAGE`] characters.
fn clean(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::diagnostic::escape(&bounded(&collapsed, MAX_MESSAGE)).into_owned()
}

fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The domains of Azure Container Registry (public cloud, Azure China, US Government).
const ACR_DOMAINS: [&str; 3] = [".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// The Bearer challenge an Azure Container Registry at `host` sends
/// (`realm="https://{host}/oauth2/token",service="{host}"`), known from its name alone;
/// `None` for any other registry, or a host with a port.
fn acr_challenge(host: &str) -> Option<Challenge> {
    let host = host.to_ascii_lowercase();
    let acr = ACR_DOMAINS
        .iter()
        .any(|domain| host.len() > domain.len() && host.ends_with(domain));
    acr.then(|| Challenge {
        scheme: "bearer".to_string(),
        params: BTreeMap::from([
            ("realm".to_string(), format!("https://{host}/oauth2/token")),
            ("service".to_string(), host),
        ]),
    })
}

/// Whether a token asked with challenge `a` is the one `b` asks for:
/// [`RegistryClient::token`] uses only the realm and the service.
fn same_token_request(a: &Challenge, b: &Challenge) -> bool {
    a.param("realm") == b.param("realm") && a.param("service") == b.param("service")
}

/// https anywhere; plain http only to a loopback host.
fn secure_enough(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(is_loopback_host),
        _ => false,
    }
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 or `::1`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Resolves every name to one address (the emulator's).
struct Everything(SocketAddr);

impl reqwest::dns::Resolve for Everything {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = self.0;
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_acr_challenge_is_known_from_the_host_name_alone() {
        let expected = parse_challenges(
            r#"Bearer realm="https://my.azurecr.io/oauth2/token",service="my.azurecr.io""#,
        );
        assert_eq!(acr_challenge("my.azurecr.io").as_ref(), expected.first());
        assert_eq!(acr_challenge("My.AzureCR.io").as_ref(), expected.first());
        for host in ["a.azurecr.cn", "a.azurecr.us"] {
            assert!(acr_challenge(host).is_some(), "{host}");
        }
        for host in [
            "azurecr.io",
            ".azurecr.io",
            "my.azurecr.io:443",
            "my.azurecr.io.evil.example",
            "myazurecr.io",
            "ghcr.io",
            "127.0.0.1:5000",
        ] {
            assert_eq!(acr_challenge(host), None, "{host}");
        }
    }

    #[test]
    fn a_token_is_reused_only_for_the_same_realm_and_service() {
        let one = |header: &str| parse_challenges(header).remove(0);
        let asked = acr_challenge("my.azurecr.io").unwrap();
        for (header, same) in [
            (
                r#"Bearer realm="https://my.azurecr.io/oauth2/token",service="my.azurecr.io""#,
                true,
            ),
            // A scope the ping names does not change the token asked (it asks its own).
            (
                r#"bearer service="my.azurecr.io",realm="https://my.azurecr.io/oauth2/token",scope="x""#,
                true,
            ),
            (
                r#"Bearer realm="https://login.example/token",service="my.azurecr.io""#,
                false,
            ),
            (
                r#"Bearer realm="https://my.azurecr.io/oauth2/token",service="other""#,
                false,
            ),
            (
                r#"Bearer realm="https://my.azurecr.io/oauth2/token""#,
                false,
            ),
        ] {
            assert_eq!(same_token_request(&asked, &one(header)), same, "{header}");
        }
    }

    #[test]
    fn challenges_parse_as_registries_send_them() {
        type Expected<'a> = Vec<(&'a str, Vec<(&'a str, &'a str)>)>;
        let cases: Vec<(&str, Expected)> = vec![
            (
                r#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io""#,
                vec![(
                    "bearer",
                    vec![
                        ("realm", "https://r.azurecr.io/oauth2/token"),
                        ("service", "r.azurecr.io"),
                    ],
                )],
            ),
            // Quoted commas, `\"` escapes, spaces around `=` and `,`.
            (
                r#"bearer realm = "https://a/t?x=1,2" , scope="repository:a/b:pull,push", error="say \"no\"""#,
                vec![(
                    "bearer",
                    vec![
                        ("realm", "https://a/t?x=1,2"),
                        ("scope", "repository:a/b:pull,push"),
                        ("error", "say \"no\""),
                    ],
                )],
            ),
            // Case-insensitive scheme and names; no service.
            (
                r#"BEARER Realm="https://auth/token""#,
                vec![("bearer", vec![("realm", "https://auth/token")])],
            ),
            // Unquoted values; two challenges in one value.
            (
                r#"Basic realm=Registry, Bearer realm="https://t",service=s"#,
                vec![
                    ("basic", vec![("realm", "Registry")]),
                    ("bearer", vec![("realm", "https://t"), ("service", "s")]),
                ],
            ),
            ("Basic", vec![("basic", vec![])]),
            ("", vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![("bearer", vec![("realm", "unterminated")])],
            ),
        ];
        for (header, expected) in cases {
            let expected: Vec<Challenge> = expected
                .into_iter()
                .map(|(scheme, p)| Challenge {
                    scheme: scheme.to_string(),
                    params: params(&p),
                })
                .collect();
            assert_eq!(parse_challenges(header), expected, "{header}");
        }
    }

    #[test]
    fn junk_challenges_end_without_panicking() {
        for header in ["=", ",,,", "Bearer =x", "Bearer realm=\"é\", ü", "\"x\""] {
            let _ = parse_challenges(header);
        }
    }

    #[test]
    fn references_normalize_as_docker_does() {
        let tag = |t: &str| Reference::Tag(t.to_string());
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(String, &str, &str, Reference)> = vec![
            (
                "myacr.azurecr.io/team/app:1.0".into(),
                "myacr.azurecr.io",
                "team/app",
                tag("1.0"),
            ),
            (
                "MyAcr.AzureCR.io/team/app".into(),
                "myacr.azurecr.io",
                "team/app",
                tag("latest"),
            ),
            (
                "localhost:5000/app:v1".into(),
                "localhost:5000",
                "app",
                tag("v1"),
            ),
            (
                "reg.example:8443/a/b/c".into(),
                "reg.example:8443",
                "a/b/c",
                tag("latest"),
            ),
            ("[::1]:5000/app:v1".into(), "[::1]:5000", "app", tag("v1")),
            (
                format!("team/app@{digest}"),
                "docker.io",
                "team/app",
                Reference::Digest(digest.clone()),
            ),
            (
                format!("r.io/app:v1@{digest}"),
                "r.io",
                "app",
                Reference::Digest(digest.clone()),
            ),
            (
                "ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                tag("latest"),
            ),
            (
                "ubuntu:22.04".into(),
                "docker.io",
                "library/ubuntu",
                tag("22.04"),
            ),
            (
                "docker.io/ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                tag("latest"),
            ),
            (
                "index.docker.io/library/ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                tag("latest"),
            ),
            (
                "fastdotai/fastai2:latest".into(),
                "docker.io",
                "fastdotai/fastai2",
                tag("latest"),
            ),
        ];
        for (text, registry, repository, reference) in cases {
            let image = ImageRef::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (
                    image.registry.as_str(),
                    image.repository.as_str(),
                    &image.reference
                ),
                (registry, repository, &reference),
                "{text}"
            );
        }
        assert_eq!(
            ImageRef::parse("ubuntu").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            ImageRef::parse("r.azurecr.io/a:b").unwrap().to_string(),
            "r.azurecr.io/a:b"
        );
    }

    #[test]
    fn bad_references_say_which_part_is_wrong() {
        for (text, expected) in [
            ("", "empty"),
            ("myacr.azurecr.io/Team/App:1", "repository"),
            ("Team/App", "repository"),
            ("r.io/app:-x", "tag"),
            ("r.io/app@sha256:abc", "digest"),
            ("r.io/app@md5", "digest"),
            ("r.io:99999/app", "host"),
            ("bad_host.io/app", "host"),
            ("r.io/", "repository"),
            ("r.io/a//b", "repository"),
        ] {
            let error = ImageRef::parse(text).expect_err(text);
            let kind = match error {
                ReferenceError::Empty => "empty",
                ReferenceError::Host { .. } => "host",
                ReferenceError::Repository { .. } => "repository",
                ReferenceError::Tag { .. } => "tag",
                ReferenceError::Digest { .. } => "digest",
            };
            assert_eq!(kind, expected, "{text}: {error}");
        }
        // Control characters in the input are escaped in the message.
        let error = ImageRef::parse("r.io/a\u{1b}[2J").unwrap_err().to_string();
        assert!(!error.contains('\u{1b}'), "{error}");
    }

    #[test]
    fn only_https_or_loopback_http_is_secure_enough() {
        for (url, ok) in [
            ("https://r.azurecr.io/oauth2/token", true),
            ("http://r.azurecr.io/oauth2/token", false),
            ("http://127.0.0.1:5000/token", true),
            ("http://localhost/token", true),
            ("http://acct.blob.core.localhost:1/x", true),
            ("http://[::1]:8080/x", true),
            ("http://127.0.0.1.evil.com/x", false),
            ("ftp://127.0.0.1/x", false),
        ] {
            assert_eq!(secure_enough(&Url::parse(url).unwrap()), ok, "{url}");
        }
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("myacr.azurecr.io"));
    }

    #[test]
    fn messages_are_escaped_collapsed_and_bounded() {
        let answer = |body: &str| Answer {
            status: StatusCode::NOT_FOUND,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        let a = answer(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\n  tagged by \"x\" is \u001b[31mnot found"}]}"#,
        );
        let m = a.message_or("fallback");
        assert!(m.starts_with("MANIFEST_UNKNOWN: manifest tagged by"), "{m}");
        assert!(!m.contains('\u{1b}') && !m.contains('\n'), "{m}");
        let long = format!(
            r#"{{"errors":[{{"code":"X","message":"{}"}}]}}"#,
            "y".repeat(5000)
        );
        assert_eq!(
            answer(&long).message_or("").chars().count(),
            MAX_MESSAGE + 1
        );
        assert_eq!(answer("not json").message_or("fallback"), "fallback");
        assert_eq!(
            answer(r#"{"errors":[]}"#).message_or("fallback"),
            "fallback"
        );
    }

    #[test]
    fn credentials_show_the_username_only() {
        let c = RegistryCredentials {
            username: "user".into(),
            password: Secret::new("canary-Pa55".into()),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("user") && !shown.contains("canary"),
            "{shown}"
        );
    }

    #[test]
    fn only_answers_that_say_no_block() {
        assert!(!Pullable::Yes { digest: None }.blocks());
        assert!(
            !Pullable::Unreachable {
                message: String::new()
            }
            .blocks()
        );
        for p in [
            Pullable::MissingTag {
                message: String::new(),
            },
            Pullable::MissingRepository {
                message: String::new(),
            },
            Pullable::Unauthorized {
                message: String::new(),
            },
            Pullable::Denied {
                message: String::new(),
            },
        ] {
            assert!(p.blocks(), "{p}");
        }
    }
}
