//! Stage: render. Secret values masked at every sink: stdout, stderr, the log, files.
//!
//! Once the specs are read, [`install`] sets the process's [`Redactor`]: the values of
//! every variable a secret key references (see `spec::secret::secret_references`). Every
//! sink then masks them: [`stdout`] and [`stderr`] give writers that do, [`MaskedLog`]
//! is the log's writer (records made while the specs load wait for [`install`]: see
//! [`hold_log`]), and [`Redactor::redact`] masks text before it goes to a file.
//! Rendered output escapes text (JSON, GitHub's workflow commands, the plan's control
//! characters), so data is masked before it is rendered (`render::plan::redacted`,
//! [`Redactor::diagnostic`]) and the sinks also look for the escaped forms.
//!
//! Every value is masked whatever its length: a short one may hide unrelated text, which
//! is why loading warns about secrets shorter than [`SHORT_SECRET`] characters.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use crate::diagnostic::Diagnostic;
use crate::plan::SENSITIVE;

/// Secrets shorter than this may turn up by chance in unrelated text, which masking then
/// hides; loading warns about them.
pub const SHORT_SECRET: usize = 8;

/// A secret cut short by an ellipsis (`quoted` shortens long values) is masked when at
/// least this many bytes of it are left before the `…`.
const MIN_CUT: usize = 4;

