//! The OCI distribution grammar of repository names and tags, which the registry probe
//! (`azure::registry`) and the emulator's registries both follow: a neutral home, so
//! that the two cannot drift and the emulator imports nothing of the client.

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
