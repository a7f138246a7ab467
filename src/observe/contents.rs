//! `amlspec export`: everything a workspace holds of the kinds a manifest can declare
//! (the workspace itself, its connections, environments with their versions, computes
//! and jobs), as ARM answered, one list request per kind and one per environment; then
//! the build contexts of the newest environment versions and the code of the latest
//! runs amlspec submitted, downloaded from the workspace's storage account. Read-only.
//! A connection's secrets are never read (connections are listed, not `listsecrets`);
//! the default datastore's key is read to download blobs, and kept in memory only.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde_json::Value;

use crate::azure::blob::{BlobClient, Container};
use crate::azure::client::{ArmClient, ArmError, Found, Operation};
use crate::ids::ResourceId;

/// A workspace and its children, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    pub workspace: Value,
    pub connections: Vec<Value>,
    /// Each environment container's versions, newest first.
    pub environments: Vec<EnvironmentVersions>,
    pub computes: Vec<Value>,
    pub jobs: Vec<Value>,
    /// The build context of each newest environment version built from one, by its
    /// URI; else why it could not be read.
    pub builds: BTreeMap<String, Result<BuildRead, String>>,
    /// The code snapshot of the latest run of each job amlspec submitted, by code id
    /// (as the job names it); else why it could not be read.
    pub codes: BTreeMap<String, Result<CodeRead, String>>,
}

/// A code snapshot, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRead {
    /// The content hash its version records (`hash_sha256`), when it does.
    pub hash: Option<String>,
    /// Every file: (path inside the snapshot, bytes).
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentVersions {
    pub name: String,
    /// Newest (last created) first.
    pub versions: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    /// The workspace (or its resource group) does not exist.
    #[error("{what} `{name}` does not exist{within}")]
    Missing {
        what: &'static str,
        name: String,
        within: String,
    },
    #[error(transparent)]
    Arm(#[from] ArmError),
}

/// Read workspace `name` and what it holds: the workspace first (a clear error when it
/// is missing), then every list at once, then each environment's versions.
pub async fn read_contents(
    client: &ArmClient,
    subscription_id: &str,
    resource_group: &str,
    name: &str,
) -> Result<Contents, ContentsError> {
    let id = &ResourceId::workspace(subscription_id, resource_group, name);
    let operation = Operation::new("read workspace", name.to_string());
    let workspace = match client.get(&operation, client.url_of(id)).await? {
        Found::Present(response) => response.decode::<Value>(&operation)?,
        Found::Missing { code } => {
            return Err(if code == "ResourceGroupNotFound" {
                ContentsError::Missing {
                    what: "resource group",
                    name: resource_group.to_string(),
                    within: format!(" in subscription `{subscription_id}`"),
                }
            } else {
                ContentsError::Missing {
                    what: "workspace",
                    name: name.to_string(),
                    within: format!(
                        " in resource group `{resource_group}` of subscription `{subscription_id}`"
                    ),
                }
            });
        }
    };
    let list = |kind: &'static str| {
        let collection = id.collection(kind);
        async move {
            let operation = Operation::new("list", collection.to_string());
            client
                .list(&operation, client.url_of(&collection), None)
                .await
        }
    };
    let (connections, containers, computes, jobs) = futures::join!(
        list("connections"),
        list("environments"),
        list("computes"),
        list("jobs"),
    );
    let (connections, containers, computes, jobs) = (connections?, containers?, computes?, jobs?);
    let mut names: Vec<String> = containers
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    let versions = join_all(names.iter().map(|name| async move {
        let collection = id.child("environments", name).collection("versions");
        let operation = Operation::new("list the versions of environment", name.clone());
        let mut url = client.url_of(&collection);
        url.query_pairs_mut()
            .append_pair("$orderBy", "createdtime desc");
        client.list(&operation, url, None).await
    }))
    .await;
    let mut environments = Vec::new();
    for (name, versions) in names.into_iter().zip(versions) {
        environments.push(EnvironmentVersions {
            name,
            versions: versions?,
        });
    }
    let code_ids = latest_code_ids(&jobs);
    let needs_storage = !code_ids.is_empty()
        || environments.iter().any(|e| {
            e.versions
                .first()
                .is_some_and(|v| v.pointer("/properties/build/contextUri").is_some())
        });
    let storage = if needs_storage {
        Some(
            crate::azure::datastore::default_datastore(client, id)
                .await
                .map_err(|error| format!("the workspace's storage could not be read: {error}")),
        )
    } else {
        None
    };
    let (builds, codes) = futures::join!(
        read_builds(client, storage.as_ref(), &environments),
        read_codes(client, storage.as_ref(), &code_ids),
    );
    Ok(Contents {
        workspace,
        connections,
        environments,
        computes,
        jobs,
        builds,
        codes,
    })
}

