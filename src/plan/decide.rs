//! One decide function per kind of resource: its desired attributes (a `Draft`), then,
//! against what was read, the action (create, update, replace, no-op, blocked) and why.

use serde_json::{Value, json};

use super::{
    Action, Address, Attributes, BuildContextFact, CodeDetail, CodeFact, Detail, Facts, Kind,
    ResourceChange, SENSITIVE, SpecLocation, Upload,
};
use crate::desired::{
    BuildSource, Desired, DesiredCluster, DesiredEnvironment, DesiredJob, DesiredRegistry,
    DesiredWorkspace, JobEnvironment, distribution_json, vm_priority_name,
};
use crate::hash::{CanonicalArrayDigest, sha256_hex};
use crate::observe::live::{
    LiveCompute, LiveConnection, LiveEnvironmentVersion, LiveJob, LiveWorkspace,
};
use crate::observe::{Live, ObservedWorkspace};

/// sha256 over what every declared resource should be (its address, id and desired
/// attributes; secrets excluded): the same whatever Azure holds.
pub fn manifest_digest(desired: &Desired) -> String {
    // One entry at a time: at 10,000 resources, the whole array and its text would be
    // tens of megabytes, held while the reads are in flight.
    let mut digest = CanonicalArrayDigest::new();
    for ws in &desired.workspaces {
        let ws_draft = workspace_draft(ws);
        let ws_address = ws_draft.address.clone();
        let drafts = std::iter::once(ws_draft)
            .chain(ws.registries.iter().map(|r| registry_draft(r, &ws_address)))
            .chain(
                ws.environments
                    .iter()
                    .map(|e| environment_draft(e, &ws_address)),
            )
            .chain(ws.clusters.iter().map(|c| cluster_draft(c, &ws_address)))
            .chain(ws.jobs.iter().map(|j| job_draft(j, &ws_address)));
        for d in drafts {
            digest.push(&json!({"address": d.address, "id": d.id, "after": d.after}));
        }
    }
    digest.finish()
}

/// A change before its action-dependent fields are filled in.
struct Draft {
    kind: Kind,
    address: Address,
    name: String,
    id: String,
    origin: Option<SpecLocation>,
    depends_on: Vec<Address>,
    after: Attributes,
}

impl Draft {
    fn finish(
        self,
        action: Action,
        before: Option<Attributes>,
        changed: Vec<String>,
        forces_replacement: Vec<String>,
        reason: Option<String>,
        fingerprint: Option<String>,
    ) -> ResourceChange {
        let actions = action.terraform_actions();
        ResourceChange {
            address: self.address,
            kind: self.kind,
            name: self.name,
            id: self.id,
            action,
            actions,
            before,
            after: Some(self.after),
            changed,
            forces_replacement,
            reason,
            detail: None,
            origin: self.origin,
            fingerprint,
            depends_on: self.depends_on,
            facts: None,
            checks: Vec::new(),
        }
    }

    fn create(self) -> ResourceChange {
        let changed = self.after.keys().cloned().collect();
        self.finish(Action::Create, None, changed, Vec::new(), None, None)
    }

    fn blocked(
        self,
        reason: String,
        before: Option<Attributes>,
        fingerprint: Option<String>,
    ) -> ResourceChange {
        self.finish(
            Action::Blocked,
            before,
            Vec::new(),
            Vec::new(),
            Some(reason),
            fingerprint,
        )
    }

    /// Compare with what exists: update, replace or no-op.
    fn compare(
        self,
        before: Attributes,
        immutable: &[&str],
        fingerprint: String,
    ) -> ResourceChange {
        let changed: Vec<String> = self
            .after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        let forces: Vec<String> = changed
            .iter()
            .filter(|k| immutable.contains(&k.as_str()))
            .cloned()
            .collect();
        let (action, reason) = if !forces.is_empty() {
            (
                Action::Replace,
                Some(format!("{} cannot change in place", forces.join(", "))),
            )
        } else if !changed.is_empty() {
            (Action::Update, None)
        } else {
            (Action::NoOp, None)
        };
        self.finish(
            action,
            Some(before),
            changed,
            forces,
            reason,
            Some(fingerprint),
        )
    }
}

