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
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Severity};
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
    pub sources: BTreeMap<PathBuf, String>,
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
        .map(|c| read_file(c, env, &mut sources))
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
    sources: &mut BTreeMap<PathBuf, String>,
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
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
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
            sources.insert(path.clone(), shown);
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
        read.manifests.push(reader.manifest(document));
        read.problems.append(&mut reader.problems);
        for span in reader.sensitive {
            secret::mask_range(&mut shown, span.start, span.end);
        }
    }
    sources.insert(path, shown);
    read
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
