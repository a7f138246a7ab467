//! Code snapshots and build contexts: the files of a folder that Azure ML would upload,
//! and their content hash, computed exactly as Azure ML's own clients do (azure-ai-ml
//! `get_content_hash`, hash version 202208) so that code uploaded by other Azure ML
//! clients is found and reused.
//!
//! Files: every file under the folder (hidden ones too), minus those matched by the
//! folder's `.amlignore`, else its `.gitignore` (only the one at the root, last matching
//! pattern wins, like Azure ML). Hash: sha256 over the file count, then for each file in
//! order of its lower-cased relative path `#<path>#` and its size, then every file's
//! bytes in the same order.
//!
//! Symlinks, as azure-ai-ml 1.35 treats them (`get_upload_files_from_folder`, which walks
//! with `followlinks=True` and resolves each file): a link to a file is that file's
//! content under the link's name; a link to a folder is walked as if the folder were
//! there, and ignore patterns match the files under it by their real location. Unlike
//! azure-ai-ml, a link is never followed out of the folder: a link whose target is
//! outside, one whose target does not exist (azure-ai-ml fails on it), and one to a
//! folder it is already in (azure-ai-ml recurses until the path is too long) are
//! errors that name each link, unless the ignore file leaves the link out. So every hash
//! made here is the one azure-ai-ml makes for the same folder.

use std::io::Read;
use std::path::{Path, PathBuf};

use ignore::gitignore::Gitignore;

/// The content hash version Azure ML stores beside `hash_sha256`.
pub const HASH_VERSION: u32 = 202208;

/// Folders entered through symlinks, at most: links between folders that do not loop
/// can still multiply the paths to walk (two links to the next level, twenty levels deep).
const MAX_FOLLOWED_FOLDER_LINKS: usize = 10_000;

/// Links named in one error, at most.
const MAX_LINKS_SHOWN: usize = 10;

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
    /// Relative path with `/` separators (a symlink's own name, not its target's).
    pub relative: String,
    /// Where the bytes are read from: symlinks resolved, inside the snapshot's folder.
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
    #[error("`{path}` is not valid in an ignore file: {message}")]
    Ignore { path: PathBuf, message: String },
    #[error("{}", links_message(path, links))]
    Links {
        path: PathBuf,
        links: Vec<LinkProblem>,
    },
    #[error(
        "`{path}`: more than {MAX_FOLLOWED_FOLDER_LINKS} folders reached through symlinks; list the links in .amlignore to leave them out"
    )]
    TooManyLinks { path: PathBuf },
}

/// A symlink that a snapshot does not follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProblem {
    /// The link's path in the snapshot, `/` separators.
    pub link: String,
    /// Where it points: as written in the link, or resolved when it leads outside.
    pub target: PathBuf,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Its target does not exist (or cannot be resolved).
    Dangling,
    /// Its target is outside the snapshot's folder.
    Outside,
    /// It points to a folder that it is inside.
    Loop,
}

fn links_message(path: &Path, links: &[LinkProblem]) -> String {
    let mut shown: Vec<String> = links
        .iter()
        .take(MAX_LINKS_SHOWN)
        .map(|problem| {
            let why = match problem.kind {
                LinkKind::Dangling => "does not exist".to_string(),
                LinkKind::Outside => format!("is outside `{}`", path.display()),
                LinkKind::Loop => "is a folder the link is in".to_string(),
            };
            format!("`{}` -> `{}` {why}", problem.link, problem.target.display())
        })
        .collect();
    if links.len() > MAX_LINKS_SHOWN {
        shown.push(format!("and {} more", links.len() - MAX_LINKS_SHOWN));
    }
    let noun = if links.len() == 1 {
        "symlink"
    } else {
        "symlinks"
    };
    format!(
        "{noun} not followed (a snapshot never leaves its folder): {}; list {} in .amlignore to leave {} out",
        shown.join(", "),
        if links.len() == 1 { "it" } else { "them" },
        if links.len() == 1 { "it" } else { "them" },
    )
}

