//! Code snapshots and build contexts: the files of a folder that Azure ML would upload,
//! and their content hash, computed exactly as Azure ML's own clients do (azure-ai-ml
//! `get_content_hash`, hash version 202208) so that code uploaded by other Azure ML
//! clients is found and reused.
//!
//! Files: every file under the folder (hidden ones too, symlinks followed), minus those
//! matched by the folder's `.amlignore`, else its `.gitignore` (only the one at the
//! root, last matching pattern wins, like Azure ML). Hash: sha256 over the file count,
//! then for each file in order of its lower-cased relative path `#<path>#` and its size,
//! then every file's bytes in the same order.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The content hash version Azure ML stores beside `hash_sha256`.
pub const HASH_VERSION: u32 = 202208;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub root: PathBuf,
    /// Sorted as hashed: by lower-cased relative path.
    pub files: Vec<SnapshotFile>,
    /// sha256 hex, hash version 202208.
    pub hash: String,
    pub total_bytes: u64,
    /// The ignore file that applied, if any.
    pub ignore_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Relative path with `/` separators.
    pub relative: String,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot walk `{path}`: {message}")]
    Walk { path: PathBuf, message: String },
    #[error("`{path}` is not valid in an ignore file: {message}")]
    Ignore { path: PathBuf, message: String },
}

/// The ignore crate's message without the file's path in front (the error names it).
fn without_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Collect and hash the files of `root`.
pub fn snapshot(root: &Path) -> Result<Snapshot, SnapshotError> {
    let ignore_file = [".amlignore", ".gitignore"]
        .iter()
        .map(|name| root.join(name))
        .find(|p| p.is_file());
    let matcher = match &ignore_file {
        Some(path) => {
            let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
            let invalid = |error: ignore::Error| SnapshotError::Ignore {
                path: path.clone(),
                message: without_path(&error.to_string(), path),
            };
            if let Some(error) = builder.add(path) {
                return Err(invalid(error));
            }
            Some(builder.build().map_err(invalid)?)
        }
        None => None,
    };
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(true)
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| SnapshotError::Walk {
            path: root.to_path_buf(),
            message: e.to_string(),
        })?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative_path = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if let Some(matcher) = &matcher
            && matcher
                .matched_path_or_any_parents(relative_path, false)
                .is_ignore()
        {
            continue;
        }
        let metadata = std::fs::metadata(entry.path()).map_err(|source| SnapshotError::Io {
            path: entry.path().to_path_buf(),
            source,
        })?;
        let relative = relative_path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        files.push(SnapshotFile {
            relative,
            path: entry.path().to_path_buf(),
            size: metadata.len(),
        });
    }
    files.sort_by_cached_key(|f| f.relative.to_lowercase());
    let hash = content_hash(&files)?;
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Snapshot {
        root: root.to_path_buf(),
        files,
        hash,
        total_bytes,
        ignore_file,
    })
}

/// Azure ML's `_get_file_list_content_hash` over files already in order.
fn content_hash(files: &[SnapshotFile]) -> Result<String, SnapshotError> {
    let mut hasher = Sha256::new();
    hasher.update(files.len().to_string().as_bytes());
    for file in files {
        hasher.update(format!("#{}#", file.relative).as_bytes());
        hasher.update(file.size.to_string().as_bytes());
    }
    let mut buffer = vec![0u8; 64 * 1024];
    for file in files {
        let mut reader = std::fs::File::open(&file.path).map_err(|source| SnapshotError::Io {
            path: file.path.clone(),
            source,
        })?;
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(|source| SnapshotError::Io {
                    path: file.path.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    /// The value azure-ai-ml 1.35.2's `get_content_hash` returns for this folder
    /// (computed with the Python package on the same files).
    #[test]
    fn matches_azure_ml_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("train.py", "print('hi')\n"),
                ("utils/helpers.py", "X = 1\n"),
                ("B.txt", "b"),
            ],
        );
        let snap = snapshot(dir.path()).unwrap();
        let order: Vec<&str> = snap.files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(order, ["B.txt", "train.py", "utils/helpers.py"]);
        assert_eq!(
            snap.hash,
            "11b4135b74167bdfa708c0644b439f7018e61bc9e8889b95c7a63dde17c0b4fe"
        );
        assert_eq!(snap.total_bytes, 12 + 6 + 1);
    }

    #[test]
    fn amlignore_wins_over_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (".amlignore", "outputs/\n*.ckpt\n!keep.ckpt\n"),
                (".gitignore", "train.py\n"),
                ("train.py", "x"),
                ("outputs/model.bin", "big"),
                ("a.ckpt", "c"),
                ("keep.ckpt", "k"),
                (".hidden", "h"),
            ],
        );
        let snap = snapshot(dir.path()).unwrap();
        let names: Vec<&str> = snap.files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(
            names,
            [
                ".amlignore",
                ".gitignore",
                ".hidden",
                "keep.ckpt",
                "train.py"
            ]
        );
        assert_eq!(snap.ignore_file, Some(dir.path().join(".amlignore")));
        // azure-ai-ml 1.35.2 gives the same files and this hash for the same folder.
        assert_eq!(
            snap.hash,
            "17ff885edbb1436cbb60241928a7566771d8fa2b0204943aa4d25ea197f1f02d"
        );
    }

    #[test]
    fn gitignore_applies_without_amlignore() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (".gitignore", "__pycache__/\n"),
                ("a.py", "a"),
                ("__pycache__/a.pyc", "c"),
            ],
        );
        let names: Vec<String> = snapshot(dir.path())
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.relative)
            .collect();
        assert_eq!(names, [".gitignore", "a.py"]);
    }
}
