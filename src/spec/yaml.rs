//! Loader: the bytes of one file -> YAML documents as `Node` trees that know their
//! positions. The only module that touches the YAML parser (saphyr-parser).
//!
//! It resolves plain scalars with the YAML 1.2 core schema (so `yes` is text and
//! `true` is a boolean), expands aliases and `<<` merge keys, and refuses hostile input
//! with one clean problem instead of a panic, a hang or a memory blow-up: bytes that are
//! not UTF-8, oversize files, nesting deeper than [`MAX_DEPTH`], alias bombs (more than
//! [`MAX_NODES`] nodes after expansion), custom tags and duplicate keys.

use std::cell::Cell;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

use crate::diagnostic::Span;

/// Larger files are refused before parsing: no real manifest comes close.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted (a manifest needs about 6).
pub const MAX_DEPTH: usize = 64;
/// Most nodes a file may hold once aliases are expanded.
pub const MAX_NODES: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A scalar keeps the text as written (so `version: 1.10` stays "1.10") and what the
/// YAML core schema makes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    /// What a message calls this node's type: "a mapping", "a string", ...
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => "nothing",
                ScalarKind::Bool(_) => "a boolean",
                ScalarKind::Int(_) => "an integer",
                ScalarKind::Float(_) => "a number",
                ScalarKind::Str => "a string",
            },
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(
            &self.value,
            Value::Scalar(Scalar {
                kind: ScalarKind::Null,
                ..
            })
        )
    }
}

/// A problem that stops loading a file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub span: Option<Span>,
    pub message: String,
    pub hint: Option<String>,
}

impl LoadError {
    fn at(span: Span, message: impl Into<String>) -> Self {
        LoadError {
            span: Some(span),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The problem with a file larger than [`MAX_FILE_BYTES`]; `size` when it is known.
pub fn too_large(size: Option<u64>) -> LoadError {
    let limit = MAX_FILE_BYTES / (1024 * 1024);
    LoadError {
        span: None,
        message: match size {
            Some(size) => {
                format!("the file is {size} bytes, more than the {limit} MiB a spec may have")
            }
            None => format!("the file is more than the {limit} MiB a spec may have"),
        },
        hint: Some("is this the right file? a manifest is a few kilobytes".into()),
    }
}

/// Decode a file's bytes, refusing what is not UTF-8 text of a sane size.
pub fn decode(bytes: &[u8]) -> Result<&str, LoadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(Some(bytes.len() as u64)));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(LoadError {
            span: None,
            message: "the file is UTF-16 text; specs must be UTF-8".into(),
            hint: Some("save the file as UTF-8 (for example `iconv -f UTF-16 -t UTF-8`)".into()),
        });
    }
    std::str::from_utf8(bytes).map_err(|error| {
        let at = error.valid_up_to();
        let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        LoadError {
            span: Some(Span {
                line: line as u32,
                column: column as u32,
                start: at,
                end: at + 1,
            }),
            message: format!("the file is not valid UTF-8 (byte 0x{:02x})", bytes[at]),
            hint: Some("save the file as UTF-8".into()),
        }
    })
}

/// Parse every document in `text`. An empty stream yields no documents.
pub fn parse(text: &str) -> Result<Vec<Node>, LoadError> {
    let lines = LineIndex::new(text);
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut documents = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| scan_error(&lines, &e))?;
        let span = lines.span(span.start, span.end);
        if let Some(document) = builder.event(event, span)? {
            documents.push(document);
        }
    }
    Ok(documents)
}

fn scan_error(lines: &LineIndex, error: &ScanError) -> LoadError {
    let at = lines.span(*error.marker(), *error.marker());
    let info = error.info();
    let mut problem = LoadError::at(at, format!("invalid YAML: {info}"));
    if info.contains("tab") {
        problem = problem.hint("indent with spaces; YAML does not allow tabs for indentation");
    } else if info.contains("mapping values are not allowed") {
        problem = problem.hint(
            "a `key: value` needs to be on its own line, or quote a value that contains `: `",
        );
    } else if info.contains("recursion limit") {
        problem.message = "invalid YAML: nesting is too deep".into();
    }
    problem
}