fn attributes(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn workspace_draft(d: &DesiredWorkspace) -> Draft {
    let spec = &d.spec;
    let ws_address = Address::workspace(spec.resource_group.as_str(), spec.name.as_str());
    let mut after = attributes(&[
        (
            "location",
            json!(spec.location.as_ref().map(|l| l.as_str())),
        ),
        ("description", json!(spec.description)),
    ]);
    if !spec.tags.is_empty() {
        after.insert("tags".into(), json!(spec.tags));
    }
    Draft {
        kind: Kind::Workspace,
        address: ws_address,
        name: spec.name.to_string(),
        id: d.id.to_string(),
        origin: Some((&spec.origin).into()),
        depends_on: Vec::new(),
        after,
    }
}

pub(super) fn workspace_plan(
    d: &DesiredWorkspace,
    o: &ObservedWorkspace,
    allow_secret_files: bool,
) -> Vec<ResourceChange> {
    let spec = &d.spec;
    let rg = spec.resource_group.as_str();
    let ws_address = Address::workspace(rg, spec.name.as_str());
    let mut changes = Vec::new();

    let draft = workspace_draft(d);
    let ws_change = match &o.workspace {
        Live::Present(live) => workspace_change(draft, d, live),
        _ if !spec.create_if_missing => {
            let children =
                d.registries.len() + d.environments.len() + d.clusters.len() + d.jobs.len();
            let reason = format!(
                "workspace `{}` does not exist in resource group `{rg}`{} and create_if_missing is false; {} declared in it cannot be planned",
                spec.name,
                if o.resource_group_exists == Some(false) {
                    " (the resource group does not exist either)"
                } else {
                    ""
                },
                crate::render::count(children, "resource", "resources"),
            );
            changes.push(draft.blocked(reason, None, None));
            return changes;
        }
        _ => {
            let mut depends = Vec::new();
            if o.resource_group_exists == Some(false) {
                let location = spec.location.as_ref().map(|l| l.as_str());
                changes.push(
                    Draft {
                        kind: Kind::ResourceGroup,
                        address: Address::resource_group(rg),
                        name: rg.to_string(),
                        id: d.resource_group.to_string(),
                        origin: Some((&spec.origin).into()),
                        depends_on: Vec::new(),
                        after: attributes(&[("location", json!(location))]),
                    }
                    .create(),
                );
                depends.push(Address::resource_group(rg));
            }
            let deps = &d.dependencies;
            let observed_deps = o.dependencies.as_ref();
            for (kind, id, live) in [
                (
                    Kind::StorageAccount,
                    &deps.storage_account,
                    observed_deps.map(|x| &x.storage_account),
                ),
                (
                    Kind::KeyVault,
                    &deps.key_vault,
                    observed_deps.map(|x| &x.key_vault),
                ),
                (
                    Kind::ApplicationInsights,
                    &deps.application_insights,
                    observed_deps.map(|x| &x.application_insights),
                ),
            ] {
                let address = Address::dependency(rg, &kind, id.name());
                if matches!(live, Some(Live::Present(()))) {
                    // Left from an earlier, interrupted creation: reused as it is.
                    continue;
                }
                changes.push(
                    Draft {
                        kind,
                        address: address.clone(),
                        name: id.name().to_string(),
                        id: id.to_string(),
                        origin: Some((&spec.origin).into()),
                        depends_on: depends
                            .iter()
                            .filter(|a| **a == Address::resource_group(rg))
                            .cloned()
                            .collect(),
                        after: attributes(&[(
                            "location",
                            json!(spec.location.as_ref().map(|l| l.as_str())),
                        )]),
                    }
                    .create(),
                );
                depends.push(address);
            }
            let mut change = Draft {
                depends_on: depends,
                ..draft
            }
            .create();
            change.facts = Some(Facts::Workspace {
                location: spec
                    .location
                    .as_ref()
                    .map(|l| l.as_str().to_string())
                    .unwrap_or_default(),
                storage_account: deps.storage_account.to_string(),
                key_vault: deps.key_vault.to_string(),
                application_insights: deps.application_insights.to_string(),
            });
            change
        }
    };
    changes.push(ws_change);
    // Where new children go: the workspace's own region.
    let location = match &o.workspace {
        Live::Present(live) => Some(live.location.clone()),
        _ => spec.location.as_ref().map(|l| l.as_str().to_string()),
    };

    for (registry, live) in d.registries.iter().zip(&o.registries) {
        changes.push(registry_change(registry, live, &ws_address));
    }
    for (env, live) in d.environments.iter().zip(&o.environments) {
        changes.push(environment_change(
            env,
            live,
            &ws_address,
            allow_secret_files,
        ));
    }
    for (cluster, live) in d.clusters.iter().zip(&o.clusters) {
        let mut change = cluster_change(cluster, live, &ws_address);
        if matches!(change.action, Action::Create | Action::Replace)
            && let Some(location) = &location
        {
            change.facts = Some(Facts::Location {
                location: location.clone(),
                provisioning_failed: matches!(live, Live::Present(l) if l.provisioning_state.as_deref() == Some("Failed")),
            });
        }
        changes.push(change);
    }
    for (job, live) in d.jobs.iter().zip(&o.jobs) {
        changes.push(job_change(job, live, d, o, &ws_address, allow_secret_files));
    }
    changes
}

fn workspace_change(draft: Draft, d: &DesiredWorkspace, live: &LiveWorkspace) -> ResourceChange {
    let spec = &d.spec;
    let mut before = Attributes::new();
    before.insert(
        "location".to_string(),
        json!(live.location.to_ascii_lowercase().replace(' ', "")),
    );
    if let Some(description) = &live.description {
        before.insert("description".into(), json!(description));
    }
    before.insert("tags".into(), json!(live.tags));
    // Keys the spec leaves out are not managed: they are left out of the comparison.
    let live_location = before["location"].clone();
    if spec.location.is_none() {
        before.shift_remove("location");
    }
    if spec.description.is_none() {
        before.shift_remove("description");
    }
    if spec.tags.is_empty() {
        before.shift_remove("tags");
    }
    if let Some(location) = &spec.location
        && location.as_str() != live_location
    {
        let reason = format!(
            "the workspace is in `{}`, the spec says `{}`; a workspace cannot move: change `location` back, or create a new workspace under another name",
            live.location,
            location.as_str()
        );
        return draft.blocked(reason, Some(before), Some(live.fingerprint.clone()));
    }
    let mut change = draft.compare(before, &[], live.fingerprint.clone());
    if live.provisioning_state.as_deref() == Some("Failed") {
        // Sent again whole (PUT is idempotent): Azure retries what failed.
        change.action = Action::Update;
        change.actions = Action::Update.terraform_actions();
        change.reason = Some("its provisioning failed in Azure; it is created again".into());
        change.facts = Some(Facts::Workspace {
            location: live.location.clone(),
            storage_account: d.dependencies.storage_account.to_string(),
            key_vault: d.dependencies.key_vault.to_string(),
            application_insights: d.dependencies.application_insights.to_string(),
        });
    }
    change
}

fn registry_draft(registry: &DesiredRegistry, ws_address: &Address) -> Draft {
    Draft {
        kind: Kind::Registry,
        address: ws_address.child(&Kind::Registry, &registry.name),
        name: registry.name.clone(),
        id: registry.id.to_string(),
        origin: Some((&registry.origin).into()),
        depends_on: vec![ws_address.clone()],
        after: attributes(&[
            ("address", json!(registry.target)),
            ("username", json!(registry.username)),
            ("password", json!(SENSITIVE)),
            ("category", json!("ContainerRegistry")),
            ("auth_type", json!("UsernamePassword")),
        ]),
    }
}

fn registry_change(
    registry: &DesiredRegistry,
    live: &Live<LiveConnection>,
    ws_address: &Address,
) -> ResourceChange {
    let draft = registry_draft(registry, ws_address);
    let Live::Present(live) = live else {
        return draft.create();
    };
    // The password is compared by value and shown only as a marker of change. Without
    // the right to list secrets it cannot be compared: it is taken as unchanged.
    let password_marker =
        if !live.secrets_read || live.password.as_ref() == Some(&registry.password) {
            SENSITIVE
        } else {
            "(sensitive, differs)"
        };
    let before = attributes(&[
        (
            "address",
            json!(live.target.as_ref().map(|t| t.to_ascii_lowercase())),
        ),
        ("username", json!(live.username)),
        ("password", json!(password_marker)),
        ("category", json!(live.category)),
        ("auth_type", json!(live.auth_type)),
    ]);
    let mut change = draft.compare(before, &[], live.fingerprint.clone());
    if !live.secrets_read {
        change.reason = Some(
            "the password was not compared: listing the connection's secrets was refused (HTTP 403); grant `Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action` to compare it".into(),
        );
    }
    change
}

fn environment_draft(env: &DesiredEnvironment, ws_address: &Address) -> Draft {
    let definition = &env.definition;
    let mut depends_on = vec![ws_address.clone()];
    if let Some(registry) = &env.registry {
        depends_on.push(ws_address.child(&Kind::Registry, registry));
    }
    let build = definition.build.as_ref();
    let mut after = attributes(&[
        ("version", json!(env.version)),
        ("image", json!(definition.image)),
        (
            "conda_file_sha256",
            json!(conda_sha(definition.conda_file.as_deref())),
        ),
        (
            "build_context_sha256",
            json!(build.map(|b| b.hash[..12].to_string())),
        ),
        (
            "dockerfile_path",
            json!(build.map(|b| b.dockerfile_path.clone())),
        ),
        ("description", json!(env.description)),
    ]);
    if !env.tags.is_empty() {
        after.insert("tags".into(), json!(env.tags));
    }
    Draft {
        kind: Kind::Environment,
        address: ws_address.child(&Kind::Environment, &format!("{}:{}", env.name, env.version)),
        name: env.name.clone(),
        id: env.id.to_string(),
        origin: Some((&env.origin).into()),
        depends_on,
        after,
    }
}

fn environment_change(
    env: &DesiredEnvironment,
    live: &Live<LiveEnvironmentVersion>,
    ws_address: &Address,
    allow_secret_files: bool,
) -> ResourceChange {
    let draft = environment_draft(env, ws_address);
    let definition = &env.definition;
    let build = definition.build.as_ref();
    let Live::Present(live) = live else {
        let mut change = draft.create();
        change.detail = Some(Detail::EnvironmentVersion {
            version: env.version.clone(),
            upload: build.map(|b| match &b.source {
                BuildSource::Folder(snapshot) => Upload::BuildContext {
                    files: snapshot.files.len(),
                    bytes: snapshot.total_bytes,
                },
                BuildSource::Inline { .. } => Upload::InlineDockerfile,
            }),
        });
        change.facts = Some(Facts::Environment {
            build_context: build.map(|b| BuildContextFact::Upload {
                sha256: b.hash.clone(),
                files: b.files,
                bytes: b.total_bytes,
            }),
        });
        if let Some(BuildSource::Folder(snapshot)) = build.map(|b| &b.source) {
            return upload_guard(change, snapshot, "build context", allow_secret_files);
        }
        return change;
    };
    let context_matches = match (build, &live.build_context_uri) {
        (None, None) => true,
        (Some(b), Some(uri)) => {
            uri.contains(&b.hash)
                && live.dockerfile_path.as_deref().unwrap_or("Dockerfile") == b.dockerfile_path
        }
        _ => false,
    };
    let mut before = attributes(&[
        ("version", json!(env.version)),
        ("image", json!(live.image)),
        (
            "conda_file_sha256",
            json!(conda_sha(live.conda_file.as_deref())),
        ),
        ("description", json!(live.description)),
    ]);
    if let Some(b) = build {
        if context_matches {
            before.insert("build_context_sha256".into(), json!(b.hash[..12]));
            before.insert("dockerfile_path".into(), json!(b.dockerfile_path));
        } else if let Some(uri) = &live.build_context_uri {
            before.insert("build_context".into(), json!(uri));
        }
    }
    if !env.tags.is_empty() {
        before.insert("tags".into(), json!(live.tags));
    }
    if env.description.is_none() {
        before.shift_remove("description");
    }
    let same_definition = live.image == definition.image
        && normalize_text(live.conda_file.as_deref())
            == normalize_text(definition.conda_file.as_deref())
        && context_matches;
    if !same_definition {
        let reason = if env.pinned {
            format!(
                "version {} of environment `{}` exists with a different definition, and versions cannot change: bump `version`, or remove it to let amlspec version the environment by its content",
                env.version, env.name
            )
        } else {
            format!(
                "version {} of environment `{}` exists with a definition that does not match its content-derived version; delete that version or pin another",
                env.version, env.name
            )
        };
        return draft.blocked(reason, Some(before), Some(live.fingerprint.clone()));
    }
    let mut change = draft.compare(before, &[], live.fingerprint.clone());
    change.detail = Some(Detail::EnvironmentVersion {
        version: env.version.clone(),
        upload: None,
    });
    change.facts = Some(Facts::Environment {
        build_context: live
            .build_context_uri
            .as_ref()
            .filter(|_| build.is_some())
            .map(|uri| BuildContextFact::Uploaded { uri: uri.clone() }),
    });
    change
}

/// A conda file as plans show it: the start of the sha256 of its text, compared as
/// [`normalize_text`] compares it (so a difference the definition check ignores is not
/// shown as a change either).
fn conda_sha(text: Option<&str>) -> Option<String> {
    normalize_text(text).map(|t| sha256_hex(&t)[..12].to_string())
}

fn normalize_text(text: Option<&str>) -> Option<String> {
    text.map(|t| t.replace("\r\n", "\n").trim_end().to_string())
}

fn cluster_draft(cluster: &DesiredCluster, ws_address: &Address) -> Draft {
    let spec = &cluster.spec;
    let mut after = attributes(&[
        ("vm_size", json!(spec.vm_size.to_ascii_uppercase())),
        ("vm_priority", json!(vm_priority_name(spec.vm_priority))),
        ("min_nodes", json!(spec.min_nodes)),
        ("max_nodes", json!(spec.max_nodes)),
        (
            "idle_seconds_before_scale_down",
            json!(spec.idle_seconds_before_scale_down),
        ),
        ("description", json!(spec.description)),
    ]);
    if !spec.tags.is_empty() {
        after.insert("tags".into(), json!(spec.tags));
    }
    Draft {
        kind: Kind::Cluster,
        address: ws_address.child(&Kind::Cluster, &cluster.name),
        name: cluster.name.clone(),
        id: cluster.id.to_string(),
        origin: Some((&spec.origin).into()),
        depends_on: vec![ws_address.clone()],
        after,
    }
}

fn cluster_change(
    cluster: &DesiredCluster,
    live: &Live<LiveCompute>,
    ws_address: &Address,
) -> ResourceChange {
    let draft = cluster_draft(cluster, ws_address);
    let spec = &cluster.spec;
    let Live::Present(live) = live else {
        return draft.create();
    };
    let mut before = attributes(&[
        (
            "vm_size",
            json!(live.vm_size.as_ref().map(|s| s.to_ascii_uppercase())),
        ),
        (
            "vm_priority",
            json!(live.vm_priority.as_deref().unwrap_or("Dedicated")),
        ),
        ("min_nodes", json!(live.min_nodes.unwrap_or(0))),
        ("max_nodes", json!(live.max_nodes)),
        ("description", json!(live.description)),
    ]);
    if spec.idle_seconds_before_scale_down.is_some() {
        before.insert(
            "idle_seconds_before_scale_down".into(),
            json!(live.idle_seconds),
        );
    }
    if spec.description.is_none() {
        before.shift_remove("description");
    }
    if !spec.tags.is_empty() {
        before.insert("tags".into(), json!(live.tags));
    }
    if live
        .compute_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("AmlCompute"))
    {
        let reason = format!(
            "a compute named `{}` exists but is a {}, not an AmlCompute cluster; rename the cluster in the spec",
            cluster.name,
            live.compute_type.as_deref().unwrap_or("different kind")
        );
        return draft.blocked(reason, Some(before), Some(live.fingerprint.clone()));
    }
    // Only scale settings change in place (Compute_Update); the rest needs a new compute.
    let immutable = ["vm_size", "vm_priority", "description", "tags"];
    let mut change = draft.compare(before, &immutable, live.fingerprint.clone());
    if live.provisioning_state.as_deref() == Some("Failed") && change.action != Action::Replace {
        change.action = Action::Replace;
        change.actions = Action::Replace.terraform_actions();
        change.reason = Some("its provisioning failed in Azure; it must be created again".into());
    }
    change
}

