//! `amlspec validate` as a user runs it: exit codes, output formats, colour, several
//! files and folders, and workspaces declared across files.

use std::fs;

use crate::cli::common::Test;

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
fn validate_folder(files: &[(&str, &str)]) -> crate::cli::common::Output {
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

// ---- files that are not what they seem: bounded reads ----------------------------------

/// A run of the binary that cannot hurt the machine when the code under test is wrong,
/// and that proves its memory stays bounded: its address space is capped at
/// [`ADDRESS_SPACE`] (a run needs about 60 MiB of it), so reading a 1 GiB file or
/// `/dev/zero` whole fails at once; an alarm ends it if it hangs (a blocked open of a
/// named pipe). (Peak RSS cannot be measured here: a child forked from the test process
/// counts the test process's pages as its own until it execs.)
#[cfg(unix)]
struct Guarded {
    /// The exit code, or `None` when a signal ended the run.
    code: Option<i32>,
    /// stdout, then stderr.
    output: String,
}

#[cfg(unix)]
const ADDRESS_SPACE: u64 = 256 * 1024 * 1024;

#[cfg(unix)]
fn run_guarded(dir: &std::path::Path, args: &[&str]) -> Guarded {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    const ALARM_SECONDS: libc::c_uint = 60;
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("amlspec"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in crate::cli::common::test_env() {
        command.env(name, value);
    }
    // SAFETY: setrlimit and alarm are async-signal-safe; nothing else runs between fork
    // and exec. A pending alarm survives exec, and SIGALRM ends the process.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                rlim_max: ADDRESS_SPACE as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::alarm(ALARM_SECONDS);
            Ok(())
        });
    }
    let mut child = command.spawn().expect("amlspec starts");
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut stdout = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut stdout);
        stdout
    });
    let mut stderr = Vec::new();
    stderr_pipe.read_to_end(&mut stderr).expect("stderr reads");
    let stdout = stdout_reader.join().expect("stdout reader");
    let status = child.wait().expect("amlspec ends");
    Guarded {
        code: status.code(),
        output: String::from_utf8_lossy(&[stdout, stderr].concat()).into_owned(),
    }
}

#[cfg(unix)]
const GIB: u64 = 1024 * 1024 * 1024;

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let result = unsafe { libc::mkfifo(name.as_ptr(), 0o644) };
    assert_eq!(result, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[cfg(unix)]
fn sparse(path: &std::path::Path, head: &str, len: u64) {
    let mut file = fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut file, head.as_bytes()).unwrap();
    file.set_len(len).unwrap();
}

#[cfg(unix)]
fn assert_refused(run: &Guarded, expected: &str) {
    assert_eq!(
        run.code,
        Some(1),
        "a clean failure in bounded memory, not a crash or a hang: {}",
        run.output
    );
    assert!(run.output.contains(expected), "{expected}\n{}", run.output);
}

#[cfg(unix)]
#[test]
fn spec_files_are_read_bounded_and_only_if_regular() {
    let dir = tempfile::tempdir().unwrap();
    sparse(&dir.path().join("big.yaml"), WORKSPACE, GIB);
    mkfifo(&dir.path().join("fifo.yaml"));
    let cases = [
        (
            "big.yaml",
            "error: big.yaml: the file is 1073741824 bytes, more than the 4 MiB a spec may have",
        ),
        (
            "fifo.yaml",
            "error: fifo.yaml: cannot read the file: it is a named pipe (FIFO), not a regular file",
        ),
        (
            "/dev/zero",
            "error: /dev/zero: cannot read the file: it is a character device, not a regular file",
        ),
    ];
    for (file, expected) in cases {
        for format in ["human", "json"] {
            let run = run_guarded(dir.path(), &["validate", "--format", format, file]);
            let expected = if format == "json" {
                // The message without the headline's `error: file: `.
                expected.split(": ").skip(2).collect::<Vec<_>>().join(": ")
            } else {
                expected.to_string()
            };
            assert_refused(&run, &expected);
        }
    }
    // A folder holding a named pipe lists only its regular files.
    fs::write(
        dir.path().join("ok.yaml"),
        format!(
            "{WORKSPACE}clusters:\n  - name: cpu\n    vm_size: STANDARD_DS3_V2\n    max_nodes: 1\n"
        ),
    )
    .unwrap();
    fs::remove_file(dir.path().join("big.yaml")).unwrap();
    let run = run_guarded(dir.path(), &["validate", "."]);
    assert_eq!(run.code, Some(0), "{}", run.output);
}

