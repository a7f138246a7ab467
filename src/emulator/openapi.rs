//! Azure ML's OpenAPI (Swagger 2.0) as JSON Schema, for checking request bodies the way
//! the service does (required fields, enums, patterns, polymorphic discriminators).
//!
//! The vendored `openapi.json` (api-version 2026-07-01) and its common types are embedded.
//! Conversion rules: `$ref`s are rewritten to one `definitions` map (common types get a
//! `file__` prefix); `x-nullable` admits null; a definition with a `discriminator` gets a
//! `Name__poly` companion that dispatches on the discriminator value to the derived
//! definition (`x-ms-discriminator-value`, else its name), and every reference outside an
//! `allOf` points at the companion; Swagger's boolean `exclusiveMinimum` becomes draft-07's
//! number form; read-only properties are dropped from `required` (Azure ignores them in
//! requests).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::reply::ArmError;

const OPENAPI: &str = include_str!("../../tests/fixtures/azure-rest-specs/2026-07-01/openapi.json");
const TYPES: &str = include_str!(
    "../../tests/fixtures/azure-rest-specs/2026-07-01/common-types/resource-management/v3/types.json"
);
const MANAGED_IDENTITY: &str = include_str!(
    "../../tests/fixtures/azure-rest-specs/2026-07-01/common-types/resource-management/v3/managedidentity.json"
);
const PRIVATE_LINKS: &str = include_str!(
    "../../tests/fixtures/azure-rest-specs/2026-07-01/common-types/resource-management/v3/privatelinks.json"
);

/// The raw OpenAPI document of Azure ML (2026-07-01).
pub fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(OPENAPI).expect("vendored openapi.json parses"))
}

/// Every definition of the OpenAPI and its common types, converted to draft-07 JSON Schema
/// under `definitions`. Validate against `{"$ref": "#/definitions/<Name>__poly"}` for a
/// polymorphic type, `#/definitions/<Name>` otherwise.
pub fn json_schema_definitions() -> &'static Value {
    static DEFS: OnceLock<Value> = OnceLock::new();
    DEFS.get_or_init(|| build_definitions(false))
}

/// The same definitions as the service applies them to requests: string dictionaries such
/// as an asset's `properties` or a job's `environmentVariables` also take numbers and
/// booleans, which the service's JSON reader turns into strings (azure-ai-ml sends
/// `"hash_version": 202208`). `tags` and connection `metadata` take strings only, as the
/// OpenAPI says, for every resource alike; null only where the OpenAPI admits it.
fn request_definitions() -> &'static Value {
    static DEFS: OnceLock<Value> = OnceLock::new();
    DEFS.get_or_init(|| build_definitions(true))
}

/// The name under `definitions` that an OpenAPI `$ref` (from `openapi.json`) points at,
/// with the `__poly` companion chosen for discriminated bases.
pub fn definition_name(reference: &str) -> String {
    let name = ref_target(reference, "");
    let poly = format!("{name}__poly");
    if json_schema_definitions().get(&poly).is_some() {
        poly
    } else {
        name
    }
}

fn file_prefix(file: &str) -> &'static str {
    match file {
        "types.json" => "types__",
        "managedidentity.json" => "managedidentity__",
        "privatelinks.json" => "privatelinks__",
        _ => "",
    }
}

