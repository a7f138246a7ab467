//! The JSON Schema that editors validate manifests with, derived from the `raw` types.
//!
//! Draft-07, because that is what the VS Code YAML extension (yaml-language-server)
//! validates with. Committed as `schemas/amlspec.schema.json`; a test fails when the
//! committed copy is stale.

use schemars::generate::SchemaSettings;

use crate::spec::raw::Manifest;

/// The schema's identity (`$id`): a name, not a place to fetch it from.
pub const SCHEMA_ID: &str = "urn:amlspec:schema:manifest:1";

/// Where the schema is committed, relative to the repository root.
pub const COMMITTED_PATH: &str = "schemas/amlspec.schema.json";

pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut value = schema.to_value();
    without_null(&mut value);
    if let Some(object) = value.as_object_mut() {
        object.insert("$id".into(), SCHEMA_ID.into());
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

/// An optional key is simply not required: `null` is never a value a manifest may give
/// (the reader refuses an empty value), so it is taken out of every `type` list, and an
/// `anyOf` of a schema and `null` becomes that schema (behind `allOf`, so a description
/// beside a `$ref` still counts in draft-07). Editors then neither offer `null` nor
/// word their best-match message around it.
fn without_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = object.get("anyOf") {
                let rest: Vec<Value> = any
                    .iter()
                    .filter(|s| s.get("type").is_none_or(|t| t != "null"))
                    .cloned()
                    .collect();
                if rest.len() < any.len() {
                    object.remove("anyOf");
                    match rest.len() {
                        0 => {}
                        1 => {
                            object.insert("allOf".into(), Value::Array(rest));
                        }
                        _ => {
                            object.insert("anyOf".into(), Value::Array(rest));
                        }
                    }
                }
            }
            for child in object.values_mut() {
                without_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_never_offers_null_and_has_an_id() {
        let text = json_schema_text();
        assert!(!text.contains("\"null\""), "null is offered somewhere");
        assert_eq!(json_schema()["$id"], SCHEMA_ID);
        // An optional enum is its enum alone.
        let schema = json_schema();
        let priority = &schema["definitions"]["Cluster"]["properties"]["vm_priority"];
        assert_eq!(
            priority["allOf"][0]["$ref"], "#/definitions/VmPriority",
            "{priority}"
        );
        assert!(priority["description"].is_string());
        let optional = &schema["definitions"]["Cluster"]["properties"]["min_nodes"];
        assert_eq!(optional["type"], "integer", "{optional}");
    }
}
