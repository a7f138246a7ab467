//! The client's blob uploads (snapshots, build contexts) against the emulator's blob
//! service and against a real Azurite: SAS and SharedKey, small files and blocks,
//! content already there, the completion marker, wrong keys.

use std::path::Path;

use amlspec::azure::blob::{BlobAuth, BlobClient, BlobError, Container};
use amlspec::azure::client::ClientSettings;
use amlspec::emulator::BlobBackend;
use amlspec::snapshot::snapshot;
use amlspec::spec::secret::Secret;
use serde_json::json;

use crate::cli::azure::Local;
use crate::cli::azurite_support::{self, AZURITE_KEY};

/// A SAS container from `startPendingUpload`, and the workspace's datastore with its key.
async fn containers(
    azure: &Local,
    ws: &str,
    blob_base: impl Fn(&str) -> String,
) -> (Container, Container) {
    let pending = azure
        .post_json(
            &format!("{ws}/codes/probe/versions/1/startPendingUpload"),
            json!({"pendingUploadType": "TemporaryBlobReference"}),
        )
        .await;
    let sas = pending["blobReferenceForConsumption"]["credential"]["sasUri"]
        .as_str()
        .unwrap();
    let sas = Container::from_sas_url(sas).unwrap();
    let store = azure
        .get_json(&format!("{ws}/datastores/workspaceblobstore"))
        .await;
    let account = store["properties"]["accountName"]
        .as_str()
        .unwrap()
        .to_string();
    let container = store["properties"]["containerName"].as_str().unwrap();
    let secrets = azure
        .post_json(
            &format!("{ws}/datastores/workspaceblobstore/listSecrets"),
            json!({}),
        )
        .await;
    let key = Secret::new(secrets["key"].as_str().unwrap().to_string());
    let url = url::Url::parse(&format!("{}/{container}", blob_base(&account))).unwrap();
    (
        sas,
        Container {
            url,
            auth: BlobAuth::SharedKey { account, key },
        },
    )
}

fn folder_with_a_large_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ubuntu:22.04\nCOPY weights.bin /w\n",
    )
    .unwrap();
    let weights: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.path().join("weights.bin"), weights).unwrap();
    dir
}

async fn upload_and_read_back(client: &BlobClient, prefix: &str, folder: &Path) {
    let snap = snapshot(folder).unwrap();
    let report = client
        .upload_folder(prefix, &snap, &[("name", "probe"), ("version", "1")])
        .await
        .unwrap();
    assert_eq!(
        (report.files, report.uploaded, report.skipped),
        (snap.files.len(), snap.files.len(), false)
    );
    for file in &snap.files {
        let stored = client
            .get(&format!("{prefix}/{}", file.relative))
            .await
            .unwrap()
            .expect("uploaded");
        assert_eq!(
            stored,
            std::fs::read(&file.path).unwrap(),
            "{}",
            file.relative
        );
    }
    let indicator = client
        .metadata(&format!("{prefix}/{}", snap.files[0].relative))
        .await
        .unwrap()
        .unwrap();
    assert!(
        indicator.contains(&("upload_status".into(), "completed".into())),
        "{indicator:?}"
    );
    // The same content again: the marker says there is nothing to do.
    let again = client.upload_folder(prefix, &snap, &[]).await.unwrap();
    assert!(again.skipped && again.uploaded == 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_to_the_emulator_with_sas_and_shared_key() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let ws = desired.workspaces[0].id.to_string();
    let suffix = azure.emulator.storage_suffix();
    let (sas, shared_key) = containers(&azure, &ws, |account| {
        format!("https://{account}.blob.{suffix}")
    })
    .await;
    let http = azure.emulator.reqwest_client_builder().build().unwrap();

    upload_and_read_back(
        &BlobClient::new(http.clone(), sas, ClientSettings::default()),
        "fastai-example",
        &azure_root().join("specs/fastai-example"),
    )
    .await;
    let large = folder_with_a_large_file();
    upload_and_read_back(
        &BlobClient::new(http.clone(), shared_key.clone(), ClientSettings::default()),
        "LocalUpload/abc/context",
        large.path(),
    )
    .await;

    // A file already there is kept (If-None-Match: *), not an error.
    let client = BlobClient::new(http.clone(), shared_key.clone(), ClientSettings::default());
    assert!(
        !client
            .put_blob("LocalUpload/abc/context/Dockerfile", b"other".to_vec())
            .await
            .unwrap()
    );

    // A wrong key is refused by the service, and the message says so.
    let BlobAuth::SharedKey { account, .. } = &shared_key.auth else {
        unreachable!()
    };
    let wrong = Container {
        url: shared_key.url.clone(),
        auth: BlobAuth::SharedKey {
            account: account.clone(),
            key: Secret::new("d3Jvbmcta2V5".into()),
        },
    };
    let error = BlobClient::new(http, wrong, ClientSettings::default())
        .put_blob("x.txt", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BlobError::Status { status: 403, code, .. } if code == "AuthenticationFailed"),
        "{error}"
    );
}

