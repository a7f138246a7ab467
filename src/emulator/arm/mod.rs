//! Azure Resource Manager: path parsing, api-version and scope checks, and dispatch to
//! the resource types the emulator serves. Handlers run with the state locked and return
//! a [`Reply`] or an [`ArmError`].

mod assets;
mod jobs;
mod locations;
mod ml;
mod operations;
mod resources;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::model::{ArmRecord, Kind, Record};
use super::reply::{ArmError, Reply};
use super::util::{encode_query_value, query_get, rfc3339};
use super::world::{Shared, World};

pub(crate) const ML: &str = "Microsoft.MachineLearningServices";

/// One ARM request, owned so it can move into a blocking task.
pub(crate) struct Req {
    pub method: Method,
    /// Raw path as sent (percent-encoded).
    pub path: String,
    /// Decoded, non-empty path segments.
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Per-request facts handlers need.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    /// `scheme://host[:port]` as the client addressed us.
    pub base: String,
    pub now: OffsetDateTime,
    pub api_version: String,
    /// Object id of the caller, for systemData.
    pub caller: String,
    /// Work to do outside the state lock before answering (external Azurite).
    pub effects: std::cell::RefCell<Vec<super::azurite::Effect>>,
}

impl Ctx<'_> {
    pub(crate) fn config(&self) -> &super::config::EmulatorConfig {
        &self.shared.config
    }

    /// Asks the fault rules whether an operation this request starts must fail.
    pub(crate) fn lro_must_fail(&self, req: &Req) -> bool {
        self.shared
            .faults
            .lock()
            .map(|mut f| f.take_lro_failure(req.method.as_str(), &req.path))
            .unwrap_or(false)
    }

    pub(crate) fn system_data(&self) -> Value {
        let at = rfc3339(self.now);
        json!({
            "createdAt": at,
            "createdBy": self.caller,
            "createdByType": "Application",
            "lastModifiedAt": at,
            "lastModifiedBy": self.caller,
            "lastModifiedByType": "Application",
        })
    }

    pub(crate) fn touch(&self, body: &mut Value) {
        if body.get("systemData").is_none() {
            body["systemData"] = self.system_data();
        } else {
            body["systemData"]["lastModifiedAt"] = json!(rfc3339(self.now));
            body["systemData"]["lastModifiedBy"] = json!(self.caller);
            body["systemData"]["lastModifiedByType"] = json!("Application");
        }
    }

    pub(crate) fn retry_after(&self) -> String {
        self.config().timings.retry_after_secs.to_string()
    }
}

/// api-versions Azure accepts, per resource provider namespace (lower-case): versions
/// published in azure-rest-api-specs or seen from Azure's own clients (see CONTRACT.md and
/// azure-sdk-traffic.md); unknown versions get Azure's NoRegisteredProviderFound.
pub(crate) fn accepted_api_versions(namespace: &str) -> &'static [&'static str] {
    match namespace {
        "microsoft.machinelearningservices" => &[
            "2022-05-01",
            "2022-10-01",
            "2023-04-01",
            "2023-04-01-preview",
            "2023-06-01-preview",
            "2023-08-01-preview",
            "2023-10-01",
            "2024-01-01-preview",
            "2024-04-01",
            "2024-04-01-preview",
            "2024-07-01-preview",
            "2024-10-01",
            "2024-10-01-preview",
            "2025-01-01-preview",
            "2025-04-01",
            "2025-04-01-preview",
            "2025-12-01",
            "2026-07-01",
        ],
        "microsoft.storage" => &[
            "2019-06-01",
            "2021-04-01",
            "2021-09-01",
            "2022-09-01",
            "2023-01-01",
            "2023-05-01",
            "2024-01-01",
            "2025-01-01",
            "2025-06-01",
            "2025-08-01",
        ],
        "microsoft.keyvault" => &[
            "2019-09-01",
            "2021-10-01",
            "2022-07-01",
            "2023-02-01",
            "2023-07-01",
            "2024-11-01",
            "2025-05-01",
            "2026-02-01",
        ],
        "microsoft.insights" => &[
            "2015-05-01",
            "2018-05-01-preview",
            "2020-02-02",
            "2020-02-02-preview",
        ],
        // Microsoft.Resources: subscriptions, resource groups, operation results.
        _ => &[
            "2016-06-01",
            "2019-10-01",
            "2020-01-01",
            "2021-01-01",
            "2021-04-01",
            "2022-01-01",
            "2022-09-01",
            "2022-12-01",
            "2023-07-01",
            "2024-03-01",
            "2024-07-01",
            "2024-11-01",
            "2025-03-01",
            "2025-04-01",
        ],
    }
}