/// The ignore crate's message without the file's path in front (the error names it).
fn without_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Collect and hash the files of `root`.
pub fn snapshot(root: &Path) -> Result<Snapshot, SnapshotError> {
    // Every path below is the real one, so "inside" is a prefix test.
    let real_root = std::fs::canonicalize(root).map_err(io(root))?;
    let ignore_file = [".amlignore", ".gitignore"]
        .iter()
        .map(|name| root.join(name))
        .find(|p| p.is_file());
    let matcher = match &ignore_file {
        Some(path) => {
            // The ignore file is read before the walk: it must not lead out either.
            let real = std::fs::canonicalize(path).map_err(io(path))?;
            if !real.starts_with(&real_root) {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                return Err(SnapshotError::Links {
                    path: root.to_path_buf(),
                    links: vec![LinkProblem {
                        link: name.into_owned(),
                        target: real,
                        kind: LinkKind::Outside,
                    }],
                });
            }
            let mut builder = ignore::gitignore::GitignoreBuilder::new(&real_root);
            let invalid = |error: ignore::Error| SnapshotError::Ignore {
                path: path.clone(),
                message: without_path(&error.to_string(), &real),
            };
            if let Some(error) = builder.add(&real) {
                return Err(invalid(error));
            }
            Some(builder.build().map_err(invalid)?)
        }
        None => None,
    };
    let mut walk = Walk {
        given: root,
        root: &real_root,
        matcher: matcher.as_ref(),
        files: Vec::new(),
        links: Vec::new(),
        followed: 0,
    };
    walk.folder(&real_root, "", &mut vec![real_root.clone()])?;
    if !walk.links.is_empty() {
        return Err(SnapshotError::Links {
            path: root.to_path_buf(),
            links: walk.links,
        });
    }
    let mut files = walk.files;
    // Azure ML sorts by the lower-cased path alone; the raw path orders names that differ
    // only in case, which Azure ML leaves in the order the folder lists them.
    files.sort_by_cached_key(|f| (f.relative.to_lowercase(), f.relative.clone()));
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

/// One walk over a snapshot's folder.
struct Walk<'a> {
    /// As the caller named it, for errors.
    given: &'a Path,
    /// Canonical.
    root: &'a Path,
    matcher: Option<&'a Gitignore>,
    files: Vec<SnapshotFile>,
    links: Vec<LinkProblem>,
    /// Folders entered through symlinks so far.
    followed: usize,
}

