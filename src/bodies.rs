//! ARM request bodies for the desired resources, shaped by the 2026-07-01 contract
//! (and the Microsoft.Resources / Storage / KeyVault / Insights contracts for what a
//! new workspace needs). Pure: what only Azure knows (tenant id, upload URIs, the
//! workspace's location) comes in as arguments.

use serde_json::{Value, json};

use crate::desired::{
    DesiredCluster, DesiredCode, DesiredEnvironment, DesiredJob, DesiredRegistry, DesiredWorkspace,
};
use crate::duration::seconds_to_iso8601;
use crate::spec::model::Distribution;

pub fn resource_group(location: &str) -> Value {
    json!({"location": location})
}

pub fn storage_account(location: &str) -> Value {
    json!({
        "location": location,
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "properties": {"minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": true, "allowBlobPublicAccess": false},
    })
}

pub fn key_vault(location: &str, tenant_id: &str) -> Value {
    json!({
        "location": location,
        "properties": {
            "tenantId": tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": [],
            "enableRbacAuthorization": true,
        },
    })
}

pub fn application_insights(location: &str) -> Value {
    json!({"location": location, "kind": "web", "properties": {"Application_Type": "web"}})
}

/// PUT body of a new workspace.
pub fn workspace(ws: &DesiredWorkspace) -> Value {
    let spec = &ws.spec;
    let deps = &ws.dependencies;
    let mut properties = json!({
        "friendlyName": spec.name.as_str(),
        "storageAccount": deps.storage_account.as_str(),
        "keyVault": deps.key_vault.as_str(),
        "applicationInsights": deps.application_insights.as_str(),
    });
    if let Some(description) = &spec.description {
        properties["description"] = json!(description);
    }
    json!({
        "location": spec.location.as_ref().map(|l| l.as_str()),
        "tags": spec.tags,
        "identity": {"type": "SystemAssigned"},
        "sku": {"name": "Basic", "tier": "Basic"},
        "properties": properties,
    })
}

/// PATCH body of an existing workspace: what a spec manages and may change in place.
pub fn workspace_update(ws: &DesiredWorkspace) -> Value {
    let spec = &ws.spec;
    let mut body = json!({"properties": {}});
    if let Some(description) = &spec.description {
        body["properties"]["description"] = json!(description);
    }
    if !spec.tags.is_empty() {
        body["tags"] = json!(spec.tags);
    }
    body
}

/// PUT body of a container registry connection (create and update alike).
pub fn connection(registry: &DesiredRegistry) -> Value {
    json!({
        "properties": {
            "category": "ContainerRegistry",
            "authType": "UsernamePassword",
            "target": registry.target,
            "isSharedToAll": true,
            "metadata": {},
            "credentials": {"username": registry.username, "password": registry.password.expose()},
        }
    })
}

/// PUT body of an environment version. `context_uri`: where the build context was
/// uploaded, for Dockerfile builds.
pub fn environment(env: &DesiredEnvironment, context_uri: Option<&str>) -> Value {
    let definition = &env.definition;
    let mut properties = json!({"isAnonymous": false, "isArchived": false, "osType": "Linux"});
    if let Some(image) = &definition.image {
        properties["image"] = json!(image);
    }
    if let Some(conda) = &definition.conda_file {
        properties["condaFile"] = json!(conda);
    }
    if let (Some(build), Some(uri)) = (&definition.build, context_uri) {
        properties["build"] = json!({"contextUri": uri, "dockerfilePath": build.dockerfile_path});
    }
    if let Some(description) = &env.description {
        properties["description"] = json!(description);
    }
    if !env.tags.is_empty() {
        properties["tags"] = json!(env.tags);
    }
    json!({"properties": properties})
}

/// PUT body of a new AmlCompute cluster, in the workspace's region.
pub fn compute(cluster: &DesiredCluster, location: &str) -> Value {
    let spec = &cluster.spec;
    let mut body = json!({
        "location": location,
        "properties": {
            "computeType": "AmlCompute",
            "properties": {
                "vmSize": spec.vm_size,
                "vmPriority": crate::desired::vm_priority_name(spec.vm_priority),
                "scaleSettings": scale_settings(cluster),
            },
        },
    });
    if let Some(description) = &spec.description {
        body["properties"]["description"] = json!(description);
    }
    if !spec.tags.is_empty() {
        body["tags"] = json!(spec.tags);
    }
    body
}

/// PATCH body of an existing cluster: its scale settings, the only thing that changes
/// in place.
pub fn compute_update(cluster: &DesiredCluster) -> Value {
    json!({"properties": {"properties": {"scaleSettings": scale_settings(cluster)}}})
}

fn scale_settings(cluster: &DesiredCluster) -> Value {
    let spec = &cluster.spec;
    let mut scale = json!({"minNodeCount": spec.min_nodes, "maxNodeCount": spec.max_nodes});
    if let Some(idle) = spec.idle_seconds_before_scale_down {
        scale["nodeIdleTimeBeforeScaleDown"] = json!(seconds_to_iso8601(u64::from(idle)));
    }
    scale
}

/// PUT body of a code version, as Azure ML clients write it (so they find it by hash).
pub fn code(code: &DesiredCode, code_uri: &str) -> Value {
    json!({
        "properties": {
            "codeUri": code_uri,
            "isAnonymous": true,
            "properties": {
                "hash_sha256": code.hash,
                "hash_version": crate::snapshot::HASH_VERSION.to_string(),
            },
        }
    })
}

/// PUT body of a command job.
pub fn job(job: &DesiredJob, environment_id: &str, code_id: Option<&str>) -> Value {
    let mut properties = json!({
        "jobType": "Command",
        "command": job.command,
        "environmentId": environment_id,
        "computeId": job.compute_id.as_str(),
        "experimentName": job.experiment,
        "displayName": job.display_name.clone().unwrap_or_else(|| job.name.clone()),
        "environmentVariables": job.environment_variables,
        "resources": {"instanceCount": job.node_count},
        "tags": job.tags,
        "properties": {"amlspec_job": job.base_name},
    });
    if let Some(code_id) = code_id {
        properties["codeId"] = json!(code_id);
    }
    if let Some(description) = &job.description {
        properties["description"] = json!(description);
    }
    if let Some(distribution) = job.distribution {
        properties["distribution"] = match distribution {
            Distribution::PyTorch { processes_per_node } => {
                json!({"distributionType": "PyTorch", "processCountPerInstance": processes_per_node})
            }
            Distribution::Mpi { processes_per_node } => {
                json!({"distributionType": "Mpi", "processCountPerInstance": processes_per_node})
            }
            Distribution::TensorFlow {
                worker_count,
                parameter_server_count,
            } => json!({
                "distributionType": "TensorFlow",
                "workerCount": worker_count.unwrap_or(job.node_count),
                "parameterServerCount": parameter_server_count,
            }),
        };
    }
    json!({"properties": properties})
}
