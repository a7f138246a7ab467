//! Validate, the files a spec names: the folder its paths must stay in (the manifest's
//! repository: its git work tree, else the manifest's own folder) and where a path
//! really leads once symlinks are resolved. A spec in a pull request must not make CI
//! read or upload files from elsewhere on the machine.

use std::path::{Component, Path, PathBuf};

/// The folder that the paths of a manifest must resolve into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Canonical (symlinks resolved), so that resolved paths compare with it.
    pub root: PathBuf,
    /// Found by a `.git` entry (a folder, or the file a worktree or submodule has);
    /// without one, `root` is the manifest's own folder.
    pub git: bool,
}

impl Repository {
    /// The nearest folder at or above `manifest_dir` holding a `.git` entry, else
    /// `manifest_dir` itself.
    pub fn find(manifest_dir: &Path) -> std::io::Result<Repository> {
        let dir = std::fs::canonicalize(manifest_dir)?;
        for ancestor in dir.ancestors() {
            if std::fs::symlink_metadata(ancestor.join(".git")).is_ok() {
                return Ok(Repository {
                    root: ancestor.to_path_buf(),
                    git: true,
                });
            }
        }
        Ok(Repository {
            root: dir,
            git: false,
        })
    }

    /// "the repository `/src/app`", or the manifest's folder when no `.git` was found.
    pub fn describe(&self) -> String {
        if self.git {
            format!("the repository `{}`", self.root.display())
        } else {
            format!(
                "the manifest's folder `{}` (no .git found above it)",
                self.root.display()
            )
        }
    }
}

/// Where a path leads, measured against a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// It exists, and its canonical path is inside.
    Inside(PathBuf),
    /// Its canonical path (or, when it does not exist, its lexical one) is outside.
    Outside(PathBuf),
    /// It does not exist (or cannot be resolved), and lexically it would be inside.
    Missing,
}

/// Resolve `relative` (as written in a spec) against `base`, the manifest's canonical
/// folder. A path that exists is judged by its canonical form, so symlinks anywhere on
/// the way count; one that does not is judged by its lexical form, so a missing path
/// outside the repository is reported as outside rather than as missing, and a spec
/// cannot probe which files exist elsewhere on the machine.
pub fn resolve(base: &Path, relative: &Path, repository: &Repository) -> Resolved {
    let joined = base.join(relative);
    match std::fs::canonicalize(&joined) {
        Ok(real) if real.starts_with(&repository.root) => Resolved::Inside(real),
        Ok(real) => Resolved::Outside(real),
        Err(_) => {
            let lexical = lexical(&joined);
            if lexical.starts_with(&repository.root) {
                Resolved::Missing
            } else {
                Resolved::Outside(lexical)
            }
        }
    }
}

/// `path` with `.` dropped and `..` taking off the previous component (never above the
/// root), without looking at the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn canonical(path: &Path) -> PathBuf {
        fs::canonicalize(path).unwrap()
    }

    #[test]
    fn the_nearest_git_entry_marks_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let top = canonical(dir.path());
        fs::create_dir_all(top.join("repo/.git")).unwrap();
        fs::create_dir_all(top.join("repo/specs/deep")).unwrap();
        // A worktree or submodule has a `.git` file, not a folder.
        fs::create_dir_all(top.join("repo/sub/specs")).unwrap();
        fs::write(top.join("repo/sub/.git"), "gitdir: ../.git/modules/sub\n").unwrap();
        fs::create_dir_all(top.join("loose/specs")).unwrap();
        let cases: [(&str, &str, bool); 5] = [
            ("repo", "repo", true),
            ("repo/specs", "repo", true),
            ("repo/specs/deep", "repo", true),
            ("repo/sub/specs", "repo/sub", true),
            ("loose/specs", "loose/specs", false),
        ];
        for (start, root, git) in cases {
            let found = Repository::find(&top.join(start)).unwrap();
            // Nothing above the temporary folder may hold a `.git` for this test.
            if !git && found.git {
                panic!("a .git above {} spoils this test", top.display());
            }
            assert_eq!(
                found,
                Repository {
                    root: top.join(root),
                    git
                },
                "from {start}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_manifest_folder_reached_through_a_symlink_is_judged_by_its_real_place() {
        let dir = tempfile::tempdir().unwrap();
        let top = canonical(dir.path());
        fs::create_dir_all(top.join("real/.git")).unwrap();
        fs::create_dir_all(top.join("real/specs")).unwrap();
        std::os::unix::fs::symlink(top.join("real/specs"), top.join("alias")).unwrap();
        let found = Repository::find(&top.join("alias")).unwrap();
        assert_eq!(found.root, top.join("real"));
    }

    #[cfg(unix)]
    #[test]
    fn paths_resolve_inside_outside_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let top = canonical(dir.path());
        fs::create_dir_all(top.join("repo/.git")).unwrap();
        fs::create_dir_all(top.join("repo/specs/src")).unwrap();
        fs::create_dir_all(top.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(top.join("elsewhere"), top.join("repo/specs/out")).unwrap();
        std::os::unix::fs::symlink("src", top.join("repo/specs/in")).unwrap();
        let repo = Repository::find(&top.join("repo/specs")).unwrap();
        let base = top.join("repo/specs");
        let cases: [(&str, Resolved); 9] = [
            ("src", Resolved::Inside(top.join("repo/specs/src"))),
            ("in", Resolved::Inside(top.join("repo/specs/src"))),
            ("./src/../src", Resolved::Inside(top.join("repo/specs/src"))),
            ("..", Resolved::Inside(top.join("repo"))),
            ("../..", Resolved::Outside(top.clone())),
            ("out", Resolved::Outside(top.join("elsewhere"))),
            ("nope", Resolved::Missing),
            // Missing and outside: said to be outside, whether it exists or not.
            ("../../nope", Resolved::Outside(top.join("nope"))),
            (
                "../../../../../../../../../../../../etc",
                Resolved::Outside(PathBuf::from("/etc")),
            ),
        ];
        for (relative, expected) in cases {
            assert_eq!(
                resolve(&base, Path::new(relative), &repo),
                expected,
                "{relative}"
            );
        }
    }
}
