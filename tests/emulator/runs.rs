//! Run history, as Azure ML's clients follow a job: the workspace's discovery document,
//! run details through the phases, the job's log read incrementally with Range requests,
//! a failed job's error, a throttled log endpoint, and the azure-ai-ml `jobs.stream` probe.

use std::time::Duration;

use amlspec::emulator::{EmulatorConfig, Fault, FaultRule, FaultTarget, SimMode, SimTimings};
use serde_json::{Value, json};

use crate::emulator::support::{Env, explicit, start};

const STD_LOG: &str = "user_logs/std_log.txt";

async fn submit(env: &Env, job: &str, command: &str) -> (String, String) {
    let ws = env.workspace("rg", "ws1").await;
    let envv = format!("{ws}/environments/base/versions/1");
    env.put(&envv, json!({ "properties": { "image": "python:3.12" } }))
        .await;
    let id = format!("{ws}/jobs/{job}");
    env.put(
        &id,
        json!({ "properties": { "jobType": "Command", "command": command, "environmentId": envv } }),
    )
    .await
    .expect(201);
    (ws, id)
}

/// A run-history GET with the test's token (run history is not in the ARM OpenAPI
/// document the ARM helpers check answers against): status, text, JSON.
async fn history(env: &Env, path: &str) -> (u16, String, Value) {
    let url = format!("{}/history/v1.0{path}", env.emu.endpoint());
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, body)
}

/// `GET {history}/history/v1.0{ws}/runs/{job}/details`.
async fn details(env: &Env, ws: &str, job: &str) -> Value {
    let (status, text, body) = history(env, &format!("{ws}/runs/{job}/details")).await;
    assert_eq!(status, 200, "{text}");
    body
}

