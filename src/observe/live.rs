//! Live state: what ARM returned, decoded into the few fields a plan compares, in the
//! spec's own terms (seconds, not `PT30M`). Server-filled and read-only properties are
//! not kept, so they cannot make noise in a plan. Each keeps a fingerprint: a hash of
//! exactly what it keeps (never a secret), so a saved plan can tell when live state
//! moved.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::hash::{canonical, sha256_hex};
use crate::spec::secret::Secret;

#[derive(Debug, Clone, PartialEq)]
pub struct LiveWorkspace {
    pub location: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub provisioning_state: Option<String>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveConnection {
    pub category: Option<String>,
    pub auth_type: Option<String>,
    pub target: Option<String>,
    pub username: Option<String>,
    /// From `listsecrets`; compared, never shown.
    pub password: Option<Secret>,
    /// False when `listsecrets` was refused (403): the password is unknown.
    pub secrets_read: bool,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveEnvironmentVersion {
    pub image: Option<String>,
    pub conda_file: Option<String>,
    pub build_context_uri: Option<String>,
    pub dockerfile_path: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveCompute {
    pub compute_type: Option<String>,
    pub vm_size: Option<String>,
    pub vm_priority: Option<String>,
    pub min_nodes: Option<u64>,
    pub max_nodes: Option<u64>,
    pub idle_seconds: Option<u64>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub provisioning_state: Option<String>,
    pub fingerprint: String,
    /// Nodes it has now (its share of the family's vCPU usage): not part of the
    /// fingerprint, as it moves on its own.
    pub current_nodes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveJob {
    pub status: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub display_name: Option<String>,
    pub fingerprint: String,
}

/// A code version found by content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCode {
    pub id: String,
    pub code_uri: Option<String>,
    pub fingerprint: String,
}

/// An existing environment a job refers to, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEnvironmentRef {
    pub id: String,
    pub version: String,
    pub fingerprint: String,
}

/// The parts of ARM answers that a plan reads. Everything else in a body is skipped
/// without being built into JSON values (a 1,000-resource plan decodes 1,000 bodies).
pub mod arm {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Workspace {
        pub location: Option<String>,
        pub tags: BTreeMap<String, Value>,
        pub properties: WorkspaceProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct WorkspaceProperties {
        pub description: Option<String>,
        pub provisioning_state: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Connection {
        pub properties: ConnectionProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct ConnectionProperties {
        pub category: Option<String>,
        pub auth_type: Option<String>,
        pub target: Option<String>,
        pub credentials: Credentials,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Credentials {
        pub username: Option<String>,
        pub password: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct EnvironmentVersion {
        pub properties: EnvironmentProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct EnvironmentProperties {
        pub image: Option<String>,
        pub conda_file: Option<String>,
        pub build: Build,
        pub description: Option<String>,
        pub tags: BTreeMap<String, Value>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Build {
        pub context_uri: Option<String>,
        pub dockerfile_path: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Compute {
        pub tags: BTreeMap<String, Value>,
        pub properties: ComputeProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct ComputeProperties {
        pub compute_type: Option<String>,
        pub description: Option<String>,
        pub provisioning_state: Option<String>,
        pub properties: AmlComputeProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct AmlComputeProperties {
        pub vm_size: Option<String>,
        pub vm_priority: Option<String>,
        pub scale_settings: ScaleSettings,
        pub current_node_count: Option<Value>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct ScaleSettings {
        pub min_node_count: Option<Value>,
        pub max_node_count: Option<Value>,
        pub node_idle_time_before_scale_down: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Job {
        pub properties: JobProperties,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct JobProperties {
        pub status: Option<String>,
        pub description: Option<String>,
        pub display_name: Option<String>,
        pub tags: BTreeMap<String, Value>,
    }
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A count Azure may write as a number or as text.
fn count(value: Option<&Value>) -> Option<u64> {
    value.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// Tags as text (Azure stores them as strings; be lenient with numbers and booleans).
fn tags(map: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(text) => (k, text),
            other => (k, other.to_string()),
        })
        .collect()
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

fn fingerprint(kept: &Value) -> String {
    sha256_hex(&canonical(kept))[..16].to_string()
}

impl LiveWorkspace {
    pub fn from_arm(body: arm::Workspace) -> Self {
        let location = body.location.unwrap_or_default();
        let description = non_empty(body.properties.description);
        let tags = tags(body.tags);
        let fingerprint =
            fingerprint(&json!({"location": location, "description": description, "tags": tags}));
        LiveWorkspace {
            location,
            description,
            tags,
            provisioning_state: body.properties.provisioning_state,
            fingerprint,
        }
    }
}

impl LiveConnection {
    /// From a `listsecrets` answer (the resource with its credentials).
    pub fn from_arm(body: arm::Connection) -> Self {
        let p = body.properties;
        let password = p.credentials.password.map(Secret::new);
        let fingerprint = fingerprint(&json!({
            "category": p.category, "auth_type": p.auth_type, "target": p.target, "username": p.credentials.username,
            "password_set": password.is_some(),
        }));
        LiveConnection {
            category: p.category,
            auth_type: p.auth_type,
            target: p.target,
            username: p.credentials.username,
            password,
            secrets_read: true,
            fingerprint,
        }
    }

    /// From a plain GET, when the caller may not list secrets.
    pub fn from_arm_without_secrets(body: arm::Connection) -> Self {
        LiveConnection {
            password: None,
            secrets_read: false,
            ..Self::from_arm(body)
        }
    }
}

impl LiveEnvironmentVersion {
    pub fn from_arm(body: arm::EnvironmentVersion) -> Self {
        let p = body.properties;
        let description = non_empty(p.description);
        let tags = tags(p.tags);
        let fingerprint = fingerprint(&json!({
            "image": p.image, "conda_file": p.conda_file, "context": p.build.context_uri,
            "dockerfile": p.build.dockerfile_path, "description": description, "tags": tags,
        }));
        LiveEnvironmentVersion {
            image: p.image,
            conda_file: p.conda_file,
            build_context_uri: p.build.context_uri,
            dockerfile_path: p.build.dockerfile_path,
            description,
            tags,
            fingerprint,
        }
    }
}

impl LiveCompute {
    pub fn from_arm(body: arm::Compute) -> Self {
        let p = body.properties;
        let aml = p.properties;
        let min_nodes = count(aml.scale_settings.min_node_count.as_ref());
        let current_nodes = count(aml.current_node_count.as_ref());
        let max_nodes = count(aml.scale_settings.max_node_count.as_ref());
        let idle_seconds = aml
            .scale_settings
            .node_idle_time_before_scale_down
            .as_deref()
            .and_then(crate::duration::iso8601_seconds);
        let description = non_empty(p.description);
        let tags = tags(body.tags);
        let fingerprint = fingerprint(&json!({
            "type": p.compute_type, "vm_size": aml.vm_size, "vm_priority": aml.vm_priority, "min": min_nodes,
            "max": max_nodes, "idle": idle_seconds, "description": description, "tags": tags,
        }));
        LiveCompute {
            compute_type: p.compute_type,
            vm_size: aml.vm_size,
            vm_priority: aml.vm_priority,
            min_nodes,
            max_nodes,
            idle_seconds,
            description,
            tags,
            provisioning_state: p.provisioning_state,
            fingerprint,
            current_nodes,
        }
    }
}

impl LiveJob {
    pub fn from_arm(body: arm::Job) -> Self {
        let p = body.properties;
        let description = non_empty(p.description);
        let tags = tags(p.tags);
        // The status moves on its own; a plan does not depend on it.
        let fingerprint = fingerprint(
            &json!({"description": description, "tags": tags, "display_name": p.display_name}),
        );
        LiveJob {
            status: p.status,
            description,
            tags,
            display_name: p.display_name,
            fingerprint,
        }
    }
}

impl LiveCode {
    /// From an item of a version list.
    pub fn from_arm(body: &Value) -> Self {
        let id = text(body, "/id").unwrap_or_default();
        let code_uri = text(body, "/properties/codeUri");
        let fingerprint = fingerprint(&json!({"id": id, "code_uri": code_uri}));
        LiveCode {
            id,
            code_uri,
            fingerprint,
        }
    }
}

impl LiveEnvironmentRef {
    /// From a version (read, or an item of a version list).
    pub fn from_arm(body: &Value) -> Self {
        let id = text(body, "/id").unwrap_or_default();
        let version = text(body, "/name")
            .unwrap_or_else(|| id.rsplit('/').next().unwrap_or_default().to_string());
        let fingerprint = fingerprint(&json!({"id": id}));
        LiveEnvironmentRef {
            id,
            version,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_decoding_ignores_server_fields() {
        let body = json!({
            "location": "westeurope",
            "properties": {
                "computeType": "AmlCompute", "provisioningState": "Succeeded", "createdOn": "2026-01-01T00:00:00Z",
                "properties": {
                    "vmSize": "STANDARD_NC6", "vmPriority": "Dedicated", "osType": "Linux", "currentNodeCount": 0,
                    "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT30M"}
                }
            }
        });
        let live = LiveCompute::from_arm(serde_json::from_value(body.clone()).unwrap());
        assert_eq!(
            (live.min_nodes, live.max_nodes, live.idle_seconds),
            (Some(0), Some(4), Some(1800))
        );
        let mut moved = body.clone();
        moved["properties"]["properties"]["currentNodeCount"] = json!(3);
        assert_eq!(
            LiveCompute::from_arm(serde_json::from_value(moved).unwrap()).fingerprint,
            live.fingerprint,
            "server-side churn is not drift"
        );
    }

    #[test]
    fn connection_fingerprint_never_depends_on_the_password() {
        let with = |password: &str| {
            let body = json!({"properties": {"category": "ContainerRegistry", "credentials": {"username": "u", "password": password}}});
            LiveConnection::from_arm(serde_json::from_value(body).unwrap())
        };
        assert_eq!(with("a").fingerprint, with("b").fingerprint);
        assert_ne!(with("a").password, with("b").password);
    }
}
