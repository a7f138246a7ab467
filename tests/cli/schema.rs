//! The editor schema: committed copy up to date, and in agreement with the validator
//! when checked by an independent JSON Schema validator (the `jsonschema` crate) on
//! YAML read by an independent parser (`yaml_serde`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use amlspec::spec::{self, names, schema};
use serde_json::Value;

use crate::cli::common::{env_vars, repo_root};

fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&schema::json_schema()).expect("the schema compiles as draft-07")
}

/// Every document of a YAML file, as JSON, read by yaml_serde (merge keys applied).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = <serde_yaml::Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            value.apply_merge().unwrap();
            serde_json::to_value(value).unwrap()
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn yaml_files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && recursive {
            files.extend(yaml_files(&path, true));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The spec files shipped under specs/ (conda files are not specs).
fn shipped_specs() -> Vec<PathBuf> {
    yaml_files(&repo_root().join("specs"), true)
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("workspace:"))
        .collect()
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn committed_schema_is_current() {
    let committed =
        std::fs::read_to_string(repo_root().join(schema::COMMITTED_PATH)).unwrap_or_default();
    assert!(
        committed == schema::json_schema_text(),
        "{} is stale: run `cargo run -- schema > {}` and commit it",
        schema::COMMITTED_PATH,
        schema::COMMITTED_PATH
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = crate::cli::common::Test::new().args(["schema"]).run();
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, schema::json_schema_text());
}

#[test]
fn shipped_specs_declare_and_satisfy_the_schema() {
    let validator = validator();
    let specs = shipped_specs();
    assert!(specs.len() >= 5, "{specs:?}");
    for path in specs {
        let text = std::fs::read_to_string(&path).unwrap();
        let depth = path.strip_prefix(repo_root()).unwrap().components().count() - 1;
        let expected = format!(
            "# yaml-language-server: $schema={}schemas/amlspec.schema.json\n",
            "../".repeat(depth)
        );
        assert!(
            text.starts_with(&expected),
            "{} must start with `{}`",
            path.display(),
            expected.trim()
        );
        for document in documents(&path) {
            assert_eq!(
                errors(&validator, &document),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn valid_corpus_satisfies_the_schema() {
    let validator = validator();
    for path in yaml_files(&repo_root().join("tests/corpus/valid"), false) {
        for document in documents(&path) {
            assert_eq!(
                errors(&validator, &document),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
        }
    }
}

/// Each invalid corpus file says whether the schema can see its problem:
/// `# schema: rejects` (it must refuse the file too) or `# schema: accepts` (the
/// problem needs more than a schema: files, references, variables, duplicates).
#[test]
fn schema_rejects_what_it_can_see() {
    let validator = validator();
    let mut rejected = 0;
    for path in yaml_files(&repo_root().join("tests/corpus/invalid"), false) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let expectation = text.lines().find_map(|l| l.strip_prefix("# schema: "));
        match expectation {
            Some("rejects") => {
                let documents = documents(&path);
                let refused =
                    documents.is_empty() || documents.iter().any(|d| !validator.is_valid(d));
                assert!(
                    refused,
                    "{}: the schema accepts it but must not",
                    path.display()
                );
                rejected += 1;
            }
            Some("accepts") => {
                for document in documents(&path) {
                    assert_eq!(
                        errors(&validator, &document),
                        Vec::<String>::new(),
                        "{}",
                        path.display()
                    );
                }
            }
            Some("n/a") | None if path.file_name().unwrap() == "empty.yaml" => {}
            Some("n/a") => {}
            other => panic!("{}: unexpected schema marker {other:?}", path.display()),
        }
        // Whatever the schema says, our validator refuses every file.
        let file = path.strip_prefix(repo_root()).unwrap().to_path_buf();
        assert!(
            spec::load(&[file], &env_vars()).has_errors(),
            "{}",
            path.display()
        );
    }
    assert!(
        rejected >= 40,
        "only {rejected} corpus files are checked against the schema"
    );
}

fn schema_properties(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                into.extend(properties.keys().cloned());
            }
            map.values().for_each(|v| schema_properties(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| schema_properties(v, into)),
        _ => {}
    }
}

fn yaml_keys(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                into.insert(key.clone());
                yaml_keys(value, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| yaml_keys(v, into)),
        _ => {}
    }
}

/// The reader and the schema know the same keys: `everything.yaml` uses every key the
/// schema lists, the reader accepts it without an unknown key, and the schema (with
/// `additionalProperties: false`) accepts it too.
#[test]
fn reader_and_schema_know_the_same_keys() {
    let mut in_schema = BTreeSet::new();
    schema_properties(&schema::json_schema(), &mut in_schema);
    let mut in_file = BTreeSet::new();
    for document in documents(&repo_root().join("tests/corpus/valid/everything.yaml")) {
        yaml_keys(&document, &mut in_file);
    }
    let missing: Vec<_> = in_schema.difference(&in_file).collect();
    assert!(
        missing.is_empty(),
        "everything.yaml does not use {missing:?}"
    );
    let loaded = spec::load(&["tests/corpus/valid/everything.yaml".into()], &env_vars());
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
}

/// Our positioned YAML loader reads the same values as yaml_serde.
#[test]
fn loader_agrees_with_yaml_serde() {
    let mut files = shipped_specs();
    files.extend(yaml_files(&repo_root().join("tests/corpus/valid"), false));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let ours: Vec<Value> = spec::yaml::parse(&text)
            .unwrap()
            .iter()
            .filter(|n| !n.is_null())
            .map(to_json)
            .collect();
        assert_eq!(ours, documents(&path), "{}", path.display());
    }
}

fn to_json(node: &spec::yaml::Node) -> Value {
    use spec::yaml::{ScalarKind, Value as Yaml};
    match &node.value {
        Yaml::Scalar(scalar) => match scalar.kind {
            ScalarKind::Null => Value::Null,
            ScalarKind::Bool(b) => Value::Bool(b),
            ScalarKind::Int(i) => Value::from(i),
            ScalarKind::Float(f) => Value::from(f),
            ScalarKind::Str => Value::String(scalar.text.clone()),
        },
        Yaml::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}

/// Each naming rule's hand-written check agrees with its schema pattern.
#[test]
fn naming_rules_agree_with_their_patterns() {
    let candidates = [
        "a",
        "ab",
        "abc",
        "pets-ws",
        "pets_ws",
        "pets.ws",
        "-abc",
        "_abc",
        "1abc",
        "gpu-1",
        "gpu-1a",
        "gpu-cluster-42",
        "GPU",
        "a b",
        "rg.",
        "rg(1)",
        "x-",
        "v1.2",
        "Ünï",
        "9",
        "a-",
        "a_",
        "ab-12c",
        "abc-",
        "abc-0",
    ];
    let long = [
        "x".repeat(24),
        "x".repeat(25),
        "x".repeat(33),
        "x".repeat(34),
        "x".repeat(90),
        "x".repeat(91),
        "x".repeat(255),
        "x".repeat(256),
    ];
    let rules = [
        &names::WORKSPACE,
        &names::CONNECTION,
        &names::COMPUTE,
        &names::ASSET,
        &names::EXISTING_ASSET,
        &names::ASSET_VERSION,
        &names::JOB,
        &names::EXPERIMENT,
        &names::RESOURCE_GROUP,
    ];
    for rule in rules {
        let pattern = jsonschema::draft7::new(
            &serde_json::json!({"type": "string", "pattern": rule.pattern}),
        )
        .unwrap();
        for name in candidates
            .iter()
            .copied()
            .chain(long.iter().map(String::as_str))
        {
            let by_pattern = pattern.is_valid(&Value::from(name));
            let by_check = rule.check(name).is_ok();
            assert_eq!(
                by_pattern, by_check,
                "{}: `{name}`: pattern says {by_pattern}, check says {by_check}",
                rule.what
            );
        }
    }
}