fn check_api_version(req: &Req, namespace: &str, type_name: &str) -> Result<String, ArmError> {
    let Some(v) = query_get(&req.query, "api-version") else {
        return Err(ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let accepted = accepted_api_versions(&namespace.to_ascii_lowercase());
    if accepted.contains(&v) {
        return Ok(v.to_string());
    }
    let list = accepted.join(", ");
    // Location-scoped types (`locations/{location}/vmSizes`) name their location.
    let location = req
        .segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("providers"))
        .and_then(|p| req.segs.get(p + 2..p + 4))
        .filter(|pair| pair[0].eq_ignore_ascii_case("locations"))
        .map_or("global".to_string(), |pair| {
            super::capacity::normalize_location(&pair[1])
        });
    if namespace.eq_ignore_ascii_case("Microsoft.Resources") {
        Err(ArmError::bad_request(
            "InvalidApiVersionParameter",
            format!("The api-version '{v}' is invalid. The supported versions are '{list}'."),
        ))
    } else {
        Err(ArmError::bad_request(
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location '{location}' and API version '{v}' for type '{type_name}'. The supported api-versions are '{list}'."
            ),
        ))
    }
}

/// The action name ARM authorizes for a request (`Microsoft.X/type/write` ...).
fn action_name(req: &Req, namespace: &str, type_name: &str) -> String {
    let verb = match req.method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        Method::POST => "action",
        _ => "write",
    };
    format!("{namespace}/{type_name}/{verb}")
}

/// Resource types the emulator implements, per provider namespace (lower case, types
/// joined by `/`). Operation polling (`locations/...`) is served for each namespace.
const IMPLEMENTED: [(&str, &[&str]); 5] = [
    ("microsoft.resources", &["subscriptions", "resourcegroups"]),
    (
        "microsoft.storage",
        &["storageaccounts", "checknameavailability"],
    ),
    ("microsoft.keyvault", &["vaults"]),
    ("microsoft.insights", &["components"]),
    (
        "microsoft.machinelearningservices",
        &[
            "workspaces",
            "workspaces/computes",
            "workspaces/connections",
            "workspaces/datastores",
            "workspaces/codes",
            "workspaces/codes/versions",
            "workspaces/environments",
            "workspaces/environments/versions",
            "workspaces/jobs",
        ],
    ),
];

/// ARM's answer to a resource type the emulator does not implement, as ARM answers a type
/// it does not know; `None` when the type is implemented. A trailing type segment (one
/// without a name after it) may be an action on an implemented type (`.../listKeys`),
/// left to the route to answer.
fn unimplemented_type(
    segs: &[String],
    namespace: &str,
    type_name: &str,
    api_version: &str,
) -> Option<ArmError> {
    let ns = namespace.to_ascii_lowercase();
    let ty = type_name.to_ascii_lowercase();
    let Some((_, types)) = IMPLEMENTED.iter().find(|(n, _)| *n == ns) else {
        return Some(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceNamespace",
            format!(
                "The resource namespace '{namespace}' is invalid. (The amlspec emulator implements Microsoft.Resources, Microsoft.Storage, Microsoft.KeyVault, Microsoft.Insights and Microsoft.MachineLearningServices.)"
            ),
        ));
    };
    let after_namespace = segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("providers"))
        .map_or(0, |p| segs.len().saturating_sub(p + 2));
    let trailing = after_namespace % 2 == 1;
    let parent = ty.rsplit_once('/').map(|(p, _)| p).filter(|_| trailing);
    let known = ty == "locations"
        || ty.starts_with("locations/")
        || types.contains(&ty.as_str())
        || parent.is_some_and(|p| types.contains(&p));
    (!known).then(|| invalid_resource_type(namespace, type_name, api_version))
}

fn invalid_resource_type(namespace: &str, type_name: &str, api_version: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource type '{type_name}' could not be found in the namespace '{namespace}' for api version '{api_version}'. (The amlspec emulator does not implement it.)"
        ),
    )
}

/// Handles one ARM request; `world` is locked by the caller.
pub(crate) fn handle(world: &mut World, ctx: &mut Ctx<'_>, req: &Req) -> Result<Reply, ArmError> {
    let (namespace, type_name) = namespace_and_type(&req.segs);
    // ARM's order: a missing api-version first, then the type, then whether the type has
    // that api-version (an unknown type has none to compare with).
    let requested = query_get(&req.query, "api-version").unwrap_or_default();
    if !requested.is_empty()
        && let Some(e) = unimplemented_type(&req.segs, &namespace, &type_name, requested)
    {
        return Err(e);
    }
    ctx.api_version = check_api_version(req, &namespace, &type_name)?;
    let config = &ctx.shared.config;
    let header = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let served = super::auth::Served {
        scheme: ctx.shared.scheme,
        port: ctx.shared.port,
    };
    let claims = super::auth::check_bearer(
        world,
        config,
        served,
        &ctx.base,
        header,
        super::auth::Audience::Arm,
    )?;
    ctx.caller = claims.oid.clone();
    if let Some(sub) = req.segs.get(1)
        && !config.knows_subscription(sub)
    {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    let scope_path = format!("/{}", req.segs.join("/"));
    if req.segs.len() >= 2 && !super::auth::in_scope(config, &claims, &scope_path) {
        return Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' over scope '{scope_path}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                oid = claims.oid,
                action = action_name(req, &namespace, &type_name),
            ),
        ));
    }
    world.advance(config)?;
    route(world, ctx, req)
}

