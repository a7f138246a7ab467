//! Fuzz body: a file given to `apply` that looks like a saved plan, through the reader,
//! the staleness check and every renderer. Must never panic, hang or grow without
//! bound.

use amlspec::render::GithubPaths;

pub fn run(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = std::path::Path::new("plan.json");
    let Ok(plan) = amlspec::plan::parse_saved(path, text) else {
        return;
    };
    let _ = amlspec::plan::stale(&plan, &plan);
    let _ = amlspec::render::plan::human(&plan, false);
    let _ = amlspec::render::plan::human(&plan, true);
    let _ = amlspec::render::plan::json(&plan);
    let _ = amlspec::render::plan::markdown_within(&plan, 4096);
    let paths = GithubPaths {
        cwd: std::path::PathBuf::from("."),
        workspace: None,
    };
    let _ = amlspec::render::plan::github_annotations(&plan, &paths);
    let redactor = amlspec::render::redact::Redactor::new(["fuzz-secret-value"]);
    let _ = amlspec::render::plan::redacted(&plan, &redactor);
}
