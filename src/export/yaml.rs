//! Writing YAML by hand, for `export`: every scalar either plain (when it cannot be read
//! as anything but that text) or double-quoted with escapes, so text from Azure (names
//! with colons or `#`, leading spaces, newlines, control and invisible characters,
//! words YAML would read as booleans or numbers) reads back exactly as it was.

use std::fmt::Write as _;

/// `text` as a YAML scalar (a value or a mapping key) that reads back as exactly `text`.
pub fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else {
        double_quoted(text)
    }
}

/// A value of a key that amlspec interpolates: `${` is written `$${`, so the text from
/// Azure is taken literally rather than as a variable reference.
pub fn literal_text(text: &str) -> String {
    scalar(&text.replace("${", "$${"))
}

/// Multi-line text (a Dockerfile) as a literal block `|` indented by `indent` spaces,
/// when it reads back unchanged that way; otherwise a double-quoted scalar.
pub fn block(text: &str, indent: usize) -> String {
    let body = text.strip_suffix('\n');
    let block_safe = body.is_some_and(|body| {
        !body.is_empty()
            && !body.ends_with('\n')
            && !body.starts_with([' ', '\t'])
            && !body.lines().any(|l| l.ends_with([' ', '\t']))
            && !body.chars().any(|c| c != '\n' && needs_quoting_char(c))
            && !body.lines().next().unwrap_or_default().trim().is_empty()
    });
    match body {
        Some(body) if block_safe => {
            let pad = " ".repeat(indent);
            let mut out = String::from("|\n");
            for line in body.split('\n') {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{pad}{line}");
                }
            }
            out.pop();
            out
        }
        _ => double_quoted(text),
    }
}

/// A comment line's text: one line, every character that could break or hide it escaped.
pub fn comment(text: &str) -> String {
    crate::diagnostic::escape(text).into_owned()
}

/// Characters a plain scalar may hold anywhere; anything else is quoted.
fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+' | '=' | ',' | ' ')
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !first.is_ascii_alphabetic() && first != '_' && first != '/' {
        // Digits, signs and dots may read as numbers; indicators change the meaning.
        return false;
    }
    if text.ends_with(' ') || text.contains("  ") || !text.chars().all(plain_char) {
        return false;
    }
    const WORDS: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "nan",
    ];
    !WORDS.iter().any(|w| text.eq_ignore_ascii_case(w)) && !text.eq_ignore_ascii_case("inf")
}

/// Characters that have no place unescaped in a YAML file: controls (but tab and
/// newline, handled by callers), and what [`crate::diagnostic::needs_escape`] hides.
fn needs_quoting_char(c: char) -> bool {
    c != '\t' && (c.is_control() || crate::diagnostic::needs_escape(c))
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_quoting_char(c) => {
                let code = u32::from(c);
                if code <= 0xFFFF {
                    let _ = write!(out, "\\u{code:04X}");
                } else {
                    let _ = write!(out, "\\U{code:08X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse `key: <value>` with the spec's YAML reader and return the text it holds.
    fn read_back(value: &str) -> String {
        let doc = format!("key: {value}\n");
        let docs = crate::spec::yaml::parse(&doc).unwrap_or_else(|e| panic!("{doc}: {e:?}"));
        let root = &docs[0];
        let crate::spec::yaml::Value::Map(entries) = &root.value else {
            panic!("not a map: {doc}");
        };
        let crate::spec::yaml::Value::Scalar(scalar) = &entries[0].value.value else {
            panic!("not a scalar: {doc}");
        };
        assert_eq!(
            scalar.kind,
            crate::spec::yaml::ScalarKind::Str,
            "{doc} reads as text"
        );
        scalar.text.clone()
    }

    #[test]
    fn every_text_reads_back_as_itself() {
        let table = [
            "plain-name",
            "myregistry.azurecr.io",
            "a: b",
            "x #not a comment",
            "#comment",
            " leading space",
            "trailing space ",
            "two  spaces",
            "true",
            "No",
            "null",
            "~",
            "1",
            "0x1F",
            "1e3",
            ".inf",
            "-",
            "- item",
            "[list]",
            "{map}",
            "*alias",
            "&anchor",
            "!tag",
            "%directive",
            "@at",
            "`tick`",
            "'single'",
            "\"double\"",
            "back\\slash",
            "line\nbreak",
            "carriage\rreturn",
            "tab\there",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "bidi\u{202e}txet",
            "zero\u{200b}width",
            "sep\u{2028}arator",
            "next\u{85}line",
            "ünïcödé 日本語 🚀",
            "",
            "---",
            "...",
            "${NOT_A_VAR}",
            "key: value # comment",
            "Python 3.10",
        ];
        for text in table {
            assert_eq!(
                read_back(&scalar(text)),
                text,
                "{text:?} as {}",
                scalar(text)
            );
        }
    }

    #[test]
    fn interpolated_values_keep_dollar_braces_literal() {
        let env = crate::spec::interpolate::EnvVars::default();
        for text in [
            "${HOME}",
            "$${x}",
            "cost $5",
            "${{inputs.lr}}",
            "end$",
            "a${b}c${d}",
        ] {
            let written = read_back(&literal_text(text));
            assert_eq!(
                crate::spec::interpolate::expand(&written, &env).as_deref(),
                Ok(text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn dockerfiles_are_literal_blocks_when_that_reads_back() {
        let dockerfile = "FROM ubuntu:22.04\n\nRUN echo \"# not a comment: ok\"\n";
        let written = block(dockerfile, 6);
        assert!(written.starts_with("|\n      FROM"), "{written}");
        assert_eq!(read_back(&written), dockerfile);
        for odd in [
            "FROM x",
            "FROM x\n\n",
            "  FROM x\n",
            "FROM x \n",
            "FROM x\u{1b}\n",
            "\n",
        ] {
            assert_eq!(read_back(&block(odd, 6)), odd, "{odd:?}");
        }
    }
}
