//! Problems in spec files, as text for people (with the offending line), JSON for
//! tools, or GitHub workflow commands that put each problem on its line in a pull
//! request.

use std::collections::BTreeMap;
use std::path::PathBuf;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::{escape_data, escape_property};
use crate::diagnostic::{Diagnostic, Severity};

/// Version of the JSON that `--format json` prints; bumped on incompatible changes.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// The human form: a headline `error: file:line:col: path: message`, the line with the
/// value underlined, then the hint.
pub fn human(diagnostic: &Diagnostic, sources: &BTreeMap<PathBuf, String>, styled: bool) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let headline = diagnostic.headline();
    let mut group = Group::with_title(level.primary_title(headline.as_str()));
    if let (Some(span), Some(source)) = (diagnostic.span, sources.get(&diagnostic.file)) {
        let start = span.start.min(source.len());
        // Underline the value's first line only: a whole mapping would drown the point.
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let end = span.end.clamp(start, line_end);
        if source.is_char_boundary(start) && source.is_char_boundary(end) {
            group = group.element(
                Snippet::source(source.as_str())
                    .annotation(AnnotationKind::Primary.span(start..end)),
            );
        }
    }
    if let Some(hint) = &diagnostic.hint {
        group = group.element(Level::HELP.with_name("hint").message(hint.as_str()));
    }
    let renderer = if styled {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// The closing line: what was checked and what was found.
pub fn summary(problems: &[Diagnostic], files: usize) -> String {
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    let files = super::count(files, "file", "files");
    match (errors, warnings) {
        (0, 0) => format!("{files} valid"),
        (0, w) => format!("{files} valid, {}", super::count(w, "warning", "warnings")),
        (e, 0) => format!("{files} checked: {}", super::count(e, "error", "errors")),
        (e, w) => format!(
            "{files} checked: {}, {}",
            super::count(e, "error", "errors"),
            super::count(w, "warning", "warnings")
        ),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    valid: bool,
    files: Vec<String>,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    file: String,
    line: Option<u32>,
    column: Option<u32>,
    path: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

/// `--format json`: one document, versioned, for policy tools and editors.
pub fn json(problems: &[Diagnostic], files: &[PathBuf]) -> String {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let report = JsonReport {
        format_version: JSON_FORMAT_VERSION,
        valid: errors == 0,
        files: files.iter().map(|f| f.display().to_string()).collect(),
        errors,
        warnings: problems.len() - errors,
        diagnostics: problems
            .iter()
            .map(|p| JsonDiagnostic {
                severity: p.severity,
                file: p.file.display().to_string(),
                line: p.span.map(|s| s.line),
                column: p.span.map(|s| s.column),
                path: &p.path,
                message: &p.message,
                hint: p.hint.as_deref(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("a report serializes");
    text.push('\n');
    text
}

/// `--format github`: one workflow command per problem
/// (`::error file=...,line=...,col=...,title=...::message`).
pub fn github(diagnostic: &Diagnostic) -> String {
    let command = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut properties = vec![format!(
        "file={}",
        escape_property(&diagnostic.file.display().to_string())
    )];
    if let Some(span) = diagnostic.span {
        properties.push(format!("line={}", span.line));
        properties.push(format!("col={}", span.column));
    }
    let title = if diagnostic.path.is_empty() {
        "amlspec".to_string()
    } else {
        format!("amlspec: {}", diagnostic.path)
    };
    properties.push(format!("title={}", escape_property(&title)));
    let mut message = diagnostic.message.clone();
    if let Some(hint) = &diagnostic.hint {
        message.push_str("\nhint: ");
        message.push_str(hint);
    }
    format!(
        "::{command} {}::{}",
        properties.join(","),
        escape_data(&message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Span;
    use std::path::Path;

    fn sample() -> Diagnostic {
        Diagnostic::error(
            Path::new("specs/pets.yaml"),
            Some(Span {
                line: 2,
                column: 15,
                start: 28,
                end: 37,
            }),
            "environments[0].registry",
            "unknown registry `myregistr`",
        )
        .with_hint("did you mean `myregistry`?")
    }

    #[test]
    fn human_shows_headline_line_and_hint() {
        let mut sources = BTreeMap::new();
        sources.insert(
            PathBuf::from("specs/pets.yaml"),
            "environments:\n  - registry: myregistr\n".to_string(),
        );
        let text = human(&sample(), &sources, false);
        assert_eq!(
            text,
            "error: specs/pets.yaml:2:15: environments[0].registry: unknown registry `myregistr`\n  |\n2 |   - registry: myregistr\n  |               ^^^^^^^^^\n  |\n  = hint: did you mean `myregistry`?"
        );
    }

    #[test]
    fn github_escapes_newlines_and_separators() {
        assert_eq!(
            github(&sample()),
            "::error file=specs/pets.yaml,line=2,col=15,title=amlspec%3A environments[0].registry::unknown registry `myregistr`%0Ahint: did you mean `myregistry`?"
        );
    }

    #[test]
    fn summaries() {
        assert_eq!(summary(&[], 1), "1 file valid");
        assert_eq!(
            summary(&[sample(), sample()], 3),
            "3 files checked: 2 errors"
        );
    }
}
