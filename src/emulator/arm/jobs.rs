//! Command jobs: create-once runs whose status moves NotStarted -> Queued -> Preparing ->
//! Running -> Completed (on the simulated clock or by explicit steps), cancel, delete.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    Ctx, ML, Req, children, get_arm, json_body, key_of, new_record, no_route, page, put_arm,
};
use crate::emulator::model::{ArmRecord, Kind, OpKind};
use crate::emulator::openapi::validate_body;
use crate::emulator::reply::{ArmError, Reply};
use crate::emulator::util::query_get;
use crate::emulator::world::{World, job_is_terminal};

/// JobBaseProperties fields a re-PUT may change (x-ms-mutability includes "update").
const MUTABLE: [&str; 5] = [
    "description",
    "tags",
    "properties",
    "isArchived",
    "notificationSetting",
];
/// Fields the service owns.
const SERVER_SET: [&str; 3] = ["status", "services", "parameters"];

pub(super) fn list(
    world: &World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_key: &str,
) -> Result<Reply, ArmError> {
    let job_type = query_get(&req.query, "jobType");
    let tag = query_get(&req.query, "tag");
    let view = query_get(&req.query, "listViewType").unwrap_or("ActiveOnly");
    let items = children(world, ws_key, "jobs")
        .into_iter()
        .map(|r| r.body.into_value())
        .filter(|b| job_type.is_none_or(|t| b["properties"]["jobType"] == t))
        .filter(|b| tag.is_none_or(|t| b["properties"]["tags"].get(t).is_some()))
        .filter(|b| {
            let archived = b["properties"]["isArchived"].as_bool().unwrap_or(false);
            match view {
                v if v.eq_ignore_ascii_case("All") => true,
                v if v.eq_ignore_ascii_case("ArchivedOnly") => archived,
                _ => !archived,
            }
        })
        .collect();
    Ok(page(ctx, req, items))
}

fn with_defaults(ctx: &Ctx<'_>, ws: &ArmRecord, ws_id: &str, name: &str, given: &Value) -> Value {
    let mut p = given.clone();
    for (k, v) in [
        ("experimentName", json!("Default")),
        ("displayName", json!(name)),
        ("isArchived", json!(false)),
        ("tags", json!({})),
        ("properties", json!({})),
        ("inputs", json!({})),
        ("outputs", json!({})),
        ("environmentVariables", json!({})),
    ] {
        if p.get(k).is_none_or(Value::is_null) {
            p[k] = v;
        }
    }
    if p.get("resources").is_none_or(Value::is_null) {
        p["resources"] = json!({});
    }
    if p["resources"].get("instanceCount").is_none() {
        p["resources"]["instanceCount"] = json!(1);
    }
    if p["resources"].get("shmSize").is_none() {
        p["resources"]["shmSize"] = json!("2g");
    }
    let location = ws.body["location"].as_str().unwrap_or("eastus");
    let tenant = &ctx.config().tenant_id;
    let mut services = json!({
        "Tracking": {
            "jobServiceType": "Tracking",
            "endpoint": format!("azureml://{location}.api.azureml.ms/mlflow/v1.0{ws_id}?"),
        },
        "Studio": {
            "jobServiceType": "Studio",
            "endpoint": format!("https://ml.azure.com/runs/{name}?wsid={ws_id}&tid={tenant}"),
        },
    });
    if let Some(Value::Object(user)) = given.get("services") {
        for (k, v) in user {
            services[k] = v.clone();
        }
    }
    p["services"] = services;
    p["status"] = json!("NotStarted");
    super::stringify_maps(&mut p, &["properties", "environmentVariables"]);
    p
}

fn immutable_view(p: &Value) -> Value {
    super::without_fields(&super::without_fields(p, &MUTABLE), &SERVER_SET)
}

fn check_reference(world: &World, props: &Value, field: &str, what: &str) -> Result<(), ArmError> {
    let Some(id) = props.get(field).and_then(Value::as_str) else {
        return Ok(());
    };
    // Registry and curated references (azureml://...) are not ARM ids the emulator holds.
    if !id.starts_with("/subscriptions/") {
        return Ok(());
    }
    if get_arm(world, &key_of(id)).is_none() {
        return Err(ArmError::user_error(format!(
            "The {what} '{id}' referenced by {field} was not found."
        ))
        .with_target(format!("properties.{field}")));
    }
    Ok(())
}

