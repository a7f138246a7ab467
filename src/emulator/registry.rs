//! Container registries: the read side of the OCI distribution API as Azure Container
//! Registry serves it, one registry per host name, reached on the emulator's own port by
//! the `Host` header (`myregistry.azurecr.io`).
//!
//! Input: requests to `/v2/...` and `/oauth2/token` for a seeded host; output: replies in
//! ACR's shapes. Auth is ACR's: `GET /v2/` challenges with
//! `WWW-Authenticate: Bearer realm="{scheme}://{host}/oauth2/token",service="{host}"`, the
//! token endpoint takes HTTP Basic username:password (GET) or a password / refresh-token
//! grant (POST form) and returns `{"access_token"}`, and data-plane calls take that bearer
//! token (or Basic directly, as ACR allows). Errors are the distribution error body
//! `{"errors":[{"code","message","detail"}]}`.
//!
//! Passwords are kept only as salted SHA-256 hashes and never logged. Registries live in
//! memory with the emulator's other settings; they are seeded through [`super::Admin`],
//! `/admin/registries/...` or [`super::EmulatorConfig::registries`]. Images are generated:
//! an OCI image manifest with a config blob and one empty layer, so a real client can
//! inspect them.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::reply::{Reply, ReplyBody};
use super::util::query_get;
use super::world::World;
use crate::oci::{valid_repository, valid_tag};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Media type of the manifests the emulator generates.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Lifetime of access and refresh tokens, seconds.
const TOKEN_SECONDS: i64 = 3600;
const ACR_AUTH_MESSAGE: &str =
    "authentication required, visit https://aka.ms/acr/authorization for more information.";

/// A registry to create: its host, who may sign in and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySeed {
    /// Host name clients use, e.g. `myregistry.azurecr.io` (no scheme, no port).
    pub host: String,
    #[serde(default)]
    pub users: Vec<RegistryUser>,
    #[serde(default)]
    pub repositories: Vec<RepositorySeed>,
    /// Anyone may pull, as from Docker Hub or Microsoft Container Registry (or an ACR
    /// with anonymous pull enabled): the token endpoint gives a pull token to a caller
    /// without credentials. Data-plane calls still need a token.
    #[serde(default)]
    pub anonymous_pull: bool,
}

/// A user of a registry (an ACR admin user or a token with a scope map).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryUser {
    pub username: String,
    /// Read from seeds, never written out.
    #[serde(skip_serializing)]
    pub password: String,
    /// Repositories this user may pull; `None`: every repository.
    #[serde(default)]
    pub repositories: Option<Vec<String>>,
}

impl std::fmt::Debug for RegistryUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("repositories", &self.repositories)
            .finish()
    }
}

/// A repository and the tags to generate images for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositorySeed {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What a registry holds, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    pub host: String,
    pub users: Vec<String>,
    /// Repository -> tag -> manifest digest (`sha256:...`).
    pub repositories: BTreeMap<String, BTreeMap<String, String>>,
}

struct User {
    salt: [u8; 16],
    hash: [u8; 32],
    repositories: Option<BTreeSet<String>>,
}

impl User {
    fn new(password: &str, repositories: Option<Vec<String>>) -> User {
        let salt = *uuid::Uuid::new_v4().as_bytes();
        User {
            hash: password_hash(&salt, password),
            salt,
            repositories: repositories
                .map(|r| r.into_iter().map(|n| n.to_ascii_lowercase()).collect()),
        }
    }

    fn password_is(&self, password: &str) -> bool {
        constant_time_eq(&password_hash(&self.salt, password), &self.hash)
    }

    fn may_pull(&self, repository: &str) -> bool {
        self.repositories
            .as_ref()
            .is_none_or(|r| r.contains(&repository.to_ascii_lowercase()))
    }
}

fn password_hash(salt: &[u8], password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Default)]
struct Repository {
    tags: BTreeMap<String, String>,
    /// Digest -> manifest bytes.
    manifests: BTreeMap<String, Bytes>,
    /// Digest -> blob bytes.
    blobs: BTreeMap<String, Bytes>,
}