fn build_definitions(lenient: bool) -> Value {
    // Every raw definition under its full name (common types get a file prefix).
    let mut raw: BTreeMap<String, (&'static str, Value)> = BTreeMap::new();
    for (file, text) in [
        ("", OPENAPI),
        ("types.json", TYPES),
        ("managedidentity.json", MANAGED_IDENTITY),
        ("privatelinks.json", PRIVATE_LINKS),
    ] {
        let doc: Value = serde_json::from_str(text).expect("vendored spec parses");
        let prefix = file_prefix(file);
        for (name, def) in doc["definitions"].as_object().into_iter().flatten() {
            raw.insert(format!("{prefix}{name}"), (prefix, def.clone()));
        }
    }
    // Discriminated bases (name -> discriminator property) and each definition's parents.
    let mut bases: BTreeMap<String, String> = BTreeMap::new();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (full, (prefix, def)) in &raw {
        if let Some(d) = def.get("discriminator").and_then(Value::as_str) {
            bases.insert(full.clone(), d.to_string());
        }
        for part in def["allOf"].as_array().into_iter().flatten() {
            if let Some(r) = part.get("$ref").and_then(Value::as_str) {
                parents
                    .entry(full.clone())
                    .or_default()
                    .push(ref_target(r, prefix));
            }
        }
    }
    let mut out = Map::new();
    for (full, (prefix, def)) in &raw {
        out.insert(full.clone(), convert(def, prefix, &bases, false, lenient));
    }
    for (base, prop) in &bases {
        let mut branches = vec![json!({ "$ref": format!("#/definitions/{base}") })];
        for derived in parents.keys() {
            if !descends_from(derived, base, &parents) {
                continue;
            }
            let short = derived.rsplit("__").next().unwrap_or(derived);
            let value = raw[derived]
                .1
                .get("x-ms-discriminator-value")
                .and_then(Value::as_str)
                .unwrap_or(short);
            branches.push(json!({
                "if": { "properties": { prop: { "const": value } }, "required": [prop] },
                "then": { "$ref": format!("#/definitions/{derived}") },
            }));
        }
        out.insert(format!("{base}__poly"), json!({ "allOf": branches }));
    }
    Value::Object(out)
}

fn descends_from(name: &str, base: &str, parents: &BTreeMap<String, Vec<String>>) -> bool {
    let mut stack = vec![name.to_string()];
    let mut seen = 0;
    while let Some(n) = stack.pop() {
        seen += 1;
        if seen > 64 {
            return false;
        }
        for p in parents.get(&n).into_iter().flatten() {
            if p == base {
                return true;
            }
            stack.push(p.clone());
        }
    }
    false
}

/// Full definition name a `$ref` points at.
fn ref_target(r: &str, current_prefix: &str) -> String {
    let (file, pointer) = r.split_once('#').unwrap_or(("", r));
    let name = pointer.rsplit('/').next().unwrap_or(pointer);
    let file = file.rsplit('/').next().unwrap_or(file);
    let prefix = if file.is_empty() {
        current_prefix
    } else {
        file_prefix(file)
    };
    format!("{prefix}{name}")
}

fn convert(
    node: &Value,
    prefix: &str,
    bases: &BTreeMap<String, String>,
    in_all_of: bool,
    lenient: bool,
) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    let nullable = obj.get("x-nullable").and_then(Value::as_bool) == Some(true);
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let target = ref_target(r, prefix);
        let target = if !in_all_of && bases.contains_key(&target) {
            format!("{target}__poly")
        } else {
            target
        };
        let r = json!({ "$ref": format!("#/definitions/{target}") });
        return if nullable {
            json!({ "anyOf": [r, { "type": "null" }] })
        } else {
            r
        };
    }
    let mut out = Map::new();
    let read_only: Vec<String> = obj
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(_, p)| p.get("readOnly").and_then(Value::as_bool) == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in obj {
        match k.as_str() {
            "type" => {
                if v == "file" {
                    continue;
                }
                out.insert(
                    k.clone(),
                    if nullable {
                        json!([v, "null"])
                    } else {
                        v.clone()
                    },
                );
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(pk, pv)| {
                        let mut converted = convert(pv, prefix, bases, false, lenient);
                        if lenient && !STRICT_MAPS.contains(&pk.as_str()) {
                            widen_string_map(&mut converted);
                        }
                        (pk.clone(), converted)
                    })
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "required" => {
                let req: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| !read_only.iter().any(|r| Some(r.as_str()) == n.as_str()))
                    .cloned()
                    .collect();
                if !req.is_empty() {
                    out.insert(k.clone(), Value::Array(req));
                }
            }
            "items" => {
                out.insert(k.clone(), convert(v, prefix, bases, false, lenient));
            }
            "additionalProperties" => {
                let value = if v.is_object() {
                    convert(v, prefix, bases, false, lenient)
                } else {
                    v.clone()
                };
                out.insert(k.clone(), value);
            }
            "allOf" => {
                let parts: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| convert(p, prefix, bases, true, lenient))
                    .collect();
                out.insert(k.clone(), Value::Array(parts));
            }
            "enum" => {
                let mut values = v.as_array().cloned().unwrap_or_default();
                if nullable {
                    values.push(Value::Null);
                }
                out.insert(k.clone(), Value::Array(values));
            }
            "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                if v == true
                    && let Some(b) = obj.get(bound)
                {
                    out.insert(k.clone(), b.clone());
                }
            }
            "minimum" | "maximum" => {
                let exclusive = if k == "minimum" {
                    "exclusiveMinimum"
                } else {
                    "exclusiveMaximum"
                };
                if obj.get(exclusive) != Some(&Value::Bool(true)) {
                    out.insert(k.clone(), v.clone());
                }
            }
            "pattern" | "minLength" | "maxLength" | "minItems" | "maxItems" | "uniqueItems"
            | "format" | "readOnly" => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    // Swagger's integer formats bound the value; JSON Schema needs it spelled out.
    let bounds = match obj.get("format").and_then(Value::as_str) {
        Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
        Some("int64") => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    if let Some((min, max)) = bounds
        && obj.get("type").and_then(Value::as_str) == Some("integer")
    {
        out.entry("minimum").or_insert(json!(min));
        out.entry("maximum").or_insert(json!(max));
    }
    if nullable && !out.contains_key("type") && !out.contains_key("enum") {
        return json!({ "anyOf": [Value::Object(out), { "type": "null" }] });
    }
    Value::Object(out)
}

