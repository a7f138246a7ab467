//! Durable state: the real binary is killed with SIGKILL (mid-stream of writes) and
//! restarted on the same --state folder; every acknowledged write is still there.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use amlspec::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

use crate::emulator::support::{API, explicit, start, token_for};

struct Proc {
    child: Child,
    base: String,
}

fn spawn(state: &Path) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_amlspec"))
        .args([
            "emulator",
            "--port",
            "0",
            "--sim",
            "explicit",
            "--plain-http",
            "--state",
        ])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("arm="))
        .unwrap_or_else(|| panic!("no ready line: {line:?}"))
        .to_string();
    Proc { child, base }
}

async fn token(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!(
            "{base}/{}/oauth2/v2.0/token",
            amlspec::emulator::DEFAULT_TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", amlspec::emulator::DEFAULT_CLIENT_ID),
            ("client_secret", amlspec::emulator::DEFAULT_CLIENT_SECRET),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn kill_dash_nine_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut p = spawn(dir.path());
    let tok = token(&http, &p.base).await;
    let sub = format!(
        "/subscriptions/{}",
        amlspec::emulator::DEFAULT_SUBSCRIPTION_ID
    );

    // Writers run until the process dies; every 201 is an acknowledged write.
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (http, base, tok, sub) = (http.clone(), p.base.clone(), tok.clone(), sub.clone());
        let ack_tx = ack_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10_000 {
                let name = format!("rg-{w}-{i}");
                let r = http
                    .put(format!(
                        "{base}{sub}/resourcegroups/{name}?api-version=2021-04-01"
                    ))
                    .bearer_auth(&tok)
                    .json(&json!({ "location": "westeurope", "tags": { "i": i.to_string() } }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        acked.push(name);
                        let _ = ack_tx.send(());
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    // Kill once enough writes have been acknowledged (waiting on the acks, no sleeping).
    drop(ack_tx);
    for _ in 0..60 {
        ack_rx
            .recv()
            .await
            .expect("writers stopped before 60 acknowledged writes");
    }
    p.child.kill().unwrap(); // SIGKILL
    p.child.wait().unwrap();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() >= 40,
        "only {} writes acknowledged",
        acked.len()
    );

    let mut p = spawn(dir.path());
    // The signing key is persisted too: the old token still works.
    for name in &acked {
        let r = http
            .get(format!(
                "{}{sub}/resourcegroups/{name}?api-version=2021-04-01",
                p.base
            ))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {name} lost");
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

#[tokio::test]
async fn in_process_restart_keeps_resources_blobs_and_operations() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..explicit()
    };
    let env = start(config.clone()).await;
    let ws = env.workspace("rg", "ws1").await;
    let compute = format!("{ws}/computes/gpu-cluster");
    let r = env.put(&compute, json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute", "properties": { "scaleSettings": { "maxNodeCount": 3 } } } })).await;
    let status_url = r.header("azure-asyncoperation").unwrap().to_string();
    let sas_uri = env.code_upload_sas(&ws, "c", json!({})).await;
    let (container, sas) = sas_uri.split_once('?').unwrap();
    let blob = format!("{container}/src/train.py?{sas}");
    let r = env
        .http
        .put(&blob)
        .header("x-ms-blob-type", "BlockBlob")
        .body("print(1)\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    env.emu.shutdown().await;

    let emu = Emulator::start(EmulatorConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let tok = token_for(&http, &emu, "https://management.azure.com/.default").await;
    let get = |path: String| {
        let (http, tok) = (http.clone(), tok.clone());
        async move { http.get(path).bearer_auth(tok).send().await.unwrap() }
    };
    let c: Value = get(format!("{}{compute}?api-version={API}", emu.endpoint()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["properties"]["provisioningState"], "Creating");
    emu.admin().step(&compute).unwrap();
    let port = emu.addr().port();
    let status_url = status_url.replacen(
        &status_url[..status_url.find("/subscriptions").unwrap()],
        &format!("http://127.0.0.1:{port}"),
        1,
    );
    let s: Value = get(status_url).await.json().await.unwrap();
    assert_eq!(s["status"], "Succeeded");
    let blob = blob.replacen(
        &blob[..blob[8..].find('/').unwrap() + 8],
        &format!("http://127.0.0.1:{port}"),
        1,
    );
    let body = http.get(&blob).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "print(1)\n");
    emu.shutdown().await;
}

#[test]
fn cli_refuses_non_loopback_addresses() {
    let out = Command::new(env!("CARGO_BIN_EXE_amlspec"))
        .args(["emulator", "--bind", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
