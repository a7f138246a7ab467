//! What a region offers AmlCompute, for plan's preflight: the VM sizes
//! (`locations/{location}/vmSizes`), the subscription's vCPU usage and limits per VM
//! family and in total (`usages`), and the workspaces' own limits per family (`quotas`).
//! Three reads per distinct subscription and region, however many clusters ask.
//!
//! A region that cannot be read (no permission to read usages, say) is not an error of
//! the plan: the checks that needed it say they could not be made.

use serde::Deserialize;
use serde_json::Value;

use crate::azure::client::{ArmClient, ArmError, Operation};
use crate::ids::ResourceId;

/// A region as its capacity is keyed: lower case, no spaces (`West Europe` and
/// `westeurope` are one region).
pub fn region_key(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A workspace's region, as its capacity is keyed: where Azure says it is, or, for one
/// to be created, where its spec puts it.
pub fn workspace_region(live: Option<&str>, spec: Option<&str>) -> Option<String> {
    live.or(spec).map(region_key)
}

/// What was learnt of one subscription's region.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionCapacity {
    pub subscription_id: String,
    /// [`region_key`] form.
    pub location: String,
    /// What could be read; why not, otherwise.
    pub read: Result<Capacity, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capacity {
    pub sizes: Vec<OfferedSize>,
    /// Dedicated vCPUs per VM family: in use and the subscription's limit.
    pub families: Vec<FamilyUsage>,
    /// Dedicated vCPUs of every family together, when Azure says.
    pub total: Option<Usage>,
    /// Per-workspace limits per family (`quotas`): the workspace's ARM id (as Azure
    /// spells it), the family, the limit.
    pub workspace_limits: Vec<WorkspaceLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedSize {
    pub name: String,
    pub family: String,
    pub vcpus: u64,
    pub gpus: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub current: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyUsage {
    pub family: String,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceLimit {
    pub workspace_id: String,
    pub family: String,
    pub limit: u64,
}

impl Capacity {
    /// The offered size named `name`, in any case.
    pub fn size(&self, name: &str) -> Option<&OfferedSize> {
        self.sizes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Usage of `family`, in any case.
    pub fn family(&self, family: &str) -> Option<Usage> {
        self.families
            .iter()
            .find(|f| f.family.eq_ignore_ascii_case(family))
            .map(|f| f.usage)
    }

    /// The workspace's own limit for `family`, when it has one.
    pub fn workspace_limit(&self, workspace_id: &str, family: &str) -> Option<u64> {
        self.workspace_limits
            .iter()
            .find(|l| {
                l.workspace_id.eq_ignore_ascii_case(workspace_id)
                    && l.family.eq_ignore_ascii_case(family)
            })
            .map(|l| l.limit)
    }
}

/// Read the region's sizes, usages and quotas at once.
pub async fn read_region(
    client: &ArmClient,
    subscription_id: &str,
    location: &str,
) -> RegionCapacity {
    let url = |what: &str| client.url_of(&ResourceId::ml_location(subscription_id, location, what));
    let sizes_op = Operation::new("read the VM sizes offered in", location.to_string());
    let usages_op = Operation::new("read the vCPU usage and limits in", location.to_string());
    let quotas_op = Operation::new("read the workspaces' vCPU limits in", location.to_string());
    let (sizes, usages, quotas) = futures::join!(
        client.list(&sizes_op, url("vmSizes"), None),
        client.list(&usages_op, url("usages"), None),
        client.list(&quotas_op, url("quotas"), None),
    );
    let read = (|| {
        let failed = |error: ArmError| error.to_string();
        let mut capacity = Capacity {
            sizes: sizes
                .map_err(failed)?
                .iter()
                .filter_map(offered_size)
                .collect(),
            ..Capacity::default()
        };
        for item in usages.map_err(failed)? {
            add_usage(&mut capacity, &item);
        }
        capacity.workspace_limits = quotas
            .map_err(failed)?
            .iter()
            .filter_map(workspace_limit)
            .collect();
        Ok(capacity)
    })();
    if let Err(why) = &read {
        tracing::info!(location, %why, "region capacity not read; its checks are skipped");
    }
    RegionCapacity {
        subscription_id: subscription_id.to_string(),
        location: location.to_string(),
        read,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArmSize {
    name: String,
    #[serde(default)]
    family: String,
    #[serde(default, rename = "vCPUs")]
    vcpus: u64,
    #[serde(default)]
    gpus: u64,
    /// `["Compute Instance", "AmlCompute"]`: a size not for AmlCompute is not offered
    /// to a cluster. Absent: assume it is.
    #[serde(default)]
    supported_compute_types: Option<Vec<String>>,
}

fn offered_size(item: &Value) -> Option<OfferedSize> {
    let size: ArmSize = serde_json::from_value(item.clone()).ok()?;
    let for_clusters = size
        .supported_compute_types
        .is_none_or(|types| types.iter().any(|t| t.eq_ignore_ascii_case("AmlCompute")));
    for_clusters.then_some(OfferedSize {
        name: size.name,
        family: size.family,
        vcpus: size.vcpus,
        gpus: size.gpus,
    })
}

/// One `usages` item: the regional total (`.../totalCount`, or a name saying "Total
/// ... Regional"), or a family (`type` `.../vmFamily/usages`, `name.value` the family).
/// Other items (per workspace, per cluster, low priority) are not needed.
fn add_usage(capacity: &mut Capacity, item: &Value) {
    let text = |pointer: &str| {
        item.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (Some(current), Some(limit)) = (
        item.get("currentValue").and_then(Value::as_u64),
        item.get("limit").and_then(Value::as_u64),
    ) else {
        return;
    };
    let usage = Usage { current, limit };
    let kind = text("/type").to_ascii_lowercase();
    let name = text("/name/value");
    if kind.ends_with("/vmfamily/usages") && !name.is_empty() {
        capacity.families.push(FamilyUsage {
            family: name.to_string(),
            usage,
        });
    } else if kind.ends_with("/totalcount")
        || kind.ends_with("/totalcores/usages")
        || name.eq_ignore_ascii_case("Total Cluster Dedicated Regional vCPUs")
    {
        capacity.total = Some(usage);
    }
}

fn workspace_limit(item: &Value) -> Option<WorkspaceLimit> {
    let id = item.get("id")?.as_str()?;
    let family = item.pointer("/name/value")?.as_str()?;
    let limit = item.get("limit")?.as_u64()?;
    // `{workspace id}/quotas/{family}`.
    let lower = id.to_ascii_lowercase();
    let at = lower.rfind("/quotas/")?;
    Some(WorkspaceLimit {
        workspace_id: id[..at].to_string(),
        family: family.to_string(),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn regions_are_keyed_without_case_or_spaces() {
        assert_eq!(region_key("West Europe"), "westeurope");
        assert_eq!(region_key("westeurope"), "westeurope");
        assert_eq!(region_key("WESTEUROPE "), "westeurope");
    }

    #[test]
    fn sizes_not_for_clusters_are_not_offered_to_them() {
        let for_both = json!({"name": "Standard_D2s_v3", "family": "standardDSv3Family", "vCPUs": 2, "gpus": 0,
            "supportedComputeTypes": ["Compute Instance", "AmlCompute"]});
        let instance_only = json!({"name": "Standard_X", "family": "f", "vCPUs": 2,
            "supportedComputeTypes": ["Compute Instance"]});
        let unsaid = json!({"name": "Standard_Y", "family": "g", "vCPUs": 4, "gpus": 1});
        assert_eq!(offered_size(&for_both).unwrap().vcpus, 2);
        assert_eq!(offered_size(&instance_only), None);
        assert_eq!(offered_size(&unsaid).unwrap().gpus, 1);
    }

    #[test]
    fn usages_give_the_total_and_each_family_and_quotas_each_workspace() {
        let mut capacity = Capacity::default();
        for item in [
            json!({"type": "Microsoft.MachineLearningServices/totalCount", "currentValue": 8, "limit": 100,
                "name": {"value": "Total Cluster Dedicated Regional vCPUs"}}),
            json!({"type": "Microsoft.MachineLearningServices/vmFamily/usages", "currentValue": 24, "limit": 48,
                "name": {"value": "standardNCSv3Family"}}),
            json!({"type": "Microsoft.MachineLearningServices/workspaces/computes/usages", "currentValue": 24, "limit": 48,
                "name": {"value": "gpu-cluster"}}),
            json!({"type": "Microsoft.MachineLearningServices/vmFamily/usages", "name": {"value": "noNumbers"}}),
        ] {
            add_usage(&mut capacity, &item);
        }
        assert_eq!(
            capacity.total,
            Some(Usage {
                current: 8,
                limit: 100
            })
        );
        assert_eq!(
            capacity.family("STANDARDNCSV3FAMILY"),
            Some(Usage {
                current: 24,
                limit: 48
            })
        );
        assert_eq!(capacity.families.len(), 1);
        let quota = json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/quotas/standardNCSv3Family",
            "name": {"value": "standardNCSv3Family"}, "limit": 12});
        capacity
            .workspace_limits
            .push(workspace_limit(&quota).unwrap());
        let ws = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.MachineLearningServices/workspaces/WS";
        assert_eq!(
            capacity.workspace_limit(ws, "standardncsv3family"),
            Some(12)
        );
        assert_eq!(capacity.workspace_limit(ws, "other"), None);
    }
}
