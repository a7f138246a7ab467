//! Microsoft Entra ID (Azure AD) stand-in: the v2.0 and v1 token endpoints (client secret
//! and client assertion grants), the discovery documents credential libraries read, and
//! bearer-token checks for ARM and blob requests.
//!
//! Tokens are JWTs signed with HS256 under a key kept in the state folder, so they stay
//! valid across restarts. Only the emulator checks them, so no JWKS is published.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;

use super::config::{EmulatorConfig, ServicePrincipal};
use super::reply::{ArmError, Reply};
use super::util::rfc3339;
use super::world::World;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Claims of an emulator-issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub appid: String,
    pub azp: String,
    pub sub: String,
    pub ver: String,
    pub idtyp: String,
    /// Emulator-only: the token epoch at issue time (see `Admin::expire_tokens`).
    #[serde(default)]
    pub epoch: u64,
}

/// The object id the emulator gives a client id (stable, derived).
pub(crate) fn object_id_for(client_id: &str) -> String {
    let h = super::store::sha256_hex(format!("oid:{client_id}").as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn sign(key: &[u8], input: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac takes any key length");
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub(crate) fn issue_token(
    world: &World,
    config: &EmulatorConfig,
    base: &str,
    client_id: &str,
    audience: &str,
) -> (String, i64) {
    let now = world.now().unix_timestamp();
    let lifetime = config.token_lifetime.as_secs() as i64;
    let oid = object_id_for(client_id);
    let claims = Claims {
        aud: audience.to_string(),
        iss: format!("{base}/{}/v2.0", config.tenant_id),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        tid: config.tenant_id.clone(),
        oid: oid.clone(),
        appid: client_id.to_string(),
        azp: client_id.to_string(),
        sub: oid,
        ver: "2.0".to_string(),
        idtyp: "app".to_string(),
        epoch: world.token_epoch,
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"amlspec-emulator"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let input = format!("{header}.{payload}");
    let sig = sign(&world.signing_key, &input);
    (format!("{input}.{sig}"), lifetime)
}

fn decode_claims<T: for<'de> Deserialize<'de>>(token: &str) -> Option<(String, T, String)> {
    let mut parts = token.split('.');
    let header = parts.next()?;
    let payload = parts.next()?;
    let sig = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims = serde_json::from_slice(&bytes).ok()?;
    Some((format!("{header}.{payload}"), claims, sig.to_string()))
}

/// How clients reach this emulator: its own ARM audiences are its loopback URLs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served<'a> {
    pub scheme: &'a str,
    pub port: u16,
}

impl Served<'_> {
    /// ARM resource URIs, without a trailing slash: Azure's, and the emulator's own
    /// (custom clouds ask for `{resource manager URL}/.default`).
    fn arm_resources(&self) -> [String; 5] {
        let (scheme, port) = (self.scheme, self.port);
        [
            "https://management.azure.com".to_string(),
            "https://management.core.windows.net".to_string(),
            format!("{scheme}://127.0.0.1:{port}"),
            format!("{scheme}://localhost:{port}"),
            format!("{scheme}://[::1]:{port}"),
        ]
    }

    /// The storage account whose blob endpoint `resource` is (`{scheme}://{account}.blob.
    /// {suffix}` with or without the port), if it is one of this emulator's.
    fn blob_account<'r>(&self, resource: &'r str, config: &EmulatorConfig) -> Option<&'r str> {
        let rest = resource.strip_prefix(self.scheme)?.strip_prefix("://")?;
        let (account, host) = rest.split_once(".blob.")?;
        let suffix = config.storage_suffix.to_ascii_lowercase();
        let with_port = format!("{suffix}:{}", self.port);
        let valid = (3..=24).contains(&account.len())
            && account
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        (valid && (host == suffix || host == with_port)).then_some(account)
    }

    /// Whether the token endpoint may issue a token for `resource` (the emulator serves it).
    fn serves(&self, resource: &str, config: &EmulatorConfig) -> bool {
        let r = normalized(resource);
        self.arm_resources().contains(&r)
            || r == STORAGE_RESOURCE
            || self.blob_account(&r, config).is_some()
    }
}

/// Azure Storage's resource URI (any account).
const STORAGE_RESOURCE: &str = "https://storage.azure.com";

/// A resource or audience as compared: lower case, without one trailing slash (Azure
/// accepts ARM's audience with or without it).
fn normalized(resource: &str) -> String {
    let r = resource.to_ascii_lowercase();
    r.strip_suffix('/').map(str::to_string).unwrap_or(r)
}

/// The service a bearer token is presented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience<'a> {
    Arm,
    /// The blob service of one storage account.
    Storage {
        account: &'a str,
    },
}

