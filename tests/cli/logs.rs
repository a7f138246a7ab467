//! Following jobs with their output (`apply --wait`, `amlspec logs`): the lines each job
//! writes, attributed when several run, a failed job's error, a log endpoint in
//! trouble, and reattaching after Ctrl-C.

use std::time::Duration;

use amlspec::emulator::{EmulatorConfig, Fault, FaultRule, FaultTarget, SimTimings};

use crate::cli::azure::{Local, config, load, wait_until};

const PETS: &str = "specs/pets.yaml";
const ENVIRONMENTS: &str = "specs/environments.yaml";

/// The lines the emulator's job `name` writes when it runs `command` to completion.
fn completed_log(name: &str, command: &str) -> Vec<String> {
    vec![
        format!("[amlspec-emulator] job {name}: Queued"),
        format!("[amlspec-emulator] job {name}: Preparing: image pulled, code snapshot mounted"),
        format!("[amlspec-emulator] job {name}: Running"),
        format!("[amlspec-emulator] $ {command}"),
        "epoch 1/3 loss=0.900".to_string(),
        "epoch 2/3 loss=0.600".to_string(),
        "epoch 3/3 loss=0.300".to_string(),
        format!("[amlspec-emulator] job {name}: Completed"),
    ]
}

/// Jobs that stay running until the test moves them on (no clock to wait on for the
/// rest).
fn slow_jobs() -> EmulatorConfig {
    EmulatorConfig {
        timings: SimTimings {
            lro: Duration::ZERO,
            job_phase: Duration::from_secs(3600),
            job_running: Duration::from_secs(3600),
            retry_after_secs: 0,
        },
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_wait_shows_each_jobs_output_attributed_then_its_summary() {
    let azure = Local::start().await;
    let out = azure
        .run(&["apply", "--auto-approve", "--wait", PETS, ENVIRONMENTS])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let desired = load(&[PETS, ENVIRONMENTS]);
    let jobs: Vec<_> = desired.workspaces.iter().flat_map(|w| &w.jobs).collect();
    assert_eq!(jobs.len(), 3, "three jobs run at once");
    for job in &jobs {
        let prefix = format!("[{}] ", job.name);
        let shown: Vec<&str> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(
            shown,
            completed_log(&job.name, &job.command),
            "{}",
            out.stderr
        );
        // Its last line comes before its final status, and the report says how it ended.
        let last = out
            .stderr
            .find(&format!(
                "{prefix}[amlspec-emulator] job {}: Completed",
                job.name
            ))
            .unwrap();
        let status = out
            .stderr
            .find(&format!("job {}: Completed (https://", job.name))
            .unwrap();
        assert!(last < status, "{}", out.stderr);
        assert!(
            out.stdout
                .contains(&format!("  job {}: Completed after ", job.name)),
            "{}",
            out.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_shows_a_jobs_output_by_either_name_and_refuses_an_unknown_one() {
    let azure = Local::start().await;
    assert_eq!(azure.run(&["apply", "--auto-approve", PETS]).await.code, 0);
    let job = &load(&[PETS]).workspaces[0].jobs[0];
    let expected: String = completed_log(&job.name, &job.command)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    for name in [job.base_name.as_str(), job.name.as_str()] {
        let out = azure.run(&["logs", name, PETS]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, expected, "the job's output, as written");
        assert!(
            out.stderr
                .starts_with(&format!("job {}: Completed after ", job.name)),
            "{}",
            out.stderr
        );
        // Following a job that has ended shows the same and returns at once.
        let out = azure.run(&["logs", "--follow", name, PETS]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, expected);
    }
    let out = azure.run(&["logs", "pets-resnet", PETS]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "no job `pets-resnet` in the specs; they declare: {} (submitted as {})",
            job.base_name, job.name
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_shows_its_last_line_and_error_and_exits_1() {
    let azure = Local::start_with(slow_jobs()).await;
    assert_eq!(azure.run(&["apply", "--auto-approve", PETS]).await.code, 0);
    let job = &load(&[PETS]).workspaces[0].jobs[0];
    azure.emulator.admin().step(job.id.as_str()).unwrap();
    // Not ended: a look shows what was written so far, exit 0.
    let out = azure.run(&["logs", &job.base_name, PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("[amlspec-emulator] job {}: Queued\n", job.name)
    );
    azure.emulator.admin().fail_job(job.id.as_str()).unwrap();
    let out = azure.run(&["logs", "--follow", &job.base_name, PETS]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.ends_with(&format!(
            "[amlspec-emulator] job {}: Failed: Execution failed. User process exited with status code 1 (the emulator failed job '{}' on request).\n",
            job.name, job.name
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!(
            "job {}: Failed (https://ml.azure.com/runs/{}",
            job.name, job.name
        )) && out.stderr.contains(": UserError: Execution failed."),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_log_endpoint_is_said_once_and_the_status_still_followed() {
    let azure = Local::start().await;
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 1,
            })
            .on(FaultTarget::Blob)
            .path_contains("user_logs"),
        ],
        None,
    );
    let out = azure
        .run(&["apply", "--auto-approve", "--wait", ENVIRONMENTS])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for job in &load(&[ENVIRONMENTS]).workspaces[0].jobs {
        let said = format!("job {}: its output cannot be shown (", job.name);
        assert_eq!(out.stderr.matches(&said).count(), 1, "{}", out.stderr);
        assert!(
            out.stdout
                .contains(&format!("  job {}: Completed", job.name))
        );
    }
    assert!(!out.stderr.contains("sig="), "no SAS in the message");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_following_not_the_job_and_says_how_to_reattach() {
    let azure = Local::start_with(slow_jobs()).await;
    assert_eq!(azure.run(&["apply", "--auto-approve", PETS]).await.code, 0);
    let job = &load(&[PETS]).workspaces[0].jobs[0];
    azure.emulator.admin().reset_traffic();
    let running = azure
        .cli(&["logs", "--follow", &job.base_name, PETS])
        .spawn();
    // Once it has read the job (its only ARM read), it listens for Ctrl-C.
    wait_until(|| async { azure.emulator.admin().traffic().arm("GET") >= 1 }).await;
    running.signal(libc::SIGINT);
    let out = tokio::task::spawn_blocking(move || running.finish())
        .await
        .unwrap();
    assert_eq!(out.code, 130, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "Stopped following after Ctrl-C; the job goes on in Azure. Follow it again with: amlspec logs --follow {} {PETS}",
            job.name
        )),
        "{}",
        out.stderr
    );
    let status = azure.get_json(job.id.as_str()).await["properties"]["status"].clone();
    assert_eq!(status, "NotStarted", "the job was left alone");
}

/// azure-ai-ml's own `jobs.stream` and `amlspec logs` print the same lines for a job
/// amlspec submitted. Needs python3 with azure-ai-ml (AMLSPEC_PYTHON names another
/// interpreter): `cargo test --test integration azure_ai_ml -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs python3 with azure-ai-ml"]
async fn azure_ai_ml_jobs_stream_and_amlspec_logs_print_the_same_lines() {
    let python = std::env::var("AMLSPEC_PYTHON").unwrap_or_else(|_| "python3".to_string());
    // jobs.stream shows the output of a job that is still running: this one runs for
    // a few seconds.
    let azure = Local::start_with(EmulatorConfig {
        sim_mode: amlspec::emulator::SimMode::Auto,
        timings: SimTimings {
            lro: Duration::ZERO,
            job_phase: Duration::from_secs(1),
            job_running: Duration::from_secs(4),
            retry_after_secs: 0,
        },
        ..config()
    })
    .await;
    assert_eq!(azure.run(&["apply", "--auto-approve", PETS]).await.code, 0);
    let desired = load(&[PETS]);
    let ws = &desired.workspaces[0];
    let job = &ws.jobs[0];

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cli/python/stream_job.py"
    );
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(azure.emulator.addr().port().to_string())
        .arg(&azure.ca)
        .args([
            crate::cli::common::SUBSCRIPTION,
            ws.spec.resource_group.as_str(),
            ws.spec.name.as_str(),
            &job.name,
        ])
        .env("AZURE_TENANT_ID", azure.emulator.tenant_id())
        .env("AZURE_CLIENT_ID", azure.emulator.client_id())
        .env("AZURE_CLIENT_SECRET", azure.emulator.client_secret())
        .output()
        .await
        .unwrap_or_else(|e| panic!("`{python}` runs (pip install azure-ai-ml==1.35.2): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("STREAM DONE"),
        "stream_job.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let ours = azure.run(&["logs", &job.name, PETS]).await;
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    // jobs.stream: a header, `Streaming user_logs/std_log.txt`, a rule, the lines, then
    // its execution summary.
    let streamed: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("====="))
        .skip(1)
        .take_while(|l| !l.starts_with("Execution Summary"))
        .filter(|l| !l.is_empty())
        .collect();
    let printed: Vec<&str> = ours.stdout.lines().collect();
    assert_eq!(streamed, printed);
    assert_eq!(printed, completed_log(&job.name, &job.command));
}
