//! The process environment, captured once: what `${NAME}` in a spec expands to, and
//! where credentials (`AZURE_CLIENT_ID`, ...) are found.

use std::collections::BTreeMap;

/// The process environment, captured once so loading is deterministic and testable.
#[derive(Debug, Clone, Default)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    pub fn from_process() -> Self {
        EnvVars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvVars(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}
