//! `${NAME}` interpolation from the process environment, explicit only.
//!
//! `$${` writes a literal `${`, and `${{` (Azure ML's own expression syntax, as in
//! `${{inputs.data}}`) is left untouched. Anything else after `${` that is not a
//! variable name followed by `}` is an error, as is a variable that is not set.

pub use crate::env::EnvVars;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${` not followed by a valid name and `}`.
    Malformed { at: usize },
    /// A referenced variable is not set.
    Missing { name: String },
}

pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Does the text use `${NAME}` at all? (Schema patterns let such values through.)
pub fn has_reference(text: &str) -> bool {
    references(text).is_ok_and(|names| !names.is_empty())
}

/// The variable names referenced by `text`, in order.
pub fn references(text: &str) -> Result<Vec<&str>, InterpolationError> {
    let mut names = Vec::new();
    walk(text, |piece| {
        if let Piece::Variable(name) = piece {
            names.push(name);
        }
    })?;
    Ok(names)
}

/// Expand every `${NAME}` in `text`. All missing variables are reported, first one wins.
pub fn expand(text: &str, env: &EnvVars) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut missing = None;
    walk(text, |piece| match piece {
        Piece::Literal(s) => out.push_str(s),
        Piece::Variable(name) => match env.get(name) {
            Some(value) => out.push_str(value),
            None => {
                missing.get_or_insert_with(|| name.to_string());
            }
        },
    })?;
    match missing {
        Some(name) => Err(InterpolationError::Missing { name }),
        None => Ok(out),
    }
}

enum Piece<'t> {
    Literal(&'t str),
    Variable(&'t str),
}

fn walk<'t>(text: &'t str, mut emit: impl FnMut(Piece<'t>)) -> Result<(), InterpolationError> {
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            // `$${` -> literal `${`
            emit(Piece::Literal(&rest[..i]));
            emit(Piece::Literal("${"));
            rest = tail;
            offset += i + 3;
        } else if let Some(tail) = after.strip_prefix("{{") {
            emit(Piece::Literal(&rest[..i + 3]));
            rest = tail;
            offset += i + 3;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(InterpolationError::Malformed { at: offset + i });
            };
            let name = &body[..end];
            if !is_variable_name(name) {
                return Err(InterpolationError::Malformed { at: offset + i });
            }
            emit(Piece::Literal(&rest[..i]));
            emit(Piece::Variable(name));
            rest = &body[end + 1..];
            offset += i + 2 + end + 1;
        } else {
            emit(Piece::Literal(&rest[..=i]));
            rest = after;
            offset += i + 1;
        }
    }
    emit(Piece::Literal(rest));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvVars {
        [("SUB", "1234"), ("EMPTY", "")].into_iter().collect()
    }

    #[test]
    fn expands_references() {
        let table = [
            ("plain", "plain"),
            ("${SUB}", "1234"),
            ("a-${SUB}-b", "a-1234-b"),
            ("${SUB}${SUB}", "12341234"),
            ("cost $5", "cost $5"),
            ("$${SUB}", "${SUB}"),
            ("x${EMPTY}y", "xy"),
            ("--data ${{inputs.data}}", "--data ${{inputs.data}}"),
            ("trailing $", "trailing $"),
        ];
        for (text, expected) in table {
            assert_eq!(expand(text, &env()).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn reports_missing_and_malformed() {
        assert_eq!(
            expand("${NOPE}", &env()),
            Err(InterpolationError::Missing {
                name: "NOPE".into()
            })
        );
        assert_eq!(
            expand("a ${not a name}", &env()),
            Err(InterpolationError::Malformed { at: 2 })
        );
        assert_eq!(
            expand("${OPEN", &env()),
            Err(InterpolationError::Malformed { at: 0 })
        );
        assert_eq!(
            expand("${1X}", &env()),
            Err(InterpolationError::Malformed { at: 0 })
        );
    }

    #[test]
    fn lists_references() {
        assert_eq!(references("${A}-${B_2}").unwrap(), ["A", "B_2"]);
        assert!(has_reference("x${A}"));
        assert!(!has_reference("$${A}"));
    }
}
