//! The malformed-spec corpus: every file in tests/corpus/invalid must be refused, each
//! problem must name file:line:column (unless it concerns the whole file), and the
//! exact diagnostics are snapshotted.

use std::path::Path;

use amlspec::render::diagnostics;
use amlspec::spec;

use crate::cli::common::{PASSWORD, env_vars, relative};

/// Problems that concern a whole file and so have no position.
const WHOLE_FILE: &[&str] = &["empty.yaml", "only-comments.yaml", "utf16.yaml"];

fn check(path: &Path) -> String {
    let file = relative(path);
    let loaded = spec::load(std::slice::from_ref(&file), &env_vars());
    assert!(loaded.has_errors(), "{} should be invalid", file.display());
    assert!(loaded.specs.is_none());
    let name = file.file_name().unwrap().to_str().unwrap();
    let source = std::fs::read(path).unwrap();
    let lines = source.split(|b| *b == b'\n').count() as u32;
    for problem in &loaded.problems {
        assert_eq!(problem.file, file, "problems name the file as given");
        match problem.span {
            Some(span) => {
                assert!(
                    span.line >= 1 && span.line <= lines,
                    "{name}: line {} out of range",
                    span.line
                );
                assert!(span.column >= 1, "{name}: column {}", span.column);
                assert!(problem.headline().starts_with(&format!(
                    "{}:{}:{}: ",
                    file.display(),
                    span.line,
                    span.column
                )));
            }
            None => assert!(
                WHOLE_FILE.contains(&name),
                "{name}: `{}` has no position",
                problem.message
            ),
        }
    }
    let mut out = String::new();
    for problem in &loaded.problems {
        out.push_str(&diagnostics::human(problem, &loaded.sources, false));
        out.push_str("\n\n");
    }
    out.push_str(&diagnostics::summary(&loaded.problems, loaded.files.len()));
    assert!(!out.contains(PASSWORD));
    // The corpus writes its literal secrets as `hunter2`, under any key.
    assert!(!out.contains("hunter2"), "{out}");
    out
}

#[test]
fn invalid_specs_are_refused_with_positions() {
    let mut count = 0;
    insta::glob!("..", "corpus/invalid/*.yaml", |path| {
        count += 1;
        let out = check(path);
        insta::assert_snapshot!(out);
    });
    assert!(
        count >= 60,
        "the corpus has {count} files; keep at least 60"
    );
}

#[test]
fn valid_corpus_and_examples_load() {
    for dir in ["tests/corpus/valid", "specs", "specs/multi-workspace"] {
        let loaded = spec::load(&[dir.into()], &env_vars());
        assert!(!loaded.has_errors(), "{dir}: {:#?}", loaded.problems);
        assert!(loaded.problems.is_empty(), "{dir}: {:#?}", loaded.problems);
    }
}

#[test]
fn many_problems_in_one_file_are_all_reported() {
    let loaded = spec::load(
        &["tests/corpus/invalid/many-problems.yaml".into()],
        &env_vars(),
    );
    let paths: Vec<&str> = loaded.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "workspace.name",
            "environments[0].image",
            "clusters[0].max_nodes",
            "jobs[0].cluster"
        ]
    );
}

#[test]
fn secrets_never_reach_diagnostics_or_sources() {
    let loaded = spec::load(
        &["tests/corpus/invalid/registry-literal-password.yaml".into()],
        &env_vars(),
    );
    let shown = format!("{:?} {:?}", loaded.problems, loaded.sources);
    assert!(!shown.contains("hunter2"), "{shown}");
    let loaded = spec::load(&["tests/corpus/valid/everything.yaml".into()], &env_vars());
    let shown = format!("{:?}", loaded.specs);
    assert!(!shown.contains(PASSWORD));
    assert!(shown.contains("(sensitive)"));
}

#[test]
fn references_ignore_case_and_keep_the_declared_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n\
         registries:\n  - name: myregistry\n    address: myregistry.azurecr.io\n    username: u\n    password: ${ACR_PASSWORD}\n\
         environments:\n  - name: env\n    image: team/img:1\n    registry: MyRegistry\n    user_managed_dependencies: true\n",
    )
    .unwrap();
    let loaded = spec::load(&[spec], &env_vars());
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    let environment = &loaded.specs.unwrap().workspaces[0].environments[0];
    assert_eq!(
        environment.registry.as_ref().map(|r| r.as_str()),
        Some("myregistry")
    );
    assert!(
        matches!(&environment.build, amlspec::spec::model::EnvironmentBuild::Image { image, .. } if image == "myregistry.azurecr.io/team/img:1")
    );
}