/// String maps that hold strings only, also in requests.
const STRICT_MAPS: [&str; 2] = ["tags", "metadata"];

/// Lets a string map's values also be numbers and booleans (see [`request_definitions`]).
fn widen_string_map(schema: &mut Value) {
    let Some(values) = schema
        .get_mut("additionalProperties")
        .filter(|v| v.is_object())
    else {
        return;
    };
    let widened = match &values["type"] {
        t if *t == json!("string") => json!(["string", "number", "boolean"]),
        t if *t == json!(["string", "null"]) => json!(["string", "number", "boolean", "null"]),
        _ => return,
    };
    values["type"] = widened;
}

type Cache = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

fn validator(name: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(name).cloned()) {
        return v;
    }
    let defs = request_definitions();
    let target = if defs.get(format!("{name}__poly")).is_some() {
        format!("{name}__poly")
    } else {
        name.to_string()
    };
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": format!("#/definitions/{target}"),
        "definitions": defs,
    });
    let v = Arc::new(
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(false)
            .build(&schema)
            .expect("converted OpenAPI definitions compile"),
    );
    if let Ok(mut c) = cache.lock() {
        c.insert(name.to_string(), v.clone());
    }
    v
}

/// Definitions the emulator checks request bodies against.
const REQUEST_DEFINITIONS: [&str; 13] = [
    "Workspace",
    "WorkspaceUpdateParameters",
    "ComputeResource",
    "ClusterUpdateParameters",
    "WorkspaceConnectionPropertiesV2BasicResource",
    "WorkspaceConnectionUpdateParameter",
    "Datastore",
    "CodeContainer",
    "CodeVersion",
    "EnvironmentContainer",
    "EnvironmentVersion",
    "PendingUploadRequestDto",
    "JobBase",
];

/// Parses the OpenAPI and compiles every request validator, so the first requests do not
/// pay for it. Run on a background thread at start.
pub(crate) fn prewarm() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for name in REQUEST_DEFINITIONS {
            let _ = validator(name);
        }
    });
}

