//! Subscriptions, resource groups, and the workspace's dependencies: storage accounts,
//! key vaults and Application Insights components.

use axum::http::{Method, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use super::{
    Ctx, Req, children, get_arm, group_key, json_body, key_of, new_record, no_route, page, put_arm,
};
use crate::emulator::model::{Kind, MetaRecord, OpKind, Record};
use crate::emulator::reply::{ArmError, Reply};
use crate::emulator::util::rfc3339;
use crate::emulator::world::{World, account_index_key};

pub(super) fn list_subscriptions(ctx: &Ctx<'_>) -> Result<Reply, ArmError> {
    let value: Vec<Value> = ctx
        .config()
        .subscriptions
        .iter()
        .map(|s| subscription_body(ctx, s))
        .collect();
    Ok(Reply::json(StatusCode::OK, json!({ "value": value })))
}

fn subscription_body(ctx: &Ctx<'_>, sub: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}"),
        "subscriptionId": sub,
        "tenantId": ctx.config().tenant_id,
        "displayName": "amlspec emulator subscription",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    })
}

pub(super) fn get_subscription(ctx: &Ctx<'_>, sub: &str) -> Result<Reply, ArmError> {
    Ok(Reply::json(StatusCode::OK, subscription_body(ctx, sub)))
}

fn require_location(body: &Value) -> Result<String, ArmError> {
    match body.get("location").and_then(Value::as_str) {
        Some(l) if !l.is_empty() => Ok(l.to_string()),
        _ => Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        )),
    }
}

fn tags_of(body: &Value) -> Result<Value, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Value::Object(m.clone())),
        Some(_) => Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'tags must be an object of strings'.",
        )),
    }
}

pub(super) fn list_groups(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    sub: &str,
) -> Result<Reply, ArmError> {
    let key = format!("/subscriptions/{sub}").to_ascii_lowercase();
    let items = children(world, &key, "resourcegroups")
        .into_iter()
        .map(|r| r.body.into_value())
        .collect();
    Ok(page(ctx, req, items))
}

pub(super) fn resource_group(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    sub: &str,
    rg: &str,
) -> Result<Reply, ArmError> {
    let key = group_key(sub, rg);
    let existing = get_arm(world, &key);
    let not_found = || {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    };
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::HEAD => Ok(Reply::empty(if existing.is_some() {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::NOT_FOUND
        })),
        Method::PUT | Method::PATCH => {
            let body = json_body(req)?;
            if rg.is_empty()
                || rg.len() > 90
                || rg.ends_with('.')
                || !rg
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
            {
                return Err(ArmError::bad_request(
                    "InvalidResourceGroup",
                    format!(
                        "The provided resource group name '{rg}' has these invalid characters or length."
                    ),
                ));
            }
            let tags = tags_of(&body)?;
            if let Some(mut r) = existing {
                if let Some(loc) = body.get("location").and_then(Value::as_str)
                    && !loc.eq_ignore_ascii_case(r.body["location"].as_str().unwrap_or_default())
                {
                    return Err(ArmError::conflict(
                        "InvalidResourceGroupLocation",
                        format!(
                            "Invalid resource group location '{loc}'. The Resource group already exists in location '{}'.",
                            r.body["location"].as_str().unwrap_or_default()
                        ),
                    ));
                }
                if body.get("tags").is_some() {
                    r.body_mut()["tags"] = tags;
                }
                put_arm(world, &key, r.clone())?;
                return Ok(Reply::json(StatusCode::OK, r.body));
            }
            if req.method == Method::PATCH {
                return Err(not_found());
            }
            let location = require_location(&body)?;
            let out = json!({
                "id": format!("/subscriptions/{sub}/resourceGroups/{rg}"),
                "name": rg,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "tags": tags,
                "properties": { "provisioningState": "Succeeded" },
            });
            let record = new_record(world, ctx, Kind::ResourceGroup, out.clone());
            put_arm(world, &key, record)?;
            Ok(Reply::json(StatusCode::CREATED, out))
        }
        Method::DELETE => {
            let Some(r) = existing else {
                return Err(not_found());
            };
            let fail = ctx.lro_must_fail(req);
            let location = r.body["location"].as_str().unwrap_or("global").to_string();
            let id = r.body["id"].as_str().unwrap_or_default().to_string();
            let op = world.start_op(
                OpKind::Delete,
                &key,
                &id,
                "Microsoft.Resources",
                &location,
                fail,
            )?;
            Ok(super::operations::accepted(ctx, sub, &op))
        }
        _ => Err(no_route(req)),
    }
}

