//! Saved plans (`plan --out`): reading one back, and telling whether it still describes
//! what apply would do.

use indexmap::IndexMap;
use serde_json::Value;

use super::{FORMAT_VERSION, Plan, ResourceChange};

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the saved plan `{path}`: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
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

/// Read a plan saved with `plan --out`.
pub fn load_saved(path: &std::path::Path) -> Result<Plan, SavedPlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| SavedPlanError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let found = value
        .get("format_version")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    if found != FORMAT_VERSION {
        return Err(SavedPlanError::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    serde_json::from_value(value).map_err(|e| SavedPlanError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
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
