//! Environments and codes: immutable versions, container latest/next, ordering, the
//! content-hash search across code names, pending uploads, and 400s for bad bodies.

use serde_json::json;

use crate::emulator::support::{explicit, start};

#[tokio::test]
async fn environment_versions_are_immutable_and_containers_track_versions() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    env.get(&format!("{ws}/environments/fastai2"))
        .await
        .expect(404);
    let v1 = format!("{ws}/environments/fastai2/versions/1");
    let body = json!({ "properties": { "image": "fastdotai/fastai2:latest", "isAnonymous": false, "isArchived": false } });
    let r = env.put(&v1, body.clone()).await;
    r.expect(201);
    let p = &r.body["properties"];
    assert_eq!(p["osType"], "Linux");
    assert_eq!(p["autoRebuild"], "Disabled");
    assert_eq!(p["environmentType"], "UserCreated");
    assert_eq!(p["provisioningState"], "Succeeded");
    env.put(&v1, body.clone()).await.expect(200);
    // Tags may change; the image may not.
    let mut tagged = body.clone();
    tagged["properties"]["tags"] = json!({ "team": "ml" });
    env.put(&v1, tagged).await.expect(200);
    let mut changed = body.clone();
    changed["properties"]["image"] = json!("fastdotai/fastai2:other");
    let r = env.put(&v1, changed.clone()).await;
    assert_eq!(r.expect(409).error_code(), "Conflict");
    assert!(r.text.contains("image"), "{}", r.text);
    let c = env.get(&format!("{ws}/environments/fastai2")).await;
    assert_eq!(c.expect(200).body["properties"]["latestVersion"], "1");
    assert_eq!(c.body["properties"]["nextVersion"], "2");
    env.put(&format!("{ws}/environments/fastai2/versions/2"), changed)
        .await
        .expect(201);
    let c = env.get(&format!("{ws}/environments/fastai2")).await;
    assert_eq!(c.body["properties"]["latestVersion"], "2");
    assert_eq!(c.body["properties"]["nextVersion"], "3");
    let l = env
        .get(&format!(
            "{ws}/environments/fastai2/versions?$orderBy=createdtime%20desc&$top=1"
        ))
        .await;
    let value = l.expect(200).body["value"].as_array().unwrap().clone();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["name"], "2");
    let l = env
        .get(&format!(
            "{ws}/environments/fastai2/versions?$orderBy=createdtime%20asc"
        ))
        .await;
    assert_eq!(l.body["value"][0]["name"], "1");
}

#[tokio::test]
async fn environment_needs_an_image_or_a_build_context() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let v = format!("{ws}/environments/e/versions/1");
    let r = env.put(&v, json!({ "properties": {} })).await;
    assert_eq!(r.expect(400).error_code(), "UserError");
    let r = env
        .put(&v, json!({ "properties": { "build": { "contextUri": "https://a.blob.core.windows.net/c/x/" }, "condaFile": "name: x" } }))
        .await;
    r.expect(400);
    let r = env.put(&v, json!({ "properties": { "build": { "contextUri": "https://a.blob.core.windows.net/c/x/" } } })).await;
    assert_eq!(
        r.expect(201).body["properties"]["build"]["dockerfilePath"],
        "Dockerfile"
    );
}

