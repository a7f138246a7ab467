//! `amlspec plan` against the emulator: full create plans, no changes once everything
//! exists, each kind of drift, blocked cases, authentication failures and faults.

use crate::cli::azure::Local;

const PETS: &str = "specs/pets.yaml";

#[tokio::test(flavor = "multi_thread")]
async fn empty_subscription_plans_every_resource() {
    let azure = Local::start().await;
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_present_is_no_changes() {
    let azure = Local::start().await;
    let all = [
        "specs/pets.yaml",
        "specs/environments.yaml",
        "specs/distributed.yaml",
        "specs/multi-workspace",
        "tests/corpus/valid",
    ];
    azure.seed(&all).await;
    let out = azure
        .run(&[&["plan", "--detailed-exitcode"][..], &all[..]].concat())
        .await;
    assert_eq!(
        out.stdout, "No changes. 63 resources are up to date.\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr, "");
}

use amlspec::azure::ML_API_VERSION;
use amlspec::emulator::{Fault, FaultRule, FaultTarget, ServicePrincipal};
use serde_json::json;

use crate::cli::common::{edit, specs_copy};

/// The lines of a plan without the summary, for compact assertions.
fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| !l.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_in_place_is_an_update_with_old_and_new_values() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let ws = &desired.workspaces[0];
    // Someone scaled the cluster and retagged the workspace by hand.
    let cluster = &ws.clusters[0];
    azure
        .patch(&cluster.id, ML_API_VERSION, json!({"properties": {"properties": {"scaleSettings": {"minNodeCount": 1, "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "PT2M"}}}}))
        .await;
    azure
        .patch(
            &ws.id,
            ML_API_VERSION,
            json!({"tags": {"team": "nlp", "owner": "someone"}}),
        )
        .await;
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        lines(&out.stdout),
        [
            "workspace pets-ws (resource group ml-rg)",
            "  ~ workspace pets-ws (update in place)",
            "      ~ tags: {\"owner\":\"someone\",\"team\":\"nlp\"} -> {\"team\":\"vision\"}",
            "  ~ cluster gpu-cluster (update in place)",
            "      ~ min_nodes: 1 -> 0",
            "      ~ max_nodes: 2 -> 4",
            "      ~ idle_seconds_before_scale_down: 120 -> 1800",
            "      quota ok: max_nodes 4 x 4 vCPUs = 16 vCPUs; 48 of 48 free in standardNCASv3_T4Family, 100 of 100 in westeurope",
            "Plan: 0 to create, 2 to update, 0 to replace. 3 unchanged.",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn immutable_changes_must_be_replaced() {
    let azure = Local::start().await;
    azure.seed(&[PETS]).await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(
        &pets,
        "vm_size: Standard_NC4as_T4_v3",
        "vm_size: Standard_NC8as_T4_v3",
    );
    let out = azure
        .run(&["plan", "--detailed-exitcode", pets.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "  -/+ cluster gpu-cluster (must be replaced: vm_size cannot change in place)\n      ~ vm_size: \"STANDARD_NC4AS_T4_V3\" -> \"STANDARD_NC8AS_T4_V3\" (forces replacement)\n      vm size ok: Standard_NC8as_T4_v3 offered in westeurope (8 vCPUs, 1 GPU)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("Plan: 0 to create, 0 to update, 1 to replace. 4 unchanged.\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_password_drift_is_detected_but_never_shown() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let registry = &desired.workspaces[0].registries[0];
    let mut body = amlspec::bodies::connection(registry);
    body["properties"]["credentials"]["password"] = json!("rotated-elsewhere-42");
    azure.put(&registry.id, ML_API_VERSION, body).await;
    let out = azure.run(&["plan", "--format", "json", PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("rotated-elsewhere-42"));
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let change = plan["workspaces"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "registry")
        .unwrap()
        .clone();
    assert_eq!(change["action"], "update");
    assert_eq!(change["changed"], json!(["password"]));
    assert_eq!(change["before"]["password"], "(sensitive, differs)");
    assert_eq!(change["after"]["password"], "(sensitive)");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_resources_are_created_again() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let ws = &desired.workspaces[0];
    azure.delete(&ws.registries[0].id, ML_API_VERSION).await;
    let out = azure.run(&["plan", PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("  + registry myregistry\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("Plan: 1 to create, 0 to update, 0 to replace. 4 unchanged.\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_definitions_are_new_versions_and_new_runs() {
    let azure = Local::start().await;
    azure.seed(&[PETS]).await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(
        &pets,
        "image: fastdotai/fastai2:latest",
        "image: fastdotai/fastai2:2.7.12",
    );
    let out = azure.run(&["plan", pets.to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    // A new environment version, and the job that uses it is a new run; the old ones stay.
    assert!(text.contains("  + environment fastai2 (version "), "{text}");
    assert!(
        text.contains("      + image: \"myregistry.azurecr.io/fastdotai/fastai2:2.7.12\""),
        "{text}"
    );
    assert!(text.contains("  + job pets-resnet34-"), "{text}");
    assert!(
        text.contains("code already uploaded"),
        "the snapshot did not change: {text}"
    );
    assert!(
        text.ends_with("Plan: 2 to create, 0 to update, 0 to replace. 3 unchanged.\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn job_tags_update_in_place_without_a_new_run() {
    let azure = Local::start().await;
    azure.seed(&["specs/distributed.yaml"]).await;
    let specs = specs_copy();
    let spec = specs.path().join("distributed.yaml");
    edit(&spec, "model: resnet50", "model: resnet50-v2");
    let out = azure.run(&["plan", spec.to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("  ~ job ddp-resnet50-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("      ~ tags: {\"model\":\"resnet50\"} -> {\"model\":\"resnet50-v2\"}"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("Plan: 0 to create, 1 to update, 0 to replace. 5 unchanged.\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_workspace_without_create_is_blocked() {
    let azure = Local::start().await;
    let out = azure
        .run(&["plan", "--detailed-exitcode", "specs/distributed.yaml"])
        .await;
    assert_eq!(out.code, 1, "blocked plans fail: {}", out.stderr);
    assert_eq!(
        lines(&out.stdout),
        [
            "workspace dist-ws (resource group ml-rg)",
            "  ! workspace dist-ws",
            "      reason: workspace `dist-ws` does not exist in resource group `ml-rg` (the resource group does not exist either) and create_if_missing is false; 5 resources declared in it cannot be planned",
            "Plan: 0 to create, 0 to update, 0 to replace. 0 unchanged. 1 blocked: the plan cannot be applied as is.",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn immutable_location_and_pinned_versions_block() {
    let azure = Local::start().await;
    azure.seed(&[PETS, "specs/environments.yaml"]).await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(&pets, "location: westeurope", "location: northeurope");
    let envs = specs.path().join("environments.yaml");
    edit(
        &envs,
        "    build_context: docker\n",
        "    build_context: .\n",
    );
    let out = azure
        .run(&["plan", pets.to_str().unwrap(), envs.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("  ! workspace pets-ws\n      reason: the workspace is in `westeurope`, the spec says `northeurope`; a workspace cannot move"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  ! environment custom\n      reason: version 3 of environment `custom` exists with a different definition, and versions cannot change: bump `version`"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_existing_environment_blocks_its_job() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/distributed.yaml"]).await;
    let ws = &desired.workspaces[0];
    let existing = &ws.existing_environments[0];
    azure
        .delete(
            &ws.id
                .child("environments", &existing.name)
                .child("versions", "3"),
            ML_API_VERSION,
        )
        .await;
    azure.delete(&ws.jobs[1].id, ML_API_VERSION).await;
    let out = azure.run(&["plan", "specs/distributed.yaml"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("  ! job data-check-")
            && out.stdout.contains(
                "reason: environment `AzureML-sklearn-1.5` does not exist in this workspace"
            ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_resource_group_is_created_with_the_workspace() {
    let azure = Local::start().await;
    let out = azure.run(&["plan", "--format", "json", PETS]).await;
    assert_eq!(out.code, 0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let resources = plan["workspaces"][0]["resources"].as_array().unwrap();
    let kinds: Vec<&str> = resources
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "resource_group",
            "storage_account",
            "key_vault",
            "application_insights",
            "workspace",
            "registry",
            "environment",
            "cluster",
            "job"
        ]
    );
    assert!(resources.iter().all(|r| r["action"] == "create"));
    assert_eq!(
        resources[4]["depends_on"],
        json!([
            "ml-rg",
            "ml-rg/storage_account/petswsdbdffa0f",
            "ml-rg/key_vault/petsws-dbdffa0f",
            "ml-rg/application_insights/pets-ws-insights"
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_a_clear_error() {
    let azure = Local::start().await;
    let out = tokio::task::spawn_blocking({
        let test = azure
            .cli(&["plan", PETS])
            .env("AZURE_CLIENT_SECRET", "not-the-secret");
        move || test.run()
    })
    .await
    .unwrap();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: service principal could not get a token"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("AADSTS7000215"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_scope_principal_gets_403_with_request_id() {
    let mut config = crate::cli::azure::config();
    config.principals = vec![ServicePrincipal {
        client_id: "33333333-3333-3333-3333-333333333333".into(),
        client_secret: Some("scoped-secret".into()),
        federated: Vec::new(),
        scopes: vec!["/subscriptions/00000000-0000-0000-0000-000000000002".into()],
    }];
    let azure = Local::start_with(config).await;
    let out = azure.run(&["plan", PETS]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("error: failed to read workspace pets-ws: HTTP 403 AuthorizationFailed: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(x-ms-request-id: "), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_storms_are_retried() {
    let azure = Local::start().await;
    azure.seed(&[PETS, "specs/environments.yaml"]).await;
    let storm = FaultRule::always(Fault::Throttle {
        retry_after_secs: 0,
    })
    .with_probability(0.3)
    .on(FaultTarget::Arm);
    azure.emulator.admin().set_faults(vec![storm], Some(7));
    let out = azure
        .run(&[
            "plan",
            "-v",
            "--max-retries",
            "10",
            PETS,
            "specs/environments.yaml",
        ])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "No changes. 12 resources are up to date.\n");
    assert!(
        out.stderr.contains("HTTP 429 TooManyRequests"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_server_errors_fail_with_the_arm_error() {
    let azure = Local::start().await;
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 500 }).on(FaultTarget::Arm)],
        None,
    );
    let out = azure.run(&["plan", "--max-retries", "0", PETS]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: failed to read workspace pets-ws: HTTP 500 InternalServerError: "),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_plans_hold_no_secrets_and_go_stale_when_azure_moves() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let dir = tempfile::tempdir().unwrap();
    let saved_path = dir.path().join("plan.json");
    let out = azure
        .run(&["plan", "--out", saved_path.to_str().unwrap(), PETS])
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("Saved the plan to"), "{}", out.stderr);
    let text = std::fs::read_to_string(&saved_path).unwrap();
    assert!(!text.contains(crate::cli::common::PASSWORD));
    let saved = amlspec::plan::parse_saved(&saved_path, &text).unwrap();
    assert!(
        saved
            .resources()
            .filter(|r| r.fingerprint.is_some())
            .count()
            == 5
    );

    let fresh = |azure: &Local| {
        let test = azure.cli(&["plan", "--format", "json", PETS]);
        async move {
            let out = tokio::task::spawn_blocking(move || test.run())
                .await
                .unwrap();
            serde_json::from_str::<amlspec::plan::Plan>(&out.stdout).unwrap()
        }
    };
    assert_eq!(
        amlspec::plan::stale(&saved, &fresh(&azure).await),
        Vec::<String>::new(),
        "nothing moved yet"
    );

    // Someone scales the cluster and deletes the job's run record.
    let ws = &desired.workspaces[0];
    azure
        .patch(
            &ws.clusters[0].id,
            ML_API_VERSION,
            json!({"properties": {"properties": {"scaleSettings": {"maxNodeCount": 9}}}}),
        )
        .await;
    azure.delete(&ws.jobs[0].id, ML_API_VERSION).await;
    let moved = amlspec::plan::stale(&saved, &fresh(&azure).await);
    assert_eq!(
        moved,
        [
            "ml-rg/pets-ws/cluster/gpu-cluster: changed in Azure",
            "ml-rg/pets-ws/cluster/gpu-cluster: was to no change, now update in place",
            "ml-rg/pets-ws/job/pets-resnet34-980bcba1: existed, now is gone from Azure",
            "ml-rg/pets-ws/job/pets-resnet34-980bcba1: was to no change, now create",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_and_github_formats() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let ws = &desired.workspaces[0];
    azure
        .patch(
            &ws.clusters[0].id,
            ML_API_VERSION,
            json!({"properties": {"properties": {"scaleSettings": {"maxNodeCount": 2}}}}),
        )
        .await;
    let out = azure.run(&["plan", "--format", "markdown", PETS]).await;
    assert_eq!(out.code, 0);
    insta::assert_snapshot!("markdown", out.stdout);

    let summary = tempfile::NamedTempFile::new().unwrap();
    // An earlier step's summary: the plan is added after it.
    std::fs::write(summary.path(), "earlier step\n").unwrap();
    let test = azure
        .cli(&["plan", "--format", "github", PETS])
        .env("GITHUB_STEP_SUMMARY", summary.path().to_str().unwrap());
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("::notice file=specs/pets.yaml,line=30,col=5,title=amlspec plan%3A cluster gpu-cluster::~ cluster gpu-cluster (update in place)%0A~ max_nodes: 2 -> 4%0Aquota ok: max_nodes 4 x 4 vCPUs = 16 vCPUs; 48 of 48 free in standardNCASv3_T4Family, 100 of 100 in westeurope\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .starts_with("workspace pets-ws (resource group ml-rg)\n"),
        "the human plan comes first"
    );
    let written = std::fs::read_to_string(summary.path()).unwrap();
    assert!(
        written.starts_with("earlier step\n### amlspec plan\n"),
        "{written}"
    );
}

/// The digest covers only what the specs want: it is the same whatever Azure holds.
#[tokio::test(flavor = "multi_thread")]
async fn the_manifest_digest_does_not_depend_on_live_state() {
    let all = [
        "specs/pets.yaml",
        "specs/environments.yaml",
        "specs/distributed.yaml",
        "specs/multi-workspace",
        "tests/corpus/valid",
    ];
    let args = [&["plan", "--format", "json"][..], &all[..]].concat();
    let empty = Local::start().await;
    let seeded = Local::start().await;
    seeded.seed(&all).await;
    let (a, b) = (empty.run(&args).await, seeded.run(&args).await);
    let digest = |out: &crate::cli::common::Output| {
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["manifest_digest"].clone()
    };
    assert_eq!(digest(&a), digest(&b));
    assert!(digest(&a).as_str().is_some_and(|d| d.len() == 64));
}

/// GitHub's issuer and a repository's subject, as a federated credential names them.
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GITHUB_SUBJECT: &str = "repo:example/ml:ref:refs/heads/main";

/// The test emulator with one more principal, `client_id`, that accepts GitHub's ID
/// tokens for [`GITHUB_SUBJECT`] and has no secret.
async fn emulator_trusting_github(client_id: &str) -> Local {
    let mut config = crate::cli::azure::config();
    config.principals.push(ServicePrincipal {
        client_id: client_id.into(),
        client_secret: None,
        federated: vec![amlspec::emulator::FederatedCredential {
            issuer: GITHUB_ISSUER.into(),
            subject: GITHUB_SUBJECT.into(),
        }],
        scopes: Vec::new(),
    });
    Local::start_with(config).await
}

/// An ID token as GitHub issues it for [`GITHUB_SUBJECT`] (the emulator reads its
/// claims; the signature is not checked), valid for five minutes.
fn github_id_token(audience: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 300;
    let claims = json!({"iss": GITHUB_ISSUER, "sub": GITHUB_SUBJECT, "aud": audience, "exp": exp});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"signature")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_identity_signs_in_with_a_federated_token() {
    let azure = emulator_trusting_github("44444444-4444-4444-4444-444444444444").await;
    let jwt = github_id_token("api://AzureADTokenExchange");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), jwt).unwrap();
    let test = azure
        .cli(&["plan", PETS])
        .env_remove("AZURE_CLIENT_SECRET")
        .env("AZURE_CLIENT_ID", "44444444-4444-4444-4444-444444444444")
        .env("AZURE_FEDERATED_TOKEN_FILE", file.path().to_str().unwrap())
        .args(["--auth", "workload-identity"]);
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("Plan: 9 to create, 0 to update, 0 to replace. 0 unchanged.\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_tokens_are_refreshed() {
    let mut config = crate::cli::azure::config();
    config.token_lifetime = std::time::Duration::from_secs(60);
    let azure = Local::start_with(config).await;
    azure.seed(&[PETS]).await;
    // Tokens live a minute: azure_identity renews them when under five minutes from
    // expiry, so every request carries a fresh one.
    let out = azure.run(&["plan", PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "No changes. 5 resources are up to date.\n");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let out = crate::cli::common::Test::new()
        .args([
            "plan",
            PETS,
            "--arm-endpoint",
            "http://management.example.com",
            "--auth",
            "service-principal",
        ])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: `http://management.example.com` uses plain http; only loopback addresses (127.0.0.1, ::1, localhost) may be reached without TLS\n"
    );
}

#[test]
fn no_credentials_lists_what_was_tried() {
    let out = crate::cli::common::Test::new()
        .env("PATH", "/nonexistent")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .args(["plan", PETS])
        .run();
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stderr);
}

/// Signing in starts while the specs load; when they turn out invalid, only their
/// problems are reported, not the sign-in's.
#[test]
fn invalid_specs_are_reported_before_any_sign_in_problem() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nclusters:\n  - name: gpu\n    vm_size: STANDARD_NC6\n    max_nodes: -1\n",
    )
    .unwrap();
    let out = crate::cli::common::Test::new()
        .env("PATH", "/nonexistent")
        .args(["plan"])
        .arg_path(&spec)
        .args(["--format", "json"])
        .run();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("max_nodes"), "{}", out.stderr);
    assert!(!out.stderr.contains("credentials"), "{}", out.stderr);
}

/// A source folder that cannot be snapshotted is a problem of the specs' content: it is
/// reported, and not a sign-in problem found while it was being hashed.
#[test]
fn snapshot_problems_are_reported_before_any_sign_in_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/train.py"), "print('train')\n").unwrap();
    std::fs::write(dir.path().join("src/.amlignore"), "outputs/[z-a]\n").unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nclusters:\n  - name: cpu\n    vm_size: STANDARD_DS3_V2\n    max_nodes: 1\njobs:\n  - name: train\n    source_directory: src\n    command: python train.py\n    environment: AzureML-sklearn-1.5@latest\n    cluster: cpu\n",
    )
    .unwrap();
    let out = crate::cli::common::Test::new()
        .env("PATH", "/nonexistent")
        .args(["plan"])
        .arg_path(&spec)
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(".amlignore` is not valid in an ignore file: line 1: error parsing glob"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches(".amlignore").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("credentials"), "{}", out.stderr);
}

/// A sign-in that fails fails every read at once: the credential is asked once (one
/// `az` run, not one per read) and the error is said once.
#[cfg(unix)]
#[test]
fn a_failed_sign_in_is_tried_once_and_said_once() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls.log");
    let az = bin.path().join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = crate::cli::common::Test::new()
        .env("PATH", &format!("{}:/usr/bin:/bin", bin.path().display()))
        .args(["plan", "specs/multi-workspace", "--auth", "azure-cli"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(
        errors,
        [
            "error: Azure CLI could not get a token for https://management.azure.com/.default from `az account get-access-token`: ERROR: Please run 'az login' to setup account."
        ],
        "{}",
        out.stderr
    );
    let runs = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(runs.lines().count(), 1, "az runs: {runs}");
}

/// The README's main command: plan against the in-process emulator, state kept in
/// .amlspec/emulator/ of the current folder.
#[test]
fn the_embedded_emulator_needs_no_account() {
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    let run = || {
        crate::cli::common::Test::new()
            .current_dir(specs.path())
            .args([
                "plan",
                "--emulator",
                "--detailed-exitcode",
                pets.to_str().unwrap(),
            ])
            .run()
    };
    let out = run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("Plan: 9 to create, 0 to update, 0 to replace. 0 unchanged.\n"),
        "{}",
        out.stdout
    );
    assert!(specs.path().join(".amlspec/emulator").is_dir());
    // The emulator stands in for the declared registry: the image check runs.
    assert!(
        out.stdout
            .contains("      image ok: pullable, digest sha256:"),
        "{}",
        out.stdout
    );
    // Plans read only: the state is unchanged and the next plan is the same.
    assert_eq!(run().stdout, out.stdout);
}

/// Under `--emulator` only images on declared registries are checked (the emulator
/// stands in for those); a public image is not asked about, so nothing leaves the
/// machine and nothing warns.
#[test]
fn the_embedded_emulator_checks_images_of_declared_registries_only() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: wsx\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  location: westeurope\n  create_if_missing: true\nregistries:\n  - name: acr\n    address: team.azurecr.io\n    username: puller\n    password: ${ACR_PASSWORD}\nenvironments:\n  - name: private\n    image: team/app:1\n    registry: acr\n  - name: public\n    image: ubuntu:22.04\n",
    )
    .unwrap();
    let out = crate::cli::common::Test::new()
        .current_dir(dir.path())
        .args(["plan", "--emulator", spec.to_str().unwrap()])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let images: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("image "))
        .collect();
    assert_eq!(images.len(), 1, "{}", out.stdout);
    assert!(
        images[0].starts_with("      image ok: pullable, digest sha256:"),
        "{}",
        out.stdout
    );
    let private = out.stdout.find("environment private").unwrap();
    let public = out.stdout.find("environment public").unwrap();
    let line = out.stdout.find(images[0]).unwrap();
    assert!(private < line && line < public, "{}", out.stdout);
}

/// `--emulator` wins over connection settings from the environment (a shell set up for
/// Azure), but not over the same options given next to it.
#[test]
fn the_emulator_ignores_connection_variables_but_refuses_connection_options() {
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    let out = crate::cli::common::Test::new()
        .current_dir(specs.path())
        .env("AMLSPEC_CLOUD", "china")
        .env("AMLSPEC_ARM_ENDPOINT", "https://management.example.invalid")
        .env("AMLSPEC_AUTH", "azure-cli")
        .env("AMLSPEC_CA_CERT", "/nonexistent/ca.pem")
        .args(["-v", "plan", "--emulator", pets.to_str().unwrap()])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Plan: 9 to create"), "{}", out.stdout);
    for option in ["--cloud", "--arm-endpoint", "--auth", "--ca-cert"] {
        assert!(
            out.stderr.contains(&format!(
                "--emulator: ignoring {option} from the environment"
            )),
            "{option}: {}",
            out.stderr
        );
    }

    let out = crate::cli::common::Test::new()
        .current_dir(specs.path())
        .args(["plan", "--emulator", "--cloud", "public"])
        .arg_path(&pets)
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the argument '--emulator' cannot be used with '--cloud'"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Usage: amlspec plan"), "{}", out.stderr);

    let out = crate::cli::common::Test::new()
        .current_dir(specs.path())
        .args(["plan", "--emulator", "--ca-cert", "ca.pem"])
        .arg_path(&pets)
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the argument '--emulator' cannot be used with '--ca-cert'"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_workspace_has_no_existing_environments() {
    let azure = Local::start().await;
    let out = azure
        .run(&["plan", "tests/corpus/valid/everything.yaml"])
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("      reason: environment `AzureML-tensorflow-2.16-cuda12` does not exist in this workspace"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "      reason: environment `AzureML-sklearn-1.5` has no version `12` in this workspace"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with(" 2 blocked: the plan cannot be applied as is.\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_are_coloured_only_when_asked() {
    let azure = Local::start().await;
    let plain = azure.run(&["plan", PETS]).await;
    assert!(!plain.stdout.contains('\x1b'));
    let coloured = azure.run(&["--color", "always", "plan", PETS]).await;
    assert!(
        coloured
            .stdout
            .contains("  \x1b[32m+ cluster gpu-cluster\x1b[0m"),
        "{}",
        coloured.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_without_secret_access_still_plans() {
    let azure = Local::start().await;
    azure.seed(&[PETS]).await;
    let forbidden = FaultRule::always(Fault::ServerError { status: 403 })
        .on(FaultTarget::Arm)
        .path_contains("/listsecrets");
    azure.emulator.admin().set_faults(vec![forbidden], None);
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "note: registry myregistry: the password was not compared: listing the connection's secrets was refused (HTTP 403); grant `Microsoft.MachineLearningServices/workspaces/connections/listsecrets/action` to compare it\nNo changes. 5 resources are up to date.\n"
    );
}

#[test]
fn the_emulator_state_is_never_staged_by_git() {
    let specs = specs_copy();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(specs.path())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    let out = crate::cli::common::Test::new()
        .current_dir(specs.path())
        .args(["plan", "--emulator", "pets.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(specs.path().join(".amlspec/emulator").is_dir());
    git(&["add", "-A"]);
    let staged = git(&["diff", "--cached", "--name-only"]);
    assert!(staged.contains("pets.yaml"), "{staged}");
    assert!(!staged.contains(".amlspec"), "{staged}");
}

/// A spec copied into a folder of its own named `folder`, for a test to edit.
fn specs_in(folder: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(folder);
    crate::cli::common::copy_dir(&crate::cli::common::repo_root().join("specs"), &root);
    (dir, root)
}

/// The registry password's value, used elsewhere in the spec (description, tags,
/// username, environment variables), is masked in every plan format, the saved plan,
/// the step summary and the log at every level, raw and in every escaped form.
#[tokio::test(flavor = "multi_thread")]
async fn secret_values_are_masked_wherever_the_spec_uses_them() {
    use crate::cli::common::assert_no_leak;
    let azure = Local::start().await;
    // Escaped differently by JSON, GitHub's workflow commands and the plan's quoting.
    let secret = "s3cret\"quo\\te%d:,pw-Never-Shown";
    // The folder's name holds it too, so the log's lines naming the spec file carry it.
    let (_dir, root) = specs_in(&format!("team-{secret}"));
    let pets = root.join("pets.yaml");
    edit(
        &pets,
        "description: Pets classifier with a custom Docker image",
        "description: \"pw ${ACR_PASSWORD} end\"",
    );
    edit(
        &pets,
        "team: vision",
        "team: vision\n    owner: \"${ACR_PASSWORD}\"",
    );
    edit(&pets, "username: username", "username: ${ACR_PASSWORD}");
    edit(
        &pets,
        "description: fastai v2 from the team's registry",
        "description: ${ACR_PASSWORD}",
    );
    edit(
        &pets,
        "node_count: 1",
        "node_count: 1\n    environment_variables:\n      COPY: ${ACR_PASSWORD}",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let saved = out_dir.path().join("plan.json");
    let summary = out_dir.path().join("summary.md");
    for (format, log) in [
        ("human", "-vvv"),
        ("json", "-vv"),
        ("markdown", "-vv"),
        // RUST_LOG=trace below.
        ("github", "-v"),
    ] {
        let test = azure
            .cli(&[
                log,
                "plan",
                "--format",
                format,
                "--out",
                saved.to_str().unwrap(),
                pets.to_str().unwrap(),
            ])
            .env("ACR_PASSWORD", secret)
            .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
            .secret(secret);
        let test = if format == "github" {
            test.env("RUST_LOG", "trace")
        } else {
            test
        };
        let out = tokio::task::spawn_blocking(move || test.run())
            .await
            .unwrap();
        // The username (the secret) holds a `:`, which no registry takes: the image
        // check blocks the environment, and says so without the secret.
        assert_eq!(out.code, 1, "{format}: {}", out.stderr);
        assert!(
            out.stdout
                .contains("username `(sensitive)` and the password in $ACR_PASSWORD"),
            "{format}: {}",
            out.stdout
        );
        let plan = std::fs::read_to_string(&saved).unwrap();
        assert_no_leak("the saved plan", &plan, secret);
        assert!(plan.contains("\"pw (sensitive) end\""), "{plan}");
        if format == "json" {
            let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            let workspace = &plan["workspaces"][0]["resources"][4]["after"];
            assert_eq!(workspace["description"], "pw (sensitive) end");
            assert_eq!(workspace["tags"]["owner"], "(sensitive)");
        } else {
            assert!(out.stdout.contains("(sensitive) end"), "{}", out.stdout);
        }
        // The log names the spec file, whose folder holds the secret.
        assert!(
            out.stderr.contains("team-(sensitive)"),
            "{format}: {}",
            out.stderr
        );
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_no_leak("the step summary", &summary, secret);
    assert!(summary.contains("(sensitive) end"), "{summary}");
}

/// A secret's value in a value that fails validation (a registry address, an image) is
/// masked in the problem, even when the message cuts the value short.
#[test]
fn secret_values_are_masked_in_problems() {
    let secret = format!("s3cret{}", "x".repeat(70));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  description: ${ACR_PASSWORD}\nregistries:\n  - name: reg\n    address: ${ACR_PASSWORD}_.azurecr.io\n    username: u\n    password: ${ACR_PASSWORD}\nenvironments:\n  - name: env\n    image: \"${ACR_PASSWORD} latest\"\n",
    )
    .unwrap();
    let out = crate::cli::common::Test::new()
        .env("PATH", "/nonexistent")
        .env("ACR_PASSWORD", &secret)
        .secret(&secret)
        .args(["-vvv", "plan"])
        .arg_path(&spec)
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("registries[0].address: `(sensitive)…`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("environments[0].image: `(sensitive)…`"),
        "{}",
        out.stderr
    );
}

/// A secret short enough to turn up by chance is masked all the same, with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn short_secrets_are_masked_and_warned_about() {
    let azure = Local::start().await;
    azure
        .emulator
        .admin()
        .set_registry_user(
            "myregistry.azurecr.io",
            amlspec::emulator::RegistryUser {
                username: "username".into(),
                password: "vision".into(),
                repositories: None,
            },
        )
        .unwrap();
    let test = azure
        .cli(&["plan", PETS])
        .env("ACR_PASSWORD", "vision")
        .secret("vision");
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("      + tags: {\"team\":\"(sensitive)\"}\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.starts_with(
            "warning: specs/pets.yaml:20:15: `${ACR_PASSWORD}` holds a secret shorter than 8 characters"
        ),
        "{}",
        out.stderr
    );
}

/// Control characters, bidirectional overrides, markdown fences and HTML in spec text
/// are shown escaped in every plan format.
#[tokio::test(flavor = "multi_thread")]
async fn spec_text_is_escaped_in_every_format() {
    let azure = Local::start().await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(
        &pets,
        "description: Pets classifier with a custom Docker image",
        r#"description: "a\e]0;pwned\a b\rc\bd\0e\x7ff\u202Eg\u009bh\ti ``` ::error::x <b>y</b> %0A\nz""#,
    );
    edit(&pets, "team: vision", r#"team: "v\e[2J\u202Ex\x7f\u009b""#);
    let controls = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
            .collect()
    };
    let escaped = r#""a\u{1b}]0;pwned\u{7} b\rc\u{8}d\0e\u{7f}f\u{202e}g\u{9b}h\ti ``` ::error::x <b>y</b> %0A" (+1 more lines)"#;

    let plain = azure.run(&["plan", pets.to_str().unwrap()]).await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(
        controls(&plain.stdout),
        Vec::<char>::new(),
        "{}",
        plain.stdout
    );
    assert!(
        plain
            .stdout
            .contains(&format!("      + description: {escaped}\n")),
        "{}",
        plain.stdout
    );
    assert!(
        plain
            .stdout
            .contains(r#"      + tags: {"team":"v\u001b[2J\u{202e}x\u{7f}\u{9b}"}"#),
        "{}",
        plain.stdout
    );

    // With colour, the only escape sequences are the plan's own styles.
    let coloured = azure
        .run(&["--color", "always", "plan", pets.to_str().unwrap()])
        .await;
    let unstyled = ["\x1b[32m", "\x1b[0m"]
        .iter()
        .fold(coloured.stdout.clone(), |text, style| {
            text.replace(style, "")
        });
    assert_eq!(
        controls(&unstyled),
        Vec::<char>::new(),
        "{}",
        coloured.stdout
    );
    assert_ne!(unstyled, coloured.stdout, "the plan was coloured");

    let markdown = azure
        .run(&["plan", "--format", "markdown", pets.to_str().unwrap()])
        .await;
    assert_eq!(
        controls(&markdown.stdout),
        Vec::<char>::new(),
        "{}",
        markdown.stdout
    );
    // The fence is longer than any run of backticks inside it.
    assert!(
        markdown.stdout.contains("\n````diff\n") && markdown.stdout.contains("\n````\n"),
        "{}",
        markdown.stdout
    );
    assert!(
        markdown
            .stdout
            .contains(&format!("+     description: {escaped}\n")),
        "{}",
        markdown.stdout
    );

    let github = azure
        .run(&["plan", "--format", "github", pets.to_str().unwrap()])
        .await;
    assert_eq!(
        controls(&github.stdout),
        Vec::<char>::new(),
        "{}",
        github.stdout
    );
    // Only amlspec's own workflow commands start a line, even after trimming blanks.
    let commands: Vec<&str> = github
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("::"))
        .collect();
    assert_eq!(commands.len(), 9, "{}", github.stdout);
    let workspace = commands
        .iter()
        .find(|c| c.contains("title=amlspec plan%3A workspace pets-ws::"))
        .unwrap();
    assert!(
        workspace.contains(r#"%0A+ description: "a\u{1b}]0;pwned\u{7} b\rc"#)
            && workspace.contains(r#"::error::x <b>y</b> %250A"#),
        "{workspace}"
    );
}

/// The markdown plan marks each line once, and a blocked resource is not a change.
#[tokio::test(flavor = "multi_thread")]
async fn markdown_marks_lines_once_and_counts_blocked_apart() {
    let azure = Local::start().await;
    let out = azure
        .run(&["plan", "--format", "markdown", "specs/distributed.yaml"])
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("(resource group <code>ml-rg</code>): 1 blocked</summary>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "\n! workspace dist-ws (blocked)\n!     reason: workspace `dist-ws` does not exist"
        ),
        "{}",
        out.stdout
    );

    let out = azure
        .run(&[
            "plan",
            "--format",
            "markdown",
            "tests/corpus/valid/everything.yaml",
        ])
        .await;
    assert!(
        out.stdout
            .contains("(resource group <code>ml-rg</code>): 13 changes, 2 blocked</summary>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\n+ resource group ml-rg\n+     location: \"westeurope\"\n"),
        "{}",
        out.stdout
    );
    for doubled in ["+ +", "! ~", "! !", "- -", "+     +", "!     ~"] {
        assert!(
            !out.stdout.lines().any(|l| l.starts_with(doubled)),
            "{doubled}: {}",
            out.stdout
        );
    }
}

/// A plan that is blocked is an error (1) even when it also has changes, which
/// `--detailed-exitcode` would otherwise report as 2.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_plan_with_changes_exits_1_with_detailed_exitcode() {
    let azure = Local::start().await;
    let out = azure
        .run(&[
            "plan",
            "--detailed-exitcode",
            "tests/corpus/valid/everything.yaml",
        ])
        .await;
    assert!(
        out.stdout
            .ends_with("Plan: 13 to create, 0 to update, 0 to replace. 0 unchanged. 2 blocked: the plan cannot be applied as is.\n"),
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
}

/// The service principal's own secret is masked like a registry password when a spec
/// takes it from the environment.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_secret_is_masked_too() {
    let azure = Local::start().await;
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(
        &pets,
        "description: Pets classifier with a custom Docker image",
        "description: ${AZURE_CLIENT_SECRET}",
    );
    let test = azure
        .cli(&["plan", pets.to_str().unwrap()])
        .secret(azure.emulator.client_secret());
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("      + description: \"(sensitive)\"\n"),
        "{}",
        out.stdout
    );
}

/// A literal secret under a misspelled key is refused as an unknown key, and its value
/// is masked in the snippet that shows the line.
#[test]
fn literal_secrets_under_misspelled_keys_are_masked_in_snippets() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nregistries:\n  - name: reg\n    address: reg.azurecr.io\n    username: u\n    pasword: literal-Secret-one\n    Password: \"literal-Secret-two\"\n",
    )
    .unwrap();
    let out = crate::cli::common::Test::new()
        .env("PATH", "/nonexistent")
        .secret("literal-Secret-one")
        .secret("literal-Secret-two")
        .args(["plan"])
        .arg_path(&spec)
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("pasword: ******************"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Password: ********************"),
        "{}",
        out.stderr
    );
}

/// `show` renders a saved plan in every plan format without reading Azure: the same
/// text `plan` printed when it saved it.
#[tokio::test(flavor = "multi_thread")]
async fn show_renders_a_saved_plan_as_plan_did_without_azure() {
    let azure = Local::start().await;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("plan.json");
    let saved = saved.to_str().unwrap();
    for format in ["human", "markdown", "json"] {
        let planned = azure
            .run(&["plan", "--format", format, "--out", saved, PETS])
            .await;
        assert_eq!(planned.code, 0, "{}", planned.stderr);
        azure.emulator.admin().reset_traffic();
        // No connection options: it needs none.
        let shown = crate::cli::common::Test::new()
            .args(["show", "--format", format, saved])
            .run();
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert_eq!(shown.stdout, planned.stdout, "{format}");
        assert_eq!(
            azure.emulator.admin().traffic().arm.values().sum::<u64>(),
            0
        );
    }
    let shown = crate::cli::common::Test::new()
        .args(["show", "--detailed-exitcode", saved])
        .run();
    assert_eq!(shown.code, 2, "changes");

    std::fs::write(dir.path().join("bad.json"), "{\"format_version\": 1}").unwrap();
    let bad = dir.path().join("bad.json");
    let shown = crate::cli::common::Test::new()
        .args(["show"])
        .arg_path(&bad)
        .run();
    assert_eq!(shown.code, 1);
    assert!(
        shown
            .stderr
            .contains("is a plan of format version 1; this amlspec reads version 2"),
        "{}",
        shown.stderr
    );
}

/// `plan --format github` annotates why no plan was made (invalid specs, a failed
/// sign-in), and every `file=` is relative to `$GITHUB_WORKSPACE` wherever amlspec runs.
#[tokio::test(flavor = "multi_thread")]
async fn github_format_annotates_failures_relative_to_the_workspace() {
    let azure = Local::start().await;
    let root = crate::cli::common::repo_root();
    // Run from a sub-folder of the repository, naming the spec relative to it.
    let test = azure
        .cli(&[
            "plan",
            "--format",
            "github",
            "../corpus/invalid/job-unknown-cluster.yaml",
        ])
        .current_dir(&root.join("tests/cli"))
        .env("GITHUB_WORKSPACE", root.to_str().unwrap());
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "::error file=tests/corpus/invalid/job-unknown-cluster.yaml,line=20,col=14,title=amlspec%3A jobs[0].cluster::unknown cluster `gpu-clustr`%0Ahint: did you mean `gpu-cluster`?\n"
    );

    // A sign-in that fails: said on stderr and annotated.
    let test = azure
        .cli(&["plan", "--format", "github", PETS])
        .env("AZURE_CLIENT_SECRET", "not-the-secret-of-this-principal")
        .secret("not-the-secret-of-this-principal");
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let annotation = out
        .stdout
        .lines()
        .find(|l| l.starts_with("::error title=amlspec plan::"))
        .unwrap_or_else(|| panic!("no annotation: {}", out.stdout));
    let said = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert_eq!(
        annotation
            .strip_prefix("::error title=amlspec plan::")
            .unwrap(),
        said.strip_prefix("error: ").unwrap().replace('%', "%25")
    );

    // And a change's annotation, from a sub-folder too.
    let test = azure
        .cli(&["plan", "--format", "github", "../../specs/pets.yaml"])
        .current_dir(&root.join("tests/cli"))
        .env("GITHUB_WORKSPACE", root.to_str().unwrap());
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("::notice file=specs/pets.yaml,line=30,col=5,title=amlspec plan%3A cluster gpu-cluster::"),
        "{}",
        out.stdout
    );
}

/// `--unmanaged` lists what a workspace holds that no spec declares, one list request
/// per kind, and deletes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_lists_what_no_spec_declares() {
    let azure = Local::start().await;
    let desired = azure.seed(&[PETS]).await;
    let ws = &desired.workspaces[0];
    // Left over from an older manifest, or made by hand.
    let mut cluster = amlspec::bodies::compute(&ws.clusters[0], "westeurope");
    cluster["properties"]["properties"]["vmSize"] = json!("STANDARD_DS3_V2");
    azure
        .put(&ws.id.child("computes", "old-cpu"), ML_API_VERSION, cluster)
        .await;
    let mut connection = amlspec::bodies::connection(&ws.registries[0]);
    connection["properties"]["target"] = json!("other.azurecr.io");
    azure
        .put(
            &ws.id.child("connections", "other-acr"),
            ML_API_VERSION,
            connection,
        )
        .await;
    azure
        .put(
            &ws.id
                .child("environments", "abandoned")
                .child("versions", "1"),
            ML_API_VERSION,
            json!({"properties": {"image": "ubuntu:22.04"}}),
        )
        .await;

    let out = azure.run(&["plan", PETS]).await;
    assert_eq!(out.stdout, "No changes. 5 resources are up to date.\n");
    azure.emulator.admin().reset_traffic();
    let out = azure.run(&["plan", "--unmanaged", PETS]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "No changes. 5 resources are up to date.\n\nNot in any spec (3 resources; amlspec leaves them as they are):\n  cluster old-cpu in ml-rg/pets-ws\n  environment abandoned in ml-rg/pets-ws\n  registry other-acr in ml-rg/pets-ws\n"
    );
    // The plan's reads (5 GETs and the registry's listsecrets; the region's VM sizes,
    // usages and quotas for preflight), then one list per kind.
    assert_eq!(azure.emulator.admin().traffic().arm("GET"), 5 + 3 + 3);
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);
    let out = azure
        .run(&["plan", "--unmanaged", "--format", "json", PETS])
        .await;
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["unmanaged"][0]["type"], "cluster");
    assert_eq!(plan["unmanaged"][0]["name"], "old-cpu");
    assert_eq!(
        plan["unmanaged"][0]["id"],
        format!("{}/computes/old-cpu", ws.id)
    );
}

/// GitHub Actions OIDC, natively: with ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN set (as
/// in a job with `permissions: id-token: write`), amlspec asks GitHub for an ID token
/// for `api://AzureADTokenExchange` and signs in with it as a client assertion. Here a
/// local stand-in plays GitHub's token endpoint and the emulator trusts its issuer.
#[tokio::test(flavor = "multi_thread")]
async fn github_oidc_signs_in_without_a_stored_secret() {
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let request_token = "gh-request-token-for-this-job-0123456789";
    let azure = emulator_trusting_github("55555555-5555-5555-5555-555555555555").await;

    // GitHub's ID token endpoint, as the runner announces it.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/_apis/distributedtask/token",
        axum::routing::get(
            move |headers: HeaderMap, Query(query): Query<HashMap<String, String>>| {
                let record = record.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let audience = query.get("audience").cloned().unwrap_or_default();
                    record
                        .lock()
                        .unwrap()
                        .push((auth.clone(), audience.clone()));
                    if auth != format!("Bearer {request_token}") {
                        return (StatusCode::UNAUTHORIZED, String::new());
                    }
                    let jwt = github_id_token(&audience);
                    (
                        StatusCode::OK,
                        json!({"count": 1, "value": jwt}).to_string(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://127.0.0.1:{port}/_apis/distributedtask/token?api-version=2.0");

    let github = |token: &str| {
        azure
            .cli(&["plan", PETS])
            .env_remove("AMLSPEC_AUTH")
            .env_remove("AZURE_CLIENT_SECRET")
            .env("AZURE_CLIENT_ID", "55555555-5555-5555-5555-555555555555")
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", &url)
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", token)
            .secret(token)
    };
    // Found by `auto`: no --auth, no secret stored anywhere.
    let out = crate::cli::azure::run_test(github(request_token).args(["-v"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .ends_with("Plan: 9 to create, 0 to update, 0 to replace. 0 unchanged.\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("method=\"GitHub Actions OIDC\""),
        "{}",
        out.stderr
    );
    let asked = seen.lock().unwrap().clone();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|(auth, audience)| {
        auth == &format!("Bearer {request_token}") && audience == "api://AzureADTokenExchange"
    }));

    // A job without `id-token: write` gets no ID token: said, with what to do.
    let out = crate::cli::azure::run_test(github("not-the-token-of-this-job-42")).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("cannot get GitHub's ID token: HTTP 401")
            && out.stderr.contains("permissions: id-token: write"),
        "{}",
        out.stderr
    );
}

/// `--log-file` appends the whole log at trace level, masked as stderr is, whatever `-v`
/// says for stderr; a file that cannot be opened is an error naming it.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_file_has_the_whole_log_masked_and_appended() {
    let azure = Local::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("amlspec.log");
    let log_arg = log.to_str().unwrap().to_string();
    // The folder's name holds the secret, so the lines naming the spec file carry it.
    let (_specs, root) = specs_in(&format!("team-{}", crate::cli::common::PASSWORD));
    let pets = root.join("pets.yaml");
    for _ in 0..2 {
        let out = azure
            .run(&["--log-file", &log_arg, "plan", pets.to_str().unwrap()])
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        // stderr stays quiet at the default level.
        assert!(!out.stderr.contains("DEBUG"), "{}", out.stderr);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    crate::cli::common::assert_no_leak("the log file", &text, crate::cli::common::PASSWORD);
    assert_eq!(text.matches(" INFO loaded specs").count(), 2, "{text}");
    assert!(text.contains("DEBUG request method=GET"), "{text}");
    assert!(text.contains("team-(sensitive)/pets.yaml"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour in a file");
    let out = crate::cli::common::Test::new()
        .args([
            "--log-file",
            "/nonexistent/dir/amlspec.log",
            "validate",
            PETS,
        ])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: cannot open the log file `/nonexistent/dir/amlspec.log`"),
        "{}",
        out.stderr
    );
}
