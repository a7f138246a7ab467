//! Regional capacity of Azure ML compute: which VM sizes a region offers, each VM family's
//! dedicated-vCPU limit and the region's total, and the usage existing AmlCompute clusters
//! make of them. Served as `locations/{location}/vmSizes`, `.../usages` and `.../quotas`
//! (shapes from the vendored OpenAPI: `VirtualMachineSizeListResult`, `ListUsagesResult`,
//! `ListWorkspaceQuotas`), changed through [`super::Admin`] and `/admin/capacity/...`.
//!
//! Input: a [`Capacity`] (default: [`Capacity::default`], a realistic catalogue) and the
//! stored computes; output: JSON values. Held in memory with the rest of the emulator's
//! settings (like fault rules), not in the durable store: a restart starts from the
//! configured catalogue again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Kind, Record};
use super::world::World;

/// One VM size of the catalogue, as `vmSizes` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmSize {
    /// As Azure spells it, e.g. `Standard_NC4as_T4_v3`; compared case-insensitively.
    pub name: String,
    /// The quota family, as Azure spells it, e.g. `standardNCASv3_T4Family`.
    pub family: String,
    #[serde(rename = "vCPUs")]
    pub vcpus: u32,
    pub gpus: u32,
    #[serde(rename = "memoryGB")]
    pub memory_gb: f64,
    #[serde(rename = "osVhdSizeMB")]
    pub os_vhd_size_mb: u32,
    #[serde(rename = "maxResourceVolumeMB")]
    pub max_resource_volume_mb: u32,
    pub low_priority_capable: bool,
    #[serde(rename = "premiumIO")]
    pub premium_io: bool,
    /// Linux pay-as-you-go price in USD per hour for `estimatedVMPrices`; `None` leaves
    /// the field out, as Azure does for sizes it has no price for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_hour: Option<f64>,
    /// Regions offering it (normalized names); empty: every region of the catalogue.
    #[serde(default)]
    pub regions: Vec<String>,
}

/// Changes made to one region (admin controls, CLI flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionOverrides {
    /// Sizes (lower case) the region no longer offers.
    #[serde(default)]
    pub withdrawn: BTreeSet<String>,
    /// Sizes (lower case) offered here although the catalogue does not list the region.
    #[serde(default)]
    pub added: BTreeSet<String>,
    /// Dedicated-vCPU limit per family (family name as Azure spells it).
    #[serde(default)]
    pub family_limits: BTreeMap<String, u64>,
    /// The region's total dedicated-vCPU limit for clusters.
    #[serde(default)]
    pub total_cores_limit: Option<u64>,
}

/// The whole catalogue and quota picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Regions Azure ML serves here (normalized: lower case, no spaces).
    pub regions: Vec<String>,
    pub sizes: Vec<VmSize>,
    /// Dedicated-vCPU limit of a family no override names.
    pub family_limit: u64,
    /// Total dedicated-vCPU limit of a region no override names.
    pub total_cores_limit: u64,
    /// Per region (normalized name).
    #[serde(default)]
    pub overrides: BTreeMap<String, RegionOverrides>,
}

/// `West Europe`, `westeurope` and `WestEurope` are one region.
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Regions of the default catalogue.
const DEFAULT_REGIONS: [&str; 13] = [
    "australiaeast",
    "centralus",
    "eastus",
    "eastus2",
    "francecentral",
    "japaneast",
    "northeurope",
    "southcentralus",
    "swedencentral",
    "uksouth",
    "westeurope",
    "westus2",
    "westus3",
];

/// Regions with A100 sizes in the default catalogue (a subset, as in Azure).
const A100_REGIONS: [&str; 7] = [
    "eastus",
    "eastus2",
    "southcentralus",
    "swedencentral",
    "westeurope",
    "westus2",
    "westus3",
];

#[allow(clippy::too_many_arguments)]
fn size(
    name: &str,
    family: &str,
    vcpus: u32,
    gpus: u32,
    memory_gb: f64,
    max_resource_volume_mb: u32,
    price: f64,
    regions: &[&str],
) -> VmSize {
    VmSize {
        name: name.to_string(),
        family: family.to_string(),
        vcpus,
        gpus,
        memory_gb,
        os_vhd_size_mb: 1_047_552,
        max_resource_volume_mb,
        low_priority_capable: true,
        premium_io: true,
        price_per_hour: Some(price),
        regions: regions.iter().map(|r| r.to_string()).collect(),
    }
}

