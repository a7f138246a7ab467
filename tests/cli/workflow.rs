//! The GitHub workflow in examples/github: it parses, it names only flags amlspec has,
//! it keeps its promises (OIDC, a plan shown even when blocked or failed, applies that
//! never race), and its amlspec commands, run in order against the emulator, plan on a
//! pull request and apply that plan on main.

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
