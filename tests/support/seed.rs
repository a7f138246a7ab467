//! Create a manifest's resources through ARM exactly as a client would, from the same
//! request bodies, so that tests and benchmarks start from state the emulator filled in
//! itself. Shared by the test binary and the plan benchmark (`#[path]` includes it).

use amlspec::azure::client::{ArmClient, Operation};
use amlspec::azure::{
    INSIGHTS_API_VERSION, KEYVAULT_API_VERSION, ML_API_VERSION, RESOURCES_API_VERSION,
    STORAGE_API_VERSION,
};
use amlspec::bodies;
use amlspec::desired::{Desired, JobEnvironment};
use amlspec::ids::ResourceId;
use futures::future::join_all;
use serde_json::{Value, json};

/// Where seeded build contexts and code say they were uploaded.
const STORE: &str = "https://store.blob.core.localhost/azureml";

/// A response body as JSON (`null` when empty).
pub fn json(response: &amlspec::azure::client::Response) -> Value {
    if response.text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&response.text).expect("ARM answers JSON")
    }
}

pub async fn put(client: &ArmClient, id: &ResourceId, api_version: &str, body: Value) -> Value {
    let url = client.url(id, api_version);
    let response = client
        .send(
            &Operation::new("seed", id.to_string()),
            reqwest::Method::PUT,
            url,
            Some(body),
            true,
        )
        .await;
    json(&response.unwrap_or_else(|e| panic!("PUT {id}: {e}")))
}

/// Everything `desired` declares, plus the existing environments its jobs name (as
/// version 3 when they say `@latest`).
pub async fn seed(client: &ArmClient, tenant_id: &str, desired: &Desired) {
    let mut groups = Vec::new();
    for ws in &desired.workspaces {
        let location = ws
            .spec
            .location
            .as_ref()
            .map_or("westeurope", |l| l.as_str());
        // A resource group has one location; workspaces in it may be elsewhere.
        if !groups.contains(&ws.resource_group) {
            put(
                client,
                &ws.resource_group,
                RESOURCES_API_VERSION,
                bodies::resource_group(location),
            )
            .await;
            groups.push(ws.resource_group.clone());
        }
        let deps = &ws.dependencies;
        put(
            client,
            &deps.storage_account,
            STORAGE_API_VERSION,
            bodies::storage_account(location),
        )
        .await;
        put(
            client,
            &deps.key_vault,
            KEYVAULT_API_VERSION,
            bodies::key_vault(location, tenant_id),
        )
        .await;
        put(
            client,
            &deps.application_insights,
            INSIGHTS_API_VERSION,
            bodies::application_insights(location),
        )
        .await;
        let mut workspace = bodies::workspace(ws);
        workspace["location"] = json!(location);
        put(client, &ws.id, ML_API_VERSION, workspace).await;
        join_all(
            ws.registries
                .iter()
                .map(|r| put(client, &r.id, ML_API_VERSION, bodies::connection(r))),
        )
        .await;
        join_all(ws.environments.iter().map(|env| {
            let context = env
                .definition
                .build
                .as_ref()
                .map(|b| format!("{STORE}/LocalUpload/{}/context/", b.hash));
            put(
                client,
                &env.id,
                ML_API_VERSION,
                bodies::environment(env, context.as_deref()),
            )
        }))
        .await;
        for existing in &ws.existing_environments {
            let id = existing_id(ws, &existing.name, existing.version.as_deref());
            put(
                client,
                &id,
                ML_API_VERSION,
                json!({"properties": {"image": "mcr.microsoft.com/azureml/curated:latest"}}),
            )
            .await;
        }
        join_all(
            ws.clusters
                .iter()
                .map(|c| put(client, &c.id, ML_API_VERSION, bodies::compute(c, location))),
        )
        .await;
        for code in &ws.codes {
            let id = ws
                .id
                .child("codes", &code.name)
                .child("versions", &code.version);
            put(
                client,
                &id,
                ML_API_VERSION,
                bodies::code(code, &format!("{STORE}/{}", code.hash)),
            )
            .await;
        }
        join_all(ws.jobs.iter().map(|job| {
            let environment = match &job.environment {
                JobEnvironment::Declared { id, .. } => id.to_string(),
                JobEnvironment::Existing(e) => {
                    existing_id(ws, &e.name, e.version.as_deref()).to_string()
                }
            };
            let code = job.code_hash.as_ref().map(|hash| {
                let code = ws
                    .codes
                    .iter()
                    .find(|c| &c.hash == hash)
                    .expect("a job's code is declared");
                ws.id
                    .child("codes", &code.name)
                    .child("versions", &code.version)
                    .to_string()
            });
            let body = bodies::job(job, &environment, code.as_deref());
            async move { put(client, &job.id, ML_API_VERSION, body).await }
        }))
        .await;
    }
}

fn existing_id(
    ws: &amlspec::desired::DesiredWorkspace,
    name: &str,
    version: Option<&str>,
) -> ResourceId {
    ws.id
        .child("environments", name)
        .child("versions", version.unwrap_or("3"))
}
