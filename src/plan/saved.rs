//! Saved plans (`plan --out`): reading one back, and telling whether it still describes
//! what apply would do.

use indexmap::IndexMap;
use serde_json::Value;

use super::{FORMAT_VERSION, Plan, ResourceChange};

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("`{path}` is not a saved amlspec plan: {message}")]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
    #[error(
        "`{path}` is a plan of format version {found}; this amlspec reads version {FORMAT_VERSION}: make the plan again"
    )]
    Version {
        path: std::path::PathBuf,
        found: u32,
    },
}

/// A plan saved with `plan --out`, from its text (`path` names it in errors; the
/// caller reads the file: the plan stage does no I/O).
pub fn parse_saved(path: &std::path::Path, text: &str) -> Result<Plan, SavedPlanError> {
    let parse_error = |e: serde_json::Error| SavedPlanError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    /// Only the version, first: a plan of another version need not parse as this one.
    #[derive(serde::Deserialize)]
    struct Versioned {
        format_version: Option<Value>,
    }
    let versioned: Versioned = serde_json::from_str(text).map_err(parse_error)?;
    let found = versioned
        .format_version
        .as_ref()
        .and_then(Value::as_u64)
        .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX));
    if found != FORMAT_VERSION {
        return Err(SavedPlanError::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    // Straight from the text, so attributes keep the order they were saved in.
    serde_json::from_str(text).map_err(parse_error)
}

/// What moved between a saved plan and a plan made now from the same specs: specs that
/// changed, live resources whose fingerprint changed, resources whose action changed.
/// Empty: the saved plan still describes what apply would do.
pub fn stale(saved: &Plan, fresh: &Plan) -> Vec<String> {
    let mut moved = Vec::new();
    if saved.manifest_digest != fresh.manifest_digest {
        moved.push(
            "the specs (or the files and variables they use) changed since the plan was made"
                .to_string(),
        );
    }
    let fresh_by_address: IndexMap<&str, &ResourceChange> =
        fresh.resources().map(|r| (r.address.as_str(), r)).collect();
    let saved_by_address: IndexMap<&str, &ResourceChange> =
        saved.resources().map(|r| (r.address.as_str(), r)).collect();
    for (address, old) in &saved_by_address {
        let Some(new) = fresh_by_address.get(address) else {
            moved.push(format!(
                "{address}: in the saved plan, no longer in the specs"
            ));
            continue;
        };
        if old.after != new.after {
            moved.push(format!("{address}: its desired attributes changed"));
        }
        if old.fingerprint != new.fingerprint {
            let what = match (&old.fingerprint, &new.fingerprint) {
                (None, Some(_)) => "was missing, now exists in Azure",
                (Some(_), None) => "existed, now is gone from Azure",
                _ => "changed in Azure",
            };
            moved.push(format!("{address}: {what}"));
        }
        if old.action != new.action {
            moved.push(format!(
                "{address}: was to {}, now {}",
                old.action.name(),
                new.action.name()
            ));
        }
    }
    for address in fresh_by_address
        .keys()
        .filter(|a| !saved_by_address.contains_key(*a))
    {
        moved.push(format!("{address}: new since the plan was made"));
    }
    moved.dedup();
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Live;
    use crate::plan::testing::{WORKSPACE, desired, live_cluster, live_workspace, observed};

    const CLUSTER: &str = "clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 4\n";

    /// The plan of `spec` against a present workspace and `clusters` (one per cluster).
    fn plan_of(spec: &str, clusters: Vec<Live<crate::observe::live::LiveCompute>>) -> Plan {
        let desired = desired(spec);
        crate::plan::plan_with_digest(
            &desired,
            &observed(Live::Present(live_workspace("westeurope")), clusters),
            crate::plan::manifest_digest(&desired),
        )
    }

    #[test]
    fn only_a_plan_of_this_format_version_is_read() {
        let path = std::path::Path::new("plan.json");
        let plan = plan_of(&format!("{WORKSPACE}{CLUSTER}"), vec![Live::Missing]);
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(parse_saved(path, &text).unwrap(), plan);
        let older = text.replace(
            &format!("\"format_version\":{FORMAT_VERSION}"),
            "\"format_version\":1",
        );
        assert!(matches!(
            parse_saved(path, &older),
            Err(SavedPlanError::Version { found: 1, .. })
        ));
        assert!(matches!(
            parse_saved(path, "{\"format_version\": 2, \"workspaces\": 3}"),
            Err(SavedPlanError::Parse { .. })
        ));
        assert!(matches!(
            parse_saved(path, "not json"),
            Err(SavedPlanError::Parse { .. })
        ));
    }

    #[test]
    fn a_saved_plan_is_stale_when_the_specs_or_azure_moved() {
        let spec = format!("{WORKSPACE}{CLUSTER}");
        let saved = plan_of(&spec, vec![Live::Missing]);
        assert_eq!(stale(&saved, &saved.clone()), Vec::<String>::new());

        let cluster = "rg/pets-ws/cluster/gpu";
        let digest =
            "the specs (or the files and variables they use) changed since the plan was made";
        let cases: Vec<(&str, Plan, Vec<String>)> = vec![
            (
                "a desired attribute changed",
                plan_of(
                    &spec.replace("max_nodes: 4", "max_nodes: 5"),
                    vec![Live::Missing],
                ),
                vec![
                    digest.to_string(),
                    format!("{cluster}: its desired attributes changed"),
                ],
            ),
            (
                "the cluster was created meanwhile",
                plan_of(
                    &spec,
                    vec![Live::Present(live_cluster("STANDARD_NC6", 0, 4))],
                ),
                vec![
                    format!("{cluster}: was missing, now exists in Azure"),
                    format!("{cluster}: was to create, now no change"),
                ],
            ),
            (
                "the cluster is no longer declared",
                plan_of(WORKSPACE, Vec::new()),
                vec![
                    digest.to_string(),
                    format!("{cluster}: in the saved plan, no longer in the specs"),
                ],
            ),
            (
                "a cluster was added to the specs",
                plan_of(
                    &format!(
                        "{spec}  - name: cpu\n    vm_size: Standard_DS3_v2\n    max_nodes: 1\n"
                    ),
                    vec![Live::Missing, Live::Missing],
                ),
                vec![
                    digest.to_string(),
                    "rg/pets-ws/cluster/cpu: new since the plan was made".to_string(),
                ],
            ),
        ];
        for (what, fresh, expected) in cases {
            assert_eq!(stale(&saved, &fresh), expected, "{what}");
        }
        // And the other way: a cluster that existed is gone.
        let with_cluster = plan_of(
            &spec,
            vec![Live::Present(live_cluster("STANDARD_NC6", 0, 4))],
        );
        assert_eq!(
            stale(&with_cluster, &saved),
            [
                format!("{cluster}: existed, now is gone from Azure"),
                format!("{cluster}: was to no change, now create"),
            ]
        );
    }

    #[test]
    fn the_manifest_digest_covers_every_desired_attribute_and_nothing_else() {
        let spec = format!("{WORKSPACE}{CLUSTER}");
        let digest = |text: &str| crate::plan::manifest_digest(&desired(text));
        let base = digest(&spec);
        assert_eq!(base.len(), 64, "a sha256 in hex");
        assert_eq!(base, digest(&spec), "the same specs, the same digest");
        for changed in [
            spec.replace("max_nodes: 4", "max_nodes: 3"),
            spec.replace("Standard_NC6", "Standard_NC12"),
            spec.replace("name: gpu", "name: gpu2"),
            spec.replace("location: westeurope", "location: northeurope"),
            WORKSPACE.to_string(),
        ] {
            assert_ne!(digest(&changed), base, "{changed}");
        }
        // Comments and formatting are not the manifest.
        assert_eq!(digest(&format!("# a comment\n{spec}")), base);
    }
}
