//! Secrets (registry passwords): a value that can be used but never shown.
//!
//! `Secret` has no `Display` and no `Serialize`, and its `Debug` prints `(sensitive)`,
//! so a secret cannot reach output, logs or saved plans by accident. The one way out is
//! [`Secret::expose`], used where the value is sent to Azure.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself, for the request that sends it to Azure. Nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

/// Keys whose values are secrets wherever they appear; their text is masked before any
/// line of the file is shown in a message.
pub const SECRET_KEYS: &[&str] = &["password"];

/// Mask the values of secret keys in `text`, line by line, keeping `${NAME}` references
/// (they are names, not secrets) and every byte offset (masking is 1:1 per character
/// class: ASCII stays ASCII, other characters become `*` padded to the same byte width).
/// Used for the text that snippets are cut from, so it works even on a file that does
/// not parse.
pub fn mask_secret_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match secret_value_start(line) {
            Some(start) => {
                out.push_str(&line[..start]);
                out.push_str(&mask_value(&line[start..]));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Mask byte range `start..end` of `text` in place (same rules as above).
pub fn mask_range(text: &mut String, start: usize, end: usize) {
    if start >= end
        || end > text.len()
        || !text.is_char_boundary(start)
        || !text.is_char_boundary(end)
    {
        return;
    }
    let masked = mask_value(&text[start..end]);
    text.replace_range(start..end, &masked);
}

fn secret_value_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let mut offset = line.len() - trimmed.len();
    let mut rest = trimmed;
    if let Some(after_dash) = rest.strip_prefix("- ") {
        offset += 2;
        rest = after_dash.trim_start();
        offset += after_dash.len() - rest.len();
    }
    let rest_unquoted = rest.trim_start_matches(['"', '\'']);
    offset += rest.len() - rest_unquoted.len();
    let key = SECRET_KEYS
        .iter()
        .find(|k| rest_unquoted.starts_with(**k))?;
    let after_key = rest_unquoted[key.len()..].trim_start_matches(['"', '\'']);
    let after_key = after_key.trim_start_matches([' ', '\t']);
    after_key.strip_prefix(':')?;
    Some(offset + (rest_unquoted.len() - after_key.len()) + 1)
}

fn mask_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        if let Some(reference_len) = reference_prefix_len(rest) {
            out.push_str(&rest[..reference_len]);
            rest = &rest[reference_len..];
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        if c == '\n' || c == '\r' || c == ' ' || c == '#' && out.ends_with(' ') {
            if c == '#' {
                // A comment after the value: keep it.
                out.push_str(rest);
                break;
            }
            out.push(c);
        } else {
            out.push_str(&"*".repeat(c.len_utf8()));
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn reference_prefix_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("${")?;
    let end = body.find('}')?;
    crate::spec::interpolate::is_variable_name(&body[..end]).then_some(end + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2".into())),
            "(sensitive)"
        );
    }

    #[test]
    fn masks_literal_passwords_but_keeps_references_and_offsets() {
        let text = "  - name: r\n    password: hunter2 # old\n    password: ${ACR_PASSWORD}\n    \"password\": \"é\"\n";
        let masked = mask_secret_lines(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("hunter2"));
        assert!(masked.contains("password: ******* # old"));
        assert!(masked.contains("${ACR_PASSWORD}"));
        assert!(!masked.contains('é'));
        assert!(masked.contains("name: r"));
    }

    #[test]
    fn masks_a_range() {
        let mut text = String::from("{password: hunter2}");
        mask_range(&mut text, 11, 18);
        assert_eq!(text, "{password: *******}");
    }
}
