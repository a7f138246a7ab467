//! Every example request of the vendored azure-rest-specs is replayed against the
//! emulator; each answer (and every other ML answer in these tests, see `support`) is
//! validated against the OpenAPI definitions.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::emulator::support::{Env, explicit, find_operation, start};

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/azure-rest-specs/2026-07-01/examples"
);

const WS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}";

/// Example file, HTTP method, path below the workspace (or a full path when it starts
/// with `/subscriptions`), and for examples the emulator refuses by design, the error
/// code expected and why.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const CASES: &[Case] = &[
    ("Workspace/create.json", "PUT", "", None),
    ("Workspace/get.json", "GET", "", None),
    ("Workspace/update.json", "PATCH", "", None),
    (
        "Workspace/listByResourceGroup.json",
        "GET",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.MachineLearningServices/workspaces",
        None,
    ),
    (
        "Workspace/listBySubscription.json",
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/workspaces",
        None,
    ),
    (
        "Compute/createOrUpdate/BasicAmlCompute.json",
        "PUT",
        "/computes/{computeName}",
        None,
    ),
    (
        "Compute/get/AmlCompute.json",
        "GET",
        "/computes/{computeName}",
        None,
    ),
    ("Compute/list.json", "GET", "/computes", None),
    (
        "Compute/patch.json",
        "PATCH",
        "/computes/{computeName}",
        None,
    ),
    // A second PUT of the same compute with another vmPriority/osType: not in place.
    (
        "Compute/createOrUpdate/AmlCompute.json",
        "PUT",
        "/computes/{computeName}",
        Some((
            "BadRequest",
            "changes osType and the image of an existing cluster",
        )),
    ),
    (
        "Compute/delete.json",
        "DELETE",
        "/computes/{computeName}",
        None,
    ),
    (
        "WorkspaceConnection/create.json",
        "PUT",
        "/connections/{connectionName}",
        None,
    ),
    (
        "WorkspaceConnection/get.json",
        "GET",
        "/connections/{connectionName}",
        None,
    ),
    (
        "WorkspaceConnection/update.json",
        "PATCH",
        "/connections/{connectionName}",
        None,
    ),
    ("WorkspaceConnection/list.json", "GET", "/connections", None),
    (
        "WorkspaceConnection/listSecrets.json",
        "POST",
        "/connections/{connectionName}/listsecrets",
        None,
    ),
    (
        "WorkspaceConnection/delete.json",
        "DELETE",
        "/connections/{connectionName}",
        None,
    ),
    (
        "Datastore/AzureBlobWAccountKey/createOrUpdate.json",
        "PUT",
        "/datastores/{name}",
        None,
    ),
    ("Datastore/get.json", "GET", "/datastores/{name}", None),
    ("Datastore/list.json", "GET", "/datastores", None),
    (
        "Datastore/listSecrets.json",
        "POST",
        "/datastores/{name}/listSecrets",
        None,
    ),
    (
        "Datastore/delete.json",
        "DELETE",
        "/datastores/{name}",
        None,
    ),
    (
        "Workspace/CodeVersion/createOrUpdate.json",
        "PUT",
        "/codes/{name}/versions/{version}",
        None,
    ),
    (
        "Workspace/CodeVersion/get.json",
        "GET",
        "/codes/{name}/versions/{version}",
        None,
    ),
    (
        "Workspace/CodeVersion/list.json",
        "GET",
        "/codes/{name}/versions",
        None,
    ),
    (
        "Workspace/CodeVersion/createOrGetStartPendingUpload.json",
        "POST",
        "/codes/{name}/versions/{version}/startPendingUpload",
        None,
    ),
    (
        "Workspace/CodeVersion/delete.json",
        "DELETE",
        "/codes/{name}/versions/{version}",
        None,
    ),
    // The example sets image, build and condaFile together; the service takes either an
    // image or a build context.
    (
        "Workspace/EnvironmentVersion/createOrUpdate.json",
        "PUT",
        "/environments/{name}/versions/{version}",
        Some(("UserError", "sets both image and build")),
    ),
    (
        "Workspace/EnvironmentVersion/list.json",
        "GET",
        "/environments/{name}/versions",
        None,
    ),
    (
        "Workspace/EnvironmentVersion/delete.json",
        "DELETE",
        "/environments/{name}/versions/{version}",
        None,
    ),
    (
        "Job/CommandJob/createOrUpdate.json",
        "PUT",
        "/jobs/{id}",
        None,
    ),
    ("Job/CommandJob/get.json", "GET", "/jobs/{id}", None),
    ("Job/CommandJob/list.json", "GET", "/jobs", None),
    ("Job/cancel.json", "POST", "/jobs/{id}/cancel", None),
    ("Job/delete.json", "DELETE", "/jobs/{id}", None),
    ("Workspace/delete.json", "DELETE", "", None),
];

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(EXAMPLES).join(file)).expect("example exists");
    serde_json::from_str(&text).expect("example parses")
}

