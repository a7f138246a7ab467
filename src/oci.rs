//! The OCI distribution grammar of repository names and tags, which the registry probe
//! (`azure::registry`) and the emulator's registries both follow, and what a probe
//! found ([`Pullable`]), which observe carries to plan: a neutral home, so that the two
//! sides cannot drift, the emulator imports nothing of the client and plan nothing of
//! `azure`.

use std::fmt;

/// Distribution spec: path components of lower-case alphanumerics joined by `.`, `_`,
/// `__` or `-`, separated by `/`, at most 255 characters.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

/// Distribution spec: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What a probe found. Messages are the registry's own (`CODE: message`, escaped and at
/// most `azure::registry::MAX_MESSAGE` characters) or a phrase saying what happened; they never hold
/// the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pullable {
    /// The manifest is there and these credentials may pull it; the digest the registry
    /// sent (`Docker-Content-Digest`), so a moving tag shows.
    Yes { digest: Option<String> },
    /// The repository exists but not this tag or digest (`MANIFEST_UNKNOWN`).
    MissingTag { message: String },
    /// No such repository (`NAME_UNKNOWN`).
    MissingRepository { message: String },
    /// The registry refused the credentials (wrong username or password), or wants
    /// credentials and none were given.
    Unauthorized { message: String },
    /// The credentials are valid but may not pull this repository (`insufficient_scope`,
    /// `DENIED`, 403).
    Denied { message: String },
    /// No answer: DNS, connect, TLS, timeout, a 429 or 5xx, or not a registry.
    Unreachable { message: String },
}

impl Pullable {
    /// Whether a plan should stop: the registry answered, and the answer is no. An
    /// unreachable registry (CI behind a firewall) is a warning.
    pub fn blocks(&self) -> bool {
        !matches!(self, Pullable::Yes { .. } | Pullable::Unreachable { .. })
    }
}

impl fmt::Display for Pullable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pullable::Yes { digest: Some(d) } => write!(f, "pullable, digest {d}"),
            Pullable::Yes { digest: None } => f.write_str("pullable (the registry sent no digest)"),
            Pullable::MissingTag { message } => write!(f, "no such tag or digest: {message}"),
            Pullable::MissingRepository { message } => {
                write!(f, "no such repository: {message}")
            }
            Pullable::Unauthorized { message } => {
                write!(f, "the registry refused the credentials: {message}")
            }
            Pullable::Denied { message } => {
                write!(f, "the credentials may not pull this repository: {message}")
            }
            Pullable::Unreachable { message } => {
                write!(f, "the registry could not be asked: {message}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_follow_the_distribution_grammar() {
        assert!(valid_repository("fastdotai/fastai2"));
        assert!(valid_repository("a.b_c-d/e"));
        assert!(!valid_repository("Upper/case"));
        assert!(!valid_repository("trailing-/x"));
        assert!(!valid_repository("a//b"));
        assert!(valid_repository(&"a".repeat(255)) && !valid_repository(&"a".repeat(256)));
        assert!(valid_tag("latest") && valid_tag("_v1.2-rc"));
        assert!(!valid_tag("-x") && !valid_tag("a:b") && !valid_tag(""));
        assert!(valid_tag(&"t".repeat(128)) && !valid_tag(&"t".repeat(129)));
    }
}