/// Exact matches only: a prefix such as `https://127.0.0.1` would also admit other
/// ports and names like `https://localhost.evil.example`.
fn audience_ok(
    aud: &str,
    which: Audience<'_>,
    served: Served<'_>,
    config: &EmulatorConfig,
) -> bool {
    let aud = normalized(aud);
    match which {
        Audience::Arm => served.arm_resources().contains(&aud),
        Audience::Storage { account } => {
            aud == STORAGE_RESOURCE
                || served
                    .blob_account(&aud, config)
                    .is_some_and(|a| a.eq_ignore_ascii_case(account))
        }
    }
}

fn www_authenticate(config: &EmulatorConfig, base: &str, description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"{base}/{}\", error=\"invalid_token\", error_description=\"{description}\"",
        config.tenant_id
    )
}

/// Checks an `Authorization: Bearer` header; returns the token's claims.
pub(crate) fn check_bearer(
    world: &World,
    config: &EmulatorConfig,
    served: Served<'_>,
    base: &str,
    header: Option<&str>,
    which: Audience<'_>,
) -> Result<Claims, ArmError> {
    let unauthorized = |code: &str, message: String, description: &str| {
        ArmError::new(StatusCode::UNAUTHORIZED, code, message).with_header(
            "www-authenticate",
            www_authenticate(config, base, description),
        )
    };
    let Some(header) = header else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            "The authentication failed because of missing 'Authorization' header.",
        ));
    };
    let Some(token) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
    else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
                .into(),
            "The authentication failed because of an invalid 'Authorization' header.",
        ));
    };
    let invalid = || {
        unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            "The access token is invalid.",
        )
    };
    let token = token.trim();
    let claims = match world.verified_claims(token) {
        Some(claims) => claims,
        None => {
            let (input, claims, sig): (String, Claims, String) =
                decode_claims(token).ok_or_else(invalid)?;
            if sign(&world.signing_key, &input) != sig {
                return Err(invalid());
            }
            world.remember_verified(token, &claims);
            claims
        }
    };
    let now = world.now();
    let mut exp = OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now);
    if claims.epoch < world.token_epoch {
        // Revoked (`expire-tokens`): it expired when the first revocation after its issue
        // happened, and that is the expiry the answer states.
        let revoked_at = world
            .revocations
            .get(claims.epoch as usize)
            .copied()
            .unwrap_or(now);
        exp = exp.min(revoked_at).min(now);
    }
    if exp <= now {
        return Err(unauthorized(
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                rfc3339(exp),
                rfc3339(now)
            ),
            "The access token has expired.",
        ));
    }
    if claims.tid != config.tenant_id {
        return Err(unauthorized(
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer '{}'. It must match the tenant '{}' associated with this subscription.",
                claims.iss, config.tenant_id
            ),
            "The access token is from the wrong issuer.",
        ));
    }
    if !audience_ok(&claims.aud, which, served, config) {
        return Err(unauthorized(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.azure.com/'.",
                claims.aud
            ),
            "The access token has been obtained for the wrong audience.",
        ));
    }
    Ok(claims)
}

/// True when the principal may act on `path` (an ARM id or list path).
pub(crate) fn in_scope(config: &EmulatorConfig, claims: &Claims, path: &str) -> bool {
    let Some(sp) = config
        .principals
        .iter()
        .find(|p| p.client_id.eq_ignore_ascii_case(&claims.appid))
    else {
        return false;
    };
    let path = path.to_ascii_lowercase();
    if sp.scopes.is_empty() && config.any_subscription {
        return path.starts_with("/subscriptions/");
    }
    let scopes: Vec<String> = if sp.scopes.is_empty() {
        config
            .subscriptions
            .iter()
            .map(|s| format!("/subscriptions/{s}"))
            .collect()
    } else {
        sp.scopes.clone()
    };
    scopes.iter().any(|scope| {
        let scope = scope.trim_end_matches('/').to_ascii_lowercase();
        path == scope || path.starts_with(&format!("{scope}/"))
    })
}

