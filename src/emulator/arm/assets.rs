//! Versioned assets: code and environment containers and their immutable versions,
//! including `startPendingUpload` (a SAS URL for a fresh blob container) and the code
//! version list filtered by content hash across every code name.

use std::cmp::Ordering;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    Ctx, ML, Req, children, get_arm, json_body, key_of, new_record, no_route, page, put_arm,
};
use crate::emulator::model::{ArmRecord, Kind, MetaRecord, Record};
use crate::emulator::openapi::validate_body;
use crate::emulator::reply::{ArmError, Reply};
use crate::emulator::util::query_get;
use crate::emulator::world::World;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Asset {
    Code,
    Environment,
}

impl Asset {
    fn seg(self) -> &'static str {
        match self {
            Asset::Code => "codes",
            Asset::Environment => "environments",
        }
    }
    fn container_def(self) -> &'static str {
        match self {
            Asset::Code => "CodeContainer",
            Asset::Environment => "EnvironmentContainer",
        }
    }
    fn version_def(self) -> &'static str {
        match self {
            Asset::Code => "CodeVersion",
            Asset::Environment => "EnvironmentVersion",
        }
    }
    fn kinds(self) -> (Kind, Kind) {
        match self {
            Asset::Code => (Kind::CodeContainer, Kind::CodeVersion),
            Asset::Environment => (Kind::EnvironmentContainer, Kind::EnvironmentVersion),
        }
    }
}

pub(super) fn handle(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws: &ArmRecord,
    ws_id: &str,
    rest: &[&str],
    names: &[String],
) -> Result<Reply, ArmError> {
    let asset = if rest[0] == "codes" {
        Asset::Code
    } else {
        Asset::Environment
    };
    let ws_key = key_of(ws_id);
    match (&rest[1..], &req.method) {
        ([], &Method::GET) => {
            let items = filter_view(req, children(world, &ws_key, asset.seg()))
                .into_iter()
                .map(|r| r.body.into_value())
                .collect();
            Ok(page(ctx, req, items))
        }
        ([_], _) => container(world, ctx, req, asset, ws_id, &names[1]),
        ([_, "versions"], &Method::GET) => list_versions(world, ctx, req, asset, ws_id, &names[1]),
        ([_, "versions", _], _) => version(world, ctx, req, asset, ws_id, &names[1], &names[3]),
        ([_, "versions", _, "startpendingupload"], &Method::POST) if asset == Asset::Code => {
            start_pending_upload(world, ctx, req, ws, ws_id, &names[1], &names[3])
        }
        ([_, "versions", _, "publish"], &Method::POST) | ([_, "publish"], &Method::POST) => {
            Err(ArmError::user_error(
                "Publishing assets to a registry is not supported by the emulator.",
            ))
        }
        _ => Err(no_route(req)),
    }
}

fn is_archived(r: &ArmRecord) -> bool {
    r.body["properties"]["isArchived"]
        .as_bool()
        .unwrap_or(false)
}

fn filter_view(req: &Req, items: Vec<ArmRecord>) -> Vec<ArmRecord> {
    let view = query_get(&req.query, "listViewType").unwrap_or("ActiveOnly");
    items
        .into_iter()
        .filter(|r| match view {
            v if v.eq_ignore_ascii_case("All") => true,
            v if v.eq_ignore_ascii_case("ArchivedOnly") => is_archived(r),
            _ => !is_archived(r),
        })
        .collect()
}

fn container_id(ws_id: &str, asset: Asset, name: &str) -> String {
    format!("{ws_id}/{}/{name}", asset.seg())
}

fn container_body(ctx: &Ctx<'_>, asset: Asset, id: &str, name: &str, props: Value) -> Value {
    json!({
        "id": id,
        "name": name,
        "type": format!("{ML}/workspaces/{}", asset.seg()),
        "systemData": ctx.system_data(),
        "properties": props,
    })
}

