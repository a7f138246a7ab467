//! Diagnostics: a problem found in a spec file, with where it is and how to fix it.
//!
//! Produced by `spec` (and later stages that point back into spec files), printed only
//! by `render`. Positions are 1-based lines and columns (columns count characters).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::ops::Range;
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

/// A spec file's text as snippets show it (secret values masked), with the start of
/// each line found once, so that each problem finds its line by binary search instead
/// of scanning the file: showing n problems costs O(n log lines), not O(n x file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    text: String,
    /// Byte offset of the start of every line; the first is 0.
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText { text, line_starts }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line holding byte `offset` (clamped to the text): its 1-based number and the
    /// byte range of its content, without the line break (`\n` or `\r\n`).
    pub fn line_at(&self, offset: usize) -> (usize, Range<usize>) {
        let offset = offset.min(self.text.len());
        let index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[index];
        let end = match self.line_starts.get(index + 1) {
            Some(next) => {
                let newline = next - 1;
                if newline > start && self.text.as_bytes()[newline - 1] == b'\r' {
                    newline - 1
                } else {
                    newline
                }
            }
            None => self.text.len(),
        };
        (index + 1, start..end)
    }
}

/// Quote a user value for a message, cut short so a huge scalar cannot flood the output,
/// with newlines, tabs and control characters escaped (see [`escape`]).
pub fn quoted(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut out = String::from("`");
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_CHARS) {
        match c {
            '\t' => out.push_str("\\t"),
            c => push_escaped(&mut out, c),
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('`');
    out
}

/// Text from a spec file (a value, a key, a file name) made safe to print: every
/// character that could steer a terminal or hide what is written becomes a visible
/// escape: `\n`, `\r`, and `\u{1b}` style for the rest (C0 and C1 controls, DEL, bidi
/// embeddings, overrides and isolates, zero-width characters, line and paragraph
/// separators, byte order marks, tag characters).
///
/// A spec from a pull request is untrusted input. Printed raw, an ESC sequence can
/// retitle the terminal or rewrite earlier lines, CR and BS can overwrite what was
/// printed, and a bidi override (U+202E) makes text read differently from its bytes.
/// Every renderer passes such text through here: validate's human, JSON and GitHub
/// output, the lines shown in snippets, and the plan renderer.
///
/// Tabs stay: they cannot hide or rewrite text, and the snippet renderer expands them.
/// Backslashes stay too: escaping them would double every backslash of a Windows path,
/// and a backslash cannot forge anything. So the result holds no character that
/// [`needs_escape`] accepts, and escaping twice changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Whether [`escape`] replaces `c`.
pub fn needs_escape(c: char) -> bool {
    match c {
        '\t' => false,
        c if c.is_control() => true,
        // Arabic letter mark, Mongolian vowel separator, zero-width space, non-joiner
        // and joiner, left-to-right and right-to-left marks.
        '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' => true,
        // Line and paragraph separators, bidi embeddings and overrides (U+202A..E).
        '\u{2028}'..='\u{202e}' => true,
        // Word joiner, invisible operators, bidi isolates, deprecated format controls.
        '\u{2060}'..='\u{206f}' => true,
        // Byte order mark (zero-width no-break space), interlinear annotations.
        '\u{feff}' | '\u{fff9}'..='\u{fffb}' => true,
        // Tag characters: invisible, used to smuggle text past a reader.
        '\u{e0000}'..='\u{e007f}' => true,
        _ => false,
    }
}

/// Append `c` to `out`, escaped as [`escape`] does.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        c if !needs_escape(c) => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
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
        assert_eq!(quoted("a\tb"), "`a\\tb`");
        assert_eq!(
            quoted("\x1b]0;x\x07\u{202e}"),
            "`\\u{1b}]0;x\\u{7}\\u{202e}`"
        );
        let long = "x".repeat(100);
        assert_eq!(quoted(&long), format!("`{}…`", "x".repeat(60)));
    }

    #[test]
    fn escape_makes_controls_and_invisible_characters_visible() {
        let table = [
            ("plain text: ok, 100%", "plain text: ok, 100%"),
            ("tab\there", "tab\there"),
            ("a\nb\rc", "a\\nb\\rc"),
            ("\x1b]0;owned\x07", "\\u{1b}]0;owned\\u{7}"),
            ("nul\0bs\x08del\x7f", "nul\\u{0}bs\\u{8}del\\u{7f}"),
            ("csi\u{9b}31m", "csi\\u{9b}31m"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("\u{2066}iso\u{2069}", "\\u{2066}iso\\u{2069}"),
            ("zero\u{200b}width\u{200d}", "zero\\u{200b}width\\u{200d}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("\u{feff}bom", "\\u{feff}bom"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("C:\\specs\\pets.yaml", "C:\\specs\\pets.yaml"),
            ("ünïcödé ✓ 名前", "ünïcödé ✓ 名前"),
        ];
        for (input, expected) in table {
            assert_eq!(escape(input), expected, "{input:?}");
        }
        assert!(matches!(escape("nothing to do"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape("a\x1b[2Jb\u{202e}c\r\n").into_owned();
        assert_eq!(escape(&once), once);
        assert!(!once.chars().any(needs_escape));
    }

    #[test]
    fn source_lines_are_found_by_offset() {
        let source = SourceText::new("ab\r\ncd\n\nlast".to_string());
        let table = [
            (0, (1, 0..2)),
            (2, (1, 0..2)),
            (3, (1, 0..2)),
            (4, (2, 4..6)),
            (6, (2, 4..6)),
            (7, (3, 7..7)),
            (8, (4, 8..12)),
            (12, (4, 8..12)),
            (99, (4, 8..12)),
        ];
        for (offset, expected) in table {
            assert_eq!(source.line_at(offset), expected, "offset {offset}");
        }
        let ends_with_newline = SourceText::new("a\n".to_string());
        assert_eq!(ends_with_newline.line_at(2), (2, 2..2));
        assert_eq!(SourceText::new(String::new()).line_at(0), (1, 0..0));
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
