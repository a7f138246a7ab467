//! Stage 3, observe: read the live state of exactly the resources the desired state
//! names, concurrently, one request per resource. Read-only.
//!
//! Everything is read in one round trip: every workspace at once, and each workspace's
//! children alongside it, as if it were there. A workspace read needs only its id, so
//! [`start_workspace_reads`] starts them while the desired state (content hashes) is
//! still being worked out; [`observe_workspaces`] reads the children once it is known.
//! When a workspace turns out missing, its children's reads are stopped and their
//! answers dropped: a missing workspace holds nothing. A failed read does not stop the
//! others; every error is returned.

pub mod capacity;
pub mod contents;
pub mod images;
pub mod inventory;
pub mod live;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{Either, RemoteHandle, join_all, select};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::azure::client::{ArmClient, ArmError, Found, Operation};
use crate::desired::{Desired, DesiredWorkspace, ExistingEnvironment};
use crate::ids::ResourceId;
use crate::snapshot::HASH_VERSION;
use live::{
    LiveCode, LiveCompute, LiveConnection, LiveEnvironmentRef, LiveEnvironmentVersion, LiveJob,
    LiveWorkspace,
};

/// The live state of one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Live<T> {
    Present(T),
    /// Read, and not there.
    Missing,
    /// Not read: its parent is missing, so it is too.
    NotRead,
}

impl<T> Live<T> {
    pub fn present(&self) -> Option<&T> {
        match self {
            Live::Present(value) => Some(value),
            _ => None,
        }
    }
}

/// Observations, aligned index by index with `Desired`.
#[derive(Debug, Clone)]
pub struct Observed {
    pub workspaces: Vec<ObservedWorkspace>,
    /// The preflight checks asked for, and what they read.
    pub preflight: Preflight,
    /// What each subscription's region that holds clusters offers (for the VM size and
    /// quota checks), one entry per distinct subscription and region.
    pub regions: Vec<capacity::RegionCapacity>,
}

/// Which preflight checks plan makes (`--skip-preflight` leaves some or all out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preflight {
    /// The clusters' VM sizes are offered in their region.
    pub vm_sizes: bool,
    /// The clusters' and jobs' vCPUs fit the quotas.
    pub quotas: bool,
    /// The environments' images can be pulled ([`images`]).
    pub images: bool,
}

impl Preflight {
    pub const ALL: Preflight = Preflight {
        vm_sizes: true,
        quotas: true,
        images: true,
    };
    pub const NONE: Preflight = Preflight {
        vm_sizes: false,
        quotas: false,
        images: false,
    };

    /// Whether any check needs what the regions offer.
    pub fn reads_regions(self) -> bool {
        self.vm_sizes || self.quotas
    }
}

