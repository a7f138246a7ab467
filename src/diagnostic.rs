//! Diagnostics: a problem found in a spec file, with where it is and how to fix it.
//!
//! Produced by `spec` (and later stages that point back into spec files), printed only
//! by `render`. Positions are 1-based lines and columns (columns count characters).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where a value sits in its file: 1-based line and column, plus the byte range that
/// the snippet renderer underlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem. `path` is the key path inside the document (`environments[1].image`),
/// empty for problems with the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub span: Option<Span>,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &Path, span: Option<Span>, path: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            span,
            path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(
        file: &Path,
        span: Option<Span>,
        path: &str,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, span, path, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:column` (or just `file` when the problem has no position).
    pub fn location(&self) -> String {
        match self.span {
            Some(span) => format!("{}:{}:{}", self.file.display(), span.line, span.column),
            None => self.file.display().to_string(),
        }
    }

    /// The one-line form: `<location>: <key path>: <message>`.
    pub fn headline(&self) -> String {
        if self.path.is_empty() {
            format!("{}: {}", self.location(), self.message)
        } else {
            format!("{}: {}: {}", self.location(), self.path, self.message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Order for output: by file, then position, so reports read top to bottom.
    pub fn sort_key(&self) -> (&Path, u32, u32, &str, &str) {
        let (line, column) = self.span.map_or((0, 0), |s| (s.line, s.column));
        (&self.file, line, column, &self.path, &self.message)
    }
}

/// Quote a user value for a message, cut short so a huge scalar cannot flood the output.
pub fn quoted(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut out = String::from("`");
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_CHARS) {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('`');
    out
}

/// The closest candidate to `given` for a "did you mean" hint, if any is close enough.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let score = strsim::jaro_winkler(&given_lower, &candidate.to_ascii_lowercase());
            (score, candidate)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cuts_long_values_and_escapes_newlines() {
        assert_eq!(quoted("a\nb"), "`a\\nb`");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("`{}…`", "x".repeat(60)));
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let keys = ["name", "vm_size", "vm_priority", "min_nodes", "max_nodes"];
        assert_eq!(did_you_mean("vmsize", keys), Some("vm_size"));
        assert_eq!(did_you_mean("max_node", keys), Some("max_nodes"));
        assert_eq!(did_you_mean("Name", keys), Some("name"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }
}
