//! Stage 4, plan: desired state + observed live state -> a `Plan`. Pure, synchronous and
//! deterministic (no I/O, no clock): every decision is made here, so `apply` only
//! sequences what the plan says.
//!
//! Per resource the action is one of create, update in place, replace (an immutable
//! attribute changed; apply refuses it unless allowed), no-op, or blocked (the plan
//! cannot be applied as is: a missing workspace that may not be created, an immutable
//! workspace location, a pinned environment version that exists with other content, an
//! existing environment that is not there). Values are compared in the spec's terms
//! after normalisation (seconds, not ISO-8601 durations; VM sizes and regions without
//! regard to case); keys the spec leaves out (description, tags, idle time) are not
//! managed and so never drift.

mod decide;
pub mod preflight;
mod saved;
pub mod step;
mod target;
#[cfg(test)]
pub(crate) mod testing;
mod unmanaged;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::Desired;
use crate::observe::Observed;
use crate::spec::model::Origin;

pub use decide::manifest_digest;
pub use saved::{SavedPlanError, parse_saved, stale};
pub use target::{TargetError, targeted};
pub use unmanaged::{Unmanaged, unmanaged};

/// Attributes of a resource in the spec's terms, in the order the spec reads them.
pub type Attributes = IndexMap<String, Value>;

/// Version of the plan's JSON form (`--format json` and saved plans).
/// 2: `detail` is a typed value (it was text).
pub const FORMAT_VERSION: u32 = 2;

/// Shown instead of a secret's value.
pub const SENSITIVE: &str = "(sensitive)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// sha256 over every resource's desired attributes (secrets excluded).
    pub manifest_digest: String,
    /// The spec files and folders the plan was made from, as given (`apply PLANFILE`
    /// loads them again).
    #[serde(default)]
    pub specs: Vec<String>,
    /// `--target` addresses the plan was narrowed to (empty: the whole plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// With `--unmanaged`: what the workspaces hold that no spec declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
    pub workspaces: Vec<WorkspacePlan>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspacePlan {
    pub name: String,
    pub resource_group: String,
    pub subscription_id: String,
    pub resources: Vec<ResourceChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ResourceGroup,
    StorageAccount,
    KeyVault,
    ApplicationInsights,
    Workspace,
    Registry,
    Environment,
    Cluster,
    /// A code snapshot a job needs uploaded: a step of apply, never a plan entry of its
    /// own (its job's entry says what it uploads).
    Code,
    Job,
}