fn template_of(rel: &str) -> String {
    if rel.starts_with("/subscriptions") {
        rel.to_string()
    } else {
        format!("{WS}{rel}")
    }
}

/// Points ARM ids of workspace dependencies in an example body at the ones the test made.
fn rewrite_ids(value: &mut Value, env: &Env) {
    match value {
        Value::String(s) if s.starts_with("/subscriptions/") => {
            let lower = s.to_ascii_lowercase();
            let deps = [
                ("/microsoft.storage/storageaccounts/", "storage"),
                ("/microsoft.keyvault/vaults/", "kv"),
                ("/microsoft.insights/components/", "ai"),
            ];
            for (marker, which) in deps {
                if lower.contains(marker) && !lower.contains("/keys/") {
                    let rg = env.rg("contract-rg");
                    *s = match which {
                        "storage" => {
                            format!("{rg}/providers/Microsoft.Storage/storageAccounts/stcontractws")
                        }
                        "kv" => format!("{rg}/providers/Microsoft.KeyVault/vaults/kv-contractws"),
                        _ => {
                            format!("{rg}/providers/Microsoft.Insights/components/ai-stcontractws")
                        }
                    };
                    return;
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rewrite_ids(v, env)),
        Value::Object(o) => o.values_mut().for_each(|v| rewrite_ids(v, env)),
        _ => {}
    }
}

#[tokio::test]
async fn every_example_request_is_served_per_the_contract() {
    let env = start(explicit()).await;
    env.workspace("contract-rg", "contract-ws").await;
    let mut report = Vec::new();
    for (file, method, rel, refusal) in CASES {
        let example = load(file);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let params = &example["parameters"];
        let template = template_of(rel);
        let mut path = template.clone();
        let mut query = vec![format!(
            "api-version={}",
            params["api-version"].as_str().unwrap()
        )];
        find_operation(&method, &template).expect("template is an operation");
        let mut body = None;
        for (name, value) in params.as_object().unwrap() {
            let slot = format!("{{{name}}}");
            if path.contains(&slot) {
                let v = match name.as_str() {
                    "subscriptionId" => env.emu.subscription_id().to_string(),
                    "resourceGroupName" => "contract-rg".to_string(),
                    "workspaceName" if *file == "Workspace/create.json" => {
                        "testworkspace".to_string()
                    }
                    "workspaceName" => "contract-ws".to_string(),
                    // Job delete's example id is a URL; use the job created earlier.
                    _ => match value.as_str() {
                        Some(s) if !s.contains('/') => s.to_string(),
                        _ => "string".to_string(),
                    },
                };
                path = path.replace(&slot, &v);
            } else if name == "api-version" || name == "$skipToken" {
            } else if value.is_object() {
                let mut b = value.clone();
                rewrite_ids(&mut b, &env);
                body = Some(b);
            } else {
                let vals: Vec<String> = match value {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect(),
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                };
                for v in vals {
                    query.push(format!("{name}={v}"));
                }
            }
        }
        // Examples that list with a filter would filter our resources away; list all.
        if file.ends_with("list.json") {
            query.retain(|q| q.starts_with("api-version") || q.starts_with("underlying"));
        }
        let url = format!("{path}?{}", query.join("&"));
        let resp = env.call(method.clone(), &url, body).await;
        match refusal {
            None => assert!(
                (200..300).contains(&resp.status),
                "{file}: {method} {url} was refused: {}",
                resp.text
            ),
            Some((code, why)) => {
                assert!(
                    resp.status >= 400,
                    "{file}: expected a refusal ({why}), got {}",
                    resp.status
                );
                assert_eq!(resp.error_code(), *code, "{file}: {}", resp.text);
            }
        }
        // Let long-running operations finish before the next example needs their result.
        env.emu.admin().step_all().unwrap();
        report.push(format!("{file}: {}", resp.status));
    }
    assert_eq!(report.len(), CASES.len());
}

#[tokio::test]
async fn example_request_bodies_validate_against_their_definitions() {
    // The emulator's body check is the OpenAPI itself: every example body passes it.
    let mut checked = 0;
    for (file, method, rel, _) in CASES {
        let example = load(file);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let template = template_of(rel);
        let (_, op) = find_operation(&method, &template).unwrap();
        for p in op["parameters"].as_array().unwrap() {
            if p["in"] != "body" {
                continue;
            }
            let Some(body) = example["parameters"].get(p["name"].as_str().unwrap()) else {
                continue;
            };
            let reference = p["schema"]["$ref"].as_str().unwrap();
            let name = reference.rsplit('/').next().unwrap();
            let defs = amlspec::emulator::openapi::json_schema_definitions();
            let target = amlspec::emulator::openapi::definition_name(reference);
            let schema = json!({ "$ref": format!("#/definitions/{target}"), "definitions": defs });
            let v = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(&schema)
                .unwrap();
            let errors: Vec<String> = v
                .iter_errors(body)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{file}: example body fails {name}: {errors:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} bodies checked");
}