fn type_filter(ns: &str, ty: &str) -> Option<Kind> {
    match (ns, ty) {
        ("microsoft.storage", "storageaccounts") => Some(Kind::StorageAccount),
        ("microsoft.keyvault", "vaults") => Some(Kind::KeyVault),
        ("microsoft.insights", "components") => Some(Kind::AppInsights),
        ("microsoft.machinelearningservices", "workspaces") => Some(Kind::Workspace),
        _ => None,
    }
}

pub(super) fn list_by_subscription(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    sub: &str,
    ns: &str,
    ty: &str,
) -> Result<Reply, ArmError> {
    let Some(kind) = type_filter(ns, ty) else {
        return Err(no_route(req));
    };
    let prefix = format!("/subscriptions/{sub}/resourcegroups/").to_ascii_lowercase();
    let mut items: Vec<(u64, Value)> = world
        .store
        .scan(&prefix)
        .filter_map(|(_, r)| match r {
            Record::Arm(a) if a.kind == kind => Some((a.created_seq, Value::clone(&a.body))),
            _ => None,
        })
        .collect();
    items.sort_by_key(|(s, _)| *s);
    Ok(page(ctx, req, items.into_iter().map(|(_, v)| v).collect()))
}

pub(super) fn list_by_group(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    sub: &str,
    rg: &str,
    ns: &str,
    ty: &str,
) -> Result<Reply, ArmError> {
    if type_filter(ns, ty).is_none() {
        return Err(no_route(req));
    }
    let parent = format!("{}/providers/{ns}", group_key(sub, rg));
    let items = children(world, &parent, ty)
        .into_iter()
        .map(|r| r.body.into_value())
        .collect();
    Ok(page(ctx, req, items))
}