impl Walk<'_> {
    /// Walk `real` (canonical, inside the root), whose path in the snapshot is `shown`
    /// ("" for the root). `chain` holds the real folders from the root down to `real`.
    fn folder(
        &mut self,
        real: &Path,
        shown: &str,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), SnapshotError> {
        let mut entries = std::fs::read_dir(real)
            .and_then(|listing| listing.collect::<Result<Vec<_>, _>>())
            .map_err(io(real))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let shown = if shown.is_empty() {
                name
            } else {
                format!("{shown}/{name}")
            };
            let path = entry.path();
            let file_type = entry.file_type().map_err(io(&path))?;
            if file_type.is_dir() {
                chain.push(path.clone());
                self.folder(&path, &shown, chain)?;
                chain.pop();
            } else if file_type.is_file() {
                // Asked of the folder already open, not by path again: quicker.
                let size = entry.metadata().map_err(io(&path))?.len();
                self.file(&path, shown, path.clone(), size);
            } else if file_type.is_symlink() {
                self.link(&path, shown, chain)?;
            }
            // Sockets, FIFOs and devices hold nothing to upload (and a FIFO would block).
        }
        Ok(())
    }

    /// Whether the ignore file leaves out `path` (real, inside the root), as Azure ML
    /// matches it: by its real location.
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let Some(matcher) = self.matcher else {
            return false;
        };
        let relative = path.strip_prefix(self.root).unwrap_or(path);
        matcher
            .matched_path_or_any_parents(relative, is_dir)
            .is_ignore()
    }

    /// A file at `path` (real parent folder) of `size` bytes, read from `source`.
    fn file(&mut self, path: &Path, shown: String, source: PathBuf, size: u64) {
        if !self.ignored(path, false) {
            self.files.push(SnapshotFile {
                relative: shown,
                path: source,
                size,
            });
        }
    }

    fn link(
        &mut self,
        path: &Path,
        shown: String,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), SnapshotError> {
        let written = || std::fs::read_link(path).unwrap_or_default();
        let target = match std::fs::canonicalize(path) {
            Ok(target) => target,
            Err(_) => {
                if !self.ignored(path, false) {
                    self.links.push(LinkProblem {
                        link: shown,
                        target: written(),
                        kind: LinkKind::Dangling,
                    });
                }
                return Ok(());
            }
        };
        let metadata = std::fs::metadata(&target).map_err(io(&target))?;
        let problem = if !target.starts_with(self.root) {
            Some((LinkKind::Outside, target.clone()))
        } else if metadata.is_dir() && chain.contains(&target) {
            Some((LinkKind::Loop, written()))
        } else {
            None
        };
        if let Some((kind, target)) = problem {
            if !self.ignored(path, metadata.is_dir()) {
                self.links.push(LinkProblem {
                    link: shown,
                    target,
                    kind,
                });
            }
            return Ok(());
        }
        if metadata.is_dir() {
            // azure-ai-ml walks into a linked folder whatever the link's name; its files
            // are matched against the ignore file by their real paths.
            self.followed += 1;
            if self.followed > MAX_FOLLOWED_FOLDER_LINKS {
                return Err(SnapshotError::TooManyLinks {
                    path: self.given.to_path_buf(),
                });
            }
            chain.push(target.clone());
            let walked = self.folder(&target, &shown, chain);
            chain.pop();
            walked
        } else if metadata.is_file() {
            self.file(path, shown, target, metadata.len());
            Ok(())
        } else {
            Ok(())
        }
    }
}

/// Azure ML's `_get_file_list_content_hash` over files already in order.
///
/// Reading and hashing overlap: a reader thread fills chunks of [`CHUNK`] bytes while
/// this thread hashes the ones before (at most [`CHUNKS_IN_FLIGHT`] wait, so memory is
/// bounded), which keeps the hash, not the reads, the limit.
fn content_hash(files: &[SnapshotFile]) -> Result<String, SnapshotError> {
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    hasher.update(files.len().to_string().as_bytes());
    for file in files {
        hasher.update(format!("#{}#", file.relative).as_bytes());
        hasher.update(file.size.to_string().as_bytes());
    }
    // Chunks no bigger than the files, and no more of them than they fill: a small
    // folder (most job sources) must not zero megabytes of buffers it never uses.
    let total: u64 = files.iter().map(|f| f.size).sum();
    let chunk = usize::try_from(total)
        .unwrap_or(CHUNK)
        .clamp(MIN_CHUNK, CHUNK);
    // One more than the chunks the files fill: with a single buffer, the reader would
    // wait forever for a second one to go on with (the files exactly fill one chunk).
    let buffers = usize::try_from(total.div_ceil(chunk as u64))
        .unwrap_or(usize::MAX)
        .saturating_add(1)
        .clamp(2, CHUNKS_IN_FLIGHT + 2);
    let (full, filled) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (give_back, empty) = std::sync::mpsc::channel::<Vec<u8>>();
    // Every buffer there will be, made once: no page faults on fresh memory while
    // reading, and memory bounded to these.
    for _ in 0..buffers {
        give_back
            .send(vec![0u8; chunk])
            .expect("the receiver is here");
    }
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_chunks(files, chunk, &full, &empty));
        for chunk in filled {
            hash_touching_ahead(&mut hasher, &chunk);
            // The reader may have stopped (an error): its buffers are no longer needed.
            let _ = give_back.send(chunk);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    Ok(hex::encode(hasher.finish()))
}

