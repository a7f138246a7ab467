//! Run history, as Azure ML's clients follow a job: the workspace's discovery document
//! (`GET /discovery`), run details (`GET /history/v1.0/.../runs/{runId}/details`, and the
//! run itself at `.../runs/{runId}`), and the log a simulated job writes to the
//! workspace's storage account as it moves through its phases. See
//! tests/emulator/RUN_HISTORY.md for the contract and its sources.

use axum::http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::model::{ArmRecord, MetaRecord, Record};
use super::reply::{ArmError, Reply};
use super::store::StoreError;
use super::util::rfc3339;
use super::world::World;

/// The container run logs live in (created with each workspace's storage account).
pub(crate) const LOG_CONTAINER: &str = "azureml";
/// The log azure-ai-ml streams (`user_logs/std_log[\D]*[0]*(?:_ps)?\.txt`).
pub(crate) const STD_LOG: &str = "user_logs/std_log.txt";
/// How long the SAS of a log file in the run details stays valid.
const LOG_SAS_VALIDITY: time::Duration = time::Duration::hours(1);

/// The blob a job's log file is stored as, in [`LOG_CONTAINER`].
pub(crate) fn log_blob(job: &str, file: &str) -> String {
    format!("ExperimentRun/dcid.{job}/{file}")
}

/// `GET /discovery`: every service URL of the workspace's region, here the emulator.
pub(crate) fn discovery(base: &str) -> Reply {
    let services = [
        "api",
        "catalog",
        "experimentation",
        "gallery",
        "history",
        "hyperdrive",
        "labeling",
        "modelmanagement",
        "pipelines",
        "studiotelemetry",
    ];
    let doc: serde_json::Map<String, Value> = services
        .iter()
        .map(|s| (s.to_string(), json!(base)))
        .collect();
    Reply::json(StatusCode::OK, Value::Object(doc))
}

fn run_key(job_key: &str) -> String {
    format!("run:{job_key}")
}

/// What run history knows beyond the job's ARM body: start and end times, the error.
fn run_meta(world: &World, job_key: &str) -> Value {
    match world.store.get(&run_key(job_key)) {
        Some(Record::Meta(m)) => m.value.clone(),
        _ => json!({}),
    }
}

/// The storage account name of the workspace a job key belongs to.
fn job_account(world: &World, job_key: &str) -> Option<String> {
    let ws_key = job_key.rsplit_once("/jobs/")?.0;
    let Some(Record::Arm(ws)) = world.store.get(ws_key) else {
        return None;
    };
    let storage_id = ws.body["properties"]["storageAccount"].as_str()?;
    let Some(Record::Arm(st)) = world.store.get(&storage_id.to_ascii_lowercase()) else {
        return None;
    };
    st.body["name"].as_str().map(str::to_ascii_lowercase)
}

/// The lines a job's log gets when it enters `status`; `error` is a failed job's message.
pub(crate) fn log_lines(name: &str, command: &str, status: &str, error: &str) -> Vec<String> {
    let phase = |what: &str| format!("[amlspec-emulator] job {name}: {what}");
    match status {
        "Queued" => vec![phase("Queued")],
        "Preparing" => vec![phase("Preparing: image pulled, code snapshot mounted")],
        "Running" => vec![
            phase("Running"),
            format!("[amlspec-emulator] $ {command}"),
            "epoch 1/3 loss=0.900".to_string(),
        ],
        "Completed" => vec![
            "epoch 2/3 loss=0.600".to_string(),
            "epoch 3/3 loss=0.300".to_string(),
            phase("Completed"),
        ],
        "Failed" => vec![phase(&format!("Failed: {error}"))],
        "CancelRequested" => vec![phase("CancelRequested")],
        "Canceled" => vec![phase("Canceled")],
        _ => Vec::new(),
    }
}

/// The error a job the emulator fails carries in its run details and log.
fn failure_message(name: &str) -> String {
    format!(
        "Execution failed. User process exited with status code 1 (the emulator failed job '{name}' on request)."
    )
}