/// Most files and bytes of one build context that export downloads.
const CONTEXT_FILES: usize = 1000;
const CONTEXT_BYTES: usize = 64 * 1024 * 1024;

/// A build context, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildRead {
    /// The context is one Dockerfile (its one-file content hash is the URI's).
    Dockerfile(String),
    /// Every file of the context: (path inside it, bytes).
    Folder(Vec<(String, Vec<u8>)>),
}

/// Where the newest version of each environment was built from, when it was a Dockerfile
/// build: read from the workspace's default datastore (where amlspec and Azure ML's
/// clients upload build contexts, under `LocalUpload/<content hash>/`). Nothing here
/// fails the export: what cannot be read is said per URI.
async fn read_builds(
    client: &ArmClient,
    storage: Option<&Result<Container, String>>,
    environments: &[EnvironmentVersions],
) -> BTreeMap<String, Result<BuildRead, String>> {
    let builds: Vec<(String, String)> = environments
        .iter()
        .filter_map(|e| {
            let p = &e.versions.first()?["properties"];
            let uri = p.pointer("/build/contextUri")?.as_str()?.to_string();
            let dockerfile = p
                .pointer("/build/dockerfilePath")
                .and_then(Value::as_str)
                .unwrap_or("Dockerfile")
                .to_string();
            Some((uri, dockerfile))
        })
        .collect();
    let mut found = BTreeMap::new();
    let container = match storage {
        None => return found,
        Some(Ok(container)) => container.clone(),
        Some(Err(error)) => {
            for (uri, _) in builds {
                found.insert(uri, Err(error.clone()));
            }
            return found;
        }
    };
    let reads = join_all(builds.iter().map(|(uri, dockerfile)| {
        let container = &container;
        async move {
            let Some((folder, prefix)) = blob_folder(uri, container) else {
                return Err(
                    "its build context is not in the workspace's storage account".to_string(),
                );
            };
            let blobs = BlobClient::new(client.http().clone(), folder, client.settings().clone());
            read_build(&blobs, uri, &prefix, dockerfile).await
        }
    }))
    .await;
    for ((uri, _), read) in builds.into_iter().zip(reads) {
        found.insert(uri, read);
    }
    found
}

/// One build context under `prefix`: its Dockerfile alone when that is all it is,
/// else every file.
async fn read_build(
    blobs: &BlobClient,
    uri: &str,
    prefix: &str,
    dockerfile: &str,
) -> Result<BuildRead, String> {
    let failed = |error: crate::azure::blob::BlobError| {
        format!("its build context could not be read: {error}")
    };
    if dockerfile == "Dockerfile" {
        let blob = format!("{prefix}/Dockerfile");
        if let Some(bytes) = blobs.get(&blob).await.map_err(failed)?
            && uri.contains(&crate::desired::single_file_hash(dockerfile, &bytes))
            && let Ok(text) = String::from_utf8(bytes)
        {
            return Ok(BuildRead::Dockerfile(text));
        }
    }
    let files = read_folder(blobs, prefix)
        .await
        .map_err(|why| format!("its build context: {why}"))?;
    Ok(BuildRead::Folder(files))
}

