//! Reader: one YAML document (`yaml::Node`) -> `raw::Manifest`, reporting every
//! problem of shape with its exact position: unknown keys (with "did you mean"),
//! missing required keys, wrong types, bad enum values, `${NAME}` interpolation.
//!
//! Each `raw` type has one reading function below that asks for each of its keys by
//! name; whatever a mapping holds that nobody asked for is an unknown key. Semantic
//! rules (ranges between fields, references, files, names) belong to `validate`.

use std::path::Path;

use crate::diagnostic::{Diagnostic, Span, did_you_mean, push_escaped, quoted};
use crate::spec::interpolate::{self, EnvVars, InterpolationError};
use crate::spec::raw::{
    Arguments, Cluster, Distribution, Environment, Job, KeyValues, Manifest, Registry, Required,
    SecretRef, Spanned, VmPriority, Workspace,
};
use crate::spec::secret::Secret;
use crate::spec::yaml::{Entry, Node, Scalar, ScalarKind, Value};

pub struct Reader<'a> {
    file: &'a Path,
    env: &'a EnvVars,
    pub problems: Vec<Diagnostic>,
    /// Byte ranges of secret values, masked before any snippet of the file is shown.
    pub sensitive: Vec<Span>,
    /// An unset variable is a warning, and its value is not checked.
    pub allow_unset: bool,
}

/// The keys of one mapping, and which of them have been asked for.
struct Fields<'n> {
    /// Where "missing key" problems point: the mapping's first key.
    anchor: Span,
    path: String,
    entries: &'n [Entry],
    asked: Vec<&'static str>,
    /// Keys starting with `x-` are ignored here (a place for YAML anchors).
    extensions: bool,
    /// Required keys found missing.
    missing: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    fn take(&mut self, key: &'static str) -> Option<&'n Entry> {
        self.asked.push(key);
        self.entries.iter().find(|e| e.key == key)
    }

    fn child(&self, key: &str) -> String {
        child_path(&self.path, key)
    }
}

/// What an az ml v2 YAML key is called here, for a mapping at `path` (`jobs[0]`,
/// `clusters[1]`, `environments[2]`): the hint, and the key it stands for (so that key
/// is not also reported missing).
fn az_ml_hint(path: &str, key: &str) -> Option<(&'static str, Option<&'static str>)> {
    let list = path.rsplit('.').next().unwrap_or(path);
    let list = list.split('[').next().unwrap_or(list);
    Some(match (list, key) {
        ("jobs", "code") => (
            "az ml's `code` is `source_directory` here (the folder uploaded as the job's snapshot)",
            Some("source_directory"),
        ),
        ("jobs", "compute") => (
            "az ml's `compute` is `cluster` here: the name of a `clusters` entry (`azureml:` prefix accepted)",
            Some("cluster"),
        ),
        ("jobs", "resources") => (
            "az ml's `resources.instance_count` is `node_count` here",
            None,
        ),
        ("jobs", "inputs" | "outputs") => (
            "job inputs and outputs are not supported yet: pass data locations as arguments or `environment_variables`",
            None,
        ),
        ("jobs", "type") => ("not needed: every job here is a command job", None),
        ("clusters", "size") => ("az ml's `size` is `vm_size` here", Some("vm_size")),
        ("clusters", "min_instances") => ("az ml's `min_instances` is `min_nodes` here", None),
        ("clusters", "max_instances") => (
            "az ml's `max_instances` is `max_nodes` here",
            Some("max_nodes"),
        ),
        ("clusters", "tier") => (
            "az ml's `tier` is `vm_priority` here: `dedicated` or `low_priority`",
            None,
        ),
        ("clusters", "idle_time_before_scale_down") => (
            "az ml's `idle_time_before_scale_down` is `idle_seconds_before_scale_down` here",
            None,
        ),
        ("clusters", "type") => (
            "not needed: every cluster here is an AmlCompute cluster",
            None,
        ),
        ("environments", "build") => (
            "az ml's `build.path` is `build_context` here, with `dockerfile_path` inside it (or an inline `dockerfile`)",
            None,
        ),
        _ => return None,
    })
}

