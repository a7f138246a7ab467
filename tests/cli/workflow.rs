//! The GitHub workflow in examples/github: it parses, it names only flags amlspec has,
//! it keeps its promises (OIDC, a plan shown even when blocked or failed, applies that
//! never race), and its amlspec commands, run in order against the emulator, plan on a
//! pull request and apply that plan on main.
//!
//! The release workflow in .github/workflows: it builds every platform from the locked
//! tree, and its version check, smoke test and packaging steps, run here with bash as
//! GitHub runs them, do what they say.

use amlspec::cli::Cli;
use clap::Parser;

use crate::cli::azure::{Local, run_test};
use crate::cli::common::{Test, repo_root, specs_copy};

fn workflow() -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo_root().join("examples/github/amlspec.yml")).unwrap();
    serde_yaml::from_str(&text).expect("the workflow is YAML")
}

/// Every `amlspec ...` line of the job's `run:` steps, as words (up to a redirection).
fn amlspec_commands(job: &serde_yaml::Value) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for step in job["steps"].as_sequence().unwrap() {
        let Some(run) = step["run"].as_str() else {
            continue;
        };
        for line in run.lines().map(str::trim) {
            if line.starts_with("amlspec ") {
                commands.push(
                    line.split_whitespace()
                        .take_while(|w| *w != ">")
                        .map(str::to_string)
                        .collect(),
                );
            }
        }
    }
    commands
}

