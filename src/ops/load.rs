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
    let mut values = Vec::new();
    let mut warnings = Vec::new();
    for (file, text) in &loaded.sources {
        for reference in secret::secret_references(text.text()) {
            let Some(value) = env.get(&reference.name) else {
                continue;
            };
            values.push(value.to_string());
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
    // The service principal's secret, and the token that asks GitHub for an ID token.
    for name in ["AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"] {
        values.extend(env.get(name).filter(|v| !v.is_empty()).map(str::to_string));
    }
    tracing::debug!(values = values.len(), "masking secret values");
    redact::install(Redactor::new(values));
    if !warnings.is_empty() {
        loaded.problems.extend(warnings);
        loaded
            .problems
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        loaded.problems.dedup();
    }
    loaded
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
