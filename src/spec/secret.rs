//! Secrets in spec files: which keys hold them (and which look like they do), the
//! variables they take, and masking their values in the lines a message shows. The
//! `Secret` type itself lives in `crate::secret`.

use std::collections::BTreeMap;

pub use crate::secret::Secret;

/// Keys whose values are secrets wherever they appear; their text is masked before any
/// line of the file is shown in a message.
pub const SECRET_KEYS: &[&str] = &["password"];

/// Words that make a key look like it holds a secret, compared with the key in lower
/// case without `_`, `-` and other separators (`client_secret`, `API-Key`, `apiKey`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "connectionstring",
    "authorization",
];

/// Whether a key looks like it holds a secret: one of [`SECRET_KEYS`], a key that
/// contains a word such as `secret`, `token`, `password` or `api_key`, ends in `key`
/// (`account_key`, `ssh_key`), or is a misspelling of `password`, `secret` or `token`
/// (`pasword`, `Passwort`, `secert`). Such values are masked in every snippet, valid key
/// or not: a secret typed under a misspelled key must not be shown back. A key that
/// only looks secret costs a masked value in a snippet; a missed one costs a leak, so
/// the rule leans wide.
pub fn looks_secret(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    if matches!(key.as_str(), "pw" | "pass") {
        return true;
    }
    SECRET_WORDS.iter().any(|word| key.contains(word))
        || (key.len() > 3 && key.ends_with("key"))
        || (key.chars().count() >= 5
            && ["password", "secret", "token"]
                .iter()
                .any(|word| strsim::jaro_winkler(&key, word) >= 0.9))
}

/// [`looks_secret`], remembered per key: a file repeats the same few keys thousands of
/// times, and the fuzzy comparison is the costly part.
#[derive(Default)]
pub struct SecretKeys(std::collections::HashMap<String, bool>);

impl SecretKeys {
    pub fn looks_secret(&mut self, key: &str) -> bool {
        if let Some(&known) = self.0.get(key) {
            return known;
        }
        let answer = looks_secret(key);
        self.0.insert(key.to_string(), answer);
        answer
    }
}

/// Mask the values of keys that look like secrets (see [`looks_secret`]) in `text`,
/// line by line, keeping `${NAME}` references (they are names, not secrets) and every
/// byte offset (masking is 1:1 per character class: ASCII stays ASCII, other characters
/// become `*` padded to the same byte width). Used for the text that snippets are cut
/// from, so it works even on a file that does not parse (the loader also masks, by
/// position, the values of a parsed file that this line-based look cannot see, such as
/// those in `{flow: mappings}`).
pub fn mask_secret_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut keys = SecretKeys::default();
    for line in text.split_inclusive('\n') {
        match secret_value_start(line, &mut keys) {
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

/// A `${NAME}` in the value of a key that looks like a secret's, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// The variables whose values are secrets because a secret-looking key takes them:
/// `password: ${ACR_PASSWORD}` in block or flow style, quoted or not, as a block scalar,
/// or through an alias of an anchored `${NAME}`. Read from the text, not the parsed
/// document, so it works on a file that does not parse (or whose literal secrets are
/// already masked); it errs towards finding too many, which only masks more.
pub fn secret_references(text: &str) -> Vec<SecretReference> {
    let mut found = Vec::new();
    let mut aliases = Vec::new();
    let mut anchors: BTreeMap<&str, Vec<SecretReference>> = BTreeMap::new();
    let mut keys = SecretKeys::default();
    for (colon, _) in text.match_indices(':') {
        if !keys.looks_secret(key_before(&text[..colon])) {
            continue;
        }
        match value_after(text, colon + 1) {
            Value::Alias(name) => aliases.push(name),
            Value::Text(start, end) => found.extend(references_in(text, start, end)),
        }
    }
    for (amp, _) in text.match_indices('&') {
        let name_start = amp + 1;
        let name_end = text[name_start..]
            .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
            .map_or(text.len(), |i| name_start + i);
        if name_end == name_start {
            continue;
        }
        if let Value::Text(start, end) = value_after(text, name_end) {
            anchors
                .entry(&text[name_start..name_end])
                .or_default()
                .extend(references_in(text, start, end));
        }
    }
    for alias in aliases {
        found.extend(anchors.get(alias).into_iter().flatten().cloned());
    }
    found
}

/// The key a `:` ends: the run of key characters before it, inside quotes or not.
fn key_before(before: &str) -> &str {
    let before = before.trim_end_matches(['"', '\'']);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || "_-.".contains(*c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    &before[start..]
}

enum Value<'t> {
    Alias(&'t str),
    /// The byte range in which its references are looked for.
    Text(usize, usize),
}

/// Where the value after a key's `:` (or an anchor's name) is: past blanks, anchors,
/// tags, a block scalar's header and an opening quote; to the end of its first line.
fn value_after(text: &str, mut at: usize) -> Value<'_> {
    let skip_blanks = |at: usize| {
        text[at..]
            .find(|c: char| c != ' ' && c != '\t')
            .map_or(text.len(), |i| at + i)
    };
    let token_end = |at: usize| {
        text[at..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| at + i)
    };
    at = skip_blanks(at);
    while text[at..].starts_with(['&', '!']) {
        at = skip_blanks(token_end(at));
    }
    if let Some(alias) = text[at..].strip_prefix('*') {
        let end = alias
            .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
            .unwrap_or(alias.len());
        return Value::Alias(&alias[..end]);
    }
    if text[at..].starts_with(['|', '>']) || text[at..].starts_with(['\n', '\r']) {
        // A block scalar, or a value on the next lines: its first content line.
        at = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
        at = text[at..]
            .find(|c: char| !c.is_whitespace())
            .map_or(text.len(), |i| at + i);
    }
    let line_end = text[at..].find(['\n', '\r']).map_or(text.len(), |i| at + i);
    let line = &text[at..line_end];
    let end = match line.chars().next() {
        Some(quote @ ('"' | '\'')) => line[1..].find(quote).map_or(line_end, |i| at + i + 2),
        // A plain value ends where a flow collection's next entry or a comment starts.
        _ => plain_end(line).map_or(line_end, |i| at + i),
    };
    Value::Text(at, end)
}

/// Where a plain value on `line` ends: at a flow collection's next entry or end, or a
/// comment, but not at the `}` of a `${NAME}`.
fn plain_end(line: &str) -> Option<usize> {
    let mut in_reference = false;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '{' if previous == '$' => in_reference = true,
            '}' if in_reference => in_reference = false,
            ',' | ']' | '}' => return Some(i),
            '#' if previous == ' ' => return Some(i),
            _ => {}
        }
        previous = c;
    }
    None
}