fn job_draft(job: &DesiredJob, ws_address: &Address) -> Draft {
    let mut depends_on = vec![
        ws_address.clone(),
        ws_address.child(&Kind::Cluster, &job.cluster),
    ];
    if let JobEnvironment::Declared { name, version, .. } = &job.environment {
        depends_on.push(ws_address.child(&Kind::Environment, &format!("{name}:{version}")));
    }
    let environment = job.environment.reference();
    let mut after = attributes(&[
        ("name", json!(job.name)),
        ("experiment", json!(job.experiment)),
        ("command", json!(job.command)),
        ("environment", json!(environment)),
        ("cluster", json!(job.cluster)),
        ("node_count", json!(job.node_count)),
        (
            "distribution",
            json!(job.distribution.map(distribution_json)),
        ),
        (
            "code_sha256",
            json!(job.code_hash.as_deref().map(|h| h[..12].to_string())),
        ),
        ("display_name", json!(job.display_name)),
        ("description", json!(job.description)),
    ]);
    if !job.environment_variables.is_empty() {
        after.insert(
            "environment_variables".into(),
            json!(job.environment_variables),
        );
    }
    if !job.tags.is_empty() {
        after.insert("tags".into(), json!(job.tags));
    }
    Draft {
        kind: Kind::Job,
        address: ws_address.child(&Kind::Job, &job.name),
        name: job.name.clone(),
        id: job.id.to_string(),
        origin: Some((&job.origin).into()),
        depends_on,
        after,
    }
}

