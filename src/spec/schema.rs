//! The JSON Schema that editors validate manifests with, derived from the `raw` types.
//!
//! Draft-07, because that is what the VS Code YAML extension (yaml-language-server)
//! validates with. Committed as `schemas/amlspec.schema.json`; a test fails when the
//! committed copy is stale.

use schemars::generate::SchemaSettings;

use crate::spec::raw::Manifest;

/// Where the schema is committed, relative to the repository root.
pub const COMMITTED_PATH: &str = "schemas/amlspec.schema.json";

pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "description".into(),
            "An amlspec manifest: an Azure Machine Learning workspace, its private container registries, environments, compute clusters and command jobs. Start a file with `# yaml-language-server: $schema=<path to this file>` to validate it in your editor.".into(),
        );
    }
    value
}

/// The schema as committed: pretty-printed with a trailing newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema serializes");
    text.push('\n');
    text
}