/// One registry's state.
pub(crate) struct Registry {
    host: String,
    users: BTreeMap<String, User>,
    /// Repository names are lower case, as the distribution spec requires.
    repositories: BTreeMap<String, Repository>,
    /// Images generated so far: makes every push of a tag a new digest.
    generation: u64,
    anonymous_pull: bool,
}

/// The registries of an emulator, by host (lower case, no port).
#[derive(Default)]
pub(crate) struct Registries {
    by_host: BTreeMap<String, Registry>,
}

/// Why a registry could not be seeded or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SeedError {
    #[error("no registry `{0}`")]
    NoSuchRegistry(String),
    #[error("{0}")]
    Invalid(String),
}

/// Host without port, lower case.
pub(crate) fn host_key(host: &str) -> String {
    let h = host.trim();
    let h = match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match h.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
                name
            }
            _ => h,
        },
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Registries {
    pub(crate) fn knows(&self, host: &str) -> bool {
        self.by_host.contains_key(&host_key(host))
    }

    /// Creates (or replaces) a registry.
    pub(crate) fn seed(&mut self, seed: RegistrySeed) -> Result<RegistryInfo, SeedError> {
        let key = host_key(&seed.host);
        if !valid_host(&key) {
            return Err(SeedError::Invalid(format!(
                "`{}` is not a host name",
                seed.host
            )));
        }
        let mut registry = Registry {
            host: key.clone(),
            users: BTreeMap::new(),
            repositories: BTreeMap::new(),
            generation: 0,
            anonymous_pull: seed.anonymous_pull,
        };
        for user in seed.users {
            registry.add_user(user)?;
        }
        for repo in seed.repositories {
            registry
                .repositories
                .entry(repo.name.to_ascii_lowercase())
                .or_default();
            for tag in repo.tags {
                registry.push(&repo.name, &tag)?;
            }
        }
        let info = registry.info();
        self.by_host.insert(key, registry);
        Ok(info)
    }

    pub(crate) fn remove(&mut self, host: &str) -> bool {
        self.by_host.remove(&host_key(host)).is_some()
    }

    pub(crate) fn info(&self, host: &str) -> Option<RegistryInfo> {
        self.by_host.get(&host_key(host)).map(Registry::info)
    }

    pub(crate) fn list(&self) -> Vec<RegistryInfo> {
        self.by_host.values().map(Registry::info).collect()
    }

    /// Generates a new image and points `repository:tag` at it; returns its digest.
    pub(crate) fn push(
        &mut self,
        host: &str,
        repository: &str,
        tag: &str,
    ) -> Result<String, SeedError> {
        self.by_host
            .get_mut(&host_key(host))
            .ok_or_else(|| SeedError::NoSuchRegistry(host.to_string()))?
            .push(repository, tag)
    }

    /// Removes a tag (its manifest stays reachable by digest, as in a registry).
    pub(crate) fn untag(
        &mut self,
        host: &str,
        repository: &str,
        tag: &str,
    ) -> Result<bool, SeedError> {
        let registry = self
            .by_host
            .get_mut(&host_key(host))
            .ok_or_else(|| SeedError::NoSuchRegistry(host.to_string()))?;
        Ok(registry
            .repositories
            .get_mut(&repository.to_ascii_lowercase())
            .is_some_and(|r| r.tags.remove(tag).is_some()))
    }

    /// Sets (or adds) a user's password and repositories.
    pub(crate) fn set_user(&mut self, host: &str, user: RegistryUser) -> Result<(), SeedError> {
        let registry = self
            .by_host
            .get_mut(&host_key(host))
            .ok_or_else(|| SeedError::NoSuchRegistry(host.to_string()))?;
        registry.add_user(user)
    }
}

impl Registry {
    /// Adds a user, or replaces the one of that name. Basic credentials cannot carry a
    /// username that is empty or holds `:`.
    fn add_user(&mut self, user: RegistryUser) -> Result<(), SeedError> {
        if user.username.is_empty() || user.username.contains(':') {
            return Err(SeedError::Invalid(format!(
                "the username `{}` is empty or contains ':'",
                user.username
            )));
        }
        self.users.insert(
            user.username.clone(),
            User::new(&user.password, user.repositories),
        );
        Ok(())
    }