fn container(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    asset: Asset,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = container_id(ws_id, asset, name);
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces/{}", asset.seg()), &id, name);
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => super::delete_now(world, &key, existing.is_some()),
        Method::PUT => {
            let body = json_body(req)?;
            validate_body(asset.container_def(), &body)?;
            let mut props = body["properties"].clone();
            for (k, v) in [
                ("isArchived", json!(false)),
                ("tags", json!({})),
                ("properties", json!({})),
            ] {
                if props.get(k).is_none() {
                    props[k] = v;
                }
            }
            props["provisioningState"] = json!("Succeeded");
            super::stringify_maps(&mut props, &["properties"]);
            let (status, record) = match existing {
                Some(mut r) => {
                    for k in ["latestVersion", "nextVersion"] {
                        props[k] = r.body["properties"][k].clone();
                    }
                    r.body_mut()["properties"] = props;
                    ctx.touch(r.body_mut());
                    (StatusCode::OK, r)
                }
                None => {
                    props["nextVersion"] = json!("1");
                    let out = container_body(ctx, asset, &id, name, props);
                    (
                        StatusCode::CREATED,
                        new_record(world, ctx, asset.kinds().0, out),
                    )
                }
            };
            put_arm(world, &key, record.clone())?;
            Ok(Reply::json(status, record.body))
        }
        _ => Err(no_route(req)),
    }
}

/// Recomputes a container's latestVersion (last created) and nextVersion (max numeric + 1).
fn refresh_container(
    world: &mut World,
    ctx: &Ctx<'_>,
    asset: Asset,
    ws_id: &str,
    name: &str,
) -> Result<(), ArmError> {
    let id = container_id(ws_id, asset, name);
    let key = key_of(&id);
    let versions = children(world, &key, "versions");
    let mut record = match get_arm(world, &key) {
        Some(r) => r,
        None => {
            let props = json!({ "isArchived": false, "tags": {}, "properties": {}, "provisioningState": "Succeeded" });
            let out = container_body(ctx, asset, &id, name, props);
            new_record(world, ctx, asset.kinds().0, out)
        }
    };
    let latest = versions
        .iter()
        .filter(|v| !is_archived(v))
        .max_by_key(|v| v.created_seq)
        .or_else(|| versions.iter().max_by_key(|v| v.created_seq))
        .and_then(|v| v.body["name"].as_str().map(str::to_string));
    let next = versions
        .iter()
        .filter_map(|v| v.body["name"].as_str()?.parse::<u64>().ok())
        .max()
        .map(|m| m + 1)
        .unwrap_or(1);
    match latest {
        Some(l) => record.body_mut()["properties"]["latestVersion"] = json!(l),
        None => {
            if let Some(p) = record.body_mut()["properties"].as_object_mut() {
                p.remove("latestVersion");
            }
        }
    }
    record.body_mut()["properties"]["nextVersion"] = json!(next.to_string());
    put_arm(world, &key, record)
}

