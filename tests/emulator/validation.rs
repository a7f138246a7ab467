//! Requests checked as the OpenAPI says, the same way for every resource: string maps,
//! PATCH as strict as PUT, query parameters (enums, types), path names on every method,
//! and resource types the emulator does not implement.

use reqwest::Method;
use serde_json::{Value, json};

use crate::emulator::support::{Env, explicit, start};

const ML: &str = "Microsoft.MachineLearningServices";

/// Every resource the emulator keeps tags on, with a body that is valid apart from `tags`
/// (and the path to read it back).
async fn tagged_resources(env: &Env, ws: &str) -> Vec<(Method, String, Value)> {
    let compute = format!("{ws}/computes/gpu-cluster");
    env.put(
        &compute,
        json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
            "properties": { "scaleSettings": { "maxNodeCount": 2 } } } }),
    )
    .await
    .expect(201);
    env.emu.admin().complete(&compute).unwrap();
    let envv = format!("{ws}/environments/e/versions/1");
    vec![
        (
            Method::PUT,
            format!("{}?api-version=2021-04-01", env.rg("rg2")),
            json!({ "location": "westeurope" }),
        ),
        (
            Method::PUT,
            ws.to_string(),
            json!({ "location": "westeurope", "properties": { "description": "d" } }),
        ),
        (Method::PATCH, ws.to_string(), json!({})),
        (
            Method::PUT,
            compute.clone(),
            json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
                "properties": { "scaleSettings": { "maxNodeCount": 2 } } } }),
        ),
        (
            Method::PUT,
            format!("{ws}/datastores/store1"),
            json!({ "properties": { "datastoreType": "AzureBlob", "accountName": "a", "containerName": "c",
                "credentials": { "credentialsType": "None" } } }),
        ),
        (
            Method::PUT,
            envv.clone(),
            json!({ "properties": { "image": "fastdotai/fastai2:latest" } }),
        ),
        (
            Method::PUT,
            format!("{ws}/environments/e"),
            json!({ "properties": {} }),
        ),
        (
            Method::PUT,
            format!("{ws}/codes/c/versions/1"),
            json!({ "properties": { "codeUri": "https://a.blob.core.windows.net/c/p" } }),
        ),
        (
            Method::PUT,
            format!("{ws}/jobs/job1"),
            json!({ "properties": { "jobType": "Command", "command": "python x.py",
                "environmentId": envv, "computeId": compute } }),
        ),
    ]
}

/// Puts `tags` where the resource keeps them (top level for tracked resources, under
/// `properties` for assets and jobs).
fn with_tags(path: &str, body: &Value, tags: &Value) -> Value {
    let mut body = body.clone();
    let tracked = path.contains("resourceGroups/rg2")
        || path.ends_with("/workspaces/ws1")
        || path.contains("/computes/");
    if tracked {
        body["tags"] = tags.clone();
    } else {
        body["properties"]["tags"] = tags.clone();
    }
    body
}