#[tokio::test]
async fn bad_bodies_get_400_never_500() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let cases = [
        (
            format!("{ws}/computes/c-one"),
            json!({ "properties": { "computeType": "AmlCompute", "properties": { "vmPriority": "Sometimes" } } }),
        ),
        (
            format!("{ws}/computes/c-one"),
            json!({ "properties": { "computeType": "Abacus" } }),
        ),
        (
            format!("{ws}/computes/c-one"),
            json!({ "properties": { "computeType": "AmlCompute", "properties": { "scaleSettings": { "minNodeCount": "one" } } } }),
        ),
        (
            format!("{ws}/computes/1bad"),
            json!({ "properties": { "computeType": "AmlCompute" } }),
        ),
        (
            format!("{ws}/computes/ends-in-1"),
            json!({ "properties": { "computeType": "AmlCompute" } }),
        ),
        (
            format!("{ws}/jobs/j1"),
            json!({ "properties": { "jobType": "Command" } }),
        ),
        (
            format!("{ws}/jobs/j1"),
            json!({ "properties": { "jobType": "Command", "command": "", "environmentId": "x" } }),
        ),
        (
            format!("{ws}/jobs/j1"),
            json!({ "properties": { "jobType": "Command", "command": "python x.py", "environmentId": "x", "resources": { "shmSize": "lots" } } }),
        ),
        (
            format!("{ws}/environments/e/versions/1"),
            json!({ "properties": { "image": "x", "osType": "Solaris" } }),
        ),
        (
            format!("{ws}/datastores/d"),
            json!({ "properties": { "datastoreType": "AzureBlob" } }),
        ),
        (
            format!("{ws}/connections/conn1"),
            json!({ "properties": { "authType": "Telepathy", "category": "ContainerRegistry" } }),
        ),
        (
            format!("{ws}/codes/c/versions/1"),
            json!({ "properties": "not an object" }),
        ),
        (format!("{ws}/codes/c/versions/1"), json!([1, 2, 3])),
    ];
    for (path, body) in cases {
        let r = env.put(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        assert!(r.body["error"]["code"].is_string() && r.body["error"]["message"].is_string());
    }
    // Malformed JSON.
    let resp = env
        .http
        .put(format!(
            "{}{ws}/computes/c-one?api-version=2026-07-01",
            env.emu.endpoint()
        ))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .body("{\"properties\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
}

#[tokio::test]
async fn code_versions_are_found_by_hash_across_names() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let hash = "0378d3abf3955aabd2e272259cc06e2305f744cceab5e1e96bea073dede1d570";
    let first = "0e1f5c0a-1111-4b7c-9a44-5d7b7a5e0001";
    let up = env
        .post(
            &format!("{ws}/codes/{first}/versions/1/startPendingUpload"),
            Some(json!({ "pendingUploadType": "TemporaryBlobReference" })),
        )
        .await;
    up.expect(200);
    let blob_uri = up.body["blobReferenceForConsumption"]["blobUri"]
        .as_str()
        .unwrap()
        .to_string();
    let sas_uri = up.body["blobReferenceForConsumption"]["credential"]["sasUri"]
        .as_str()
        .unwrap();
    assert!(
        sas_uri.starts_with(&blob_uri) && sas_uri.contains("sig="),
        "{sas_uri}"
    );
    env.put(
        &format!("{ws}/codes/{first}/versions/1"),
        json!({ "properties": { "codeUri": format!("{blob_uri}/src"), "isAnonymous": true,
            "properties": { "hash_sha256": hash, "hash_version": 202208 } } }),
    )
    .await
    .expect(201);
    // The SDK asks under a fresh name; the hash search ignores the name.
    let other = "0e1f5c0a-2222-4b7c-9a44-5d7b7a5e0002";
    let found = env
        .get(&format!(
            "{ws}/codes/{other}/versions?hash={hash}&hashVersion=202208"
        ))
        .await;
    let value = found.expect(200).body["value"].as_array().unwrap().clone();
    assert_eq!(value.len(), 1);
    assert!(value[0]["id"].as_str().unwrap().contains(first));
    let none = env
        .get(&format!(
            "{ws}/codes/{other}/versions?hash=ffff&hashVersion=202208"
        ))
        .await;
    assert!(none.body["value"].as_array().unwrap().is_empty());
    let wrong_version = env
        .get(&format!(
            "{ws}/codes/{other}/versions?hash={hash}&hashVersion=1"
        ))
        .await;
    assert!(wrong_version.body["value"].as_array().unwrap().is_empty());
    // Same pendingUploadId: same container.
    let a = env
        .post(
            &format!("{ws}/codes/x/versions/1/startPendingUpload"),
            Some(json!({ "pendingUploadId": "p1" })),
        )
        .await;
    let b = env
        .post(
            &format!("{ws}/codes/x/versions/1/startPendingUpload"),
            Some(json!({ "pendingUploadId": "p1" })),
        )
        .await;
    assert_eq!(
        a.body["blobReferenceForConsumption"]["blobUri"],
        b.body["blobReferenceForConsumption"]["blobUri"]
    );
}

/// Deterministic random JSON (a tiny LCG keeps the test self-contained).
fn next(seed: &mut u64) -> u32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) as u32
}

fn random_json(seed: &mut u64, depth: u32) -> serde_json::Value {
    let words = [
        "properties",
        "computeType",
        "AmlCompute",
        "jobType",
        "Command",
        "image",
        "build",
        "scaleSettings",
        "maxNodeCount",
        "authType",
        "category",
        "datastoreType",
        "credentials",
        "",
        "x",
    ];
    match next(seed) % if depth == 0 { 4 } else { 6 } {
        0 => json!(null),
        1 => json!(next(seed).is_multiple_of(3)),
        2 => json!(next(seed) as i64 - 1_000_000_000),
        3 => json!(words[(next(seed) as usize) % words.len()]),
        4 => serde_json::Value::Array(
            (0..next(seed) % 3)
                .map(|_| random_json(seed, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..(next(seed) % 4) {
                let k = words[(next(seed) as usize) % words.len()].to_string();
                m.insert(k, random_json(seed, depth - 1));
            }
            serde_json::Value::Object(m)
        }
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_server_error() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let targets = [
        format!("{ws}/computes/fuzz-cluster"),
        format!("{ws}/connections/fuzz-conn"),
        format!("{ws}/datastores/fuzzstore"),
        format!("{ws}/codes/fuzz/versions/1"),
        format!("{ws}/environments/fuzz/versions/1"),
        format!("{ws}/jobs/fuzz-job"),
        ws.clone(),
    ];
    let mut seed = 7u64;
    for i in 0..300 {
        let target = &targets[i % targets.len()];
        let mut body = json!({ "location": "westeurope", "properties": random_json(&mut seed, 3) });
        if i.is_multiple_of(5) {
            body = random_json(&mut seed, 4);
        }
        let r = env
            .http
            .put(format!(
                "{}{target}?api-version=2026-07-01",
                env.emu.endpoint()
            ))
            .bearer_auth(&env.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().as_u16() < 500,
            "{target} {body} -> {}",
            r.status()
        );
    }
}
