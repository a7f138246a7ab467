//! Hashing for content addressing and fingerprints, shared by the stages.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// JSON with object keys sorted, no whitespace: a stable input for hashing.
pub fn canonical(value: &Value) -> String {
    // serde_json's default map is a BTreeMap, so keys serialize sorted.
    serde_json::to_string(value).expect("JSON values serialize")
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The sha256 of the canonical JSON array of the values pushed, in order (the same as
/// `sha256_hex(&canonical(&Value::Array(values)))`), without holding the array or its
/// text: one value at a time.
pub struct CanonicalArrayDigest {
    hasher: Sha256,
    empty: bool,
}

impl CanonicalArrayDigest {
    pub fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"[");
        CanonicalArrayDigest {
            hasher,
            empty: true,
        }
    }

    pub fn push(&mut self, value: &Value) {
        if !self.empty {
            self.hasher.update(b",");
        }
        self.empty = false;
        serde_json::to_writer(&mut HashWriter(&mut self.hasher), value)
            .expect("JSON values serialize");
    }

    pub fn finish(mut self) -> String {
        self.hasher.update(b"]");
        hex::encode(self.hasher.finalize())
    }
}

impl Default for CanonicalArrayDigest {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes written go to the hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The streamed digest is the digest of the whole array's canonical text, for no
    /// values, one, and several (keys out of order, nesting, text that JSON escapes).
    #[test]
    fn a_streamed_array_digest_is_the_digest_of_the_whole_array() {
        let cases: Vec<Vec<Value>> = vec![
            vec![],
            vec![json!({"b": 1, "a": [true, null]})],
            vec![
                json!({"z": {"y": 2, "x": "quote \" and \u{e9}"}}),
                json!("text"),
                json!(1.5),
                json!([]),
            ],
        ];
        for values in cases {
            let mut streamed = CanonicalArrayDigest::new();
            for value in &values {
                streamed.push(value);
            }
            assert_eq!(
                streamed.finish(),
                sha256_hex(&canonical(&Value::Array(values.clone()))),
                "{values:?}"
            );
        }
    }
}