pub fn child_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), simple) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => {
            // `["key"]`, with `"` and `\` escaped so the path reads back unambiguously,
            // and control characters as everywhere else (`\u{1b}`).
            let mut out = format!("{parent}[\"");
            for c in key.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\t' => out.push_str("\\t"),
                    c => push_escaped(&mut out, c),
                }
            }
            out.push_str("\"]");
            out
        }
    }
}

fn item_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// What a function reading one value gets: the node and its key path.
type ReadFn<'a, 'n, T> = fn(&mut Reader<'a>, &'n Node, String) -> Option<Spanned<T>>;

impl<'a> Reader<'a> {
    pub fn new(file: &'a Path, env: &'a EnvVars) -> Self {
        Reader {
            file,
            env,
            problems: Vec::new(),
            sensitive: Vec::new(),
            allow_unset: false,
        }
    }

    fn error(&mut self, span: Span, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::error(self.file, Some(span), path, message));
        self.problems.last_mut().expect("just pushed")
    }

    // ---- the manifest, one function per mapping -------------------------------------

    /// Read a document whose top level is a mapping (the caller checks that).
    pub fn manifest(&mut self, root: &Node) -> Manifest {
        let mut f = self
            .fields(root, String::new())
            .expect("caller checked the top level is a mapping");
        f.extensions = true;
        let workspace = self.required(&mut f, "workspace", Self::workspace);
        let registries = self.list(&mut f, "registries", Self::registry);
        let environments = self.list(&mut f, "environments", Self::environment);
        let clusters = self.list(&mut f, "clusters", Self::cluster);
        let jobs = self.list(&mut f, "jobs", Self::job);
        self.finish(f);
        Manifest {
            workspace,
            registries,
            environments,
            clusters,
            jobs,
        }
    }

    fn workspace(&mut self, node: &Node, path: String) -> Option<Spanned<Workspace>> {
        let mut f = self.fields(node, path.clone())?;
        let workspace = Workspace {
            name: self.required(&mut f, "name", Self::text),
            subscription_id: self.required(&mut f, "subscription_id", Self::text),
            resource_group: self.required(&mut f, "resource_group", Self::text),
            location: self.optional(&mut f, "location", Self::text),
            create_if_missing: self.optional(&mut f, "create_if_missing", Self::boolean),
            description: self.optional(&mut f, "description", Self::text),
            tags: self.optional(&mut f, "tags", Self::key_values),
        };
        self.finish(f);
        Some(Spanned::new(workspace, node.span, path))
    }

    fn registry(&mut self, node: &Node, path: String) -> Option<Spanned<Registry>> {
        let mut f = self.fields(node, path.clone())?;
        let registry = Registry {
            name: self.required(&mut f, "name", Self::text),
            address: self.required(&mut f, "address", Self::text),
            username: self.required(&mut f, "username", Self::text),
            password: self.required(&mut f, "password", Self::secret),
        };
        self.finish(f);
        Some(Spanned::new(registry, node.span, path))
    }

    fn environment(&mut self, node: &Node, path: String) -> Option<Spanned<Environment>> {
        let mut f = self.fields(node, path.clone())?;
        let environment = Environment {
            name: self.required(&mut f, "name", Self::text),
            version: self.optional(&mut f, "version", Self::version),
            image: self.optional(&mut f, "image", Self::text),
            dockerfile: self.optional(&mut f, "dockerfile", Self::verbatim),
            dockerfile_path: self.optional(&mut f, "dockerfile_path", Self::text),
            build_context: self.optional(&mut f, "build_context", Self::text),
            registry: self.optional(&mut f, "registry", Self::text),
            user_managed_dependencies: self.optional(
                &mut f,
                "user_managed_dependencies",
                Self::boolean,
            ),
            conda_file: self.optional(&mut f, "conda_file", Self::text),
            description: self.optional(&mut f, "description", Self::text),
            tags: self.optional(&mut f, "tags", Self::key_values),
        };
        self.finish(f);
        Some(Spanned::new(environment, node.span, path))
    }

    fn cluster(&mut self, node: &Node, path: String) -> Option<Spanned<Cluster>> {
        let mut f = self.fields(node, path.clone())?;
        let cluster = Cluster {
            name: self.required(&mut f, "name", Self::text),
            vm_size: self.required(&mut f, "vm_size", Self::text),
            vm_priority: self.optional(&mut f, "vm_priority", Self::vm_priority),
            min_nodes: self.optional(&mut f, "min_nodes", Self::count_from_0),
            max_nodes: self.required(&mut f, "max_nodes", Self::count_from_1),
            idle_seconds_before_scale_down: self.optional(
                &mut f,
                "idle_seconds_before_scale_down",
                Self::seconds,
            ),
            description: self.optional(&mut f, "description", Self::text),
            tags: self.optional(&mut f, "tags", Self::key_values),
        };
        self.finish(f);
        Some(Spanned::new(cluster, node.span, path))
    }

    fn job(&mut self, node: &Node, path: String) -> Option<Spanned<Job>> {
        let mut f = self.fields(node, path.clone())?;
        let job = Job {
            name: self.required(&mut f, "name", Self::text),
            experiment: self.optional(&mut f, "experiment", Self::text),
            display_name: self.optional(&mut f, "display_name", Self::text),
            description: self.optional(&mut f, "description", Self::text),
            source_directory: self.optional(&mut f, "source_directory", Self::text),
            command: self.optional(&mut f, "command", Self::verbatim),
            script: self.optional(&mut f, "script", Self::text),
            arguments: self.optional(&mut f, "arguments", Self::arguments),
            environment: self.required(&mut f, "environment", Self::text),
            cluster: self.required(&mut f, "cluster", Self::text),
            node_count: self.optional(&mut f, "node_count", Self::count_from_1),
            distribution: self.optional(&mut f, "distribution", Self::distribution),
            environment_variables: self.optional(&mut f, "environment_variables", Self::key_values),
            tags: self.optional(&mut f, "tags", Self::key_values),
        };
        self.finish(f);
        Some(Spanned::new(job, node.span, path))
    }

    fn distribution(&mut self, node: &Node, path: String) -> Option<Spanned<Distribution>> {
        let mut f = self.fields(node, path.clone())?;
        let kind = self.required(&mut f, "type", Self::distribution_type);
        let Some(kind) = kind.0 else {
            // Without a known type, any distribution key may belong here.
            for key in [
                "processes_per_node",
                "worker_count",
                "parameter_server_count",
            ] {
                f.take(key);
            }
            self.finish(f);
            return None;
        };
        let distribution = match kind.value {
            DistributionType::Pytorch => Distribution::Pytorch {
                processes_per_node: self.optional(&mut f, "processes_per_node", Self::processes),
            },
            DistributionType::Mpi => Distribution::Mpi {
                processes_per_node: self.optional(&mut f, "processes_per_node", Self::processes),
            },
            DistributionType::Tensorflow => Distribution::Tensorflow {
                worker_count: self.optional(&mut f, "worker_count", Self::count_from_1),
                parameter_server_count: self.optional(
                    &mut f,
                    "parameter_server_count",
                    Self::count_from_0,
                ),
            },
        };
        self.finish(f);
        Some(Spanned::new(distribution, node.span, path))
    }

    // ---- structure ------------------------------------------------------------------

    fn fields<'n>(&mut self, node: &'n Node, path: String) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => {
                let anchor = entries.first().map_or(node.span, |e| e.key_span);
                Some(Fields {
                    anchor,
                    path,
                    entries,
                    asked: Vec::new(),
                    extensions: false,
                    missing: Vec::new(),
                })
            }
            _ => {
                let found = node.kind_name();
                self.error(
                    node.span,
                    &path,
                    format!("expected a mapping of keys to values, found {found}"),
                );
                None
            }
        }
    }

    /// Report every key nobody asked for.
    /// Report every key nobody asked for, and every required key that is missing
    /// (unless an unknown key looks like its misspelling: one problem, not two).
    fn finish(&mut self, fields: Fields<'_>) {
        let mut suggested = Vec::new();
        for entry in fields.entries {
            // At the top level: `x-` keys (YAML anchors), and `$schema`, with which az ml
            // files start (editors use it; amlspec has its own schema).
            if fields.asked.contains(&entry.key.as_str())
                || (fields.extensions && (entry.key.starts_with("x-") || entry.key == "$schema"))
            {
                continue;
            }
            let hint = match (
                az_ml_hint(&fields.path, &entry.key),
                did_you_mean(&entry.key, fields.asked.iter().copied()),
            ) {
                (Some((hint, instead)), _) => {
                    suggested.extend(instead);
                    hint.to_string()
                }
                (None, Some(best)) => {
                    suggested.push(best);
                    format!("did you mean `{best}`?")
                }
                (None, None) => format!("expected one of: {}", fields.asked.join(", ")),
            };
            let path = fields.child(&entry.key);
            self.error(
                entry.key_span,
                &path,
                format!("unknown key {}", quoted(&entry.key)),
            )
            .hint = Some(hint);
        }
        for key in fields.missing.iter().filter(|key| !suggested.contains(key)) {
            self.error(
                fields.anchor,
                &fields.path,
                format!("missing required key `{key}`"),
            );
        }
    }

    fn optional<'n, T>(
        &mut self,
        f: &mut Fields<'n>,
        key: &'static str,
        read: ReadFn<'a, 'n, T>,
    ) -> Option<Spanned<T>> {
        let entry = f.take(key)?;
        if entry.value.is_null() {
            // `key:` with nothing after it means "not set", as in serde.
            return None;
        }
        let path = f.child(key);
        if crate::spec::secret::SECRET_KEYS.contains(&key) {
            self.sensitive.push(entry.value.span);
        }
        read(self, &entry.value, path)
    }

    fn required<'n, T>(
        &mut self,
        f: &mut Fields<'n>,
        key: &'static str,
        read: ReadFn<'a, 'n, T>,
    ) -> Required<T> {
        let value = self.optional(f, key, read);
        if value.is_none() {
            match f.entries.iter().find(|e| e.key == key) {
                // Reported by `finish`, which knows whether a misspelling explains it.
                None => f.missing.push(key),
                Some(entry) if entry.value.is_null() => {
                    self.error(
                        entry.key_span,
                        &f.child(key),
                        format!("`{key}` needs a value"),
                    );
                }
                // Present but unreadable: reported when it was read.
                Some(_) => {}
            }
        }
        Required(value)
    }

    fn list<'n, T>(
        &mut self,
        f: &mut Fields<'n>,
        key: &'static str,
        read: ReadFn<'a, 'n, T>,
    ) -> Option<Vec<Spanned<T>>> {
        let entry = f.take(key)?;
        let path = f.child(key);
        match &entry.value.value {
            Value::Seq(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| read(self, item, item_path(&path, i)))
                    .collect(),
            ),
            _ if entry.value.is_null() => None,
            _ => {
                let found = entry.value.kind_name();
                self.error(
                    entry.value.span,
                    &path,
                    format!("expected a list, found {found}"),
                )
                .hint = Some(format!(
                    "write each entry on its own line starting with `- `, e.g. `{key}:\\n  - name: ...`"
                ));
                None
            }
        }
    }

    // ---- scalars --------------------------------------------------------------------

    fn scalar<'n>(&mut self, node: &'n Node, path: &str, expected: &str) -> Option<&'n Scalar> {
        match &node.value {
            Value::Scalar(scalar) => Some(scalar),
            _ => {
                let found = node.kind_name();
                self.error(
                    node.span,
                    path,
                    format!("expected {expected}, found {found}"),
                );
                None
            }
        }
    }

    /// Text, with `${NAME}` interpolation.
    fn text(&mut self, node: &Node, path: String) -> Option<Spanned<String>> {
        let scalar = self.scalar(node, &path, "text")?;
        if scalar.kind != ScalarKind::Str {
            let found = node.kind_name();
            self.error(
                node.span,
                &path,
                format!("expected text, found {found} ({})", scalar.text),
            )
            .hint = Some(format!("quote it to make it text: \"{}\"", scalar.text));
            return None;
        }
        self.interpolated(&scalar.text, node.span, path)
    }

    /// Text that is passed on as is (Dockerfiles, commands): no interpolation.
    fn verbatim(&mut self, node: &Node, path: String) -> Option<Spanned<String>> {
        let scalar = self.scalar(node, &path, "text")?;
        if scalar.kind != ScalarKind::Str {
            let found = node.kind_name();
            self.error(node.span, &path, format!("expected text, found {found}"))
                .hint = Some(format!("quote it to make it text: \"{}\"", scalar.text));
            return None;
        }
        Some(Spanned::new(scalar.text.clone(), node.span, path))
    }

    /// Versions are text, but `version: 2` is natural to write: numbers are taken as
    /// written.
    fn version(&mut self, node: &Node, path: String) -> Option<Spanned<String>> {
        let scalar = self.scalar(node, &path, "a version")?;
        match scalar.kind {
            ScalarKind::Str => self.interpolated(&scalar.text, node.span, path),
            ScalarKind::Int(_) | ScalarKind::Float(_) => {
                Some(Spanned::new(scalar.text.clone(), node.span, path))
            }
            _ => {
                let found = node.kind_name();
                self.error(
                    node.span,
                    &path,
                    format!("expected a version such as \"1\", found {found}"),
                );
                None
            }
        }
    }

    fn interpolated(&mut self, text: &str, span: Span, path: String) -> Option<Spanned<String>> {
        match interpolate::expand(text, self.env) {
            Ok(value) if value == text => Some(Spanned::new(value, span, path)),
            Ok(value) => Some(Spanned {
                written: Some(text.to_string()),
                ..Spanned::new(value, span, path)
            }),
            Err(error) => {
                self.interpolation_error(error, span, &path);
                None
            }
        }
    }

    fn interpolation_error(&mut self, error: InterpolationError, span: Span, path: &str) {
        match error {
            InterpolationError::Missing { name } if self.allow_unset => {
                self.problems.push(Diagnostic::warning(
                    self.file,
                    Some(span),
                    path,
                    format!("environment variable `{name}` is not set: what depends on its value is not checked (--allow-unset)"),
                ));
            }
            InterpolationError::Missing { name } => {
                self.error(
                    span,
                    path,
                    format!("environment variable `{name}` is not set"),
                )
                .hint = Some(format!(
                    "set it before running amlspec, e.g. `export {name}=...`, or in your pipeline's secrets"
                ));
            }
            InterpolationError::Malformed { .. } => {
                self.error(
                    span,
                    path,
                    "`${` must be followed by a variable name and `}`, as in `${NAME}`",
                )
                .hint = Some("write `$${` for a literal `${`".into());
            }
        }
    }

    fn secret(&mut self, node: &Node, path: String) -> Option<Spanned<SecretRef>> {
        let scalar = self.scalar(node, &path, "a `${NAME}` reference")?;
        let variable = scalar
            .text
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .filter(|name| interpolate::is_variable_name(name) && scalar.kind == ScalarKind::Str);
        let Some(variable) = variable else {
            // Never echo the value: it may be the secret itself.
            self.error(node.span, &path, "a secret must be a `${NAME}` reference alone, never text in the manifest").hint = Some(
                "put it in an environment variable and write its name instead, e.g. `password: ${ACR_PASSWORD}`".into(),
            );
            return None;
        };
        match self.env.get(variable) {
            Some(value) => {
                let secret = SecretRef {
                    variable: variable.to_string(),
                    value: Secret::new(value.to_string()),
                };
                Some(Spanned::new(secret, node.span, path))
            }
            None => {
                self.interpolation_error(
                    InterpolationError::Missing {
                        name: variable.to_string(),
                    },
                    node.span,
                    &path,
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: String) -> Option<Spanned<bool>> {
        let scalar = self.scalar(node, &path, "true or false")?;
        let text = scalar.text.as_str();
        let (message, hint) = match scalar.kind {
            ScalarKind::Bool(value) => return Some(Spanned::new(value, node.span, path)),
            ScalarKind::Str if matches!(text, "true" | "false") => (
                format!("expected true or false, found the text {}", quoted(text)),
                Some(format!("remove the quotes: {text}")),
            ),
            _ if ["yes", "no", "on", "off", "y", "n"]
                .contains(&text.to_ascii_lowercase().as_str()) =>
            {
                (
                    format!("expected true or false, found {}", quoted(text)),
                    Some("YAML 1.2 reads yes/no/on/off as text; write true or false".to_string()),
                )
            }
            _ => (
                format!("expected true or false, found {}", quoted(text)),
                None,
            ),
        };
        self.error(node.span, &path, message).hint = hint;
        None
    }

    /// A whole number in `min..=max`; messages name the key (`max_nodes must be ...`).
    fn unsigned(&mut self, node: &Node, path: String, min: u32, max: u32) -> Option<Spanned<u32>> {
        let key = path.rsplit('.').next().unwrap_or(&path).to_string();
        let scalar = self.scalar(node, &path, "a whole number")?;
        let (message, hint) = match scalar.kind {
            ScalarKind::Int(n) if (i64::from(min)..=i64::from(max)).contains(&n) => {
                return Some(Spanned::new(n as u32, node.span, path));
            }
            ScalarKind::Int(n) if n < i64::from(min) => {
                (format!("{key} must be at least {min}, found {n}"), None)
            }
            ScalarKind::Int(n) => (format!("{key} must be at most {max}, found {n}"), None),
            ScalarKind::Float(_)
                if scalar.text.parse::<f64>().is_ok_and(|f| f > f64::from(max)) =>
            {
                (
                    format!("{key} must be at most {max}, found {}", scalar.text),
                    None,
                )
            }
            ScalarKind::Str if scalar.text.trim().parse::<i64>().is_ok() => (
                format!("expected a number, found the text {}", quoted(&scalar.text)),
                Some(format!("remove the quotes: {}", scalar.text.trim())),
            ),
            ScalarKind::Str
                if key.ends_with("seconds_before_scale_down")
                    && crate::duration::iso8601_seconds(&scalar.text).is_some() =>
            {
                (
                    format!(
                        "expected a number of seconds, found the duration {}",
                        quoted(&scalar.text)
                    ),
                    crate::duration::iso8601_seconds(&scalar.text)
                        .map(|s| format!("write {s} for {}", scalar.text)),
                )
            }
            _ => (
                format!(
                    "expected a whole number from {min} to {max}, found {}",
                    quoted(&scalar.text)
                ),
                None,
            ),
        };
        self.error(node.span, &path, message).hint = hint;
        None
    }

    fn count_from_0(&mut self, node: &Node, path: String) -> Option<Spanned<u32>> {
        self.unsigned(node, path, 0, MAX_NODES)
    }

    fn count_from_1(&mut self, node: &Node, path: String) -> Option<Spanned<u32>> {
        self.unsigned(node, path, 1, MAX_NODES)
    }

    fn processes(&mut self, node: &Node, path: String) -> Option<Spanned<u32>> {
        self.unsigned(node, path, 1, MAX_PROCESSES_PER_NODE)
    }

    fn seconds(&mut self, node: &Node, path: String) -> Option<Spanned<u32>> {
        self.unsigned(node, path, 0, MAX_IDLE_SECONDS)
    }

    fn keyword<T: Copy>(
        &mut self,
        node: &Node,
        path: String,
        choices: &[(&'static str, T)],
    ) -> Option<Spanned<T>> {
        let names = || choices.iter().map(|(name, _)| *name);
        let scalar = self.scalar(node, &path, "one of the listed values")?;
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == scalar.text) {
            return Some(Spanned::new(*value, node.span, path));
        }
        let listed = names().collect::<Vec<_>>().join(", ");
        let hint = match did_you_mean(&scalar.text, names()) {
            Some(best) => format!("did you mean `{best}`? (one of: {listed})"),
            None => format!("use one of: {listed}"),
        };
        self.error(
            node.span,
            &path,
            format!("unknown value {}", quoted(&scalar.text)),
        )
        .hint = Some(hint);
        None
    }

    fn vm_priority(&mut self, node: &Node, path: String) -> Option<Spanned<VmPriority>> {
        self.keyword(
            node,
            path,
            &[
                ("dedicated", VmPriority::Dedicated),
                ("low_priority", VmPriority::LowPriority),
            ],
        )
    }

    fn distribution_type(
        &mut self,
        node: &Node,
        path: String,
    ) -> Option<Spanned<DistributionType>> {
        self.keyword(
            node,
            path,
            &[
                ("pytorch", DistributionType::Pytorch),
                ("mpi", DistributionType::Mpi),
                ("tensorflow", DistributionType::Tensorflow),
            ],
        )
    }

    /// A mapping of names to text (tags, environment variables), interpolated.
    fn key_values(&mut self, node: &Node, path: String) -> Option<Spanned<KeyValues>> {
        let Value::Map(entries) = &node.value else {
            let found = node.kind_name();
            self.error(
                node.span,
                &path,
                format!("expected a mapping of names to values, found {found}"),
            )
            .hint = Some("write one `name: value` per line".into());
            return None;
        };
        let mut pairs = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry_path = child_path(&path, &entry.key);
            let value = match &entry.value.value {
                Value::Scalar(scalar) if scalar.kind == ScalarKind::Str => {
                    self.interpolated(&scalar.text, entry.value.span, entry_path.clone())
                }
                Value::Scalar(scalar) if scalar.kind == ScalarKind::Null => {
                    self.error(
                        entry.key_span,
                        &entry_path,
                        format!("{} has no value", quoted(&entry.key)),
                    )
                    .hint = Some("write `\"\"` for an empty value".into());
                    None
                }
                Value::Scalar(scalar) => Some(Spanned::new(
                    scalar.text.clone(),
                    entry.value.span,
                    entry_path.clone(),
                )),
                _ => {
                    let found = entry.value.kind_name();
                    self.error(
                        entry.value.span,
                        &entry_path,
                        format!("expected a text value, found {found}"),
                    );
                    None
                }
            };
            if let Some(value) = value {
                pairs.push((
                    Spanned::new(entry.key.clone(), entry.key_span, entry_path),
                    value,
                ));
            }
        }
        Some(Spanned::new(KeyValues(pairs), node.span, path))
    }

    fn arguments(&mut self, node: &Node, path: String) -> Option<Spanned<Arguments>> {
        let Value::Seq(items) = &node.value else {
            let found = node.kind_name();
            self.error(
                node.span,
                &path,
                format!("expected a list of arguments, found {found}"),
            )
            .hint = Some("write `arguments: [--epochs, 5]`".into());
            return None;
        };
        let mut arguments = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = item_path(&path, i);
            match &item.value {
                Value::Scalar(scalar) if scalar.kind != ScalarKind::Null => {
                    arguments.push(Spanned::new(scalar.text.clone(), item.span, item_path));
                }
                _ => {
                    let found = item.kind_name();
                    self.error(
                        item.span,
                        &item_path,
                        format!("expected an argument (text or number), found {found}"),
                    );
                }
            }
        }
        Some(Spanned::new(Arguments(arguments), node.span, path))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DistributionType {
    Pytorch,
    Mpi,
    Tensorflow,
}

/// Upper bounds shared with the schema's `range` attributes in `raw`.
pub const MAX_NODES: u32 = 10_000;
pub const MAX_PROCESSES_PER_NODE: u32 = 1024;
pub const MAX_IDLE_SECONDS: u32 = 31_536_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_keys_that_are_not_plain() {
        let table = [
            ("", "workspace", "workspace"),
            ("workspace", "name", "workspace.name"),
            ("tags", "my tag", "tags[\"my tag\"]"),
            ("tags", "a\"b\\c", "tags[\"a\\\"b\\\\c\"]"),
            ("tags", "é.x", "tags[\"é.x\"]"),
            ("tags", "a\tb\nc", "tags[\"a\\tb\\nc\"]"),
            (
                "tags",
                "x\x1b]0;t\x07\u{202e}",
                "tags[\"x\\u{1b}]0;t\\u{7}\\u{202e}\"]",
            ),
            ("", "", "[\"\"]"),
        ];
        for (parent, key, expected) in table {
            assert_eq!(child_path(parent, key), expected, "{key:?}");
        }
    }
}