fn aad_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: String,
    request_id: &str,
) -> Reply {
    let now = rfc3339(OffsetDateTime::now_utc());
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {request_id} Correlation ID: {request_id} Timestamp: {now}"
            ),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": request_id,
            "correlation_id": request_id,
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token` (v2 = true) or `/{tenant}/oauth2/token`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn token_endpoint(
    world: &World,
    config: &EmulatorConfig,
    served: Served<'_>,
    base: &str,
    tenant: &str,
    body: &[u8],
    v2: bool,
    request_id: &str,
) -> Reply {
    let form: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let bad = |error: &str, code: u32, description: String| {
        aad_error(
            StatusCode::BAD_REQUEST,
            error,
            code,
            description,
            request_id,
        )
    };
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return bad(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let Some(grant) = get("grant_type") else {
        return bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.".into(),
        );
    };
    if grant != "client_credentials" {
        return bad(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = get("client_id") else {
        return bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.".into(),
        );
    };
    let Some(sp) = config
        .principals
        .iter()
        .find(|p| p.client_id.eq_ignore_ascii_case(client_id))
    else {
        return bad(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    if let Err(reply) = check_client(
        world,
        sp,
        get("client_secret"),
        get("client_assertion_type"),
        get("client_assertion"),
        request_id,
    ) {
        return reply;
    }
    let audience = if v2 {
        let Some(scope) = get("scope") else {
            return bad(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.".into(),
            );
        };
        let resource = scope
            .split(' ')
            .find_map(|s| s.strip_suffix("/.default"))
            .map(str::to_string);
        match resource {
            Some(r) => r,
            None => {
                return bad(
                    "invalid_scope",
                    1002012,
                    format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                );
            }
        }
    } else {
        match get("resource") {
            Some(r) => r.to_string(),
            None => {
                return bad(
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'resource'.".into(),
                );
            }
        }
    };
    if !served.serves(&audience, config) {
        return bad(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {audience} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                config.tenant_id
            ),
        );
    }
    // A scope of "https://management.azure.com/.default" yields audience
    // "https://management.azure.com"; Entra adds the trailing slash for ARM.
    let aud = if audience.starts_with("https://management.") && !audience.ends_with('/') {
        format!("{audience}/")
    } else {
        audience.clone()
    };
    let (token, lifetime) = issue_token(world, config, base, &sp.client_id, &aud);
    if v2 {
        Reply::json(
            StatusCode::OK,
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }),
        )
    } else {
        let now = world.now().unix_timestamp();
        Reply::json(
            StatusCode::OK,
            json!({
                "token_type": "Bearer",
                "expires_in": lifetime.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "expires_on": (now + lifetime).to_string(),
                "not_before": now.to_string(),
                "resource": audience,
                "access_token": token,
            }),
        )
    }
}

fn check_client(
    world: &World,
    sp: &ServicePrincipal,
    secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    request_id: &str,
) -> Result<(), Reply> {
    let unauthorized = |code: u32, description: String| {
        aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
            request_id,
        )
    };
    match (secret, assertion) {
        (Some(secret), None) => match &sp.client_secret {
            Some(expected) if expected == secret => Ok(()),
            _ => Err(unauthorized(
                7000215,
                format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", sp.client_id),
            )),
        },
        (None, Some(assertion)) => {
            if assertion_type != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
                return Err(aad_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    7000219,
                    "'client_assertion' or 'client_secret' is required. client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.".into(),
                    request_id,
                ));
            }
            let claims: Option<(String, Value, String)> = decode_claims(assertion);
            let Some((_, claims, _)) = claims else {
                return Err(unauthorized(
                    50027,
                    "JWT token is invalid or malformed.".into(),
                ));
            };
            let iss = claims["iss"].as_str().unwrap_or_default();
            let sub = claims["sub"].as_str().unwrap_or_default();
            let exp = claims["exp"].as_i64().unwrap_or(0);
            let aud_ok = match &claims["aud"] {
                Value::String(a) => a == "api://AzureADTokenExchange",
                Value::Array(a) => a.iter().any(|x| x == "api://AzureADTokenExchange"),
                _ => false,
            };
            if exp <= world.now().unix_timestamp() {
                return Err(unauthorized(
                    700024,
                    "Client assertion is not within its valid time range.".into(),
                ));
            }
            let matched = sp
                .federated
                .iter()
                .any(|f| f.issuer == iss && f.subject == sub);
            if !aud_ok || !matched {
                return Err(unauthorized(
                    70021,
                    format!("No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.", claims["aud"]),
                ));
            }
            Ok(())
        }
        (Some(_), Some(_)) => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            7000218,
            "Only one of 'client_assertion' and 'client_secret' may be sent.".into(),
            request_id,
        )),
        (None, None) => Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            request_id,
        )),
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 form).
pub(crate) fn openid_configuration(config: &EmulatorConfig, base: &str, tenant: &str) -> Reply {
    let tenant =
        if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations") {
            config.tenant_id.as_str()
        } else {
            tenant
        };
    Reply::json(
        StatusCode::OK,
        json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": host_of(base),
            "cloud_graph_host_name": host_of(base),
            "msgraph_host": host_of(base),
        }),
    )
}

/// `GET /common/discovery/instance` (MSAL's instance discovery).
pub(crate) fn instance_discovery(config: &EmulatorConfig, base: &str) -> Reply {
    let host = host_of(base);
    Reply::json(
        StatusCode::OK,
        json!({
            "tenant_discovery_endpoint": format!("{base}/{}/v2.0/.well-known/openid-configuration", config.tenant_id),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host],
            }],
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`: empty, since tokens are HMAC-signed.
pub(crate) fn jwks() -> Reply {
    Reply::json(StatusCode::OK, json!({ "keys": [] }))
}

