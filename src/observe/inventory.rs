//! `plan --unmanaged`: what each existing workspace holds, one list request per kind
//! (clusters, container-registry connections, environments), for the plan to tell what
//! no spec manages. Read-only, like the rest of observe.

use futures::future::join_all;
use serde_json::Value;

use crate::azure::client::{ArmClient, ArmError, Operation};
use crate::desired::Desired;
use crate::ids::ResourceId;

/// The names each kind holds in a workspace, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub workspace: ResourceId,
    pub clusters: Vec<Listed>,
    pub registries: Vec<Listed>,
    pub environments: Vec<Listed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub id: String,
}

/// The inventory of each workspace of `desired` that `exists` (same order), read
/// concurrently.
pub async fn read_inventory(
    client: &ArmClient,
    desired: &Desired,
    exists: &[bool],
) -> Result<Vec<Inventory>, Vec<ArmError>> {
    let reads = desired
        .workspaces
        .iter()
        .zip(exists)
        .filter(|(_, exists)| **exists)
        .map(|(ws, _)| async move {
            let list = |kind: &'static str, filter: Option<(&'static str, &'static str)>| {
                let collection = ws.id.collection(kind);
                async move {
                    let operation = Operation::new("list", collection.to_string());
                    let mut url = client.url_of(&collection);
                    if let Some((key, value)) = filter {
                        url.query_pairs_mut().append_pair(key, value);
                    }
                    let items = client.list(&operation, url, None).await?;
                    Ok::<_, ArmError>(items.iter().filter_map(listed).collect::<Vec<_>>())
                }
            };
            let (clusters, registries, environments) = futures::join!(
                list("computes", None),
                list("connections", Some(("category", "ContainerRegistry"))),
                list("environments", None),
            );
            let mut errors = Vec::new();
            let mut keep = |found: Result<Vec<Listed>, ArmError>| match found {
                Ok(found) => found,
                Err(error) => {
                    errors.push(error);
                    Vec::new()
                }
            };
            let inventory = Inventory {
                workspace: ws.id.clone(),
                clusters: keep(clusters),
                registries: keep(registries),
                environments: keep(environments),
            };
            if errors.is_empty() {
                Ok(inventory)
            } else {
                Err(errors)
            }
        });
    let mut inventories = Vec::new();
    let mut errors = Vec::new();
    for read in join_all(reads).await {
        match read {
            Ok(inventory) => inventories.push(inventory),
            Err(mut failed) => errors.append(&mut failed),
        }
    }
    if errors.is_empty() {
        Ok(inventories)
    } else {
        Err(errors)
    }
}

/// A list item's name and id.
fn listed(item: &Value) -> Option<Listed> {
    Some(Listed {
        name: item["name"].as_str()?.to_string(),
        id: item["id"].as_str()?.to_string(),
    })
}