fn job_change(
    job: &DesiredJob,
    live: &Live<LiveJob>,
    d: &DesiredWorkspace,
    o: &ObservedWorkspace,
    ws_address: &Address,
    allow_secret_files: bool,
) -> ResourceChange {
    let draft = job_draft(job, ws_address);
    match live {
        Live::Present(live) => {
            let mut before = draft.after.clone();
            before.shift_remove("description");
            before.shift_remove("tags");
            before.shift_remove("display_name");
            if job.description.is_some() {
                before.insert("description".into(), json!(live.description));
            }
            if !job.tags.is_empty() {
                before.insert("tags".into(), json!(live.tags));
            }
            // The display name is fixed at submission: compared without it, a change
            // is noted, not applied. `after` stays the desired state.
            let desired_after = draft.after.clone();
            let mut comparable = draft.after.clone();
            comparable.shift_remove("display_name");
            let mut change = Draft {
                after: comparable,
                ..draft
            }
            .compare(before, &[], live.fingerprint.clone());
            change.after = Some(desired_after);
            if let (Some(before), Some(shown)) = (change.before.as_mut(), &live.display_name) {
                before.insert("display_name".into(), json!(shown));
            }
            if let Some(wanted) = &job.display_name
                && live.display_name.as_ref() != Some(wanted)
            {
                change.reason = Some(format!(
                    "display_name is fixed when a job is submitted; `{wanted}` applies to the next run (change something that defines the run)"
                ));
            }
            change.detail = Some(Detail::Submitted {
                status: live.status.clone(),
            });
            change.facts = job_facts(job, d, o);
            change
        }
        _ => {
            if let JobEnvironment::Existing(existing) = &job.environment {
                let index = d.existing_environments.iter().position(|e| e == existing);
                let found = index.and_then(|i| o.existing_environments.get(i));
                // In a workspace that does not exist yet, no environment exists either.
                if matches!(found, Some(Live::Missing | Live::NotRead)) {
                    let reason = match &existing.version {
                        Some(version) => format!(
                            "environment `{}` has no version `{version}` in this workspace",
                            existing.name
                        ),
                        None => format!(
                            "environment `{}` does not exist in this workspace",
                            existing.name
                        ),
                    };
                    return draft.blocked(reason, None, None);
                }
            }
            let code = job.code_hash.as_ref().and_then(|hash| {
                let index = d.codes.iter().position(|c| &c.hash == hash)?;
                Some((&d.codes[index], o.codes.get(index)))
            });
            let code_detail = code.map(|(code, live)| match live {
                Some(Live::Present(_)) => CodeDetail::AlreadyUploaded,
                _ => CodeDetail::Upload {
                    files: code.snapshot.files.len(),
                    bytes: code.snapshot.total_bytes,
                },
            });
            let mut change = draft.create();
            change.detail = Some(Detail::Submit {
                cluster: job.cluster.clone(),
                code: code_detail,
            });
            change.facts = job_facts(job, d, o);
            match code {
                Some((code, None | Some(Live::Missing | Live::NotRead))) => upload_guard(
                    change,
                    &code.snapshot,
                    "source_directory",
                    allow_secret_files,
                ),
                _ => change,
            }
        }
    }
}

/// A folder's own name, as plans show it (never the machine's absolute path).
fn folder_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Files shown in a refusal, at most.
const SECRETS_SHOWN: usize = 5;

/// What a folder about to be uploaded (`what`: "source_directory", "build context")
/// must pass: no file that looks like a credential (unless allowed), and a note when it
/// is larger than Azure ML takes comfortably.
fn upload_guard(
    mut change: ResourceChange,
    snapshot: &crate::snapshot::Snapshot,
    what: &str,
    allow_secret_files: bool,
) -> ResourceChange {
    let secrets = snapshot.likely_secrets();
    if !secrets.is_empty() && !allow_secret_files {
        let mut shown: Vec<String> = secrets
            .iter()
            .take(SECRETS_SHOWN)
            .map(|f| format!("`{f}`"))
            .collect();
        if secrets.len() > SECRETS_SHOWN {
            shown.push(format!("and {} more", secrets.len() - SECRETS_SHOWN));
        }
        change.action = Action::Blocked;
        change.actions = Action::Blocked.terraform_actions();
        change.reason = Some(format!(
            "its {what} `{}` holds files that look like credentials, which would be uploaded to the workspace's storage: {}; list them in `.amlignore` there (or its `.gitignore`), or pass --allow-secret-files",
            folder_name(&snapshot.root),
            shown.join(", ")
        ));
        return change;
    }
    if snapshot.total_bytes > crate::snapshot::SNAPSHOT_WARN_BYTES {
        change.reason = Some(format!(
            "its {what} is {}: Azure ML's SDK v1 refuses snapshots above 300 MB, and each new content is uploaded whole; data belongs in a datastore (list it in `.amlignore`)",
            crate::render::size_summary(snapshot.files.len(), snapshot.total_bytes)
        ));
    }
    change
}