#[tokio::test]
async fn tags_hold_strings_only_for_every_resource() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    for (method, path, body) in tagged_resources(&env, &ws).await {
        for bad in [
            json!({ "n": 1 }),
            json!({ "b": true }),
            json!({ "o": { "x": "y" } }),
        ] {
            let r = env
                .call(method.clone(), &path, Some(with_tags(&path, &body, &bad)))
                .await;
            assert_eq!(r.status, 400, "{method} {path} tags {bad}: {}", r.text);
            assert!(
                r.body["error"]["code"].is_string() && r.body["error"]["message"].is_string(),
                "ARM's error shape: {}",
                r.text
            );
        }
        let good = json!({ "team": "ml" });
        let r = env
            .call(method.clone(), &path, Some(with_tags(&path, &body, &good)))
            .await;
        assert!(
            r.status < 300,
            "{method} {path} with string tags: {}",
            r.text
        );
    }
    // Workspace and compute tags do not admit null values either (the OpenAPI's string
    // maps there are not nullable; asset and job tags are).
    let r = env.patch(&ws, json!({ "tags": { "gone": null } })).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = env
        .put(
            &format!("{ws}/computes/gpu-cluster"),
            json!({ "location": "westeurope", "tags": { "gone": null }, "properties": { "computeType": "AmlCompute",
                "properties": { "scaleSettings": { "maxNodeCount": 2 } } } }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn connection_metadata_holds_strings_only() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let conn = format!("{ws}/connections/conn1");
    let body = |metadata: Value| {
        json!({ "properties": { "authType": "UsernamePassword", "category": "ContainerRegistry",
            "target": "r.azurecr.io", "credentials": { "username": "u", "password": "p" },
            "metadata": metadata } })
    };
    env.put(&conn, body(json!({ "k": "v" }))).await.expect(200);
    for bad in [
        json!({ "n": 1 }),
        json!({ "b": false }),
        json!({ "z": null }),
    ] {
        let r = env.put(&conn, body(bad.clone())).await;
        assert_eq!(r.status, 400, "PUT metadata {bad}: {}", r.text);
        let r = env
            .patch(
                &conn,
                json!({ "properties": { "authType": "UsernamePassword", "metadata": bad } }),
            )
            .await;
        assert_eq!(r.status, 400, "PATCH metadata {bad}: {}", r.text);
    }
    // Nothing bad was stored: every read still answers with strings only.
    let got = env.get(&conn).await;
    assert_eq!(
        got.expect(200).body["properties"]["metadata"],
        json!({ "k": "v" })
    );
    let secrets = env.post(&format!("{conn}/listsecrets"), None).await;
    assert_eq!(
        secrets.expect(200).body["properties"]["metadata"],
        json!({ "k": "v" })
    );
}

#[tokio::test]
async fn compute_patch_is_checked_like_put() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let compute = format!("{ws}/computes/gpu-cluster");
    env.put(
        &compute,
        json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
            "properties": { "scaleSettings": { "minNodeCount": 0, "maxNodeCount": 2 } } } }),
    )
    .await
    .expect(201);
    env.emu.admin().complete(&compute).unwrap();
    let patch =
        |scale: Value| json!({ "properties": { "properties": { "scaleSettings": scale } } });
    for scale in [
        json!({ "minNodeCount": 5, "maxNodeCount": 1 }),
        json!({ "minNodeCount": 2147483648u64, "maxNodeCount": 1 }),
        json!({ "minNodeCount": 0, "maxNodeCount": 2147483648u64 }),
        json!({ "maxNodeCount": -2147483649i64 }),
        json!({ "maxNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "soon" }),
    ] {
        let r = env.patch(&compute, patch(scale.clone())).await;
        assert_eq!(r.status, 400, "PATCH {scale}: {}", r.text);
        let r = env
            .put(
                &compute,
                json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
                    "properties": { "scaleSettings": scale } } }),
            )
            .await;
        assert_eq!(r.status, 400, "PUT {scale}: {}", r.text);
    }
    // A PATCH of the maximum alone is checked against the stored minimum.
    env.patch(
        &compute,
        patch(json!({ "minNodeCount": 2, "maxNodeCount": 3 })),
    )
    .await
    .expect(200);
    env.emu.admin().step_all().unwrap();
    let r = env
        .patch(&compute, patch(json!({ "maxNodeCount": 1 })))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let got = env.get(&compute).await;
    let scale = &got.expect(200).body["properties"]["properties"]["scaleSettings"];
    assert_eq!(
        (scale["minNodeCount"].clone(), scale["maxNodeCount"].clone()),
        (json!(2), json!(3))
    );
}