impl Kind {
    /// The kind's segment in addresses: the same name as its `type` in plan JSON.
    pub fn path(&self) -> &'static str {
        match self {
            Kind::ResourceGroup => "resource_group",
            Kind::StorageAccount => "storage_account",
            Kind::KeyVault => "key_vault",
            Kind::ApplicationInsights => "application_insights",
            Kind::Workspace => "workspace",
            Kind::Registry => "registry",
            Kind::Environment => "environment",
            Kind::Cluster => "cluster",
            Kind::Code => "code",
            Kind::Job => "job",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Kind::ResourceGroup => "resource group",
            Kind::StorageAccount => "storage account",
            Kind::KeyVault => "key vault",
            Kind::ApplicationInsights => "application insights",
            Kind::Workspace => "workspace",
            Kind::Registry => "registry",
            Kind::Environment => "environment",
            Kind::Cluster => "cluster",
            Kind::Code => "code",
            Kind::Job => "job",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    NoOp,
    Blocked,
}

impl Action {
    /// Terraform-style action list, for policy tools that read terraform plans.
    pub fn terraform_actions(self) -> Vec<String> {
        let names: &[&str] = match self {
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::NoOp => &["no-op"],
            Action::Blocked => &["blocked"],
        };
        names.iter().map(|n| n.to_string()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update in place",
            Action::Replace => "replace",
            Action::NoOp => "no change",
            Action::Blocked => "blocked",
        }
    }
}

/// A resource's stable name in plans: `<resource group>/<workspace>/<kind>/<name>`
/// (`<resource group>` alone for a resource group, `<resource group>/<kind>/<name>` for
/// what a new workspace needs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn resource_group(resource_group: &str) -> Self {
        Address(resource_group.to_string())
    }

    pub fn workspace(resource_group: &str, workspace: &str) -> Self {
        Address(format!("{resource_group}/{workspace}"))
    }

    /// A resource a new workspace needs, in its resource group.
    pub fn dependency(resource_group: &str, kind: &Kind, name: &str) -> Self {
        Address(format!("{resource_group}/{}/{name}", kind.path()))
    }

    /// A resource in this workspace.
    pub fn child(&self, kind: &Kind, name: &str) -> Self {
        Address(format!("{}/{}/{name}", self.0, kind.path()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same address with its text rewritten (secrets masked, for output).
    pub fn map_text(&self, f: impl FnOnce(&String) -> String) -> Address {
        Address(f(&self.0))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// Stable name of the resource in plans.
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: String,
    pub id: String,
    pub action: Action,
    /// Terraform-style: `["create"]`, `["update"]`, `["delete", "create"]`, `["no-op"]`.
    pub actions: Vec<String>,
    /// Live attributes (when it exists) and desired attributes, in the spec's terms;
    /// secrets show as `(sensitive)`.
    pub before: Option<Attributes>,
    pub after: Option<Attributes>,
    /// Attributes whose change the action is about.
    pub changed: Vec<String>,
    /// For a replacement: the immutable attributes that force it.
    pub forces_replacement: Vec<String>,
    /// Why: what blocks it, what forces a replacement, what to know.
    pub reason: Option<String>,
    /// What a new or existing version or run is made of, for people ("submit to
    /// gpu-cluster, 3 files, 1.2 kB to upload" in the human form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// Where the spec declares it.
    pub origin: Option<SpecLocation>,
    /// Fingerprint of the live state read, when it exists.
    pub fingerprint: Option<String>,
    /// Resources of this plan that this one needs first.
    pub depends_on: Vec<Address>,
    /// What apply needs beyond the attributes, resolved from what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
    /// What preflight checked about it (a new cluster's VM size and quota, a job's
    /// quota): each check, its outcome and what it found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<preflight::Check>,
}

/// Facts the executor needs, resolved by the plan from the spec and from Azure, so that
/// apply makes no decision of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Facts {
    /// A workspace to create, and what it is created with.
    Workspace {
        location: String,
        storage_account: String,
        key_vault: String,
        application_insights: String,
    },
    /// Where a resource that needs a region goes (a new cluster: its workspace's region).
    Location {
        location: String,
        /// The resource exists, but its provisioning failed: replacing it loses nothing,
        /// so apply does it without `--allow-replace`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        provisioning_failed: bool,
    },
    /// An environment version's build context: to upload (a new version) or where it is
    /// (an existing version, updated in place).
    Environment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build_context: Option<BuildContextFact>,
    },
    /// What a new job is submitted with.
    Job {
        environment_id: String,
        compute_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<CodeFact>,
    },
}

/// What a resource's entry says beyond its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "snake_case")]
pub enum Detail {
    /// An environment version (new, or existing and updated in place).
    EnvironmentVersion {
        version: String,
        /// What a new version uploads first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload: Option<Upload>,
    },
    /// A job to submit to `cluster`.
    Submit {
        cluster: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<CodeDetail>,
    },
    /// A job already submitted, with its status as read.
    Submitted { status: Option<String> },
}

/// What an upload sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Upload {
    InlineDockerfile,
    BuildContext { files: usize, bytes: u64 },
}

