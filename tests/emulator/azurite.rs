//! The external-Azurite blob backend: the emulator creates the workspace's datastore
//! container and pending-upload containers in a real Azurite, and the SAS URLs it signs
//! are accepted by Azurite (an independent check of the emulator's SAS signing).

use amlspec::emulator::{BlobBackend, EmulatorConfig};
use serde_json::json;

use crate::emulator::azurite_support::{self, AZURITE_KEY};
use crate::emulator::support::{explicit, start};

#[tokio::test]
#[ignore = "needs azurite-blob (npm install -g azurite@3.35.0); .ci/run runs it with `cargo test -- --ignored azurite`"]
async fn datastore_and_pending_uploads_live_in_azurite() {
    let dir = tempfile::tempdir().unwrap();
    let azurite = azurite_support::start(dir.path(), "the emulator's Azurite backend");
    let endpoint = azurite.account_url();
    let env = start(EmulatorConfig {
        blob_backend: BlobBackend::Azurite {
            endpoint: endpoint.clone(),
            account: "devstoreaccount1".into(),
            key: AZURITE_KEY.into(),
        },
        ..explicit()
    })
    .await;
    let ws = env.workspace("rg", "ws1").await;
    let ds = env
        .get(&format!("{ws}/datastores/workspaceblobstore"))
        .await;
    assert_eq!(ds.body["properties"]["accountName"], "devstoreaccount1");
    let secrets = env
        .post(
            &format!("{ws}/datastores/workspaceblobstore/listSecrets"),
            None,
        )
        .await;
    assert_eq!(secrets.body["key"], AZURITE_KEY);

    let sas_uri = env.code_upload_sas(&ws, "c1", json!({})).await;
    assert!(sas_uri.starts_with(&endpoint), "{sas_uri}");
    let (container, sas) = sas_uri.split_once('?').unwrap();
    let r = env
        .http
        .put(format!("{container}/src/train.py?{sas}"))
        .header("x-ms-blob-type", "BlockBlob")
        .header("if-none-match", "*")
        .body("print('hello')\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let body = env
        .http
        .get(format!("{container}/src/train.py?{sas}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "print('hello')\n");
    // The datastore's container exists in Azurite: an anonymous request is refused as
    // unauthorized (a missing container would answer 404).
    let ds_container = ds.body["properties"]["containerName"].as_str().unwrap();
    let r = env
        .http
        .get(format!("{endpoint}/{ds_container}?restype=container"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 404, "datastore container missing in Azurite");
}