/// Feed `bytes` to `hasher` in pieces of [`PIECE`], first loading one byte of each cache
/// line [`AHEAD`] bytes further on.
///
/// The chunks were written by the reader thread on the other core, so they are not in
/// this core's cache. Hashed as one slice, SHA-256 waits on each cache line in turn
/// (about 1.2 GB/s here, against 1.7 GB/s hashing cached bytes); the early loads have
/// the lines on their way while the previous piece is hashed (1.55 GB/s). Measured with
/// `cargo bench --bench hash`; piece and distance within a factor of 2 of these all do
/// about as well.
fn hash_touching_ahead(hasher: &mut ring::digest::Context, bytes: &[u8]) {
    const PIECE: usize = 1024;
    const AHEAD: usize = 4096;
    let mut touched = 0u8;
    for (index, piece) in bytes.chunks(PIECE).enumerate() {
        let start = (index * PIECE + AHEAD).min(bytes.len());
        let end = (start + PIECE).min(bytes.len());
        for line in bytes[start..end].iter().step_by(64) {
            touched ^= line;
        }
        hasher.update(piece);
    }
    // Used, so that the loads are not optimised away.
    std::hint::black_box(touched);
}

/// Bytes read at once, at most.
const CHUNK: usize = 512 * 1024;
/// Bytes read at once, at least (one read of a small file, a page or so).
const MIN_CHUNK: usize = 16 * 1024;
/// Chunks read ahead of the hash, at most.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Send every file's bytes, in order, in chunks of up to [`CHUNK`], in the buffers that
/// come on `empty` (and come back there once hashed). Stops at the first error.
fn read_chunks(
    files: &[SnapshotFile],
    chunk: usize,
    full: &std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<(), SnapshotError> {
    let Ok(mut buffer) = empty.recv() else {
        return Ok(());
    };
    buffer.resize(chunk, 0);
    let mut used = 0;
    for file in files {
        let error = |source| SnapshotError::Io {
            path: file.path.clone(),
            source,
        };
        let mut reader = std::fs::File::open(&file.path).map_err(error)?;
        loop {
            let n = reader.read(&mut buffer[used..]).map_err(error)?;
            if n == 0 {
                break;
            }
            used += n;
            if used == buffer.len() {
                // The hasher gone means it stopped: nothing more to read.
                let Ok(next) = empty.recv() else {
                    return Ok(());
                };
                let filled = std::mem::replace(&mut buffer, next);
                if full.send(filled).is_err() {
                    return Ok(());
                }
                buffer.resize(chunk, 0);
                used = 0;
            }
        }
    }
    buffer.truncate(used);
    let _ = full.send(buffer);
    Ok(())
}

/// Above this, Azure ML's SDK v1 refuses a job's snapshot (`Your total snapshot size
/// exceeds the limit of 300.0 MB`); a folder this big usually holds data that belongs
/// in a datastore.
pub const SNAPSHOT_WARN_BYTES: u64 = 300 * 1024 * 1024;

/// The figure is the SDK's (`300 * 1024 * 1024` bytes, which it prints as `300.0 MB`).
#[cfg(test)]
#[test]
fn the_snapshot_warning_is_at_the_sdks_limit() {
    assert_eq!(SNAPSHOT_WARN_BYTES, 314_572_800);
}

impl Snapshot {
    /// Files that look like credentials (see [`likely_secret`]), by relative path.
    pub fn likely_secrets(&self) -> Vec<&str> {
        self.files
            .iter()
            .map(|f| f.relative.as_str())
            .filter(|relative| likely_secret(relative))
            .collect()
    }
}

/// Whether a file, by its relative path, looks like a credential that should not be
/// uploaded to a workspace's storage: dotenv files (not their `.example`, `.sample` or
/// `.template`), private keys and certificates with keys, SSH identities, and the
/// credential files of the usual tools and clouds. Compared without regard to case.
pub fn likely_secret(relative: &str) -> bool {
    let path = relative.to_ascii_lowercase();
    let name = path.rsplit('/').next().unwrap_or(&path);
    let parent = path.rsplit('/').nth(1).unwrap_or_default();
    const NAMES: [&str; 14] = [
        ".env",
        ".netrc",
        "_netrc",
        ".pgpass",
        ".git-credentials",
        ".npmrc",
        ".pypirc",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "kubeconfig",
        "application_default_credentials.json",
        "msal_token_cache.json",
    ];
    const EXTENSIONS: [&str; 7] = [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".ppk"];
    const TEMPLATES: [&str; 4] = [".example", ".sample", ".template", ".dist"];
    if NAMES.contains(&name) {
        return true;
    }
    if let Some(rest) = name.strip_prefix(".env.") {
        return !TEMPLATES.iter().any(|t| &t[1..] == rest);
    }
    if EXTENSIONS.iter().any(|e| name.ends_with(e)) {
        return true;
    }
    // Credential files known by their folder: ~/.aws/credentials, ~/.azure/*,
    // ~/.docker/config.json, ~/.kube/config, ~/.ssh/* (public keys aside).
    match parent {
        ".aws" => name == "credentials" || name == "config",
        ".azure" => name.ends_with(".json") || name == "credentials",
        ".docker" => name == "config.json",
        ".kube" => name == "config",
        ".ssh" => !name.ends_with(".pub") && name != "known_hosts" && name != "config",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash read in chunks is the hash of the plain algorithm, whatever the file
    /// sizes are next to the chunk size (empty, a chunk exactly, across boundaries).
    #[test]
    fn chunked_reading_hashes_every_byte_once_in_order() {
        let sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 5];
        assert_hashed_as_the_plain_algorithm(&sizes);
    }

    /// Small folders get chunks their size: files that fill exactly one chunk (of the
    /// smallest size, or of a size between) are hashed, not waited on forever; so are an
    /// empty folder and empty files.
    #[test]
    fn small_folders_are_hashed_in_chunks_their_size() {
        for sizes in [
            &[][..],
            &[0, 0],
            &[MIN_CHUNK],
            &[MIN_CHUNK - 1, 1],
            &[100 * 1024],
            &[1, MIN_CHUNK + 1],
            &[CHUNK, 1],
        ] {
            assert_hashed_as_the_plain_algorithm(sizes);
        }
    }

    /// A folder of files of these sizes hashes as SHA-256 over the header and every
    /// file's bytes in order.
    fn assert_hashed_as_the_plain_algorithm(sizes: &[usize]) {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        for (i, size) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..*size).map(|b| (b * 7 + i) as u8).collect();
            std::fs::write(dir.path().join(format!("f{i}.bin")), bytes).unwrap();
        }
        let snapshot = snapshot(dir.path()).unwrap();
        let mut reference = Sha256::new();
        reference.update(snapshot.files.len().to_string());
        for file in &snapshot.files {
            reference.update(format!("#{}#", file.relative));
            reference.update(file.size.to_string());
        }
        for file in &snapshot.files {
            reference.update(std::fs::read(&file.path).unwrap());
        }
        assert_eq!(
            snapshot.hash,
            hex::encode(reference.finalize()),
            "{sizes:?}"
        );
        assert_eq!(snapshot.files.len(), sizes.len());
    }

    #[test]
    fn likely_secrets_are_known_by_name_extension_and_folder() {
        for secret in [
            ".env",
            "config/.env",
            ".ENV",
            ".env.production",
            "keys/id_rsa",
            "ID_ED25519",
            "certs/server.pem",
            "tls.KEY",
            "store.p12",
            ".aws/credentials",
            "home/.azure/msal_token_cache.json",
            ".azure/azureProfile.json",
            ".azure/credentials",
            ".aws/config",
            ".docker/config.json",
            ".kube/config",
            ".ssh/deploy",
            ".git-credentials",
            ".netrc",
        ] {
            assert!(likely_secret(secret), "{secret}");
        }
        for fine in [
            "train.py",
            ".env.example",
            ".env.sample",
            ".env.template",
            "environment.yml",
            "env.py",
            "keys/id_rsa.pub",
            ".ssh/known_hosts",
            "docker/config.json",
            "kube/config",
            ".azure/notes.txt",
            ".aws/notes.txt",
            ".ssh/config",
            "monkey.py",
            "README.md",
        ] {
            assert!(!likely_secret(fine), "{fine}");
        }
    }
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

