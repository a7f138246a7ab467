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

/// `214 files, 1.2 MB`.
pub fn size_summary(files: usize, bytes: u64) -> String {
    format!("{}, {}", count(files, "file", "files"), human_bytes(bytes))
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
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

/// Where GitHub wants annotation files: relative to the repository's root
/// (`$GITHUB_WORKSPACE`), whatever folder amlspec runs in.
#[derive(Debug, Clone, Default)]
pub struct GithubPaths {
    /// The folder paths are relative to (the current folder).
    pub cwd: std::path::PathBuf,
    /// `$GITHUB_WORKSPACE`, when set.
    pub workspace: Option<std::path::PathBuf>,
}

impl GithubPaths {
    /// From the process's current folder and environment.
    pub fn from_process() -> GithubPaths {
        GithubPaths {
            cwd: std::env::current_dir().unwrap_or_default(),
            workspace: std::env::var_os("GITHUB_WORKSPACE")
                .filter(|w| !w.is_empty())
                .map(std::path::PathBuf::from),
        }
    }

    /// `file` as GitHub wants it: relative to the workspace when it is inside it (after
    /// symlinks), else as given; `/` separators.
    pub fn file(&self, file: &str) -> String {
        let Some(workspace) = &self.workspace else {
            return file.to_string();
        };
        let absolute = self.cwd.join(file);
        // Symlinks resolved where the path exists, `..` taken away where it does not.
        let real = |p: &std::path::Path| {
            std::fs::canonicalize(p).unwrap_or_else(|_| {
                let mut normal = std::path::PathBuf::new();
                for component in p.components() {
                    match component {
                        std::path::Component::ParentDir => {
                            normal.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => normal.push(other),
                    }
                }
                normal
            })
        };
        let (absolute, workspace) = (real(&absolute), real(workspace));
        match absolute.strip_prefix(&workspace) {
            Ok(relative) => relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => file.to_string(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_200_000), "1.2 MB");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(size_summary(1, 5), "1 file, 5 B");
    }

    #[test]
    fn github_files_are_relative_to_the_workspace_when_inside_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("repo/specs")).unwrap();
        std::fs::write(root.path().join("repo/specs/a.yaml"), "").unwrap();
        let paths = GithubPaths {
            cwd: root.path().join("repo/specs"),
            workspace: Some(root.path().join("repo")),
        };
        assert_eq!(paths.file("a.yaml"), "specs/a.yaml");
        assert_eq!(paths.file("../specs/a.yaml"), "specs/a.yaml");
        // Outside the workspace, or without one: as given.
        assert_eq!(paths.file("../../x.yaml"), "../../x.yaml");
        let unset = GithubPaths {
            workspace: None,
            ..paths
        };
        assert_eq!(unset.file("a.yaml"), "a.yaml");
    }
}
