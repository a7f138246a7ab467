//! `amlspec export` against the emulator: a workspace filled by `amlspec apply` and by
//! plain ARM requests (as another client would) is exported, and the manifest validates
//! and plans "No changes" with nothing unmanaged; what a manifest cannot say is left out
//! with a warning; no secret reaches the file, stdout or stderr; failures are errors
//! with hints.

use std::path::Path;

use amlspec::azure::ML_API_VERSION;
use amlspec::ids::ResourceId;
use serde_json::json;

use crate::cli::azure::Local;
use crate::cli::common::{PASSWORD, SUBSCRIPTION};

/// Never expected in any output: the password of a connection made by hand.
const CANARY: &str = "canary-Pa55word-made-by-hand-0xC0FFEE";

const SPEC: &str = r#"workspace:
  name: adopt-ws
  subscription_id: ${AZURE_SUBSCRIPTION_ID}
  resource_group: adopt-rg
  location: westeurope
  create_if_missing: true
  description: "Adopted: #1 of $${HOME}'s"
  tags:
    "cost: center": "42"
    team: vision

registries:
  - name: team-acr
    address: team.azurecr.io
    username: puller
    password: ${ACR_PASSWORD}

environments:
  - name: trainer
    image: pytorch/pytorch:2.1
    registry: team-acr
    user_managed_dependencies: true
    description: trainer image
  - name: hello
    dockerfile: |
      FROM ubuntu:22.04
      RUN echo "hello # not a comment: really"
  - name: custom
    dockerfile_path: docker/Dockerfile
  - name: sklearn
    image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
    conda_file: conda.yml

clusters:
  - name: gpu-cluster
    vm_size: Standard_NC4as_T4_v3
    max_nodes: 4
    idle_seconds_before_scale_down: 1800

jobs:
  - name: hello-job
    experiment: adoption
    command: echo "${GREETING}" && python -c 'print(1)'
    environment: hello
    cluster: gpu-cluster
    environment_variables:
      GREETING: hi there
  - name: dist-job
    command: python -m torch.distributed.run train.py
    environment: trainer
    cluster: gpu-cluster
    node_count: 2
    distribution:
      type: pytorch
      processes_per_node: 4
    tags:
      run: first
  - name: train-job
    source_directory: src
    script: train.py
    arguments: [--epochs, 5]
    environment: trainer
    cluster: gpu-cluster
"#;