/// Symlinks, checked against azure-ai-ml 1.35.2: each expected hash and file list is what
/// its `get_content_hash` and `get_upload_files_from_folder` return for the same folder
/// (tests/cli/paths.rs compares with the Python package itself when it is installed).
#[cfg(all(test, unix))]
mod link_tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// `<temp>/secret.txt` outside, and the snapshot folder `<temp>/snap`.
    fn folder(files: &[(&str, &str)], links: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("secret.txt"), "outside").unwrap();
        let root = dir.path().join("snap");
        for (name, text) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        for (name, target) in links {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(target, path).unwrap();
        }
        (dir, root)
    }

    const BASE: [(&str, &str); 3] = [("a.py", "A"), ("B.py", "BB"), ("sub/c.py", "C")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        BASE.iter().chain(extra).copied().collect()
    }

    fn names(snapshot: &Snapshot) -> Vec<&str> {
        snapshot.files.iter().map(|f| f.relative.as_str()).collect()
    }

    fn link_problems(root: &Path) -> Vec<LinkProblem> {
        match snapshot(root) {
            Err(SnapshotError::Links { links, .. }) => links,
            other => panic!("expected symlink problems, got {other:?}"),
        }
    }

    /// Sorting by the raw path would put `B.py` first and give another hash.
    #[test]
    fn files_are_hashed_in_order_of_their_lower_cased_path() {
        let (_dir, root) = folder(&[("a.py", "a"), ("B.py", "b")], &[]);
        let snap = snapshot(&root).unwrap();
        assert_eq!(names(&snap), ["a.py", "B.py"]);
        assert_eq!(
            snap.hash,
            "206ab4bc7b34ab0b6369b8308c67c04e3f0d719d62a8a8ba9f5168f0b3ffbcaa"
        );
    }

    #[test]
    fn links_inside_the_folder_are_followed_as_azure_ml_follows_them() {
        let (_dir, root) = folder(
            &BASE,
            &[
                ("link_file.py", "a.py"),
                ("link_dir", "sub"),
                ("sub/up.py", "../B.py"),
            ],
        );
        let snap = snapshot(&root).unwrap();
        assert_eq!(
            names(&snap),
            [
                "a.py",
                "B.py",
                "link_dir/c.py",
                "link_dir/up.py",
                "link_file.py",
                "sub/c.py",
                "sub/up.py"
            ]
        );
        assert_eq!(
            snap.hash,
            "78fb7a27cf5dbbba286b51e3c50e3f2a554421946a5d09434542f1df9877f647"
        );
        // The bytes are read from the checked target, not through the link again.
        let real_root = fs::canonicalize(&root).unwrap();
        let link_file = &snap.files[4];
        assert_eq!(link_file.path, real_root.join("a.py"));
        assert_eq!(link_file.size, 1);
    }

    #[test]
    fn a_dangling_link_is_an_error_naming_it() {
        // azure-ai-ml fails on it too (FileNotFoundError), so no hash could match.
        let (_dir, root) = folder(&BASE, &[("dangling.py", "missing.py")]);
        assert_eq!(
            link_problems(&root),
            [LinkProblem {
                link: "dangling.py".into(),
                target: "missing.py".into(),
                kind: LinkKind::Dangling,
            }]
        );
        let message = snapshot(&root).unwrap_err().to_string();
        assert_eq!(
            message,
            "symlink not followed (a snapshot never leaves its folder): `dangling.py` -> `missing.py` does not exist; list it in .amlignore to leave it out"
        );
    }

    #[test]
    fn links_that_leave_the_folder_are_errors_naming_each() {
        let (dir, root) = folder(
            &BASE,
            &[
                ("secret", "../secret.txt"),
                ("etc", "/etc"),
                ("sub/up", ".."),
                ("sub/here", "."),
                ("sub/deep/top", "../../"),
            ],
        );
        let outside = fs::canonicalize(dir.path().join("secret.txt")).unwrap();
        let problems = link_problems(&root);
        assert_eq!(
            problems,
            [
                LinkProblem {
                    link: "etc".into(),
                    target: fs::canonicalize("/etc").unwrap(),
                    kind: LinkKind::Outside,
                },
                LinkProblem {
                    link: "secret".into(),
                    target: outside,
                    kind: LinkKind::Outside,
                },
                LinkProblem {
                    link: "sub/deep/top".into(),
                    target: "../../".into(),
                    kind: LinkKind::Loop,
                },
                LinkProblem {
                    link: "sub/here".into(),
                    target: ".".into(),
                    kind: LinkKind::Loop,
                },
                LinkProblem {
                    link: "sub/up".into(),
                    target: "..".into(),
                    kind: LinkKind::Loop,
                },
            ]
        );
        let message = snapshot(&root).unwrap_err().to_string();
        assert!(message.starts_with("symlinks not followed (a snapshot never leaves its folder): `etc` -> `/etc` is outside `"), "{message}");
        assert!(
            message.ends_with("; list them in .amlignore to leave them out"),
            "{message}"
        );
    }

    /// What the ignore file leaves out is not followed, so it is no problem; the hash is
    /// azure-ai-ml's for the same folder and ignore file.
    #[test]
    fn links_the_ignore_file_leaves_out_are_not_problems() {
        type Entries = &'static [(&'static str, &'static str)];
        let cases: [(&str, Entries, Entries, &str); 3] = [
            (
                "dangling",
                &[(".amlignore", "dangling.py\n")],
                &[("dangling.py", "missing.py")],
                "dfdcd32d3897e6e56b4035d6d603f61da369d22d04f538a78cac5c0b063541f2",
            ),
            (
                "outside",
                &[(".amlignore", "secret\n")],
                &[("secret", "../secret.txt")],
                "062cd4c2c1bb9a31512412fd6dda7c1c7cd469ff9a963610bafe97b51f44788f",
            ),
            (
                "in an ignored folder",
                &[(".amlignore", "secret\nsub/\n")],
                &[
                    ("secret", "../secret.txt"),
                    ("sub/out", "../../secret.txt"),
                    ("sub/gone", "nowhere"),
                ],
                "b8901d5d96974bf2c26403766c6b8e0754561d925925b1960656faa9271c4b52",
            ),
        ];
        for (label, files, links, hash) in cases {
            let (_dir, root) = folder(&with(files), links);
            let snap = snapshot(&root).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(snap.hash, hash, "{label}: {:?}", names(&snap));
        }
    }

    /// A loop that the ignore file names is left out. (azure-ai-ml walks into it again
    /// and again until the path is too long: no hash to match.)
    #[test]
    fn a_loop_the_ignore_file_names_is_left_out() {
        let (_dir, root) = folder(&with(&[(".amlignore", "up\n")]), &[("up", ".")]);
        let snap = snapshot(&root).unwrap();
        assert_eq!(names(&snap), [".amlignore", "a.py", "B.py", "sub/c.py"]);
    }

    /// azure-ai-ml matches the files under a linked folder by their real paths: ignoring
    /// the folder ignores its files under the link's name too, ignoring the link's name
    /// does not.
    #[test]
    fn ignore_patterns_match_files_by_their_real_location() {
        let (_dir, root) = folder(&with(&[(".amlignore", "sub/\n")]), &[("link_dir", "sub")]);
        let snap = snapshot(&root).unwrap();
        assert_eq!(names(&snap), [".amlignore", "a.py", "B.py"]);
        assert_eq!(
            snap.hash,
            "80c521d604189dba75d38ac9dafa01e4cf8eac1b463087e925095bc746348e64"
        );

        let (_dir, root) = folder(
            &with(&[(".amlignore", "link_dir/\n")]),
            &[("link_dir", "sub")],
        );
        let snap = snapshot(&root).unwrap();
        assert_eq!(
            names(&snap),
            [".amlignore", "a.py", "B.py", "link_dir/c.py", "sub/c.py"]
        );
        assert_eq!(
            snap.hash,
            "db7c80bdf56e027aa0cf300a8481c2c4eb7a3cb8d6ed301220f9ef8709e6ad57"
        );
    }

    /// An ignore file is read before the walk; one that leads out is not read at all.
    #[test]
    fn an_ignore_file_that_leads_out_is_not_read() {
        let (dir, root) = folder(&BASE, &[(".gitignore", "../secret.txt")]);
        fs::write(dir.path().join("secret.txt"), "[z-a]\n").unwrap();
        let problems = link_problems(&root);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].link, ".gitignore");
        assert_eq!(problems[0].kind, LinkKind::Outside);
    }

    /// Folder links that do not loop can still multiply the paths: 2^14 here.
    #[test]
    fn folder_links_are_followed_a_bounded_number_of_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snap");
        for level in 0..14 {
            let folder = root.join(format!("d{level}"));
            fs::create_dir_all(&folder).unwrap();
            for link in ["l1", "l2"] {
                symlink(format!("../d{}", level + 1), folder.join(link)).unwrap();
            }
        }
        fs::create_dir_all(root.join("d14")).unwrap();
        fs::write(root.join("d14/f"), "x").unwrap();
        let error = snapshot(&root).unwrap_err();
        assert!(
            matches!(error, SnapshotError::TooManyLinks { .. }),
            "{error}"
        );
    }

    /// `count` links in `links/`, each to the same plain folder `target/` (no loop).
    fn folder_links(count: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snap");
        fs::create_dir_all(root.join("target")).unwrap();
        fs::write(root.join("target/f"), "x").unwrap();
        fs::create_dir_all(root.join("links")).unwrap();
        for i in 0..count {
            symlink("../target", root.join(format!("links/l{i:05}"))).unwrap();
        }
        (dir, root)
    }

    #[test]
    fn exactly_the_bound_of_folder_links_is_followed_and_one_more_is_refused() {
        let (_dir, root) = folder_links(MAX_FOLLOWED_FOLDER_LINKS);
        let snapshot = snapshot(&root).unwrap();
        assert_eq!(snapshot.files.len(), MAX_FOLLOWED_FOLDER_LINKS + 1);
        let (_dir, root) = folder_links(MAX_FOLLOWED_FOLDER_LINKS + 1);
        let error = super::snapshot(&root).unwrap_err();
        assert!(
            matches!(error, SnapshotError::TooManyLinks { .. }),
            "{error}"
        );
    }

    /// Up to ten problems are named; beyond, the rest are counted.
    #[test]
    fn ten_link_problems_are_all_named_and_eleven_name_ten_and_count_one() {
        let links: Vec<(String, String)> = (0..11)
            .map(|i| (format!("d{i:02}"), format!("missing{i:02}")))
            .collect();
        let as_refs = |n: usize| -> Vec<(&str, &str)> {
            links[..n]
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect()
        };
        let (_dir, root) = folder(&BASE, &as_refs(MAX_LINKS_SHOWN));
        let message = snapshot(&root).unwrap_err().to_string();
        assert!(message.contains("`d09` -> `missing09`"), "{message}");
        assert!(!message.contains("more"), "{message}");
        let (_dir, root) = folder(&BASE, &as_refs(MAX_LINKS_SHOWN + 1));
        let message = snapshot(&root).unwrap_err().to_string();
        assert!(message.contains("`d09` -> `missing09`"), "{message}");
        assert!(!message.contains("`d10`"), "{message}");
        assert!(
            message.contains("does not exist, and 1 more; list them"),
            "{message}"
        );
    }

    /// The error names the ignore file once, then says what is wrong with it.
    #[test]
    fn an_invalid_ignore_file_is_named_once() {
        let (_dir, root) = folder(&with(&[(".amlignore", "ok.txt\n[z-a]\n")]), &[]);
        let message = snapshot(&root).unwrap_err().to_string();
        let name = root.join(".amlignore").display().to_string();
        assert_eq!(message.matches(&name).count(), 1, "{message}");
        let (head, why) = message
            .split_once("is not valid in an ignore file: ")
            .unwrap();
        assert!(head.contains(&name), "{message}");
        assert!(why.contains("[z-a]"), "{message}");
    }
}
