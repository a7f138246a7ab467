//! What the command says about itself: `--version`, shell completions, the man page.

use crate::cli::common::Test;

#[test]
fn version_names_the_release_the_git_revision_and_the_api_version() {
    let out = Test::new().args(["--version"]).run();
    assert_eq!(out.code, 0);
    let expected = format!("amlspec {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(out.stdout.starts_with(&expected), "{}", out.stdout);
    assert!(
        out.stdout.trim_end().ends_with(&format!(
            ", Azure ML api-version {})",
            amlspec::azure::ML_API_VERSION
        )),
        "{}",
        out.stdout
    );
    let revision = out.stdout[expected.len()..].split(',').next().unwrap();
    assert!(
        revision == "unknown"
            || revision
                .trim_end_matches("-dirty")
                .chars()
                .all(|c| c.is_ascii_hexdigit()),
        "{revision}"
    );
}

#[test]
fn completions_load_in_a_real_bash_and_know_every_command_and_flag() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Test::new().args(["completions", shell]).run();
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        for word in [
            "apply",
            "logs",
            "export",
            "auto-approve",
            "allow-replace",
            "emulator",
        ] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let Ok(bash) = std::process::Command::new("bash").arg("--version").output() else {
        eprintln!("SKIPPED: no bash to load the completion script into");
        return;
    };
    assert!(bash.status.success());
    let script = Test::new().args(["completions", "bash"]).run().stdout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amlspec.bash");
    std::fs::write(&path, script).unwrap();
    // Complete `amlspec ap` as bash would on TAB.
    let probe = format!(
        "source {}; COMP_WORDS=(amlspec ap); COMP_CWORD=1; COMP_LINE='amlspec ap'; COMP_POINT=10; _amlspec amlspec ap amlspec; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "apply");
}

#[test]
fn the_man_page_is_roff_that_lists_the_commands() {
    let out = Test::new().args(["man"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(".TH amlspec 1"), "{}", out.stdout);
    for command in [
        "validate", "plan", "apply", "logs", "export", "schema", "emulator",
    ] {
        assert!(out.stdout.contains(command), "the man page lacks {command}");
    }
}
