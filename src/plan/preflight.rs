//! Preflight: what Azure would refuse only after minutes, caught by the plan from what
//! observe read (`observe::capacity`, `observe::images`): a new cluster's VM size not
//! offered in its region, a cluster that cannot scale to `max_nodes` within the vCPU
//! quota, a job that asks for more vCPUs than the quota can ever give, an image that
//! cannot be pulled with the credentials given.
//!
//! Each check says what it checked, in the entry of the resource it concerns. A failed
//! check that makes the change impossible blocks it; one that makes it doubtful warns.
//! Unchanged resources are not checked: the plan of a settled manifest stays quiet.

use serde::{Deserialize, Serialize};

use super::{Action, Kind, ResourceChange};
use crate::desired::{DesiredCluster, DesiredRegistry, DesiredWorkspace, JobEnvironment};
use crate::observe::capacity::{Capacity, OfferedSize, RegionCapacity, Usage, workspace_region};
use crate::observe::{ObservedWorkspace, Preflight};
use crate::oci::Pullable;
use crate::spec::model::VmPriority;

/// What one preflight check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub check: CheckName,
    pub outcome: Outcome,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    VmSize,
    Quota,
    Image,
}

impl CheckName {
    pub fn label(self) -> &'static str {
        match self {
            CheckName::VmSize => "vm size",
            CheckName::Quota => "quota",
            CheckName::Image => "image",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Doubtful, or not checked (why is in the message): the change may go ahead.
    Warning,
    /// The change cannot work: the entry is blocked.
    Blocked,
}

/// How many offered sizes a VM size that is not offered suggests.
const SUGGESTIONS: usize = 3;

/// Check the entries of workspace `d` (observed as `o`) against the regions read.
pub fn check_workspace(
    d: &DesiredWorkspace,
    o: &ObservedWorkspace,
    regions: &[RegionCapacity],
    preflight: Preflight,
    resources: &mut [ResourceChange],
) {
    if !preflight.reads_regions() {
        return;
    }
    let Some(location) = workspace_region(
        o.workspace.present().map(|live| live.location.as_str()),
        d.spec.location.as_ref().map(|l| l.as_str()),
    ) else {
        return;
    };
    let subscription = d.spec.subscription_id.as_str();
    let Some(region) = regions
        .iter()
        .find(|r| r.subscription_id == subscription && r.location == location)
    else {
        return;
    };
    for change in resources.iter_mut() {
        let checks = match change.kind {
            Kind::Cluster => {
                let Some(index) = d.clusters.iter().position(|c| c.name == change.name) else {
                    continue;
                };
                let current_nodes = o
                    .clusters
                    .get(index)
                    .and_then(|live| live.present())
                    .and_then(|live| live.current_nodes)
                    .unwrap_or(0);
                // An update is checked only when it raises what the cluster may take.
                let grows = change.changed.iter().any(|a| a == "max_nodes");
                cluster_checks(
                    &d.clusters[index],
                    current_nodes,
                    change.action,
                    grows,
                    region,
                    preflight,
                )
            }
            Kind::Job if change.action == Action::Create && preflight.quotas => {
                let Some(job) = d.jobs.iter().find(|j| j.name == change.name) else {
                    continue;
                };
                let Some(cluster) = d.clusters.iter().find(|c| c.name == job.cluster) else {
                    // A cluster the manifest does not declare: its size is not known here.
                    continue;
                };
                job_checks(cluster, job.node_count, region)
            }
            _ => continue,
        };
        apply_checks(change, checks);
    }
}

/// Add `checks` to `change`'s; the first blocking one blocks it (unless it is blocked
/// already, for a reason of its own).
fn apply_checks(change: &mut ResourceChange, checks: Vec<Check>) {
    if change.action != Action::Blocked
        && let Some(blocking) = checks.iter().find(|c| c.outcome == Outcome::Blocked)
    {
        change.reason = Some(format!("{}: {}", blocking.check.label(), blocking.message));
        change.action = Action::Blocked;
        change.actions = Action::Blocked.terraform_actions();
    }
    change.checks.extend(checks);
}

/// Check that the images this plan will pull can be pulled, from what the registries
/// said (`o.images`): a new (or replaced) environment's, on its entry; and a new job's
/// whose environment is already there, on the job's entry.
pub fn check_images(
    d: &DesiredWorkspace,
    o: &ObservedWorkspace,
    preflight: Preflight,
    resources: &mut [ResourceChange],
) {
    if !preflight.images || o.images.is_empty() {
        return;
    }
    let created = |name: &str, resources: &[ResourceChange]| {
        resources.iter().any(|c| {
            c.kind == Kind::Environment
                && c.name == name
                && matches!(c.action, Action::Create | Action::Replace)
        })
    };
    let mut checks: Vec<(usize, Check)> = Vec::new();
    for (index, change) in resources.iter().enumerate() {
        let environment = match change.kind {
            Kind::Environment if matches!(change.action, Action::Create | Action::Replace) => {
                change.name.as_str()
            }
            Kind::Job if change.action == Action::Create => {
                let Some(job) = d.jobs.iter().find(|j| j.name == change.name) else {
                    continue;
                };
                match &job.environment {
                    // The environment's own entry carries the check when it is new.
                    JobEnvironment::Declared { name, .. } if !created(name, resources) => {
                        name.as_str()
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        let (Some(answer), Some(env)) = (
            o.images.get(environment),
            d.environments.iter().find(|e| e.name == environment),
        ) else {
            continue;
        };
        let Some(image) = &env.definition.image else {
            continue;
        };
        let registry = answer
            .registry
            .as_deref()
            .and_then(|name| d.registries.iter().find(|r| r.name == name));
        // An environment's entry shows its image already; a job's does not.
        let shown = (change.kind == Kind::Job).then_some(image.as_str());
        checks.push((index, image_check(shown, &answer.pullable, registry)));
    }
    for (index, check) in checks {
        apply_checks(&mut resources[index], vec![check]);
    }
}

/// What a registry's answer means for a plan, with what to do about it; `image`, when
/// given, is named first.
fn image_check(
    image: Option<&str>,
    pullable: &Pullable,
    registry: Option<&DesiredRegistry>,
) -> Check {
    let (outcome, hint) = match pullable {
        Pullable::Yes { .. } => (Outcome::Ok, String::new()),
        Pullable::MissingTag { .. } | Pullable::MissingRepository { .. } => (
            Outcome::Blocked,
            "; push the image, or correct the reference".to_string(),
        ),
        Pullable::Unauthorized { .. } => (
            Outcome::Blocked,
            match registry {
                Some(r) => format!(
                    "; check registry `{}`'s username `{}` and the password in ${}",
                    r.name, r.username, r.password_variable
                ),
                None => "; declare the registry under `registries` with a username and \
                         password, and name it in the environment's `registry`"
                    .to_string(),
            },
        ),
        Pullable::Denied { .. } => (
            Outcome::Blocked,
            match registry {
                Some(r) => format!(
                    "; give `{}` pull access to the repository (for Azure Container \
                     Registry, a scope map with content/read)",
                    r.username
                ),
                None => String::new(),
            },
        ),
        Pullable::Unreachable { .. } => (
            Outcome::Warning,
            "; Azure pulls it only when a job starts (a registry behind a firewall \
             cannot be asked from here)"
                .to_string(),
        ),
    };
    Check {
        check: CheckName::Image,
        outcome,
        message: match image {
            Some(image) => format!("{image} {pullable}{hint}"),
            None => format!("{pullable}{hint}"),
        },
    }
}

fn cluster_checks(
    cluster: &DesiredCluster,
    current_nodes: u64,
    action: Action,
    max_nodes_changed: bool,
    region: &RegionCapacity,
    preflight: Preflight,
) -> Vec<Check> {
    let new_size = matches!(action, Action::Create | Action::Replace);
    let check_quota =
        preflight.quotas && (new_size || (action == Action::Update && max_nodes_changed));
    let check_size = preflight.vm_sizes && new_size;
    if !check_size && !check_quota {
        return Vec::new();
    }
    let capacity = match &region.read {
        Ok(capacity) => capacity,
        Err(why) => {
            let message = format!(
                "not checked: what {} offers could not be read: {why}",
                region.location
            );
            let names = [
                (check_size, CheckName::VmSize),
                (check_quota, CheckName::Quota),
            ];
            return names
                .into_iter()
                .filter(|(asked, _)| *asked)
                .map(|(_, check)| Check {
                    check,
                    outcome: Outcome::Warning,
                    message: message.clone(),
                })
                .collect();
        }
    };
    let spec = &cluster.spec;
    let mut checks = Vec::new();
    let Some(size) = capacity.size(&spec.vm_size) else {
        if !check_size {
            // An existing cluster of a size no longer offered keeps working; its vCPUs
            // are not known: nothing to count the quota with.
            return checks;
        }
        let closest = closest_sizes(&spec.vm_size, &capacity.sizes);
        let hint = if closest.is_empty() {
            String::new()
        } else {
            format!("; closest offered: {}", closest.join(", "))
        };
        // Only a new cluster's size is checked (`check_size`): it cannot be made.
        checks.push(Check {
            check: CheckName::VmSize,
            outcome: Outcome::Blocked,
            message: format!(
                "{} is not offered to clusters in {} (retired, or not in this region){hint}",
                spec.vm_size, region.location
            ),
        });
        return checks;
    };
    if check_size {
        checks.push(Check {
            check: CheckName::VmSize,
            outcome: Outcome::Ok,
            message: format!(
                "{} offered in {} ({})",
                size.name,
                region.location,
                describe(size)
            ),
        });
    }
    if check_quota {
        checks.push(cluster_quota(
            cluster,
            size,
            current_nodes,
            capacity,
            region,
        ));
    }
    checks
}

/// Whether the cluster can scale to `max_nodes` with the dedicated vCPUs left in its
/// family and its region, counting the vCPUs its own nodes hold now.
fn cluster_quota(
    cluster: &DesiredCluster,
    size: &OfferedSize,
    current_nodes: u64,
    capacity: &Capacity,
    region: &RegionCapacity,
) -> Check {
    let spec = &cluster.spec;
    if spec.vm_priority == VmPriority::LowPriority {
        return Check {
            check: CheckName::Quota,
            outcome: Outcome::Ok,
            message: "low priority: the dedicated vCPU quota does not apply".to_string(),
        };
    }
    let Some(family) = capacity.family(&size.family) else {
        return Check {
            check: CheckName::Quota,
            outcome: Outcome::Warning,
            message: format!(
                "not checked: Azure lists no vCPU usage for {} in {}",
                size.family, region.location
            ),
        };
    };
    let needed = u64::from(spec.max_nodes) * size.vcpus;
    let own = current_nodes * size.vcpus;
    let free = |usage: Usage| {
        usage
            .limit
            .saturating_sub(usage.current)
            .saturating_add(own)
    };
    let family_free = free(family).min(family.limit);
    let mut short = Vec::new();
    if needed > family_free {
        short.push(format!(
            "{} has {family_free} of {} free",
            size.family, family.limit
        ));
    }
    let total_free = capacity
        .total
        .map(|total| (free(total).min(total.limit), total.limit));
    if let Some((total_free, limit)) = total_free
        && needed > total_free
    {
        short.push(format!("the region has {total_free} of {limit} free"));
    }
    let wants = format!(
        "max_nodes {} x {} vCPUs = {needed} vCPUs",
        spec.max_nodes, size.vcpus
    );
    if short.is_empty() {
        let mut message = format!(
            "{wants}; {family_free} of {} free in {}",
            family.limit, size.family
        );
        if let Some((total_free, limit)) = total_free {
            message.push_str(&format!(", {total_free} of {limit} in {}", region.location));
        }
        return Check {
            check: CheckName::Quota,
            outcome: Outcome::Ok,
            message,
        };
    }
    Check {
        check: CheckName::Quota,
        outcome: Outcome::Warning,
        message: format!(
            "{wants}, but {} (in {}): the cluster cannot scale to max_nodes; ask for more quota (Azure portal: Quotas, Machine learning) or lower max_nodes",
            short.join(" and "),
            region.location
        ),
    }
}

/// A job whose nodes need more vCPUs than the quota allows at all never starts.
fn job_checks(cluster: &DesiredCluster, node_count: u32, region: &RegionCapacity) -> Vec<Check> {
    let Ok(capacity) = &region.read else {
        return Vec::new();
    };
    if cluster.spec.vm_priority == VmPriority::LowPriority {
        return Vec::new();
    }
    let Some(size) = capacity.size(&cluster.spec.vm_size) else {
        // The cluster's own check says it.
        return Vec::new();
    };
    let Some(family) = capacity.family(&size.family) else {
        return Vec::new();
    };
    let needed = u64::from(node_count) * size.vcpus;
    let limit = match capacity.total {
        Some(total) => family.limit.min(total.limit),
        None => family.limit,
    };
    let wants = format!(
        "node_count {node_count} x {} vCPUs = {needed} vCPUs",
        size.vcpus
    );
    let (outcome, message) = if needed > limit {
        (
            Outcome::Blocked,
            format!(
                "{wants}, more than the quota allows at all ({limit} for {} in {}): the job would never start; ask for more quota or lower node_count",
                size.family, region.location
            ),
        )
    } else {
        (Outcome::Ok, format!("{wants}, within the limit of {limit}"))
    };
    vec![Check {
        check: CheckName::Quota,
        outcome,
        message,
    }]
}

fn describe(size: &OfferedSize) -> String {
    let gpus = match size.gpus {
        0 => String::new(),
        1 => ", 1 GPU".to_string(),
        n => format!(", {n} GPUs"),
    };
    format!("{} vCPUs{gpus}", size.vcpus)
}

/// The offered sizes closest to `wanted` (a name that is not offered): GPU sizes for a
/// GPU size (Azure's N series), the same series first (`NC`, `ND`, `D`, ...), then the
/// nearest vCPU count to the number in the name.
fn closest_sizes(wanted: &str, offered: &[OfferedSize]) -> Vec<String> {
    let (series, number) = series_and_number(wanted);
    let gpu = series.starts_with('N');
    let mut ranked: Vec<&OfferedSize> = offered.iter().filter(|s| (s.gpus > 0) == gpu).collect();
    ranked.sort_by_key(|s| {
        let (their_series, _) = series_and_number(&s.name);
        (
            their_series != series,
            s.vcpus.abs_diff(number.unwrap_or(s.vcpus)),
            s.name.to_ascii_lowercase(),
        )
    });
    ranked
        .into_iter()
        .take(SUGGESTIONS)
        .map(|s| format!("{} ({})", s.name, describe(s)))
        .collect()
}

/// `Standard_NC24ads_A100_v4` -> (`NC`, Some(24)).
fn series_and_number(name: &str) -> (String, Option<u64>) {
    let rest = name
        .split_once('_')
        .map_or(name, |(_, rest)| rest)
        .to_ascii_uppercase();
    let series: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
    let digits: String = rest[series.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (series, digits.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(name: &str, family: &str, vcpus: u64, gpus: u64) -> OfferedSize {
        OfferedSize {
            name: name.into(),
            family: family.into(),
            vcpus,
            gpus,
        }
    }

    /// A workspace to be created with a registry, two environments (one on the registry,
    /// one public) and a job in each, planned with what the registries said.
    fn images_plan(
        answers: &[(&str, Option<&str>, Pullable)],
        preflight: Preflight,
    ) -> (crate::desired::Desired, Vec<ResourceChange>) {
        let spec = format!(
            "{}  create_if_missing: true\nregistries:\n  - name: acr\n    address: a.azurecr.io\n    username: puller\n    password: ${{P}}\nenvironments:\n  - name: private\n    image: team/app:1\n    registry: acr\n  - name: public\n    image: ubuntu:22.04\nclusters:\n  - name: cpu\n    vm_size: Standard_DS3_v2\n    max_nodes: 1\njobs:\n  - name: one\n    command: echo\n    environment: private\n    cluster: cpu\n  - name: two\n    command: echo\n    environment: public\n    cluster: cpu\n",
            crate::plan::testing::WORKSPACE
        );
        let desired = crate::plan::testing::desired_with_passwords(&spec);
        let mut observed = crate::plan::testing::nothing(&desired);
        observed.preflight = preflight;
        for (name, registry, pullable) in answers {
            observed.workspaces[0].images.insert(
                name.to_string(),
                crate::observe::images::ImageAnswer {
                    registry: registry.map(str::to_string),
                    pullable: pullable.clone(),
                },
            );
        }
        let plan = crate::plan::plan(&desired, &observed);
        let resources = plan.workspaces[0].resources.clone();
        (desired, resources)
    }

    fn entry<'a>(resources: &'a [ResourceChange], kind: Kind, name: &str) -> &'a ResourceChange {
        resources
            .iter()
            .find(|c| c.kind == kind && c.name.starts_with(name))
            .unwrap_or_else(|| panic!("no {kind:?} {name}"))
    }

    fn yes() -> Pullable {
        Pullable::Yes {
            digest: Some(format!("sha256:{}", "a".repeat(64))),
        }
    }

    #[test]
    fn a_new_environment_carries_its_image_check_and_its_new_job_does_not() {
        let (_, resources) = images_plan(
            &[("private", Some("acr"), yes()), ("public", None, yes())],
            Preflight::ALL,
        );
        for name in ["private", "public"] {
            let env = entry(&resources, Kind::Environment, name);
            assert_eq!(env.action, Action::Create);
            assert_eq!(
                env.checks,
                [Check {
                    check: CheckName::Image,
                    outcome: Outcome::Ok,
                    message: format!("pullable, digest sha256:{}", "a".repeat(64)),
                }]
            );
        }
        for job in ["one", "two"] {
            assert!(entry(&resources, Kind::Job, job).checks.is_empty());
        }
        // Not asked for: nothing is said, even with answers.
        let (_, resources) = images_plan(
            &[("private", Some("acr"), yes())],
            Preflight {
                images: false,
                ..Preflight::ALL
            },
        );
        assert!(resources.iter().all(|c| c.checks.is_empty()));
    }

    #[test]
    fn each_refusal_blocks_with_what_to_do_and_unreachable_only_warns() {
        let message = || "CODE: text".to_string();
        for (pullable, outcome, ends) in [
            (
                Pullable::MissingTag { message: message() },
                Outcome::Blocked,
                "; push the image, or correct the reference",
            ),
            (
                Pullable::MissingRepository { message: message() },
                Outcome::Blocked,
                "; push the image, or correct the reference",
            ),
            (
                Pullable::Unauthorized { message: message() },
                Outcome::Blocked,
                "; check registry `acr`'s username `puller` and the password in $P",
            ),
            (
                Pullable::Denied { message: message() },
                Outcome::Blocked,
                "; give `puller` pull access to the repository (for Azure Container Registry, a scope map with content/read)",
            ),
            (
                Pullable::Unreachable { message: message() },
                Outcome::Warning,
                "; Azure pulls it only when a job starts (a registry behind a firewall cannot be asked from here)",
            ),
        ] {
            let (_, resources) = images_plan(
                &[("private", Some("acr"), pullable.clone())],
                Preflight::ALL,
            );
            let env = entry(&resources, Kind::Environment, "private");
            assert_eq!(env.checks.len(), 1, "{pullable:?}");
            let check = &env.checks[0];
            assert_eq!(check.outcome, outcome, "{pullable:?}");
            assert_eq!(check.message, format!("{pullable}{ends}"));
            let blocked = outcome == Outcome::Blocked;
            assert_eq!(env.action == Action::Blocked, blocked, "{pullable:?}");
            assert_eq!(
                env.reason.clone(),
                blocked.then(|| format!("image: {}", check.message))
            );
            // The other environment is untouched.
            assert_eq!(
                entry(&resources, Kind::Environment, "public").action,
                Action::Create
            );
        }
        // Anonymous and refused: the hint says to declare credentials.
        let (_, resources) = images_plan(
            &[(
                "public",
                None,
                Pullable::Unauthorized { message: message() },
            )],
            Preflight::ALL,
        );
        assert!(
            entry(&resources, Kind::Environment, "public").checks[0]
                .message
                .ends_with("and name it in the environment's `registry`")
        );
    }

    #[test]
    fn a_new_job_in_an_environment_already_there_carries_the_check_naming_the_image() {
        let (desired, mut resources) = images_plan(&[], Preflight::ALL);
        // As if `private` were there already: its job is the one that pulls.
        for change in resources.iter_mut() {
            change.checks.clear();
            if change.kind == Kind::Environment && change.name == "private" {
                change.action = Action::NoOp;
            }
        }
        let mut observed = crate::plan::testing::nothing(&desired);
        for (name, pullable) in [
            (
                "private",
                Pullable::MissingTag {
                    message: "gone".into(),
                },
            ),
            ("public", yes()),
        ] {
            observed.workspaces[0].images.insert(
                name.into(),
                crate::observe::images::ImageAnswer {
                    registry: (name == "private").then(|| "acr".into()),
                    pullable,
                },
            );
        }
        // A job already submitted pulls nothing new: no check, even when the answer
        // about its environment's image is there.
        let mut submitted = resources.clone();
        for change in submitted.iter_mut() {
            if change.kind == Kind::Job && change.name.starts_with("one") {
                change.action = Action::NoOp;
            }
        }
        check_images(
            &desired.workspaces[0],
            &observed.workspaces[0],
            Preflight::ALL,
            &mut submitted,
        );
        let one = entry(&submitted, Kind::Job, "one");
        assert_eq!((one.action, one.checks.len()), (Action::NoOp, 0));
        check_images(
            &desired.workspaces[0],
            &observed.workspaces[0],
            Preflight::ALL,
            &mut resources,
        );
        let one = entry(&resources, Kind::Job, "one");
        assert_eq!(one.action, Action::Blocked);
        assert_eq!(
            one.reason.as_deref(),
            Some(
                "image: a.azurecr.io/team/app:1 no such tag or digest: gone; push the image, or correct the reference"
            )
        );
        assert!(
            entry(&resources, Kind::Environment, "private")
                .checks
                .is_empty()
        );
        // `public` is new: its entry carries the check, not its job's.
        assert_eq!(
            entry(&resources, Kind::Environment, "public").checks.len(),
            1
        );
        assert!(entry(&resources, Kind::Job, "two").checks.is_empty());
    }

    #[test]
    fn series_and_number_come_from_the_name() {
        assert_eq!(
            series_and_number("Standard_NC24ads_A100_v4"),
            ("NC".into(), Some(24))
        );
        assert_eq!(series_and_number("standard_nc6"), ("NC".into(), Some(6)));
        assert_eq!(series_and_number("Standard_DS3_v2"), ("DS".into(), Some(3)));
        assert_eq!(series_and_number("odd"), ("ODD".into(), None));
    }

    #[test]
    fn a_retired_gpu_size_suggests_gpu_sizes_of_its_series_nearest_in_vcpus() {
        let offered = [
            size("Standard_D4s_v3", "standardDSv3Family", 4, 0),
            size(
                "Standard_NC24ads_A100_v4",
                "standardNCADSA100v4Family",
                24,
                1,
            ),
            size("Standard_NC4as_T4_v3", "standardNCASv3_T4Family", 4, 1),
            size("Standard_NC6s_v3", "standardNCSv3Family", 6, 1),
            size("Standard_ND96asr_v4", "standardNDASv4_A100Family", 96, 8),
        ];
        assert_eq!(
            closest_sizes("Standard_NC6", &offered),
            [
                "Standard_NC6s_v3 (6 vCPUs, 1 GPU)",
                "Standard_NC4as_T4_v3 (4 vCPUs, 1 GPU)",
                "Standard_NC24ads_A100_v4 (24 vCPUs, 1 GPU)",
            ]
        );
        // A CPU size is offered CPU sizes only.
        assert_eq!(
            closest_sizes("Standard_D2_v2", &offered),
            ["Standard_D4s_v3 (4 vCPUs)"]
        );
    }

    const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";

    /// What Azure said of `westeurope` in the test workspace's subscription: one size,
    /// `Standard_D8s_v3` (8 vCPUs, `standardDSv3Family`), its family's dedicated vCPUs
    /// and the region's (each `(current, limit)`).
    fn westeurope(family: (u64, u64), total: Option<(u64, u64)>) -> RegionCapacity {
        use crate::observe::capacity::FamilyUsage;
        let usage = |(current, limit)| Usage { current, limit };
        RegionCapacity {
            subscription_id: SUBSCRIPTION.into(),
            location: "westeurope".into(),
            read: Ok(Capacity {
                sizes: vec![size("Standard_D8s_v3", "standardDSv3Family", 8, 0)],
                families: vec![FamilyUsage {
                    family: "standardDSv3Family".into(),
                    usage: usage(family),
                }],
                total: total.map(usage),
                workspace_limits: Vec::new(),
            }),
        }
    }

    /// A region that is not the workspace's, or could not be read.
    fn unread(subscription: &str, location: &str) -> RegionCapacity {
        RegionCapacity {
            subscription_id: subscription.into(),
            location: location.into(),
            read: Err("refused".into()),
        }
    }

    /// The plan of the test workspace (there, in `westeurope`) with `clusters_and_jobs`
    /// (the spec's text from `clusters:` on; jobs run in the environment `env`, not
    /// there yet), the clusters as read (`live`, in the spec's order), the jobs not
    /// there, and the preflight reads `regions`.
    fn quota_plan(
        clusters_and_jobs: &str,
        live: Vec<crate::observe::Live<crate::observe::live::LiveCompute>>,
        regions: Vec<RegionCapacity>,
        preflight: Preflight,
    ) -> Vec<ResourceChange> {
        let (desired, observed) = quota_setup(clusters_and_jobs, live, regions, preflight);
        let plan = crate::plan::plan(&desired, &observed);
        plan.workspaces[0].resources.clone()
    }

    /// What [`quota_plan`] plans: the desired state and what was read.
    fn quota_setup(
        clusters_and_jobs: &str,
        live: Vec<crate::observe::Live<crate::observe::live::LiveCompute>>,
        regions: Vec<RegionCapacity>,
        preflight: Preflight,
    ) -> (crate::desired::Desired, crate::observe::Observed) {
        use crate::observe::Live;
        let desired = crate::plan::testing::desired(&format!(
            "{}environments:\n  - name: env\n    image: ubuntu:22.04\n{clusters_and_jobs}",
            crate::plan::testing::WORKSPACE
        ));
        let mut observed = crate::plan::testing::observed(
            Live::Present(crate::plan::testing::live_workspace("WestEurope")),
            live,
        );
        observed.workspaces[0].environments = vec![Live::Missing];
        observed.workspaces[0].jobs = desired.workspaces[0]
            .jobs
            .iter()
            .map(|_| Live::Missing)
            .collect();
        observed.regions = regions;
        observed.preflight = Preflight {
            images: false,
            ..preflight
        };
        (desired, observed)
    }

    fn check(check: CheckName, outcome: Outcome, message: &str) -> Check {
        Check {
            check,
            outcome,
            message: message.to_string(),
        }
    }

    const D8_MAX_4: &str =
        "clusters:\n  - name: cpu\n    vm_size: standard_d8s_v3\n    max_nodes: 4\n";

    #[test]
    fn a_new_cluster_is_checked_against_its_own_region_up_to_the_last_free_vcpu() {
        use crate::observe::Live;
        let ok = |family: &str, region: &str| {
            check(
                CheckName::Quota,
                Outcome::Ok,
                &format!("max_nodes 4 x 8 vCPUs = 32 vCPUs; {family}{region}"),
            )
        };
        let short = |what: &str| {
            check(
                CheckName::Quota,
                Outcome::Warning,
                &format!(
                    "max_nodes 4 x 8 vCPUs = 32 vCPUs, but {what} (in westeurope): the cluster cannot scale to max_nodes; ask for more quota (Azure portal: Quotas, Machine learning) or lower max_nodes"
                ),
            )
        };
        for (family, total, quota) in [
            // Exactly enough, in the family and in the region.
            (
                (0, 32),
                Some((68, 100)),
                ok(
                    "32 of 32 free in standardDSv3Family",
                    ", 32 of 100 in westeurope",
                ),
            ),
            // More than enough.
            (
                (0, 64),
                Some((0, 100)),
                ok(
                    "64 of 64 free in standardDSv3Family",
                    ", 100 of 100 in westeurope",
                ),
            ),
            // The region does not say its total.
            ((0, 32), None, ok("32 of 32 free in standardDSv3Family", "")),
            // One vCPU short in the family, in the region, in both.
            (
                (1, 32),
                Some((0, 100)),
                short("standardDSv3Family has 31 of 32 free"),
            ),
            (
                (0, 64),
                Some((69, 100)),
                short("the region has 31 of 100 free"),
            ),
            (
                (40, 64),
                Some((90, 100)),
                short("standardDSv3Family has 24 of 64 free and the region has 10 of 100 free"),
            ),
        ] {
            // The workspace's region, in its subscription, is the one read: not the same
            // region of another subscription, nor another region of its own.
            let regions = vec![
                unread("00000000-0000-0000-0000-000000000002", "westeurope"),
                unread(SUBSCRIPTION, "northeurope"),
                westeurope(family, total),
            ];
            let resources = quota_plan(D8_MAX_4, vec![Live::Missing], regions, Preflight::ALL);
            let cluster = entry(&resources, Kind::Cluster, "cpu");
            assert_eq!(cluster.action, Action::Create, "{family:?} {total:?}");
            assert_eq!(
                cluster.checks,
                [
                    check(
                        CheckName::VmSize,
                        Outcome::Ok,
                        "Standard_D8s_v3 offered in westeurope (8 vCPUs)"
                    ),
                    quota
                ],
                "{family:?} {total:?}"
            );
        }
    }

    #[test]
    fn each_check_is_made_only_when_asked_for() {
        use crate::observe::Live;
        let region = || vec![westeurope((0, 32), None)];
        let checks = |preflight: Preflight| {
            let resources = quota_plan(D8_MAX_4, vec![Live::Missing], region(), preflight);
            entry(&resources, Kind::Cluster, "cpu")
                .checks
                .iter()
                .map(|c| (c.check, c.outcome))
                .collect::<Vec<_>>()
        };
        let only = |vm_sizes, quotas| Preflight {
            vm_sizes,
            quotas,
            images: false,
        };
        assert_eq!(
            checks(only(true, false)),
            [(CheckName::VmSize, Outcome::Ok)]
        );
        assert_eq!(checks(only(false, true)), [(CheckName::Quota, Outcome::Ok)]);
        assert_eq!(checks(only(false, false)), []);
        // A region that could not be read: each check asked for says so, and warns.
        let resources = quota_plan(
            D8_MAX_4,
            vec![Live::Missing],
            vec![unread(SUBSCRIPTION, "westeurope")],
            Preflight::ALL,
        );
        let message = "not checked: what westeurope offers could not be read: refused";
        assert_eq!(
            entry(&resources, Kind::Cluster, "cpu").checks,
            [
                check(CheckName::VmSize, Outcome::Warning, message),
                check(CheckName::Quota, Outcome::Warning, message),
            ]
        );
    }

    #[test]
    fn a_new_cluster_of_a_size_not_offered_is_blocked_and_its_quota_not_counted() {
        use crate::observe::Live;
        let spec = "clusters:\n  - name: cpu\n    vm_size: Standard_D2_v2\n    max_nodes: 4\n";
        let resources = quota_plan(
            spec,
            vec![Live::Missing],
            vec![westeurope((0, 32), None)],
            Preflight::ALL,
        );
        let cluster = entry(&resources, Kind::Cluster, "cpu");
        let message = "Standard_D2_v2 is not offered to clusters in westeurope (retired, or not in this region); closest offered: Standard_D8s_v3 (8 vCPUs)";
        assert_eq!(
            cluster.checks,
            [check(CheckName::VmSize, Outcome::Blocked, message)]
        );
        assert_eq!(cluster.action, Action::Blocked);
        assert_eq!(cluster.reason, Some(format!("vm size: {message}")));
        // The size not asked about: its vCPUs unknown, nothing is said.
        let resources = quota_plan(
            spec,
            vec![Live::Missing],
            vec![westeurope((0, 32), None)],
            Preflight {
                vm_sizes: false,
                ..Preflight::ALL
            },
        );
        let cluster = entry(&resources, Kind::Cluster, "cpu");
        assert_eq!((cluster.action, cluster.checks.len()), (Action::Create, 0));
    }

    #[test]
    fn a_low_priority_cluster_is_outside_the_dedicated_quota() {
        use crate::observe::Live;
        let spec = format!("{D8_MAX_4}    vm_priority: low_priority\n");
        let resources = quota_plan(
            &spec,
            vec![Live::Missing],
            vec![westeurope((32, 32), Some((100, 100)))],
            Preflight::ALL,
        );
        assert_eq!(
            entry(&resources, Kind::Cluster, "cpu").checks[1],
            check(
                CheckName::Quota,
                Outcome::Ok,
                "low priority: the dedicated vCPU quota does not apply"
            )
        );
    }

    #[test]
    fn an_update_is_checked_only_when_max_nodes_grows_counting_the_nodes_it_holds() {
        use crate::observe::Live;
        use crate::plan::testing::live_cluster;
        // Two nodes running (16 vCPUs, counted in the family's 16 in use): all 32 are the
        // cluster's to take.
        let mut running = live_cluster("STANDARD_D8S_V3", 0, 2);
        running.current_nodes = Some(2);
        let resources = quota_plan(
            D8_MAX_4,
            vec![Live::Present(running.clone())],
            vec![westeurope((16, 32), Some((16, 32)))],
            Preflight::ALL,
        );
        let cluster = entry(&resources, Kind::Cluster, "cpu");
        assert_eq!(cluster.action, Action::Update);
        assert_eq!(
            cluster.checks,
            [check(
                CheckName::Quota,
                Outcome::Ok,
                "max_nodes 4 x 8 vCPUs = 32 vCPUs; 32 of 32 free in standardDSv3Family, 32 of 32 in westeurope"
            )]
        );
        // With nothing running, the same use leaves 16.
        running.current_nodes = Some(0);
        let resources = quota_plan(
            D8_MAX_4,
            vec![Live::Present(running)],
            vec![westeurope((16, 32), None)],
            Preflight::ALL,
        );
        assert_eq!(
            entry(&resources, Kind::Cluster, "cpu").checks[0].outcome,
            Outcome::Warning
        );
        // An update that does not raise max_nodes, and no change at all: nothing checked,
        // even over quota.
        for live in [
            live_cluster("STANDARD_D8S_V3", 1, 4),
            live_cluster("STANDARD_D8S_V3", 0, 4),
        ] {
            let resources = quota_plan(
                D8_MAX_4,
                vec![Live::Present(live)],
                vec![westeurope((32, 32), None)],
                Preflight::ALL,
            );
            let cluster = entry(&resources, Kind::Cluster, "cpu");
            assert!(cluster.checks.is_empty(), "{:?}", cluster.changed);
        }
    }

    #[test]
    fn a_new_job_asking_for_more_vcpus_than_the_quota_ever_allows_is_blocked() {
        use crate::observe::Live;
        let spec = |priority: &str, node_count: u32| {
            format!(
                "clusters:\n  - name: cpu\n    vm_size: Standard_D8s_v3\n    max_nodes: 9\n{priority}jobs:\n  - name: train\n    command: echo\n    environment: env\n    cluster: cpu\n    node_count: {node_count}\n"
            )
        };
        // The limit is the family's or the region's, whichever is lower: 24.
        let regions = || {
            vec![
                unread(SUBSCRIPTION, "northeurope"),
                westeurope((30, 32), Some((90, 24))),
            ]
        };
        for (node_count, outcome, message) in [
            (
                2,
                Outcome::Ok,
                "node_count 2 x 8 vCPUs = 16 vCPUs, within the limit of 24",
            ),
            (
                3,
                Outcome::Ok,
                "node_count 3 x 8 vCPUs = 24 vCPUs, within the limit of 24",
            ),
            (
                4,
                Outcome::Blocked,
                "node_count 4 x 8 vCPUs = 32 vCPUs, more than the quota allows at all (24 for standardDSv3Family in westeurope): the job would never start; ask for more quota or lower node_count",
            ),
        ] {
            let resources = quota_plan(
                &spec("", node_count),
                vec![Live::Missing],
                regions(),
                Preflight::ALL,
            );
            let job = entry(&resources, Kind::Job, "train");
            assert_eq!(job.checks, [check(CheckName::Quota, outcome, message)]);
            let blocked = outcome == Outcome::Blocked;
            assert_eq!(job.action == Action::Blocked, blocked, "{node_count}");
            assert_eq!(
                job.reason.clone(),
                blocked.then(|| format!("quota: {message}"))
            );
        }
        // The family's limit alone when the region says no total.
        let resources = quota_plan(
            &spec("", 4),
            vec![Live::Missing],
            vec![westeurope((0, 32), None)],
            Preflight::ALL,
        );
        assert_eq!(
            entry(&resources, Kind::Job, "train").checks[0].message,
            "node_count 4 x 8 vCPUs = 32 vCPUs, within the limit of 32"
        );
        // Not checked: on low priority nodes, or quotas not asked for.
        let low = spec("    vm_priority: low_priority\n", 4);
        let quotas_off = Preflight {
            quotas: false,
            ..Preflight::ALL
        };
        for (spec, preflight) in [(low, Preflight::ALL), (spec("", 4), quotas_off)] {
            let resources = quota_plan(&spec, vec![Live::Missing], regions(), preflight);
            let job = entry(&resources, Kind::Job, "train");
            assert_eq!((job.action, job.checks.len()), (Action::Create, 0));
        }
    }

    #[test]
    fn a_job_already_submitted_is_not_checked() {
        use crate::observe::Live;
        let spec = "clusters:\n  - name: cpu\n    vm_size: Standard_D8s_v3\n    max_nodes: 9\njobs:\n  - name: train\n    command: echo\n    environment: env\n    cluster: cpu\n    node_count: 9\n";
        let (desired, observed) =
            quota_setup(spec, vec![Live::Missing], Vec::new(), Preflight::ALL);
        // 72 vCPUs of a limit of 32: a new job is blocked, a submitted one left alone.
        for (action, checked) in [
            (Action::NoOp, Action::NoOp),
            (Action::Create, Action::Blocked),
        ] {
            let mut resources = crate::plan::plan(&desired, &observed).workspaces[0]
                .resources
                .clone();
            for change in resources.iter_mut().filter(|c| c.kind == Kind::Job) {
                change.action = action;
            }
            check_workspace(
                &desired.workspaces[0],
                &observed.workspaces[0],
                &[westeurope((0, 32), None)],
                Preflight::ALL,
                &mut resources,
            );
            let job = entry(&resources, Kind::Job, "train");
            assert_eq!(job.action, checked);
            assert_eq!(job.checks.len(), usize::from(action == Action::Create));
        }
    }
}