#[test]
fn the_workflow_parses_keeps_its_promises_and_names_only_real_flags() {
    let workflow = workflow();
    let jobs = &workflow["jobs"];
    for job in ["plan", "apply"] {
        assert_eq!(
            jobs[job]["permissions"]["id-token"], "write",
            "{job} signs in with GitHub OIDC"
        );
    }
    assert_eq!(jobs["apply"]["concurrency"]["group"], "amlspec-apply");
    assert_eq!(jobs["apply"]["concurrency"]["cancel-in-progress"], false);
    // The plan is shown (comment, summary) even when the plan step failed.
    let steps = jobs["plan"]["steps"].as_sequence().unwrap();
    for name in [
        "Plan as markdown",
        "Comment the plan on the pull request, updated in place",
    ] {
        let step = steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step `{name}`"));
        assert!(step["if"].as_str().unwrap().contains("always()"), "{name}");
    }
    let mut all = amlspec_commands(&jobs["plan"]);
    all.extend(amlspec_commands(&jobs["apply"]));
    assert_eq!(all.len(), 4, "{all:?}");
    for command in &all {
        if let Err(error) = Cli::try_parse_from(command) {
            panic!(
                "`{}` is not a valid amlspec command: {error}",
                command.join(" ")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workflows_commands_plan_a_pull_request_and_apply_it_on_main() {
    let workflow = workflow();
    let plan_job = amlspec_commands(&workflow["jobs"]["plan"]);
    let apply_job = amlspec_commands(&workflow["jobs"]["apply"]);
    let azure = Local::start().await;
    let repo = tempfile::tempdir().unwrap();
    let specs = specs_copy();
    std::fs::rename(specs.path(), repo.path().join("specs")).unwrap();
    // The other examples need more than this workspace has (an existing workspace,
    // paths outside): this repository's specs/ holds pets.yaml and its source.
    for entry in std::fs::read_dir(repo.path().join("specs")).unwrap() {
        let path = entry.unwrap().path();
        let keep = ["pets.yaml", "fastai-example"];
        if !keep.iter().any(|k| path.ends_with(k)) {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let run = |command: &[String], connect: bool| {
        let test = if connect {
            azure.cli(&command[1..].iter().map(String::as_str).collect::<Vec<_>>())
        } else {
            Test::new().args(&command[1..])
        };
        run_test(test.current_dir(repo.path()))
    };
    // A pull request from a fork: no secrets, values not checked.
    let validate = &plan_job[0];
    assert_eq!(validate[1], "validate");
    let out = run_test(
        Test::new()
            .args(&validate[1..])
            .env_remove("ACR_PASSWORD")
            .current_dir(repo.path()),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A pull request from the repository: plan, saved; then shown as markdown.
    let out = run(&plan_job[1], true).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("::notice file=specs/pets.yaml"),
        "{}",
        out.stdout
    );
    let out = run(&plan_job[2], false).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("### amlspec plan\n"),
        "{}",
        out.stdout
    );
    // Merged: the plan the pull request showed is applied, and the job followed.
    let out = run(&apply_job[0], true).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Apply complete"), "{}", out.stdout);
    assert!(out.stdout.contains(": Completed after "), "{}", out.stdout);
    // Applied again (a re-run of the job): the saved plan is stale now, and refused.
    let out = run(&apply_job[0], true).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("the saved plan no longer describes"),
        "{}",
        out.stderr
    );
}

fn release() -> serde_yaml::Value {
    let path = repo_root().join(".github/workflows/release.yml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).expect("the release workflow is YAML")
}

/// The `run:` script of the build job's step `name`, with the matrix entry's values in
/// place of `${{ matrix.* }}` and `${{ runner.os }}`.
fn build_step(release: &serde_yaml::Value, name: &str, target: &str, os: &str) -> String {
    let steps = release["jobs"]["build"]["steps"].as_sequence().unwrap();
    let step = steps
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step `{name}`"));
    step["run"]
        .as_str()
        .unwrap()
        .replace("${{ matrix.target }}", target)
        .replace("${{ matrix.ext }}", "")
        .replace("${{ runner.os }}", os)
}

/// Run a step's script as GitHub's `shell: bash` does, in `dir`, with `tag` as the ref.
fn run_bash(script: &str, dir: &std::path::Path, tag: &str) -> std::process::Output {
    std::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("GITHUB_REF_NAME", tag)
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("ACR_PASSWORD")
        .output()
        .unwrap()
}

#[test]
fn the_release_workflow_builds_linux_macos_and_windows_from_the_locked_tree() {
    let release = release();
    assert_eq!(release["on"]["push"]["tags"][0], "v*");
    assert_eq!(release["permissions"]["contents"], "read");
    assert_eq!(release["jobs"]["release"]["needs"], "build");
    assert_eq!(
        release["jobs"]["release"]["permissions"]["contents"],
        "write"
    );
    let build = &release["jobs"]["build"];
    assert_eq!(build["defaults"]["run"]["shell"], "bash");
    let known = std::process::Command::new("rustc")
        .args(["--print", "target-list"])
        .output()
        .unwrap();
    let known = String::from_utf8(known.stdout).unwrap();
    let matrix = build["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap();
    let mut systems = std::collections::BTreeSet::new();
    for entry in matrix {
        let target = entry["target"].as_str().unwrap();
        let runner = entry["runner"].as_str().unwrap();
        assert!(
            known.lines().any(|t| t == target),
            "unknown target {target}"
        );
        // Built natively: the runner's system and architecture are the target's.
        let system = match target {
            t if t.contains("-linux-") => "ubuntu",
            t if t.contains("-apple-") => "macos",
            t if t.contains("-windows-") => "windows",
            other => panic!("a target for no runner: {other}"),
        };
        assert!(runner.starts_with(system), "{target} on {runner}");
        let arm_runner = runner.ends_with("-arm") || runner == "macos-14";
        assert_eq!(
            target.starts_with("aarch64"),
            arm_runner,
            "{target} on {runner}"
        );
        let ext = if system == "windows" { ".exe" } else { "" };
        assert_eq!(entry["ext"], ext, "{target}");
        systems.insert(system);
    }
    assert_eq!(systems.len(), 3, "{systems:?}");
    // Every cargo command builds the release from Cargo.lock as committed.
    let steps = build["steps"].as_sequence().unwrap();
    let cargo: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|line| line.starts_with("cargo "))
        .collect();
    assert!(!cargo.is_empty());
    for line in cargo {
        assert!(
            line.contains("--locked") && line.contains("--release"),
            "{line}"
        );
    }
    // The smoke test's amlspec commands are real ones.
    let smoke = build_step(&release, "Smoke test", "t", "Linux");
    let commands: Vec<Vec<&str>> = smoke
        .lines()
        .map(|l| l.trim().trim_end_matches('\\').trim())
        .filter_map(|l| l.strip_prefix("\"$bin\""))
        .map(|rest| {
            std::iter::once("amlspec")
                .chain(rest.split_whitespace())
                .collect()
        })
        .collect();
    assert_eq!(commands.len(), 3, "{smoke}");
    for command in commands {
        match Cli::try_parse_from(&command) {
            Ok(_) => {}
            Err(error) if error.kind() == clap::error::ErrorKind::DisplayVersion => {}
            Err(error) => {
                panic!(
                    "`{}` is not a valid amlspec command: {error}",
                    command.join(" ")
                )
            }
        }
    }
}

#[test]
fn the_release_workflows_version_check_smoke_test_and_packaging_run() {
    let release = release();
    let target = "x86_64-unknown-linux-gnu";
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    // The tag must be the version in Cargo.toml, and no other.
    let check = build_step(
        &release,
        "The tag is the version in Cargo.toml",
        target,
        "Linux",
    );
    let out = run_bash(&check, &repo_root(), &version);
    assert!(out.status.success(), "{out:?}");
    for wrong in ["v0.0.0-not-this", "0.1.0", ""] {
        let out = run_bash(&check, &repo_root(), wrong);
        assert!(!out.status.success(), "{wrong}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("::error::"), "{stdout}");
    }
    // The smoke test and the packaging, on this test's build of amlspec where the
    // workflow's `cargo build` leaves its binary.
    let dir = tempfile::tempdir().unwrap();
    let release_dir = dir.path().join("target").join(target).join("release");
    std::fs::create_dir_all(&release_dir).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_amlspec"), release_dir.join("amlspec")).unwrap();
    crate::cli::common::copy_dir(&repo_root().join("specs"), &dir.path().join("specs"));
    for file in ["README.md", "LICENSE"] {
        std::fs::copy(repo_root().join(file), dir.path().join(file)).unwrap();
    }
    let smoke = build_step(&release, "Smoke test", target, "Linux");
    let out = run_bash(&smoke, dir.path(), &version);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    assert!(stdout.contains("Plan: 9 to create"), "{stdout}");
    let package = build_step(&release, "Package", target, "Linux");
    let out = run_bash(&package, dir.path(), &version);
    assert!(out.status.success(), "{out:?}");
    let name = format!("amlspec-{version}-{target}");
    let archive = dir.path().join(format!("{name}.tar.gz"));
    let listing = std::process::Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    for file in ["amlspec", "README.md", "LICENSE"] {
        assert!(
            listing.lines().any(|l| l == format!("{name}/{file}")),
            "{listing}"
        );
    }
    // The sum file checks the archive it names.
    let out = std::process::Command::new("shasum")
        .args(["-a", "256", "-c"])
        .arg(format!("{name}.tar.gz.sha256"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
