//! The external-Azurite blob backend: the emulator creates the workspace's datastore
//! container and pending-upload containers in a real Azurite, and the SAS URLs it signs
//! are accepted by Azurite (an independent check of the emulator's SAS signing).

use std::process::{Child, Command, Stdio};

use amlspec::emulator::{BlobBackend, EmulatorConfig};
use serde_json::json;

use crate::support::{explicit, start};

const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

struct Azurite(Child);

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_azurite(dir: &std::path::Path) -> Option<(Azurite, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--location",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) if std::env::var_os("CI").is_none() => return None,
        Err(e) => panic!("azurite-blob is required in CI (npm install -g azurite): {e}"),
    };
    // Azurite says nothing on a pipe; it is ready when its port accepts connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((Azurite(child), port));
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("Azurite exited before listening: {status}");
        }
        std::thread::yield_now();
    }
    panic!("Azurite did not listen within 60 s");
}

#[tokio::test]
async fn datastore_and_pending_uploads_live_in_azurite() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_azurite, port)) = spawn_azurite(dir.path()) else {
        eprintln!("skipped: azurite-blob is not installed (npm install -g azurite)");
        return;
    };
    let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
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

    let up = env
        .post(
            &format!("{ws}/codes/c1/versions/1/startPendingUpload"),
            Some(json!({})),
        )
        .await;
    let sas_uri = up.body["blobReferenceForConsumption"]["credential"]["sasUri"]
        .as_str()
        .unwrap()
        .to_string();
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