impl Default for Capacity {
    /// Current sizes Azure ML offers for clusters (no retired NC/ND/NV v1 or v2 sizes such
    /// as `Standard_NC6`), family names as Azure spells them, 48 dedicated vCPUs per family
    /// and 100 per region.
    fn default() -> Self {
        let all: &[&str] = &[];
        let sizes = vec![
            size(
                "Standard_D2s_v3",
                "standardDSv3Family",
                2,
                0,
                8.0,
                16_384,
                0.096,
                all,
            ),
            size(
                "Standard_D4s_v3",
                "standardDSv3Family",
                4,
                0,
                16.0,
                32_768,
                0.192,
                all,
            ),
            size(
                "Standard_D8s_v3",
                "standardDSv3Family",
                8,
                0,
                32.0,
                65_536,
                0.384,
                all,
            ),
            size(
                "Standard_DS3_v2",
                "standardDSv2Family",
                4,
                0,
                14.0,
                28_672,
                0.293,
                all,
            ),
            size(
                "Standard_DS11_v2",
                "standardDSv2Family",
                2,
                0,
                14.0,
                28_672,
                0.185,
                all,
            ),
            size(
                "Standard_DS12_v2",
                "standardDSv2Family",
                4,
                0,
                28.0,
                57_344,
                0.371,
                all,
            ),
            size(
                "Standard_E4s_v3",
                "standardESv3Family",
                4,
                0,
                32.0,
                65_536,
                0.252,
                all,
            ),
            size(
                "Standard_F4s_v2",
                "standardFSv2Family",
                4,
                0,
                8.0,
                32_768,
                0.169,
                all,
            ),
            size(
                "Standard_NC4as_T4_v3",
                "standardNCASv3_T4Family",
                4,
                1,
                28.0,
                180_224,
                0.526,
                all,
            ),
            size(
                "Standard_NC8as_T4_v3",
                "standardNCASv3_T4Family",
                8,
                1,
                56.0,
                360_448,
                0.752,
                all,
            ),
            size(
                "Standard_NC16as_T4_v3",
                "standardNCASv3_T4Family",
                16,
                1,
                110.0,
                360_448,
                1.204,
                all,
            ),
            size(
                "Standard_NC64as_T4_v3",
                "standardNCASv3_T4Family",
                64,
                4,
                440.0,
                2_883_584,
                4.352,
                all,
            ),
            size(
                "Standard_NC6s_v3",
                "standardNCSv3Family",
                6,
                1,
                112.0,
                344_064,
                3.06,
                all,
            ),
            size(
                "Standard_NC12s_v3",
                "standardNCSv3Family",
                12,
                2,
                224.0,
                688_128,
                6.12,
                all,
            ),
            size(
                "Standard_NC24s_v3",
                "standardNCSv3Family",
                24,
                4,
                448.0,
                1_376_256,
                12.24,
                all,
            ),
            size(
                "Standard_NC24ads_A100_v4",
                "standardNCADSA100v4Family",
                24,
                1,
                220.0,
                65_536,
                3.673,
                &A100_REGIONS,
            ),
            size(
                "Standard_NC48ads_A100_v4",
                "standardNCADSA100v4Family",
                48,
                2,
                440.0,
                131_072,
                7.346,
                &A100_REGIONS,
            ),
            size(
                "Standard_NC96ads_A100_v4",
                "standardNCADSA100v4Family",
                96,
                4,
                880.0,
                262_144,
                14.692,
                &A100_REGIONS,
            ),
            size(
                "Standard_ND96asr_v4",
                "standardNDASv4_A100Family",
                96,
                8,
                900.0,
                6_144_000,
                27.197,
                &A100_REGIONS,
            ),
        ];
        Capacity {
            regions: DEFAULT_REGIONS.iter().map(|r| r.to_string()).collect(),
            sizes,
            family_limit: 48,
            total_cores_limit: 100,
            overrides: BTreeMap::new(),
        }
    }
}

impl Capacity {
    /// Whether Azure ML serves `location` here.
    pub fn knows_region(&self, location: &str) -> bool {
        let loc = normalize_location(location);
        self.regions.iter().any(|r| normalize_location(r) == loc)
    }