/// Masks a set of secret values in text.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Each secret in every form output may show it: as is, escaped for JSON, for
    /// Rust's debug quoting, for GitHub workflow commands and for the plan's text.
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(Into::into)
            .filter(|v| !v.is_empty())
            .collect();
        secrets.sort();
        secrets.dedup();
        let mut needles = Vec::new();
        for secret in &secrets {
            let json = serde_json::to_string(secret).expect("a string serializes");
            let debug = format!("{secret:?}");
            needles.extend([
                secret.clone(),
                json[1..json.len() - 1].to_string(),
                debug[1..debug.len() - 1].to_string(),
                super::escape_data(secret),
                super::escape_property(secret),
                crate::diagnostic::escape(secret).into_owned(),
            ]);
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        Redactor { secrets, needles }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by `(sensitive)`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for needle in &self.needles {
            ranges.extend(
                text.match_indices(needle.as_str())
                    .map(|(i, _)| (i, i + needle.len())),
            );
        }
        for (ellipsis, _) in text.match_indices('…') {
            let before = &text[..ellipsis];
            for secret in &self.secrets {
                let longest = (MIN_CUT..secret.len().min(before.len() + 1))
                    .rev()
                    .filter(|&k| secret.is_char_boundary(k))
                    .find(|&k| before.ends_with(&secret[..k]));
                if let Some(k) = longest {
                    ranges.push((ellipsis - k, ellipsis));
                }
            }
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        ranges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            if start >= at {
                out.push_str(&text[at..start]);
                out.push_str(SENSITIVE);
                at = end;
            } else {
                // Overlaps the secret just masked: mask the rest of it too.
                at = at.max(end);
            }
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Bytes written to a sink; text that is not UTF-8 is masked after lossy decoding.
    pub fn redact_bytes<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        if self.is_empty() {
            return Cow::Borrowed(bytes);
        }
        match String::from_utf8_lossy(bytes) {
            Cow::Borrowed(text) => match self.redact(text) {
                Cow::Borrowed(_) => Cow::Borrowed(bytes),
                Cow::Owned(masked) => Cow::Owned(masked.into_bytes()),
            },
            Cow::Owned(text) => Cow::Owned(self.redact(&text).into_owned().into_bytes()),
        }
    }

    /// Every string in a JSON value, object keys included.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(text) => {
                if let Cow::Owned(masked) = self.redact(text) {
                    *text = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A problem's text masked, before it is rendered (and escaped) in any format.
    pub fn diagnostic(&self, diagnostic: &Diagnostic) -> Diagnostic {
        let Diagnostic {
            severity,
            file,
            span,
            path,
            message,
            hint,
        } = diagnostic;
        Diagnostic {
            severity: *severity,
            file: file.clone(),
            span: *span,
            path: self.redact(path).into_owned(),
            message: self.redact(message).into_owned(),
            hint: hint.as_deref().map(|h| self.redact(h).into_owned()),
        }
    }
}

/// The redactor in force, and the log records held while the secrets are not known yet.
struct State {
    redactor: Option<Arc<Redactor>>,
    /// Log records held for stderr, and for the log file, until [`install`].
    held: Option<Vec<u8>>,
    held_file: Option<Vec<u8>>,
    /// `--log-file`, when given.
    file: Option<std::fs::File>,
}

static STATE: Mutex<State> = Mutex::new(State {
    redactor: None,
    held: None,
    held_file: None,
    file: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hold log records from now until [`install`]: while specs load, the values to mask
/// are not known yet, and a record (a file's path, say) may hold one.
pub fn hold_log() {
    let mut state = state();
    state.held.get_or_insert_with(Vec::new);
    if state.file.is_some() {
        state.held_file.get_or_insert_with(Vec::new);
    }
}

/// Also write the log to `file` ([`MASKED_LOG_FILE`]), masked as stderr is.
pub fn log_to_file(file: std::fs::File) {
    state().file = Some(file);
}

/// Mask `redactor`'s secrets in everything written from now on through this module's
/// writers, and write the log records held until now, masked.
pub fn install(redactor: Redactor) {
    let redactor = Arc::new(redactor);
    let mut state = state();
    state.redactor = Some(redactor.clone());
    if let Some(held) = state.held.take() {
        let _ = io::stderr().write_all(&redactor.redact_bytes(&held));
    }
    if let Some(held) = state.held_file.take()
        && let Some(file) = &mut state.file
    {
        let _ = file.write_all(&redactor.redact_bytes(&held));
    }
}

/// The redactor in force (one that masks nothing before [`install`]).
pub fn active() -> Arc<Redactor> {
    state().redactor.clone().unwrap_or_default()
}

/// A writer that holds what it is given and writes it masked on `flush` and when
/// dropped, so a secret split across writes is still found. Meant for one message or
/// one output at a time: drop or flush it when done.
pub struct Masked<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    redactor: Arc<Redactor>,
}

impl<W: Write> Masked<W> {
    /// Masks with the redactor in force when it is made.
    pub fn new(inner: W) -> Self {
        Masked::with(active(), inner)
    }

    pub fn with(redactor: Arc<Redactor>, inner: W) -> Self {
        Masked {
            inner,
            buffer: Vec::new(),
            redactor,
        }
    }
}

impl<W: Write> Write for Masked<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let buffer = std::mem::take(&mut self.buffer);
            self.inner.write_all(&self.redactor.redact_bytes(&buffer))?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Masked<W> {
    fn drop(&mut self) {
        // Errors were reported by an explicit flush where they matter.
        let _ = self.flush();
    }
}

/// Standard output, masked (colour handled as `anstream` does).
pub fn stdout() -> Masked<anstream::Stdout> {
    Masked::new(anstream::stdout())
}

/// Standard error, masked (colour handled as `anstream` does).
pub fn stderr() -> Masked<anstream::Stderr> {
    Masked::new(anstream::stderr())
}

/// The log's writer: each record is masked whole, at every level (and held while
/// [`hold_log`] says so), then written to stderr or, for `--log-file`, to the file given
/// to [`log_to_file`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedLog {
    pub to_file: bool,
}

/// The log on stderr.
pub const MASKED_STDERR: MaskedLog = MaskedLog { to_file: false };
/// The log in the `--log-file` file.
pub const MASKED_LOG_FILE: MaskedLog = MaskedLog { to_file: true };

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedLog {
    type Writer = LogRecord;

    fn make_writer(&'a self) -> Self::Writer {
        LogRecord {
            bytes: Vec::new(),
            to_file: self.to_file,
        }
    }
}

/// One log record, written on drop.
pub struct LogRecord {
    bytes: Vec<u8>,
    to_file: bool,
}

impl Write for LogRecord {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        let mut state = state();
        let held = if self.to_file {
            &mut state.held_file
        } else {
            &mut state.held
        };
        if let Some(held) = held {
            held.append(&mut self.bytes);
            return;
        }
        let redactor = state.redactor.clone().unwrap_or_default();
        let masked = redactor.redact_bytes(&self.bytes);
        // A log line that cannot be written has nowhere else to go.
        if !self.to_file {
            let _ = io::stderr().write_all(&masked);
        } else if let Some(file) = &mut state.file {
            let _ = file.write_all(&masked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form_of_every_secret() {
        let redactor = Redactor::new(["p\"a\\ss%w:rd\n2", "hunter22", ""]);
        let table = [
            ("plain hunter22 text", "plain (sensitive) text"),
            ("hunter22hunter22", "(sensitive)(sensitive)"),
            ("json \"p\\\"a\\\\ss%w:rd\\n2\"", "json \"(sensitive)\""),
            ("raw p\"a\\ss%w:rd\n2.", "raw (sensitive)."),
            ("github p\"a\\ss%25w:rd%0A2", "github (sensitive)"),
            ("property p\"a\\ss%25w%3Ard%0A2", "property (sensitive)"),
            ("cut short `hunt…`", "cut short `(sensitive)…`"),
            // Cut where the text starts: every byte before the `…` is the secret's.
            ("hunt…", "(sensitive)…"),
            ("hunter2…", "(sensitive)…"),
            ("too short to say `hun…`", "too short to say `hun…`"),
            ("nothing here", "nothing here"),
        ];
        for (text, expected) in table {
            assert_eq!(redactor.redact(text), expected, "{text:?}");
        }
        assert!(matches!(redactor.redact("nothing"), Cow::Borrowed(_)));
        assert!(Redactor::new([""]).is_empty());
    }

    #[test]
    fn overlapping_secrets_are_masked_once() {
        let redactor = Redactor::new(["abcdef", "defghi"]);
        assert_eq!(redactor.redact("xabcdefghiy"), "x(sensitive)y");
        // The marker itself is not searched again, even for a secret inside it.
        let redactor = Redactor::new(["s", "e"]);
        assert_eq!(redactor.redact("yes"), "y(sensitive)(sensitive)");
    }

    #[test]
    fn a_secret_split_across_writes_is_masked() {
        let redactor = Arc::new(Redactor::new(["hunter22"]));
        let mut out = Vec::new();
        {
            let mut masked = Masked::with(redactor.clone(), &mut out);
            write!(masked, "a hun").unwrap();
            write!(masked, "ter22 b").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "a (sensitive) b");
    }

    #[test]
    fn json_keys_and_values_are_masked() {
        let redactor = Redactor::new(["hunter22"]);
        let mut value = serde_json::json!({"hunter22": ["x hunter22", 1, null], "k": "v"});
        redactor.redact_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"(sensitive)": ["x (sensitive)", 1, null], "k": "v"})
        );
    }
}
