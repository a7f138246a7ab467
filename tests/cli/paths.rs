//! Paths a spec names: they must resolve inside the manifest's repository unless
//! `--allow-outside-repo` says otherwise, and snapshots never follow a symlink out of
//! their folder. The content hash is compared with azure-ai-ml's own where Python has it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::common::Test;

const WORKSPACE: &str = "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n";

/// A job (at line 6) with `source_directory: <dir>` (line 7, column 23).
fn job_spec(source_directory: &str) -> String {
    format!(
        "{WORKSPACE}jobs:\n  - name: train\n    source_directory: {source_directory}\n    command: python train.py\n    environment: AzureML-sklearn-1.5@latest\n    cluster: cpu\nclusters:\n  - name: cpu\n    vm_size: STANDARD_DS3_V2\n    max_nodes: 1\n"
    )
}

/// `<temp>/repo` (a git work tree when `git`, holding `specs/`) and `<temp>/outside`
/// with a folder, a conda file and a Dockerfile. Paths returned canonical.
struct Layout {
    _dir: tempfile::TempDir,
    top: PathBuf,
    repo: PathBuf,
}

impl Layout {
    fn new(git: bool) -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let top = fs::canonicalize(dir.path()).unwrap();
        let repo = top.join("repo");
        fs::create_dir_all(repo.join("specs/src")).unwrap();
        fs::write(repo.join("specs/src/train.py"), "print('train')\n").unwrap();
        if git {
            fs::create_dir_all(repo.join(".git")).unwrap();
        }
        fs::create_dir_all(top.join("outside/src")).unwrap();
        fs::write(top.join("outside/src/train.py"), "print('x')\n").unwrap();
        fs::write(
            top.join("outside/conda.yml"),
            "name: x\ndependencies:\n  - python=3.11\n",
        )
        .unwrap();
        fs::write(top.join("outside/Dockerfile"), "FROM ubuntu:22.04\n").unwrap();
        Layout {
            _dir: dir,
            top,
            repo,
        }
    }

    fn spec(&self, text: &str) -> &Self {
        fs::write(self.repo.join("specs/spec.yaml"), text).unwrap();
        self
    }

    fn run(&self, args: &[&str]) -> crate::cli::common::Output {
        Test::new()
            .current_dir(&self.repo)
            .env("PATH", "/nonexistent")
            .args(args)
            .run()
    }
}

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn a_path_out_of_the_repository_is_refused_naming_key_target_root_and_flag() {
    let layout = Layout::new(true);
    layout.spec(&job_spec("../../../../../../../../../../../../../../etc"));
    let out = layout.run(&["validate", "specs/spec.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let repo = layout.repo.display();
    assert!(
        out.stderr.starts_with(&format!(
            "error: specs/spec.yaml:7:23: jobs[0].source_directory: `../../../../../../../../../../../../../../etc` resolves to `/etc`, outside the repository `{repo}`\n"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("pass `--allow-outside-repo` to allow this"),
        "{}",
        out.stderr
    );

    // The user may opt in.
    let out = layout.run(&["validate", "--allow-outside-repo", "specs/spec.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Every kind of path, through `..` or through a symlink, and one that does not exist:
/// a spec cannot learn which files exist outside (all are "outside", none "missing").
#[test]
fn every_path_a_spec_names_is_checked() {
    let layout = Layout::new(true);
    let specs = layout.repo.join("specs");
    symlink(layout.top.join("outside/src"), specs.join("linked-src"));
    symlink(
        layout.top.join("outside/conda.yml"),
        specs.join("conda.yml"),
    );
    // A Dockerfile inside whose folder (the build context) is reached through a link
    // out of the repository: the whole folder would be uploaded.
    fs::write(specs.join("Dockerfile"), "FROM ubuntu:22.04\n").unwrap();
    symlink(layout.top.join("outside"), specs.join("ctx"));
    fs::remove_file(layout.top.join("outside/Dockerfile")).unwrap();
    symlink(
        specs.join("Dockerfile"),
        layout.top.join("outside/Dockerfile"),
    );
    layout.spec(&format!(
        "{WORKSPACE}environments:\n  - name: conda\n    image: ubuntu:22.04\n    conda_file: conda.yml\n  - name: built\n    dockerfile_path: ctx/Dockerfile\n  - name: context\n    dockerfile_path: Dockerfile\n    build_context: ../..\n  - name: missing\n    dockerfile_path: ../../nope/Dockerfile\njobs:\n  - name: train\n    source_directory: linked-src\n    command: python train.py\n    environment: conda\n    cluster: cpu\nclusters:\n  - name: cpu\n    vm_size: STANDARD_DS3_V2\n    max_nodes: 1\n"
    ));
    let out = layout.run(&["validate", "specs/spec.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let top = layout.top.display();
    let repo = layout.repo.display();
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(
        errors,
        [
            format!(
                "error: specs/spec.yaml:8:17: environments[0].conda_file: `conda.yml` resolves to `{top}/outside/conda.yml`, outside the repository `{repo}`"
            ),
            format!(
                "error: specs/spec.yaml:10:22: environments[1].dockerfile_path: the Dockerfile's folder `ctx` (its build context) resolves to `{top}/outside`, outside the repository `{repo}`"
            ),
            format!(
                "error: specs/spec.yaml:13:20: environments[2].build_context: `../..` resolves to `{top}`, outside the repository `{repo}`"
            ),
            format!(
                "error: specs/spec.yaml:15:22: environments[3].dockerfile_path: `../../nope/Dockerfile` resolves to `{top}/nope/Dockerfile`, outside the repository `{repo}`"
            ),
            format!(
                "error: specs/spec.yaml:18:23: jobs[0].source_directory: `linked-src` resolves to `{top}/outside/src`, outside the repository `{repo}`"
            ),
        ],
        "{}",
        out.stderr
    );

    // With the flag, only what is wrong for another reason is left: that Dockerfile is
    // really not in its folder, and that one does not exist.
    let out = layout.run(&["validate", "--allow-outside-repo", "specs/spec.yaml"]);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(
        errors,
        [
            "error: specs/spec.yaml:10:22: environments[1].dockerfile_path: the Dockerfile `ctx/Dockerfile` is not inside the build context",
            "error: specs/spec.yaml:15:22: environments[3].dockerfile_path: the file `../../nope/Dockerfile` does not exist",
        ],
        "{}",
        out.stderr
    );
}

/// Without a `.git`, the manifest's folder is the boundary; a `.git` file (a worktree,
/// a submodule) marks a work tree as a `.git` folder does.
#[test]
fn the_repository_is_the_git_work_tree_else_the_manifest_folder() {
    let layout = Layout::new(false);
    fs::create_dir_all(layout.repo.join("shared")).unwrap();
    layout.spec(&job_spec("../shared"));
    let out = layout.run(&["validate", "specs/spec.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "`../shared` resolves to `{repo}/shared`, outside the manifest's folder `{repo}/specs` (no .git found above it)",
            repo = layout.repo.display()
        )),
        "{}",
        out.stderr
    );

    fs::write(
        layout.repo.join(".git"),
        "gitdir: /elsewhere/.git/worktrees/repo\n",
    )
    .unwrap();
    let out = layout.run(&["validate", "specs/spec.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Paths inside, through `..` and through symlinks that stay inside, are fine.
#[test]
fn paths_that_stay_inside_pass() {
    let layout = Layout::new(true);
    fs::create_dir_all(layout.repo.join("code")).unwrap();
    fs::write(layout.repo.join("code/train.py"), "print(1)\n").unwrap();
    symlink("../code", layout.repo.join("specs/code-link"));
    for dir in ["src", "../code", "code-link", "./src/../src"] {
        layout.spec(&job_spec(dir));
        let out = layout.run(&["validate", "specs/spec.yaml"]);
        assert_eq!(out.code, 0, "{dir}: {}", out.stderr);
    }
}

fn plan_errors(layout: &Layout, extra: &[&str]) -> Vec<String> {
    let out = layout.run(&[&["plan"][..], extra, &["specs/spec.yaml"]].concat());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("credentials"), "{}", out.stderr);
    out.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// The snapshot of a source folder never follows a symlink out of it, with or without
/// `--allow-outside-repo` (which is about the paths a spec names), and says which links
/// it did not follow; a dangling link is named the same way.
#[test]
fn snapshots_name_the_symlinks_they_do_not_follow() {
    let layout = Layout::new(true);
    let src = layout.repo.join("specs/src");
    symlink("missing.py", src.join("dangling.py"));
    symlink(layout.top.join("outside/conda.yml"), src.join("secret.yml"));
    layout.spec(&job_spec("src"));
    let expected = format!(
        "error: specs/spec.yaml:6:5: source_directory of job `train`: symlinks not followed (a snapshot never leaves its folder): `dangling.py` -> `missing.py` does not exist, `secret.yml` -> `{top}/outside/conda.yml` is outside `specs/src`; list them in .amlignore to leave them out",
        top = layout.top.display()
    );
    assert_eq!(plan_errors(&layout, &[]), std::slice::from_ref(&expected));
    assert_eq!(plan_errors(&layout, &["--allow-outside-repo"]), [expected]);

    // Left out by the ignore file, they are no problem: the plan goes on to sign in.
    fs::write(src.join(".amlignore"), "dangling.py\nsecret.yml\n").unwrap();
    let out = layout.run(&["plan", "specs/spec.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("symlink"), "{}", out.stderr);
    assert!(out.stderr.contains("credentials"), "{}", out.stderr);
}

/// The folder of symlink cases that `amlspec` and azure-ai-ml must hash alike, built
/// under `top`: `(name, files, links)`; `top/secret.txt` is outside every folder.
type Entries = Vec<(&'static str, &'static str)>;

fn hash_cases() -> Vec<(&'static str, Entries, Entries)> {
    let base = vec![("a.py", "A"), ("B.py", "BB"), ("sub/c.py", "C")];
    let with = |extra: &[(&'static str, &'static str)]| {
        base.iter().chain(extra).copied().collect::<Vec<_>>()
    };
    vec![
        ("case", vec![("a.py", "a"), ("B.py", "b")], vec![]),
        (
            "inside",
            base.clone(),
            vec![
                ("link_file.py", "a.py"),
                ("link_dir", "sub"),
                ("sub/up.py", "../B.py"),
            ],
        ),
        (
            "dangling_ignored",
            with(&[(".amlignore", "dangling.py\n")]),
            vec![("dangling.py", "missing.py")],
        ),
        (
            "outside_ignored",
            with(&[(".gitignore", "secret\n")]),
            vec![("secret", "../secret.txt")],
        ),
        (
            "ignore_real",
            with(&[(".amlignore", "sub/\n")]),
            vec![("link_dir", "sub")],
        ),
        (
            "ignore_link_name",
            with(&[(".amlignore", "link_dir/\n")]),
            vec![("link_dir", "sub")],
        ),
    ]
}

fn build_case(top: &Path, name: &str, files: &[(&str, &str)], links: &[(&str, &str)]) -> PathBuf {
    let root = top.join(name).join("snap");
    fs::create_dir_all(&root).unwrap();
    fs::write(top.join(name).join("secret.txt"), "outside").unwrap();
    for (file, text) in files {
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    for (link, target) in links {
        let path = root.join(link);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path);
    }
    root
}

/// The same folders against azure-ai-ml itself: its `get_content_hash` (with the ignore
/// file it would pick) must equal ours, and it must fail where we refuse. Python comes
/// from AMLSPEC_PYTHON, else `python3`.
#[test]
#[ignore = "needs Python with azure-ai-ml (pip install azure-ai-ml); set AMLSPEC_PYTHON to that python"]
fn content_hashes_match_azure_ai_ml() {
    let python = std::env::var("AMLSPEC_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let top = fs::canonicalize(dir.path()).unwrap();
    let mut roots = Vec::new();
    for (name, files, links) in hash_cases() {
        roots.push((name, build_case(&top, name, &files, &links)));
    }
    let refused = [
        ("dangling", vec![("dangling.py", "missing.py")]),
        ("outside", vec![("secret", "../secret.txt")]),
    ];
    for (name, links) in &refused {
        build_case(&top, name, &[("a.py", "A")], links);
    }
    const SCRIPT: &str = r#"
import sys
from azure.ai.ml._utils._asset_utils import get_content_hash, get_ignore_file
for root in sys.argv[1:]:
    try:
        print(get_content_hash(root, get_ignore_file(root)))
    except Exception as error:
        print("error:", type(error).__name__)
"#;
    let mut args = vec![];
    args.extend(roots.iter().map(|(_, root)| root.clone()));
    args.push(top.join("dangling/snap"));
    args.push(top.join("outside/snap"));
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        output.status.success(),
        "{python} with azure-ai-ml is needed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for ((name, root), theirs) in roots.iter().zip(&theirs) {
        let ours = amlspec::snapshot::snapshot(root)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .hash;
        assert_eq!(&ours, theirs, "{name}");
    }
    // Where azure-ai-ml would read a missing file, it fails; where it would read
    // outside the folder, it does, and we refuse.
    assert_eq!(theirs[roots.len()], "error: FileNotFoundError");
    assert!(!theirs[roots.len() + 1].starts_with("error"));
    for (name, _) in &refused {
        assert!(
            amlspec::snapshot::snapshot(&top.join(name).join("snap")).is_err(),
            "{name}"
        );
    }
}

/// The values azure-ai-ml 1.35.2 gave for `hash_cases` (by the test above).
#[test]
fn content_hashes_are_azure_ai_ml_values() {
    let expected = [
        (
            "case",
            "206ab4bc7b34ab0b6369b8308c67c04e3f0d719d62a8a8ba9f5168f0b3ffbcaa",
        ),
        (
            "inside",
            "78fb7a27cf5dbbba286b51e3c50e3f2a554421946a5d09434542f1df9877f647",
        ),
        (
            "dangling_ignored",
            "dfdcd32d3897e6e56b4035d6d603f61da369d22d04f538a78cac5c0b063541f2",
        ),
        (
            "outside_ignored",
            "f4ce1f6cc34383e77c0a473e6003c45cd2e35e6716cd2133448fa208743e5816",
        ),
        (
            "ignore_real",
            "80c521d604189dba75d38ac9dafa01e4cf8eac1b463087e925095bc746348e64",
        ),
        (
            "ignore_link_name",
            "db7c80bdf56e027aa0cf300a8481c2c4eb7a3cb8d6ed301220f9ef8709e6ad57",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cases = hash_cases();
    assert_eq!(cases.len(), expected.len());
    for ((name, files, links), (expected_name, hash)) in cases.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        let root = build_case(dir.path(), name, files, links);
        let snapshot = amlspec::snapshot::snapshot(&root).unwrap();
        assert_eq!(snapshot.hash, hash, "{name}");
    }
}
