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