    fn info(&self) -> RegistryInfo {
        RegistryInfo {
            host: self.host.clone(),
            users: self.users.keys().cloned().collect(),
            repositories: self
                .repositories
                .iter()
                .map(|(name, r)| (name.clone(), r.tags.clone()))
                .collect(),
        }
    }

    fn push(&mut self, repository: &str, tag: &str) -> Result<String, SeedError> {
        let name = repository.to_ascii_lowercase();
        if !valid_repository(&name) {
            return Err(SeedError::Invalid(format!(
                "`{repository}` is not a repository name"
            )));
        }
        if !valid_tag(tag) {
            return Err(SeedError::Invalid(format!("`{tag}` is not a tag")));
        }
        self.generation += 1;
        // An empty tar archive: two 512-byte zero blocks.
        let layer = Bytes::from(vec![0u8; 1024]);
        let layer_digest = sha256_digest(&layer);
        let config = Bytes::from(
            serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "Labels": {
                        "org.opencontainers.image.ref.name": format!("{}/{name}:{tag}", self.host),
                        "amlspec.emulator.generation": self.generation.to_string(),
                    },
                },
                "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
                "history": [{ "created_by": "amlspec emulator", "empty_layer": false }],
            }))
            .unwrap_or_default(),
        );
        let config_digest = sha256_digest(&config);
        let manifest = Bytes::from(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": { "mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len() },
                "layers": [{ "mediaType": OCI_LAYER_TAR, "digest": layer_digest, "size": layer.len() }],
            }))
            .unwrap_or_default(),
        );
        let digest = sha256_digest(&manifest);
        let repo = self.repositories.entry(name).or_default();
        repo.blobs.insert(config_digest, config);
        repo.blobs.insert(layer_digest, layer);
        repo.manifests.insert(digest.clone(), manifest);
        repo.tags.insert(tag.to_string(), digest.clone());
        Ok(digest)
    }
}

// ------------------------------------------------------------------------------ tokens

/// What a token lets its bearer do.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grant {
    /// `access` or `refresh`.
    typ: String,
    /// Registry host.
    iss: String,
    /// Username.
    sub: String,
    /// Repositories the bearer may pull (access tokens only).
    #[serde(default)]
    pull: Vec<String>,
    /// Expiry, Unix seconds.
    exp: i64,
}

fn sign(key: &[u8], grant: &Grant) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).unwrap_or_default());
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("acr.{payload}.{sig}")
}

fn verify(key: &[u8], token: &str, now: i64) -> Option<Grant> {
    let rest = token.strip_prefix("acr.")?;
    let (payload, sig) = rest.split_once('.')?;
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(sig).ok()?).ok()?;
    let grant: Grant = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (grant.exp > now).then_some(grant)
}

// ----------------------------------------------------------------------------- serving

/// One registry request, as the server hands it over.
pub(crate) struct RegistryReq<'a> {
    pub method: &'a Method,
    pub host: &'a str,
    /// `{scheme}://{host as sent}`.
    pub base: &'a str,
    pub segs: &'a [String],
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Who is asking: a verified user (Basic) or the grant of a verified token.
enum Caller {
    Anonymous,
    BadCredentials,
    User(String),
    Token(Grant),
}

fn error_body(code: &str, message: &str, detail: Value) -> Value {
    json!({ "errors": [{ "code": code, "message": message, "detail": detail }] })
}

fn registry_reply(status: StatusCode, body: Option<Value>) -> Reply {
    let reply = match body {
        Some(v) => Reply::json(status, v),
        None => Reply::empty(status),
    };
    reply.header("docker-distribution-api-version", "registry/2.0")
}

fn challenge(req: &RegistryReq<'_>, scope: Option<&str>, insufficient: bool) -> String {
    let mut c = format!(
        "Bearer realm=\"{}/oauth2/token\",service=\"{}\"",
        req.base,
        host_key(req.host)
    );
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if insufficient {
        c.push_str(",error=\"insufficient_scope\"");
    }
    c
}

