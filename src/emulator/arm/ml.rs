//! Microsoft.MachineLearningServices: workspaces (with their default datastore), AmlCompute
//! clusters, connections and datastores. Codes, environments and jobs live in their own
//! files; this one dispatches the whole `workspaces/{name}/…` tree.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    Ctx, ML, Req, children, get_arm, json_body, key_of, new_record, no_route, page, put_arm,
};
use crate::emulator::model::{ContainerRecord, Kind, OpKind, Record};
use crate::emulator::openapi::validate_body;
use crate::emulator::reply::{ArmError, Reply};
use crate::emulator::util::{iso8601_seconds, query_get, rfc3339};
use crate::emulator::world::World;

pub(super) fn workspace_tree(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    rg_id: &str,
    rest: &[&str],
    names: &[String],
) -> Result<Reply, ArmError> {
    let ws_name = &names[0];
    let ws_id = format!("{rg_id}/providers/{ML}/workspaces/{ws_name}");
    if rest.len() == 1 {
        return workspace(world, ctx, req, rg_id, &ws_id, ws_name);
    }
    let ws_key = key_of(&ws_id);
    let Some(ws) = get_arm(world, &ws_key) else {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "ParentResourceNotFound",
            format!(
                "Failed to perform '{}' on resource(s) of type 'workspaces/{}', because the parent resource '{ws_id}' could not be found.",
                method_verb(&req.method),
                rest[1]
            ),
        ));
    };
    // Names in the body's ids use the workspace's own spelling.
    let ws_id = ws.body["id"].as_str().unwrap_or(&ws_id).to_string();
    let child = |i: usize| names.get(i).map(String::as_str).unwrap_or_default();
    match (&rest[1..], &req.method) {
        (["listkeys"], &Method::POST) => workspace_keys(world, &ws),
        (["computes"], &Method::GET) => list(world, ctx, req, &ws_key, "computes"),
        (["computes", _], _) => compute(world, ctx, req, &ws, &ws_id, child(2)),
        (["computes", _, "listnodes"], &Method::POST) => {
            require_child(world, &ws_id, "computes", child(2))?;
            Ok(Reply::json(StatusCode::OK, json!({ "nodes": [] })))
        }
        (["computes", _, "listkeys"], &Method::POST) => {
            require_child(world, &ws_id, "computes", child(2))?;
            Ok(Reply::json(
                StatusCode::OK,
                json!({ "computeType": "AmlCompute" }),
            ))
        }
        (["connections"], &Method::GET) => list_connections(world, ctx, req, &ws_key),
        (["connections", _], _) => connection(world, ctx, req, &ws_id, child(2)),
        (["connections", _, "listsecrets"], &Method::POST) => {
            let r = require_child(world, &ws_id, "connections", child(2))?;
            let mut body = Value::clone(&r.body);
            if let Some(secrets) = r.secrets {
                body["properties"]["credentials"] = secrets;
            }
            Ok(Reply::json(StatusCode::OK, body))
        }
        (["datastores"], &Method::GET) => list_datastores(world, ctx, req, &ws_key),
        (["datastores", _], _) => datastore(world, ctx, req, &ws_id, child(2)),
        (["datastores", _, "listsecrets"], &Method::POST) => {
            let r = require_child(world, &ws_id, "datastores", child(2))?;
            Ok(Reply::json(
                StatusCode::OK,
                r.secrets.unwrap_or(json!({ "secretsType": "None" })),
            ))
        }
        (["codes" | "environments", ..], _) => {
            super::assets::handle(world, ctx, req, &ws, &ws_id, &rest[1..], &names[1..])
        }
        (["jobs"], &Method::GET) => super::jobs::list(world, ctx, req, &ws_key),
        (["jobs", _], _) => super::jobs::job(world, ctx, req, &ws, &ws_id, child(2)),
        (["jobs", _, "cancel"], &Method::POST) => {
            super::jobs::cancel(world, ctx, req, &ws_id, child(2))
        }
        _ => Err(no_route(req)),
    }
}

fn method_verb(m: &Method) -> &'static str {
    match *m {
        Method::GET => "read",
        Method::DELETE => "delete",
        _ => "write",
    }
}

