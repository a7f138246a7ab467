//! The HTTP front: one handler for every request on the port. It names the surface (admin,
//! token/discovery, cloud metadata, ARM, blob by Host header or path-style account),
//! applies faults, runs the surface's handler against the locked state (on a blocking
//! thread when state is on disk), and stamps the request-id headers on every answer.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::admin;
use super::arm::{self, Ctx, Req};
use super::auth;
use super::azurite::Effect;
use super::blob::{self, BlobReq};
use super::faults::{Decision, Fault, FaultTarget};
use super::reply::{ArmError, Reply};
use super::util::{parse_query, percent_decode, query_get};
use super::world::{Shared, World};

/// Largest request body accepted (Put Blob allows far more; uploads here are snapshots).
const BODY_LIMIT: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Admin,
    Metadata,
    Token {
        v2: bool,
    },
    OpenId,
    InstanceDiscovery,
    Jwks,
    Arm,
    /// The workspace's discovery document (`discoveryUrl`).
    Discovery,
    /// Run history (`/history/v1.0/subscriptions/...`).
    History,
    Blob {
        path_style: bool,
    },
    /// A container registry, by Host header.
    Registry,
    Unknown,
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(shared)
}

/// Account name from a `{account}.blob.{suffix}` Host header.
fn blob_host_account(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    let (account, rest) = host.split_once('.')?;
    rest.starts_with("blob.")
        .then(|| account.to_ascii_lowercase())
}

fn classify(shared: &Shared, host: &str, segs: &[String]) -> Surface {
    if blob_host_account(host).is_some() {
        return Surface::Blob { path_style: false };
    }
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    // Only registry paths look the host up, so other requests never wait on the state.
    let registry_path = matches!(l.as_slice(), ["v2", ..] | ["oauth2", "token"]);
    if registry_path && shared.world.lock().is_ok_and(|w| w.registries.knows(host)) {
        return Surface::Registry;
    }
    match l.as_slice() {
        ["admin", ..] => Surface::Admin,
        ["metadata", "endpoints"] => Surface::Metadata,
        ["subscriptions", ..] => Surface::Arm,
        ["discovery"] => Surface::Discovery,
        ["history", "v1.0", "subscriptions", ..] => Surface::History,
        [_, "oauth2", "v2.0", "token"] => Surface::Token { v2: true },
        [_, "oauth2", "token"] => Surface::Token { v2: false },
        [_, "v2.0", ".well-known", "openid-configuration"]
        | [_, ".well-known", "openid-configuration"] => Surface::OpenId,
        ["common", "discovery", "instance"] | [_, "discovery", "instance"] => {
            Surface::InstanceDiscovery
        }
        [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] => Surface::Jwks,
        [account, ..] => {
            let known = shared
                .world
                .lock()
                .map(|w| super::arm::resources_account(&w, account).is_some())
                .unwrap_or(false);
            if known {
                Surface::Blob { path_style: true }
            } else {
                Surface::Unknown
            }
        }
        [] => Surface::Unknown,
    }
}

fn fault_target(surface: Surface) -> Option<FaultTarget> {
    match surface {
        Surface::Admin => None,
        Surface::Blob { .. } => Some(FaultTarget::Blob),
        Surface::Registry => Some(FaultTarget::Registry),
        Surface::Token { .. } | Surface::OpenId | Surface::InstanceDiscovery | Surface::Jwks => {
            Some(FaultTarget::Token)
        }
        Surface::Arm
        | Surface::Metadata
        | Surface::Discovery
        | Surface::History
        | Surface::Unknown => Some(FaultTarget::Arm),
    }
}