/// The ids a job is submitted with: its environment version (an existing one as read,
/// `@latest` resolved), its compute, and its code (found by content hash, or the version
/// to upload). `None` when an existing environment was not found.
fn job_facts(job: &DesiredJob, d: &DesiredWorkspace, o: &ObservedWorkspace) -> Option<Facts> {
    let environment_id = match &job.environment {
        JobEnvironment::Declared { id, .. } => id.to_string(),
        JobEnvironment::Existing(existing) => {
            let index = d.existing_environments.iter().position(|e| e == existing)?;
            o.existing_environments.get(index)?.present()?.id.clone()
        }
    };
    let code = match &job.code_hash {
        None => None,
        Some(hash) => {
            let index = d.codes.iter().position(|c| &c.hash == hash)?;
            let code = &d.codes[index];
            Some(match o.codes.get(index) {
                Some(Live::Present(found)) => CodeFact::Found {
                    id: found.id.clone(),
                },
                _ => CodeFact::Upload {
                    id: d
                        .id
                        .child("codes", &code.name)
                        .child("versions", &code.version)
                        .to_string(),
                    sha256: code.hash.clone(),
                    files: code.snapshot.files.len(),
                    bytes: code.snapshot.total_bytes,
                },
            })
        }
    };
    Some(Facts::Job {
        environment_id,
        compute_id: job.compute_id.to_string(),
        code,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::env::EnvVars;
    use crate::observe::{Live, Observed, ObservedWorkspace};
    use crate::plan::testing::{WORKSPACE, desired, live_cluster, live_workspace, observed};

    fn actions(plan: &crate::plan::Plan) -> Vec<(Kind, Action)> {
        plan.resources()
            .map(|r| (r.kind.clone(), r.action))
            .collect()
    }

    #[test]
    fn a_workspace_location_is_compared_without_regard_to_case_or_spaces() {
        let desired = desired(WORKSPACE);
        for (live, action) in [
            ("westeurope", Action::NoOp),
            ("WestEurope", Action::NoOp),
            ("West Europe", Action::NoOp),
            ("WESTEUROPE", Action::NoOp),
            ("northeurope", Action::Blocked),
            ("North Europe", Action::Blocked),
        ] {
            let plan = crate::plan::plan(
                &desired,
                &observed(Live::Present(live_workspace(live)), Vec::new()),
            );
            assert_eq!(actions(&plan), [(Kind::Workspace, action)], "{live}");
        }
    }

    #[test]
    fn a_cluster_updates_scale_in_place_and_is_replaced_for_its_size() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu-cluster\n    vm_size: Standard_NC6\n    min_nodes: 0\n    max_nodes: 4\n"
        );
        let desired = desired(&spec);
        for (live, action, changed) in [
            (live_cluster("STANDARD_NC6", 0, 4), Action::NoOp, vec![]),
            (live_cluster("standard_nc6", 0, 4), Action::NoOp, vec![]),
            (
                live_cluster("STANDARD_NC6", 0, 2),
                Action::Update,
                vec!["max_nodes"],
            ),
            (
                live_cluster("STANDARD_NC6", 1, 4),
                Action::Update,
                vec!["min_nodes"],
            ),
            (
                live_cluster("STANDARD_NC12", 0, 2),
                Action::Replace,
                vec!["vm_size", "max_nodes"],
            ),
        ] {
            let plan = crate::plan::plan(
                &desired,
                &observed(
                    Live::Present(live_workspace("westeurope")),
                    vec![Live::Present(live)],
                ),
            );
            let cluster = plan.resources().find(|r| r.kind == Kind::Cluster).unwrap();
            assert_eq!(cluster.action, action, "{changed:?}");
            assert_eq!(cluster.changed, changed);
        }
        let plan = crate::plan::plan(
            &desired,
            &observed(
                Live::Present(live_workspace("westeurope")),
                vec![Live::Missing],
            ),
        );
        assert_eq!(
            actions(&plan),
            [
                (Kind::Workspace, Action::NoOp),
                (Kind::Cluster, Action::Create)
            ]
        );
    }

    /// Every dependency a plan names is a resource of that plan.
    fn assert_depends_on_nodes(plan: &crate::plan::Plan) {
        let addresses: Vec<&Address> = plan.resources().map(|r| &r.address).collect();
        for resource in plan.resources() {
            for dependency in &resource.depends_on {
                assert!(
                    addresses.contains(&dependency),
                    "{} depends on {dependency}, which is not in the plan",
                    resource.address
                );
            }
        }
    }

    #[test]
    fn a_new_workspace_depends_only_on_what_the_plan_creates() {
        use crate::observe::ObservedDependencies;
        let spec = WORKSPACE.replace(
            "location: westeurope\n",
            "location: westeurope\n  create_if_missing: true\n",
        );
        let desired = desired(&spec);
        let missing = |group_exists: bool, storage: Live<()>| Observed {
            workspaces: vec![ObservedWorkspace {
                workspace: Live::Missing,
                resource_group_exists: Some(group_exists),
                dependencies: group_exists.then(|| ObservedDependencies {
                    storage_account: storage.clone(),
                    key_vault: Live::Missing,
                    application_insights: Live::Missing,
                }),
                registries: Vec::new(),
                environments: Vec::new(),
                existing_environments: Vec::new(),
                clusters: Vec::new(),
                codes: Vec::new(),
                jobs: Vec::new(),
                images: Default::default(),
            }],
            preflight: crate::observe::Preflight::NONE,
            regions: Vec::new(),
        };
        let kinds = |plan: &crate::plan::Plan| -> Vec<Kind> {
            plan.resources().map(|r| r.kind.clone()).collect()
        };
        let depends = |plan: &crate::plan::Plan, kind: Kind| -> Vec<String> {
            let resource = plan.resources().find(|r| r.kind == kind).unwrap();
            resource.depends_on.iter().map(|a| a.to_string()).collect()
        };

        // Nothing there: the group first, then the three, then the workspace.
        let plan = crate::plan::plan(&desired, &missing(false, Live::NotRead));
        assert_depends_on_nodes(&plan);
        assert_eq!(
            kinds(&plan),
            [
                Kind::ResourceGroup,
                Kind::StorageAccount,
                Kind::KeyVault,
                Kind::ApplicationInsights,
                Kind::Workspace
            ]
        );
        assert_eq!(depends(&plan, Kind::KeyVault), ["rg"]);
        assert_eq!(
            depends(&plan, Kind::Workspace),
            [
                "rg",
                "rg/storage_account/petswsad13817e",
                "rg/key_vault/petsws-ad13817e",
                "rg/application_insights/pets-ws-insights"
            ]
        );

        // The group and a storage account left by an interrupted creation are reused:
        // neither is in the plan, so nothing depends on them.
        let plan = crate::plan::plan(&desired, &missing(true, Live::Present(())));
        assert_depends_on_nodes(&plan);
        assert_eq!(
            kinds(&plan),
            [Kind::KeyVault, Kind::ApplicationInsights, Kind::Workspace]
        );
        assert_eq!(
            depends(&plan, Kind::Workspace),
            [
                "rg/key_vault/petsws-ad13817e",
                "rg/application_insights/pets-ws-insights"
            ]
        );
        assert!(depends(&plan, Kind::KeyVault).is_empty());
    }

    #[test]
    fn uploads_of_likely_credentials_are_blocked_unless_allowed_or_already_there() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 1\njobs:\n  - name: train\n    command: python train.py\n    source_directory: src\n    environment: AzureML-sklearn-1.5:1\n    cluster: gpu\n"
        );
        let files = [("src/train.py", "print(1)\n"), ("src/.env", "TOKEN=x\n")];
        for (allow, ignored, code_exists, expected) in [
            (false, false, false, Action::Blocked),
            (true, false, false, Action::Create),
            (false, true, false, Action::Create),
            // Found by its hash in Azure: nothing is uploaded.
            (false, false, true, Action::Create),
        ] {
            let mut files = files.to_vec();
            if ignored {
                files.push(("src/.amlignore", ".env\n"));
            }
            let mut desired = crate::plan::testing::desired_with_files(&spec, &files);
            desired.allow_secret_files = allow;
            let mut observed = observed(
                Live::Present(live_workspace("westeurope")),
                vec![Live::Present(live_cluster("STANDARD_NC6", 0, 1))],
            );
            let ws = &mut observed.workspaces[0];
            ws.existing_environments =
                vec![Live::Present(crate::observe::live::LiveEnvironmentRef {
                    id: "env-id".into(),
                    version: "1".into(),
                    fingerprint: "e".into(),
                })];
            ws.codes = vec![if code_exists {
                Live::Present(crate::observe::live::LiveCode {
                    id: "code-id".into(),
                    code_uri: None,
                    fingerprint: "c".into(),
                })
            } else {
                Live::Missing
            }];
            ws.jobs = vec![Live::Missing];
            let plan = crate::plan::plan(&desired, &observed);
            let job = plan.resources().find(|r| r.kind == Kind::Job).unwrap();
            assert_eq!(
                job.action, expected,
                "allow {allow}, ignored {ignored}, exists {code_exists}"
            );
            if expected == Action::Blocked {
                let reason = job.reason.as_deref().unwrap();
                assert!(
                    reason.contains("`src` holds files that look like credentials")
                        && reason.contains("`.env`")
                        && reason.contains("--allow-secret-files"),
                    "{reason}"
                );
            }
        }
    }

    fn ws_address() -> Address {
        Address::workspace("rg", "pets-ws")
    }

    fn live_env(
        image: Option<&str>,
        conda: Option<&str>,
        uri: Option<&str>,
    ) -> LiveEnvironmentVersion {
        LiveEnvironmentVersion {
            image: image.map(str::to_string),
            conda_file: conda.map(str::to_string),
            build_context_uri: uri.map(str::to_string),
            dockerfile_path: None,
            description: None,
            tags: BTreeMap::new(),
            fingerprint: "e".into(),
        }
    }

    /// An environment's tags are compared when the spec gives some: the same tags are no
    /// change, other tags are.
    #[test]
    fn an_environment_s_tags_are_compared_when_the_spec_gives_them() {
        let desired = crate::plan::testing::desired_with_passwords(&format!(
            "{WORKSPACE}environments:\n  - name: img\n    image: ubuntu:22.04\n    user_managed_dependencies: true\n    tags:\n      team: ml\n"
        ));
        let env = &desired.workspaces[0].environments[0];
        let tagged = |value: &str| LiveEnvironmentVersion {
            tags: BTreeMap::from([("team".to_string(), value.to_string())]),
            ..live_env(Some("ubuntu:22.04"), None, None)
        };
        let same = environment_change(env, &Live::Present(tagged("ml")), &ws_address(), false);
        assert_eq!(same.action, Action::NoOp, "{:?}", same.reason);
        let other = environment_change(env, &Live::Present(tagged("web")), &ws_address(), false);
        assert_eq!(other.action, Action::Update);
    }

    /// A cluster's tags likewise: the same tags are no change; other tags are a
    /// replacement, since a cluster's tags are among its immutable attributes here.
    #[test]
    fn a_cluster_s_tags_are_compared_when_the_spec_gives_them() {
        let desired = crate::plan::testing::desired_with_passwords(&format!(
            "{WORKSPACE}clusters:\n  - name: cpu\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n    tags:\n      team: ml\n"
        ));
        let cluster = &desired.workspaces[0].clusters[0];
        let tagged = |value: &str| LiveCompute {
            tags: BTreeMap::from([("team".to_string(), value.to_string())]),
            ..crate::plan::testing::live_cluster("STANDARD_D2_V3", 0, 2)
        };
        let same = cluster_change(cluster, &Live::Present(tagged("ml")), &ws_address());
        assert_eq!(same.action, Action::NoOp, "{:?}", same.reason);
        let other = cluster_change(cluster, &Live::Present(tagged("web")), &ws_address());
        assert_eq!(other.action, Action::Replace);
    }

    /// An existing environment version is no change when its definition is the one the
    /// spec describes (conda text compared without line-ending or trailing-space
    /// differences, a build context by its hash and Dockerfile), and blocked otherwise.
    #[test]
    fn an_existing_environment_version_matches_its_definition_or_blocks() {
        let desired = crate::plan::testing::desired_with_files(
            &format!(
                "{WORKSPACE}environments:\n  - name: img\n    image: ubuntu:22.04\n    user_managed_dependencies: false\n    conda_file: conda.yml\n  - name: built\n    dockerfile_path: ctx/Dockerfile\n    build_context: ctx\n"
            ),
            &[
                ("conda.yml", "name: env\ndependencies:\n  - python=3.11\n"),
                ("ctx/Dockerfile", "FROM ubuntu:22.04\n"),
            ],
        );
        let envs = &desired.workspaces[0].environments;
        let (img, built) = (&envs[0], &envs[1]);
        let hash = &built.definition.build.as_ref().unwrap().hash;
        let conda = "name: env\ndependencies:\n  - python=3.11\n";
        let crlf = conda.replace('\n', "\r\n") + "  \n";
        let good_uri = format!("https://a.blob.core.windows.net/c/LocalUpload/{hash}/");
        let cases: Vec<(&DesiredEnvironment, LiveEnvironmentVersion, Action)> = vec![
            (
                img,
                live_env(Some("ubuntu:22.04"), Some(conda), None),
                Action::NoOp,
            ),
            (
                img,
                live_env(Some("ubuntu:22.04"), Some(&crlf), None),
                Action::NoOp,
            ),
            (
                img,
                live_env(Some("ubuntu:24.04"), Some(conda), None),
                Action::Blocked,
            ),
            (
                img,
                live_env(Some("ubuntu:22.04"), Some("name: other\n"), None),
                Action::Blocked,
            ),
            (
                img,
                live_env(Some("ubuntu:22.04"), None, None),
                Action::Blocked,
            ),
            (
                img,
                live_env(Some("ubuntu:22.04"), Some(conda), Some(&good_uri)),
                Action::Blocked,
            ),
            (built, live_env(None, None, Some(&good_uri)), Action::NoOp),
            (
                built,
                live_env(None, None, Some("https://a/c/LocalUpload/other/")),
                Action::Blocked,
            ),
            (built, live_env(None, None, None), Action::Blocked),
            (
                built,
                LiveEnvironmentVersion {
                    dockerfile_path: Some("other/Dockerfile".into()),
                    ..live_env(None, None, Some(&good_uri))
                },
                Action::Blocked,
            ),
        ];
        for (i, (env, live, expected)) in cases.into_iter().enumerate() {
            let change = environment_change(env, &Live::Present(live), &ws_address(), false);
            assert_eq!(change.action, expected, "case {i}: {:?}", change.reason);
            // The conda file is shown by the hash of its normalized text: the same on
            // both sides when the definitions match, different when they do not.
            let sha = |side: &Option<Attributes>| {
                side.as_ref()
                    .and_then(|a| a.get("conda_file_sha256"))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            if env.definition.conda_file.is_some() {
                assert_eq!(
                    sha(&change.after),
                    json!(sha256_hex(conda.trim_end())[..12].to_string()),
                    "case {i}"
                );
                let same_conda = i <= 2 || i == 5;
                assert_eq!(
                    sha(&change.before) == sha(&change.after),
                    same_conda,
                    "case {i}"
                );
            }
            if expected == Action::NoOp && env.definition.build.is_some() {
                assert_eq!(
                    change.facts,
                    Some(Facts::Environment {
                        build_context: Some(BuildContextFact::Uploaded {
                            uri: good_uri.clone()
                        })
                    })
                );
            }
        }
    }

    /// A registry's password is compared by value and never shown; when its secrets
    /// could not be listed, it is not compared, and the plan says why.
    #[test]
    fn a_registry_password_is_compared_but_never_shown() {
        use crate::secret::Secret;
        let env: EnvVars = [("ACR_PASSWORD", "the-right-password-0123456789")]
            .into_iter()
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        std::fs::write(
            &path,
            format!(
                "{WORKSPACE}registries:\n  - name: acr\n    address: myacr.azurecr.io\n    username: user\n    password: ${{ACR_PASSWORD}}\n"
            ),
        )
        .unwrap();
        let loaded = crate::spec::load(&[path], &env);
        let desired = crate::desired::desired(&loaded.specs.unwrap()).unwrap();
        let registry = &desired.workspaces[0].registries[0];
        let live = |password: &str, read: bool, target: &str| LiveConnection {
            category: Some("ContainerRegistry".into()),
            auth_type: Some("UsernamePassword".into()),
            target: Some(target.into()),
            username: Some("user".into()),
            password: read.then(|| Secret::new(password.to_string())),
            secrets_read: read,
            fingerprint: "r".into(),
        };
        for (live, action, has_reason) in [
            (
                live("the-right-password-0123456789", true, "myacr.azurecr.io"),
                Action::NoOp,
                false,
            ),
            (
                live("the-right-password-0123456789", true, "MyAcr.azurecr.io"),
                Action::NoOp,
                false,
            ),
            (
                live("rotated", true, "myacr.azurecr.io"),
                Action::Update,
                false,
            ),
            (live("", false, "myacr.azurecr.io"), Action::NoOp, true),
            (
                live("the-right-password-0123456789", true, "other.azurecr.io"),
                Action::Update,
                false,
            ),
        ] {
            let change = registry_change(registry, &Live::Present(live), &ws_address());
            assert_eq!(change.action, action, "{:?}", change.before);
            assert_eq!(change.reason.is_some(), has_reason, "{:?}", change.reason);
            let shown = serde_json::to_string(&change).unwrap();
            assert!(!shown.contains("the-right-password") && !shown.contains("rotated"));
        }
    }

    /// A workspace's description and tags are managed only when the spec gives them.
    #[test]
    fn a_workspace_manages_only_what_its_spec_gives() {
        let tagged = desired(&format!("{WORKSPACE}  tags:\n    team: vision\n"));
        let bare = desired(WORKSPACE);
        let with_tags = |tags: &[(&str, &str)]| LiveWorkspace {
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            description: Some("set by hand".into()),
            ..live_workspace("westeurope")
        };
        for (desired, live, expected) in [
            (&bare, with_tags(&[("owner", "someone")]), Action::NoOp),
            (&tagged, with_tags(&[("team", "vision")]), Action::NoOp),
            (&tagged, with_tags(&[]), Action::Update),
            (&tagged, with_tags(&[("team", "nlp")]), Action::Update),
        ] {
            let plan = crate::plan::plan(desired, &observed(Live::Present(live), Vec::new()));
            assert_eq!(actions(&plan), [(Kind::Workspace, expected)]);
        }
    }

    /// A missing workspace that may not be created blocks, saying how many resources
    /// declared in it cannot be planned.
    #[test]
    fn a_missing_workspace_not_to_be_created_counts_what_cannot_be_planned() {
        let spec = format!(
            "{WORKSPACE}registries:\n  - name: acr\n    address: a.azurecr.io\n    username: u\n    password: ${{P}}\nenvironments:\n  - name: e1\n    image: ubuntu:22.04\n  - name: e2\n    image: ubuntu:24.04\nclusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 1\n  - name: cpu\n    vm_size: Standard_DS3_v2\n    max_nodes: 1\n  - name: big\n    vm_size: Standard_NC24\n    max_nodes: 1\njobs:\n  - name: j\n    command: echo\n    environment: e1\n    cluster: gpu\n"
        );
        let desired = crate::plan::testing::desired_with_passwords(&spec);
        let mut read = observed(Live::Missing, Vec::new());
        read.workspaces[0].resource_group_exists = Some(true);
        let plan = crate::plan::plan(&desired, &read);
        let change = plan.resources().next().unwrap();
        assert_eq!(change.action, Action::Blocked);
        // 1 registry + 2 environments + 3 clusters + 1 job.
        assert!(
            change
                .reason
                .as_deref()
                .unwrap()
                .ends_with("7 resources declared in it cannot be planned"),
            "{:?}",
            change.reason
        );
        assert_eq!(plan.resources().count(), 1, "nothing else is planned");
    }

    /// The upload guard at its edges: five likely credentials are all named, a sixth is
    /// counted; exactly 300 MB gets no note, one byte more does.
    #[test]
    fn the_upload_guard_names_five_and_notes_above_300_mb() {
        use crate::snapshot::{SNAPSHOT_WARN_BYTES, Snapshot, SnapshotFile};
        let snapshot = |names: &[&str], total_bytes: u64| Snapshot {
            root: std::path::PathBuf::from("/repo/src"),
            files: names
                .iter()
                .map(|n| SnapshotFile {
                    relative: n.to_string(),
                    path: std::path::PathBuf::from(n),
                    size: 1,
                })
                .collect(),
            hash: "0".repeat(64),
            total_bytes,
            ignore_file: None,
        };
        let change = || {
            Draft {
                kind: Kind::Job,
                address: ws_address().child(&Kind::Job, "j"),
                name: "j".into(),
                id: "id".into(),
                origin: None,
                depends_on: Vec::new(),
                after: Attributes::new(),
            }
            .create()
        };
        let five = ["a.pem", "b.pem", "c.pem", "d.pem", "e.pem"];
        let guarded = upload_guard(change(), &snapshot(&five, 5), "source_directory", false);
        let reason = guarded.reason.unwrap();
        assert_eq!(guarded.action, Action::Blocked);
        assert!(
            reason.contains("`e.pem`") && !reason.contains("more"),
            "{reason}"
        );
        let six = [&five[..], &["f.pem"]].concat();
        let reason = upload_guard(change(), &snapshot(&six, 6), "source_directory", false)
            .reason
            .unwrap();
        assert!(
            reason.contains("and 1 more") && !reason.contains("f.pem"),
            "{reason}"
        );
        // Allowed: no block.
        let allowed = upload_guard(change(), &snapshot(&six, 6), "source_directory", true);
        assert_eq!(allowed.action, Action::Create);

        let at_limit = upload_guard(
            change(),
            &snapshot(&["a.py"], SNAPSHOT_WARN_BYTES),
            "x",
            false,
        );
        assert_eq!((at_limit.action, at_limit.reason), (Action::Create, None));
        let above = upload_guard(
            change(),
            &snapshot(&["a.py"], SNAPSHOT_WARN_BYTES + 1),
            "x",
            false,
        );
        assert_eq!(above.action, Action::Create);
        assert!(above.reason.unwrap().contains("above 300 MB"));
    }

    /// A job's entry: created with the ids it is submitted with (its code found by
    /// hash or to upload, an existing environment resolved), unchanged once submitted,
    /// blocked when the environment it names does not exist.
    #[test]
    fn a_job_is_submitted_with_resolved_ids_once() {
        use crate::observe::live::{LiveCode, LiveEnvironmentRef, LiveJob};
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 1\njobs:\n  - name: train\n    command: python train.py\n    source_directory: src\n    environment: curated@latest\n    cluster: gpu\n"
        );
        let desired =
            crate::plan::testing::desired_with_files(&spec, &[("src/train.py", "print(1)\n")]);
        let ws = &desired.workspaces[0];
        let code = &ws.codes[0];
        let read = |env: Live<LiveEnvironmentRef>, code: Live<LiveCode>, job: Live<LiveJob>| {
            let mut read = observed(
                Live::Present(live_workspace("westeurope")),
                vec![Live::Present(live_cluster("STANDARD_NC6", 0, 1))],
            );
            let o = &mut read.workspaces[0];
            o.existing_environments = vec![env];
            o.codes = vec![code];
            o.jobs = vec![job];
            read
        };
        let env = || {
            Live::Present(LiveEnvironmentRef {
                id: format!("{}/environments/curated/versions/7", ws.id),
                version: "7".into(),
                fingerprint: "e".into(),
            })
        };
        let found = || {
            Live::Present(LiveCode {
                id: "found-code-id".into(),
                code_uri: None,
                fingerprint: "c".into(),
            })
        };
        let job_of = |plan: &crate::plan::Plan| {
            plan.resources()
                .find(|r| r.kind == Kind::Job)
                .unwrap()
                .clone()
        };

        let fresh = job_of(&crate::plan::plan(
            &desired,
            &read(env(), Live::Missing, Live::Missing),
        ));
        assert_eq!(fresh.action, Action::Create);
        let upload_id = format!("{}/codes/{}/versions/{}", ws.id, code.name, code.version);
        assert_eq!(
            fresh.facts,
            Some(Facts::Job {
                environment_id: format!("{}/environments/curated/versions/7", ws.id),
                compute_id: format!("{}/computes/gpu", ws.id),
                code: Some(CodeFact::Upload {
                    id: upload_id,
                    sha256: code.hash.clone(),
                    files: 1,
                    bytes: 9,
                }),
            })
        );
        assert!(matches!(
            fresh.detail,
            Some(Detail::Submit {
                code: Some(CodeDetail::Upload { files: 1, bytes: 9 }),
                ..
            })
        ));

        let reused = job_of(&crate::plan::plan(
            &desired,
            &read(env(), found(), Live::Missing),
        ));
        assert!(matches!(
            reused.facts,
            Some(Facts::Job { code: Some(CodeFact::Found { ref id }), .. }) if id == "found-code-id"
        ));
        assert!(matches!(
            reused.detail,
            Some(Detail::Submit {
                code: Some(CodeDetail::AlreadyUploaded),
                ..
            })
        ));

        let submitted = LiveJob {
            status: Some("Completed".into()),
            description: None,
            tags: BTreeMap::new(),
            display_name: None,
            fingerprint: "j".into(),
        };
        let done = job_of(&crate::plan::plan(
            &desired,
            &read(env(), found(), Live::Present(submitted)),
        ));
        assert_eq!(done.action, Action::NoOp);
        assert_eq!(
            done.detail,
            Some(Detail::Submitted {
                status: Some("Completed".into())
            })
        );

        let no_env = job_of(&crate::plan::plan(
            &desired,
            &read(Live::Missing, Live::Missing, Live::Missing),
        ));
        assert_eq!(no_env.action, Action::Blocked);
        assert_eq!(
            no_env.reason.as_deref(),
            Some("environment `curated` does not exist in this workspace")
        );
    }

    /// A submitted job: its tags and description are compared when the spec gives them;
    /// its display name, fixed at submission, is noted rather than changed; the
    /// environment variables it runs with are part of what a new job shows.
    #[test]
    fn a_submitted_job_compares_its_tags_and_notes_a_new_display_name() {
        use crate::observe::live::{LiveEnvironmentRef, LiveJob};
        let spec = |extra: &str| {
            format!(
                "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 1\njobs:\n  - name: train\n    command: python train.py\n    environment: curated:7\n    cluster: gpu\n{extra}"
            )
        };
        let job_in = |desired: &Desired, job: Live<LiveJob>| {
            let ws = &desired.workspaces[0];
            let mut read = observed(
                Live::Present(live_workspace("westeurope")),
                vec![Live::Present(live_cluster("STANDARD_NC6", 0, 1))],
            );
            let o = &mut read.workspaces[0];
            o.existing_environments = vec![Live::Present(LiveEnvironmentRef {
                id: format!("{}/environments/curated/versions/7", ws.id),
                version: "7".into(),
                fingerprint: "e".into(),
            })];
            o.jobs = vec![job];
            crate::plan::plan(desired, &read)
                .resources()
                .find(|r| r.kind == Kind::Job)
                .unwrap()
                .clone()
        };
        let submitted = |tags: &[(&str, &str)], display_name: Option<&str>| {
            Live::Present(LiveJob {
                status: Some("Running".into()),
                description: None,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                display_name: display_name.map(str::to_string),
                fingerprint: "j".into(),
            })
        };

        let tagged = desired(&spec("    tags:\n      team: ml\n"));
        let same = job_in(&tagged, submitted(&[("team", "ml")], None));
        assert_eq!(same.action, Action::NoOp, "{:?}", same.changed);
        let other = job_in(&tagged, submitted(&[("team", "web")], None));
        assert_eq!(other.action, Action::Update);
        assert_eq!(other.changed, vec!["tags".to_string()]);
        // Without tags in the spec, the run's tags are not managed.
        let untagged = job_in(&desired(&spec("")), submitted(&[("team", "web")], None));
        assert_eq!(untagged.action, Action::NoOp, "{:?}", untagged.changed);

        let named = desired(&spec("    display_name: First run\n"));
        let shown = job_in(&named, submitted(&[], Some("First run")));
        assert_eq!(shown.action, Action::NoOp, "{:?}", shown.changed);
        assert_eq!(shown.reason, None);
        assert_eq!(
            shown.after.as_ref().unwrap().get("display_name"),
            Some(&json!("First run"))
        );
        let renamed = job_in(&named, submitted(&[], Some("Old name")));
        assert_eq!(renamed.action, Action::NoOp, "{:?}", renamed.changed);
        assert_eq!(
            renamed.reason.as_deref(),
            Some(
                "display_name is fixed when a job is submitted; `First run` applies to the next run (change something that defines the run)"
            )
        );
        assert_eq!(
            renamed.before.as_ref().unwrap().get("display_name"),
            Some(&json!("Old name"))
        );

        let with_variables = desired(&spec("    environment_variables:\n      EPOCHS: \"5\"\n"));
        let new = job_in(&with_variables, Live::Missing);
        assert_eq!(new.action, Action::Create);
        assert_eq!(
            new.after.as_ref().unwrap().get("environment_variables"),
            Some(&json!({"EPOCHS": "5"}))
        );
        let plain = job_in(&desired(&spec("")), Live::Missing);
        assert_eq!(
            plain.after.as_ref().unwrap().get("environment_variables"),
            None
        );
    }

    /// A new cluster goes where its workspace is, as Azure spells the region.
    #[test]
    fn a_new_cluster_takes_its_workspaces_region() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 4\n"
        );
        let plan = crate::plan::plan(
            &desired(&spec),
            &observed(
                Live::Present(live_workspace("WestEurope")),
                vec![Live::Missing],
            ),
        );
        let cluster = plan.resources().find(|r| r.kind == Kind::Cluster).unwrap();
        assert_eq!(
            cluster.facts,
            Some(Facts::Location {
                location: "WestEurope".into(),
                provisioning_failed: false
            })
        );
    }
}