/// A job's code snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CodeDetail {
    AlreadyUploaded,
    Upload { files: usize, bytes: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BuildContextFact {
    Upload {
        sha256: String,
        files: usize,
        bytes: u64,
    },
    Uploaded {
        uri: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CodeFact {
    /// A code version with the same content exists: the job uses it.
    Found { id: String },
    /// Uploaded as this code version first.
    Upload {
        id: String,
        sha256: String,
        files: usize,
        bytes: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl ResourceChange {
    /// A replacement that may destroy something of value: not of a resource whose
    /// provisioning failed.
    pub fn needs_allow_replace(&self) -> bool {
        self.action == Action::Replace
            && !matches!(
                self.facts,
                Some(Facts::Location {
                    provisioning_failed: true,
                    ..
                })
            )
    }
}

impl From<&Origin> for SpecLocation {
    fn from(origin: &Origin) -> Self {
        SpecLocation {
            file: origin.file.display().to_string(),
            line: origin.span.line,
            column: origin.span.column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub blocked: usize,
    pub unchanged: usize,
}

impl Summary {
    /// `changes` counted, each under its action.
    pub fn count<'a>(changes: impl IntoIterator<Item = &'a ResourceChange>) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::NoOp => summary.unchanged += 1,
                Action::Blocked => summary.blocked += 1,
            }
        }
        summary
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.summary.create + self.summary.update + self.summary.replace > 0
    }

    pub fn is_blocked(&self) -> bool {
        self.summary.blocked > 0
    }

    pub fn resources(&self) -> impl Iterator<Item = &ResourceChange> {
        self.workspaces.iter().flat_map(|w| w.resources.iter())
    }
}

/// Decide what to do about every resource.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    plan_with_digest(desired, observed, manifest_digest(desired))
}

/// [`plan`], given the [`manifest_digest`] of `desired` (which depends on nothing live,
/// so it can be worked out while the reads are in flight).
pub fn plan_with_digest(desired: &Desired, observed: &Observed, manifest_digest: String) -> Plan {
    let workspaces: Vec<WorkspacePlan> = desired
        .workspaces
        .iter()
        .zip(&observed.workspaces)
        .map(|(d, o)| {
            let mut resources = decide::workspace_plan(d, o, desired.allow_secret_files);
            preflight::check_workspace(d, o, &observed.regions, observed.preflight, &mut resources);
            preflight::check_images(d, o, observed.preflight, &mut resources);
            WorkspacePlan {
                name: d.spec.name.to_string(),
                resource_group: d.spec.resource_group.to_string(),
                subscription_id: d.spec.subscription_id.as_str().to_string(),
                resources,
            }
        })
        .collect();
    let summary = Summary::count(workspaces.iter().flat_map(|w| w.resources.iter()));
    Plan {
        format_version: FORMAT_VERSION,
        manifest_digest,
        specs: Vec::new(),
        targets: Vec::new(),
        unmanaged: Vec::new(),
        workspaces,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Live;
    use crate::plan::testing::{WORKSPACE, desired, live_cluster, live_workspace, observed};

    /// The names policy tools read in a Terraform plan.
    #[test]
    fn actions_are_named_as_terraform_names_them() {
        let names = |action: Action| action.terraform_actions();
        assert_eq!(names(Action::Create), ["create"]);
        assert_eq!(names(Action::Update), ["update"]);
        assert_eq!(names(Action::Replace), ["delete", "create"]);
        assert_eq!(names(Action::NoOp), ["no-op"]);
        assert_eq!(names(Action::Blocked), ["blocked"]);
    }

    /// A plan has changes when it creates, updates or replaces anything (any one of them
    /// alone is enough) and is blocked when anything is blocked; unchanged resources
    /// are neither.
    #[test]
    fn a_plan_has_changes_when_anything_is_made_or_changed_and_is_blocked_by_one_block() {
        let with = |summary: Summary| Plan {
            format_version: FORMAT_VERSION,
            manifest_digest: String::new(),
            specs: Vec::new(),
            targets: Vec::new(),
            unmanaged: Vec::new(),
            workspaces: Vec::new(),
            summary,
        };
        let none = with(Summary::default());
        assert!(!none.has_changes() && !none.is_blocked());
        let unchanged = with(Summary {
            unchanged: 3,
            ..Summary::default()
        });
        assert!(!unchanged.has_changes() && !unchanged.is_blocked());
        for one in [
            Summary {
                create: 1,
                ..Summary::default()
            },
            Summary {
                update: 1,
                ..Summary::default()
            },
            Summary {
                replace: 1,
                ..Summary::default()
            },
        ] {
            assert!(with(one).has_changes(), "{one:?}");
            assert!(!with(one).is_blocked(), "{one:?}");
        }
        let blocked = with(Summary {
            blocked: 1,
            ..Summary::default()
        });
        assert!(blocked.is_blocked() && !blocked.has_changes());
    }

    /// The summary counts each resource under its action.
    #[test]
    fn the_summary_counts_each_resource_under_its_action() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: cpu-a\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n  - name: cpu-b\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n  - name: cpu-c\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n  - name: cpu-d\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n  - name: cpu-e\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n  - name: cpu-f\n    vm_size: STANDARD_D2_V3\n    max_nodes: 2\n"
        );
        let summary = plan(
            &desired(&spec),
            &observed(
                Live::Present(live_workspace("westeurope")),
                vec![
                    Live::Missing,
                    Live::Missing,
                    Live::Present(live_cluster("STANDARD_D2_V3", 0, 3)),
                    Live::Present(live_cluster("STANDARD_D2_V3", 0, 3)),
                    Live::Present(live_cluster("STANDARD_NC6", 0, 2)),
                    Live::Present(live_cluster("STANDARD_D2_V3", 0, 2)),
                ],
            ),
        )
        .summary;
        assert_eq!(
            summary,
            Summary {
                create: 2,
                update: 2,
                replace: 1,
                blocked: 0,
                unchanged: 2,
            }
        );
        let moved = plan(
            &desired(&spec),
            &observed(
                Live::Present(live_workspace("eastus")),
                vec![Live::NotRead; 6],
            ),
        )
        .summary;
        assert!(moved.blocked >= 1, "{moved:?}");
    }
}