fn random_key() -> String {
    let mut bytes = Vec::with_capacity(64);
    for _ in 0..4 {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The account key (key1) and ARM id of a storage account, by name.
pub(crate) fn account_by_name(world: &World, name: &str) -> Option<(String, String)> {
    let Some(Record::Meta(m)) = world.store.get(&account_index_key(name)) else {
        return None;
    };
    let key = m.value.as_str()?;
    let r = get_arm(world, key)?;
    let secret = r.secrets.as_ref()?["key1"].as_str()?.to_string();
    Some((secret, r.body["id"].as_str()?.to_string()))
}

pub(crate) fn blob_endpoint(ctx: &Ctx<'_>, account: &str) -> String {
    let shared = ctx.shared;
    format!(
        "{}://{account}.blob.{}:{}/",
        shared.scheme, shared.config.storage_suffix, shared.port
    )
}

pub(super) fn storage(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    rg_id: &str,
    rest: &[&str],
    names: &[String],
) -> Result<Reply, ArmError> {
    let name = &names[0];
    let id = format!("{rg_id}/providers/Microsoft.Storage/storageAccounts/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found("Microsoft.Storage/storageAccounts", &id, name);
    if rest.len() == 2 && rest[1] == "listkeys" && req.method == Method::POST {
        let r = existing.ok_or_else(not_found)?;
        let secrets = r.secrets.unwrap_or(Value::Null);
        return Ok(Reply::json(
            StatusCode::OK,
            json!({ "keys": [
                { "keyName": "key1", "value": secrets["key1"], "permissions": "FULL", "creationTime": r.body["properties"]["creationTime"] },
                { "keyName": "key2", "value": secrets["key2"], "permissions": "FULL", "creationTime": r.body["properties"]["creationTime"] },
            ]}),
        ));
    }
    if rest.len() != 1 {
        return Err(no_route(req));
    }
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => super::delete_now(world, &key, existing.is_some()),
        Method::PUT | Method::PATCH => {
            let body = json_body(req)?;
            if let Some(mut r) = existing {
                if body.get("tags").is_some() {
                    r.body_mut()["tags"] = tags_of(&body)?;
                }
                put_arm(world, &key, r.clone())?;
                return Ok(Reply::json(StatusCode::OK, r.body));
            }
            if req.method == Method::PATCH {
                return Err(not_found());
            }
            if let Some(message) = storage_name_problem(name) {
                return Err(ArmError::bad_request("AccountNameInvalid", message));
            }
            if world.store.get(&account_index_key(name)).is_some() {
                return Err(ArmError::conflict(
                    "StorageAccountAlreadyTaken",
                    format!("The storage account named {name} is already taken."),
                ));
            }
            let location = require_location(&body)?;
            let sku = body["sku"]["name"].as_str().unwrap_or_default().to_string();
            const SKUS: [&str; 8] = [
                "Standard_LRS",
                "Standard_GRS",
                "Standard_RAGRS",
                "Standard_ZRS",
                "Premium_LRS",
                "Premium_ZRS",
                "Standard_GZRS",
                "Standard_RAGZRS",
            ];
            if !SKUS.contains(&sku.as_str()) {
                return Err(ArmError::bad_request(
                    "InvalidRequestContent",
                    format!(
                        "The request content was invalid and could not be deserialized: 'sku.name' must be one of {SKUS:?}, got '{sku}'."
                    ),
                ));
            }
            const KINDS: [&str; 5] = [
                "Storage",
                "StorageV2",
                "BlobStorage",
                "FileStorage",
                "BlockBlobStorage",
            ];
            let kind = body["kind"].as_str().unwrap_or_default().to_string();
            if !KINDS.contains(&kind.as_str()) {
                return Err(ArmError::bad_request(
                    "InvalidRequestContent",
                    format!(
                        "The request content was invalid and could not be deserialized: 'kind' must be one of {KINDS:?}, got '{kind}'."
                    ),
                ));
            }
            let blob = blob_endpoint(ctx, name);
            let out = json!({
                "id": id,
                "name": name,
                "type": "Microsoft.Storage/storageAccounts",
                "location": location,
                "tags": tags_of(&body)?,
                "sku": { "name": sku, "tier": if sku.starts_with("Premium") { "Premium" } else { "Standard" } },
                "kind": kind,
                "properties": {
                    "provisioningState": "Creating",
                    "creationTime": rfc3339(ctx.now),
                    "keyCreationTime": { "key1": rfc3339(ctx.now), "key2": rfc3339(ctx.now) },
                    "primaryLocation": location,
                    "statusOfPrimary": "available",
                    "primaryEndpoints": { "blob": blob, "dfs": blob.replace(".blob.", ".dfs."), },
                    "supportsHttpsTrafficOnly": body["properties"]["supportsHttpsTrafficOnly"].as_bool().unwrap_or(true),
                    "accessTier": body["properties"]["accessTier"].as_str().unwrap_or("Hot"),
                    "minimumTlsVersion": body["properties"]["minimumTlsVersion"].as_str().unwrap_or("TLS1_0"),
                    "allowBlobPublicAccess": body["properties"]["allowBlobPublicAccess"].as_bool().unwrap_or(false),
                    "isHnsEnabled": body["properties"]["isHnsEnabled"].as_bool().unwrap_or(false),
                    "encryption": {
                        "keySource": "Microsoft.Storage",
                        "services": { "blob": { "enabled": true, "keyType": "Account" } },
                    },
                },
            });
            let mut record = new_record(world, ctx, Kind::StorageAccount, out);
            record.secrets = Some(json!({ "key1": random_key(), "key2": random_key() }));
            put_arm(world, &key, record)?;
            world.store.put(
                &account_index_key(name),
                Record::Meta(MetaRecord { value: json!(key) }),
            )?;
            let fail = ctx.lro_must_fail(req);
            let sub = &req.segs[1];
            let op = world.start_op(
                OpKind::Create,
                &key,
                &id,
                "Microsoft.Storage",
                &location,
                fail,
            )?;
            Ok(super::operations::accepted(ctx, sub, &op))
        }
        _ => Err(no_route(req)),
    }
}

fn storage_name_problem(name: &str) -> Option<String> {
    let valid = (3..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (!valid).then(|| format!("{name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only."))
}

/// `POST /subscriptions/{id}/providers/Microsoft.Storage/checkNameAvailability`.
pub(super) fn storage_name_available(world: &World, req: &Req) -> Result<Reply, ArmError> {
    let body = json_body(req)?;
    let name = body["name"].as_str().unwrap_or_default();
    let answer = if let Some(message) = storage_name_problem(name) {
        json!({ "nameAvailable": false, "reason": "AccountNameInvalid", "message": message })
    } else if world.store.get(&account_index_key(name)).is_some() {
        json!({ "nameAvailable": false, "reason": "AlreadyExists", "message": format!("The storage account named {name} is already taken.") })
    } else {
        json!({ "nameAvailable": true })
    };
    Ok(Reply::json(StatusCode::OK, answer))
}

pub(super) fn vault(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    rg_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{rg_id}/providers/Microsoft.KeyVault/vaults/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    match req.method {
        Method::GET => super::found_or(existing, || {
            ArmError::not_found("Microsoft.KeyVault/vaults", &id, name)
        }),
        Method::DELETE => super::delete_now(world, &key, existing.is_some()),
        Method::PUT => {
            let body = json_body(req)?;
            if !(3..=24).contains(&name.len())
                || !name.starts_with(|c: char| c.is_ascii_alphabetic())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                || name.contains("--")
            {
                return Err(ArmError::bad_request(
                    "VaultNameNotValid",
                    format!(
                        "The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens."
                    ),
                ));
            }
            let location = require_location(&body)?;
            let props = &body["properties"];
            let tenant = props["tenantId"].as_str().unwrap_or_default();
            if uuid::Uuid::parse_str(tenant).is_err() {
                return Err(ArmError::bad_request(
                    "BadRequest",
                    "The 'properties.tenantId' property is required and must be a GUID.",
                ));
            }
            let sku_name = props["sku"]["name"].as_str().unwrap_or_default();
            if props["sku"]["family"] != "A" || !["standard", "premium"].contains(&sku_name) {
                return Err(ArmError::bad_request(
                    "BadRequest",
                    "The 'properties.sku' property is required: family 'A', name 'standard' or 'premium'.",
                ));
            }
            let mut out = json!({
                "id": id,
                "name": name,
                "type": "Microsoft.KeyVault/vaults",
                "location": location,
                "tags": tags_of(&body)?,
                "properties": {
                    "sku": { "family": "A", "name": sku_name },
                    "tenantId": tenant,
                    "accessPolicies": props.get("accessPolicies").cloned().unwrap_or(json!([])),
                    "enabledForDeployment": props["enabledForDeployment"].as_bool().unwrap_or(false),
                    "enableSoftDelete": props["enableSoftDelete"].as_bool().unwrap_or(true),
                    "softDeleteRetentionInDays": props["softDeleteRetentionInDays"].as_i64().unwrap_or(90),
                    "enableRbacAuthorization": props["enableRbacAuthorization"].as_bool().unwrap_or(false),
                    "vaultUri": format!("https://{name}.vault.azure.net/"),
                    "publicNetworkAccess": props["publicNetworkAccess"].as_str().unwrap_or("Enabled"),
                    "provisioningState": "Succeeded",
                },
            });
            let (status, record) = match existing {
                Some(mut r) => {
                    out["systemData"] = r.body["systemData"].clone();
                    ctx.touch(&mut out);
                    r.body = out.clone().into();
                    (StatusCode::OK, r)
                }
                None => {
                    out["systemData"] = ctx.system_data();
                    (
                        StatusCode::CREATED,
                        new_record(world, ctx, Kind::KeyVault, out.clone()),
                    )
                }
            };
            put_arm(world, &key, record)?;
            Ok(Reply::json(status, out))
        }
        _ => Err(no_route(req)),
    }
}

pub(super) fn component(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    rg_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{rg_id}/providers/Microsoft.Insights/components/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    match req.method {
        Method::GET => super::found_or(existing, || {
            ArmError::not_found("Microsoft.Insights/components", &id, name)
        }),
        Method::DELETE => super::delete_now(world, &key, existing.is_some()),
        Method::PUT => {
            let body = json_body(req)?;
            let location = require_location(&body)?;
            let Some(kind) = body["kind"].as_str() else {
                return Err(ArmError::bad_request(
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: Required property 'kind' not found.",
                ));
            };
            let app_type = body["properties"]["Application_Type"]
                .as_str()
                .unwrap_or_default();
            if !["web", "other"].contains(&app_type) {
                return Err(ArmError::bad_request(
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'properties.Application_Type' is required and must be 'web' or 'other'.",
                ));
            }
            let (app_id, ikey, created) = match &existing {
                Some(r) => (
                    r.body["properties"]["AppId"].clone(),
                    r.body["properties"]["InstrumentationKey"].clone(),
                    r.body["properties"]["CreationDate"].clone(),
                ),
                None => (
                    json!(uuid::Uuid::new_v4().to_string()),
                    json!(uuid::Uuid::new_v4().to_string()),
                    json!(rfc3339(ctx.now)),
                ),
            };
            let out = json!({
                "id": id,
                "name": name,
                "type": "Microsoft.Insights/components",
                "location": location,
                "tags": tags_of(&body)?,
                "kind": kind,
                "properties": {
                    "ApplicationId": name,
                    "AppId": app_id,
                    "Application_Type": app_type,
                    "Flow_Type": body["properties"]["Flow_Type"].as_str().unwrap_or("Bluefield"),
                    "Request_Source": body["properties"]["Request_Source"].as_str().unwrap_or("rest"),
                    "InstrumentationKey": ikey,
                    "ConnectionString": format!("InstrumentationKey={};IngestionEndpoint=https://{location}.in.applicationinsights.azure.com/", ikey.as_str().unwrap_or_default()),
                    "Name": name,
                    "CreationDate": created,
                    "TenantId": req.segs[1],
                    "provisioningState": "Succeeded",
                    "RetentionInDays": 90,
                    "IngestionMode": "ApplicationInsights",
                    "publicNetworkAccessForIngestion": "Enabled",
                    "publicNetworkAccessForQuery": "Enabled",
                },
            });
            let record = match existing {
                Some(mut r) => {
                    r.body = out.clone().into();
                    r
                }
                None => new_record(world, ctx, Kind::AppInsights, out.clone()),
            };
            put_arm(world, &key, record)?;
            Ok(Reply::json(StatusCode::OK, out))
        }
        _ => Err(no_route(req)),
    }
}
