//! Stage 1, load -> validate. Input: the paths given on the command line (files or
//! folders of spec files) and the process environment. Output: the validated
//! `model::Specs`, or every problem found in every file, in one run.
//!
//! yaml (bytes -> positioned YAML) -> read (-> `raw` types, problems of shape) ->
//! validate (-> `model`, problems of meaning). No network.

pub mod interpolate;
pub mod model;
pub mod names;
pub mod paths;
pub mod raw;
pub mod read;
pub mod schema;
pub mod secret;
pub mod validate;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Severity, SourceText, Span};
use interpolate::EnvVars;
use model::Specs;

/// What loading produced: the model when there were no errors, every problem, and the
/// text of each file (secrets masked) for showing problems in context.
#[derive(Debug)]
pub struct Loaded {
    pub specs: Option<Specs>,
    pub problems: Vec<Diagnostic>,
    /// Spec files read, in order.
    pub files: Vec<PathBuf>,
    /// Each file's text with secret values masked, for snippets.
    pub sources: BTreeMap<PathBuf, SourceText>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Diagnostic::is_error)
    }
}

/// A spec file to read, and whether it was found by listing a folder (such a file may
/// turn out to be a conda file that a spec refers to, and is then skipped).
struct Candidate {
    path: PathBuf,
    from_folder: bool,
}

/// One file's documents after reading.
struct FileRead {
    path: PathBuf,
    from_folder: bool,
    manifests: Vec<raw::Manifest>,
    problems: Vec<Diagnostic>,
}

/// How specs are checked, beyond what they say themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Allow paths that resolve outside the manifest's repository (`--allow-outside-repo`).
    pub allow_outside_repo: bool,
    /// Upload files that look like credentials (`.env`, private keys) in code snapshots
    /// and build contexts (`--allow-secret-files`); without it, a plan that would upload
    /// one is blocked.
    pub allow_secret_files: bool,
    /// Treat `${NAME}` references to unset variables as warnings: everything but their
    /// values is checked (`validate --allow-unset`, for pull requests from forks, which
    /// get no secrets).
    pub allow_unset: bool,
}

pub fn load(paths: &[PathBuf], env: &EnvVars) -> Loaded {
    load_with(paths, env, LoadOptions::default())
}

pub fn load_with(paths: &[PathBuf], env: &EnvVars, options: LoadOptions) -> Loaded {
    let mut problems = Vec::new();
    let candidates = discover(paths, &mut problems);
    let mut sources = BTreeMap::new();
    let reads: Vec<FileRead> = candidates
        .into_iter()
        .map(|c| read_file(c, env, options.allow_unset, &mut sources))
        .collect();

    // A YAML file found in a folder that a spec names as its conda file is not a spec.
    let conda_files: BTreeSet<PathBuf> = reads.iter().flat_map(referenced_conda_files).collect();
    let mut files = Vec::new();
    let mut documents = Vec::new();
    for read in reads {
        if read.from_folder && canonical(&read.path).is_some_and(|p| conda_files.contains(&p)) {
            tracing::debug!(file = %read.path.display(), "skipping: it is a conda file named by a spec");
            sources.remove(&read.path);
            continue;
        }
        problems.extend(read.problems);
        for manifest in &read.manifests {
            documents.push(validate::document(
                &read.path,
                manifest,
                options,
                &mut problems,
            ));
        }
        files.push(read.path);
    }
    let specs = validate::assemble(documents, &mut problems);
    tracing::info!(
        files = files.len(),
        workspaces = specs.workspaces.len(),
        problems = problems.len(),
        "loaded specs"
    );
    problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    problems.dedup();
    let has_errors = problems.iter().any(|p| p.severity == Severity::Error);
    Loaded {
        specs: (!has_errors).then_some(specs),
        problems,
        files,
        sources,
    }
}

