//! `amlspec validate` as a user runs it: exit codes, output formats, colour, several
//! files and folders, and workspaces declared across files.

use std::fs;

use crate::common::Test;

#[test]
fn valid_spec_exits_0_and_says_what_it_holds() {
    let out = Test::new().args(["validate", "specs/pets.yaml"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "ok: workspace pets-ws (resource group ml-rg): 1 registry, 1 environment, 1 cluster, 1 job\n1 file valid\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn invalid_spec_exits_1_with_located_problems_on_stderr() {
    let out = Test::new()
        .args(["validate", "tests/corpus/invalid/cluster-unknown-key.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(
            "error: tests/corpus/invalid/cluster-unknown-key.yaml:9:5: clusters[0].vmsize: unknown key `vmsize`\n"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("= hint: did you mean `vm_size`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with("1 file checked: 1 error\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_file_is_checked_in_one_run() {
    let out = Test::new()
        .args([
            "validate",
            "tests/corpus/invalid/workspace-name-too-short.yaml",
            "tests/corpus/invalid/job-unknown-cluster.yaml",
        ])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("workspace-name-too-short.yaml:4:9: workspace.name"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "job-unknown-cluster.yaml:20:14: jobs[0].cluster: unknown cluster `gpu-clustr`"
        )
    );
    assert!(
        out.stderr.ends_with("2 files checked: 2 errors\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_format_is_versioned_and_located() {
    let out = Test::new()
        .args([
            "validate",
            "--format",
            "json",
            "tests/corpus/invalid/job-unknown-cluster.yaml",
        ])
        .run();
    assert_eq!(out.code, 1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 1);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(diagnostic["line"], 20);
    assert_eq!(diagnostic["column"], 14);
    assert_eq!(diagnostic["path"], "jobs[0].cluster");
    assert_eq!(diagnostic["hint"], "did you mean `gpu-cluster`?");

    let out = Test::new()
        .args(["validate", "--format", "json", "specs/pets.yaml"])
        .run();
    assert_eq!(out.code, 0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["diagnostics"], serde_json::json!([]));
}

#[test]
fn github_format_annotates_the_line() {
    let out = Test::new()
        .args([
            "validate",
            "--format",
            "github",
            "tests/corpus/invalid/job-unknown-cluster.yaml",
        ])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "::error file=tests/corpus/invalid/job-unknown-cluster.yaml,line=20,col=14,title=amlspec%3A jobs[0].cluster::unknown cluster `gpu-clustr`%0Ahint: did you mean `gpu-cluster`?\n"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let file = "tests/corpus/invalid/cluster-max-zero.yaml";
    let plain = Test::new().args(["validate", file]).run();
    assert!(!plain.stderr.contains('\x1b'), "not a terminal: no colour");
    let forced = Test::new()
        .args(["validate", "--color", "always", file])
        .run();
    assert!(forced.stderr.contains('\x1b'), "--color always colours");
    let no_color = Test::new()
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .args(["validate", file])
        .run();
    assert!(
        !no_color.stderr.contains('\x1b'),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    let clicolor = Test::new()
        .env("CLICOLOR_FORCE", "1")
        .args(["validate", file])
        .run();
    assert!(clicolor.stderr.contains('\x1b'));
}

#[test]
fn missing_variable_is_named() {
    let out = Test::new()
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .args(["validate", "specs/pets.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "specs/pets.yaml:8:20: workspace.subscription_id: environment variable `AZURE_SUBSCRIPTION_ID` is not set"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_folder_is_one_run_over_its_spec_files() {
    let out = Test::new()
        .args(["validate", "specs", "specs/multi-workspace"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    for ws in ["pets-ws", "examples-ws", "dist-ws", "pets-dev", "pets-prod"] {
        assert!(
            out.stdout.contains(&format!("ok: workspace {ws} ")),
            "{ws}: {}",
            out.stdout
        );
    }
    assert!(out.stdout.ends_with("5 files valid\n"), "{}", out.stdout);
}

#[test]
fn missing_paths_and_empty_folders_are_errors() {
    let empty = tempfile::tempdir().unwrap();
    let out = Test::new()
        .args(["validate", "specs/nope.yaml"])
        .arg_path(empty.path())
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("error: specs/nope.yaml: no such file or folder"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the folder holds no spec files"),
        "{}",
        out.stderr
    );
}

const WORKSPACE: &str = "workspace:\n  name: shared-ws\n  subscription_id: ${AZURE_SUBSCRIPTION_ID}\n  resource_group: ml-rg\n  location: westeurope\n";

/// Write files into a fresh folder and validate the folder.
fn validate_folder(files: &[(&str, &str)]) -> crate::common::Output {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    Test::new()
        .current_dir(dir.path())
        .args(["validate", "."])
        .run()
}

#[test]
fn one_workspace_may_span_files_and_refer_across_them() {
    let clusters = format!(
        "{WORKSPACE}clusters:\n  - name: gpu-cluster\n    vm_size: STANDARD_NC6\n    max_nodes: 2\n"
    );
    let jobs = format!(
        "{WORKSPACE}environments:\n  - name: env\n    image: ubuntu:22.04\n    user_managed_dependencies: true\njobs:\n  - name: probe\n    command: nvidia-smi\n    environment: env\n    cluster: gpu-cluster\n"
    );
    let out = validate_folder(&[("a-clusters.yaml", &clusters), ("b-jobs.yaml", &jobs)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "ok: workspace shared-ws (resource group ml-rg): 0 registries, 1 environment, 1 cluster, 1 job\n2 files valid\n"
    );
}

#[test]
fn conflicting_declarations_and_duplicates_across_files() {
    let first = format!(
        "{WORKSPACE}clusters:\n  - name: gpu-cluster\n    vm_size: STANDARD_NC6\n    max_nodes: 2\n"
    );
    let second = format!(
        "{}clusters:\n  - name: GPU-cluster\n    vm_size: STANDARD_NC6\n    max_nodes: 2\n",
        WORKSPACE.replace("westeurope", "northeurope")
    );
    let out = validate_folder(&[("a.yaml", &first), ("b.yaml", &second)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("error: ./b.yaml:2:3: workspace: workspace `shared-ws` is declared differently at ./a.yaml:2:3 (location `westeurope` vs `northeurope`)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: ./b.yaml:7:11: clusters[0].name: cluster `GPU-cluster` is declared twice in this workspace"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the first declaration is at ./a.yaml:7:11"),
        "{}",
        out.stderr
    );
}

#[test]
fn conda_files_beside_specs_are_not_read_as_specs() {
    let spec = format!(
        "{WORKSPACE}environments:\n  - name: sk\n    image: ubuntu:22.04\n    conda_file: conda.yml\n"
    );
    let out = validate_folder(&[
        ("spec.yaml", &spec),
        ("conda.yml", "name: sk\ndependencies:\n  - python=3.11\n"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("1 file valid\n"), "{}", out.stdout);
}

#[test]
fn verbose_flag_logs_to_stderr() {
    let out = Test::new()
        .args(["-vv", "validate", "specs/pets.yaml"])
        .run();
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("DEBUG"), "{}", out.stderr);
    assert!(!out.stdout.contains("DEBUG"));
    let quiet = Test::new().args(["validate", "specs/pets.yaml"]).run();
    assert_eq!(quiet.stderr, "");
}

#[test]
fn help_explains_the_flags() {
    let out = Test::new().args(["validate", "--help"]).run();
    assert_eq!(out.code, 0);
    for text in [
        "--format",
        "human",
        "json",
        "github",
        "--color",
        "NO_COLOR",
        "--verbose",
        "RUST_LOG",
        "FILE|DIR",
    ] {
        assert!(out.stdout.contains(text), "{text}: {}", out.stdout);
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = Test::new().args(["validate"]).run();
    assert_eq!(out.code, 2);
    let out = Test::new()
        .args(["validate", "--format", "xml", "specs/pets.yaml"])
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("possible values: human, json, github"),
        "{}",
        out.stderr
    );
}

#[test]
fn subscription_is_checked_after_interpolation() {
    let out = Test::new()
        .env("AZURE_SUBSCRIPTION_ID", "not-a-guid")
        .args(["validate", "specs/pets.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "subscription id `not-a-guid` (from `${AZURE_SUBSCRIPTION_ID}`) is not a GUID"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn huge_values_and_files_get_short_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let huge_scalar = dir.path().join("huge-scalar.yaml");
    fs::write(
        &huge_scalar,
        format!(
            "{WORKSPACE}  description: ok\nclusters:\n  - name: {}\n",
            "c".repeat(3_000_000)
        ),
    )
    .unwrap();
    let out = Test::new().args(["validate"]).arg_path(&huge_scalar).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("is 3000000 characters long; it must be 3 to 24"),
        "{}",
        &out.stderr[..500.min(out.stderr.len())]
    );
    assert!(
        out.stderr.len() < 2_000,
        "the message stays short: {} bytes",
        out.stderr.len()
    );

    let huge_file = dir.path().join("huge-file.yaml");
    fs::write(
        &huge_file,
        format!(
            "{WORKSPACE}  description: {}\n",
            "d".repeat(5 * 1024 * 1024)
        ),
    )
    .unwrap();
    let out = Test::new().args(["validate"]).arg_path(&huge_file).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("more than the 4 MiB a spec may have"),
        "{}",
        out.stderr
    );
}
