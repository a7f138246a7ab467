//! Stage: render. Everything amlspec prints is formatted here; `cli` decides where it
//! goes (data on stdout, the rest on stderr). No other module prints.

pub mod apply;
pub mod diagnostics;
pub mod plan;
pub mod redact;

use crate::spec::model::WorkspaceSpec;

/// `n noun` with the right plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// One line describing a validated workspace: what it declares.
pub fn workspace_line(workspace: &WorkspaceSpec) -> String {
    format!(
        "ok: workspace {} (resource group {}): {}, {}, {}, {}",
        workspace.name,
        workspace.resource_group,
        count(workspace.registries.len(), "registry", "registries"),
        count(workspace.environments.len(), "environment", "environments"),
        count(workspace.clusters.len(), "cluster", "clusters"),
        count(workspace.jobs.len(), "job", "jobs"),
    )
}

/// GitHub workflow-command escaping of a message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub workflow-command escaping of a property value (`file=`, `title=`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