pub(super) fn job(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws: &ArmRecord,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let id = format!("{ws_id}/jobs/{name}");
    let key = key_of(&id);
    let existing = get_arm(world, &key);
    let not_found = || ArmError::not_found(&format!("{ML}/workspaces/jobs"), &id, name);
    match req.method {
        Method::GET => super::found_or(existing, not_found),
        Method::DELETE => {
            if existing.is_none() {
                return Ok(Reply::empty(StatusCode::NO_CONTENT));
            }
            let location = ws.body["location"].as_str().unwrap_or("global").to_string();
            let fail = ctx.lro_must_fail(req);
            let op = world.start_op(OpKind::Delete, &key, &id, ML, &location, fail)?;
            Ok(super::operations::accepted(ctx, &req.segs[1], &op)
                .header("x-ms-async-operation-timeout", "PT1H"))
        }
        Method::PUT => {
            let body = json_body(req)?;
            validate_body("JobBase", &body)?;
            let props = &body["properties"];
            let job_type = props["jobType"].as_str().unwrap_or_default();
            if job_type != "Command" {
                return Err(ArmError::user_error(format!(
                    "jobType '{job_type}' is not supported by the emulator; only Command jobs are."
                ))
                .with_target("properties.jobType"));
            }
            check_reference(world, props, "computeId", "compute")?;
            check_reference(world, props, "environmentId", "environment version")?;
            check_reference(world, props, "codeId", "code version")?;
            let fresh = with_defaults(ctx, ws, ws_id, name, props);
            if let Some(mut r) = existing {
                let before = immutable_view(&r.body["properties"]);
                let after = immutable_view(&fresh);
                if before != after {
                    let changed = super::changed_fields(&before, &after);
                    return Err(ArmError::user_error(format!(
                        "A job named '{name}' already exists and jobs cannot be changed once submitted; only {} may be updated. Changed: {}.",
                        MUTABLE.join(", "),
                        changed.join(", ")
                    ))
                    .with_target(format!("properties.{}", changed.first().cloned().unwrap_or_default())));
                }
                for k in MUTABLE {
                    if let Some(v) = fresh.get(k) {
                        r.body_mut()["properties"][k] = v.clone();
                    }
                }
                ctx.touch(r.body_mut());
                put_arm(world, &key, r.clone())?;
                return Ok(Reply::json(StatusCode::OK, r.body));
            }
            let out = json!({
                "id": id,
                "name": name,
                "type": format!("{ML}/workspaces/jobs"),
                "systemData": ctx.system_data(),
                "properties": fresh,
            });
            let record = new_record(world, ctx, Kind::Job, out.clone());
            put_arm(world, &key, record)?;
            world.activate(key);
            Ok(Reply::json(StatusCode::CREATED, out))
        }
        _ => Err(no_route(req)),
    }
}

pub(super) fn cancel(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    ws_id: &str,
    name: &str,
) -> Result<Reply, ArmError> {
    let mut r = super::ml::require_child(world, ws_id, "jobs", name)?;
    let id = format!("{ws_id}/jobs/{name}");
    let key = key_of(&id);
    if job_is_terminal(&r.body) {
        return Ok(Reply::empty(StatusCode::OK));
    }
    r.body_mut()["properties"]["status"] = json!("CancelRequested");
    r.phase_started = ctx.now;
    crate::emulator::runs::on_status(world, &key, &r, "CancelRequested", ctx.now)?;
    put_arm(world, &key, r)?;
    let ws = get_arm(world, &key_of(ws_id));
    let location = ws
        .as_ref()
        .and_then(|w| w.body["location"].as_str())
        .unwrap_or("global")
        .to_string();
    let op = world.start_op(OpKind::CancelJob, &key, &id, ML, &location, false)?;
    Ok(super::operations::accepted(ctx, &req.segs[1], &op))
}