/// Every `${NAME}` in `text[start..end]` (`$${` is a literal, `${{` Azure ML's own).
fn references_in(text: &str, start: usize, end: usize) -> Vec<SecretReference> {
    let mut found = Vec::new();
    let mut at = start;
    while let Some(i) = text[at..end].find('$') {
        let dollar = at + i;
        let rest = &text[dollar + 1..end];
        if rest.starts_with("${") || rest.starts_with("{{") {
            at = dollar + 3;
            continue;
        }
        at = dollar + 1;
        if let Some(body) = rest.strip_prefix('{')
            && let Some(close) = body.find('}')
            && crate::spec::interpolate::is_variable_name(&body[..close])
        {
            found.push(SecretReference {
                name: body[..close].to_string(),
                start: dollar,
                end: dollar + close + 3,
            });
            at = dollar + close + 3;
        }
    }
    found
}

/// Where the value starts on a `key: value` line (also `- key: value` and quoted
/// keys) whose key looks like a secret.
fn secret_value_start(line: &str, keys: &mut SecretKeys) -> Option<usize> {
    let trimmed = line.trim_start();
    let mut offset = line.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(after_dash) = rest.strip_prefix("- ") {
        let after_dash = after_dash.trim_start();
        offset += rest.len() - after_dash.len();
        rest = after_dash;
    }
    let (key, after_key) = match rest.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let end = rest[1..].find(quote)? + 1;
            (&rest[1..end], &rest[end + 1..])
        }
        _ => {
            let colon = rest.find(':')?;
            (&rest[..colon], &rest[colon..])
        }
    };
    let after_blank = after_key.trim_start_matches([' ', '\t']);
    // (`password:hunter2` is one plain scalar in YAML, not a key and a value; it is
    // masked all the same.)
    let value = after_blank.strip_prefix(':')?;
    keys.looks_secret(key.trim_end())
        .then(|| offset + rest.len() - value.len())
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
    fn keys_that_look_like_secrets() {
        for key in [
            "password",
            "Password",
            "PASSWORD",
            "pasword",
            "passwrod",
            "Passwort",
            "passwd",
            "pwd",
            "pw",
            "pass",
            "secret",
            "Secret",
            "secert",
            "client_secret",
            "clientSecret",
            "token",
            "tokne",
            "access_token",
            "SAS_TOKEN",
            "api_key",
            "apiKey",
            "API-KEY",
            "account_key",
            "ssh_key",
            "private_key",
            "credentials",
            "connection_string",
            "authorization",
        ] {
            assert!(looks_secret(key), "{key}");
        }
        // Every key of the manifest but `password` reads as what it is.
        for key in [
            "workspace",
            "registries",
            "environments",
            "clusters",
            "jobs",
            "name",
            "subscription_id",
            "resource_group",
            "location",
            "create_if_missing",
            "description",
            "tags",
            "address",
            "username",
            "version",
            "image",
            "dockerfile",
            "dockerfile_path",
            "build_context",
            "registry",
            "user_managed_dependencies",
            "conda_file",
            "vm_size",
            "vm_priority",
            "min_nodes",
            "max_nodes",
            "idle_seconds_before_scale_down",
            "experiment",
            "source_directory",
            "command",
            "script",
            "arguments",
            "environment",
            "environment_variables",
            "cluster",
            "node_count",
            "distribution",
            "type",
            "processes_per_node",
            "worker_count",
            "parameter_server_count",
            "key",
            "team",
        ] {
            assert!(!looks_secret(key), "{key}");
        }
    }

    #[test]
    fn masks_values_of_keys_that_look_like_secrets() {
        let table = [
            ("pasword: hunter2\n", "pasword: *******\n"),
            ("  Password:  hunter2\n", "  Password:  *******\n"),
            (
                "- - client_secret: s3 # note\n",
                "- - client_secret: ** # note\n",
            ),
            ("'api_key' : abc\n", "'api_key' : ***\n"),
            // A quoted key may hold a colon.
            ("\"db:password\": s3cret\n", "\"db:password\": ******\n"),
            ("\"token\": \"abc\"\r\n", "\"token\": *****\r\n"),
            ("passwd:hunter2\n", "passwd:*******\n"),
            ("secret: ${VAULT_SECRET}\n", "secret: ${VAULT_SECRET}\n"),
            (
                "description: token of thanks\n",
                "description: token of thanks\n",
            ),
            ("name: password\n", "name: password\n"),
        ];
        for (line, expected) in table {
            assert_eq!(mask_secret_lines(line), expected, "{line:?}");
        }
    }

    #[test]
    fn finds_the_variables_that_secret_keys_take() {
        let names = |text: &str| -> Vec<String> {
            secret_references(text)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        let table: &[(&str, &[&str])] = &[
            ("password: ${A}\n", &["A"]),
            ("  - password: \"${A}\"  # note\n", &["A"]),
            ("{name: r, password: ${A}, username: ${B}}", &["A"]),
            ("\"password\": \"${A}\",\n\"username\": \"${B}\"", &["A"]),
            ("password: >-\n  ${A}\nusername: ${B}\n", &["A"]),
            ("password:\n  ${A}\n", &["A"]),
            ("password: !!str ${A}\n", &["A"]),
            // A tag longer than everything before it.
            ("pw: !a-tag-longer-than-its-key ${A}\n", &["A"]),
            // A quoted value holds commas and ends at its quote, on the key's line or
            // the next, at the very end of the text too.
            ("password: \"a, ${A}\"", &["A"]),
            ("password:\n  'a, ${A}'\n", &["A"]),
            // `#` starts a comment only after a blank.
            ("password: a#${A}\n", &["A"]),
            ("password: x # ${A}\n", &[]),
            // A `}` ends a plain value, unless it closes a `${`.
            ("{password: x{y} ${B}}", &[]),
            ("{password: x${A}y} ${B}}", &["A"]),
            ("pasword: ${A}\nPassword: ${B}\n", &["A", "B"]),
            ("description: &pw ${A}\npassword: *pw\n", &["A"]),
            ("password: $${A}\n", &[]),
            // A `$` that starts no reference is passed over.
            ("password: pa$word-${not a name}-${A}\n", &["A"]),
            ("username: ${A}\ndescription: ${B}\n", &[]),
            ("image: x.azurecr.io/a:${A}\n", &[]),
            ("password: ***** # masked\nusername: ${B}\n", &[]),
            // A key with a character wider than a byte right before its name.
            ("\"dscr\u{202e}ipton\": x\n\u{e9}password: ${A}\n", &["A"]),
        ];
        for (text, expected) in table {
            assert_eq!(names(text), *expected, "{text:?}");
        }
        let text = "x: 1\npassword: ${ACR}\n";
        let found = secret_references(text);
        assert_eq!(&text[found[0].start..found[0].end], "${ACR}");
    }

    #[test]
    fn masks_a_range() {
        let mut text = String::from("{password: hunter2}");
        mask_range(&mut text, 11, 18);
        assert_eq!(text, "{password: *******}");
        // A range that ends where the text does is masked too.
        let mut text = String::from("password: hunter2");
        mask_range(&mut text, 10, 17);
        assert_eq!(text, "password: *******");
        // Ranges that are empty, reversed, past the end or inside a character are left
        // alone (never a panic).
        for (start, end) in [(3, 3), (4, 3), (0, 20), (19, 20), (1, 2), (0, 1)] {
            let mut text = String::from("\u{e9}password: hunter2");
            mask_range(&mut text, start, end);
            assert_eq!(text, "\u{e9}password: hunter2", "{start}..{end}");
        }
        let mut text = String::from("\u{e9}password: hunter2");
        mask_range(&mut text, 0, 2);
        assert_eq!(text, "**password: hunter2");
    }
}