/// The spec and the files it names, in a fresh folder.
fn spec_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adopt.yaml"), SPEC).unwrap();
    std::fs::write(
        dir.path().join("conda.yml"),
        "name: sk\ndependencies:\n  - python=3.10\n  - scikit-learn\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("docker")).unwrap();
    std::fs::write(
        dir.path().join("docker/Dockerfile"),
        "FROM ubuntu:22.04\nCOPY requirements.txt .\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("docker/requirements.txt"), "numpy\n").unwrap();
    std::fs::create_dir_all(dir.path().join("src/data")).unwrap();
    std::fs::write(dir.path().join("src/train.py"), "print('training')\n").unwrap();
    std::fs::write(dir.path().join("src/data/notes.txt"), "kept\n").unwrap();
    // Uploaded on purpose (`--allow-secret-files`): written back, it is pointed out.
    std::fs::write(dir.path().join("src/.env"), "TOKEN=not-a-real-one\n").unwrap();
    dir
}

fn workspace_id() -> ResourceId {
    ResourceId::workspace(SUBSCRIPTION, "adopt-rg", "adopt-ws")
}

/// What another client (the portal, az ml, the SDK) made in the workspace: a registry
/// connection with a password, a Git connection, a low-priority cluster with tricky
/// text, an environment with two versions, and a job.
async fn made_by_hand(azure: &Local) {
    let ws = workspace_id();
    azure
        .put(
            &ws.child("connections", "hand-acr"),
            ML_API_VERSION,
            json!({"properties": {
                "category": "ContainerRegistry", "authType": "UsernamePassword",
                "target": "Hand.AzureCR.io",
                "credentials": {"username": "hand-user", "password": CANARY},
            }}),
        )
        .await;
    azure
        .put(
            &ws.child("connections", "team-git"),
            ML_API_VERSION,
            json!({"properties": {
                "category": "Git", "authType": "PAT", "target": "https://github.com/team/repo",
                "credentials": {"pat": CANARY},
            }}),
        )
        .await;
    azure
        .put(
            &ws.child("computes", "cpu-small"),
            ML_API_VERSION,
            json!({"location": "westeurope", "tags": {"owner": "ünïcode ✓", "note": "a: b # c", "true": "yes"},
                "properties": {"computeType": "AmlCompute", "description": "made by hand:\n  #1 \u{202e}txet",
                "properties": {"vmSize": "Standard_DS3_v2", "vmPriority": "LowPriority",
                    "scaleSettings": {"minNodeCount": 1, "maxNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "PT5M"}}}}),
        )
        .await;
    for (version, image) in [("1", "ubuntu:20.04"), ("2", "ubuntu:22.04")] {
        azure
            .put(
                &ws.child("environments", "by-hand")
                    .child("versions", version),
                ML_API_VERSION,
                json!({"properties": {"image": image, "description": "uses ${NOT_A_VARIABLE}", "tags": {"v": version}}}),
            )
            .await;
    }
    azure
        .put(
            &ws.child("jobs", "manual-run-1"),
            ML_API_VERSION,
            json!({"properties": {
                "jobType": "Command", "command": "echo by hand",
                "environmentId": ws.child("environments", "by-hand").child("versions", "2").as_str(),
                "computeId": ws.child("computes", "cpu-small").as_str(),
            }}),
        )
        .await;
}

/// Text with the emulator's port (in storage URLs) made stable.
fn no_port(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".core.localhost:") {
        let (head, tail) = rest.split_at(at + ".core.localhost:".len());
        out.push_str(head);
        out.push_str("[PORT]");
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// The exported manifest with its time of export and the emulator's port made stable.
fn stable(text: &str) -> String {
    let text = &no_port(text);
    let mut out = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# at ") {
            let (_, after) = rest.split_once(". ").expect("the time ends a sentence");
            out.push_str(&format!("# at [TIME]. {after}\n"));
        } else {
            out.push_str(&line.replace(
                &format!("amlspec {}", env!("CARGO_PKG_VERSION")),
                "amlspec [VERSION]",
            ));
            out.push('\n');
        }
    }
    out
}

fn export_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "export",
        "--subscription",
        SUBSCRIPTION,
        "-g",
        "adopt-rg",
        "-w",
        "adopt-ws",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, CANARY] {
        crate::cli::common::assert_no_leak(what, text, secret);
    }
}

/// The acceptance test: apply a spec, add resources by hand, export, and the export
/// validates, plans "No changes" and leaves nothing unmanaged; twice the same.
#[tokio::test(flavor = "multi_thread")]
async fn an_exported_workspace_plans_no_changes_and_nothing_unmanaged() {
    let azure = Local::start().await;
    let specs = spec_folder();
    let spec = specs.path().join("adopt.yaml");
    let out = azure
        .run(&[
            "apply",
            "--auto-approve",
            "--allow-secret-files",
            spec.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    made_by_hand(&azure).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adopted.yaml");
    let file_arg = file.to_str().unwrap();
    let out = run_export(&azure, &export_args(file_arg, &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "", "the manifest goes to the file");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_no_secret("the exported manifest", &text);
    insta::assert_snapshot!("exported_manifest", stable(&text));
    insta::assert_snapshot!(
        "exported_conda_file",
        std::fs::read_to_string(dir.path().join("conda/sklearn.yml")).unwrap()
    );
    insta::assert_snapshot!(
        "export_warnings",
        no_port(&out.stderr.replace(file_arg, "[FILE]"))
    );

    // It validates, plans no changes, and leaves nothing unmanaged, with the
    // passwords' variables set (as the warnings say).
    let with_passwords = |test: crate::cli::common::Test| {
        test.env("TEAM_ACR_PASSWORD", PASSWORD)
            .env("HAND_ACR_PASSWORD", CANARY)
            .secret(CANARY)
    };
    let out = crate::cli::azure::run_test(with_passwords(
        crate::cli::common::Test::new().args(["validate", file_arg]),
    ))
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = crate::cli::azure::run_test(with_passwords(azure.cli(&[
        "plan",
        "--detailed-exitcode",
        "--unmanaged",
        file_arg,
    ])))
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "No changes. 13 resources are up to date.\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr, "");

    // A file is never overwritten by accident; with --force it is, to the same text.
    let out = run_export(&azure, &export_args(file_arg, &[])).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("exists: pass --force"),
        "{}",
        out.stderr
    );
    let out = run_export(&azure, &export_args(file_arg, &["--force"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        stable(&std::fs::read_to_string(&file).unwrap()),
        stable(&text)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        4,
        "the manifest, code/, conda/ and environments/: {leftovers:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("code/train-job/data/notes.txt")).unwrap(),
        "kept\n"
    );
    // Nor a folder written back whole, whose extra files would change its hash.
    std::fs::remove_file(&file).unwrap();
    let out = run_export(&azure, &export_args(file_arg, &[])).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("environments/custom` exists"),
        "{}",
        out.stderr
    );
    assert!(!file.exists());
}

async fn run_export(azure: &Local, args: &[&str]) -> crate::cli::common::Output {
    crate::cli::azure::run_test(azure.cli(args).secret(CANARY)).await
}

/// On stdout (`export > spec.yaml`), with nowhere to write a conda file: the manifest
/// still validates, the environment that needs one is left out with a warning saying to
/// use --out, and a folder given to --out gets `<workspace>.yaml`.
#[tokio::test(flavor = "multi_thread")]
async fn to_stdout_or_a_folder() {
    let azure = Local::start().await;
    let specs = spec_folder();
    let spec = specs.path().join("adopt.yaml");
    let out = azure
        .run(&[
            "apply",
            "--auto-approve",
            "--allow-secret-files",
            spec.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = run_export(
        &azure,
        &[
            "export",
            "--subscription",
            SUBSCRIPTION,
            "--resource-group",
            "adopt-rg",
            "--workspace",
            "adopt-ws",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("# yaml-language-server: $schema=../schemas/amlspec.schema.json\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("- name: sklearn"), "{}", out.stdout);
    assert!(!out.stdout.contains("- name: custom"), "{}", out.stdout);
    assert!(
        out.stderr.contains("warning: environment `sklearn:")
            && out.stderr.contains("export with --out to write it"),
        "{}",
        out.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("from-stdout.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = crate::cli::azure::run_test(
        crate::cli::common::Test::new()
            .args(["validate", file.to_str().unwrap()])
            .env("TEAM_ACR_PASSWORD", PASSWORD),
    )
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let out = run_export(
        &azure,
        &export_args(
            dir.path().to_str().unwrap(),
            &["--schema", "https://example.com/amlspec.schema.json"],
        ),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path().join("adopt-ws.yaml")).unwrap();
    assert!(
        text.starts_with(
            "# yaml-language-server: $schema=https://example.com/amlspec.schema.json\n"
        ),
        "{text}"
    );
    assert!(Path::new(&dir.path().join("conda/sklearn.yml")).exists());
}

/// A missing workspace or resource group, a name Azure would refuse, and a refused
/// read: each one error naming what failed, with what to do; nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn failures_name_what_failed_and_what_to_do() {
    let azure = Local::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.yaml");
    let file_arg = file.to_str().unwrap();
    let out = run_export(&azure, &export_args(file_arg, &[])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "error: resource group `adopt-rg` does not exist in subscription `{SUBSCRIPTION}`\nhint: check the resource group's name and the subscription (`--subscription`)\n"
        )
    );
    azure
        .put(
            &ResourceId::resource_group(SUBSCRIPTION, "adopt-rg"),
            amlspec::azure::RESOURCES_API_VERSION,
            json!({"location": "westeurope"}),
        )
        .await;
    let out = run_export(&azure, &export_args(file_arg, &[])).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "error: workspace `adopt-ws` does not exist in resource group `adopt-rg` of subscription `{SUBSCRIPTION}`\nhint: check the names: `az ml workspace list -g adopt-rg` lists the workspaces of the group\n"
        )
    );
    assert!(!file.exists());

    let out = run_export(
        &azure,
        &[
            "export",
            "--subscription",
            SUBSCRIPTION,
            "-g",
            "adopt-rg",
            "-w",
            "bad/name?x",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "a usage error: {}", out.stderr);
    assert!(
        out.stderr.contains("'--workspace <NAME>'"),
        "{}",
        out.stderr
    );
    let out = run_export(
        &azure,
        &[
            "export",
            "--subscription",
            "not-a-guid",
            "-g",
            "adopt-rg",
            "-w",
            "adopt-ws",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is a GUID"), "{}", out.stderr);
}

/// An identity that may not read the workspace: the ARM error with its request id, and
/// the role that export needs.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_read_names_the_role_to_grant() {
    let mut config = crate::cli::azure::config();
    config.principals = vec![amlspec::emulator::ServicePrincipal {
        client_id: "33333333-3333-3333-3333-333333333333".into(),
        client_secret: Some("scoped-secret".into()),
        federated: Vec::new(),
        scopes: vec!["/subscriptions/00000000-0000-0000-0000-000000000002".into()],
    }];
    let azure = Local::start_with(config).await;
    let out = run_export(
        &azure,
        &[
            "export",
            "--subscription",
            SUBSCRIPTION,
            "-g",
            "adopt-rg",
            "-w",
            "adopt-ws",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "error: failed to read workspace adopt-ws: HTTP 403 AuthorizationFailed: "
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(x-ms-request-id: "), "{}", out.stderr);
    assert!(
        out.stderr.ends_with(
            "hint: export only reads: grant the identity Reader on the workspace (or its resource group)\n"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}
