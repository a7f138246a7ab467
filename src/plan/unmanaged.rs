//! `plan --unmanaged`: what exists in a workspace of the specs but no spec declares
//! (clusters, container registries, environments). Reported, never deleted.

use serde::{Deserialize, Serialize};

use super::{Address, Kind};
use crate::desired::{Desired, DesiredWorkspace};
use crate::observe::inventory::{Inventory, Listed};

/// A resource no spec declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    /// The workspace it is in.
    pub workspace: Address,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: String,
    pub id: String,
}

/// What each inventory holds that its workspace's specs do not declare (an environment
/// a job uses counts as declared), sorted by workspace, kind and name.
pub fn unmanaged(desired: &Desired, inventories: &[Inventory]) -> Vec<Unmanaged> {
    let mut found = Vec::new();
    for inventory in inventories {
        let Some(ws) = desired
            .workspaces
            .iter()
            .find(|w| w.id == inventory.workspace)
        else {
            continue;
        };
        let address = Address::workspace(ws.spec.resource_group.as_str(), ws.spec.name.as_str());
        let declared = Declared::of(ws);
        for (kind, listed, names) in [
            (Kind::Registry, &inventory.registries, &declared.registries),
            (
                Kind::Environment,
                &inventory.environments,
                &declared.environments,
            ),
            (Kind::Cluster, &inventory.clusters, &declared.clusters),
        ] {
            for Listed { name, id } in listed {
                if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    found.push(Unmanaged {
                        workspace: address.clone(),
                        kind: kind.clone(),
                        name: name.clone(),
                        id: id.clone(),
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| {
        (
            a.workspace.as_str(),
            a.kind.path(),
            a.name.to_ascii_lowercase(),
        )
            .cmp(&(
                b.workspace.as_str(),
                b.kind.path(),
                b.name.to_ascii_lowercase(),
            ))
    });
    found
}

/// The names a workspace's specs declare, by kind.
struct Declared {
    registries: Vec<String>,
    environments: Vec<String>,
    clusters: Vec<String>,
}

impl Declared {
    fn of(ws: &DesiredWorkspace) -> Declared {
        Declared {
            registries: ws.registries.iter().map(|r| r.name.clone()).collect(),
            environments: ws
                .environments
                .iter()
                .map(|e| e.name.clone())
                .chain(ws.existing_environments.iter().map(|e| e.name.clone()))
                .collect(),
            clusters: ws.clusters.iter().map(|c| c.name.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{WORKSPACE, desired};

    #[test]
    fn what_no_spec_declares_is_listed_whatever_its_case() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 4\nenvironments:\n  - name: plain\n    image: ubuntu:22.04\njobs:\n  - name: j\n    command: echo\n    environment: curated@latest\n    cluster: gpu\n"
        );
        let desired = desired(&spec);
        let ws = &desired.workspaces[0];
        let listed = |names: &[&str]| -> Vec<Listed> {
            names
                .iter()
                .map(|n| Listed {
                    name: n.to_string(),
                    id: format!("{}/x/{n}", ws.id),
                })
                .collect()
        };
        let inventory = Inventory {
            workspace: ws.id.clone(),
            clusters: listed(&["GPU", "old-gpu"]),
            registries: listed(&["team-acr"]),
            environments: listed(&["plain", "curated", "abandoned"]),
        };
        let found: Vec<(Kind, String)> = unmanaged(&desired, &[inventory])
            .into_iter()
            .map(|u| (u.kind, u.name))
            .collect();
        assert_eq!(
            found,
            [
                (Kind::Cluster, "old-gpu".to_string()),
                (Kind::Environment, "abandoned".to_string()),
                (Kind::Registry, "team-acr".to_string()),
            ]
        );
        // An inventory of a workspace the specs do not name says nothing.
        let other = Inventory {
            workspace: crate::ids::ResourceId::workspace("s", "rg", "other"),
            clusters: listed(&["x"]),
            registries: Vec::new(),
            environments: Vec::new(),
        };
        assert!(unmanaged(&desired, &[other]).is_empty());
    }
}