/// Provider namespace and type path of a request, for api-version checks and messages.
fn namespace_and_type(segs: &[String]) -> (String, String) {
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    if let Some(p) = lower.iter().position(|s| s == "providers")
        && let Some(ns) = segs.get(p + 1)
    {
        // Types are every other segment after the namespace.
        let types: Vec<&str> = segs[p + 2..]
            .iter()
            .step_by(2)
            .map(String::as_str)
            .collect();
        return (ns.clone(), types.join("/"));
    }
    let t = if lower.len() > 2 && lower[2] == "resourcegroups" {
        "resourceGroups"
    } else {
        "subscriptions"
    };
    ("Microsoft.Resources".to_string(), t.to_string())
}

fn route(world: &mut World, ctx: &Ctx<'_>, req: &Req) -> Result<Reply, ArmError> {
    let s: Vec<String> = req.segs.iter().map(|x| x.to_ascii_lowercase()).collect();
    let s: Vec<&str> = s.iter().map(String::as_str).collect();
    let n = &req.segs;
    match s.as_slice() {
        ["subscriptions"] => resources::list_subscriptions(ctx),
        ["subscriptions", _] => resources::get_subscription(ctx, &n[1]),
        ["subscriptions", _, "resourcegroups"] => resources::list_groups(world, ctx, req, &n[1]),
        ["subscriptions", _, "resourcegroups", _] => {
            resources::resource_group(world, ctx, req, &n[1], &n[3])
        }
        ["subscriptions", _, "operationresults", _] => operations::location(world, ctx, req, &n[3]),
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.machinelearningservices",
            "locations",
            _,
            what,
        ] => match locations::Question::from_segment(what) {
            Some(question) => locations::answer(world, ctx, req, &n[1], &n[5], question),
            None => Err(no_route(req)),
        },
        ["subscriptions", _, "providers", _, "locations", _, _, _] => {
            if s[6].contains("result") {
                operations::location(world, ctx, req, &n[7])
            } else {
                operations::status(world, ctx, req, &n[7])
            }
        }
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.storage",
            "checknameavailability",
        ] if req.method == Method::POST => resources::storage_name_available(world, req),
        ["subscriptions", _, "providers", ns, ty] => {
            check_parameters(req)?;
            resources::list_by_subscription(world, ctx, req, &n[1], ns, ty)
        }
        ["subscriptions", _, "resourcegroups", _, "providers", ns, ty] => {
            require_group(world, &n[1], &n[3])?;
            check_parameters(req)?;
            resources::list_by_group(world, ctx, req, &n[1], &n[3], ns, ty)
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            ns,
            ty,
            rest @ ..,
        ] => {
            require_group(world, &n[1], &n[3])?;
            check_parameters(req)?;
            let rg_id = format!("/subscriptions/{}/resourceGroups/{}", n[1], n[3]);
            let names = &n[7..];
            match (*ns, *ty) {
                ("microsoft.storage", "storageaccounts") => {
                    resources::storage(world, ctx, req, &rg_id, rest, names)
                }
                ("microsoft.keyvault", "vaults") if rest.len() == 1 => {
                    resources::vault(world, ctx, req, &rg_id, &names[0])
                }
                ("microsoft.insights", "components") if rest.len() == 1 => {
                    resources::component(world, ctx, req, &rg_id, &names[0])
                }
                ("microsoft.machinelearningservices", "workspaces") => {
                    ml::workspace_tree(world, ctx, req, &rg_id, rest, names)
                }
                _ => Err(no_route(req)),
            }
        }
        _ => Err(no_route(req)),
    }
}

/// The resource provider's checks of path and query parameters against its OpenAPI; ARM
/// itself has found the resource group by then.
fn check_parameters(req: &Req) -> Result<(), ArmError> {
    super::openapi::check_parameters(req.method.as_str(), &req.segs, &req.query)
}

pub(crate) fn no_route(req: &Req) -> ArmError {
    let (ns, ty) = namespace_and_type(&req.segs);
    if ns.eq_ignore_ascii_case("Microsoft.Resources") {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "The requested resource '{}' does not exist in the emulator.",
                req.path
            ),
        )
    } else {
        let api_version = query_get(&req.query, "api-version").unwrap_or_default();
        invalid_resource_type(&ns, &ty, api_version)
    }
}