async fn entry(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = serve(shared, request).await;
    tracing::info!(
        target: "amlspec::emulator",
        %method,
        %path,
        status = response.status().as_u16(),
        request_id = response.headers().get("x-ms-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn serve(shared: Arc<Shared>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let correlation = parts
        .headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let client_request_id = parts.headers.get("x-ms-client-request-id").cloned();
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| {
            shared
                .base_url
                .split("://")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        });
    let base = format!("{}://{host}", shared.scheme);
    let raw_path = parts.uri.path().to_string();
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let surface = classify(&shared, &host, &segs);

    let decision = match fault_target(surface) {
        Some(target) => shared
            .faults
            .lock()
            .map(|mut f| f.decide(target, parts.method.as_str(), &raw_path))
            .unwrap_or_default(),
        None => Decision::default(),
    };
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    let is_blob = matches!(surface, Surface::Blob { .. });
    if let Some(action) = &decision.action
        && let Some(resp) = fault_response(action, surface, &request_id)
    {
        return finish(resp, &request_id, &correlation, client_request_id, is_blob);
    }

    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let reply = ArmError::bad_request(
                "InvalidRequestContent",
                "The request body could not be read.",
            )
            .into_reply();
            return finish(
                reply.into_response(),
                &request_id,
                &correlation,
                client_request_id,
                is_blob,
            );
        }
    };
    if let Ok(mut traffic) = shared.traffic.lock() {
        let method = parts.method.as_str().to_string();
        match surface {
            Surface::Arm => *traffic.arm.entry(method).or_default() += 1,
            Surface::Blob { .. } => {
                *traffic.blob.entry(method).or_default() += 1;
                traffic.blob_bytes_in += body.len() as u64;
            }
            Surface::Registry => *traffic.registry.entry(method).or_default() += 1,
            _ => {}
        }
    }
    let incoming = Incoming {
        surface,
        method: parts.method.clone(),
        raw_path,
        segs,
        query: parse_query(parts.uri.query()),
        headers: parts.headers.clone(),
        body,
        base,
        host,
        request_id: request_id.clone(),
    };
    let sh = shared.clone();
    let work = move || -> (Reply, Vec<Effect>) { dispatch(&sh, incoming) };
    let (mut reply, effects) = if shared.config.state_dir.is_some() {
        match tokio::task::spawn_blocking(work).await {
            Ok(r) => r,
            Err(_) => (
                ArmError::internal("the request handler panicked").into_reply(),
                Vec::new(),
            ),
        }
    } else {
        work()
    };
    for effect in &effects {
        if let Err(message) = super::azurite::apply(effect).await {
            reply = ArmError::internal(message).into_reply();
            break;
        }
    }
    if matches!(decision.action, Some(Fault::LoseAnswer)) {
        // Done, and durable (the handler waited for its journal), but never answered.
        return dropped_connection();
    }
    finish(
        reply.into_response(),
        &request_id,
        &correlation,
        client_request_id,
        is_blob,
    )
}

/// A request as the surfaces' handlers take it, owned so it can move to a blocking thread.
struct Incoming {
    surface: Surface,
    method: Method,
    raw_path: String,
    segs: Vec<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    base: String,
    host: String,
    request_id: String,
}

/// Runs a request against the locked state, then (lock released) waits until its writes
/// are durable before the answer may go out.
fn dispatch(shared: &Shared, incoming: Incoming) -> (Reply, Vec<Effect>) {
    let Ok(mut world) = shared.world.lock() else {
        return (
            ArmError::internal("the emulator state lock is poisoned").into_reply(),
            Vec::new(),
        );
    };
    let answer = dispatch_locked(shared, &mut world, incoming);
    let durability = world.durability_point();
    drop(world);
    match super::world::make_durable(durability) {
        Ok(()) => answer,
        Err(e) => (ArmError::from(e).into_reply(), Vec::new()),
    }
}