#[derive(Debug, Clone)]
pub struct ObservedWorkspace {
    pub workspace: Live<LiveWorkspace>,
    /// Known when the workspace is missing: ARM says whether its resource group is.
    pub resource_group_exists: Option<bool>,
    /// Read only when a missing workspace may be created and its group exists.
    pub dependencies: Option<ObservedDependencies>,
    pub registries: Vec<Live<LiveConnection>>,
    pub environments: Vec<Live<LiveEnvironmentVersion>>,
    pub existing_environments: Vec<Live<LiveEnvironmentRef>>,
    pub clusters: Vec<Live<LiveCompute>>,
    pub codes: Vec<Live<LiveCode>>,
    pub jobs: Vec<Live<LiveJob>>,
    /// What the registries said of the images this plan may pull, by environment name
    /// (filled by [`images::ImageProbes::finish`]; empty when images are not checked).
    pub images: BTreeMap<String, images::ImageAnswer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedDependencies {
    pub storage_account: Live<()>,
    pub key_vault: Live<()>,
    pub application_insights: Live<()>,
}

/// What reading a workspace found, before its children are read.
#[derive(Debug, Clone)]
pub enum WorkspaceRead {
    Present(LiveWorkspace),
    Missing {
        /// ARM says whether the resource group is missing too.
        resource_group_exists: bool,
    },
}

/// Read everything `desired` names: its workspaces with their children, and what the
/// `preflight` checks of regions need (images are not checked here: see [`images`]).
pub async fn observe(
    client: &ArmClient,
    desired: &Desired,
    preflight: Preflight,
) -> Result<Observed, Vec<ArmError>> {
    let reads = desired
        .workspaces
        .iter()
        .map(|ws| read_workspace(client, &ws.id))
        .collect();
    let pairs = regions_of_specs(desired.workspaces.iter().map(|ws| &ws.spec), preflight);
    let regions = read_regions(client, &pairs);
    observe_workspaces(client, desired, reads, preflight, regions).await
}

/// The distinct (subscription, region) pairs that the preflight of `specs` needs and
/// that the specs name themselves: their reads need nothing from Azure, so they can go
/// with the workspace reads. (A workspace whose spec gives no region is read first.)
pub fn regions_of_specs<'a>(
    specs: impl IntoIterator<Item = &'a crate::spec::model::WorkspaceSpec>,
    preflight: Preflight,
) -> Vec<(String, String)> {
    if !preflight.reads_regions() {
        return Vec::new();
    }
    let mut regions: Vec<(String, String)> = specs
        .into_iter()
        .filter(|ws| !ws.clusters.is_empty())
        .filter_map(|ws| {
            let location = ws.location.as_ref()?;
            Some((
                ws.subscription_id.as_str().to_string(),
                capacity::region_key(location.as_str()),
            ))
        })
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// Read what the regions `pairs` (subscription, region) offer, all at once.
pub async fn read_regions(
    client: &ArmClient,
    pairs: &[(String, String)],
) -> Vec<capacity::RegionCapacity> {
    join_all(
        pairs
            .iter()
            .map(|(subscription, location)| capacity::read_region(client, subscription, location)),
    )
    .await
}

/// Start reading what the regions `pairs` offer, in a task of its own, so that the reads
/// need not wait for the desired state. Awaiting the handle gives the answers.
pub fn start_region_reads(
    client: &Arc<ArmClient>,
    pairs: Vec<(String, String)>,
) -> RemoteHandle<Vec<capacity::RegionCapacity>> {
    let client = client.clone();
    in_own_task(async move { read_regions(&client, &pairs).await })
}

/// A workspace read under way, started before the desired state is known: it needs only
/// the workspace's id. Awaiting it gives what the read found; dropping it stops the read.
pub type WorkspaceReading = RemoteHandle<Result<WorkspaceRead, ArmError>>;

/// Start reading the workspaces `ids`, all at once, each in its own task.
pub fn start_workspace_reads(client: &Arc<ArmClient>, ids: &[ResourceId]) -> Vec<WorkspaceReading> {
    ids.iter()
        .map(|id| {
            let client = client.clone();
            let id = id.clone();
            in_own_task(async move { read_workspace(&client, &id).await })
        })
        .collect()
}

/// Run `work` in a task of its own: awaiting the handle gives its output, dropping the
/// handle stops it.
fn in_own_task<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> RemoteHandle<T> {
    let (work, handle) = work.remote_handle();
    tokio::spawn(work);
    handle
}

/// Read workspace `id`: there, or missing (and whether its resource group is).
pub async fn read_workspace(
    client: &ArmClient,
    id: &ResourceId,
) -> Result<WorkspaceRead, ArmError> {
    let read = Operation::new("read workspace", id.name());
    match client.get(&read, client.url_of(id)).await? {
        Found::Present(response) => Ok(WorkspaceRead::Present(LiveWorkspace::from_arm(
            response.decode(&read)?,
        ))),
        Found::Missing { code } => Ok(WorkspaceRead::Missing {
            resource_group_exists: code != "ResourceGroupNotFound",
        }),
    }
}

/// Read what each workspace of `desired` holds, given its read under way (`reads`,
/// aligned with `desired.workspaces`): every child of every workspace at once, alongside
/// the workspace reads; none of a missing workspace. `regions` (under way) reads what
/// the regions the specs name offer; what else the `preflight` checks need is read
/// next: only a workspace whose spec gives no region needs its read for that.
pub async fn observe_workspaces<R>(
    client: &ArmClient,
    desired: &Desired,
    reads: Vec<R>,
    preflight: Preflight,
    regions: impl Future<Output = Vec<capacity::RegionCapacity>>,
) -> Result<Observed, Vec<ArmError>>
where
    R: Future<Output = Result<WorkspaceRead, ArmError>>,
{
    assert_eq!(
        desired.workspaces.len(),
        reads.len(),
        "one read per desired workspace"
    );
    let workspaces = join_all(
        desired
            .workspaces
            .iter()
            .zip(reads)
            .map(|(ws, read)| observe_workspace(client, ws, read)),
    );
    let (results, mut regions) = futures::join!(workspaces, regions);
    let mut observed = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(workspace) => observed.push(workspace),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if preflight.reads_regions() {
        let missing: Vec<(String, String)> = cluster_regions(desired, &observed)
            .into_iter()
            .filter(|(subscription, location)| {
                !regions
                    .iter()
                    .any(|r| &r.subscription_id == subscription && &r.location == location)
            })
            .collect();
        regions.extend(read_regions(client, &missing).await);
    }
    Ok(Observed {
        workspaces: observed,
        preflight,
        regions,
    })
}

/// The distinct (subscription, region) pairs of the workspaces that declare clusters: a
/// workspace's region as read, or as its spec gives it when it is to be created.
fn cluster_regions(desired: &Desired, workspaces: &[ObservedWorkspace]) -> Vec<(String, String)> {
    let mut regions: Vec<(String, String)> = desired
        .workspaces
        .iter()
        .zip(workspaces)
        .filter(|(ws, _)| !ws.clusters.is_empty())
        .filter_map(|(ws, observed)| {
            let live = observed.workspace.present().map(|l| l.location.as_str());
            let spec = ws.spec.location.as_ref().map(|l| l.as_str());
            let region = capacity::workspace_region(live, spec)?;
            Some((ws.spec.subscription_id.as_str().to_string(), region))
        })
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// A missing workspace holds nothing, so its children are not read. When it may be
/// created and its resource group exists, the resources it needs are read: an
/// interrupted creation may have left some of them.
async fn observe_missing(
    client: &ArmClient,
    ws: &DesiredWorkspace,
    group_exists: bool,
) -> Result<ObservedWorkspace, Vec<ArmError>> {
    let dependencies = if ws.spec.create_if_missing && group_exists {
        Some(observe_dependencies(client, ws).await?)
    } else {
        None
    };
    Ok(ObservedWorkspace {
        workspace: Live::Missing,
        resource_group_exists: Some(group_exists),
        dependencies,
        registries: vec![Live::NotRead; ws.registries.len()],
        environments: vec![Live::NotRead; ws.environments.len()],
        existing_environments: vec![Live::NotRead; ws.existing_environments.len()],
        clusters: vec![Live::NotRead; ws.clusters.len()],
        codes: vec![Live::NotRead; ws.codes.len()],
        jobs: vec![Live::NotRead; ws.jobs.len()],
        images: BTreeMap::new(),
    })
}

/// What workspace `ws` holds, given its read under way. Its children are read alongside,
/// as if it were there: one round trip, not two. When it turns out missing (or its read
/// fails), the children's reads are stopped and their answers dropped.
async fn observe_workspace<R>(
    client: &ArmClient,
    ws: &DesiredWorkspace,
    read: R,
) -> Result<ObservedWorkspace, Vec<ArmError>>
where
    R: Future<Output = Result<WorkspaceRead, ArmError>>,
{
    let read = std::pin::pin!(read);
    let children = Box::pin(children_of(client, ws));
    let (read, children) = match select(read, children).await {
        Either::Left((read, pending)) => (read, Either::Left(pending)),
        Either::Right((done, read)) => (read.await, Either::Right(futures::future::ready(done))),
    };
    match read {
        Err(error) => Err(vec![error]),
        Ok(WorkspaceRead::Missing {
            resource_group_exists,
        }) => observe_missing(client, ws, resource_group_exists).await,
        Ok(WorkspaceRead::Present(live)) => {
            let mut observed = children.await?;
            observed.workspace = Live::Present(live);
            Ok(observed)
        }
    }
}

/// The children of workspace `ws`, read as if it were there (its `workspace` is left
/// [`Live::NotRead`] for the caller to fill).
async fn children_of(
    client: &ArmClient,
    ws: &DesiredWorkspace,
) -> Result<ObservedWorkspace, Vec<ArmError>> {
    let name = ws.spec.name.as_str();
    let registries = join_all(ws.registries.iter().map(|registry| async move {
        let operation = Operation::new(
            "read registry connection",
            format!("{name}/{}", registry.name),
        );
        let mut url = client.url_of(&registry.id);
        url.path_segments_mut()
            .expect("an ARM URL has a path")
            .push("listsecrets");
        match client.post_read(&operation, url, None).await {
            Ok(found) => present(found, &operation, LiveConnection::from_arm),
            // A reader may see connections but not their secrets: read it without the
            // password, which the plan then cannot compare (and says so).
            Err(ArmError::Status { status: 403, .. }) => {
                let found = client.get(&operation, client.url_of(&registry.id)).await?;
                present(found, &operation, LiveConnection::from_arm_without_secrets)
            }
            Err(error) => Err(error),
        }
    }));
    let environments = join_all(ws.environments.iter().map(|env| async move {
        let operation = Operation::new(
            "read environment",
            format!("{name}/{}:{}", env.name, env.version),
        );
        let found = client.get(&operation, client.url_of(&env.id)).await?;
        present(found, &operation, LiveEnvironmentVersion::from_arm)
    }));
    let existing = join_all(
        ws.existing_environments
            .iter()
            .map(|env| read_existing_environment(client, ws, env)),
    );
    let clusters = join_all(ws.clusters.iter().map(|cluster| async move {
        let operation = Operation::new("read compute", format!("{name}/{}", cluster.name));
        let found = client.get(&operation, client.url_of(&cluster.id)).await?;
        present(found, &operation, LiveCompute::from_arm)
    }));
    let codes = join_all(ws.codes.iter().map(|code| async move {
        let operation = Operation::new(
            "look up code by content hash",
            format!("{name}/{}", &code.hash[..12]),
        );
        // Azure searches every code asset for the hash, whatever name is in the path.
        let versions = ws.id.child("codes", &code.name).collection("versions");
        let mut url = client.url_of(&versions);
        url.query_pairs_mut()
            .append_pair("hash", &code.hash)
            .append_pair("hashVersion", &HASH_VERSION.to_string());
        let found = client.list(&operation, url, Some(1)).await?;
        Ok::<_, ArmError>(match found.first() {
            Some(version) => Live::Present(LiveCode::from_arm(version)),
            None => Live::Missing,
        })
    }));
    let jobs = join_all(ws.jobs.iter().map(|job| async move {
        let operation = Operation::new("read job", format!("{name}/{}", job.name));
        let found = client.get(&operation, client.url_of(&job.id)).await?;
        present(found, &operation, LiveJob::from_arm)
    }));
    let (registries, environments, existing, clusters, codes, jobs) =
        futures::join!(registries, environments, existing, clusters, codes, jobs);

    let mut errors = Vec::new();
    let observed = ObservedWorkspace {
        workspace: Live::NotRead,
        resource_group_exists: Some(true),
        dependencies: None,
        registries: collect(registries, &mut errors),
        environments: collect(environments, &mut errors),
        existing_environments: collect(existing, &mut errors),
        clusters: collect(clusters, &mut errors),
        codes: collect(codes, &mut errors),
        jobs: collect(jobs, &mut errors),
        images: BTreeMap::new(),
    };
    if errors.is_empty() {
        Ok(observed)
    } else {
        Err(errors)
    }
}

/// The values of the reads that worked; the errors of the others go to `errors`.
fn collect<T>(results: Vec<Result<T, ArmError>>, errors: &mut Vec<ArmError>) -> Vec<T> {
    let mut values = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) => errors.push(error),
        }
    }
    values
}

