//! Fuzz body: a spec file's bytes through the loader and validator, and every problem
//! through each renderer. Must never panic, hang or grow without bound.

use std::collections::BTreeMap;
use std::path::PathBuf;

use amlspec::render::GithubPaths;
use amlspec::spec::interpolate::EnvVars;

pub fn run(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, bytes).expect("the spec is written");
    // A folder a spec may name, and a conda file.
    std::fs::create_dir_all(dir.path().join("src")).expect("a source folder");
    std::fs::write(dir.path().join("src/train.py"), "print(1)\n").expect("a source file");
    std::fs::write(
        dir.path().join("conda.yml"),
        "dependencies: [python=3.11]\n",
    )
    .expect("a conda file");
    let env: EnvVars = [
        (
            "AZURE_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-000000000001",
        ),
        ("ACR_PASSWORD", "fuzz-Pa55word-never-printed"),
        ("SHORT", "pw"),
    ]
    .into_iter()
    .collect();
    let loaded = amlspec::spec::load(&[path], &env);
    // What the CLI masks at every sink once the specs are loaded (`ops::load`).
    let redactor =
        amlspec::render::redact::Redactor::new(amlspec::ops::load::secret_values(&loaded, &env));
    let github = GithubPaths {
        cwd: dir.path().to_path_buf(),
        workspace: None,
    };
    for problem in &loaded.problems {
        let human = amlspec::render::diagnostics::human(problem, &loaded.sources, false);
        let styled = amlspec::render::diagnostics::human(problem, &loaded.sources, true);
        let github = amlspec::render::diagnostics::github(problem, &github);
        for text in [&human, &styled, &github] {
            let text = redactor.redact(text);
            assert!(
                !text.contains("fuzz-Pa55word-never-printed"),
                "a secret reached a problem: {text}"
            );
        }
    }
    let _ = amlspec::render::diagnostics::summary(&loaded.problems, loaded.files.len());
    let _ = amlspec::render::diagnostics::json(&loaded.problems, &loaded.files);
    let _: &BTreeMap<PathBuf, _> = &loaded.sources;
    if let Some(specs) = &loaded.specs {
        for workspace in &specs.workspaces {
            let _ = amlspec::render::workspace_line(workspace);
        }
    }
}
