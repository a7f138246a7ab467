//! Each step of a plan, sent to Azure: one function per kind of work, every one safe to
//! repeat (a PUT of the same body, a PATCH, a DELETE of what may be gone already, an
//! upload that keeps what is there), so an apply that failed or was stopped anywhere
//! is finished by the next one without duplicating anything.
//!
//! The order and the parallelism are `drive`'s; what to send is the plan's (`Step`):
//! nothing here decides whether a resource needs work.

use std::future::Future;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::drive::{Event, Ran, drive};
use super::queue::{DependencyQueue, QueueError};
use crate::azure::RESOURCES_API_VERSION;
use crate::azure::blob::{BlobClient, Container};
use crate::azure::client::{ArmClient, ArmError, Operation, Response};
use crate::azure::datastore::DatastoreError;
use crate::bodies;
use crate::desired::{BuildSource, DesiredCode, DesiredEnvironment};
use crate::ids::ResourceId;
use crate::plan::step::{Step, Work};
use crate::plan::{Action, Address};
use crate::secret::Secret;

/// How an apply runs.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Steps in flight at once.
    pub max_parallel: usize,
    /// How long a long-running operation (a workspace, a cluster) may take.
    pub operation_timeout: Duration,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            max_parallel: 64,
            operation_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Run `steps` against Azure in dependency order until all ended or `stop` resolves