/// Every file under `prefix/` in a container, within [`CONTEXT_FILES`] and
/// [`CONTEXT_BYTES`].
async fn read_folder(blobs: &BlobClient, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let failed = |error: crate::azure::blob::BlobError| format!("it could not be read: {error}");
    let names = blobs.list(&format!("{prefix}/")).await.map_err(failed)?;
    if names.is_empty() {
        return Err("it is empty or gone".into());
    }
    if names.len() > CONTEXT_FILES {
        return Err(format!("it holds more than {CONTEXT_FILES} files"));
    }
    let mut files = Vec::new();
    let mut total = 0;
    for name in names {
        let Some(relative) = name.strip_prefix(&format!("{prefix}/")).map(str::to_string) else {
            continue;
        };
        let Some(bytes) = blobs.get(&name).await.map_err(failed)? else {
            return Err(format!("`{relative}` in it is gone"));
        };
        total += bytes.len();
        if total > CONTEXT_BYTES {
            return Err(format!(
                "it is larger than {} MiB",
                CONTEXT_BYTES / 1024 / 1024
            ));
        }
        files.push((relative, bytes));
    }
    Ok(files)
}

/// The code ids of the latest run of each job amlspec submitted (the runs export may
/// declare).
fn latest_code_ids(jobs: &[Value]) -> Vec<String> {
    let mut latest: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for job in jobs {
        let p = &job["properties"];
        let Some(base) = p.pointer("/properties/amlspec_job").and_then(Value::as_str) else {
            continue;
        };
        let created = job
            .pointer("/systemData/createdAt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let code = p
            .get("codeId")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let key = base.to_ascii_lowercase();
        if latest.get(&key).is_none_or(|(seen, _)| *seen <= created) {
            latest.insert(key, (created, code));
        }
    }
    let mut ids: Vec<String> = latest.into_values().filter_map(|(_, code)| code).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Read each code version and download its snapshot from the workspace's storage
/// account (where code uploads go), with the default datastore's key.
async fn read_codes(
    client: &ArmClient,
    storage: Option<&Result<Container, String>>,
    code_ids: &[String],
) -> BTreeMap<String, Result<CodeRead, String>> {
    let reads = join_all(code_ids.iter().map(|code_id| async move {
        let container = match storage {
            Some(Ok(container)) => container,
            Some(Err(error)) => return Err(error.clone()),
            None => return Err("the workspace's storage was not read".into()),
        };
        let id = ResourceId::from_plan(code_id);
        let operation = Operation::new("read code", code_id.clone());
        let version = match client.get(&operation, client.url_of(&id)).await {
            Ok(Found::Present(response)) => response
                .decode::<Value>(&operation)
                .map_err(|e| e.to_string())?,
            Ok(Found::Missing { .. }) => return Err("its code version is gone".into()),
            Err(error) => return Err(error.to_string()),
        };
        let uri = version
            .pointer("/properties/codeUri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hash = version
            .pointer("/properties/properties/hash_sha256")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (folder, prefix) = blob_folder(uri, container).ok_or_else(|| {
            format!(
                "its code `{}` is not in the workspace's storage account",
                crate::diagnostic::escape(uri)
            )
        })?;
        let blobs = BlobClient::new(client.http().clone(), folder, client.settings().clone());
        let files = read_folder(&blobs, &prefix)
            .await
            .map_err(|why| format!("its code snapshot: {why}"))?;
        Ok(CodeRead { hash, files })
    }))
    .await;
    code_ids.iter().cloned().zip(reads).collect()
}

/// The container and the folder inside it of a blob folder URI in the storage account
/// that `datastore` is in: `https://{account}.blob.../{container}/{folder}`, or
/// path-style `https://host/{account}/{container}/{folder}` (a local emulator's). The
/// account is what names it: the container is reached at the datastore's endpoint,
/// with its key (a URI recorded by an earlier emulator keeps its old port).
fn blob_folder(uri: &str, datastore: &Container) -> Option<(Container, String)> {
    let crate::azure::blob::BlobAuth::SharedKey { account, .. } = &datastore.auth else {
        return None;
    };
    let parsed = url::Url::parse(uri).ok()?;
    let host = parsed.host_str()?;
    let mut segments: Vec<String> = parsed
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if host.starts_with(&format!("{account}.")) {
    } else if segments.first() == Some(account) {
        segments.remove(0);
    } else {
        return None;
    }
    if segments.len() < 2 {
        return None;
    }
    let container = segments.remove(0);
    let mut url = datastore.url.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .pop()
        .push(&container);
    Some((
        Container {
            url,
            auth: datastore.auth.clone(),
        },
        segments.join("/"),
    ))
}