/// Expand the command line into spec files: files as given, folders as their `*.yaml`
/// and `*.yml` files (not recursive, sorted by name).
fn discover(paths: &[PathBuf], problems: &mut Vec<Diagnostic>) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for path in paths {
        if path.is_dir() {
            let listing = match std::fs::read_dir(path) {
                Ok(listing) => listing,
                Err(error) => {
                    problems.push(Diagnostic::error(
                        path,
                        None,
                        "",
                        format!("cannot read the folder: {error}"),
                    ));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = listing
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            if found.is_empty() {
                problems.push(
                    Diagnostic::error(path, None, "", "the folder holds no spec files")
                        .with_hint("spec files end in .yaml or .yml; sub-folders are not searched"),
                );
            }
            candidates.extend(found.into_iter().map(|path| Candidate {
                path,
                from_folder: true,
            }));
        } else if path.exists() {
            candidates.push(Candidate {
                path: path.clone(),
                from_folder: false,
            });
        } else {
            problems.push(
                Diagnostic::error(path, None, "", "no such file or folder")
                    .with_hint("give a spec file (e.g. specs/pets.yaml) or a folder of them"),
            );
        }
    }
    // The same file named twice (directly and through its folder) is read once.
    let mut seen = BTreeSet::new();
    candidates.retain(|c| seen.insert(canonical(&c.path).unwrap_or_else(|| c.path.clone())));
    candidates
}

fn read_file(
    candidate: Candidate,
    env: &EnvVars,
    allow_unset: bool,
    sources: &mut BTreeMap<PathBuf, SourceText>,
) -> FileRead {
    let Candidate { path, from_folder } = candidate;
    let mut read = FileRead {
        path: path.clone(),
        from_folder,
        manifests: Vec::new(),
        problems: Vec::new(),
    };
    let fail = |problem: yaml::LoadError| {
        let mut diagnostic = Diagnostic::error(&path, problem.span, "", problem.message);
        diagnostic.hint = problem.hint;
        diagnostic
    };
    let bytes = match read_regular_file(&path, yaml::MAX_FILE_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(FileError::TooLarge { size, .. }) => {
            read.problems.push(fail(yaml::too_large(size)));
            return read;
        }
        Err(error) => {
            read.problems.push(Diagnostic::error(
                &path,
                None,
                "",
                format!("cannot read the file: {error}"),
            ));
            return read;
        }
    };
    let text = match yaml::decode(&bytes) {
        Ok(text) => text,
        Err(problem) => {
            read.problems.push(fail(problem));
            return read;
        }
    };
    let mut shown = secret::mask_secret_lines(text);
    let documents = match yaml::parse(text) {
        Ok(documents) => documents,
        Err(problem) => {
            read.problems.push(fail(problem));
            sources.insert(path.clone(), SourceText::new(shown));
            return read;
        }
    };
    let documents: Vec<&yaml::Node> = documents.iter().filter(|d| !d.is_null()).collect();
    tracing::debug!(file = %path.display(), documents = documents.len(), "parsed");
    if documents.is_empty() {
        read.problems.push(
            Diagnostic::error(&path, None, "", "the file is empty")
                .with_hint("a spec needs at least a `workspace:` section with name, subscription_id and resource_group"),
        );
    }
    // Values to hide from snippets: under keys that look like secrets (a misspelled
    // `pasword:` too), wherever they are; and the secrets the reader took.
    let mut sensitive = Vec::new();
    let mut keys = secret::SecretKeys::default();
    for document in &documents {
        secret_looking_values(document, &mut keys, &mut sensitive);
    }
    for document in documents {
        if !matches!(document.value, yaml::Value::Map(_)) {
            let found = document.kind_name();
            read.problems.push(
                Diagnostic::error(&path, Some(document.span), "", format!("the top level must be a mapping, found {found}"))
                    .with_hint("start the file with `workspace:`, then `registries:`, `environments:`, `clusters:`, `jobs:` as needed"),
            );
            continue;
        }
        let mut reader = read::Reader::new(&path, env);
        reader.allow_unset = allow_unset;
        read.manifests.push(reader.manifest(document));
        read.problems.append(&mut reader.problems);
        sensitive.append(&mut reader.sensitive);
    }
    for span in sensitive {
        secret::mask_range(&mut shown, span.start, span.end);
    }
    sources.insert(path, SourceText::new(shown));
    read
}

/// The spans of every scalar under a key that looks like a secret (see
/// [`secret::looks_secret`]), at any depth.
fn secret_looking_values(node: &yaml::Node, keys: &mut secret::SecretKeys, out: &mut Vec<Span>) {
    match &node.value {
        yaml::Value::Scalar(_) => {}
        yaml::Value::Seq(items) => {
            for item in items {
                secret_looking_values(item, keys, out);
            }
        }
        yaml::Value::Map(entries) => {
            for entry in entries {
                if keys.looks_secret(&entry.key) {
                    scalar_spans(&entry.value, out);
                } else {
                    secret_looking_values(&entry.value, keys, out);
                }
            }
        }
    }
}

fn scalar_spans(node: &yaml::Node, out: &mut Vec<Span>) {
    match &node.value {
        yaml::Value::Scalar(_) => out.push(node.span),
        yaml::Value::Seq(items) => items.iter().for_each(|item| scalar_spans(item, out)),
        yaml::Value::Map(entries) => entries
            .iter()
            .for_each(|entry| scalar_spans(&entry.value, out)),
    }
}

/// Why [`read_regular_file`] refused or failed to read a file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A folder, a named pipe, a device or a socket: reading it could block forever or
    /// never end (`/dev/zero`), so it is refused before it is opened for reading.
    #[error("it is {kind}, not a regular file")]
    NotAFile { kind: &'static str },
    /// Larger than the limit: `size` from the file's metadata, or `None` when the file
    /// grew past the limit while it was read.
    #[error("it is larger than {limit} bytes")]
    TooLarge { size: Option<u64>, limit: u64 },
    #[error("{source}")]
    Io { source: std::io::Error },
}

/// Read a regular file of at most `limit` bytes, holding at most `limit + 1` bytes in
/// memory whatever the file is: the size is checked from metadata before reading, what
/// is not a regular file is refused without being opened for reading (opening a named
/// pipe blocks until a writer comes; a device may never end), and the read itself stops
/// one byte past the limit (a file that grows, or lies about its size as /proc files do).
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io { source };
    check_regular(&std::fs::metadata(path).map_err(io)?, limit)?;
    let file = open_without_blocking(path).map_err(io)?;
    // The path may have been swapped between the two looks: trust the open file.
    let size = check_regular(&file.metadata().map_err(io)?, limit)?;
    let mut bytes = Vec::with_capacity(size.min(limit) as usize + 1);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { size: None, limit });
    }
    Ok(bytes)
}