/// A workspace child that must exist (404 ResourceNotFound otherwise).
pub(super) fn require_child(
    world: &World,
    ws_id: &str,
    type_seg: &str,
    name: &str,
) -> Result<crate::emulator::model::ArmRecord, ArmError> {
    let id = format!("{ws_id}/{type_seg}/{name}");
    get_arm(world, &key_of(&id))
        .ok_or_else(|| ArmError::not_found(&format!("{ML}/workspaces/{type_seg}"), &id, name))
}

fn list(
    world: &World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_key: &str,
    type_seg: &str,
) -> Result<Reply, ArmError> {
    let items = children(world, ws_key, type_seg)
        .into_iter()
        .map(|r| r.body.into_value())
        .collect();
    Ok(page(ctx, req, items))
}

// ---------------------------------------------------------------------------- workspaces

fn find_dependency(
    world: &World,
    id: &str,
    what: &str,
) -> Result<crate::emulator::model::ArmRecord, ArmError> {
    get_arm(world, &key_of(id)).ok_or_else(|| {
        ArmError::user_error(format!(
            "The {what} '{id}' was not found. Create it first; the workspace refers to it by ARM id."
        ))
        .with_target(what.to_string())
    })
}

fn workspace(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    rg_id: &str,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let key = key_of(ws_id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces"), ws_id, name);
    match req.method {
        // The discovery document is served where this emulator listens now (its port
        // changes from one run of `--emulator` to the next; the state stays).
        Method::GET => super::found_or(
            existing.map(|mut r| {
                if r.body["properties"].get("discoveryUrl").is_some() {
                    r.body_mut()["properties"]["discoveryUrl"] =
                        json!(format!("{}/discovery", ctx.base));
                }
                r
            }),
            not_found,
        ),
        Method::DELETE => {
            let Some(mut r) = existing else {
                return Ok(Reply::empty(StatusCode::NO_CONTENT));
            };
            let fail = ctx.lro_must_fail(req);
            r.body_mut()["properties"]["provisioningState"] = json!("Deleting");
            let location = r.body["location"].as_str().unwrap_or("global").to_string();
            put_arm(world, &key, r.clone())?;
            let op = world.start_op(OpKind::Delete, &key, ws_id, ML, &location, fail)?;
            Ok(super::operations::accepted(ctx, &req.segs[1], &op))
        }
        Method::PATCH => {
            let Some(mut r) = existing else {
                return Err(not_found());
            };
            let body = json_body(req)?;
            validate_body("WorkspaceUpdateParameters", &body)?;
            for field in ["tags", "sku", "identity"] {
                if let Some(v) = body.get(field) {
                    r.body_mut()[field] = v.clone();
                }
            }
            if let Some(Value::Object(props)) = body.get("properties") {
                for (k, v) in props {
                    r.body_mut()["properties"][k] = v.clone();
                }
            }
            ctx.touch(r.body_mut());
            put_arm(world, &key, r.clone())?;
            Ok(Reply::json(StatusCode::OK, r.body))
        }
        Method::PUT => {
            let body = json_body(req)?;
            validate_body("Workspace", &body)?;
            let props = &body["properties"];
            if let Some(mut r) = existing {
                return update_workspace(world, ctx, req, &key, &mut r, &body);
            }
            let location = body["location"].as_str().unwrap_or_default().to_string();
            if location.is_empty() {
                return Err(ArmError::bad_request(
                    "LocationRequired",
                    "The location property is required for this definition.",
                ));
            }
            let Some(storage_id) = props["storageAccount"].as_str() else {
                return Err(ArmError::user_error(
                    "properties.storageAccount is required: the ARM id of the workspace's storage account.",
                )
                .with_target("properties.storageAccount"));
            };
            let Some(vault_id) = props["keyVault"].as_str() else {
                return Err(ArmError::user_error(
                    "properties.keyVault is required: the ARM id of the workspace's key vault.",
                )
                .with_target("properties.keyVault"));
            };
            let storage = find_dependency(world, storage_id, "storage account")?;
            find_dependency(world, vault_id, "key vault")?;
            if let Some(ai) = props["applicationInsights"].as_str() {
                find_dependency(world, ai, "application insights component")?;
            }
            let workspace_id = uuid::Uuid::new_v4().to_string();
            let mut out_props = props.as_object().cloned().unwrap_or_default();
            let defaults = json!({
                "friendlyName": name,
                "hbiWorkspace": false,
                "publicNetworkAccess": "Enabled",
                "v1LegacyMode": false,
                "enableDataIsolation": false,
                "systemDatastoresAuthMode": "AccessKey",
            });
            for (k, v) in defaults.as_object().into_iter().flatten() {
                out_props.entry(k.clone()).or_insert(v.clone());
            }
            let ro = json!({
                "provisioningState": "Creating",
                "workspaceId": workspace_id,
                "tenantId": ctx.config().tenant_id,
                "mlFlowTrackingUri": format!("azureml://{location}.api.azureml.ms/mlflow/v1.0{ws_id}"),
                "discoveryUrl": format!("{}/discovery", ctx.base),
                "storageHnsEnabled": false,
                "privateLinkCount": 0,
            });
            for (k, v) in ro.as_object().into_iter().flatten() {
                out_props.insert(k.clone(), v.clone());
            }
            let identity = match body.get("identity") {
                Some(i) if i["type"] != "None" => {
                    let mut i = i.clone();
                    if i["type"]
                        .as_str()
                        .is_some_and(|t| t.contains("SystemAssigned"))
                    {
                        i["principalId"] = json!(uuid::Uuid::new_v4().to_string());
                        i["tenantId"] = json!(ctx.config().tenant_id);
                    }
                    i
                }
                Some(i) => i.clone(),
                None => json!({
                    "type": "SystemAssigned",
                    "principalId": uuid::Uuid::new_v4().to_string(),
                    "tenantId": ctx.config().tenant_id,
                }),
            };
            let out = json!({
                "id": ws_id,
                "name": name,
                "type": format!("{ML}/workspaces"),
                "location": location,
                "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "kind": body.get("kind").cloned().unwrap_or(json!("Default")),
                "sku": body.get("sku").cloned().unwrap_or(json!({ "name": "Basic", "tier": "Basic" })),
                "identity": identity,
                "systemData": ctx.system_data(),
                "properties": Value::Object(out_props),
            });
            let record = new_record(world, ctx, Kind::Workspace, out);
            put_arm(world, &key, record)?;
            create_default_datastore(world, ctx, ws_id, rg_id, &storage, &workspace_id)?;
            let fail = ctx.lro_must_fail(req);
            let op = world.start_op(OpKind::Create, &key, ws_id, ML, &location, fail)?;
            Ok(super::operations::accepted(ctx, &req.segs[1], &op))
        }
        _ => Err(no_route(req)),
    }
}

fn update_workspace(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    key: &str,
    r: &mut crate::emulator::model::ArmRecord,
    body: &Value,
) -> Result<Reply, ArmError> {
    if matches!(
        r.body["properties"]["provisioningState"].as_str(),
        Some("Creating" | "Updating")
    ) {
        return Err(ArmError::conflict(
            "Conflict",
            "The workspace is being provisioned; wait for the operation to finish before updating it.",
        ));
    }
    let loc = body["location"].as_str().unwrap_or_default();
    let mut changed = Vec::new();
    if !loc.is_empty() && !loc.eq_ignore_ascii_case(r.body["location"].as_str().unwrap_or_default())
    {
        changed.push("location".to_string());
    }
    for field in ["storageAccount", "keyVault", "hbiWorkspace"] {
        if let Some(v) = body["properties"].get(field) {
            let old = &r.body["properties"][field];
            let same = match (v.as_str(), old.as_str()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => v == old,
            };
            if !same {
                changed.push(format!("properties.{field}"));
            }
        }
    }
    if !changed.is_empty() {
        return Err(ArmError::user_error(format!(
            "Workspace property {} cannot be changed once the workspace has been created.",
            changed.join(", ")
        ))
        .with_target(changed[0].clone()));
    }
    for field in ["tags", "sku", "identity", "kind"] {
        if let Some(v) = body.get(field) {
            r.body_mut()[field] = v.clone();
        }
    }
    for field in [
        "friendlyName",
        "description",
        "applicationInsights",
        "containerRegistry",
        "publicNetworkAccess",
        "v1LegacyMode",
        "imageBuildCompute",
        "primaryUserAssignedIdentity",
        "systemDatastoresAuthMode",
        "enableDataIsolation",
    ] {
        if let Some(v) = body["properties"].get(field) {
            r.body_mut()["properties"][field] = v.clone();
        }
    }
    ctx.touch(r.body_mut());
    // A PUT of a workspace whose provisioning failed provisions it again, as ARM's
    // create-or-update does: a long-running operation that ends Succeeded (or Failed
    // once more).
    if r.body["properties"]["provisioningState"] == "Failed" {
        r.body_mut()["properties"]["provisioningState"] = json!("Updating");
        put_arm(world, key, r.clone())?;
        let id = r.body["id"].as_str().unwrap_or_default().to_string();
        let location = r.body["location"].as_str().unwrap_or_default().to_string();
        let fail = ctx.lro_must_fail(req);
        let op = world.start_op(OpKind::Create, key, &id, ML, &location, fail)?;
        return Ok(super::operations::accepted(ctx, &req.segs[1], &op));
    }
    put_arm(world, key, r.clone())?;
    Ok(Reply::json(StatusCode::OK, r.body.clone()))
}

fn create_default_datastore(
    world: &mut World,
    ctx: &Ctx<'_>,
    ws_id: &str,
    rg_id: &str,
    storage: &crate::emulator::model::ArmRecord,
    workspace_id: &str,
) -> Result<(), ArmError> {
    let (account, key, endpoint, protocol) = match &ctx.config().blob_backend {
        crate::emulator::config::BlobBackend::Local => (
            storage.body["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            storage
                .secrets
                .as_ref()
                .map(|s| s["key1"].clone())
                .unwrap_or(Value::Null),
            ctx.config().storage_suffix.clone(),
            ctx.shared.scheme.to_string(),
        ),
        crate::emulator::config::BlobBackend::Azurite {
            endpoint,
            account,
            key,
        } => (
            account.clone(),
            json!(key),
            endpoint.clone(),
            endpoint.split("://").next().unwrap_or("http").to_string(),
        ),
    };
    let container = format!("azureml-blobstore-{workspace_id}");
    let id = format!("{ws_id}/datastores/workspaceblobstore");
    let segs: Vec<&str> = rg_id.split('/').collect();
    let body = json!({
        "id": id,
        "name": "workspaceblobstore",
        "type": format!("{ML}/workspaces/datastores"),
        "systemData": ctx.system_data(),
        "properties": {
            "description": "The workspace's default blob datastore.",
            "tags": {},
            "properties": {},
            "isDefault": true,
            "datastoreType": "AzureBlob",
            "accountName": account,
            "containerName": container,
            "endpoint": endpoint,
            "protocol": protocol,
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
            "subscriptionId": segs.get(2).copied().unwrap_or_default(),
            "resourceGroup": segs.get(4).copied().unwrap_or_default(),
            "credentials": {
                "credentialsType": "AccountKey",
                "secrets": { "secretsType": "AccountKey" },
            },
        },
    });
    let mut record = new_record(world, ctx, Kind::Datastore, body);
    record.secrets = Some(json!({ "secretsType": "AccountKey", "key": key }));
    put_arm(world, &key_of(&id), record)?;
    for c in [container.as_str(), "azureml"] {
        create_container(world, ctx, &account, c)?;
    }
    Ok(())
}

/// Creates a blob container in the blob backend (no-op when it exists).
pub(crate) fn create_container(
    world: &mut World,
    ctx: &Ctx<'_>,
    account: &str,
    container: &str,
) -> Result<(), ArmError> {
    if let crate::emulator::config::BlobBackend::Azurite {
        endpoint,
        account,
        key,
    } = &ctx.config().blob_backend
    {
        // Created in Azurite before the answer goes out (see `azurite::Effect`).
        ctx.effects
            .borrow_mut()
            .push(crate::emulator::azurite::Effect::CreateContainer {
                endpoint: endpoint.clone(),
                account: account.clone(),
                key: key.clone(),
                container: container.to_string(),
            });
        return Ok(());
    }
    let key = format!("container:{}/{container}", account.to_ascii_lowercase());
    if world.store.get(&key).is_none() {
        world.store.put(
            &key,
            Record::Container(ContainerRecord {
                etag: format!("\"0x{:X}\"", ctx.now.unix_timestamp_nanos()),
                last_modified: ctx.now,
                metadata: Default::default(),
            }),
        )?;
    }
    Ok(())
}

fn workspace_keys(
    world: &World,
    ws: &crate::emulator::model::ArmRecord,
) -> Result<Reply, ArmError> {
    let storage_id = ws.body["properties"]["storageAccount"]
        .as_str()
        .unwrap_or_default();
    let storage = get_arm(world, &key_of(storage_id));
    let key = storage
        .and_then(|s| s.secrets)
        .map(|s| s["key1"].clone())
        .unwrap_or(Value::Null);
    let mut out = json!({ "userStorageKey": key, "userStorageArmId": storage_id });
    if let Some(ai) = ws.body["properties"]["applicationInsights"].as_str()
        && let Some(c) = get_arm(world, &key_of(ai))
    {
        out["appInsightsInstrumentationKey"] = c.body["properties"]["InstrumentationKey"].clone();
    }
    Ok(Reply::json(StatusCode::OK, out))
}

// ------------------------------------------------------------------------------ computes

/// Fields of AmlCompute that cannot change once the cluster exists.
const COMPUTE_IMMUTABLE: [&str; 6] = [
    "vmSize",
    "vmPriority",
    "osType",
    "subnet",
    "virtualMachineImage",
    "isolatedNetwork",
];

fn compute(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws: &crate::emulator::model::ArmRecord,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{ws_id}/computes/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces/computes"), &id, name);
    let sub = req.segs[1].clone();
    let location = ws.body["location"].as_str().unwrap_or("global").to_string();
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => {
            let Some(action) = query_get(&req.query, "underlyingResourceAction") else {
                return Err(ArmError::user_error(
                    "The query parameter 'underlyingResourceAction' is required (Delete or Detach).",
                )
                .with_target("underlyingResourceAction"));
            };
            if !["Delete", "Detach"].contains(&action) {
                return Err(ArmError::user_error(format!(
                    "underlyingResourceAction '{action}' is invalid: expected Delete or Detach."
                )));
            }
            let Some(mut r) = existing else {
                return Ok(Reply::empty(StatusCode::NO_CONTENT));
            };
            r.body_mut()["properties"]["provisioningState"] = json!("Deleting");
            put_arm(world, &key, r)?;
            let fail = ctx.lro_must_fail(req);
            let op = world.start_op(OpKind::Delete, &key, &id, ML, &location, fail)?;
            Ok(Reply::empty(StatusCode::ACCEPTED)
                .header(
                    "azure-asyncoperation",
                    super::operations::status_url(ctx, &sub, &op),
                )
                .header("location", super::operations::location_url(ctx, &sub, &op))
                .header("retry-after", ctx.retry_after()))
        }
        Method::PATCH => {
            let Some(mut r) = existing else {
                return Err(not_found());
            };
            let body = json_body(req)?;
            validate_body("ClusterUpdateParameters", &body)?;
            busy_check(world, &key, &r)?;
            if let Some(scale) = body["properties"]["properties"].get("scaleSettings") {
                // The same checks as a PUT, on the settings as they would be stored.
                let mut merged = r.body["properties"]["properties"]["scaleSettings"].clone();
                for (k, v) in scale.as_object().into_iter().flatten() {
                    merged[k] = v.clone();
                }
                check_scale(&merged)?;
                apply_scale(r.body_mut(), scale);
            }
            r.body_mut()["properties"]["modifiedOn"] = json!(rfc3339(ctx.now));
            put_arm(world, &key, r.clone())?;
            let fail = ctx.lro_must_fail(req);
            let op = world.start_op(OpKind::Update, &key, &id, ML, &location, fail)?;
            Ok(Reply::json(StatusCode::OK, r.body)
                .header(
                    "azure-asyncoperation",
                    super::operations::status_url(ctx, &sub, &op),
                )
                .header("location", super::operations::location_url(ctx, &sub, &op)))
        }
        Method::PUT => {
            let body = json_body(req)?;
            validate_body("ComputeResource", &body)?;
            let compute_type = body["properties"]["computeType"]
                .as_str()
                .unwrap_or_default();
            if compute_type != "AmlCompute" {
                return Err(ArmError::user_error(format!(
                    "computeType '{compute_type}' is not supported by the emulator; only AmlCompute is."
                ))
                .with_target("properties.computeType"));
            }
            let given = body["properties"]["properties"].clone();
            if let Some(scale) = given.get("scaleSettings") {
                check_scale(scale)?;
            }
            if let Some(mut r) = existing {
                busy_check(world, &key, &r)?;
                let fresh = compute_properties(&given, ctx);
                let old = &r.body["properties"]["properties"];
                let changed: Vec<&str> = COMPUTE_IMMUTABLE
                    .iter()
                    .copied()
                    .filter(|f| {
                        let (a, b) = (&fresh[*f], &old[*f]);
                        match (a.as_str(), b.as_str()) {
                            (Some(x), Some(y)) => !x.eq_ignore_ascii_case(y),
                            _ => a != b,
                        }
                    })
                    .collect();
                let loc_changed = body["location"].as_str().is_some_and(|l| {
                    !l.eq_ignore_ascii_case(r.body["location"].as_str().unwrap_or_default())
                });
                if !changed.is_empty() || loc_changed {
                    let mut fields: Vec<String> = changed
                        .iter()
                        .map(|f| format!("properties.properties.{f}"))
                        .collect();
                    if loc_changed {
                        fields.push("location".into());
                    }
                    return Err(ArmError::bad_request(
                        "BadRequest",
                        format!(
                            "The AmlCompute '{name}' already exists and {} cannot be updated in place. Delete the compute and create it again to change them.",
                            fields.join(", ")
                        ),
                    )
                    .with_target(fields[0].clone()));
                }
                if let Some(scale) = given.get("scaleSettings") {
                    apply_scale(r.body_mut(), scale);
                }
                if let Some(d) = body["properties"].get("description") {
                    r.body_mut()["properties"]["description"] = d.clone();
                }
                if let Some(t) = body.get("tags") {
                    r.body_mut()["tags"] = t.clone();
                }
                r.body_mut()["properties"]["modifiedOn"] = json!(rfc3339(ctx.now));
                ctx.touch(r.body_mut());
                put_arm(world, &key, r.clone())?;
                return Ok(Reply::json(StatusCode::OK, r.body));
            }
            let loc = body["location"].as_str().unwrap_or(&location).to_string();
            let mut props = json!({
                "computeType": "AmlCompute",
                "computeLocation": body["properties"]["computeLocation"].as_str().unwrap_or(&loc),
                "provisioningState": "Creating",
                "createdOn": rfc3339(ctx.now),
                "modifiedOn": rfc3339(ctx.now),
                "isAttachedCompute": false,
                "disableLocalAuth": body["properties"]["disableLocalAuth"].as_bool().unwrap_or(false),
                "properties": compute_properties(&given, ctx),
            });
            if let Some(d) = body["properties"].get("description") {
                props["description"] = d.clone();
            }
            let mut out = json!({
                "id": id,
                "name": name,
                "type": format!("{ML}/workspaces/computes"),
                "location": loc,
                "systemData": ctx.system_data(),
                "properties": props,
            });
            for field in ["tags", "identity", "sku"] {
                if let Some(v) = body.get(field) {
                    out[field] = v.clone();
                }
            }
            let record = new_record(world, ctx, Kind::Compute, out.clone());
            put_arm(world, &key, record)?;
            let fail = ctx.lro_must_fail(req);
            let op = world.start_op(OpKind::Create, &key, &id, ML, &location, fail)?;
            Ok(Reply::json(StatusCode::CREATED, out)
                .header(
                    "azure-asyncoperation",
                    super::operations::status_url(ctx, &sub, &op),
                )
                .header("retry-after", ctx.retry_after()))
        }
        _ => Err(no_route(req)),
    }
}

fn busy_check(
    world: &World,
    key: &str,
    r: &crate::emulator::model::ArmRecord,
) -> Result<(), ArmError> {
    let state = r.body["properties"]["provisioningState"]
        .as_str()
        .unwrap_or_default();
    if matches!(state, "Creating" | "Deleting" | "Updating")
        || world
            .active_op_for(key)
            .is_some_and(|op| op.kind != OpKind::Update)
    {
        return Err(ArmError::conflict(
            "Conflict",
            format!(
                "The compute is in provisioning state '{state}'; another operation is in progress. Retry when it has finished."
            ),
        ));
    }
    Ok(())
}

/// What the service checks in scale settings beyond the schema (which bounds each count
/// to int32): a readable idle time, and no more nodes at minimum than at maximum.
fn check_scale(scale: &Value) -> Result<(), ArmError> {
    check_idle_time(scale)?;
    let min = scale["minNodeCount"].as_i64().unwrap_or(0);
    let max = scale["maxNodeCount"].as_i64().unwrap_or(0);
    if min > max {
        return Err(ArmError::user_error(format!(
            "minNodeCount ({min}) must not exceed maxNodeCount ({max})."
        ))
        .with_target("properties.properties.scaleSettings"));
    }
    Ok(())
}

fn check_idle_time(scale: &Value) -> Result<(), ArmError> {
    if let Some(t) = scale
        .get("nodeIdleTimeBeforeScaleDown")
        .and_then(Value::as_str)
        && iso8601_seconds(t).is_none()
    {
        return Err(ArmError::user_error(format!(
            "nodeIdleTimeBeforeScaleDown '{t}' is not an ISO 8601 duration such as PT2M."
        ))
        .with_target("properties.properties.scaleSettings.nodeIdleTimeBeforeScaleDown"));
    }
    Ok(())
}

/// AmlCompute properties with the service's defaults filled in.
fn compute_properties(given: &Value, ctx: &Ctx<'_>) -> Value {
    let mut p: Map<String, Value> = given.as_object().cloned().unwrap_or_default();
    // Credentials are write-only.
    if let Some(c) = p
        .get_mut("userAccountCredentials")
        .and_then(Value::as_object_mut)
    {
        c.remove("adminUserPassword");
        c.remove("adminUserSshPublicKey");
    }
    let defaults = json!({
        "vmSize": "STANDARD_DS3_V2",
        "vmPriority": "Dedicated",
        "osType": "Linux",
        "isolatedNetwork": false,
        "remoteLoginPortPublicAccess": "NotSpecified",
        "enableNodePublicIp": true,
    });
    for (k, v) in defaults.as_object().into_iter().flatten() {
        p.entry(k.clone()).or_insert(v.clone());
    }
    let mut scale = p
        .get("scaleSettings")
        .cloned()
        .unwrap_or(json!({ "maxNodeCount": 1 }));
    if scale.get("minNodeCount").is_none() {
        scale["minNodeCount"] = json!(0);
    }
    if scale.get("nodeIdleTimeBeforeScaleDown").is_none() {
        scale["nodeIdleTimeBeforeScaleDown"] = json!("PT120S");
    }
    let min = scale["minNodeCount"].clone();
    p.insert("scaleSettings".into(), scale);
    p.insert("allocationState".into(), json!("Steady"));
    p.insert(
        "allocationStateTransitionTime".into(),
        json!(rfc3339(ctx.now)),
    );
    p.insert("currentNodeCount".into(), json!(0));
    p.insert("targetNodeCount".into(), min);
    p.insert(
        "nodeStateCounts".into(),
        json!({
            "idleNodeCount": 0, "runningNodeCount": 0, "preparingNodeCount": 0,
            "unusableNodeCount": 0, "leavingNodeCount": 0, "preemptedNodeCount": 0,
        }),
    );
    Value::Object(p)
}

fn apply_scale(body: &mut Value, scale: &Value) {
    let target = &mut body["properties"]["properties"]["scaleSettings"];
    for field in [
        "maxNodeCount",
        "minNodeCount",
        "nodeIdleTimeBeforeScaleDown",
    ] {
        if let Some(v) = scale.get(field) {
            target[field] = v.clone();
        }
    }
    let min = target["minNodeCount"].clone();
    body["properties"]["properties"]["targetNodeCount"] = min;
}

// --------------------------------------------------------------------------- connections

fn list_connections(
    world: &World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_key: &str,
) -> Result<Reply, ArmError> {
    let target = query_get(&req.query, "target");
    let category = query_get(&req.query, "category");
    let items = children(world, ws_key, "connections")
        .into_iter()
        .map(|r| r.body.into_value())
        .filter(|b| target.is_none_or(|t| b["properties"]["target"] == t))
        .filter(|b| category.is_none_or(|c| b["properties"]["category"] == c))
        .collect();
    Ok(page(ctx, req, items))
}

/// Secret fields of connection credentials (x-ms-secret in the OpenAPI).
const CONNECTION_SECRETS: [&str; 8] = [
    "password",
    "securityToken",
    "pat",
    "sas",
    "key",
    "clientSecret",
    "secretAccessKey",
    "keys",
];

fn connection(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{ws_id}/connections/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces/connections"), &id, name);
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => super::delete_now(world, &key, existing.is_some()),
        Method::PUT | Method::PATCH => {
            let body = if req.body.is_empty() {
                json!({})
            } else {
                json_body(req)?
            };
            let mut props = body["properties"].clone();
            if req.method == Method::PATCH {
                let Some(r) = &existing else {
                    return Err(not_found());
                };
                validate_body("WorkspaceConnectionUpdateParameter", &body)?;
                let mut merged = r.body["properties"].clone();
                if let Some(secrets) = &r.secrets {
                    merged["credentials"] = secrets.clone();
                }
                for (k, v) in props.as_object().into_iter().flatten() {
                    merged[k] = v.clone();
                }
                props = merged;
            } else {
                validate_body("WorkspaceConnectionPropertiesV2BasicResource", &body)?;
            }
            props["createdByWorkspaceArmId"] = json!(ws_id);
            if props["category"] == "ContainerRegistry" && props.get("group").is_none() {
                props["group"] = json!("Azure");
            }
            let secrets = props.get("credentials").cloned();
            if let Some(Value::Object(c)) = props.get_mut("credentials") {
                c.retain(|k, _| !CONNECTION_SECRETS.contains(&k.as_str()));
            }
            let mut record = match existing {
                Some(mut r) => {
                    r.body_mut()["properties"] = props;
                    ctx.touch(r.body_mut());
                    r
                }
                None => {
                    let out = json!({
                        "id": id,
                        "name": name,
                        "type": format!("{ML}/workspaces/connections"),
                        "systemData": ctx.system_data(),
                        "properties": props,
                    });
                    new_record(world, ctx, Kind::Connection, out)
                }
            };
            record.secrets = secrets;
            put_arm(world, &key, record.clone())?;
            // Azure answers 200 to both create and update of a connection.
            Ok(Reply::json(StatusCode::OK, record.body))
        }
        _ => Err(no_route(req)),
    }
}