/// (then nothing more starts and what runs is finished). `on_event` hears each start,
/// end and skip as it happens.
pub async fn execute(
    client: &ArmClient,
    steps: Vec<Step>,
    options: &ExecuteOptions,
    stop: impl Future<Output = ()>,
    on_event: impl FnMut(&Event<Address, String>),
) -> Result<Ran<Address, String>, QueueError<Address>> {
    let queue = DependencyQueue::new(
        steps
            .into_iter()
            .map(|step| (step.address.clone(), step.clone(), step.depends_on)),
    )?;
    let timeout = options.operation_timeout;
    Ok(drive(
        queue,
        options.max_parallel.max(1),
        stop,
        |address, step| async move {
            tracing::debug!(%address, action = step.action.name(), "starting");
            run_step(client, &step, timeout)
                .await
                .map_err(|error| error.to_string())
        },
        on_event,
    )
    .await)
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    #[error(transparent)]
    Arm(#[from] ArmError),
    #[error(transparent)]
    Blob(#[from] crate::azure::blob::BlobError),
    #[error("{0}")]
    Answer(String),
}

async fn run_step(client: &ArmClient, step: &Step, timeout: Duration) -> Result<(), StepFailure> {
    match &step.work {
        Work::Put { id, body } => put(client, verb(step.action), id, body.0.clone(), timeout).await,
        Work::Patch { id, body } => patch(client, id, body.0.clone(), timeout).await,
        Work::Replace { id, body } => {
            delete(client, id, timeout).await?;
            put(client, "create", id, body.0.clone(), timeout).await
        }
        Work::KeyVault { id, location } => {
            let tenant = tenant_of(client, id).await?;
            put(
                client,
                "create",
                id,
                bodies::key_vault(location, &tenant),
                timeout,
            )
            .await
        }
        Work::Environment {
            id,
            workspace,
            environment,
        } => {
            let uri = upload_build_context(client, workspace, environment).await?;
            let body = bodies::environment(environment, Some(&uri));
            put(client, "create", id, body, timeout).await
        }
        Work::Code { id, code } => {
            let uri = upload_code(client, id, code).await?;
            put(client, "create", id, bodies::code(code, &uri), timeout).await
        }
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Update => "update",
        _ => "create",
    }
}

/// PUT, then wait for the operation when Azure answers that it goes on.
async fn put(
    client: &ArmClient,
    action: &'static str,
    id: &ResourceId,
    body: Value,
    timeout: Duration,
) -> Result<(), StepFailure> {
    write(client, action, Method::PUT, id, body, timeout).await
}

async fn patch(
    client: &ArmClient,
    id: &ResourceId,
    body: Value,
    timeout: Duration,
) -> Result<(), StepFailure> {
    write(client, "update", Method::PATCH, id, body, timeout).await
}

/// Send a PUT or PATCH and wait for its operation. A `409 Conflict` while the resource is
/// being provisioned (typically this very write, tried again after its answer was lost,
/// or another apply's) is waited out, and the write sent once more.
async fn write(
    client: &ArmClient,
    action: &'static str,
    method: Method,
    id: &ResourceId,
    body: Value,
    timeout: Duration,
) -> Result<(), StepFailure> {
    let operation = Operation::new(action, id.to_string());
    let url = client.url_of(id);
    let first = client
        .send(
            &operation,
            method.clone(),
            url.clone(),
            Some(body.clone()),
            true,
        )
        .await;
    let response = match first {
        Err(conflict @ ArmError::Status { status: 409, .. }) => {
            let started = tokio::time::Instant::now();
            if !client
                .wait_while_provisioning(&operation, url.clone(), timeout)
                .await?
            {
                return Err(conflict.into());
            }
            let left = timeout.saturating_sub(started.elapsed());
            let response = client
                .send(&operation, method, url, Some(body), true)
                .await?;
            client.wait(&operation, &response, left).await?;
            return Ok(());
        }
        other => other?,
    };
    client.wait(&operation, &response, timeout).await?;
    Ok(())
}

/// DELETE (with what Azure made for the resource, a cluster's nodes), waited for; a
/// resource already gone is what was wanted.
async fn delete(client: &ArmClient, id: &ResourceId, timeout: Duration) -> Result<(), StepFailure> {
    let operation = Operation::new("delete", id.to_string());
    let mut url = client.url_of(id);
    url.query_pairs_mut()
        .append_pair("underlyingResourceAction", "Delete");
    match client
        .send(&operation, Method::DELETE, url, None, true)
        .await
    {
        Ok(response) => Ok(client.wait(&operation, &response, timeout).await?),
        Err(ArmError::Status { status: 404, .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The tenant of the subscription `id` is in: a new key vault trusts it.
async fn tenant_of(client: &ArmClient, id: &ResourceId) -> Result<String, StepFailure> {
    let subscription = id
        .as_str()
        .split('/')
        .nth(2)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StepFailure::Answer(format!("`{id}` names no subscription")))?;
    let sub_id = ResourceId::from_plan(&format!("/subscriptions/{subscription}"));
    let operation = Operation::new("read subscription", sub_id.to_string());
    let response = client
        .send(
            &operation,
            Method::GET,
            client.url(&sub_id, RESOURCES_API_VERSION),
            None,
            true,
        )
        .await?;
    #[derive(serde::Deserialize)]
    struct Subscription {
        #[serde(rename = "tenantId")]
        tenant_id: Option<String>,
    }
    let found: Subscription = response.decode(&operation)?;
    found.tenant_id.ok_or_else(|| {
        StepFailure::Answer(format!(
            "the subscription `{subscription}` has no tenantId in Azure's answer"
        ))
    })
}

// ------------------------------------------------------------------ build contexts

/// Upload an environment's build context to the workspace's default datastore under
/// `LocalUpload/{content hash}/` (as Azure ML's clients do), keeping what is there;
/// returns the folder's URL for `build.contextUri`.
async fn upload_build_context(
    client: &ArmClient,
    workspace: &ResourceId,
    env: &DesiredEnvironment,
) -> Result<String, StepFailure> {
    let Some(build) = &env.definition.build else {
        return Err(StepFailure::Answer(format!(
            "{}: an environment without a build has no context to upload",
            env.id
        )));
    };
    let container = crate::azure::datastore::default_datastore(client, workspace)
        .await
        .map_err(|error| match error {
            DatastoreError::Arm(error) => StepFailure::Arm(error),
            DatastoreError::Answer(message) => StepFailure::Answer(message),
        })?;
    let prefix = format!("LocalUpload/{}", build.hash);
    let uri = format!("{}/{prefix}/", container.url.as_str().trim_end_matches('/'));
    let blobs = BlobClient::new(client.http().clone(), container, client.settings().clone());
    let metadata = [
        ("name", env.name.as_str()),
        ("version", env.version.as_str()),
    ];
    match &build.source {
        BuildSource::Folder(snapshot) => {
            let report = blobs.upload_folder(&prefix, snapshot, &metadata).await?;
            tracing::info!(environment = %env.id, files = report.files, uploaded = report.uploaded, skipped = report.skipped, "build context uploaded");
        }
        BuildSource::Inline { dockerfile } => {
            let blob = format!("{prefix}/{}", build.dockerfile_path);
            let done = blobs.metadata(&blob).await?.is_some_and(|existing| {
                existing
                    .iter()
                    .any(|(k, v)| k == "upload_status" && v == "completed")
            });
            if !done {
                blobs
                    .put_blob(&blob, dockerfile.as_bytes().to_vec())
                    .await?;
                let mut all = vec![("upload_status", "completed")];
                all.extend_from_slice(&metadata);
                blobs.set_metadata(&blob, &all).await?;
            }
        }
    }
    Ok(uri)
}

// ------------------------------------------------------------------ code

/// Upload a code snapshot through the code version's pending upload (a SAS to a fresh
/// container), under the source folder's name; returns the folder's URL for `codeUri`.
async fn upload_code(
    client: &ArmClient,
    id: &ResourceId,
    code: &DesiredCode,
) -> Result<String, StepFailure> {
    let start = id.collection("startPendingUpload");
    let operation = Operation::new("start the upload of", id.to_string());
    let response: Response = client
        .send(
            &operation,
            Method::POST,
            client.url_of(&start),
            Some(json!({"pendingUploadType": "TemporaryBlobReference"})),
            true,
        )
        .await?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Pending {
        blob_reference_for_consumption: Option<BlobReference>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct BlobReference {
        blob_uri: Option<String>,
        credential: Option<Credential>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Credential {
        sas_uri: Option<String>,
    }
    let pending: Pending = response.decode(&operation)?;
    let reference = pending.blob_reference_for_consumption;
    let (Some(blob_uri), Some(sas_uri)) = (
        reference.as_ref().and_then(|r| r.blob_uri.clone()),
        reference
            .and_then(|r| r.credential)
            .and_then(|c| c.sas_uri)
            .map(Secret::new),
    ) else {
        return Err(StepFailure::Answer(format!(
            "failed to start the upload of {id}: the answer has no blobUri or SAS URI"
        )));
    };
    let container = Container::from_sas_url(sas_uri.expose())?;
    let folder = folder_name(&code.snapshot.root);
    let blobs = BlobClient::new(client.http().clone(), container, client.settings().clone());
    let metadata = [
        ("name", code.name.as_str()),
        ("version", code.version.as_str()),
    ];
    let report = blobs
        .upload_folder(&folder, &code.snapshot, &metadata)
        .await?;
    tracing::info!(code = %id, files = report.files, bytes = report.bytes, "code uploaded");
    Ok(format!("{}/{folder}", blob_uri.trim_end_matches('/')))
}

/// The last component of a source folder (`src`), as Azure ML names the uploaded
/// folder; `code` when it has none.
fn folder_name(root: &std::path::Path) -> String {
    root.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .unwrap_or("code")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uploaded_folder_is_named_after_the_source_folder() {
        assert_eq!(folder_name(std::path::Path::new("/repo/src")), "src");
        assert_eq!(folder_name(std::path::Path::new("/")), "code");
        assert_eq!(folder_name(std::path::Path::new("..")), "code");
    }
}