/// Byte offsets of line starts, to turn the parser's (line, character column) marks
/// into byte ranges. The parser's marks move forward through the text, so the last
/// position found is kept and the next one is counted from there: on a 4 MiB line the
/// columns cost one pass, not one pass per mark.
struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
    /// The last mark found: 0-based line, character column, byte offset.
    cursor: Cell<(usize, usize, usize)>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            text,
            starts,
            cursor: Cell::new((0, 0, 0)),
        }
    }

    fn offset(&self, mark: Marker) -> usize {
        let line = mark.line().max(1) - 1;
        let Some(&start) = self.starts.get(line) else {
            return self.text.len();
        };
        let target = mark.col();
        let (cursor_line, cursor_col, cursor_byte) = self.cursor.get();
        let (mut col, mut byte) = (0, start);
        if cursor_line == line {
            if cursor_col <= target {
                (col, byte) = (cursor_col, cursor_byte);
            } else if cursor_col - target < target {
                // Closer to the last mark than to the line's start: step back.
                (col, byte) = (cursor_col, cursor_byte);
                for c in self.text[start..byte].chars().rev() {
                    if col == target {
                        break;
                    }
                    byte -= c.len_utf8();
                    col -= 1;
                }
            }
        }
        let mut rest = self.text[byte..].chars();
        while col < target {
            let Some(c) = rest.next() else {
                return self.text.len();
            };
            byte += c.len_utf8();
            col += 1;
        }
        self.cursor.set((line, col, byte));
        byte
    }

    fn span(&self, start: Marker, end: Marker) -> Span {
        let from = self.offset(start);
        let to = self.offset(end).max(from);
        Span {
            line: start.line().max(1) as u32,
            column: start.col() as u32 + 1,
            start: from,
            end: to,
        }
    }
}

enum Open {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

struct Builder {
    stack: Vec<Open>,
    /// Anchored nodes and how many nodes each holds, to count alias expansion.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

impl Builder {
    /// Feed one parser event; returns a document when one is complete.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<Node>, LoadError> {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => Ok(None),
            Event::DocumentStart(_) => {
                self.anchors.clear();
                Ok(None)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let scalar = resolve(&text, style, tag.as_deref(), span)?;
                let node = Node {
                    span,
                    value: Value::Scalar(scalar),
                };
                self.count(1, span)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.push(node)
            }
            Event::Alias(anchor) => {
                let Some((node, size)) = self.anchors.get(&anchor).cloned() else {
                    return Err(LoadError::at(span, "alias refers to an unknown anchor"));
                };
                self.count(size, span)?;
                // The copy keeps the anchor's positions: problems inside it point at
                // the text that defines them.
                self.push(node)
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", span)?;
                self.open(
                    Open::Seq {
                        span,
                        anchor,
                        items: Vec::new(),
                    },
                    span,
                )
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", span)?;
                self.open(
                    Open::Map {
                        span,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                    },
                    span,
                )
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = self
                    .stack
                    .pop()
                    .expect("the parser balances start and end events");
                let (node, anchor) = match open {
                    Open::Seq {
                        span,
                        anchor,
                        items,
                    } => (
                        Node {
                            span,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Open::Map {
                        span,
                        anchor,
                        entries,
                        ..
                    } => (map_node(span, entries)?, anchor),
                };
                if anchor != 0 {
                    let size = count_nodes(&node);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node)
            }
        }
    }

    fn open(&mut self, open: Open, span: Span) -> Result<Option<Node>, LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(
                LoadError::at(span, format!("nesting is deeper than {MAX_DEPTH} levels"))
                    .hint("a manifest needs only a few levels; is this file generated by mistake?"),
            );
        }
        self.count(1, span)?;
        self.stack.push(open);
        Ok(None)
    }

    fn count(&mut self, nodes: usize, span: Span) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(LoadError::at(
                span,
                format!("the document expands to more than {MAX_NODES} values"),
            )
            .hint("aliases (`*name`) that repeat large anchors multiply the document; write the values out or use fewer aliases"));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<Option<Node>, LoadError> {
        match self.stack.last_mut() {
            None => Ok(Some(node)),
            Some(Open::Seq { items, .. }) => {
                items.push(node);
                Ok(None)
            }
            Some(Open::Map {
                entries,
                pending_key,
                ..
            }) => {
                match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => entries.push((key, node)),
                }
                Ok(None)
            }
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| 1 + count_nodes(&e.value))
                .sum::<usize>()
        }
    }
}

/// Close a mapping: keys must be text and unique; `<<` merges other mappings in, with
/// the mapping's own keys taking precedence (YAML merge-key semantics).
fn map_node(span: Span, raw: Vec<(Node, Node)>) -> Result<Node, LoadError> {
    let mut own: Vec<Entry> = Vec::with_capacity(raw.len());
    let mut merged: Vec<Entry> = Vec::new();
    for (key, value) in raw {
        let Value::Scalar(scalar) = key.value else {
            return Err(
                LoadError::at(key.span, "a key must be plain text, not a mapping or list")
                    .hint("write `key: value` pairs; complex keys (`? ...`) are not supported"),
            );
        };
        if scalar.text == "<<" && scalar.kind == ScalarKind::Str {
            merge_sources(&value, &mut merged)?;
            continue;
        }
        if scalar.kind == ScalarKind::Null {
            return Err(LoadError::at(key.span, "a key is empty"));
        }
        if let Some(first) = own.iter().find(|e| e.key == scalar.text) {
            return Err(
                LoadError::at(key.span, format!("duplicate key `{}`", scalar.text)).hint(format!(
                    "the key is already set on line {}; remove one of the two",
                    first.key_span.line
                )),
            );
        }
        own.push(Entry {
            key: scalar.text,
            key_span: key.span,
            value,
        });
    }
    for entry in merged {
        if !own.iter().any(|e| e.key == entry.key) {
            own.push(entry);
        }
    }
    Ok(Node {
        span,
        value: Value::Map(own),
    })
}

