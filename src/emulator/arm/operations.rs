//! Long-running operation polling: the `Azure-AsyncOperation` status resource and the
//! `Location` result URL of the ARM async contract.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Ctx, Req, get_arm};
use crate::emulator::model::{OpKind, OpRecord, OpStatus, Record};
use crate::emulator::reply::{ArmError, Reply};
use crate::emulator::util::rfc3339;
use crate::emulator::world::World;

/// URL of the status resource (`Azure-AsyncOperation`).
pub(crate) fn status_url(ctx: &Ctx<'_>, sub: &str, op: &OpRecord) -> String {
    let kind = if op.namespace.eq_ignore_ascii_case(super::ML) {
        "computeOperationsStatus"
    } else {
        "operationStatuses"
    };
    format!(
        "{}/subscriptions/{sub}/providers/{}/locations/{}/{kind}/{}?api-version={}",
        ctx.base, op.namespace, op.location, op.id, ctx.api_version
    )
}

/// URL of the result (`Location`).
pub(crate) fn location_url(ctx: &Ctx<'_>, sub: &str, op: &OpRecord) -> String {
    if op.namespace.eq_ignore_ascii_case("Microsoft.Resources") {
        format!(
            "{}/subscriptions/{sub}/operationresults/{}?api-version={}",
            ctx.base, op.id, ctx.api_version
        )
    } else {
        format!(
            "{}/subscriptions/{sub}/providers/{}/locations/{}/operationResults/{}?api-version={}",
            ctx.base, op.namespace, op.location, op.id, ctx.api_version
        )
    }
}

/// ARM's answer to a request that started an operation: 202, poll `Location` after
/// `Retry-After` seconds.
pub(crate) fn accepted(ctx: &Ctx<'_>, sub: &str, op: &OpRecord) -> Reply {
    Reply::empty(StatusCode::ACCEPTED)
        .header("location", location_url(ctx, sub, op))
        .header("retry-after", ctx.retry_after())
}

fn find(world: &World, id: &str) -> Result<OpRecord, ArmError> {
    match world.store.get(&format!("op:{id}")) {
        Some(Record::Operation(op)) => Ok(op.clone()),
        _ => Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The operation '{id}' was not found."),
        )),
    }
}

/// `GET …/operationsStatus/{id}`: `{"id","name","status","startTime","endTime","error"}`.
pub(crate) fn status(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    id: &str,
) -> Result<Reply, ArmError> {
    let op = find(world, id)?;
    let mut body = json!({
        "id": req.path,
        "name": op.id,
        "status": op.status.as_str(),
        "startTime": rfc3339(op.started),
    });
    if let Some(end) = op.ended {
        body["endTime"] = json!(rfc3339(end));
        body["percentComplete"] = json!(100.0);
    } else {
        body["percentComplete"] = json!(0.0);
    }
    if let Some(e) = &op.error {
        body["error"] = e.clone();
    }
    let mut reply = Reply::json(StatusCode::OK, body);
    if op.status == OpStatus::InProgress {
        reply = reply.header("retry-after", ctx.retry_after());
    }
    Ok(reply)
}

/// `GET …/operationResults/{id}`: 202 while running, then the final answer.
pub(crate) fn location(
    world: &mut World,
    ctx: &Ctx<'_>,
    req: &Req,
    id: &str,
) -> Result<Reply, ArmError> {
    let op = find(world, id)?;
    match op.status {
        OpStatus::InProgress => {
            let sub = req.segs.get(1).cloned().unwrap_or_default();
            Ok(accepted(ctx, &sub, &op))
        }
        OpStatus::Failed | OpStatus::Canceled => {
            let error = op.error.clone().unwrap_or(Value::Null);
            Err(ArmError::new(
                StatusCode::BAD_REQUEST,
                error["code"].as_str().unwrap_or("ResourceOperationFailure"),
                error["message"]
                    .as_str()
                    .unwrap_or("The operation failed.")
                    .to_string(),
            ))
        }
        OpStatus::Succeeded => match op.kind {
            OpKind::Delete | OpKind::CancelJob => Ok(Reply::empty(StatusCode::NO_CONTENT)),
            OpKind::Create | OpKind::Update => match get_arm(world, &op.target) {
                Some(r) => Ok(Reply::json(StatusCode::OK, r.body)),
                None => Ok(Reply::empty(StatusCode::NO_CONTENT)),
            },
        },
    }
}