fn unauthorized(req: &RegistryReq<'_>, repository: Option<&str>, insufficient: bool) -> Reply {
    let scope = repository.map(|r| format!("repository:{r}:pull"));
    let detail = match repository {
        Some(r) => json!([{ "Type": "repository", "Name": r, "Action": "pull" }]),
        None => Value::Null,
    };
    let body = error_body("UNAUTHORIZED", ACR_AUTH_MESSAGE, detail);
    let reply = registry_reply(StatusCode::UNAUTHORIZED, Some(body));
    reply.header(
        "www-authenticate",
        challenge(req, scope.as_deref(), insufficient),
    )
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn caller(world: &World, registry: &Registry, headers: &HeaderMap) -> Caller {
    if let Some(token) = bearer(headers) {
        return match verify(&world.signing_key, token, world.now().unix_timestamp()) {
            Some(g) if g.typ == "access" && g.iss == registry.host => Caller::Token(g),
            _ => Caller::BadCredentials,
        };
    }
    if headers.get("authorization").is_some() {
        return match basic_credentials(headers) {
            Some((u, p))
                if registry
                    .users
                    .get(&u)
                    .is_some_and(|user| user.password_is(&p)) =>
            {
                Caller::User(u)
            }
            _ => Caller::BadCredentials,
        };
    }
    Caller::Anonymous
}

/// Serves one request for a seeded registry host.
pub(crate) fn handle(world: &World, req: &RegistryReq<'_>) -> Reply {
    let Some(registry) = world.registries.by_host.get(&host_key(req.host)) else {
        return registry_reply(
            StatusCode::NOT_FOUND,
            Some(error_body(
                "NAME_UNKNOWN",
                "registry not known to the emulator",
                Value::Null,
            )),
        );
    };
    let segs = req.segs;
    let first = segs.first().map(|s| s.to_ascii_lowercase());
    match first.as_deref() {
        Some("oauth2") => token_endpoint(world, registry, req),
        Some("v2") if segs.len() == 1 => {
            if !matches!(*req.method, Method::GET | Method::HEAD) {
                return unsupported();
            }
            match caller(world, registry, req.headers) {
                Caller::User(_) | Caller::Token(_) => {
                    registry_reply(StatusCode::OK, Some(json!({})))
                }
                _ => unauthorized(req, None, false),
            }
        }
        Some("v2") => content(world, registry, req),
        _ => registry_reply(
            StatusCode::NOT_FOUND,
            Some(error_body("NOT_FOUND", "no such endpoint", Value::Null)),
        ),
    }
}

fn unsupported() -> Reply {
    registry_reply(
        StatusCode::METHOD_NOT_ALLOWED,
        Some(error_body(
            "UNSUPPORTED",
            "The operation is unsupported. (The amlspec emulator's registries are read-only; seed them through /admin/registries.)",
            Value::Null,
        )),
    )
}

/// `/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`, `/v2/<name>/tags/list`.
fn content(world: &World, registry: &Registry, req: &RegistryReq<'_>) -> Reply {
    let segs = req.segs;
    let n = segs.len();
    let (repository, kind, reference) = if n >= 4 && segs[n - 2] == "tags" && segs[n - 1] == "list"
    {
        (segs[1..n - 2].join("/"), "tags", String::new())
    } else if n >= 4 && matches!(segs[n - 2].as_str(), "manifests" | "blobs") {
        (
            segs[1..n - 2].join("/"),
            segs[n - 2].as_str(),
            segs[n - 1].clone(),
        )
    } else {
        return registry_reply(
            StatusCode::NOT_FOUND,
            Some(error_body("NOT_FOUND", "no such endpoint", Value::Null)),
        );
    };
    if !matches!(*req.method, Method::GET | Method::HEAD) {
        return unsupported();
    }
    let head = *req.method == Method::HEAD;
    let allowed = match caller(world, registry, req.headers) {
        Caller::Anonymous | Caller::BadCredentials => {
            return unauthorized(req, Some(&repository), false);
        }
        Caller::User(u) => registry
            .users
            .get(&u)
            .is_some_and(|user| user.may_pull(&repository)),
        Caller::Token(g) => g.pull.iter().any(|r| r.eq_ignore_ascii_case(&repository)),
    };
    if !allowed {
        return unauthorized(req, Some(&repository), true);
    }
    let not_found = |code: &str, message: String, detail: Value| {
        registry_reply(
            StatusCode::NOT_FOUND,
            (!head).then(|| error_body(code, &message, detail)),
        )
    };
    let Some(repo) = registry.repositories.get(&repository.to_ascii_lowercase()) else {
        return not_found(
            "NAME_UNKNOWN",
            "repository name not known to registry".to_string(),
            json!({ "name": repository }),
        );
    };
    match kind {
        "tags" => {
            let tags: Vec<&String> = repo.tags.keys().collect();
            registry_reply(
                StatusCode::OK,
                Some(json!({ "name": repository, "tags": tags })),
            )
        }
        "manifests" => {
            let digest = if reference.starts_with("sha256:") {
                Some(reference.clone())
            } else {
                repo.tags.get(&reference).cloned()
            };
            let Some((digest, bytes)) =
                digest.and_then(|d| repo.manifests.get(&d).map(|b| (d, b.clone())))
            else {
                let (message, detail) = if reference.contains(':') {
                    (
                        "manifest unknown".to_string(),
                        json!({ "Digest": reference }),
                    )
                } else {
                    (
                        format!("manifest tagged by \"{reference}\" is not found"),
                        json!({ "Tag": reference }),
                    )
                };
                return not_found("MANIFEST_UNKNOWN", message, detail);
            };
            content_reply(bytes, OCI_MANIFEST, &digest)
        }
        _ => match repo.blobs.get(&reference) {
            Some(bytes) => content_reply(bytes.clone(), "application/octet-stream", &reference),
            None => not_found(
                "BLOB_UNKNOWN",
                "blob unknown to registry".to_string(),
                json!(reference),
            ),
        },
    }
}

/// A manifest or blob: its bytes (HEAD answers carry the length, not the bytes: the
/// server leaves the body out), media type and digest headers.
fn content_reply(bytes: Bytes, media_type: &str, digest: &str) -> Reply {
    Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: ReplyBody::Bytes(bytes),
    }
    .header("content-type", media_type.to_string())
    .header("docker-content-digest", digest.to_string())
    .header("etag", format!("\"{digest}\""))
    .header("docker-distribution-api-version", "registry/2.0")
}

