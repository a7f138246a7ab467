//! The state folder: one emulator at a time (an OS lock held for the emulator's life),
//! never staged by git, secrets readable by their owner only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use amlspec::emulator::{Emulator, EmulatorConfig};
use serde_json::json;

use crate::emulator::support::{explicit, start};

fn on_disk(dir: &Path) -> EmulatorConfig {
    EmulatorConfig {
        state_dir: Some(dir.to_path_buf()),
        ..explicit()
    }
}

#[tokio::test]
async fn a_second_emulator_on_the_same_state_folder_is_refused_until_the_first_stops() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("emulator");
    let first = start(on_disk(&state)).await;
    let rg = format!("{}?api-version=2021-04-01", first.rg("kept"));
    first
        .put(&rg, json!({ "location": "westeurope" }))
        .await
        .expect(201);

    let second = Emulator::start(on_disk(&state)).await;
    let message = match second {
        Ok(_) => panic!("a second emulator started on a folder in use"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&state.display().to_string()),
        "the message names the folder: {message}"
    );
    assert!(message.contains("in use"), "{message}");
    assert!(message.contains("--state"), "says what to do: {message}");

    // The refused start changed nothing: the first one still answers from the same state.
    first.get(&rg).await.expect(200);
    first.emu.shutdown().await;

    let third = start(on_disk(&state)).await;
    third.get(&rg).await.expect(200);
}

#[test]
fn the_binary_refuses_a_state_folder_in_use_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime
        .block_on(Emulator::start(on_disk(dir.path())))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_amlspec"))
        .args(["emulator", "--port", "0", "--state"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A ready line means it started; end of output means it gave up.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if !line.is_empty() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("a second emulator started on a folder in use: {line}");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("stop the other emulator") && stderr.contains("--state"),
        "{stderr}"
    );
    runtime.block_on(first.shutdown());
}

#[tokio::test]
async fn the_state_folder_ignores_itself_for_git() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".amlspec").join("emulator");
    let env = start(on_disk(&state)).await;
    env.emu.shutdown().await;
    let ignore = std::fs::read_to_string(state.join(".gitignore")).unwrap();
    assert_eq!(ignore.trim(), "*");
    // git agrees, when it is installed.
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
    };
    if git(&["init", "-q"]).is_ok_and(|o| o.status.success()) {
        let out = git(&["status", "--porcelain", "--untracked-files=all"]).unwrap();
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            !listed.contains(".amlspec"),
            "git would stage the state folder: {listed}"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn secret_files_are_private_even_when_they_were_not() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    let env = start(on_disk(dir.path())).await;
    let ws = env.workspace("rg", "ws1").await;
    // A stored registry password: the journal and, after a restart, the snapshot hold it.
    env.put(
        &format!("{ws}/connections/myregistry"),
        json!({ "properties": { "authType": "UsernamePassword", "category": "ContainerRegistry",
            "target": "myregistry.azurecr.io", "credentials": { "username": "u", "password": "hunter2" } } }),
    )
    .await
    .expect(200);
    env.emu.shutdown().await;
    for name in ["snapshot.jsonl", "journal.jsonl"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    let text = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(
        text.contains("hunter2"),
        "the journal is where the secret is"
    );

    // Files left readable by an older version are made private on the next start.
    for name in ["snapshot.jsonl", "journal.jsonl"] {
        std::fs::set_permissions(
            dir.path().join(name),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let env = start(on_disk(dir.path())).await;
    for name in ["snapshot.jsonl", "journal.jsonl"] {
        assert_eq!(mode(name), 0o600, "{name} after a restart");
    }
    // Every file the emulator wrote, blobs and temporary files included, is private.
    env.emu.shutdown().await;
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() != ".gitignore" {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    entry.path().display()
                );
            }
        }
    }
}