/// The file's size, if it is a regular file of at most `limit` bytes.
fn check_regular(metadata: &std::fs::Metadata, limit: u64) -> Result<u64, FileError> {
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        return Err(FileError::NotAFile {
            kind: kind_of(&file_type),
        });
    }
    if metadata.len() > limit {
        return Err(FileError::TooLarge {
            size: Some(metadata.len()),
            limit,
        });
    }
    Ok(metadata.len())
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK makes opening a named pipe return at once; reads of regular files
    // ignore it.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn referenced_conda_files(read: &FileRead) -> Vec<PathBuf> {
    let dir = read.path.parent().unwrap_or(Path::new("."));
    read.manifests
        .iter()
        .flat_map(|m| m.environments.iter().flatten())
        .filter_map(|e| e.value.conda_file.as_ref())
        .filter_map(|conda| canonical(&dir.join(&conda.value)))
        .collect()
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &Path, limit: u64) -> FileError {
        read_regular_file(path, limit).expect_err("refused")
    }

    #[test]
    fn reads_regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, "12345").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), b"12345");
        assert!(matches!(
            refused(&path, 4),
            FileError::TooLarge {
                size: Some(5),
                limit: 4
            }
        ));
        assert!(matches!(
            refused(dir.path(), 5),
            FileError::NotAFile { kind: "a folder" }
        ));
        assert!(matches!(
            refused(&dir.path().join("missing"), 5),
            FileError::Io { .. }
        ));
    }

    #[test]
    fn sparse_files_are_refused_from_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        assert!(matches!(
            refused(&path, 1024),
            FileError::TooLarge {
                size: Some(size),
                ..
            } if size == 1 << 40
        ));
    }

    #[cfg(unix)]
    #[test]
    fn pipes_and_devices_are_refused_unopened() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.yaml");
        let name = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        // With no writer, opening the pipe for reading would block this test forever.
        let error = refused(&fifo, 1024);
        assert_eq!(
            error.to_string(),
            "it is a named pipe (FIFO), not a regular file"
        );
        let error = refused(Path::new("/dev/zero"), 1024);
        assert_eq!(
            error.to_string(),
            "it is a character device, not a regular file"
        );
        // A link to a device is the device.
        let link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(refused(&link, 1024), FileError::NotAFile { .. }));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_that_say_they_are_empty_are_still_read_bounded() {
        // /proc files report size 0 and hold more: the read stops past the limit.
        let path = Path::new("/proc/self/maps");
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        assert!(matches!(
            refused(path, 16),
            FileError::TooLarge {
                size: None,
                limit: 16
            }
        ));
    }

    #[test]
    fn values_under_keys_that_look_secret_are_found_at_any_depth() {
        let text = "a:\n  pasword: one\n  list:\n    - {api_key: [two, three]}\n  safe: four\nb: &x five\nclient_secret: *x\n";
        let documents = yaml::parse(text).unwrap();
        let mut spans = Vec::new();
        secret_looking_values(
            &documents[0],
            &mut secret::SecretKeys::default(),
            &mut spans,
        );
        let found: Vec<&str> = spans.iter().map(|s| &text[s.start..s.end]).collect();
        // An anchor's name is masked with its value: harmless.
        assert_eq!(found, ["one", "two", "three", "&x five"]);
    }
}