/// GETs a log URL, with a Range header when `from` is given; returns status, body, headers.
async fn read_log(
    env: &Env,
    url: &str,
    range: Option<(&str, String)>,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = env.http.get(url);
    if let Some((name, value)) = range {
        req = req.header(name, value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap(), headers)
}

fn log_url(d: &Value) -> String {
    d["logFiles"][STD_LOG]
        .as_str()
        .unwrap_or_else(|| panic!("no {STD_LOG} in {d}"))
        .to_string()
}

#[tokio::test]
async fn discovery_document_points_at_the_emulator() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let url = env.get(&ws).await.body["properties"]["discoveryUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(url, format!("{}/discovery", env.emu.endpoint()));
    // Anonymous, as azure-ai-ml fetches it with a plain requests pipeline.
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    for key in ["api", "history", "experimentation"] {
        assert_eq!(doc[key], env.emu.endpoint(), "{key} in {doc}");
    }
    let resp = env.http.post(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn run_details_follow_the_phases_and_the_log_grows() {
    let env = start(explicit()).await;
    let (ws, id) = submit(&env, "j-logs", "python train.py --epochs 3").await;
    let d = details(&env, &ws, "j-logs").await;
    assert_eq!(d["runId"], "j-logs");
    assert_eq!(d["status"], "NotStarted");
    assert_eq!(d["logFiles"], json!({}));
    assert_eq!(d["startTimeUtc"], Value::Null);
    assert_eq!(d["warnings"], json!([]));
    assert_eq!(d["error"], Value::Null);
    let expected = [
        ("Queued", vec!["[amlspec-emulator] job j-logs: Queued"]),
        (
            "Preparing",
            vec!["[amlspec-emulator] job j-logs: Preparing: image pulled, code snapshot mounted"],
        ),
        (
            "Running",
            vec![
                "[amlspec-emulator] job j-logs: Running",
                "[amlspec-emulator] $ python train.py --epochs 3",
                "epoch 1/3 loss=0.900",
            ],
        ),
        (
            "Completed",
            vec![
                "epoch 2/3 loss=0.600",
                "epoch 3/3 loss=0.300",
                "[amlspec-emulator] job j-logs: Completed",
            ],
        ),
    ];
    let mut offset = 0usize;
    let mut whole = String::new();
    for (i, (status, lines)) in expected.iter().enumerate() {
        env.emu.admin().step(&id).unwrap();
        let d = details(&env, &ws, "j-logs").await;
        assert_eq!(d["status"], *status);
        let url = log_url(&d);
        assert!(url.contains("sr=b") && url.contains("sp=r"), "{url}");
        // Only the new bytes, alternating the two header names Azure Blob accepts.
        let name = if i % 2 == 0 { "x-ms-range" } else { "range" };
        let (code, text, headers) =
            read_log(&env, &url, Some((name, format!("bytes={offset}-")))).await;
        assert_eq!(code, 206, "{text}");
        let want: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(text, want);
        let total = offset + text.len();
        assert_eq!(
            headers["content-range"],
            format!("bytes {offset}-{}/{total}", total - 1).as_str()
        );
        offset = total;
        whole.push_str(&text);
        // Nothing new yet: 416, as Azure Blob answers a range past the end.
        let (code, _, headers) =
            read_log(&env, &url, Some(("x-ms-range", format!("bytes={offset}-")))).await;
        assert_eq!(code, 416);
        assert_eq!(headers["x-ms-error-code"], "InvalidRange");
        match *status {
            "Queued" | "Preparing" => assert_eq!(d["startTimeUtc"], Value::Null),
            _ => assert!(d["startTimeUtc"].is_string(), "{d}"),
        }
        assert_eq!(d["endTimeUtc"].is_string(), *status == "Completed", "{d}");
    }
    // A whole read gives everything; the SAS reads nothing else.
    let url = log_url(&details(&env, &ws, "j-logs").await);
    let (code, text, _) = read_log(&env, &url, None).await;
    assert_eq!((code, text), (200, whole));
    let (code, _, _) = read_log(&env, &url.replace("std_log.txt", "other.txt"), None).await;
    assert_eq!(code, 403);
    let (code, _, _) = read_log(&env, url.split('?').next().unwrap(), None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn failed_job_has_its_error_in_details_and_log() {
    let env = start(explicit()).await;
    let (ws, id) = submit(&env, "j-fail", "python train.py").await;
    env.emu.admin().step(&id).unwrap();
    env.emu.admin().step(&id).unwrap();
    env.emu.admin().fail_job(&id).unwrap();
    let d = details(&env, &ws, "j-fail").await;
    assert_eq!(d["status"], "Failed");
    let message = "Execution failed. User process exited with status code 1 (the emulator failed job 'j-fail' on request).";
    assert_eq!(d["error"]["error"]["code"], "UserError");
    assert_eq!(d["error"]["error"]["message"], message);
    assert!(d["endTimeUtc"].is_string());
    let (code, text, _) = read_log(&env, &log_url(&d), None).await;
    assert_eq!(code, 200);
    assert_eq!(
        text.lines().last().unwrap(),
        format!("[amlspec-emulator] job j-fail: Failed: {message}")
    );
    assert!(!text.contains("Running"), "{text}");
}

#[tokio::test]
async fn canceled_job_logs_the_cancel() {
    let env = start(explicit()).await;
    let (ws, id) = submit(&env, "j-cancel", "python train.py").await;
    env.emu.admin().step(&id).unwrap();
    env.post(&format!("{id}/cancel"), None).await.expect(202);
    assert_eq!(
        details(&env, &ws, "j-cancel").await["status"],
        "CancelRequested"
    );
    env.emu.admin().step_all().unwrap();
    let d = details(&env, &ws, "j-cancel").await;
    assert_eq!(d["status"], "Canceled");
    let (_, text, _) = read_log(&env, &log_url(&d), None).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "[amlspec-emulator] job j-cancel: Queued",
            "[amlspec-emulator] job j-cancel: CancelRequested",
            "[amlspec-emulator] job j-cancel: Canceled",
        ]
    );
}

#[tokio::test]
async fn logs_advance_on_the_virtual_clock_in_auto_mode() {
    let env = start(EmulatorConfig {
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::ZERO,
            job_phase: Duration::from_secs(10),
            job_running: Duration::from_secs(30),
            ..SimTimings::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let (ws, _) = submit(&env, "j-auto", "python train.py").await;
    assert_eq!(details(&env, &ws, "j-auto").await["status"], "NotStarted");
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(30))
        .unwrap();
    let d = details(&env, &ws, "j-auto").await;
    assert_eq!(d["status"], "Running");
    let (_, text, _) = read_log(&env, &log_url(&d), None).await;
    assert_eq!(text.lines().last(), Some("epoch 1/3 loss=0.900"));
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(30))
        .unwrap();
    let d = details(&env, &ws, "j-auto").await;
    assert_eq!(d["status"], "Completed");
    let (_, text, _) = read_log(&env, &log_url(&d), None).await;
    assert_eq!(
        text.lines().last(),
        Some("[amlspec-emulator] job j-auto: Completed")
    );
}

#[tokio::test]
async fn throttled_log_endpoint_leaves_run_details_served() {
    let env = start(explicit()).await;
    let (ws, id) = submit(&env, "j-busy", "python train.py").await;
    env.emu.admin().step(&id).unwrap();
    let url = log_url(&details(&env, &ws, "j-busy").await);
    env.emu.admin().add_fault(
        FaultRule::always(Fault::Throttle {
            retry_after_secs: 2,
        })
        .on(FaultTarget::Blob)
        .path_contains("/dcid.j-busy/")
        .times(2),
    );
    for _ in 0..2 {
        let (code, text, headers) = read_log(&env, &url, None).await;
        assert_eq!(code, 503, "{text}");
        assert_eq!(headers["x-ms-error-code"], "ServerBusy");
        assert_eq!(headers["retry-after"], "2");
        // Status keeps being served while the log endpoint is busy.
        assert_eq!(details(&env, &ws, "j-busy").await["status"], "Queued");
    }
    let (code, text, _) = read_log(&env, &url, None).await;
    assert_eq!(
        (code, text.as_str()),
        (200, "[amlspec-emulator] job j-busy: Queued\n")
    );
}

#[tokio::test]
async fn run_history_checks_token_scope_and_run() {
    let env = start(explicit()).await;
    let (ws, _) = submit(&env, "j-auth", "python train.py").await;
    let url = format!(
        "{}/history/v1.0{ws}/runs/j-auth/details",
        env.emu.endpoint()
    );
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let (status, text, _) = history(&env, &format!("{ws}/runs/nope/details")).await;
    assert_eq!(status, 404);
    assert!(text.contains("Run nope was not found"), "{text}");
    // The run itself (no log files) answers too.
    let (status, _, run) = history(&env, &format!("{ws}/runs/j-auth")).await;
    assert_eq!(status, 200);
    assert_eq!(run["runId"], "j-auth");
    assert!(run.get("logFiles").is_none());
    let (status, _, _) = history(&env, &format!("{ws}/runs/j-auth/metrics")).await;
    assert_eq!(status, 404);
    let other_sub = ws.replace(
        &env.sub(),
        "/subscriptions/99999999-9999-9999-9999-999999999999",
    );
    let (status, text, _) = history(&env, &format!("{other_sub}/runs/j-auth/details")).await;
    assert_eq!(status, 404);
    assert!(text.contains("SubscriptionNotFound"), "{text}");
}

/// azure-ai-ml's own `jobs.stream` against the in-process emulator (tests/emulator/python/
/// stream_probe.py). Needs python3 with azure-ai-ml (AMLSPEC_PYTHON names another
/// interpreter, e.g. a venv's): `cargo test --test integration azure_ai_ml -- --ignored`.
#[tokio::test]
#[ignore = "needs python3 with azure-ai-ml"]
async fn azure_ai_ml_jobs_stream_prints_the_emulator_log() {
    let python = std::env::var("AMLSPEC_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let has_sdk = tokio::process::Command::new(&python)
        .args(["-c", "import azure.ai.ml, azure.identity"])
        .status()
        .await
        .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "`{python}` cannot import azure.ai.ml and azure.identity: pip install azure-ai-ml==1.35.2 azure-identity (or set AMLSPEC_PYTHON)"
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let emu = amlspec::emulator::Emulator::start(EmulatorConfig {
        tls: amlspec::emulator::TlsConfig::SelfSigned {
            write_ca_to: Some(ca.clone()),
        },
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::ZERO,
            job_phase: Duration::from_secs(1),
            job_running: Duration::from_secs(6),
            ..SimTimings::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/emulator/python/stream_probe.py"
    );
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(emu.addr().port().to_string())
        .arg(&ca)
        .env("AMLSPEC_ADMIN_KEY", emu.admin_key())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("STREAM OK"),
        "stream_probe.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // What jobs.stream printed is exactly the emulator's log, line for line.
    let printed: Vec<&str> = stdout
        .split("--- jobs.stream(stream-ok) printed ---")
        .nth(1)
        .and_then(|s| s.split("Execution Summary").next())
        .unwrap()
        .lines()
        .skip_while(|l| !l.starts_with("====="))
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    let mut expected = Vec::new();
    for status in ["Queued", "Preparing", "Running", "Completed"] {
        expected.extend(amlspec_log_lines(
            "stream-ok",
            "python train.py --epochs 3",
            status,
        ));
    }
    assert_eq!(printed, expected);
    assert!(!stdout.contains(emu.admin_key()) && !stderr.contains(emu.admin_key()));
}

/// The lines the emulator's jobs write per status (see src/emulator/runs.rs), spelled out
/// here so a change there shows up as a failing test.
fn amlspec_log_lines(name: &str, command: &str, status: &str) -> Vec<String> {
    let phase = |what: &str| format!("[amlspec-emulator] job {name}: {what}");
    match status {
        "Queued" => vec![phase("Queued")],
        "Preparing" => vec![phase("Preparing: image pulled, code snapshot mounted")],
        "Running" => vec![
            phase("Running"),
            format!("[amlspec-emulator] $ {command}"),
            "epoch 1/3 loss=0.900".to_string(),
        ],
        _ => vec![
            "epoch 2/3 loss=0.600".to_string(),
            "epoch 3/3 loss=0.300".to_string(),
            phase("Completed"),
        ],
    }
}

/// azure-ai-ml's own flows against the in-process emulator, every one the probe knows
/// (tests/emulator/python/azure_ai_ml_probe.py): sign-in, workspace, compute LRO,
/// environments from an image and from build contexts (and a changed one), a registry
/// connection, a job submitted twice with its code uploaded once, run to Completed.
/// Needs python3 with azure-ai-ml (AMLSPEC_PYTHON names another interpreter):
/// `cargo test --test integration azure_ai_ml -- --ignored`.
#[tokio::test]
#[ignore = "needs python3 with azure-ai-ml"]
async fn azure_ai_ml_probe_drives_every_flow() {
    let python = std::env::var("AMLSPEC_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let emu = amlspec::emulator::Emulator::start(EmulatorConfig {
        tls: amlspec::emulator::TlsConfig::SelfSigned {
            write_ca_to: Some(ca.clone()),
        },
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::from_secs(1),
            job_phase: Duration::from_millis(500),
            job_running: Duration::from_secs(1),
            ..SimTimings::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/emulator/python/azure_ai_ml_probe.py"
    );
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(emu.addr().port().to_string())
        .arg(&ca)
        .arg(dir.path().join("work"))
        .output()
        .await
        .unwrap_or_else(|e| panic!("`{python}` runs (pip install azure-ai-ml==1.35.2): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ALL OK"),
        "azure_ai_ml_probe.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The second build of the same context and the second job reused what was there.
    assert!(
        stdout.contains("env build changed fastai2-build 2"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("job final") && l.to_ascii_lowercase().contains("completed")),
        "{stdout}"
    );
}