/// Repositories asked for with `pull` in `repository:<name>:<actions>` scopes.
fn pull_scopes(values: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        for scope in value.split(' ') {
            let mut parts = scope.splitn(3, ':');
            let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind == "repository" && actions.split(',').any(|a| a == "pull" || a == "*") {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// `/oauth2/token`: GET with Basic credentials, or POST form with `grant_type=password`
/// (`username`, `password`) or `grant_type=refresh_token` (`refresh_token`).
fn token_endpoint(world: &World, registry: &Registry, req: &RegistryReq<'_>) -> Reply {
    let form: Vec<(String, String)> = if *req.method == Method::POST {
        form_urlencoded::parse(req.body).into_owned().collect()
    } else if *req.method == Method::GET {
        req.query.to_vec()
    } else {
        return unsupported();
    };
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let scopes: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let token_unauthorized = || {
        registry_reply(
            StatusCode::UNAUTHORIZED,
            Some(error_body("UNAUTHORIZED", ACR_AUTH_MESSAGE, Value::Null)),
        )
    };
    if let Some(service) = get("service").or_else(|| query_get(req.query, "service"))
        && host_key(service) != registry.host
    {
        return registry_reply(
            StatusCode::UNAUTHORIZED,
            Some(error_body(
                "UNAUTHORIZED",
                &format!(
                    "the service '{service}' is not this registry ('{}')",
                    registry.host
                ),
                Value::Null,
            )),
        );
    }
    let now = world.now().unix_timestamp();
    let (username, issue_refresh) = match (*req.method == Method::POST, get("grant_type")) {
        (true, Some("password")) => {
            let (Some(u), Some(p)) = (get("username"), get("password")) else {
                return token_unauthorized();
            };
            match registry.users.get(u) {
                Some(user) if user.password_is(p) => (u.to_string(), true),
                _ => return token_unauthorized(),
            }
        }
        (true, Some("refresh_token")) => {
            match get("refresh_token").and_then(|t| verify(&world.signing_key, t, now)) {
                Some(g)
                    if g.typ == "refresh"
                        && g.iss == registry.host
                        && registry.users.contains_key(&g.sub) =>
                {
                    (g.sub, false)
                }
                _ => return token_unauthorized(),
            }
        }
        (true, _) => {
            return registry_reply(
                StatusCode::BAD_REQUEST,
                Some(error_body(
                    "UNSUPPORTED",
                    "grant_type must be password or refresh_token",
                    Value::Null,
                )),
            );
        }
        (false, _) if registry.anonymous_pull && req.headers.get("authorization").is_none() => {
            (String::new(), false)
        }
        (false, _) => match basic_credentials(req.headers) {
            Some((u, p))
                if registry
                    .users
                    .get(&u)
                    .is_some_and(|user| user.password_is(&p)) =>
            {
                (u, false)
            }
            _ => return token_unauthorized(),
        },
    };
    // The empty username is the anonymous caller of a registry that allows it.
    let pull: Vec<String> = pull_scopes(&scopes)
        .into_iter()
        .filter(|r| {
            registry
                .users
                .get(&username)
                .map_or(username.is_empty(), |user| user.may_pull(r))
        })
        .collect();
    let access = sign(
        &world.signing_key,
        &Grant {
            typ: "access".into(),
            iss: registry.host.clone(),
            sub: username.clone(),
            pull,
            exp: now + TOKEN_SECONDS,
        },
    );
    let mut body = json!({ "access_token": access });
    if issue_refresh {
        body["refresh_token"] = json!(sign(
            &world.signing_key,
            &Grant {
                typ: "refresh".into(),
                iss: registry.host.clone(),
                sub: username,
                pull: Vec::new(),
                exp: now + 3 * TOKEN_SECONDS,
            },
        ));
    }
    registry_reply(StatusCode::OK, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_port_and_case() {
        for (given, key) in [
            ("MyRegistry.azurecr.io", "myregistry.azurecr.io"),
            ("myregistry.azurecr.io:8443", "myregistry.azurecr.io"),
            ("localhost:5000", "localhost"),
        ] {
            assert_eq!(host_key(given), key);
        }
    }

    #[test]
    fn names_follow_the_distribution_grammar() {
        assert!(valid_repository("fastdotai/fastai2"));
        assert!(valid_repository("a.b_c-d/e"));
        assert!(!valid_repository("Upper/case"));
        assert!(!valid_repository("trailing-/x"));
        assert!(valid_tag("latest") && valid_tag("_v1.2-rc"));
        assert!(!valid_tag("-x") && !valid_tag("a:b"));
    }

    #[test]
    fn pushes_make_new_digests_and_valid_manifests() {
        let mut r = Registries::default();
        r.seed(RegistrySeed {
            host: "reg.azurecr.io".into(),
            ..Default::default()
        })
        .unwrap();
        let a = r.push("reg.azurecr.io", "app", "latest").unwrap();
        let b = r.push("reg.azurecr.io", "app", "latest").unwrap();
        assert_ne!(a, b, "a moved tag is a new digest");
        let reg = &r.by_host["reg.azurecr.io"];
        let repo = &reg.repositories["app"];
        let manifest: Value = serde_json::from_slice(&repo.manifests[&b]).unwrap();
        assert_eq!(sha256_digest(&repo.manifests[&b]), b);
        for d in [
            &manifest["config"]["digest"],
            &manifest["layers"][0]["digest"],
        ] {
            let blob = &repo.blobs[d.as_str().unwrap()];
            assert_eq!(&sha256_digest(blob), d.as_str().unwrap());
        }
    }

    #[test]
    fn tokens_verify_only_with_their_key_and_before_expiry() {
        let g = Grant {
            typ: "access".into(),
            iss: "h".into(),
            sub: "u".into(),
            pull: vec!["r".into()],
            exp: 100,
        };
        let t = sign(b"key", &g);
        assert!(verify(b"key", &t, 99).is_some());
        assert!(verify(b"key", &t, 100).is_none());
        assert!(verify(b"other", &t, 99).is_none());
    }

    #[test]
    fn passwords_are_not_kept_in_clear() {
        let u = User::new("s3cret", None);
        assert!(u.password_is("s3cret"));
        assert!(!u.password_is("s3cret "));
        assert!(!u.hash.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn scopes_name_pulled_repositories() {
        assert_eq!(
            pull_scopes(&[
                "repository:a/b:pull",
                "repository:c:push",
                "repository:d:pull,push registry:catalog:*"
            ]),
            vec!["a/b".to_string(), "d".to_string()]
        );
    }
}