#[tokio::test]
async fn query_parameters_are_checked_against_the_openapi() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let bad = [
        format!("{ws}/environments?listViewType=Sometimes"),
        format!("{ws}/environments/e/versions?listViewType=garbage"),
        format!("{ws}/jobs?listViewType=1"),
        format!("{ws}/environments/e/versions?$top=many"),
        format!("{ws}/environments/e/versions?$top=99999999999"),
        format!("{ws}/datastores?isDefault=maybe"),
        format!("{ws}/datastores?count=ten"),
        format!("{ws}/connections?includeAll=yes"),
    ];
    for path in &bad {
        let r = env.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert!(r.body["error"]["message"].is_string(), "{}", r.text);
    }
    let good = [
        format!("{ws}/environments?listViewType=All"),
        format!("{ws}/environments/e/versions?listViewType=ArchivedOnly&$top=3"),
        format!("{ws}/jobs?listViewType=ActiveOnly"),
        format!("{ws}/datastores?isDefault=true&count=10"),
        format!("{ws}/connections?includeAll=false"),
    ];
    for path in &good {
        env.get(path).await.expect(200);
    }
    let r = env
        .delete(&format!(
            "{ws}/computes/gpu-cluster?underlyingResourceAction=Explode"
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn path_names_are_checked_on_every_method() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let cases = [
        format!("{ws}/computes/ends-in-1"),
        format!("{ws}/computes/-dash"),
        format!("{ws}/connections/x"),
        format!("{ws}/connections/bad.name"),
    ];
    for path in &cases {
        let delete = if path.contains("/computes/") {
            format!("{path}?underlyingResourceAction=Delete")
        } else {
            path.clone()
        };
        for (method, target) in [(Method::DELETE, delete), (Method::GET, path.clone())] {
            let r = env.call(method.clone(), &target, None).await;
            assert_eq!(r.status, 400, "{method} {target}: {}", r.text);
            assert!(r.body["error"]["code"].is_string(), "{}", r.text);
        }
    }
    let bad_ws = env.ws("rg", "-ws");
    let r = env.delete(&bad_ws).await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn unimplemented_resource_types_are_answered_as_arm_answers_unknown_types() {
    let env = start(explicit()).await;
    env.workspace("rg", "ws1").await;
    // azure-ai-ml's workspaces.begin_create deploys an ARM template.
    let deployment = format!(
        "{}/providers/Microsoft.Resources/deployments/ws-deploy",
        env.rg("rg")
    );
    for api in ["2020-06-01", "2021-04-01"] {
        let r = env
            .put(
                &format!("{deployment}?api-version={api}"),
                json!({ "properties": { "mode": "Incremental", "template": {} } }),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(r.error_code(), "InvalidResourceType", "{}", r.text);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "The resource type 'deployments' could not be found in the namespace 'Microsoft.Resources' for api version '{api}'."
            )),
            "{message}"
        );
    }
    // Another provider's type, and an unknown child type of a served one.
    let cases = [
        (
            format!(
                "{}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
                env.rg("rg")
            ),
            "InvalidResourceNamespace",
        ),
        (
            format!(
                "{}/providers/Microsoft.Storage/storageAccounts/stws1/fileServices/default?api-version=2023-01-01",
                env.rg("rg")
            ),
            "InvalidResourceType",
        ),
        (
            format!(
                "{}/providers/{ML}/workspaces/ws1/onlineEndpoints/e1?api-version=2026-07-01",
                env.rg("rg")
            ),
            "InvalidResourceType",
        ),
        (
            format!(
                "{}/providers/{ML}/registries/r1?api-version=2026-07-01",
                env.rg("rg")
            ),
            "InvalidResourceType",
        ),
    ];
    for (path, code) in &cases {
        let r = env.call(Method::GET, path, None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, *code),
            "{path}: {}",
            r.text
        );
    }
    // A served type with an api-version ARM does not know keeps its own answer.
    let r = env
        .get(&format!("{}?api-version=1999-01-01", env.rg("rg")))
        .await;
    assert_eq!(r.expect(400).error_code(), "InvalidApiVersionParameter");
}