/// Decode what a read found into its live form (`from_arm` of the body type `B`).
fn present<B: DeserializeOwned, T>(
    found: Found,
    operation: &Operation,
    from_arm: fn(B) -> T,
) -> Result<Live<T>, ArmError> {
    match found {
        Found::Present(response) => Ok(Live::Present(from_arm(response.decode(operation)?))),
        Found::Missing { .. } => Ok(Live::Missing),
    }
}

async fn read_existing_environment(
    client: &ArmClient,
    ws: &DesiredWorkspace,
    env: &ExistingEnvironment,
) -> Result<Live<LiveEnvironmentRef>, ArmError> {
    let versions = ws
        .id
        .child("environments", &env.name)
        .collection("versions");
    match &env.version {
        Some(version) => {
            let operation = Operation::new(
                "read environment",
                format!("{}/{}:{version}", ws.spec.name, env.name),
            );
            let id = ws
                .id
                .child("environments", &env.name)
                .child("versions", version);
            let found = client.get(&operation, client.url_of(&id)).await?;
            present(found, &operation, |body: Value| {
                LiveEnvironmentRef::from_arm(&body)
            })
        }
        None => {
            let operation = Operation::new(
                "find the latest version of environment",
                format!("{}/{}", ws.spec.name, env.name),
            );
            let mut url = client.url_of(&versions);
            url.query_pairs_mut()
                .append_pair("$orderBy", "createdtime desc")
                .append_pair("$top", "1");
            let latest = match client.list(&operation, url, Some(1)).await {
                Ok(items) => items,
                // No such environment: the versions of a missing container are missing.
                Err(ArmError::Status { status: 404, .. }) => Vec::new(),
                Err(error) => return Err(error),
            };
            Ok(match latest.first() {
                Some(version) => Live::Present(LiveEnvironmentRef::from_arm(version)),
                None => Live::Missing,
            })
        }
    }
}

async fn observe_dependencies(
    client: &ArmClient,
    ws: &DesiredWorkspace,
) -> Result<ObservedDependencies, Vec<ArmError>> {
    let exists = |id: &ResourceId, what: &'static str| {
        let operation = Operation::new(what, id.name().to_string());
        let url = client.url_of(id);
        async move {
            client.get(&operation, url).await.map(|found| match found {
                Found::Present(_) => Live::Present(()),
                Found::Missing { .. } => Live::Missing,
            })
        }
    };
    let deps = &ws.dependencies;
    let found = futures::join!(
        exists(&deps.storage_account, "read storage account"),
        exists(&deps.key_vault, "read key vault"),
        exists(&deps.application_insights, "read application insights"),
    );
    match found {
        (Ok(storage_account), Ok(key_vault), Ok(application_insights)) => {
            Ok(ObservedDependencies {
                storage_account,
                key_vault,
                application_insights,
            })
        }
        (storage, vault, insights) => Err([storage.err(), vault.err(), insights.err()]
            .into_iter()
            .flatten()
            .collect()),
    }
}