// ---------------------------------------------------------------------------- datastores

fn list_datastores(
    world: &World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_key: &str,
) -> Result<Reply, ArmError> {
    let is_default = query_get(&req.query, "isDefault").map(|v| v.eq_ignore_ascii_case("true"));
    let names: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("names") || k.eq_ignore_ascii_case("names[]"))
        .map(|(_, v)| v.as_str())
        .collect();
    let items = children(world, ws_key, "datastores")
        .into_iter()
        .map(|r| r.body.into_value())
        .filter(|b| {
            is_default.is_none_or(|d| b["properties"]["isDefault"].as_bool().unwrap_or(false) == d)
        })
        .filter(|b| names.is_empty() || names.iter().any(|n| b["name"] == *n))
        .collect();
    Ok(page(ctx, req, items))
}

fn datastore(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{ws_id}/datastores/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces/datastores"), &id, name);
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => {
            let Some(r) = existing else {
                return Ok(Reply::empty(StatusCode::NO_CONTENT));
            };
            if r.body["properties"]["isDefault"] == true {
                return Err(ArmError::user_error(format!(
                    "Datastore '{name}' is the workspace's default datastore and cannot be deleted."
                )));
            }
            world.delete_tree(&key)?;
            Ok(Reply::empty(StatusCode::OK))
        }
        Method::PUT => {
            let body = json_body(req)?;
            validate_body("Datastore", &body)?;
            let mut props = body["properties"].clone();
            super::stringify_maps(&mut props, &["properties"]);
            let secrets = props["credentials"].get("secrets").cloned();
            if let Some(Value::Object(s)) = props["credentials"].get_mut("secrets") {
                s.retain(|k, _| k == "secretsType");
            }
            if props["datastoreType"] == "AzureBlob" {
                for (k, v) in [
                    ("endpoint", json!("core.windows.net")),
                    ("protocol", json!("https")),
                    ("serviceDataAccessAuthIdentity", json!("None")),
                ] {
                    if props.get(k).is_none() {
                        props[k] = v;
                    }
                }
            }
            for (k, v) in [
                ("description", Value::Null),
                ("tags", json!({})),
                ("properties", json!({})),
            ] {
                if props.get(k).is_none() && !v.is_null() {
                    props[k] = v;
                }
            }
            let (status, mut record) = match existing {
                Some(mut r) => {
                    props["isDefault"] = r.body["properties"]["isDefault"].clone();
                    r.body_mut()["properties"] = props;
                    ctx.touch(r.body_mut());
                    (StatusCode::OK, r)
                }
                None => {
                    props["isDefault"] = json!(false);
                    let out = json!({
                        "id": id,
                        "name": name,
                        "type": format!("{ML}/workspaces/datastores"),
                        "systemData": ctx.system_data(),
                        "properties": props,
                    });
                    (
                        StatusCode::CREATED,
                        new_record(world, ctx, Kind::Datastore, out),
                    )
                }
            };
            if secrets.is_some() {
                record.secrets = secrets;
            }
            put_arm(world, &key, record.clone())?;
            Ok(Reply::json(status, record.body))
        }
        _ => Err(no_route(req)),
    }
}