fn dispatch_locked(shared: &Shared, world: &mut World, incoming: Incoming) -> (Reply, Vec<Effect>) {
    let Incoming {
        surface,
        method,
        raw_path,
        segs,
        query,
        headers,
        body,
        base,
        host,
        request_id,
    } = incoming;
    let config = &shared.config;
    if surface == Surface::Arm {
        let req = Req {
            method,
            path: raw_path,
            segs,
            query,
            headers,
            body,
        };
        let mut ctx = Ctx {
            shared,
            base,
            now: world.now(),
            api_version: String::new(),
            caller: String::new(),
            effects: Default::default(),
        };
        let reply = match arm::handle(world, &mut ctx, &req) {
            Ok(r) => r,
            Err(e) => e.into_reply(),
        };
        return (reply, ctx.effects.into_inner());
    }
    let reply = match surface {
        Surface::Admin => match admin::authorize(shared, &segs, &headers) {
            Ok(()) => admin::http(shared, world, &method, &segs, &body),
            Err(e) => e.into_reply(),
        },
        Surface::Metadata => metadata(shared, &base, query_get(&query, "api-version")),
        Surface::Token { v2 } => {
            if method != Method::POST {
                let e = ArmError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "Use POST.",
                );
                return (e.into_reply(), Vec::new());
            }
            let served = auth::Served {
                scheme: shared.scheme,
                port: shared.port,
            };
            auth::token_endpoint(
                world,
                config,
                served,
                &base,
                &segs[0],
                &body,
                v2,
                &request_id,
            )
        }
        Surface::OpenId => auth::openid_configuration(config, &base, &segs[0]),
        Surface::InstanceDiscovery => auth::instance_discovery(config, &base),
        Surface::Jwks => auth::jwks(),
        Surface::Arm => unreachable!("handled above"),
        Surface::Discovery if method == Method::GET => super::runs::discovery(&base),
        Surface::History if method == Method::GET => {
            match history(shared, world, &base, &segs[2..], &headers) {
                Ok(r) => r,
                Err(e) => e.into_reply(),
            }
        }
        Surface::Discovery | Surface::History => ArmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The emulator serves only GET on '{raw_path}'."),
        )
        .into_reply(),
        Surface::Blob { path_style } => {
            let (account, rest): (String, &[String]) = if path_style {
                (segs[0].to_ascii_lowercase(), &segs[1..])
            } else {
                (blob_host_account(&host).unwrap_or_default(), &segs[..])
            };
            let container = rest.first().cloned().unwrap_or_default();
            // Blob names keep their inner slashes; rebuild from the raw path.
            let skip = if path_style { 2 } else { 1 };
            let blob_name = raw_path
                .split('/')
                .filter(|s| !s.is_empty())
                .skip(skip)
                .collect::<Vec<_>>()
                .join("/");
            let breq = BlobReq {
                method,
                account,
                raw_path,
                path_style,
                container,
                blob: percent_decode(&blob_name),
                query,
                headers,
                body,
                scheme: shared.scheme,
                port: shared.port,
                endpoint: base.clone(),
            };
            let _ = world.advance(config);
            blob::handle(world, config, &base, &breq, &request_id)
        }
        Surface::Registry => super::registry::handle(
            world,
            &super::registry::RegistryReq {
                method: &method,
                host: &host,
                base: &base,
                segs: &segs,
                query: &query,
                headers: &headers,
                body: &body,
            },
        ),
        Surface::Unknown => ArmError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("No emulator endpoint serves '{raw_path}'."),
        )
        .into_reply(),
    };
    (reply, Vec::new())
}

/// Run history: the ARM token and scope rules, then the run's details.
fn history(
    shared: &Shared,
    world: &mut World,
    base: &str,
    segs: &[String],
    headers: &HeaderMap,
) -> Result<Reply, ArmError> {
    let config = &shared.config;
    let served = auth::Served {
        scheme: shared.scheme,
        port: shared.port,
    };
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let claims = auth::check_bearer(world, config, served, base, header, auth::Audience::Arm)?;
    if let Some(sub) = segs.get(1)
        && !config
            .subscriptions
            .iter()
            .any(|s| s.eq_ignore_ascii_case(sub))
    {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    let scope_path = format!("/{}", segs.join("/"));
    if !auth::in_scope(config, &claims, &scope_path) {
        return Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client '{oid}' with object id '{oid}' does not have authorization to read run history over scope '{scope_path}'.",
                oid = claims.oid
            ),
        ));
    }
    world.advance(config)?;
    super::runs::history(world, base, segs)
}

