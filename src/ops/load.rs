//! Loading specs for a command: the spec stage's load, and from then on every output of
//! the process masks the secrets they reference.

use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Span};
use crate::render::redact::{self, Redactor, SHORT_SECRET};
use crate::spec::interpolate::EnvVars;
use crate::spec::{self, LoadOptions, Loaded, secret};

/// Load the specs, and from then on mask the values of the variables their secret keys
/// reference (and the service principal's secret) in everything printed, logged or
/// written; a secret short enough to turn up by chance is warned about.
pub fn load(paths: &[PathBuf], env: &EnvVars, options: LoadOptions) -> Loaded {
    redact::hold_log();
    let mut loaded = spec::load_with(paths, env, options);
    let values = secret_values(&loaded, env);
    let warnings = short_secret_warnings(&loaded, env);
    tracing::debug!(values = values.len(), "masking secret values");
    redact::install(Redactor::new(values));
    loaded.problems.extend(warnings);
    loaded
        .problems
        .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    loaded.problems.dedup();
    loaded
}

/// A warning at each `${NAME}` a secret key takes whose value is shorter than
/// [`SHORT_SECRET`] characters: masking it everywhere could hide unrelated text.
fn short_secret_warnings(loaded: &Loaded, env: &EnvVars) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (file, text) in &loaded.sources {
        for reference in secret::secret_references(text.text()) {
            let Some(value) = env.get(&reference.name) else {
                continue;
            };
            if value.chars().count() < SHORT_SECRET {
                warnings.push(
                    Diagnostic::warning(
                        file,
                        Some(span_of(text.text(), reference.start, reference.end)),
                        "",
                        format!(
                            "`${{{}}}` holds a secret shorter than {SHORT_SECRET} characters: output masks it wherever it appears, which can hide unrelated text",
                            reference.name
                        ),
                    )
                    .with_hint("use the full generated secret (an Azure Container Registry's passwords are 32 or more characters)"),
                );
            }
        }
    }
    warnings
}

/// The values every output masks once `loaded` is read: those of the variables its
/// secret keys reference, of every variable it uses whose name looks like a secret's
/// (`${ACR_PASSWORD}` interpolated into an address is still a password), the service
/// principal's secret, and the token that asks GitHub for an ID token.
pub fn secret_values(loaded: &Loaded, env: &EnvVars) -> Vec<String> {
    let mut values = Vec::new();
    for text in loaded.sources.values() {
        for reference in secret::secret_references(text.text()) {
            values.extend(env.get(&reference.name).map(str::to_string));
        }
        for line in text.text().lines() {
            let Ok(names) = crate::spec::interpolate::references(line) else {
                continue;
            };
            for name in names.into_iter().filter(|name| secret::looks_secret(name)) {
                values.extend(env.get(name).map(str::to_string));
            }
        }
    }
    for name in ["AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"] {
        values.extend(env.get(name).filter(|v| !v.is_empty()).map(str::to_string));
    }
    values
}

/// The span of `text[start..end]`, with its 1-based line and column (in characters).
fn span_of(text: &str, start: usize, end: usize) -> Span {
    let before = &text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Span {
        line: u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX),
        column: u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX),
        start,
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specs of `text`, loaded with `env` (problems or not).
    fn loaded(text: &str, env: &EnvVars) -> (tempfile::TempDir, Loaded) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        std::fs::write(&path, text).unwrap();
        let loaded = spec::load(&[path], env);
        (dir, loaded)
    }

    /// A secret of fewer than [`SHORT_SECRET`] characters (counted as characters, not
    /// bytes) is warned about where a secret key takes it; one of exactly that many is not.
    #[test]
    fn a_short_secret_is_warned_about_where_it_is_referenced() {
        let text = "workspace:\n  name: ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nregistries:\n  - {name: r, address: é.azurecr.io, username: u, password: ${P}}\n  - name: s\n    address: s.azurecr.io\n    username: u\n    password: ${Q}\n";
        let env = |p: &str, q: &str| -> EnvVars { [("P", p), ("Q", q)].into_iter().collect() };
        let short = "é".repeat(SHORT_SECRET - 1);
        let long = "é".repeat(SHORT_SECRET);
        let (_dir, both) = loaded(text, &env(&short, &short));
        let warnings = short_secret_warnings(&both, &env(&short, &short));
        let found: Vec<(&str, u32, u32)> = warnings
            .iter()
            .map(|w| {
                let span = w.span.as_ref().expect("a place");
                assert_eq!(w.severity, crate::diagnostic::Severity::Warning);
                (&text[span.start..span.end], span.line, span.column)
            })
            .collect();
        // Columns count characters: `é` is two bytes and one column.
        assert_eq!(found, [("${P}", 6, 61), ("${Q}", 10, 15)]);
        assert_eq!(
            warnings[0].message,
            "`${P}` holds a secret shorter than 8 characters: output masks it wherever it appears, which can hide unrelated text"
        );
        let (_dir, neither) = loaded(text, &env(&long, &long));
        assert!(short_secret_warnings(&neither, &env(&long, &long)).is_empty());
        // Unset: nothing to warn about.
        assert!(short_secret_warnings(&neither, &EnvVars::default()).is_empty());
    }

    /// The sign-in's secrets are masked too, unless empty.
    #[test]
    fn the_sign_in_secrets_are_masked_unless_empty() {
        let text = "workspace:\n  name: ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n";
        let env: EnvVars = [
            ("AZURE_CLIENT_SECRET", "client-secret-value"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-value"),
        ]
        .into_iter()
        .collect();
        let (_dir, loaded) = loaded(text, &env);
        assert_eq!(
            secret_values(&loaded, &env),
            ["client-secret-value", "request-token-value"]
        );
        let empty: EnvVars = [("AZURE_CLIENT_SECRET", "")].into_iter().collect();
        assert!(secret_values(&loaded, &empty).is_empty());
    }

    /// A variable whose name looks like a secret's is masked even where no secret key
    /// takes it (a fuzzing find: `address: x-${ACR_PASSWORD}` echoed the password in its
    /// error); one that does not look secret is not.
    #[test]
    fn variables_named_like_secrets_are_masked_wherever_they_are_used() {
        let text = "workspace:\n  name: ws\n  subscription_id: ${AZURE_SUBSCRIPTION_ID}\n  resource_group: rg\nregistries:\n  - name: r\n    address: x  -${ACR_PASSWORD}\n";
        let env: EnvVars = [
            (
                "AZURE_SUBSCRIPTION_ID",
                "00000000-0000-0000-0000-000000000001",
            ),
            ("ACR_PASSWORD", "planted-password-value"),
        ]
        .into_iter()
        .collect();
        let (_dir, loaded) = loaded(text, &env);
        let values = secret_values(&loaded, &env);
        assert_eq!(values, ["planted-password-value"]);
        let redactor = Redactor::new(values);
        let shown: Vec<String> = loaded
            .problems
            .iter()
            .map(|p| redactor.redact(&p.message).into_owned())
            .collect();
        assert!(
            shown
                .iter()
                .any(|m| m.contains("is not a registry host name")),
            "{shown:?}"
        );
        assert!(
            !shown.iter().any(|m| m.contains("planted-password-value")),
            "{shown:?}"
        );
    }
}
