//! The import rules that keep the stages apart (STYLE.md), checked on the sources: the
//! executor makes no decisions and prints nothing (`apply` never imports `spec`,
//! `observe` or `render`); the planner does no I/O (`plan` never imports `azure` or
//! `tokio`); `azure` is HTTP only and knows nothing of specs or stages; the emulator
//! stands in for Azure and shares nothing with the client.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/<module>` (or `src/<module>.rs`).
fn sources(module: &str) -> Vec<PathBuf> {
    let src = crate::cli::common::repo_root().join("src");
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut folders = vec![src.join(module)];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no sources for `{module}`");
    files.sort();
    files
}

/// Lines of `module`'s sources that name any of `forbidden` (`crate::spec`, `tokio`),
/// as `file:line: text`.
fn uses(module: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(module) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|name| names(code, name)) {
                found.push(format!(
                    "{}:{}: {}",
                    relative(&file),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

/// Whether `code` names the path `name` (not merely a longer identifier that starts
/// with it).
fn names(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn relative(path: &Path) -> String {
    crate::cli::common::relative(path).display().to_string()
}

#[test]
fn apply_makes_no_decisions_and_prints_nothing() {
    let found = uses("apply", &["crate::spec", "crate::observe", "crate::render"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn plan_does_no_io() {
    let found = uses("plan", &["crate::azure", "tokio", "reqwest"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn azure_knows_nothing_of_specs_or_stages() {
    let stages = [
        "crate::spec",
        "crate::desired",
        "crate::observe",
        "crate::plan",
        "crate::apply",
        "crate::render",
        "crate::commands",
        "crate::bodies",
    ];
    let found = uses("azure", &stages);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_emulator_shares_nothing_with_the_client() {
    let client = [
        "crate::azure",
        "crate::spec",
        "crate::desired",
        "crate::observe",
        "crate::plan",
        "crate::apply",
        "crate::render",
        "crate::ops",
        "crate::commands",
        "crate::settings",
        "crate::bodies",
        "crate::diagnostic",
    ];
    let found = uses("emulator", &client);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_checker_finds_what_it_looks_for() {
    assert!(names("use crate::spec::model;", "crate::spec"));
    assert!(names("let x = tokio::spawn(f);", "tokio"));
    assert!(!names("use crate::specs;", "crate::spec"));
    assert!(!names("let tokio_runtime = 1;", "tokio"));
    assert!(!uses("plan", &["crate::desired"]).is_empty());
}