fn compare_versions(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn list_versions(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    asset: Asset,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let hash = query_get(&req.query, "hash");
    let mut items: Vec<ArmRecord> = match (asset, hash) {
        (Asset::Code, Some(hash)) => {
            // "return CodeVersion assets with specified content hash value, regardless of name"
            let hash_version = query_get(&req.query, "hashVersion");
            let prefix = format!("{}/codes/", key_of(ws_id));
            world
                .store
                .scan(&prefix)
                .filter(|(k, _)| k.contains("/versions/"))
                .filter_map(|(_, r)| match r {
                    Record::Arm(a) if a.kind == Kind::CodeVersion => Some(a.clone()),
                    _ => None,
                })
                .filter(|r| {
                    let p = &r.body["properties"]["properties"];
                    let h = p["hash_sha256"].as_str() == Some(hash);
                    let hv = hash_version.is_none_or(|want| match &p["hash_version"] {
                        Value::String(s) => s == want,
                        Value::Number(n) => n.to_string() == want,
                        _ => false,
                    });
                    h && hv
                })
                .collect()
        }
        _ => children(
            world,
            &key_of(&container_id(ws_id, asset, name)),
            "versions",
        ),
    };
    items = filter_view(req, items);
    let order = query_get(&req.query, "$orderBy")
        .unwrap_or("createdtime desc")
        .to_ascii_lowercase();
    let desc = order.ends_with("desc");
    if order.starts_with("version") {
        items.sort_by(|a, b| {
            compare_versions(
                a.body["name"].as_str().unwrap_or_default(),
                b.body["name"].as_str().unwrap_or_default(),
            )
        });
    } else {
        items.sort_by_key(|r| r.created_seq);
    }
    if desc {
        items.reverse();
    }
    if let Some(top) = query_get(&req.query, "$top").and_then(|t| t.parse::<usize>().ok()) {
        items.truncate(top);
    }
    Ok(page(
        ctx,
        req,
        items.into_iter().map(|r| r.body.into_value()).collect(),
    ))
}

/// Fields of a version's properties that may change after creation.
const MUTABLE: [&str; 5] = ["description", "tags", "isArchived", "stage", "properties"];
/// Read-only fields the service fills in.
const SERVER_SET: [&str; 2] = ["provisioningState", "environmentType"];

fn version_properties(asset: Asset, given: &Value) -> Result<Value, ArmError> {
    let mut p = given.clone();
    if !p.is_object() {
        p = json!({});
    }
    for (k, v) in [
        ("isAnonymous", json!(false)),
        ("isArchived", json!(false)),
        ("tags", json!({})),
        ("properties", json!({})),
    ] {
        if p.get(k).is_none() {
            p[k] = v;
        }
    }
    super::stringify_maps(&mut p, &["properties"]);
    if asset == Asset::Environment {
        let image = p.get("image").is_some_and(|v| !v.is_null());
        let build = p.get("build").is_some_and(|v| !v.is_null());
        match (image, build) {
            (true, true) => {
                return Err(ArmError::user_error(
                    "An environment version must set either 'image' or 'build', not both.",
                )
                .with_target("properties.build"));
            }
            (false, false) => {
                return Err(ArmError::user_error(
                    "An environment version must set 'image' or 'build' (a Docker build context).",
                )
                .with_target("properties.image"));
            }
            (false, true) if p.get("condaFile").is_some_and(|v| !v.is_null()) => {
                return Err(ArmError::user_error(
                    "'condaFile' cannot be combined with 'build': put the dependencies in the Dockerfile.",
                )
                .with_target("properties.condaFile"));
            }
            _ => {}
        }
        if build && p["build"].get("dockerfilePath").is_none() {
            p["build"]["dockerfilePath"] = json!("Dockerfile");
        }
        for (k, v) in [
            ("osType", json!("Linux")),
            ("autoRebuild", json!("Disabled")),
        ] {
            if p.get(k).is_none() {
                p[k] = v;
            }
        }
        p["environmentType"] = json!("UserCreated");
    }
    p["provisioningState"] = json!("Succeeded");
    Ok(p)
}

fn immutable_view(p: &Value) -> Value {
    super::without_fields(&super::without_fields(p, &MUTABLE), &SERVER_SET)
}

fn version(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    asset: Asset,
    ws_id: &str,
    name: &str,
    version: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{}/versions/{version}", container_id(ws_id, asset, name));
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || {
        ArmError::not_found(
            &format!("{ML}/workspaces/{}/versions", asset.seg()),
            &id,
            &format!("{name}/{version}"),
        )
    };
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => {
            let existed = existing.is_some();
            let reply = super::delete_now(world, &key, existed)?;
            if existed {
                refresh_container(world, ctx, asset, ws_id, name)?;
            }
            Ok(reply)
        }
        Method::PUT => {
            let body = json_body(req)?;
            validate_body(asset.version_def(), &body)?;
            let props = version_properties(asset, &body["properties"])?;
            let (status, record) = match existing {
                Some(mut r) => {
                    let before = immutable_view(&r.body["properties"]);
                    let after = immutable_view(&props);
                    if before != after {
                        let changed = super::changed_fields(&before, &after);
                        return Err(ArmError::conflict(
                            "Conflict",
                            format!(
                                "The {} version {name}:{version} already exists and versions are immutable; changed field(s): {}. Create a new version instead.",
                                if asset == Asset::Code {
                                    "code"
                                } else {
                                    "environment"
                                },
                                changed.join(", ")
                            ),
                        ));
                    }
                    r.body_mut()["properties"] = props;
                    ctx.touch(r.body_mut());
                    (StatusCode::OK, r)
                }
                None => {
                    let out = json!({
                        "id": id,
                        "name": version,
                        "type": format!("{ML}/workspaces/{}/versions", asset.seg()),
                        "systemData": ctx.system_data(),
                        "properties": props,
                    });
                    (
                        StatusCode::CREATED,
                        new_record(world, ctx, asset.kinds().1, out),
                    )
                }
            };
            put_arm(world, &key, record.clone())?;
            refresh_container(world, ctx, asset, ws_id, name)?;
            Ok(Reply::json(status, record.body))
        }
        _ => Err(no_route(req)),
    }
}