/// Key (base64) and ARM id of a storage account, by account name.
pub(crate) fn resources_account(world: &World, name: &str) -> Option<(String, String)> {
    resources::account_by_name(world, name)
}

pub(crate) fn group_key(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourcegroups/{rg}").to_ascii_lowercase()
}

fn require_group(world: &World, sub: &str, rg: &str) -> Result<(), ArmError> {
    match world.store.get(&group_key(sub, rg)) {
        Some(Record::Arm(_)) => Ok(()),
        _ => Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )),
    }
}

/// The stored key of an ARM id.
pub(crate) fn key_of(id: &str) -> String {
    id.to_ascii_lowercase()
}

pub(crate) fn get_arm(world: &World, key: &str) -> Option<ArmRecord> {
    match world.store.get(key) {
        Some(Record::Arm(r)) => Some(r.clone()),
        _ => None,
    }
}

pub(crate) fn put_arm(world: &mut World, key: &str, record: ArmRecord) -> Result<(), ArmError> {
    world.store.put(key, Record::Arm(record))?;
    Ok(())
}

pub(crate) fn new_record(world: &mut World, ctx: &Ctx<'_>, kind: Kind, body: Value) -> ArmRecord {
    ArmRecord {
        kind,
        body: body.into(),
        secrets: None,
        created_seq: world.seq(),
        phase_started: ctx.now,
    }
}

/// Direct children of `parent_key` under `type_seg` (lower-case), in creation order.
pub(crate) fn children(world: &World, parent_key: &str, type_seg: &str) -> Vec<ArmRecord> {
    let prefix = format!("{parent_key}/{type_seg}/");
    let mut out: Vec<ArmRecord> = world
        .store
        .scan(&prefix)
        .filter(|(k, _)| !k[prefix.len()..].contains('/'))
        .filter_map(|(_, r)| match r {
            Record::Arm(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.created_seq);
    out
}

/// Parses a JSON request body; ARM answers malformed JSON with InvalidRequestContent.
pub(crate) fn json_body(req: &Req) -> Result<Value, ArmError> {
    if req.body.is_empty() {
        return Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'The request body is empty.'.",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })
}

/// One page of a list answer, with `nextLink` when more remain.
pub(crate) fn page(ctx: &Ctx<'_>, req: &Req, items: Vec<Value>) -> Reply {
    let size = ctx.config().page_size.max(1);
    let skip = query_get(&req.query, "$skip")
        .or_else(|| query_get(&req.query, "$skipToken"))
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut body = json!({ "value": value });
    if skip + size < total {
        let mut query: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("$skip") && !k.eq_ignore_ascii_case("$skipToken")
            })
            .map(|(k, v)| format!("{}={}", encode_query_value(k), encode_query_value(v)))
            .collect();
        query.push(format!("$skip={}", skip + size));
        body["nextLink"] = json!(format!("{}{}?{}", ctx.base, req.path, query.join("&")));
    }
    Reply::json(StatusCode::OK, body)
}

/// ARM's answer to a GET of one resource: its stored body, or the type's own 404.
pub(crate) fn found_or(
    existing: Option<ArmRecord>,
    not_found: impl FnOnce() -> ArmError,
) -> Result<Reply, ArmError> {
    existing
        .map(|r| Reply::json(StatusCode::OK, r.body))
        .ok_or_else(not_found)
}

/// ARM's synchronous delete, which takes everything below the resource with it: 200 when
/// something was deleted, 204 when not (a repeated delete is not an error).
pub(crate) fn delete_now(world: &mut World, key: &str, existed: bool) -> Result<Reply, ArmError> {
    world.delete_tree(key)?;
    Ok(Reply::empty(if existed {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }))
}

/// A copy of an object without the named top-level fields.
pub(crate) fn without_fields(value: &Value, drop: &[&str]) -> Value {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !drop.contains(&k.as_str()));
    }
    v
}

/// Top-level fields whose values differ between two objects (either side missing counts).
pub(crate) fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Turns numbers and booleans in string dictionaries (an asset's `properties`, a job's
/// `environmentVariables`) into strings, as the service does when it reads them; `tags`
/// never get here with anything but strings (see `openapi::request_definitions`).
pub(crate) fn stringify_maps(props: &mut Value, keys: &[&str]) {
    for key in keys {
        if let Some(Value::Object(map)) = props.get_mut(*key) {
            for v in map.values_mut() {
                match v {
                    Value::Number(n) => *v = Value::String(n.to_string()),
                    Value::Bool(b) => *v = Value::String(b.to_string()),
                    _ => {}
                }
            }
        }
    }
}