#[cfg(unix)]
#[test]
fn dockerfiles_are_read_bounded_and_only_if_regular() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1024 * 1024;
    sparse(
        &dir.path().join("at-limit.Dockerfile"),
        "FROM ubuntu:22.04\n",
        limit,
    );
    sparse(
        &dir.path().join("over-limit.Dockerfile"),
        "FROM ubuntu:22.04\n",
        limit + 1,
    );
    sparse(
        &dir.path().join("big.Dockerfile"),
        "FROM ubuntu:22.04\n",
        GIB,
    );
    mkfifo(&dir.path().join("fifo.Dockerfile"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.Dockerfile")).unwrap();
    let spec = |dockerfile: &str| {
        format!("{WORKSPACE}environments:\n  - name: env\n    dockerfile_path: {dockerfile}\n")
    };
    fs::write(dir.path().join("spec.yaml"), spec("at-limit.Dockerfile")).unwrap();
    let run = run_guarded(dir.path(), &["validate", "spec.yaml"]);
    assert_eq!(
        run.code,
        Some(0),
        "exactly the limit is accepted: {}",
        run.output
    );
    let cases = [
        (
            "over-limit.Dockerfile",
            "environments[0].dockerfile_path: the Dockerfile `over-limit.Dockerfile` is 1048577 bytes, more than the 1 MiB Azure accepts in a build context",
        ),
        (
            "big.Dockerfile",
            "environments[0].dockerfile_path: the Dockerfile `big.Dockerfile` is 1073741824 bytes, more than the 1 MiB Azure accepts in a build context",
        ),
        ("fifo.Dockerfile", "environments[0].dockerfile_path: "),
        ("zero.Dockerfile", "environments[0].dockerfile_path: "),
    ];
    for (dockerfile, expected) in cases {
        fs::write(dir.path().join("spec.yaml"), spec(dockerfile)).unwrap();
        let run = run_guarded(dir.path(), &["validate", "spec.yaml"]);
        assert_refused(&run, expected);
        assert!(run.output.contains(dockerfile), "{}", run.output);
    }
}

#[cfg(unix)]
#[test]
fn conda_files_are_read_bounded_and_only_if_regular() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1024 * 1024;
    let conda = "name: env\ndependencies:\n  - python=3.11\n#";
    let padded = |len: u64| format!("{conda}{}\n", "x".repeat(len as usize - conda.len() - 1));
    fs::write(dir.path().join("at-limit.yml"), padded(limit)).unwrap();
    fs::write(dir.path().join("over-limit.yml"), padded(limit + 1)).unwrap();
    sparse(&dir.path().join("big.yml"), conda, GIB);
    mkfifo(&dir.path().join("fifo.yml"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yml")).unwrap();
    let spec = |conda_file: &str| {
        format!(
            "{WORKSPACE}environments:\n  - name: env\n    image: ubuntu:22.04\n    conda_file: {conda_file}\n"
        )
    };
    fs::write(dir.path().join("spec.yaml"), spec("at-limit.yml")).unwrap();
    let run = run_guarded(dir.path(), &["validate", "spec.yaml"]);
    assert_eq!(
        run.code,
        Some(0),
        "exactly the limit is accepted: {}",
        run.output
    );
    let cases = [
        (
            "over-limit.yml",
            "environments[0].conda_file: the conda file `over-limit.yml` is 1048577 bytes, more than the 1 MiB amlspec reads",
        ),
        (
            "big.yml",
            "environments[0].conda_file: the conda file `big.yml` is 1073741824 bytes, more than the 1 MiB amlspec reads",
        ),
        ("fifo.yml", "environments[0].conda_file: "),
        ("zero.yml", "environments[0].conda_file: "),
    ];
    for (conda_file, expected) in cases {
        fs::write(dir.path().join("spec.yaml"), spec(conda_file)).unwrap();
        let run = run_guarded(dir.path(), &["validate", "spec.yaml"]);
        assert_refused(&run, expected);
        assert!(run.output.contains(conda_file), "{}", run.output);
    }
}

// ---- what reaches a terminal or a CI log ------------------------------------------------

/// Values from the spec carrying terminal controls: an OSC sequence that retitles the
/// terminal, CR, BS, NUL, DEL, a C1 CSI, a right-to-left override, a bidi isolate. Each
/// reaches a message or a hint ("did you mean", "looked for") and a snippet.
const HOSTILE: &str = r#"workspace:
  name: shared-ws
  subscription_id: ${AZURE_SUBSCRIPTION_ID}
  resource_group: ml-rg
  location: westeurope
registries:
  - name: "myregistry\e]0;pwned\a"
    address: myregistry.azurecr.io
    username: u
    password: ${ACR_PASSWORD}
environments:
  - name: env
    image: team/img:1
    registry: myregistry
    user_managed_dependencies: true
  - name: env2
    image: ubuntu:22.04
    conda_file: "conda\r\b\0\x7f\x9b2J\u202Elmy.yml"
clusters:
  - name: cpu
    vm_size: STANDARD_DS3_V2
    max_nodes: 1
    vm_priority: "dedicated\e[2J\u2066"
    "vm_siz\e]0;x\ae": 1
"#;

/// Characters that must never reach the output raw.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The output without the colour codes amlspec writes itself (`ESC [ ... m`).
fn without_colour(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[end..].starts_with('m') {
            rest = &after[end + 1..];
        } else {
            // Not a colour code: keep it, so the check below sees it.
            out.push_str("\x1b[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn control_characters_from_the_spec_are_escaped_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("spec.yaml"), HOSTILE).unwrap();
    let runs = [
        vec!["validate", "--color", "never", "spec.yaml"],
        vec!["validate", "--color", "always", "spec.yaml"],
        vec!["validate", "--format", "json", "spec.yaml"],
        vec!["validate", "--format", "github", "spec.yaml"],
    ];
    for args in runs {
        let out = Test::new().current_dir(dir.path()).args(&args).run();
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        let shown = without_colour(&format!("{}{}", out.stdout, out.stderr));
        let raw: Vec<char> = shown.chars().filter(|c| is_hostile(*c)).collect();
        assert!(raw.is_empty(), "{args:?}: raw {raw:?} in\n{shown}");
        // The escapes are there to read, in messages, hints and snippets alike.
        let text = if args.contains(&"json") {
            let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            report["diagnostics"].to_string()
        } else {
            shown.clone()
        };
        let text = text.replace("\\\\", "\\");
        for escaped in [
            "did you mean `myregistry\\u{1b}]0;pwned\\u{7}`?",
            "conda\\r\\u{8}\\u{0}\\u{7f}\\u{9b}2J\\u{202e}lmy.yml",
            "dedicated\\u{1b}[2J\\u{2066}",
            "vm_siz\\u{1b}]0;x\\u{7}e",
        ] {
            assert!(text.contains(escaped), "{args:?}: no {escaped} in\n{text}");
        }
        if args.contains(&"never") {
            // Snippets show the line as written, escaped, and underline the value.
            assert!(
                shown.contains("7 |   - name: \"myregistry\\e]0;pwned\\a\"\n"),
                "{shown}"
            );
            assert!(
                shown.lines().any(|line| line.contains("looked for ")
                    && line.ends_with("conda\\r\\u{8}\\u{0}\\u{7f}\\u{9b}2J\\u{202e}lmy.yml")),
                "{shown}"
            );
            assert!(
                shown.contains("24 |     \"vm_siz\\e]0;x\\ae\": 1\n   |     ^^^^^^^^^^^^^^^^^\n"),
                "{shown}"
            );
        }
    }
}

#[test]
fn raw_controls_in_source_lines_are_escaped_and_underlined_in_place() {
    // Raw control characters, written into the file as bytes, in a key and its value.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("spec.yaml"),
        format!(
            "{WORKSPACE}  \"d\x1bscr\u{202e}ipton\": \"a\u{202e}b\x1b]0;t\x07\x08\x7f\" # \x1b[2J\n"
        ),
    )
    .unwrap();
    let out = Test::new()
        .current_dir(dir.path())
        .args(["validate", "--color", "never", "spec.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        r#"error: spec.yaml:6:3: workspace["d\u{1b}scr\u{202e}ipton"]: unknown key `d\u{1b}scr\u{202e}ipton`
  |
6 |   "d\u{1b}scr\u{202e}ipton": "a\u{202e}b\u{1b}]0;t\u{7}\u{8}\u{7f}" # \u{1b}[2J
  |   ^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = hint: did you mean `description`?

1 file checked: 1 error
"#
    );
}

#[test]
fn github_commands_escape_their_own_specials_too() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a,b:c%.yaml"),
        format!("{WORKSPACE}clusters:\n  - name: cpu\n    vm_size: STANDARD_DS3_V2\n    max_nodes: 1\n    \"x,y:%z\\r\\n::error::forged\": 1\n"),
    )
    .unwrap();
    let out = Test::new()
        .current_dir(dir.path())
        .args(["validate", "--format", "github", "a,b:c%.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("::error file=a%2Cb%3Ac%25.yaml,line=10,col=5,title=amlspec%3A clusters[0][\"x%2Cy%3A%25z\\r\\n%3A%3Aerror%3A%3Aforged\"]::unknown key `x,y:%25z\\r\\n::error::forged`%0Ahint: "),
        "{}",
        out.stdout
    );
}

/// Secrets typed under keys that are not `password` (misspelled, or any key that looks
/// like a secret) are masked in the snippet that shows the key, in flow mappings and
/// through anchors too.
#[test]
fn values_of_keys_that_look_like_secrets_never_reach_snippets() {
    let spec = format!(
        "{WORKSPACE}registries:\n  - name: myregistry\n    address: myregistry.azurecr.io\n    username: u\n    pasword: hunter2a\n    Password: hunter2b\n    password: ${{ACR_PASSWORD}}\n\
         environments:\n  - name: env\n    image: ubuntu:22.04\n    user_managed_dependencies: true\n    client_secret: hunter2c\n    x-keys: {{api_key: hunter2d, token: &t hunter2e}}\n    access_token: *t\n    tags: {{passwd: hunter2f}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    for format in ["human", "json", "github"] {
        let out = Test::new()
            .current_dir(dir.path())
            .args([
                "validate",
                "--color",
                "never",
                "--format",
                format,
                "spec.yaml",
            ])
            .run();
        assert_eq!(out.code, 1, "{}", out.stderr);
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(shown.contains("unknown key `pasword`"), "{shown}");
        assert!(shown.contains("unknown key `client_secret`"), "{shown}");
        assert!(
            !shown.contains("hunter2"),
            "{format}: a secret is shown:\n{shown}"
        );
    }
    let out = Test::new()
        .current_dir(dir.path())
        .args(["validate", "--color", "never", "spec.yaml"])
        .run();
    assert!(
        out.stderr
            .contains("10 |     pasword: ********\n   |     ^^^^^^^"),
        "{}",
        out.stderr
    );
}

/// What a secret key takes is masked in validate's problems too, in every format, even
/// where the message quotes another value built from it (cut short, JSON- or
/// GitHub-escaped).
#[test]
fn secret_values_are_masked_in_every_validate_format() {
    let secret = format!("s3cret\"%,:{}", "x".repeat(70));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "workspace:\n  name: ws1\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  description: ${ACR_PASSWORD}\nregistries:\n  - name: reg\n    address: ${ACR_PASSWORD}_.azurecr.io\n    username: u\n    password: ${ACR_PASSWORD}\nenvironments:\n  - name: env\n    image: \"${ACR_PASSWORD} latest\"\n",
    )
    .unwrap();
    for format in ["human", "json", "github"] {
        let out = crate::cli::common::Test::new()
            .env("ACR_PASSWORD", &secret)
            .secret(&secret)
            .args(["-vvv", "validate", "--format", format])
            .arg_path(&spec)
            .run();
        assert_eq!(out.code, 1, "{format}: {}", out.stderr);
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(shown.contains("(sensitive)"), "{format}: {shown}");
        assert!(!shown.contains("s3cret"), "{format}: {shown}");
    }
}

/// A pull request from a fork gets no secrets: `--allow-unset` checks everything but
/// the values of unset variables, which are warned about, so a typo is still caught.
#[test]
fn allow_unset_checks_everything_but_the_unset_values() {
    let specs = crate::cli::common::specs_copy();
    let pets = specs.path().join("pets.yaml");
    let without_secrets = || {
        Test::new()
            .env_remove("AZURE_SUBSCRIPTION_ID")
            .env_remove("ACR_PASSWORD")
    };
    let out = without_secrets().args(["validate"]).arg_path(&pets).run();
    assert_eq!(
        out.code, 1,
        "without the flag, an unset variable is an error"
    );
    assert!(
        out.stderr
            .contains("environment variable `ACR_PASSWORD` is not set")
    );

    let out = without_secrets()
        .args(["validate", "--allow-unset"])
        .arg_path(&pets)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in ["AZURE_SUBSCRIPTION_ID", "ACR_PASSWORD"] {
        assert!(
            out.stderr.contains(&format!(
                "warning: {}:",
                pets.display()
            )) && out.stderr.contains(&format!(
                "environment variable `{name}` is not set: what depends on its value is not checked (--allow-unset)"
            )),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stdout.ends_with("1 file valid, 2 warnings\n"),
        "{}",
        out.stdout
    );

    crate::cli::common::edit(&pets, "max_nodes: 4", "max_node: 4");
    let out = without_secrets()
        .args(["validate", "--allow-unset"])
        .arg_path(&pets)
        .run();
    assert_eq!(out.code, 1, "a typo is still an error");
    assert!(
        out.stderr.contains("unknown key `max_node`"),
        "{}",
        out.stderr
    );
    // With the variables set, the flag changes nothing.
    let out = Test::new()
        .args(["validate", "--allow-unset"])
        .arg_path(&pets)
        .run();
    assert_eq!(out.code, 1);
    assert!(!out.stderr.contains("is not set"));
}