fn start_pending_upload(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws: &ArmRecord,
    ws_id: &str,
    name: &str,
    version: &str,
) -> Result<Reply, ArmError> {
    let body = json_body(req)?;
    validate_body("PendingUploadRequestDto", &body)?;
    let upload_type = body["pendingUploadType"]
        .as_str()
        .unwrap_or("TemporaryBlobReference")
        .to_string();
    let upload_id = body["pendingUploadId"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if upload_type == "None" {
        return Ok(Reply::json(
            StatusCode::OK,
            json!({ "pendingUploadId": upload_id, "pendingUploadType": "None" }),
        ));
    }
    let index = format!("pending:{}:{name}:{version}:{upload_id}", key_of(ws_id));
    let container = match world.store.get(&index) {
        Some(Record::Meta(m)) => m.value.as_str().unwrap_or_default().to_string(),
        _ => {
            let c = format!("pending-{}", uuid::Uuid::new_v4().simple());
            world
                .store
                .put(&index, Record::Meta(MetaRecord { value: json!(c) }))?;
            c
        }
    };
    let storage_id = ws.body["properties"]["storageAccount"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (blob_uri, account, key) = match &ctx.config().blob_backend {
        crate::emulator::config::BlobBackend::Local => {
            let storage = get_arm(world, &key_of(&storage_id)).ok_or_else(|| {
                ArmError::user_error(format!(
                    "The workspace's storage account '{storage_id}' no longer exists."
                ))
            })?;
            let account = storage.body["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = storage
                .secrets
                .as_ref()
                .and_then(|s| s["key1"].as_str())
                .unwrap_or_default()
                .to_string();
            super::ml::create_container(world, ctx, &account, &container)?;
            (format!("{}/{account}/{container}", ctx.base), account, key)
        }
        crate::emulator::config::BlobBackend::Azurite {
            endpoint,
            account,
            key,
        } => {
            super::ml::create_container(world, ctx, account, &container)?;
            (
                format!("{}/{container}", endpoint.trim_end_matches('/')),
                account.clone(),
                key.clone(),
            )
        }
    };
    let sas = crate::emulator::blob::sas::container_sas(
        &account,
        &key,
        &container,
        "racwdl",
        ctx.now - time::Duration::minutes(5),
        ctx.now + time::Duration::days(7),
    );
    Ok(Reply::json(
        StatusCode::OK,
        json!({
            "pendingUploadId": upload_id,
            "pendingUploadType": "TemporaryBlobReference",
            "blobReferenceForConsumption": {
                "blobUri": blob_uri,
                "storageAccountArmId": storage_id,
                "credential": { "credentialType": "SAS", "sasUri": format!("{blob_uri}?{sas}") },
            },
        }),
    ))
}
