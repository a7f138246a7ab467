//! Problems in spec files, as text for people (with the offending line), JSON for
//! tools, or GitHub workflow commands that put each problem on its line in a pull
//! request.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::{escape_data, escape_property};
use crate::diagnostic::{Diagnostic, Severity, SourceText, Span, escape, push_escaped};

/// Version of the JSON that `--format json` prints; bumped on incompatible changes.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Bytes of the problem's line shown on each side of the underlined value, and the most
/// bytes underlined. The renderer trims lines to the terminal's width anyway; the cut
/// keeps each problem's cost independent of the line's length (a 4 MiB one-line file
/// with thousands of problems).
const CONTEXT_BYTES: usize = 512;
const MAX_UNDERLINE_BYTES: usize = 512;

/// The human form: a headline `error: file:line:col: path: message`, the line with the
/// value underlined, then the hint. Everything from the spec is escaped (see
/// [`escape`]); the renderer sees only the problem's line, never the whole file.
pub fn human(
    diagnostic: &Diagnostic,
    sources: &BTreeMap<PathBuf, SourceText>,
    styled: bool,
) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let headline = diagnostic.headline();
    let mut group = Group::with_title(level.primary_title(escape(&headline)));
    let excerpt = diagnostic
        .span
        .zip(sources.get(&diagnostic.file))
        .and_then(|(span, source)| Excerpt::cut(source, span));
    if let Some(excerpt) = &excerpt {
        group = group.element(
            Snippet::source(excerpt.text.as_str())
                .line_start(excerpt.line)
                .annotation(AnnotationKind::Primary.span(excerpt.underline.clone())),
        );
    }
    if let Some(hint) = &diagnostic.hint {
        group = group.element(Level::HELP.with_name("hint").message(escape(hint)));
    }
    let renderer = if styled {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// The part of one line that a snippet shows, escaped, and the underlined range in it.
struct Excerpt {
    /// 1-based line number.
    line: usize,
    text: String,
    underline: Range<usize>,
}

impl Excerpt {
    fn cut(source: &SourceText, span: Span) -> Option<Excerpt> {
        let text = source.text();
        let start = span.start.min(text.len());
        if !text.is_char_boundary(start) {
            return None;
        }
        // The end of a file that ends its last line: shown at the end of that line, as
        // there is no line after it to show.
        let (line, content) = if start == text.len() && text.ends_with('\n') {
            source.line_at(start - 1)
        } else {
            source.line_at(start)
        };
        // Underline the value's first line only: a whole mapping would drown the point.
        let start = start.min(content.end);
        let end = span.end.clamp(start, content.end);
        if !text.is_char_boundary(end) {
            return None;
        }
        let end = floor_boundary(text, end.min(start + MAX_UNDERLINE_BYTES));
        let from = floor_boundary(text, start.saturating_sub(CONTEXT_BYTES).max(content.start));
        let to = ceil_boundary(text, (end + CONTEXT_BYTES).min(content.end));
        let mut shown = String::with_capacity(to - from);
        let (mut underline_start, mut underline_end) = (None, None);
        for (i, c) in text[from..to].char_indices() {
            if from + i == start {
                underline_start = Some(shown.len());
            }
            if from + i == end {
                underline_end = Some(shown.len());
            }
            push_escaped(&mut shown, c);
        }
        let underline_start = underline_start.unwrap_or(shown.len());
        let underline_end = underline_end.unwrap_or(shown.len());
        Some(Excerpt {
            line,
            text: shown,
            underline: underline_start..underline_end,
        })
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
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
    path: Cow<'a, str>,
    message: Cow<'a, str>,
    hint: Option<Cow<'a, str>>,
}

/// `--format json`: one document, versioned, for policy tools and editors. Text from
/// the spec is escaped as in the other formats: a tool that prints a message must not
/// pass a control character on to its terminal.
pub fn json(problems: &[Diagnostic], files: &[PathBuf]) -> String {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let shown = |path: &PathBuf| escape(&path.display().to_string()).into_owned();
    let report = JsonReport {
        format_version: JSON_FORMAT_VERSION,
        valid: errors == 0,
        files: files.iter().map(shown).collect(),
        errors,
        warnings: problems.len() - errors,
        diagnostics: problems
            .iter()
            .map(|p| JsonDiagnostic {
                severity: p.severity,
                file: shown(&p.file),
                line: p.span.map(|s| s.line),
                column: p.span.map(|s| s.column),
                path: escape(&p.path),
                message: escape(&p.message),
                hint: p.hint.as_deref().map(escape),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("a report serializes");
    text.push('\n');
    text
}

/// `--format github`: one workflow command per problem
/// (`::error file=...,line=...,col=...,title=...::message`). Text from the spec is
/// escaped first (see [`escape`]), then GitHub's own specials: `%`, CR and LF in the
/// message, and also `:` and `,` in properties.
pub fn github(diagnostic: &Diagnostic, paths: &super::GithubPaths) -> String {
    let command = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let property = |text: &str| escape_property(&escape(text));
    let mut properties = vec![format!(
        "file={}",
        property(&paths.file(&diagnostic.file.display().to_string()))
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
    properties.push(format!("title={}", property(&title)));
    let mut message = escape(&diagnostic.message).into_owned();
    if let Some(hint) = &diagnostic.hint {
        message.push_str("\nhint: ");
        message.push_str(&escape(hint));
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
            SourceText::new("environments:\n  - registry: myregistr\n".to_string()),
        );
        let text = human(&sample(), &sources, false);
        assert_eq!(
            text,
            "error: specs/pets.yaml:2:15: environments[0].registry: unknown registry `myregistr`\n  |\n2 |   - registry: myregistr\n  |               ^^^^^^^^^\n  |\n  = hint: did you mean `myregistry`?"
        );
    }

    fn excerpt(text: &str, start: usize, end: usize) -> Excerpt {
        let source = SourceText::new(text.to_string());
        let span = Span {
            line: 0,
            column: 0,
            start,
            end,
        };
        Excerpt::cut(&source, span).expect("an excerpt")
    }

    #[test]
    fn excerpts_hold_one_line_and_underline_the_value() {
        let text = "a: 1\r\nkey: value\r\nlast: x";
        let cut = excerpt(text, 11, 16);
        assert_eq!((cut.line, cut.text.as_str()), (2, "key: value"));
        assert_eq!(&cut.text[cut.underline.clone()], "value");
        // A value spanning lines is underlined on its first line only.
        let cut = excerpt(text, 6, text.len());
        assert_eq!(&cut.text[cut.underline.clone()], "key: value");
        // At the very end of the file: an empty underline after the last character,
        // also when the last line ends with a line break.
        let cut = excerpt(text, text.len(), text.len());
        assert_eq!((cut.line, cut.underline.clone()), (3, 7..7));
        let text = "a: 1\nb: [2\n";
        let cut = excerpt(text, text.len(), text.len());
        assert_eq!(
            (cut.line, cut.text.as_str(), cut.underline),
            (2, "b: [2", 5..5)
        );
    }

    #[test]
    fn excerpts_escape_controls_and_keep_the_underline_on_the_value() {
        let text = "k: \x1b]0;t\x07 \u{202e}val\u{202e}ue\0 # c";
        let start = text.find('\u{202e}').unwrap();
        let end = text.find(" #").unwrap();
        let cut = excerpt(text, start, end);
        assert_eq!(
            cut.text,
            "k: \\u{1b}]0;t\\u{7} \\u{202e}val\\u{202e}ue\\u{0} # c"
        );
        assert_eq!(
            &cut.text[cut.underline.clone()],
            "\\u{202e}val\\u{202e}ue\\u{0}"
        );
    }

    #[test]
    fn excerpts_of_long_lines_are_cut_around_the_value() {
        // One 4 MiB line: each problem's excerpt is a bounded window, not the line.
        let mut text = "x".repeat(2 * 1024 * 1024);
        let start = text.len();
        text.push_str("é-value");
        text.push_str(&"y".repeat(2 * 1024 * 1024));
        let cut = excerpt(&text, start, start + "é-value".len());
        assert!(
            cut.text.len() <= 2 * CONTEXT_BYTES + "é-value".len(),
            "{}",
            cut.text.len()
        );
        assert_eq!(&cut.text[cut.underline.clone()], "é-value");
        // A huge value is underlined in part.
        let cut = excerpt(&text, 0, text.len());
        assert_eq!(cut.underline, 0..MAX_UNDERLINE_BYTES);
        assert_eq!(cut.text.len(), MAX_UNDERLINE_BYTES + CONTEXT_BYTES);
        // Cuts fall on character boundaries.
        let text = "€".repeat(1000);
        let cut = excerpt(&text, 600, 603);
        assert_eq!(&cut.text[cut.underline.clone()], "€");
        assert_eq!(cut.text.len(), 1116 - 87);
    }

    #[test]
    fn human_escapes_headline_hint_and_line() {
        let mut problem = sample();
        problem.message = "unknown registry `my\x1b]0;x\x07regist\u{202e}r`".into();
        problem.hint = Some("did you mean `a\rb`?".into());
        let mut sources = BTreeMap::new();
        sources.insert(
            PathBuf::from("specs/pets.yaml"),
            SourceText::new("environments:\n  - registry: \x08yregistr\n".to_string()),
        );
        let text = human(&problem, &sources, false);
        assert_eq!(
            text,
            "error: specs/pets.yaml:2:15: environments[0].registry: unknown registry `my\\u{1b}]0;x\\u{7}regist\\u{202e}r`\n  |\n2 |   - registry: \\u{8}yregistr\n  |               ^^^^^^^^^^^^^\n  |\n  = hint: did you mean `a\\rb`?"
        );
    }

    #[test]
    fn json_and_github_escape_spec_text() {
        let mut problem = sample();
        problem.path = "tags[\"\u{202e}x\"]".into();
        problem.message = "bad \x1b[2J\x7f".into();
        problem.hint = Some("\0".into());
        let json = json(
            std::slice::from_ref(&problem),
            &[PathBuf::from("a\x08.yaml")],
        );
        assert!(
            !json.contains('\u{202e}') && !json.contains('\x7f'),
            "{json}"
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["files"][0], "a\\u{8}.yaml");
        assert_eq!(report["diagnostics"][0]["path"], "tags[\"\\u{202e}x\"]");
        assert_eq!(report["diagnostics"][0]["message"], "bad \\u{1b}[2J\\u{7f}");
        assert_eq!(report["diagnostics"][0]["hint"], "\\u{0}");
        assert_eq!(
            github(&problem, &crate::render::GithubPaths::default()),
            "::error file=specs/pets.yaml,line=2,col=15,title=amlspec%3A tags[\"\\u{202e}x\"]::bad \\u{1b}[2J\\u{7f}%0Ahint: \\u{0}"
        );
    }

    #[test]
    fn github_escapes_newlines_and_separators() {
        assert_eq!(
            github(&sample(), &crate::render::GithubPaths::default()),
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