fn fault_response(action: &Fault, surface: Surface, request_id: &str) -> Option<Response> {
    let blob = matches!(surface, Surface::Blob { .. });
    match action {
        Fault::Throttle { retry_after_secs } => {
            let reply = if blob {
                storage_xml(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy", "The server is busy.", request_id)
            } else {
                ArmError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "The request is being throttled as the limit has been reached for operation type. (emulated fault)",
                )
                .into_reply()
            };
            Some(reply.header("retry-after", retry_after_secs.to_string()).into_response())
        }
        Fault::ServerError { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reply = if blob {
                storage_xml(status, if status == StatusCode::SERVICE_UNAVAILABLE { "ServerBusy" } else { "InternalError" }, "The server encountered an internal error. (emulated fault)", request_id)
            } else if status == StatusCode::SERVICE_UNAVAILABLE {
                ArmError::new(status, "ServiceUnavailable", "The service is temporarily unavailable. (emulated fault)").into_reply()
            } else {
                ArmError::new(status, "InternalServerError", "Encountered internal server error. (emulated fault)").into_reply()
            };
            let reply = if status == StatusCode::SERVICE_UNAVAILABLE { reply.header("retry-after", "1") } else { reply };
            Some(reply.into_response())
        }
        Fault::DropConnection => Some(dropped_connection()),
        Fault::ExpiredToken if surface == Surface::Arm => Some(
            ArmError::new(
                StatusCode::UNAUTHORIZED,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time. (emulated fault)",
            )
            .with_header("www-authenticate", "Bearer error=\"invalid_token\", error_description=\"The access token has expired.\"")
            .into_reply()
            .into_response(),
        ),
        _ => None,
    }
}

/// A response whose body fails at once: the client sees the connection drop.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "emulated dropped connection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

fn storage_xml(status: StatusCode, code: &str, message: &str, request_id: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: super::reply::ReplyBody::Xml(format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{request_id}</Message></Error>"
        )),
    }
    .header("x-ms-error-code", code.to_string())
}

fn finish(
    mut resp: Response,
    request_id: &str,
    correlation: &str,
    client_request_id: Option<HeaderValue>,
    blob: bool,
) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-ms-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(correlation) {
        h.insert("x-ms-correlation-request-id", v);
    }
    if let Some(c) = client_request_id {
        h.insert("x-ms-client-request-id", c);
    }
    if blob {
        h.insert(
            "x-ms-version",
            HeaderValue::from_static(blob::SERVICE_VERSION),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&super::util::http_date(time::OffsetDateTime::now_utc())) {
        h.insert("date", v);
    }
    resp
}

/// `GET /metadata/endpoints`: the emulator described as an Azure cloud.
fn metadata(shared: &Shared, base: &str, api_version: Option<&str>) -> Reply {
    let suffix = format!("{}:{}", shared.config.storage_suffix, shared.port);
    let cloud = json!({
        "portal": format!("{base}/portal"),
        "authentication": {
            "loginEndpoint": format!("{base}/"),
            "audiences": [format!("{base}/"), "https://management.azure.com/"],
            "tenant": shared.config.tenant_id,
            "identityProvider": "AAD",
        },
        "media": format!("{base}/media"),
        "graphAudience": format!("{base}/graph"),
        "graph": format!("{base}/graph/"),
        "name": "AmlspecEmulator",
        "suffixes": {
            "azureDataLakeStoreFileSystem": "azuredatalakestore.localhost",
            "acrLoginServer": "azurecr.localhost",
            "sqlServerHostname": "database.localhost",
            "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.localhost",
            "keyVaultDns": "vault.localhost",
            "storage": suffix,
            "azureFrontDoorEndpointSuffix": "azurefd.localhost",
        },
        "batch": format!("{base}/batch/"),
        "resourceManager": format!("{base}/"),
        "vmImageAliasDoc": format!("{base}/vmimagealiases"),
        "activeDirectoryDataLake": format!("{base}/datalake/"),
        "sqlManagement": format!("{base}/sql/"),
        "microsoftGraphResourceId": format!("{base}/graph/"),
        "appInsightsResourceId": format!("{base}/appinsights/"),
        "appInsightsTelemetryChannelResourceId": format!("{base}/appinsights-telemetry/"),
        "attestationResourceId": format!("{base}/attestation/"),
        "synapseAnalyticsResourceId": format!("{base}/synapse/"),
        "logAnalyticsResourceId": format!("{base}/loganalytics/"),
        "ossrDbmsResourceId": format!("{base}/ossrdbms/"),
    });
    // 2019-05-01 answers with the list of every cloud (azure-ai-ml's ARM_CLOUD_METADATA_URL
    // reads that form); 2022-09-01 (the Azure CLI's `az cloud register`) and 2015-01-01
    // answer with the one cloud.
    let list = api_version.is_some_and(|v| ("2019-05-01".."2022-09-01").contains(&v));
    Reply::json(StatusCode::OK, if list { json!([cloud]) } else { cloud })
}