fn azure_root() -> std::path::PathBuf {
    crate::cli::common::repo_root()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs azurite-blob (npm install -g azurite@3.35.0); .ci/run runs it with `cargo test -- --ignored azurite`"]
async fn uploads_to_azurite_with_sas_and_shared_key() {
    let dir = tempfile::tempdir().unwrap();
    let azurite = azurite_support::start(dir.path(), "the client's blob uploads against Azurite");
    let endpoint = azurite.account_url();
    let mut config = crate::cli::azure::config();
    config.blob_backend = BlobBackend::Azurite {
        endpoint: endpoint.clone(),
        account: "devstoreaccount1".into(),
        key: AZURITE_KEY.into(),
    };
    let azure = Local::start_with(config).await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let ws = desired.workspaces[0].id.to_string();
    let (sas, shared_key) = containers(&azure, &ws, |_| endpoint.clone()).await;
    assert!(
        sas.url.as_str().starts_with(&endpoint),
        "the emulator hands out Azurite SAS URLs: {}",
        sas.url
    );
    let http =
        amlspec::azure::http_client(amlspec::azure::Trust::System, &ClientSettings::default())
            .unwrap();

    upload_and_read_back(
        &BlobClient::new(http.clone(), sas, ClientSettings::default()),
        "fastai-example",
        &azure_root().join("specs/fastai-example"),
    )
    .await;
    let large = folder_with_a_large_file();
    upload_and_read_back(
        &BlobClient::new(http.clone(), shared_key.clone(), ClientSettings::default()),
        "LocalUpload/abc/context",
        large.path(),
    )
    .await;
    let client = BlobClient::new(http, shared_key, ClientSettings::default());
    assert!(
        !client
            .put_blob("LocalUpload/abc/context/Dockerfile", b"other".to_vec())
            .await
            .unwrap()
    );
}

/// A `Sleep` that returns at once and remembers what it was asked to wait.
fn recording_sleep() -> (
    amlspec::azure::client::Sleep,
    std::sync::Arc<std::sync::Mutex<Vec<std::time::Duration>>>,
) {
    let slept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = slept.clone();
    let sleep: amlspec::azure::client::Sleep = std::sync::Arc::new(move |duration| {
        record.lock().unwrap().push(duration);
        Box::pin(async {})
    });
    (sleep, slept)
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_requests_are_retried_like_arm_requests() {
    use amlspec::azure::client::RetryPolicy;
    use amlspec::emulator::{Fault, FaultRule, FaultTarget};
    use std::time::Duration;

    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let ws = desired.workspaces[0].id.to_string();
    let suffix = azure.emulator.storage_suffix();
    let (sas, _) = containers(&azure, &ws, |account| {
        format!("https://{account}.blob.{suffix}")
    })
    .await;
    let http = azure.emulator.reqwest_client_builder().build().unwrap();
    let (sleep, slept) = recording_sleep();
    let settings = |max_attempts| ClientSettings {
        sleep: sleep.clone(),
        retry: RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        },
        ..ClientSettings::default()
    };

    // Busy (503 ServerBusy with Retry-After), an internal error, a dropped connection:
    // each tried again, and the upload completes.
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 7,
            })
            .times(1)
            .on(FaultTarget::Blob),
            FaultRule::always(Fault::ServerError { status: 500 })
                .times(1)
                .on(FaultTarget::Blob),
            FaultRule::always(Fault::DropConnection)
                .times(1)
                .on(FaultTarget::Blob),
        ],
        None,
    );
    let client = BlobClient::new(http.clone(), sas.clone(), settings(6));
    upload_and_read_back(
        &client,
        "fastai-example",
        &azure_root().join("specs/fastai-example"),
    )
    .await;
    assert!(
        azure.emulator.admin().faults().is_empty(),
        "every fault hit"
    );
    assert!(
        slept.lock().unwrap().contains(&Duration::from_secs(7)),
        "ServerBusy waits its Retry-After: {:?}",
        slept.lock().unwrap()
    );

    // A service that keeps failing: the last answer, after the policy's tries.
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 500 }).on(FaultTarget::Blob)],
        None,
    );
    let client = BlobClient::new(http, sas, settings(3));
    let error = client.put_blob("x.txt", b"x".to_vec()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, BlobError::Status { status: 500, attempts: 3, code, .. } if code == "InternalError"),
        "{message}"
    );
    assert!(
        message.starts_with(
            "failed to upload x.txt: HTTP 500 InternalError: The server encountered an internal error. (emulated fault) (x-ms-request-id: "
        ) && message.ends_with(" (after 3 tries)"),
        "{message}"
    );
}