/// Checks a request body against an OpenAPI definition; the error is Azure ML's 400.
pub(crate) fn validate_body(definition: &str, body: &Value) -> Result<(), ArmError> {
    let v = validator(definition);
    let mut details = Vec::new();
    for e in v.iter_errors(body) {
        let path = e.instance_path().to_string();
        let target = path.trim_start_matches('/').replace('/', ".");
        let code = if e.to_string().contains("is a required property") {
            "Required"
        } else {
            "Invalid"
        };
        details.push(json!({
            "code": code,
            "message": format!("{e}"),
            "target": if target.is_empty() { "body".to_string() } else { target },
        }));
        if details.len() >= 10 {
            break;
        }
    }
    if details.is_empty() {
        return Ok(());
    }
    let first = details[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let target = details[0]["target"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Err(ArmError::user_error(format!(
        "The request body is not a valid {definition}: {first} (at '{target}')."
    ))
    .with_details(details))
}

/// Whether `text` matches an OpenAPI `pattern` (ECMA-style, lookarounds allowed). Each
/// pattern is compiled once: every PUT of a named resource checks one.
pub(crate) fn matches_pattern(pattern: &str, text: &str) -> bool {
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<fancy_regex::Regex>>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| Mutex::new(HashMap::new()));
    let regex = {
        let mut compiled = compiled
            .lock()
            .expect("the pattern cache is never poisoned");
        compiled
            .entry(pattern.to_string())
            .or_insert_with(|| fancy_regex::Regex::new(pattern).ok())
            .clone()
    };
    regex.and_then(|re| re.is_match(text).ok()).unwrap_or(false)
}

/// One operation of the OpenAPI, ready to match request paths against.
struct Operation {
    method: String,
    /// Template segments: a literal (lower case), or `Err(name)` where a path parameter stands.
    segments: Vec<Result<String, String>>,
    literals: usize,
    parameters: Vec<&'static Value>,
}

fn operations() -> &'static [Operation] {
    static OPS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPS.get_or_init(|| {
        let doc = openapi();
        let mut ops = Vec::new();
        for (template, item) in doc["paths"].as_object().into_iter().flatten() {
            let segments: Vec<Result<String, String>> = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Err(name.to_string()),
                        None => Ok(s.to_ascii_lowercase()),
                    },
                )
                .collect();
            let literals = segments.iter().filter(|s| s.is_ok()).count();
            let shared: Vec<&'static Value> = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(resolve_parameter)
                .collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                let Some(list) = op.get("parameters").and_then(Value::as_array) else {
                    continue;
                };
                let mut parameters = shared.clone();
                parameters.extend(list.iter().filter_map(resolve_parameter));
                ops.push(Operation {
                    method: method.to_ascii_uppercase(),
                    segments: segments.clone(),
                    literals,
                    parameters,
                });
            }
        }
        // The most specific template wins (`.../versions/{version}` over `.../{name}`).
        ops.sort_by_key(|o| std::cmp::Reverse(o.literals));
        ops
    })
}

/// A parameter definition, following `$ref`s into the document's or the common types'
/// `parameters` section.
fn resolve_parameter(p: &'static Value) -> Option<&'static Value> {
    static TYPES_DOC: OnceLock<Value> = OnceLock::new();
    let Some(r) = p.get("$ref").and_then(Value::as_str) else {
        return Some(p);
    };
    let (file, pointer) = r.split_once('#')?;
    let doc = if file.is_empty() {
        openapi()
    } else if file.ends_with("types.json") {
        TYPES_DOC.get_or_init(|| serde_json::from_str(TYPES).expect("vendored types.json parses"))
    } else {
        return None;
    };
    doc.pointer(pointer)
}

fn find_operation(method: &str, segs: &[String]) -> Option<&'static Operation> {
    let fits = |o: &&Operation| {
        o.segments.len() == segs.len()
            && o.segments.iter().zip(segs).all(|(t, s)| match t {
                Ok(lit) => lit.eq_ignore_ascii_case(s),
                Err(_) => true,
            })
    };
    let all = operations();
    // A method the path does not define still has its path parameters checked.
    all.iter()
        .filter(fits)
        .find(|o| o.method.eq_ignore_ascii_case(method))
        .or_else(|| all.iter().find(fits))
}

fn invalid(target: &str, message: String) -> ArmError {
    ArmError::bad_request("ValidationError", message).with_target(target.to_string())
}

