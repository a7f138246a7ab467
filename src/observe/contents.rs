//! `amlspec export`: everything a workspace holds of the kinds a manifest can declare
//! (the workspace itself, its connections, environments with their versions, computes
//! and jobs), as ARM answered, one list request per kind and one per environment.
//! Read-only; never reads a secret (connections are listed, not `listsecrets`).

use std::collections::BTreeMap;

use futures::future::join_all;
use serde_json::Value;

use crate::azure::blob::BlobClient;
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
    let builds = read_builds(client, id, &environments).await;
    Ok(Contents {
        workspace,
        connections,
        environments,
        computes,
        jobs,
        builds,
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
    id: &ResourceId,
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
    if builds.is_empty() {
        return found;
    }
    let container = match crate::azure::datastore::default_datastore(client, id).await {
        Ok(container) => container,
        Err(error) => {
            for (uri, _) in builds {
                found.insert(
                    uri,
                    Err(format!("its build context could not be read: {error}")),
                );
            }
            return found;
        }
    };
    let base = format!("{}/", container.url.as_str().trim_end_matches('/'));
    let blobs = BlobClient::new(client.http().clone(), container, client.settings().clone());
    let reads = join_all(builds.iter().map(|(uri, dockerfile)| {
        let (blobs, base) = (&blobs, &base);
        async move {
            let Some(prefix) = uri.strip_prefix(base.as_str()) else {
                return Err(
                    "its build context is not in the workspace's default datastore".to_string(),
                );
            };
            let prefix = percent_encoding::percent_decode_str(prefix.trim_end_matches('/'))
                .decode_utf8_lossy()
                .into_owned();
            read_build(blobs, uri, &prefix, dockerfile).await
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
    let names = blobs.list(&format!("{prefix}/")).await.map_err(failed)?;
    if names.is_empty() {
        return Err("its build context is empty or gone".into());
    }
    if names.len() > CONTEXT_FILES {
        return Err(format!(
            "its build context holds more than {CONTEXT_FILES} files"
        ));
    }
    let mut files = Vec::new();
    let mut total = 0;
    for name in names {
        let Some(relative) = name.strip_prefix(&format!("{prefix}/")).map(str::to_string) else {
            continue;
        };
        let Some(bytes) = blobs.get(&name).await.map_err(failed)? else {
            return Err(format!("`{relative}` of its build context is gone"));
        };
        total += bytes.len();
        if total > CONTEXT_BYTES {
            return Err(format!(
                "its build context is larger than {} MiB",
                CONTEXT_BYTES / 1024 / 1024
            ));
        }
        files.push((relative, bytes));
    }
    Ok(BuildRead::Folder(files))
}