fn host_of(base: &str) -> String {
    base.split("://").nth(1).unwrap_or(base).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::reply::ReplyBody;
    use crate::emulator::store::Store;

    const SERVED: Served<'static> = Served {
        scheme: "http",
        port: 1,
    };

    fn config() -> EmulatorConfig {
        EmulatorConfig::default()
    }

    /// The JSON body of an answer.
    fn json_of(reply: &Reply) -> Value {
        let ReplyBody::Json(body) = &reply.body else {
            panic!("a JSON answer, not {:?}", reply.body)
        };
        (**body).clone()
    }

    /// A signed token with these claims, as `issue_token` signs them.
    fn token_with(world: &World, edit: impl FnOnce(&mut Value)) -> String {
        let (token, _) = issue_token(
            world,
            &config(),
            "http://127.0.0.1:1",
            "c",
            "https://management.azure.com/",
        );
        let (_, mut claims, _): (String, Value, String) = decode_claims(&token).unwrap();
        edit(&mut claims);
        let header = token.split('.').next().unwrap();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let input = format!("{header}.{payload}");
        format!("{input}.{}", sign(&world.signing_key, &input))
    }

    fn check(world: &World, header: &str, which: Audience<'_>) -> Result<Claims, ArmError> {
        check_bearer(
            world,
            &config(),
            SERVED,
            "http://127.0.0.1:1",
            Some(header),
            which,
        )
    }

    /// ARM's audiences match exactly, in any case and with or without one trailing
    /// slash; a longer host, another port or another scheme does not.
    #[test]
    fn arm_audiences_match_exactly() {
        let config = config();
        let ok = |aud: &str| audience_ok(aud, Audience::Arm, SERVED, &config);
        assert!(ok("https://management.azure.com"));
        assert!(ok("https://management.azure.com/"));
        assert!(ok("HTTPS://Management.Core.Windows.Net/"));
        assert!(ok("http://127.0.0.1:1"));
        assert!(ok("http://localhost:1/"));
        assert!(ok("http://[::1]:1"));
        assert!(!ok("https://management.azure.com//"));
        assert!(!ok("https://management.azure.com.evil.example"));
        assert!(!ok("http://127.0.0.1:12"));
        assert!(!ok("https://127.0.0.1:1"));
        assert!(!ok("https://storage.azure.com"));
        assert!(!ok(""));
    }

    /// A storage token is for any account (`https://storage.azure.com`) or for one
    /// account's blob endpoint of this emulator, with or without its port.
    #[test]
    fn storage_audiences_name_every_account_or_this_one() {
        let config = config();
        let account = Audience::Storage { account: "acct" };
        let ok = |aud: &str| audience_ok(aud, account, SERVED, &config);
        assert!(ok("https://storage.azure.com/"));
        assert!(ok("http://acct.blob.core.localhost"));
        assert!(ok("http://ACCT.blob.core.localhost:1/"));
        assert!(!ok("http://other.blob.core.localhost"));
        assert!(!ok("http://acct.blob.core.localhost:2"));
        assert!(!ok("http://acct.blob.core.windows.net"));
        assert!(!ok("https://acct.blob.core.localhost"));
        assert!(!ok("https://management.azure.com"));
        // The account's own name is compared without regard to case.
        let upper = Audience::Storage { account: "ACCT" };
        assert!(audience_ok(
            "http://acct.blob.core.localhost",
            upper,
            SERVED,
            &config
        ));
    }

    /// A blob endpoint names an account of 3 to 24 lower-case letters and digits.
    #[test]
    fn a_blob_endpoint_names_an_account_of_3_to_24_letters_and_digits() {
        let config = config();
        let account = |resource: &str| SERVED.blob_account(resource, &config).map(str::to_string);
        assert_eq!(
            account("http://abc.blob.core.localhost"),
            Some("abc".to_string())
        );
        let longest = "a".repeat(24);
        assert_eq!(
            account(&format!("http://{longest}.blob.core.localhost:1")),
            Some(longest.clone())
        );
        assert_eq!(account("http://ab.blob.core.localhost"), None);
        assert_eq!(
            account(&format!("http://{}.blob.core.localhost", "a".repeat(25))),
            None
        );
        assert_eq!(account("http://a-b1.blob.core.localhost"), None);
        assert_eq!(account("http://Abc.blob.core.localhost"), None);
        assert_eq!(
            account("http://abc9.blob.core.localhost"),
            Some("abc9".to_string())
        );
        assert_eq!(account("http://abc.queue.core.localhost"), None);
        assert_eq!(account("https://abc.blob.core.localhost"), None);
        assert_eq!(account("http:/abc.blob.core.localhost"), None);
    }

    /// The token endpoint issues tokens for ARM, for storage and for this emulator's
    /// accounts, and for nothing else (Key Vault, Graph).
    #[test]
    fn tokens_are_issued_only_for_what_the_emulator_serves() {
        let config = config();
        let serves = |resource: &str| SERVED.serves(resource, &config);
        assert!(serves("https://management.azure.com/"));
        assert!(serves("https://management.core.windows.net/"));
        assert!(serves("http://127.0.0.1:1/"));
        assert!(serves("https://storage.azure.com/"));
        assert!(serves("HTTP://ACCT.blob.core.localhost:1"));
        assert!(!serves("https://vault.azure.net"));
        assert!(!serves("https://graph.microsoft.com/"));
        assert!(!serves("http://acct.blob.core.windows.net"));
    }

    /// A principal acts within its scopes: the scope itself or anything under it (not a
    /// sibling whose name starts alike), compared without regard to case; with none,
    /// within the emulator's subscriptions, or any subscription when it serves any.
    #[test]
    fn principals_act_within_their_scopes() {
        let claims = |appid: &str| {
            let world = World::new(Store::in_memory()).unwrap();
            let token = token_with(&world, |c| c["appid"] = json!(appid));
            let (_, claims, _): (String, Claims, String) = decode_claims(&token).unwrap();
            claims
        };
        let mut config = config();
        let sub = config.subscriptions[0].clone();
        let default = claims(&config.principals[0].client_id);
        // No scopes: the emulator's subscriptions.
        assert!(in_scope(
            &config,
            &default,
            &format!("/subscriptions/{sub}")
        ));
        assert!(in_scope(
            &config,
            &default,
            &format!("/subscriptions/{sub}/resourceGroups/rg")
        ));
        assert!(!in_scope(
            &config,
            &default,
            &format!("/subscriptions/{sub}0")
        ));
        assert!(!in_scope(&config, &default, "/subscriptions/other"));
        assert!(!in_scope(
            &config,
            &default,
            "/providers/Microsoft.Resources"
        ));
        // No scopes and any subscription served: any subscription, nothing else.
        config.any_subscription = true;
        assert!(in_scope(
            &config,
            &default,
            "/subscriptions/other/resourceGroups/rg"
        ));
        assert!(!in_scope(
            &config,
            &default,
            "/providers/Microsoft.Resources"
        ));
        // Scopes given: those alone, even when any subscription is served.
        config.principals[0].scopes = vec![format!("/subscriptions/{sub}/resourceGroups/ML-RG/")];
        let rg = format!("/subscriptions/{sub}/resourcegroups/ml-rg");
        assert!(in_scope(&config, &default, &rg));
        assert!(in_scope(&config, &default, &format!("{rg}/providers/x")));
        assert!(!in_scope(&config, &default, &format!("{rg}2")));
        assert!(!in_scope(
            &config,
            &default,
            &format!("/subscriptions/{sub}")
        ));
        assert!(!in_scope(
            &config,
            &default,
            "/subscriptions/other/resourceGroups/ml-rg"
        ));
        // An unknown principal acts nowhere; a known one is found in any case.
        assert!(!in_scope(&config, &claims("stranger"), &rg));
        let upper = claims(&config.principals[0].client_id.to_ascii_uppercase());
        assert!(in_scope(&config, &upper, &rg));
    }

    /// What a bearer header must be: the `Bearer` scheme (either case), a token of three
    /// parts signed by this emulator, of its tenant, not yet expired (expiring now is
    /// expired), for the audience asked.
    #[test]
    fn a_bearer_token_is_checked_part_by_part() {
        let world = World::new(Store::in_memory()).unwrap();
        let good = token_with(&world, |_| {});
        assert!(check(&world, &format!("Bearer {good}"), Audience::Arm).is_ok());
        assert!(check(&world, &format!("bearer {good}"), Audience::Arm).is_ok());
        assert!(check(&world, &format!("Bearer  {good} "), Audience::Arm).is_ok());
        let code = |header: &str| check(&world, header, Audience::Arm).unwrap_err().code;
        assert_eq!(code(&format!("Basic {good}")), "AuthenticationFailed");
        assert_eq!(code(&format!("BEARER {good}")), "AuthenticationFailed");
        assert_eq!(
            code(&format!("Bearer {good}.x")),
            "InvalidAuthenticationToken"
        );
        let (header, payload) = good.rsplit_once('.').unwrap().0.split_once('.').unwrap();
        assert_eq!(
            code(&format!("Bearer {header}.{payload}")),
            "InvalidAuthenticationToken"
        );
        assert_eq!(code("Bearer a.b.c"), "InvalidAuthenticationToken");
        let foreign = World::new(Store::in_memory()).unwrap();
        let unsigned_here = token_with(&foreign, |_| {});
        assert_eq!(
            code(&format!("Bearer {unsigned_here}")),
            "InvalidAuthenticationToken"
        );

        let now = world.now().unix_timestamp();
        let at = |exp: i64| token_with(&world, |c| c["exp"] = json!(exp));
        assert_eq!(
            code(&format!("Bearer {}", at(now))),
            "ExpiredAuthenticationToken"
        );
        assert_eq!(
            code(&format!("Bearer {}", at(now - 1))),
            "ExpiredAuthenticationToken"
        );
        assert!(check(&world, &format!("Bearer {}", at(now + 60)), Audience::Arm).is_ok());

        let tenant = token_with(&world, |c| {
            c["tid"] = json!("22222222-2222-2222-2222-222222222222")
        });
        assert_eq!(
            code(&format!("Bearer {tenant}")),
            "InvalidAuthenticationTokenTenant"
        );
        let audience = token_with(&world, |c| c["aud"] = json!("https://vault.azure.net"));
        assert_eq!(
            code(&format!("Bearer {audience}")),
            "InvalidAuthenticationTokenAudience"
        );
        let reply = check(&world, "Basic x", Audience::Arm)
            .unwrap_err()
            .into_reply();
        let challenge = reply
            .headers
            .iter()
            .find(|(name, _)| name == "www-authenticate")
            .map(|(_, value)| value.as_str());
        assert_eq!(
            challenge,
            Some(
                "Bearer authorization_uri=\"http://127.0.0.1:1/11111111-1111-1111-1111-111111111111\", error=\"invalid_token\", error_description=\"The authentication failed because of an invalid 'Authorization' header.\""
            )
        );
    }

    /// A token revoked (`expire-tokens`) states the moment of its revocation as its expiry.
    #[test]
    fn a_revoked_token_states_when_it_was_revoked() {
        let mut world = World::new(Store::in_memory()).unwrap();
        let token = token_with(&world, |_| {});
        let revoked_at = world.now() - time::Duration::minutes(5);
        world.revocations.push(revoked_at);
        world.token_epoch += 1;
        let e = check(&world, &format!("Bearer {token}"), Audience::Arm).unwrap_err();
        assert_eq!(e.code, "ExpiredAuthenticationToken");
        assert!(e.message.contains(&rfc3339(revoked_at)), "{}", e.message);
        // A token issued after the revocation is good.
        let fresh = token_with(&world, |_| {});
        assert!(check(&world, &format!("Bearer {fresh}"), Audience::Arm).is_ok());
    }

    /// The object id of a client is derived from its id: stable, GUID-shaped, distinct.
    #[test]
    fn object_ids_are_stable_guid_shaped_and_distinct() {
        let a = object_id_for("a");
        assert_eq!(a, object_id_for("a"));
        assert_ne!(a, object_id_for("b"));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    /// How a client proves itself at the token endpoint: its secret, or an assertion of a
    /// federated credential (issuer and subject matched, audience
    /// `api://AzureADTokenExchange` alone or in a list, not expired: expiring now is), never
    /// both, never neither. Each refusal carries Entra's status and AADSTS code.
    #[test]
    fn a_client_proves_itself_by_its_secret_or_a_federated_assertion() {
        use super::super::config::FederatedCredential;
        let world = World::new(Store::in_memory()).unwrap();
        let sp = ServicePrincipal {
            client_id: "app".into(),
            client_secret: Some("s3cret".into()),
            federated: vec![FederatedCredential {
                issuer: "https://issuer".into(),
                subject: "repo:main".into(),
            }],
            scopes: Vec::new(),
        };
        let jwt_bearer = Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        let outcome = |result: Result<(), Reply>| -> Option<(u16, u64)> {
            let reply = result.err()?;
            let body = json_of(&reply);
            Some((
                reply.status.as_u16(),
                body["error_codes"][0].as_u64().unwrap(),
            ))
        };
        let now = world.now().unix_timestamp();
        let assertion = |claims: Value| {
            let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
            format!(
                "{}.{}.sig",
                encode(&json!({"alg": "RS256"})),
                encode(&claims)
            )
        };
        let claims = |aud: Value, exp: i64| json!({"iss": "https://issuer", "sub": "repo:main", "aud": aud, "exp": exp});
        let by_assertion = |a: &str, kind: Option<&str>| {
            outcome(check_client(&world, &sp, None, kind, Some(a), "r"))
        };
        let exchange = json!("api://AzureADTokenExchange");

        assert_eq!(
            outcome(check_client(&world, &sp, Some("s3cret"), None, None, "r")),
            None
        );
        assert_eq!(
            outcome(check_client(&world, &sp, Some("wrong"), None, None, "r")),
            Some((401, 7000215))
        );
        let no_secret = ServicePrincipal {
            client_secret: None,
            ..sp.clone()
        };
        assert_eq!(
            outcome(check_client(
                &world,
                &no_secret,
                Some("s3cret"),
                None,
                None,
                "r"
            )),
            Some((401, 7000215))
        );

        let good = assertion(claims(exchange.clone(), now + 60));
        assert_eq!(by_assertion(&good, jwt_bearer), None);
        let listed = assertion(claims(
            json!(["other", "api://AzureADTokenExchange"]),
            now + 60,
        ));
        assert_eq!(by_assertion(&listed, jwt_bearer), None);
        assert_eq!(by_assertion(&good, None), Some((400, 7000219)));
        assert_eq!(
            by_assertion(&good, Some("jwt-bearer")),
            Some((400, 7000219))
        );
        assert_eq!(by_assertion("not a jwt", jwt_bearer), Some((401, 50027)));
        let expiring_now = assertion(claims(exchange.clone(), now));
        assert_eq!(by_assertion(&expiring_now, jwt_bearer), Some((401, 700024)));
        let other_audience = assertion(claims(json!("api://Other"), now + 60));
        assert_eq!(
            by_assertion(&other_audience, jwt_bearer),
            Some((401, 70021))
        );
        let listed_elsewhere = assertion(claims(json!(["api://Other"]), now + 60));
        assert_eq!(
            by_assertion(&listed_elsewhere, jwt_bearer),
            Some((401, 70021))
        );
        let no_audience = assertion(claims(json!(1), now + 60));
        assert_eq!(by_assertion(&no_audience, jwt_bearer), Some((401, 70021)));
        let mut other_subject = claims(exchange.clone(), now + 60);
        other_subject["sub"] = json!("repo:fork");
        assert_eq!(
            by_assertion(&assertion(other_subject), jwt_bearer),
            Some((401, 70021))
        );
        let mut other_issuer = claims(exchange, now + 60);
        other_issuer["iss"] = json!("https://elsewhere");
        assert_eq!(
            by_assertion(&assertion(other_issuer), jwt_bearer),
            Some((401, 70021))
        );

        assert_eq!(
            outcome(check_client(
                &world,
                &sp,
                Some("s3cret"),
                jwt_bearer,
                Some(&good),
                "r"
            )),
            Some((400, 7000218))
        );
        assert_eq!(
            outcome(check_client(&world, &sp, None, None, None, "r")),
            Some((401, 7000218))
        );
    }

    /// The token endpoint: Entra's refusals (another tenant, no or another grant, a
    /// resource the emulator does not serve) and the audience it writes into the token,
    /// with the trailing slash Entra adds to ARM's alone.
    #[test]
    fn the_token_endpoint_refuses_like_entra_and_writes_the_audience() {
        let world = World::new(Store::in_memory()).unwrap();
        let config = config();
        let tenant = config.tenant_id.clone();
        let sp = &config.principals[0];
        let form = |pairs: &[(&str, &str)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let ask = |tenant: &str, body: &str, v2: bool| {
            let reply = token_endpoint(
                &world,
                &config,
                SERVED,
                "http://127.0.0.1:1",
                tenant,
                body.as_bytes(),
                v2,
                "r",
            );
            (reply.status.as_u16(), json_of(&reply))
        };
        let secret = sp.client_secret.as_deref().unwrap();
        let v2 = |scope: &str| {
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &sp.client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
        };
        let refusal = |(status, body): (u16, Value)| (status, body["error_codes"][0].as_u64());
        let audience = |(status, body): (u16, Value)| {
            assert_eq!(status, 200, "{body}");
            let token = body["access_token"].as_str().unwrap().to_string();
            let (_, claims, _): (String, Claims, String) = decode_claims(&token).unwrap();
            claims.aud
        };

        let arm = v2("https://management.azure.com/.default");
        assert_eq!(
            audience(ask(&tenant, &arm, true)),
            "https://management.azure.com/"
        );
        assert_eq!(
            audience(ask(&tenant.to_ascii_uppercase(), &arm, true)),
            "https://management.azure.com/"
        );
        assert_eq!(
            refusal(ask("22222222-2222-2222-2222-222222222222", &arm, true)),
            (400, Some(90002))
        );
        let slashed = v2("https://management.azure.com//.default");
        assert_eq!(
            audience(ask(&tenant, &slashed, true)),
            "https://management.azure.com/"
        );
        let own = v2("http://127.0.0.1:1/.default");
        assert_eq!(audience(ask(&tenant, &own, true)), "http://127.0.0.1:1");
        let storage = v2("https://storage.azure.com/.default");
        assert_eq!(
            audience(ask(&tenant, &storage, true)),
            "https://storage.azure.com"
        );
        let vault = v2("https://vault.azure.net/.default");
        assert_eq!(refusal(ask(&tenant, &vault, true)), (400, Some(500011)));
        let no_default = v2("https://management.azure.com/user_impersonation");
        assert_eq!(
            refusal(ask(&tenant, &no_default, true)),
            (400, Some(1002012))
        );

        let grant = |grant: &str| {
            form(&[
                ("grant_type", grant),
                ("client_id", &sp.client_id),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ])
        };
        assert_eq!(
            refusal(ask(&tenant, &grant("password"), true)),
            (400, Some(70003))
        );
        let no_grant = form(&[("client_id", &sp.client_id), ("client_secret", secret)]);
        assert_eq!(refusal(ask(&tenant, &no_grant, true)), (400, Some(900144)));
        let stranger = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "stranger"),
            ("client_secret", secret),
        ]);
        assert_eq!(refusal(ask(&tenant, &stranger, true)), (400, Some(700016)));

        // v1 takes a resource, and names it in the answer as asked.
        let v1 = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &sp.client_id),
            ("client_secret", secret),
            ("resource", "https://management.core.windows.net"),
        ]);
        let answer = ask(&tenant, &v1, false);
        assert_eq!(answer.1["resource"], "https://management.core.windows.net");
        assert_eq!(audience(answer), "https://management.core.windows.net/");
    }

    /// Discovery: `common` and `organizations` stand for the emulator's tenant, another
    /// tenant is named as asked; the cloud's host is the emulator's own host and port.
    #[test]
    fn discovery_names_the_tenant_and_the_emulators_host() {
        let config = config();
        let base = "https://127.0.0.1:8443";
        let json = |reply: Reply| json_of(&reply);
        let tenant = &config.tenant_id;
        for alias in ["common", "Organizations", tenant.as_str()] {
            let document = json(openid_configuration(&config, base, alias));
            assert_eq!(
                document["token_endpoint"],
                format!("{base}/{tenant}/oauth2/v2.0/token"),
                "{alias}"
            );
            assert_eq!(document["cloud_instance_name"], "127.0.0.1:8443");
        }
        let other = json(openid_configuration(&config, base, "consumers"));
        assert_eq!(other["issuer"], format!("{base}/consumers/v2.0"));
        let instance = json(instance_discovery(&config, base));
        assert_eq!(
            instance["metadata"][0]["preferred_network"],
            "127.0.0.1:8443"
        );
        assert_eq!(
            instance["tenant_discovery_endpoint"],
            format!("{base}/{tenant}/v2.0/.well-known/openid-configuration")
        );
    }

    #[test]
    fn issued_tokens_verify_and_tampering_fails() {
        let world = World::new(Store::in_memory()).unwrap();
        let config = EmulatorConfig::default();
        let base = "http://127.0.0.1:1";
        let (token, _) = issue_token(&world, &config, base, "c", "https://management.azure.com/");
        let header = format!("Bearer {token}");
        assert!(check_bearer(&world, &config, SERVED, base, Some(&header), Audience::Arm).is_ok());
        let storage = Audience::Storage { account: "acct" };
        assert!(check_bearer(&world, &config, SERVED, base, Some(&header), storage).is_err());
        let mut bad = token.clone();
        bad.pop();
        bad.push('x');
        let e = check_bearer(
            &world,
            &config,
            SERVED,
            base,
            Some(&format!("Bearer {bad}")),
            Audience::Arm,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidAuthenticationToken");
        let e = check_bearer(&world, &config, SERVED, base, None, Audience::Arm).unwrap_err();
        assert_eq!(e.code, "AuthenticationFailed");
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_revocation_and_expiry() {
        let mut world = World::new(Store::in_memory()).unwrap();
        let config = EmulatorConfig::default();
        let base = "http://127.0.0.1:1";
        let (token, _) = issue_token(&world, &config, base, "c", "https://management.azure.com/");
        let header = format!("Bearer {token}");
        assert!(check_bearer(&world, &config, SERVED, base, Some(&header), Audience::Arm).is_ok());
        assert!(
            world.verified_claims(&token).is_some(),
            "the token is remembered"
        );
        world.token_epoch += 1;
        let e =
            check_bearer(&world, &config, SERVED, base, Some(&header), Audience::Arm).unwrap_err();
        assert_eq!(e.code, "ExpiredAuthenticationToken");
        world.token_epoch -= 1;
        world.clock_offset = time::Duration::days(2);
        let e =
            check_bearer(&world, &config, SERVED, base, Some(&header), Audience::Arm).unwrap_err();
        assert_eq!(e.code, "ExpiredAuthenticationToken");
    }
}