/// Records that the job at `job_key` entered `status` at `at`: start and end times, the
/// error of a failed job, and its log lines.
pub(crate) fn on_status(
    world: &mut World,
    job_key: &str,
    job: &ArmRecord,
    status: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let name = job.body["name"].as_str().unwrap_or_default().to_string();
    let command = job.body["properties"]["command"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut meta = run_meta(world, job_key);
    if status == "Running" && meta.get("startTimeUtc").is_none() {
        meta["startTimeUtc"] = json!(rfc3339(at));
    }
    let terminal = super::world::JOB_TERMINAL.contains(&status);
    if terminal {
        meta["endTimeUtc"] = json!(rfc3339(at));
    }
    let error = if status == "Failed" {
        let message = failure_message(&name);
        meta["error"] = json!({
            "error": { "code": "UserError", "message": message },
            "time": rfc3339(at),
            "componentName": "CommonRuntime",
        });
        message
    } else {
        String::new()
    };
    world
        .store
        .put(&run_key(job_key), Record::Meta(MetaRecord { value: meta }))?;
    let lines = log_lines(&name, &command, status, &error);
    if lines.is_empty() {
        return Ok(());
    }
    let Some(account) = job_account(world, job_key) else {
        return Ok(());
    };
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    super::blob::append_text(
        world,
        &account,
        LOG_CONTAINER,
        &log_blob(&name, STD_LOG),
        &text,
        at,
    )
}

/// Removes what run history holds for a deleted job (its log stays, as in Azure).
pub(crate) fn forget(world: &mut World, job_key: &str) -> Result<(), StoreError> {
    world.store.delete(&run_key(job_key)).map(|_| ())
}

/// `GET /history/v1.0/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.MachineLearningServices/workspaces/{w}/runs/{id}[/details]`.
/// `segs` starts at `subscriptions`; authorization is checked by the caller.
pub(crate) fn history(world: &World, base: &str, segs: &[String]) -> Result<Reply, ArmError> {
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (details, ws_segs, run_id) = match l.as_slice() {
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.machinelearningservices",
            "workspaces",
            _,
            "runs",
            _,
            rest @ ..,
        ] if rest.is_empty() || rest == ["details"] => (!rest.is_empty(), &segs[..8], &segs[9]),
        _ => {
            return Err(ArmError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "No run history endpoint serves '/history/v1.0/{}'.",
                    segs.join("/")
                ),
            ));
        }
    };
    let ws_id = format!("/{}", ws_segs.join("/"));
    let job_key = format!("{ws_id}/jobs/{run_id}").to_ascii_lowercase();
    let Some(Record::Arm(job)) = world.store.get(&job_key) else {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "UserError",
            format!("Run {run_id} was not found in workspace '{ws_id}'."),
        ));
    };
    let p = &job.body["properties"];
    let meta = run_meta(world, &job_key);
    let name = job.body["name"].as_str().unwrap_or_default();
    let target = p["computeId"]
        .as_str()
        .and_then(|c| c.rsplit('/').next())
        .unwrap_or("serverless");
    let mut run = json!({
        "runId": name,
        "target": target,
        "status": p["status"],
        "createdTimeUtc": job.body["systemData"]["createdAt"],
        "startTimeUtc": meta.get("startTimeUtc").cloned().unwrap_or(Value::Null),
        "endTimeUtc": meta.get("endTimeUtc").cloned().unwrap_or(Value::Null),
        "error": meta.get("error").cloned().unwrap_or(Value::Null),
        "warnings": [],
        "tags": p["tags"],
        "properties": p["properties"],
        "runType": "azureml.scriptrun",
    });
    if !details {
        run["displayName"] = p["displayName"].clone();
        run["experimentId"] = json!(p["experimentName"]);
        return Ok(Reply::json(StatusCode::OK, run));
    }
    let mut log_files = serde_json::Map::new();
    if let Some(account) = job_account(world, &job_key) {
        let blob = log_blob(name, STD_LOG);
        if super::blob::exists(world, &account, LOG_CONTAINER, &blob)
            && let Some((key, _)) = super::arm::resources_account(world, &account)
        {
            let now = world.now();
            let sas = super::blob::sas::blob_sas(
                &account,
                &key,
                LOG_CONTAINER,
                &blob,
                "r",
                now,
                now + LOG_SAS_VALIDITY,
            );
            log_files.insert(
                STD_LOG.to_string(),
                json!(format!("{base}/{account}/{LOG_CONTAINER}/{blob}?{sas}")),
            );
        }
    }
    run["logFiles"] = Value::Object(log_files);
    Ok(Reply::json(StatusCode::OK, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_name_the_job_and_its_command() {
        let running = log_lines("j1", "python train.py", "Running", "");
        assert_eq!(running[0], "[amlspec-emulator] job j1: Running");
        assert_eq!(running[1], "[amlspec-emulator] $ python train.py");
        let failed = log_lines("j1", "python train.py", "Failed", "boom");
        assert_eq!(failed, ["[amlspec-emulator] job j1: Failed: boom"]);
        assert!(log_lines("j1", "c", "NotStarted", "").is_empty());
    }

    #[test]
    fn log_blob_follows_azure_ml_layout() {
        assert_eq!(
            log_blob("j1", STD_LOG),
            "ExperimentRun/dcid.j1/user_logs/std_log.txt"
        );
    }
}
