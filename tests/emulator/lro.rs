//! ARM mechanics: asynchronous provisioning (Azure-AsyncOperation / Location, Retry-After,
//! status resources) stepped explicitly or on the virtual clock, in-place updates and
//! changes Azure refuses, api-version checks, paging, parent checks.

use std::time::Duration;

use amlspec::emulator::{EmulatorConfig, SimMode, SimTimings};
use serde_json::{Value, json};

use crate::emulator::support::{explicit, start};

fn cluster(max: u32) -> Value {
    json!({
        "location": "westeurope",
        "properties": {
            "computeType": "AmlCompute",
            "properties": {
                "vmSize": "STANDARD_NC6",
                "scaleSettings": { "maxNodeCount": max, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT30M" }
            }
        }
    })
}

#[tokio::test]
async fn compute_provisioning_is_asynchronous_and_stepped() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let id = format!("{ws}/computes/gpu-cluster");
    let r = env.put(&id, cluster(4)).await;
    r.expect(201);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert_eq!(r.header("retry-after"), Some("1"));
    let status_url = r
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_string();
    assert!(
        status_url.contains("/computeOperationsStatus/"),
        "{status_url}"
    );
    // Server defaults are filled in the way Azure does.
    let p = &r.body["properties"]["properties"];
    assert_eq!(p["osType"], "Linux");
    assert_eq!(p["vmPriority"], "Dedicated");
    assert_eq!(p["enableNodePublicIp"], true);
    assert_eq!(p["remoteLoginPortPublicAccess"], "NotSpecified");
    assert_eq!(
        r.body["type"],
        "Microsoft.MachineLearningServices/workspaces/computes"
    );

    let s = env.get(&status_url).await;
    s.expect(200);
    assert_eq!(s.body["status"], "InProgress");
    // Nothing moves by itself in explicit mode.
    assert_eq!(
        env.get(&id).await.body["properties"]["provisioningState"],
        "Creating"
    );
    // A second PUT while creating is a conflict.
    assert_eq!(
        env.put(&id, cluster(4)).await.expect(409).error_code(),
        "Conflict"
    );

    env.emu.admin().step(&id).unwrap();
    let s = env.get(&status_url).await;
    assert_eq!(s.body["status"], "Succeeded");
    assert!(s.body["endTime"].is_string());
    assert_eq!(
        env.get(&id).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
    assert!(env.emu.admin().step(&id).is_err(), "nothing left to step");
}

#[tokio::test]
async fn auto_mode_completes_on_the_virtual_clock() {
    let env = start(EmulatorConfig {
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::from_secs(30),
            ..SimTimings::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let ws = env.workspace("rg", "ws1").await;
    let id = format!("{ws}/computes/cpu-cluster");
    env.put(&id, cluster(2)).await.expect(201);
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        env.get(&id).await.body["properties"]["provisioningState"],
        "Creating"
    );
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(21))
        .unwrap();
    assert_eq!(
        env.get(&id).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
}

#[tokio::test]
async fn a_failed_lro_reports_failed_everywhere() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let id = format!("{ws}/computes/gpu-cluster");
    env.emu.admin().fail_next_lros(1);
    let r = env.put(&id, cluster(1)).await;
    let status_url = r.header("azure-asyncoperation").unwrap().to_string();
    env.emu.admin().step(&id).unwrap();
    let s = env.get(&status_url).await;
    assert_eq!(s.body["status"], "Failed");
    assert_eq!(s.body["error"]["code"], "ResourceOperationFailure");
    let c = env.get(&id).await;
    assert_eq!(c.body["properties"]["provisioningState"], "Failed");
    assert!(c.body["properties"]["provisioningErrors"].is_array());
    // The rule was used up: the next creation succeeds.
    let id2 = format!("{ws}/computes/gpu-cluster2");
    env.put(&id2, cluster(1)).await.expect(201);
    env.emu.admin().step(&id2).unwrap();
    assert_eq!(
        env.get(&id2).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
}

/// A workspace whose provisioning failed is provisioned again by a PUT of the same
/// body (ARM's create-or-update): a long-running operation that ends Succeeded, the
/// workspace conflicting with other writes meanwhile. (Found by the fault campaign: the
/// emulator used to answer 200 and leave it Failed, so plan proposed it forever.)
#[tokio::test]
async fn a_put_provisions_a_failed_workspace_again() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let body = env.get(&ws).await.body;
    let again = serde_json::json!({ "location": "westeurope", "properties": {
        "storageAccount": body["properties"]["storageAccount"],
        "keyVault": body["properties"]["keyVault"],
        "applicationInsights": body["properties"]["applicationInsights"],
        "description": "test workspace"
    }});
    // A succeeded workspace is updated at once, with no operation.
    env.put(&ws, again.clone()).await.expect(200);
    let ws2 = format!(
        "{}/providers/Microsoft.MachineLearningServices/workspaces/ws2",
        env.rg("rg")
    );
    env.emu.admin().fail_next_lros(1);
    env.put(&ws2, again.clone()).await.expect(202);
    env.emu.admin().step(&ws2).unwrap();
    assert_eq!(
        env.get(&ws2).await.body["properties"]["provisioningState"],
        "Failed"
    );
    let r = env.put(&ws2, again.clone()).await;
    r.expect(202);
    assert!(r.header("location").is_some());
    assert_eq!(
        env.get(&ws2).await.body["properties"]["provisioningState"],
        "Updating"
    );
    env.put(&ws2, again.clone()).await.expect(409);
    env.emu.admin().step(&ws2).unwrap();
    assert_eq!(
        env.get(&ws2).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
    // Settled: a PUT updates in place.
    env.put(&ws2, again).await.expect(200);
}

#[tokio::test]
async fn scale_settings_update_in_place_and_immutable_fields_refuse() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let id = format!("{ws}/computes/gpu-cluster");
    env.put(&id, cluster(2)).await.expect(201);
    env.emu.admin().step(&id).unwrap();

    let r = env
        .patch(&id, json!({ "properties": { "properties": { "scaleSettings": { "maxNodeCount": 8, "minNodeCount": 1 } } } }))
        .await;
    r.expect(200);
    assert!(r.header("azure-asyncoperation").is_some() && r.header("location").is_some());
    assert_eq!(
        r.body["properties"]["properties"]["scaleSettings"]["maxNodeCount"],
        8
    );
    env.emu.admin().step(&id).unwrap();

    // PUT with only scale settings changed: updated in place.
    let r = env.put(&id, cluster(6)).await;
    r.expect(200);
    assert_eq!(
        r.body["properties"]["properties"]["scaleSettings"]["maxNodeCount"],
        6
    );

    // PUT with another VM size: Azure cannot change it in place.
    let mut other = cluster(6);
    other["properties"]["properties"]["vmSize"] = json!("STANDARD_NC12");
    let r = env.put(&id, other).await;
    r.expect(400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vmSize"),
        "{}",
        r.text
    );
    assert_eq!(
        env.get(&id).await.body["properties"]["properties"]["vmSize"],
        "STANDARD_NC6"
    );

    // A bad duration is a 400, not a 500.
    let r = env
        .patch(&id, json!({ "properties": { "properties": { "scaleSettings": { "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "30 minutes" } } } }))
        .await;
    assert_eq!(r.expect(400).error_code(), "UserError");

    // Delete needs underlyingResourceAction, then runs asynchronously.
    env.delete(&id).await.expect(400);
    let r = env
        .delete(&format!("{id}?underlyingResourceAction=Delete"))
        .await;
    r.expect(202);
    assert!(r.header("location").is_some());
    assert_eq!(
        env.get(&id).await.body["properties"]["provisioningState"],
        "Deleting"
    );
    env.emu.admin().step(&id).unwrap();
    env.get(&id).await.expect(404);
    env.delete(&format!("{id}?underlyingResourceAction=Delete"))
        .await
        .expect(204);
}

#[tokio::test]
async fn workspace_creation_polls_location_and_makes_the_default_datastore() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let w = env.get(&ws).await;
    w.expect(200);
    assert_eq!(w.body["properties"]["provisioningState"], "Succeeded");
    assert!(w.body["properties"]["workspaceId"].is_string());
    let ds = env
        .get(&format!("{ws}/datastores/workspaceblobstore"))
        .await;
    ds.expect(200);
    assert_eq!(ds.body["properties"]["isDefault"], true);
    assert_eq!(ds.body["properties"]["datastoreType"], "AzureBlob");
    assert!(
        ds.body["properties"]["credentials"]["secrets"]
            .get("key")
            .is_none(),
        "secrets are write-only"
    );
    let secrets = env
        .post(
            &format!("{ws}/datastores/workspaceblobstore/listSecrets"),
            Some(json!({})),
        )
        .await;
    secrets.expect(200);
    assert_eq!(secrets.body["secretsType"], "AccountKey");
    assert!(secrets.body["key"].as_str().unwrap().len() > 40);
    let list = env.get(&format!("{ws}/datastores?isDefault=true")).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);

    // A new workspace: 202 + Location, polled until done.
    let ws2 = env.ws("rg", "ws2");
    let mut body = env.get(&ws).await.body;
    body["properties"] = json!({
        "storageAccount": w.body["properties"]["storageAccount"],
        "keyVault": w.body["properties"]["keyVault"],
    });
    let r = env
        .put(
            &ws2,
            json!({ "location": "westeurope", "properties": body["properties"] }),
        )
        .await;
    r.expect(202);
    let location = r.header("location").unwrap().to_string();
    env.get(&location).await.expect(202);
    env.emu.admin().step(&ws2).unwrap();
    let done = env.get(&location).await;
    done.expect(200);
    assert_eq!(done.body["name"], "ws2");

    // Location is immutable; tags are not.
    let r = env
        .put(&ws2, json!({ "location": "eastus", "properties": {} }))
        .await;
    assert_eq!(r.expect(400).error_code(), "UserError");
    let r = env
        .patch(
            &ws2,
            json!({ "tags": { "team": "ml" }, "properties": { "description": "d" } }),
        )
        .await;
    assert_eq!(r.expect(200).body["tags"]["team"], "ml");

    // Delete: 202, then gone with its children.
    let r = env.delete(&ws2).await;
    r.expect(202);
    env.emu.admin().step(&ws2).unwrap();
    env.get(&ws2).await.expect(404);
    env.get(&format!("{ws2}/datastores/workspaceblobstore"))
        .await
        .expect(404);
}

#[tokio::test]
async fn api_versions_are_checked_per_provider() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let r = env.get(&format!("{ws}?api-version=2099-01-01")).await;
    assert_eq!(r.expect(400).error_code(), "NoRegisteredProviderFound");
    for v in [
        "2023-04-01",
        "2023-08-01-preview",
        "2024-10-01-preview",
        "2025-01-01-preview",
        "2026-07-01",
    ] {
        env.get(&format!("{ws}?api-version={v}")).await.expect(200);
    }
    let r = env
        .call(
            reqwest::Method::GET,
            &format!("{}{}", env.emu.endpoint(), env.rg("rg")),
            None,
        )
        .await;
    assert_eq!(r.expect(400).error_code(), "MissingApiVersionParameter");
    let r = env
        .get(&format!("{}?api-version=2026-07-01", env.rg("rg")))
        .await;
    assert_eq!(r.expect(400).error_code(), "InvalidApiVersionParameter");
}

#[tokio::test]
async fn missing_parents_and_resources_use_arm_codes() {
    let env = start(explicit()).await;
    let r = env.get(&env.ws("nope", "ws")).await;
    assert_eq!(r.expect(404).error_code(), "ResourceGroupNotFound");
    env.put(
        &format!("{}?api-version=2021-04-01", env.rg("rg")),
        json!({ "location": "westeurope" }),
    )
    .await
    .expect(201);
    env.put(
        &format!("{}?api-version=2021-04-01", env.rg("rg")),
        json!({ "location": "westeurope" }),
    )
    .await
    .expect(200);
    let r = env.get(&env.ws("rg", "ws1")).await;
    assert_eq!(r.expect(404).error_code(), "ResourceNotFound");
    let r = env
        .get(&format!("{}/computes/cpu1", env.ws("rg", "ws1")))
        .await;
    assert_eq!(r.expect(404).error_code(), "ParentResourceNotFound");
    let r = env.get("/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/rg?api-version=2021-04-01").await;
    assert_eq!(r.expect(404).error_code(), "SubscriptionNotFound");
}

#[tokio::test]
async fn lists_page_with_next_link() {
    let env = start(EmulatorConfig {
        page_size: 2,
        ..explicit()
    })
    .await;
    let ws = env.workspace("rg", "ws1").await;
    for i in 0..5 {
        let r = env
            .put(
                &format!("{ws}/connections/acr-{i:02}"),
                json!({ "properties": { "authType": "UsernamePassword", "category": "ContainerRegistry",
                    "target": format!("r{i}.azurecr.io"), "credentials": { "username": "u", "password": "p" } } }),
            )
            .await;
        r.expect(200);
    }
    let mut names = Vec::new();
    let mut next = Some(format!("{ws}/connections"));
    let mut pages = 0;
    while let Some(url) = next {
        let page = env.get(&url).await;
        page.expect(200);
        pages += 1;
        for v in page.body["value"].as_array().unwrap() {
            names.push(v["name"].as_str().unwrap().to_string());
        }
        next = page.body["nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with("http") && n.contains("api-version="), "{n}");
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..5).map(|i| format!("acr-{i:02}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn connections_answer_200_and_keep_secrets_write_only() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let id = format!("{ws}/connections/myregistry");
    let body = json!({ "properties": { "authType": "UsernamePassword", "category": "ContainerRegistry",
        "target": "myregistry.azurecr.io", "credentials": { "username": "user", "password": "s3cret" } } });
    env.put(&id, body.clone()).await.expect(200);
    env.put(&id, body).await.expect(200);
    let g = env.get(&id).await;
    assert_eq!(g.body["properties"]["credentials"]["username"], "user");
    assert!(
        g.body["properties"]["credentials"]
            .get("password")
            .is_none()
    );
    assert!(!g.text.contains("s3cret"));
    let s = env.post(&format!("{id}/listsecrets"), None).await;
    assert_eq!(
        s.expect(200).body["properties"]["credentials"]["password"],
        "s3cret"
    );
    let r = env
        .put(
            &format!("{ws}/connections/conn-x"),
            json!({ "properties": { "category": "ContainerRegistry" } }),
        )
        .await;
    assert_eq!(r.expect(400).error_code(), "UserError");
    env.delete(&id).await.expect(200);
    env.delete(&id).await.expect(204);
}

#[tokio::test]
async fn storage_names_are_checked_like_azure() {
    let env = start(explicit()).await;
    env.workspace("rg", "ws1").await;
    let path = format!(
        "{}/providers/Microsoft.Storage/checkNameAvailability?api-version=2025-08-01",
        env.sub()
    );
    let mut answers = Vec::new();
    for name in ["stws1", "Bad_Name", "freshname"] {
        let r = env
            .post(
                &path,
                Some(json!({ "name": name, "type": "Microsoft.Storage/storageAccounts" })),
            )
            .await;
        r.expect(200);
        answers.push((r.body["nameAvailable"].clone(), r.body["reason"].clone()));
    }
    assert_eq!(answers[0], (json!(false), json!("AlreadyExists")));
    assert_eq!(answers[1], (json!(false), json!("AccountNameInvalid")));
    assert_eq!(answers[2].0, json!(true));
}