    /// The catalogue's entry for a size name (any casing), offered or not.
    pub fn size(&self, name: &str) -> Option<&VmSize> {
        self.sizes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Sizes `location` offers, in catalogue order.
    pub fn offered(&self, location: &str) -> Vec<&VmSize> {
        let loc = normalize_location(location);
        let over = self.overrides.get(&loc);
        self.sizes
            .iter()
            .filter(|s| {
                let key = s.name.to_ascii_lowercase();
                let listed = s.regions.is_empty()
                    || s.regions.iter().any(|r| normalize_location(r) == loc)
                    || over.is_some_and(|o| o.added.contains(&key));
                listed && !over.is_some_and(|o| o.withdrawn.contains(&key))
            })
            .collect()
    }

    /// A family's dedicated-vCPU limit in `location` (family compared case-insensitively).
    pub fn family_limit(&self, location: &str, family: &str) -> u64 {
        self.overrides
            .get(&normalize_location(location))
            .and_then(|o| {
                o.family_limits
                    .iter()
                    .find(|(f, _)| f.eq_ignore_ascii_case(family))
                    .map(|(_, l)| *l)
            })
            .unwrap_or(self.family_limit)
    }

    /// The region's total dedicated-vCPU limit.
    pub fn total_cores_limit(&self, location: &str) -> u64 {
        self.overrides
            .get(&normalize_location(location))
            .and_then(|o| o.total_cores_limit)
            .unwrap_or(self.total_cores_limit)
    }

    /// Offers (`true`) or withdraws a size in a region. A size the catalogue does not
    /// know cannot be offered: add it with [`Capacity::add_size`] first.
    pub fn set_available(&mut self, location: &str, size: &str, available: bool) -> bool {
        let key = size.to_ascii_lowercase();
        if available && self.size(size).is_none() {
            return false;
        }
        let over = self
            .overrides
            .entry(normalize_location(location))
            .or_default();
        if available {
            over.withdrawn.remove(&key);
            over.added.insert(key);
        } else {
            over.added.remove(&key);
            over.withdrawn.insert(key);
        }
        true
    }

    pub fn set_family_limit(&mut self, location: &str, family: &str, limit: u64) {
        let over = self
            .overrides
            .entry(normalize_location(location))
            .or_default();
        over.family_limits
            .retain(|f, _| !f.eq_ignore_ascii_case(family));
        over.family_limits.insert(family.to_string(), limit);
    }

    pub fn set_total_cores_limit(&mut self, location: &str, limit: u64) {
        self.overrides
            .entry(normalize_location(location))
            .or_default()
            .total_cores_limit = Some(limit);
    }

    /// Adds a size to the catalogue, or replaces the one of the same name.
    pub fn add_size(&mut self, size: VmSize) {
        self.sizes
            .retain(|s| !s.name.eq_ignore_ascii_case(&size.name));
        self.sizes.push(size);
    }
}

/// `VirtualMachineSize` JSON.
fn vm_size_json(s: &VmSize) -> Value {
    let mut v = json!({
        "name": s.name,
        "family": s.family,
        "vCPUs": s.vcpus,
        "gpus": s.gpus,
        "osVhdSizeMB": s.os_vhd_size_mb,
        "maxResourceVolumeMB": s.max_resource_volume_mb,
        "memoryGB": s.memory_gb,
        "lowPriorityCapable": s.low_priority_capable,
        "premiumIO": s.premium_io,
        "supportedComputeTypes": ["Compute Instance", "AmlCompute"],
    });
    if let Some(price) = s.price_per_hour {
        v["estimatedVMPrices"] = json!({
            "billingCurrency": "USD",
            "unitOfMeasure": "OneHour",
            "values": [
                { "retailPrice": price, "osType": "Linux", "vmTier": "Standard" },
                { "retailPrice": round_price(price * 0.2), "osType": "Linux", "vmTier": "LowPriority" },
            ],
        });
    }
    v
}

fn round_price(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

/// `VirtualMachineSizeListResult` of a region (no paging: the OpenAPI declares none).
pub(crate) fn vm_sizes(capacity: &Capacity, location: &str) -> Value {
    let value: Vec<Value> = capacity
        .offered(location)
        .into_iter()
        .map(vm_size_json)
        .collect();
    json!({ "value": value })
}

/// `standardNCASv3_T4Family` -> `Standard NCASv3_T4 Family Cluster Dedicated vCPUs`.
fn localized_family(family: &str) -> String {
    let core = family
        .strip_prefix("standard")
        .or_else(|| family.strip_prefix("Standard"))
        .unwrap_or(family);
    let core = core.strip_suffix("Family").unwrap_or(core);
    format!("Standard {core} Family Cluster Dedicated vCPUs")
}

/// Dedicated vCPUs in use per family (lower case -> (family as spelled, cores)) by the
/// subscription's AmlCompute clusters in `location`: current nodes x vCPUs of the size.
fn cores_in_use(
    world: &World,
    capacity: &Capacity,
    sub: &str,
    location: &str,
) -> BTreeMap<String, (String, u64)> {
    let loc = normalize_location(location);
    let prefix = format!("/subscriptions/{}/", sub.to_ascii_lowercase());
    let mut used: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for (_, record) in world.store.scan(&prefix) {
        let Record::Arm(r) = record else { continue };
        if r.kind != Kind::Compute {
            continue;
        }
        let body = &r.body;
        let in_region = body["location"]
            .as_str()
            .is_some_and(|l| normalize_location(l) == loc);
        let props = &body["properties"];
        let aml = props["computeType"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("AmlCompute"));
        let dedicated = props["properties"]["vmPriority"]
            .as_str()
            .is_none_or(|p| p.eq_ignore_ascii_case("Dedicated"));
        if !(in_region && aml && dedicated) {
            continue;
        }
        let nodes = props["properties"]["currentNodeCount"]
            .as_u64()
            .unwrap_or(0);
        let Some(size) = props["properties"]["vmSize"]
            .as_str()
            .and_then(|s| capacity.size(s))
        else {
            continue;
        };
        let entry = used
            .entry(size.family.to_ascii_lowercase())
            .or_insert_with(|| (size.family.clone(), 0));
        entry.1 += nodes * u64::from(size.vcpus);
    }
    used
}

/// Families to report in a region: those of offered sizes and those in use, sorted.
fn families(
    capacity: &Capacity,
    location: &str,
    used: &BTreeMap<String, (String, u64)>,
) -> Vec<String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for s in capacity.offered(location) {
        out.entry(s.family.to_ascii_lowercase())
            .or_insert_with(|| s.family.clone());
    }
    for (k, (family, _)) in used {
        out.entry(k.clone()).or_insert_with(|| family.clone());
    }
    out.into_values().collect()
}

/// `Usage` items of a region: the regional total first, then one per VM family.
pub(crate) fn usages(world: &World, capacity: &Capacity, sub: &str, location: &str) -> Vec<Value> {
    let used = cores_in_use(world, capacity, sub, location);
    let loc = normalize_location(location);
    let provider = format!("/subscriptions/{sub}/providers/Microsoft.MachineLearningServices");
    let total: u64 = used.values().map(|(_, c)| c).sum();
    let total_name = "Total Cluster Dedicated Regional vCPUs";
    let mut items = vec![json!({
        "id": format!("{provider}/totalCount"),
        "amlWorkspaceLocation": loc,
        "type": "Microsoft.MachineLearningServices/totalCount",
        "unit": "Count",
        "currentValue": total,
        "limit": capacity.total_cores_limit(&loc),
        "name": { "value": total_name, "localizedValue": total_name },
    })];
    for family in families(capacity, &loc, &used) {
        let current = used
            .get(&family.to_ascii_lowercase())
            .map_or(0, |(_, c)| *c);
        items.push(json!({
            "id": format!("{provider}/vmFamily/{family}/usages"),
            "amlWorkspaceLocation": loc,
            "type": "Microsoft.MachineLearningServices/vmFamily/usages",
            "unit": "Count",
            "currentValue": current,
            "limit": capacity.family_limit(&loc, &family),
            "name": { "value": family, "localizedValue": localized_family(&family) },
        }));
    }
    items
}

/// `ResourceQuota` items of a region: each of the subscription's workspaces there, per
/// VM family (a workspace's quota is the family's limit until a workspace-level quota is
/// set, which the emulator does not model).
pub(crate) fn quotas(world: &World, capacity: &Capacity, sub: &str, location: &str) -> Vec<Value> {
    let loc = normalize_location(location);
    let used = cores_in_use(world, capacity, sub, location);
    let fams = families(capacity, &loc, &used);
    let prefix = format!("/subscriptions/{}/", sub.to_ascii_lowercase());
    let mut workspaces: Vec<(u64, String, String)> = world
        .store
        .scan(&prefix)
        .filter_map(|(_, record)| match record {
            Record::Arm(r) if r.kind == Kind::Workspace => {
                let wl = r.body["location"].as_str().unwrap_or_default();
                (normalize_location(wl) == loc).then(|| {
                    (
                        r.created_seq,
                        r.body["id"].as_str().unwrap_or_default().to_string(),
                        wl.to_string(),
                    )
                })
            }
            _ => None,
        })
        .collect();
    workspaces.sort();
    let mut items = Vec::new();
    for (_, ws_id, ws_location) in workspaces {
        for family in &fams {
            items.push(json!({
                "id": format!("{ws_id}/quotas/{family}"),
                "amlWorkspaceLocation": ws_location,
                "type": "Microsoft.MachineLearningServices/workspaces/quotas",
                "name": { "value": family, "localizedValue": localized_family(family) },
                "limit": capacity.family_limit(&loc, family),
                "unit": "Count",
            }));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_compared_without_case_or_spaces() {
        for (a, b) in [
            ("West Europe", "westeurope"),
            ("WESTEUROPE", "westeurope"),
            ("east us 2", "eastus2"),
        ] {
            assert_eq!(normalize_location(a), b);
        }
        assert!(Capacity::default().knows_region("West Europe"));
        assert!(!Capacity::default().knows_region("atlantis"));
    }

    #[test]
    fn the_default_catalogue_has_current_gpu_sizes_and_not_the_retired_nc6() {
        let c = Capacity::default();
        for (name, family, vcpus, gpus) in [
            ("Standard_NC4as_T4_v3", "standardNCASv3_T4Family", 4, 1),
            (
                "Standard_NC24ads_A100_v4",
                "standardNCADSA100v4Family",
                24,
                1,
            ),
            ("standard_nc6s_v3", "standardNCSv3Family", 6, 1),
        ] {
            let s = c.size(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!((s.family.as_str(), s.vcpus, s.gpus), (family, vcpus, gpus));
        }
        assert!(c.size("Standard_NC6").is_none());
        assert!(c.size("STANDARD_NC6").is_none());
    }

    #[test]
    fn withdrawing_and_offering_a_size_is_per_region() {
        let mut c = Capacity::default();
        let names = |c: &Capacity, loc: &str| -> Vec<String> {
            c.offered(loc).iter().map(|s| s.name.clone()).collect()
        };
        assert!(names(&c, "westeurope").contains(&"Standard_NC6s_v3".to_string()));
        assert!(c.set_available("West Europe", "standard_nc6s_v3", false));
        assert!(!names(&c, "westeurope").contains(&"Standard_NC6s_v3".to_string()));
        assert!(names(&c, "northeurope").contains(&"Standard_NC6s_v3".to_string()));
        // A100 is not offered in northeurope by default; it can be.
        assert!(!names(&c, "northeurope").contains(&"Standard_NC24ads_A100_v4".to_string()));
        assert!(c.set_available("northeurope", "Standard_NC24ads_A100_v4", true));
        assert!(names(&c, "northeurope").contains(&"Standard_NC24ads_A100_v4".to_string()));
        assert!(!c.set_available("westeurope", "Standard_NC6", true));
    }

    #[test]
    fn limits_fall_back_to_the_defaults() {
        let mut c = Capacity::default();
        assert_eq!(c.family_limit("westeurope", "standardNCSv3Family"), 48);
        c.set_family_limit("West Europe", "standardncsv3family", 12);
        assert_eq!(c.family_limit("westeurope", "standardNCSv3Family"), 12);
        assert_eq!(c.family_limit("eastus", "standardNCSv3Family"), 48);
        c.set_total_cores_limit("westeurope", 20);
        assert_eq!(c.total_cores_limit("WestEurope"), 20);
        assert_eq!(c.total_cores_limit("eastus"), 100);
    }

    #[test]
    fn localized_family_names_read_as_azure_writes_them() {
        assert_eq!(
            localized_family("standardNCASv3_T4Family"),
            "Standard NCASv3_T4 Family Cluster Dedicated vCPUs"
        );
    }

    #[test]
    fn vm_sizes_validate_against_the_openapi() {
        let body = vm_sizes(&Capacity::default(), "westeurope");
        let defs = super::super::openapi::json_schema_definitions();
        let schema =
            json!({ "$ref": "#/definitions/VirtualMachineSizeListResult", "definitions": defs });
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .unwrap();
        assert!(v.is_valid(&body), "{body}");
    }
}