fn merge_sources(value: &Node, into: &mut Vec<Entry>) -> Result<(), LoadError> {
    let sources: Vec<&Node> = match &value.value {
        Value::Map(_) => vec![value],
        Value::Seq(items) => items.iter().collect(),
        Value::Scalar(_) => {
            return Err(LoadError::at(
                value.span,
                "`<<` must merge a mapping or a list of mappings",
            )
            .hint("write `<<: *anchor` where `&anchor` marks a mapping"));
        }
    };
    for source in sources {
        let Value::Map(entries) = &source.value else {
            return Err(LoadError::at(
                source.span,
                "`<<` must merge a mapping or a list of mappings",
            ));
        };
        // Earlier sources win over later ones.
        for entry in entries {
            if !into.iter().any(|e| e.key == entry.key) {
                into.push(entry.clone());
            }
        }
    }
    Ok(())
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str, span: Span) -> Result<(), LoadError> {
    match tag {
        None => Ok(()),
        Some(tag) if tag.is_yaml_core_schema() && tag.suffix == expected => Ok(()),
        Some(tag) => Err(unsupported_tag(tag, span)),
    }
}

fn unsupported_tag(tag: &Tag, span: Span) -> LoadError {
    let shown = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    LoadError::at(span, format!("the YAML tag `{shown}` is not supported"))
        .hint("remove the tag; amlspec reads plain YAML values only")
}

/// Resolve a scalar with the YAML 1.2 core schema. Quoted and block scalars are text.
fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: Span,
) -> Result<Scalar, LoadError> {
    let kind = match tag {
        Some(tag) if !tag.is_yaml_core_schema() => {
            // `!` alone is the non-specific tag: it forces a plain scalar to be text.
            if tag.handle == "!" && tag.suffix.is_empty() {
                ScalarKind::Str
            } else {
                return Err(unsupported_tag(tag, span));
            }
        }
        Some(tag) => match tag.suffix.as_str() {
            "str" => ScalarKind::Str,
            "null" | "bool" | "int" | "float" => {
                let kind = core_kind(text);
                let matches = matches!(
                    (tag.suffix.as_str(), kind),
                    ("null", ScalarKind::Null)
                        | ("bool", ScalarKind::Bool(_))
                        | ("int", ScalarKind::Int(_))
                        | ("float", ScalarKind::Float(_) | ScalarKind::Int(_))
                );
                if !matches {
                    return Err(LoadError::at(
                        span,
                        format!("`{text}` is not a valid !!{}", tag.suffix),
                    ));
                }
                match (tag.suffix.as_str(), kind) {
                    ("float", ScalarKind::Int(i)) => ScalarKind::Float(i as f64),
                    _ => kind,
                }
            }
            _ => return Err(unsupported_tag(tag, span)),
        },
        None if style == ScalarStyle::Plain => core_kind(text),
        None => ScalarKind::Str,
    };
    Ok(Scalar {
        text: text.to_string(),
        kind,
    })
}

fn core_kind(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" => return ScalarKind::Bool(true),
        "false" | "False" | "FALSE" => return ScalarKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ScalarKind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return ScalarKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = core_int(text) {
        return ScalarKind::Int(int);
    }
    if is_core_float(text)
        && let Ok(float) = text.parse::<f64>()
    {
        return ScalarKind::Float(float);
    }
    ScalarKind::Str
}

/// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+` (YAML 1.2 core schema).
fn core_int(text: &str) -> Option<i64> {
    if let Some(octal) = text.strip_prefix("0o") {
        return i64::from_str_radix(octal, 8)
            .ok()
            .filter(|_| !octal.is_empty());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.is_empty());
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_core_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok && mantissa != "."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let mut docs = parse(text).expect("parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    fn entries(node: &Node) -> &[Entry] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn kind(text: &str) -> ScalarKind {
        match one(&format!("k: {text}\n")).value {
            Value::Map(entries) => match &entries[0].value.value {
                Value::Scalar(s) => s.kind,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn core_schema_resolution() {
        let table = [
            ("5", ScalarKind::Int(5)),
            ("-12", ScalarKind::Int(-12)),
            ("0x1F", ScalarKind::Int(31)),
            ("0o17", ScalarKind::Int(15)),
            ("true", ScalarKind::Bool(true)),
            ("False", ScalarKind::Bool(false)),
            ("yes", ScalarKind::Str),
            ("on", ScalarKind::Str),
            ("~", ScalarKind::Null),
            ("", ScalarKind::Null),
            ("1.5", ScalarKind::Float(1.5)),
            ("1e3", ScalarKind::Float(1000.0)),
            ("'5'", ScalarKind::Str),
            ("\"true\"", ScalarKind::Str),
            ("!!str 5", ScalarKind::Str),
            ("1.2.3", ScalarKind::Str),
            ("v1", ScalarKind::Str),
            ("99999999999999999999", ScalarKind::Float(1e20)),
        ];
        for (text, expected) in table {
            assert_eq!(kind(text), expected, "{text}");
        }
    }

    #[test]
    fn positions_are_one_based_with_byte_ranges() {
        let text = "workspace:\n  name: pets-ws\n";
        let root = one(text);
        let ws = &entries(&root)[0];
        assert_eq!((ws.key_span.line, ws.key_span.column), (1, 1));
        let name = &entries(&ws.value)[0];
        assert_eq!((name.key_span.line, name.key_span.column), (2, 3));
        assert_eq!((name.value.span.line, name.value.span.column), (2, 9));
        assert_eq!(&text[name.value.span.start..name.value.span.end], "pets-ws");
    }

    #[test]
    fn columns_count_characters_but_ranges_are_bytes() {
        let text = "k: \"ä\"\nname: ü-x\n";
        let root = one(text);
        let name = &entries(&root)[1];
        assert_eq!(name.value.span.column, 7);
        assert_eq!(&text[name.value.span.start..name.value.span.end], "ü-x");
    }

    #[test]
    fn marks_map_to_byte_offsets_in_any_order() {
        let text = "ab: é€x\n\nschlüssel: wert\nz";
        let lines = LineIndex::new(text);
        // (line, column) of every character, as the parser counts them.
        let mut marks = Vec::new();
        for (line, content) in text.split('\n').enumerate() {
            let start = content.as_ptr() as usize - text.as_ptr() as usize;
            for (col, (i, _)) in content.char_indices().enumerate() {
                marks.push((line + 1, col, start + i));
            }
            marks.push((line + 1, content.chars().count(), start + content.len()));
        }
        let mut order: Vec<usize> = (0..marks.len()).collect();
        // Forward, backward, and jumping about.
        order.extend((0..marks.len()).rev());
        order.extend((0..marks.len()).map(|i| (i * 7) % marks.len()));
        for i in order {
            let (line, col, expected) = marks[i];
            let mark = Marker::new(0, line, col);
            assert_eq!(lines.offset(mark), expected, "line {line} column {col}");
        }
        assert_eq!(lines.offset(Marker::new(0, 9, 0)), text.len());
        assert_eq!(lines.offset(Marker::new(0, 4, 5)), text.len());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.message, "duplicate key `a`");
        assert_eq!(error.span.map(|s| (s.line, s.column)), Some((3, 1)));
        assert!(error.hint.unwrap().contains("line 1"));
    }

    #[test]
    fn merge_keys_fill_in_without_overriding() {
        let root = one("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n");
        let item = &entries(&root)[1].value;
        let pairs: Vec<(&str, &str)> = entries(item)
            .iter()
            .map(|e| match &e.value.value {
                Value::Scalar(s) => (e.key.as_str(), s.text.as_str()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(pairs, [("y", "3"), ("x", "1")]);
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("expands to more than"), "{error:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let block: String = (0..100)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        assert!(parse(&block).unwrap_err().message.contains("deeper than"));
        let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&flow).is_err());
    }

    #[test]
    fn custom_tags_are_refused() {
        let error = parse("k: !python/object x\n").unwrap_err();
        assert!(error.message.contains("not supported"), "{error:?}");
    }

    #[test]
    fn decode_reports_position_of_bad_byte() {
        let error = decode(b"a: 1\nb: \xff\n").unwrap_err();
        let span = error.span.unwrap();
        assert_eq!((span.line, span.column), (2, 4));
        assert!(
            decode(&[0xFF, 0xFE, b'a', 0])
                .unwrap_err()
                .message
                .contains("UTF-16")
        );
    }

    #[test]
    fn several_documents_and_empty_streams() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap().len(), 2);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.message.starts_with("invalid YAML"), "{error:?}");
        assert!(error.span.is_some());
    }
}
