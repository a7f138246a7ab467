//! Secrets (registry passwords, account keys, SAS tokens): a value that can be used but
//! never shown.
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
