//! Command jobs: defaults, status progression by explicit steps and on the virtual clock,
//! failure on request, cancel, immutability of submitted jobs.

use std::time::Duration;

use amlspec::emulator::{EmulatorConfig, SimMode, SimTimings};
use serde_json::{Value, json};

use crate::emulator::support::{Env, explicit, start};

async fn prerequisites(env: &Env) -> (String, Value) {
    let ws = env.workspace("rg", "ws1").await;
    let compute = format!("{ws}/computes/gpu-cluster");
    env.put(
        &compute,
        json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
        "properties": { "vmSize": "STANDARD_NC6", "scaleSettings": { "maxNodeCount": 2 } } } }),
    )
    .await
    .expect(201);
    let _ = env.emu.admin().complete(&compute);
    let envv = format!("{ws}/environments/fastai2/versions/1");
    env.put(
        &envv,
        json!({ "properties": { "image": "fastdotai/fastai2:latest" } }),
    )
    .await
    .expect(201);
    let job = json!({ "properties": {
        "jobType": "Command", "command": "python train.py --epochs 5",
        "environmentId": envv, "computeId": compute,
        "experimentName": "fastai-custom-image", "tags": { "a": "1" }
    }});
    (ws, job)
}

#[tokio::test]
async fn job_moves_through_statuses_when_stepped() {
    let env = start(explicit()).await;
    let (ws, job) = prerequisites(&env).await;
    let id = format!("{ws}/jobs/pets-resnet34-3fa1c2d4");
    let r = env.put(&id, job.clone()).await;
    r.expect(201);
    let p = &r.body["properties"];
    assert_eq!(p["status"], "NotStarted");
    assert_eq!(p["resources"]["instanceCount"], 1);
    assert_eq!(p["resources"]["shmSize"], "2g");
    assert_eq!(p["services"]["Studio"]["jobServiceType"], "Studio");
    let mut seen = vec![p["status"].as_str().unwrap().to_string()];
    for _ in 0..4 {
        env.emu.admin().step(&id).unwrap();
        seen.push(
            env.get(&id).await.body["properties"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        seen,
        ["NotStarted", "Queued", "Preparing", "Running", "Completed"]
    );
    assert!(env.emu.admin().step(&id).is_err());
}

#[tokio::test]
async fn job_defaults_experiment_name() {
    let env = start(explicit()).await;
    let (ws, mut job) = prerequisites(&env).await;
    job["properties"]
        .as_object_mut()
        .unwrap()
        .remove("experimentName");
    let r = env.put(&format!("{ws}/jobs/j-default"), job).await;
    assert_eq!(
        r.expect(201).body["properties"]["experimentName"],
        "Default"
    );
}

#[tokio::test]
async fn job_runs_on_the_virtual_clock_in_auto_mode() {
    let env = start(EmulatorConfig {
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::from_secs(1),
            job_phase: Duration::from_secs(10),
            job_running: Duration::from_secs(60),
            retry_after_secs: 1,
        },
        ..EmulatorConfig::default()
    })
    .await;
    let (ws, job) = prerequisites(&env).await;
    let id = format!("{ws}/jobs/auto-job");
    env.put(&id, job).await.expect(201);
    let status = |b: &Value| b["properties"]["status"].as_str().unwrap().to_string();
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(25))
        .unwrap();
    assert_eq!(status(&env.get(&id).await.body), "Preparing");
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(10))
        .unwrap();
    assert_eq!(status(&env.get(&id).await.body), "Running");
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(61))
        .unwrap();
    assert_eq!(status(&env.get(&id).await.body), "Completed");
}

/// What is not due is not looked at on every request (the scale benchmark's 3,333
/// running jobs made every read scan them all), yet an operation started while a job
/// runs for a long time is done on time, though due long before the job.
#[tokio::test]
async fn an_operation_started_while_a_job_runs_long_is_done_on_time() {
    let env = start(EmulatorConfig {
        sim_mode: SimMode::Auto,
        timings: SimTimings {
            lro: Duration::from_secs(1),
            job_phase: Duration::from_secs(10),
            job_running: Duration::from_secs(600),
            retry_after_secs: 1,
        },
        ..EmulatorConfig::default()
    })
    .await;
    let (ws, job) = prerequisites(&env).await;
    let id = format!("{ws}/jobs/long-job");
    env.put(&id, job).await.expect(201);
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(35))
        .unwrap();
    assert_eq!(env.get(&id).await.body["properties"]["status"], "Running");
    let compute = format!("{ws}/computes/cpu-later");
    env.put(
        &compute,
        json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute",
        "properties": { "vmSize": "STANDARD_DS3_V2", "scaleSettings": { "maxNodeCount": 1 } } } }),
    )
    .await
    .expect(201);
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(2))
        .unwrap();
    assert_eq!(
        env.get(&compute).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
    assert_eq!(env.get(&id).await.body["properties"]["status"], "Running");
}

#[tokio::test]
async fn jobs_fail_on_request_and_cancel() {
    let env = start(explicit()).await;
    let (ws, job) = prerequisites(&env).await;
    let a = format!("{ws}/jobs/will-fail");
    env.put(&a, job.clone()).await.expect(201);
    env.emu.admin().step(&a).unwrap();
    env.emu.admin().fail_job(&a).unwrap();
    assert_eq!(env.get(&a).await.body["properties"]["status"], "Failed");

    let b = format!("{ws}/jobs/will-cancel");
    env.put(&b, job).await.expect(201);
    let r = env.post(&format!("{b}/cancel"), None).await;
    r.expect(202);
    assert_eq!(
        env.get(&b).await.body["properties"]["status"],
        "CancelRequested"
    );
    let location = r.header("location").unwrap().to_string();
    env.get(&location).await.expect(202);
    env.emu.admin().step_all().unwrap();
    assert_eq!(env.get(&b).await.body["properties"]["status"], "Canceled");
    env.get(&location).await.expect(204);
    env.post(&format!("{b}/cancel"), None).await.expect(200);

    let r = env.delete(&b).await;
    r.expect(202);
    env.emu.admin().step_all().unwrap();
    env.get(&b).await.expect(404);
}

#[tokio::test]
async fn submitted_jobs_only_change_mutable_fields() {
    let env = start(explicit()).await;
    let (ws, job) = prerequisites(&env).await;
    let id = format!("{ws}/jobs/immutable");
    env.put(&id, job.clone()).await.expect(201);
    env.put(&id, job.clone()).await.expect(200);
    let mut tags = job.clone();
    tags["properties"]["tags"] = json!({ "b": "2" });
    tags["properties"]["description"] = json!("now described");
    let r = env.put(&id, tags).await;
    assert_eq!(
        r.expect(200).body["properties"]["tags"],
        json!({ "b": "2" })
    );
    let mut cmd = job.clone();
    cmd["properties"]["command"] = json!("python train.py --epochs 6");
    let r = env.put(&id, cmd).await;
    assert_eq!(r.expect(400).error_code(), "UserError");
    assert!(r.text.contains("command"), "{}", r.text);
    assert_eq!(
        env.get(&id).await.body["properties"]["command"],
        "python train.py --epochs 5"
    );
    // References must exist.
    let mut missing = job;
    missing["properties"]["computeId"] = json!(format!("{ws}/computes/nope"));
    assert_eq!(
        env.put(&format!("{ws}/jobs/other"), missing)
            .await
            .expect(400)
            .error_code(),
        "UserError"
    );
    // Lists filter by type and view.
    let l = env.get(&format!("{ws}/jobs?jobType=Command")).await;
    assert_eq!(l.expect(200).body["value"].as_array().unwrap().len(), 1);
}