/// Checks a request's path and query parameters against its OpenAPI operation: path
/// names (pattern, length), query enums, integers and booleans, required query
/// parameters. `api-version` is checked per provider elsewhere; unknown query
/// parameters are ignored, as Azure ignores them.
pub(crate) fn check_parameters(
    method: &str,
    segs: &[String],
    query: &[(String, String)],
) -> Result<(), ArmError> {
    let Some(op) = find_operation(method, segs) else {
        return Ok(());
    };
    let same_method = op.method.eq_ignore_ascii_case(method);
    for p in &op.parameters {
        let Some(name) = p["name"].as_str() else {
            continue;
        };
        match p["in"].as_str() {
            Some("path") => {
                let Some(i) = op
                    .segments
                    .iter()
                    .position(|s| s.as_ref().err().map(String::as_str) == Some(name))
                else {
                    continue;
                };
                check_path_value(p, name, &segs[i])?;
            }
            Some("query") if same_method && name != "api-version" => {
                match query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    Some((_, value)) => check_query_value(p, name, value)?,
                    None if p["required"] == true => {
                        return Err(invalid(
                            name,
                            format!("The query parameter '{name}' is required."),
                        ));
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_path_value(p: &Value, name: &str, value: &str) -> Result<(), ArmError> {
    let length = value.chars().count() as u64;
    let too_short = p["minLength"].as_u64().is_some_and(|min| length < min);
    let too_long = p["maxLength"].as_u64().is_some_and(|max| length > max);
    if too_short || too_long {
        return Err(invalid(
            name,
            format!(
                "The {name} '{value}' is invalid: its length must be between {} and {} characters.",
                p["minLength"].as_u64().unwrap_or(0),
                p["maxLength"]
                    .as_u64()
                    .map_or("any".to_string(), |m| m.to_string())
            ),
        ));
    }
    if let Some(pattern) = p["pattern"].as_str()
        && !matches_pattern(pattern, value)
    {
        return Err(invalid(
            name,
            format!("The {name} '{value}' is invalid: it must match the pattern '{pattern}'."),
        ));
    }
    Ok(())
}

fn check_query_value(p: &Value, name: &str, value: &str) -> Result<(), ArmError> {
    let bad = |why: String| {
        invalid(
            name,
            format!("The query parameter '{name}' has the invalid value '{value}': {why}."),
        )
    };
    match p["type"].as_str() {
        Some("integer") => {
            let n: i64 = value
                .parse()
                .map_err(|_| bad("expected an integer".into()))?;
            let (mut min, mut max) = match p["format"].as_str() {
                Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
                _ => (i64::MIN, i64::MAX),
            };
            if let Some(m) = p["minimum"].as_i64() {
                min = min.max(m);
            }
            if let Some(m) = p["maximum"].as_i64() {
                max = max.min(m);
            }
            if n < min || n > max {
                return Err(bad(format!("expected an integer from {min} to {max}")));
            }
        }
        Some("boolean")
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") =>
        {
            return Err(bad("expected true or false".into()));
        }
        _ => {}
    }
    if let Some(values) = p["enum"].as_array() {
        let allowed: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
            return Err(bad(format!("expected one of {}", allowed.join(", "))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminated_bodies_are_checked() {
        let good = json!({
            "location": "eastus",
            "properties": { "computeType": "AmlCompute", "properties": { "scaleSettings": { "maxNodeCount": 1 } } }
        });
        assert!(validate_body("ComputeResource", &good).is_ok());
        let missing = json!({
            "properties": { "computeType": "AmlCompute", "properties": { "scaleSettings": { "minNodeCount": 1 } } }
        });
        let e = validate_body("ComputeResource", &missing).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("maxNodeCount"), "{}", e.message);
        let bad_enum = json!({ "properties": { "computeType": "Abacus" } });
        assert!(validate_body("ComputeResource", &bad_enum).is_err());
        let bad_priority = json!({
            "properties": { "computeType": "AmlCompute", "properties": { "vmPriority": "Sometimes" } }
        });
        assert!(validate_body("ComputeResource", &bad_priority).is_err());
    }

    #[test]
    fn path_and_query_parameters_come_from_the_spec() {
        let ws = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1";
        let segs = |path: String| -> Vec<String> {
            path.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let cases = [
            ("GET", format!("{ws}/computes/gpu-cluster"), vec![], true),
            (
                "DELETE",
                format!("{ws}/computes/gpu-cluster-1"),
                vec![],
                false,
            ),
            ("PUT", format!("{ws}/computes/1gpu"), vec![], false),
            (
                "GET",
                format!("{ws}/jobs"),
                vec![("listViewType", "All")],
                true,
            ),
            (
                "GET",
                format!("{ws}/jobs"),
                vec![("listviewtype", "sometimes")],
                false,
            ),
            (
                "GET",
                format!("{ws}/codes/c/versions"),
                vec![("$top", "2")],
                true,
            ),
            (
                "GET",
                format!("{ws}/codes/c/versions"),
                vec![("$top", "2.5")],
                false,
            ),
            (
                "GET",
                format!("{ws}/datastores"),
                vec![("isDefault", "TRUE")],
                true,
            ),
            (
                "GET",
                format!("{ws}/datastores"),
                vec![("isDefault", "1")],
                false,
            ),
            ("GET", format!("{ws}/unknown/thing"), vec![("x", "y")], true),
        ];
        for (method, path, query, ok) in cases {
            let query: Vec<(String, String)> = query
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            assert_eq!(
                check_parameters(method, &segs(path.clone()), &query).is_ok(),
                ok,
                "{method} {path} {query:?}"
            );
        }
    }
}
