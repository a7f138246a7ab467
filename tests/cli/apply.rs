//! `amlspec apply` against the emulator: from nothing to everything, nothing written
//! when nothing changed, each kind of change with exactly its requests, the guards
//! (confirmation, replacement, blocked and stale plans), build contexts byte for byte,
//! faults and interruptions followed by a converging apply, `--wait`.

use std::time::Duration;

use amlspec::azure::ML_API_VERSION;
use amlspec::azure::blob::{BlobAuth, BlobClient, Container};
use amlspec::azure::client::ClientSettings;
use amlspec::emulator::{EmulatorConfig, Fault, FaultRule, FaultTarget, SimTimings};
use amlspec::secret::Secret;
use serde_json::{Value, json};

use crate::cli::azure::{Local, config, load, wait_until};
use crate::cli::common::{PASSWORD, edit, specs_copy};

const PETS: &str = "specs/pets.yaml";
const ENVIRONMENTS: &str = "specs/environments.yaml";

/// `apply --auto-approve` with `args`.
async fn apply(azure: &Local, args: &[&str]) -> crate::cli::common::Output {
    azure
        .run(&[&["apply", "--auto-approve"][..], args].concat())
        .await
}

/// The items of an ARM list under `id` (`jobs`, `codes`, ...).
async fn list(azure: &Local, path: &str) -> Vec<Value> {
    azure.get_json(path).await["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn pets_from_nothing_then_no_changes_and_a_second_apply_writes_nothing() {
    let azure = Local::start().await;
    let out = apply(&azure, &[PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Plan: 9 to create, 0 to update, 0 to replace. 0 unchanged."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(": 8 created, 0 updated, 0 replaced, 1 submitted."),
        "{}",
        out.stdout
    );
    // Progress goes to stderr, one line per start and end, with the elapsed time.
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("[+") && l.ends_with("ml-rg/pets-ws: created")),
        "{}",
        out.stderr
    );

    let desired = load(&[PETS]);
    let ws = &desired.workspaces[0];
    let jobs = list(&azure, &format!("{}/jobs", ws.id)).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["name"], ws.jobs[0].name.as_str());
    let code_id = jobs[0]["properties"]["codeId"]
        .as_str()
        .unwrap()
        .to_string();
    let code = azure.get_json(&code_id).await;
    assert_eq!(
        code["properties"]["properties"]["hash_sha256"],
        ws.codes[0].hash.as_str()
    );
    // The stored registry password is the one the environment gave.
    let secrets = azure
        .post_json(&format!("{}/listsecrets", ws.registries[0].id), json!({}))
        .await;
    assert_eq!(
        secrets["properties"]["credentials"]["password"], PASSWORD,
        "the connection stores the password"
    );

    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "No changes. 5 resources are up to date.\n");

    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "No changes. 5 resources are up to date.\n");
    let traffic = azure.emulator.admin().traffic();
    assert_eq!(traffic.arm_writes(), 0, "{traffic:?}");
    assert_eq!(
        traffic.arm("POST"),
        1,
        "only the registry's listsecrets: {traffic:?}"
    );
    assert_eq!(traffic.blob_writes(), 0, "{traffic:?}");
    assert_eq!(traffic.blob_bytes_in, 0, "{traffic:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_change_sends_exactly_its_requests() {
    let azure = Local::start().await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    let pets = pets.to_str().unwrap();
    assert_eq!(apply(&azure, &[pets]).await.code, 0);
    let desired = load(&[pets]);
    let ws = &desired.workspaces[0];

    // One changed source file: one code version (uploaded) and one new job.
    let train = specs.path().join("fastai-example/train.py");
    let mut text = std::fs::read_to_string(&train).unwrap();
    text.push_str("# one more line\n");
    std::fs::write(&train, &text).unwrap();
    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let traffic = azure.emulator.admin().traffic();
    assert_eq!(
        traffic.arm("PUT"),
        2,
        "a code version and a job: {traffic:?}"
    );
    assert_eq!(traffic.arm("PATCH") + traffic.arm("DELETE"), 0);
    assert!(traffic.blob_bytes_in >= text.len() as u64, "{traffic:?}");
    assert_eq!(list(&azure, &format!("{}/jobs", ws.id)).await.len(), 2);

    // max_nodes: one update in place.
    edit(std::path::Path::new(pets), "max_nodes: 4", "max_nodes: 6");
    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(": 0 created, 1 updated, 0 replaced, 0 submitted.")
    );
    let traffic = azure.emulator.admin().traffic();
    assert_eq!(
        (
            traffic.arm("PUT"),
            traffic.arm("PATCH"),
            traffic.arm("DELETE")
        ),
        (0, 1, 0),
        "{traffic:?}"
    );
    let cluster = azure.get_json(ws.clusters[0].id.as_str()).await;
    assert_eq!(
        cluster["properties"]["properties"]["scaleSettings"]["maxNodeCount"],
        6
    );

    // vm_size: refused without --allow-replace, before anything is sent.
    edit(
        std::path::Path::new(pets),
        "vm_size: Standard_NC4as_T4_v3",
        "vm_size: Standard_NC8as_T4_v3",
    );
    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Pass --allow-replace")
            && out.stderr.contains("ml-rg/pets-ws/cluster/gpu-cluster"),
        "{}",
        out.stderr
    );
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);
    let out = apply(&azure, &["--allow-replace", pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("gpu-cluster: REPLACING (delete, then create)...")
    );
    let traffic = azure.emulator.admin().traffic();
    assert_eq!(
        (traffic.arm("PUT"), traffic.arm("DELETE")),
        (1, 1),
        "{traffic:?}"
    );
    let cluster = azure.get_json(ws.clusters[0].id.as_str()).await;
    assert_eq!(
        cluster["properties"]["properties"]["vmSize"]
            .as_str()
            .unwrap(),
        "Standard_NC8as_T4_v3"
    );

    // A wrong stored password: the connection is put again with the right one.
    let mut body = amlspec::bodies::connection(&ws.registries[0]);
    body["properties"]["credentials"]["password"] = json!("rotated-elsewhere-42");
    azure.put(&ws.registries[0].id, ML_API_VERSION, body).await;
    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("rotated-elsewhere-42"));
    assert_eq!(azure.emulator.admin().traffic().arm("PUT"), 1);
    let secrets = azure
        .post_json(&format!("{}/listsecrets", ws.registries[0].id), json!({}))
        .await;
    assert_eq!(secrets["properties"]["credentials"]["password"], PASSWORD);

    let out = azure.run(&["plan", "--detailed-exitcode", pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// A blob of the workspace's default datastore, read with its account key.
async fn datastore_blob(azure: &Local, ws_id: &str, uri: &str, relative: &str) -> Vec<u8> {
    let datastore = format!("{ws_id}/datastores/workspaceblobstore");
    let store = azure.get_json(&datastore).await;
    let secrets = azure
        .post_json(&format!("{datastore}/listSecrets"), json!({}))
        .await;
    let account = store["properties"]["accountName"].as_str().unwrap();
    let container = store["properties"]["containerName"].as_str().unwrap();
    let marker = format!("/{container}/");
    let at = uri
        .find(&marker)
        .expect("the context is in the datastore's container");
    let container_url = url::Url::parse(&uri[..at + marker.len() - 1]).unwrap();
    let prefix = &uri[at + marker.len()..];
    let client = BlobClient::new(
        azure.client.http().clone(),
        Container {
            url: container_url,
            auth: BlobAuth::SharedKey {
                account: account.to_string(),
                key: Secret::new(secrets["key"].as_str().unwrap().to_string()),
            },
        },
        ClientSettings::default(),
    );
    client
        .get(&format!("{prefix}{relative}"))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{prefix}{relative} is not in the datastore"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dockerfile_environments_have_their_build_context_in_blob_storage_byte_for_byte() {
    let azure = Local::start().await;
    let out = apply(&azure, &[ENVIRONMENTS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let desired = load(&[ENVIRONMENTS]);
    let ws = &desired.workspaces[0];
    let root = crate::cli::common::repo_root().join("specs");
    for env in &ws.environments {
        let version = azure.get_json(env.id.as_str()).await;
        let build = &version["properties"]["build"];
        match env.name.as_str() {
            "hello" => {
                let uri = build["contextUri"].as_str().unwrap();
                assert!(uri.ends_with('/'), "{uri}");
                assert_eq!(build["dockerfilePath"], "Dockerfile");
                let bytes = datastore_blob(&azure, ws.id.as_str(), uri, "Dockerfile").await;
                assert_eq!(
                    String::from_utf8(bytes).unwrap(),
                    "FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\nRUN echo \"Hello from custom container!\"\n"
                );
            }
            "custom" => {
                let uri = build["contextUri"].as_str().unwrap();
                for file in ["Dockerfile", "requirements.txt"] {
                    let bytes = datastore_blob(&azure, ws.id.as_str(), uri, file).await;
                    assert_eq!(
                        bytes,
                        std::fs::read(root.join("docker").join(file)).unwrap()
                    );
                }
            }
            _ => {
                assert!(build.is_null(), "{version}");
                assert!(version["properties"]["condaFile"].is_string());
            }
        }
    }
    // Again: nothing uploaded, nothing written.
    azure.emulator.admin().reset_traffic();
    let out = apply(&azure, &[ENVIRONMENTS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let traffic = azure.emulator.admin().traffic();
    assert_eq!(
        traffic.arm_writes() + traffic.blob_writes(),
        0,
        "{traffic:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guards_refuse_before_anything_is_sent() {
    let azure = Local::start().await;
    // No terminal to confirm on, and no --auto-approve.
    let out = azure.run(&["apply", PETS]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("no terminal to confirm on: pass --auto-approve"),
        "{}",
        out.stderr
    );
    // A blocked plan.
    let out = apply(&azure, &["specs/distributed.yaml"]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("the plan is blocked"), "{}", out.stderr);
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_as_reviewed_and_refused_once_stale() {
    let azure = Local::start().await;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("plan.json");
    let saved = saved.to_str().unwrap();
    let out = azure.run(&["plan", "--out", saved, PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Someone creates the resource group meanwhile: the plan no longer holds.
    let desired = load(&[PETS]);
    azure
        .put(
            &desired.workspaces[0].resource_group,
            "2021-04-01",
            json!({"location": "westeurope"}),
        )
        .await;
    azure.emulator.admin().reset_traffic();
    let out = azure.run(&["apply", saved]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("the saved plan no longer describes")
            && out
                .stderr
                .contains("ml-rg: in the saved plan, no longer in the specs"),
        "{}",
        out.stderr
    );
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);

    // Planned again: applied without a question (it was reviewed), no terminal needed.
    let out = azure.run(&["plan", "--out", saved, PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = azure.run(&["apply", saved]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_faults_a_second_apply_converges_without_duplicates() {
    for seed in [1_u64, 2, 3] {
        let azure = Local::start().await;
        azure.emulator.admin().set_faults(
            vec![
                FaultRule::always(Fault::Throttle {
                    retry_after_secs: 0,
                })
                .with_probability(0.15)
                .on(FaultTarget::Arm),
                FaultRule::always(Fault::ServerError { status: 500 }).with_probability(0.1),
                FaultRule::always(Fault::DropConnection).with_probability(0.05),
                FaultRule::always(Fault::FailLro).times(1),
                FaultRule::always(Fault::ExpiredToken)
                    .times(1)
                    .on(FaultTarget::Arm),
            ],
            Some(seed),
        );
        let first = apply(&azure, &["--max-retries", "2", PETS, ENVIRONMENTS]).await;
        // The failed long-running operation is not retried: the first apply fails.
        assert_eq!(
            first.code, 1,
            "seed {seed}: {}{}",
            first.stdout, first.stderr
        );
        assert!(first.stdout.contains("Apply failed"), "{}", first.stdout);
        assert!(first.stdout.contains("\n  failed: "), "{}", first.stdout);
        assert!(first.stdout.contains("Run apply again to finish"));
        azure.emulator.admin().clear_faults();
        converges(&azure, &format!("seed {seed}")).await;
    }
}

/// After whatever happened (`what`), one apply of pets.yaml and environments.yaml
/// succeeds, the plan then says no changes, and nothing exists twice.
async fn converges(azure: &Local, what: &str) {
    let out = apply(azure, &[PETS, ENVIRONMENTS]).await;
    assert_eq!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
    let out = azure
        .run(&["plan", "--detailed-exitcode", PETS, ENVIRONMENTS])
        .await;
    assert_eq!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
    assert_no_duplicates(azure, &[PETS, ENVIRONMENTS]).await;
}

/// One job per declared job, one code version per content, one version per environment.
async fn assert_no_duplicates(azure: &Local, specs: &[&str]) {
    for ws in &load(specs).workspaces {
        let jobs = list(azure, &format!("{}/jobs", ws.id)).await;
        assert_eq!(jobs.len(), ws.jobs.len(), "{jobs:#?}");
        let mut versions = 0;
        for code in list(azure, &format!("{}/codes", ws.id)).await {
            let name = code["name"].as_str().unwrap();
            versions += list(azure, &format!("{}/codes/{name}/versions", ws.id))
                .await
                .len();
        }
        assert_eq!(versions, ws.codes.len());
        for env in &ws.environments {
            let all = list(
                azure,
                &format!("{}/environments/{}/versions", ws.id, env.name),
            )
            .await;
            assert_eq!(all.len(), 1, "{}: {all:#?}", env.name);
        }
    }
}

/// An emulator whose long-running operations take `lro` and whose jobs run for a long
/// time (until a test ends them).
fn slow(lro: Duration) -> EmulatorConfig {
    EmulatorConfig {
        timings: SimTimings {
            lro,
            job_phase: Duration::from_secs(3600),
            job_running: Duration::from_secs(3600),
            retry_after_secs: 0,
        },
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_follows_jobs_and_fails_with_a_failed_one() {
    let azure = Local::start().await;
    // Completing at once: --wait ends with the job's status and studio URL, exit 0.
    let out = apply(&azure, &["--wait", ENVIRONMENTS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("Following job"), "{}", out.stderr);
    assert!(
        out.stderr.contains(": Completed (https://"),
        "{}",
        out.stderr
    );

    // A job the service fails: exit 1, its status in the report.
    let azure = Local::start_with(slow(Duration::ZERO)).await;
    let running = azure
        .cli(&["apply", "--auto-approve", "--wait", PETS])
        .spawn();
    let desired = load(&[PETS]);
    let job = desired.workspaces[0].jobs[0].id.to_string();
    wait_until(|| {
        let azure = &azure;
        let job = job.clone();
        async move { azure.emulator.admin().fail_job(&job).is_ok() }
    })
    .await;
    let out = tokio::task::spawn_blocking(move || running.finish())
        .await
        .unwrap();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "job {}: Failed",
            desired.workspaces[0].jobs[0].name
        )),
        "{}",
        out.stdout
    );
    // The error run history gives.
    assert!(
        out.stdout
            .contains("UserError: Execution failed. User process exited with status code 1"),
        "{}",
        out.stdout
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_starting_work_and_sigkill_loses_nothing() {
    // SIGTERM while the workspace's dependencies are being made: what runs finishes,
    // nothing more starts, exit 143; the next apply finishes the job.
    let azure = Local::start_with(slow(Duration::from_secs(2))).await;
    let running = azure.cli(&["apply", "--auto-approve", PETS]).spawn();
    wait_until(|| async { azure.emulator.admin().traffic().arm("PUT") >= 2 }).await;
    running.signal(libc::SIGTERM);
    let out = tokio::task::spawn_blocking(move || running.finish())
        .await
        .unwrap();
    assert_eq!(out.code, 143, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply interrupted"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Stopping: no new steps start"),
        "{}",
        out.stderr
    );
    let out = apply(&azure, &[PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // SIGKILL at several points of an apply: the next one converges, nothing twice.
    for puts in [1, 3, 5, 6] {
        let azure = Local::start_with(slow(Duration::from_millis(300))).await;
        let running = azure
            .cli(&["apply", "--auto-approve", PETS, ENVIRONMENTS])
            .spawn();
        wait_until(|| async { azure.emulator.admin().traffic().arm("PUT") >= puts }).await;
        running.signal(libc::SIGKILL);
        let out = tokio::task::spawn_blocking(move || running.finish())
            .await
            .unwrap();
        assert_eq!(out.code, -1);
        converges(&azure, &format!("after {puts} PUTs")).await;
    }
}

/// The README's quick start, as written (its variables included), in a copy of the
/// repository's specs: apply from nothing, then a plan that says "No changes" and
/// nothing on stderr.
#[test]
fn the_readme_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(crate::cli::common::repo_root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("-- apply --emulator --auto-approve specs/pets.yaml"))
        .expect("the README's quick start applies specs/pets.yaml to the emulator");
    assert!(
        lines[at + 1].contains("-- plan --emulator specs/pets.yaml"),
        "then plans it again: {}",
        lines[at + 1]
    );
    let variables: Vec<(&str, &str)> = lines[at - 1]
        .strip_prefix("export ")
        .expect("the line before exports the variables")
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect();
    assert!(
        variables.iter().any(|(name, _)| *name == "ACR_PASSWORD"),
        "{variables:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let specs = specs_copy();
    std::fs::rename(specs.path(), dir.path().join("specs")).unwrap();
    let run = |args: &[&str]| {
        let mut test = crate::cli::common::Test::new().current_dir(dir.path());
        for (name, value) in &variables {
            test = test.env(name, value);
            if name.contains("PASSWORD") {
                test = test.secret(value);
            }
        }
        test.args(args).run()
    };
    let out = run(&["apply", "--emulator", "--auto-approve", "specs/pets.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    assert!(dir.path().join(".amlspec/emulator").is_dir());
    let out = run(&["plan", "--emulator", "specs/pets.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "No changes. 5 resources are up to date.\n");
    assert_eq!(
        out.stderr, "",
        "a new user's second run says nothing on stderr"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_likely_credential_in_a_source_folder_blocks_the_upload_until_ignored_or_allowed() {
    let azure = Local::start().await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    let pets = pets.to_str().unwrap();
    let source = specs.path().join("fastai-example");
    std::fs::write(source.join(".env"), "API_TOKEN=never-uploaded\n").unwrap();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "its source_directory `fastai-example` holds files that look like credentials"
        ) && out.stdout.contains("`.env`"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("the plan is blocked"), "{}", out.stderr);
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);

    // Listed in .amlignore: not part of the snapshot, so nothing blocks.
    std::fs::write(source.join(".amlignore"), ".env\n").unwrap();
    let out = apply(&azure, &[pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // Or explicitly allowed (a new content, so a new upload).
    std::fs::remove_file(source.join(".amlignore")).unwrap();
    let out = azure.run(&["plan", pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let out = apply(&azure, &["--allow-secret-files", pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs azurite-blob (npm install -g azurite@3.35.0); .ci/run runs it with `cargo test -- --ignored azurite`"]
async fn apply_uploads_code_and_build_contexts_to_azurite() {
    use crate::cli::azurite_support::{self, AZURITE_KEY};
    let dir = tempfile::tempdir().unwrap();
    let azurite = azurite_support::start(dir.path(), "apply's uploads against Azurite");
    let endpoint = azurite.account_url();
    let mut config = config();
    config.blob_backend = amlspec::emulator::BlobBackend::Azurite {
        endpoint: endpoint.clone(),
        account: "devstoreaccount1".into(),
        key: AZURITE_KEY.into(),
    };
    let azure = Local::start_with(config).await;
    let out = apply(&azure, &[PETS, ENVIRONMENTS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        azure.emulator.admin().traffic().blob_bytes_in,
        0,
        "every byte went to Azurite"
    );
    let desired = load(&[ENVIRONMENTS]);
    let ws = &desired.workspaces[0];
    let hello = ws.environments.iter().find(|e| e.name == "hello").unwrap();
    let version = azure.get_json(hello.id.as_str()).await;
    let uri = version["properties"]["build"]["contextUri"]
        .as_str()
        .unwrap();
    assert!(uri.starts_with(&endpoint), "{uri}");
    let bytes = datastore_blob(&azure, ws.id.as_str(), uri, "Dockerfile").await;
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .starts_with("FROM mcr.microsoft.com/azureml/")
    );
    let pets = load(&[PETS]);
    let jobs = list(&azure, &format!("{}/jobs", pets.workspaces[0].id)).await;
    let code = azure
        .get_json(jobs[0]["properties"]["codeId"].as_str().unwrap())
        .await;
    assert!(
        code["properties"]["codeUri"]
            .as_str()
            .unwrap()
            .starts_with(&endpoint),
        "{code}"
    );
    let out = azure
        .run(&["plan", "--detailed-exitcode", PETS, ENVIRONMENTS])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_or_upload_credential_reaches_the_log_at_trace_level() {
    let azure = Local::start().await;
    // The password (and the client secret) are checked on every run by the harness.
    let test = azure
        .cli(&["-vvv", "apply", "--auto-approve", PETS, ENVIRONMENTS])
        .env("RUST_LOG", "trace")
        .secret(azure.emulator.client_secret());
    let out = tokio::task::spawn_blocking(move || test.run())
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("startPendingUpload"),
        "the log is at trace level"
    );
    for credential in ["sig=", "SharedKey ", "Bearer ", "\"key\""] {
        assert!(
            !out.stderr.contains(credential) && !out.stdout.contains(credential),
            "`{credential}` reached the output"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn target_plans_and_applies_one_resource_and_what_it_needs() {
    let azure = Local::start().await;
    let cluster = "ml-rg/pets-ws/cluster/gpu-cluster";
    let out = azure.run(&["plan", "--target", cluster, PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "note: --target {cluster}: only these and what they need are in this plan\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("Plan: 6 to create, 0 to update, 0 to replace. 0 unchanged.\n"),
        "{}",
        out.stdout
    );
    let out = apply(&azure, &["--target", cluster, PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let desired = load(&[PETS]);
    let ws = &desired.workspaces[0];
    assert_eq!(
        list(&azure, &format!("{}/jobs", ws.id)).await.len(),
        0,
        "the job was not targeted"
    );
    // The rest comes with an untargeted apply.
    let out = azure.run(&["plan", PETS]).await;
    assert!(
        out.stdout
            .ends_with("Plan: 3 to create, 0 to update, 0 to replace. 2 unchanged.\n"),
        "{}",
        out.stdout
    );
    // A saved targeted plan keeps its target; a typo is refused with a suggestion.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("plan.json");
    let saved = saved.to_str().unwrap();
    let out = azure
        .run(&[
            "plan",
            "--target",
            "ml-rg/pets-ws/registry/myregistry",
            "--out",
            saved,
            PETS,
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = azure.run(&["apply", saved]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(": 1 created,"), "{}", out.stdout);
    let out = azure
        .run(&["plan", "--target", "ml-rg/pets-ws/cluster/gpu", PETS])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "--target `ml-rg/pets-ws/cluster/gpu` names no resource of the plan; did you mean `ml-rg/pets-ws/cluster/gpu-cluster`?"
        ),
        "{}",
        out.stderr
    );
}

/// A write whose answer is lost after Azure acted (a gateway timing out) is tried again
/// and meets `409 Conflict`, the cluster it made still being created: apply waits for
/// the cluster, writes once more, and finishes in one run, with one cluster.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_then_a_409_while_the_cluster_is_created_is_waited_out() {
    let azure = Local::start_with(EmulatorConfig {
        timings: SimTimings {
            lro: Duration::from_secs(3),
            job_phase: Duration::ZERO,
            job_running: Duration::ZERO,
            retry_after_secs: 1,
        },
        ..config()
    })
    .await;
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::LoseAnswer)
                .times(1)
                .on(FaultTarget::Arm)
                .method("PUT")
                .path_contains("/computes/"),
        ],
        None,
    );
    let out = azure.run(&["apply", "--auto-approve", "-v", PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("409 Conflict: the resource is being provisioned; waiting for it"),
        "the retried PUT met the cluster being created: {}",
        out.stderr
    );
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for ws in &load(&[PETS]).workspaces {
        let computes = list(&azure, &format!("{}/computes", ws.id)).await;
        assert_eq!(computes.len(), ws.clusters.len(), "{computes:#?}");
    }
}
