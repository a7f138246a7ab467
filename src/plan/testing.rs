//! Helpers of the plan's unit tests: a desired state from spec text, live resources.

use std::collections::BTreeMap;

use crate::desired::Desired;
use crate::observe::live::{LiveCompute, LiveWorkspace};
use crate::observe::{Live, Observed, ObservedWorkspace};
use crate::spec::interpolate::EnvVars;

/// The desired state of one spec text.
pub fn desired(yaml: &str) -> Desired {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, yaml).unwrap();
    let loaded = crate::spec::load(&[path], &EnvVars::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.problems);
    crate::desired::desired(&loaded.specs.unwrap()).unwrap()
}

/// The variables registry passwords of unit-test specs come from: `${P}` and `${Q}`.
pub fn password_vars() -> EnvVars {
    [
        ("P", "a-long-enough-password-value"),
        ("Q", "another-password-value"),
    ]
    .into_iter()
    .collect()
}

/// The loaded specs of one spec text, whose passwords come from [`password_vars`].
pub fn specs_with_passwords(yaml: &str) -> crate::spec::model::Specs {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, yaml).unwrap();
    let loaded = crate::spec::load(&[path], &password_vars());
    assert!(!loaded.has_errors(), "{:#?}", loaded.problems);
    loaded.specs.unwrap()
}

/// The desired state of one spec text, whose passwords come from [`password_vars`].
pub fn desired_with_passwords(yaml: &str) -> Desired {
    crate::desired::desired(&specs_with_passwords(yaml)).unwrap()
}

pub const WORKSPACE: &str = "workspace:\n  name: pets-ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  location: westeurope\n";

pub fn live_workspace(location: &str) -> LiveWorkspace {
    LiveWorkspace {
        location: location.to_string(),
        description: None,
        tags: BTreeMap::new(),
        provisioning_state: Some("Succeeded".into()),
        fingerprint: "f".into(),
    }
}

pub fn observed(workspace: Live<LiveWorkspace>, clusters: Vec<Live<LiveCompute>>) -> Observed {
    Observed {
        workspaces: vec![ObservedWorkspace {
            workspace,
            resource_group_exists: Some(true),
            dependencies: None,
            registries: Vec::new(),
            environments: Vec::new(),
            existing_environments: Vec::new(),
            clusters,
            codes: Vec::new(),
            jobs: Vec::new(),
            images: Default::default(),
        }],
        preflight: crate::observe::Preflight::NONE,
        regions: Vec::new(),
    }
}

pub fn live_cluster(vm_size: &str, min: u64, max: u64) -> LiveCompute {
    LiveCompute {
        compute_type: Some("AmlCompute".into()),
        vm_size: Some(vm_size.into()),
        vm_priority: Some("Dedicated".into()),
        min_nodes: Some(min),
        max_nodes: Some(max),
        idle_seconds: Some(120),
        description: None,
        tags: BTreeMap::new(),
        provisioning_state: Some("Succeeded".into()),
        fingerprint: "c".into(),
        current_nodes: Some(0),
    }
}

/// The desired state of a spec text written beside `files` (relative path, content).
pub fn desired_with_files(yaml: &str, files: &[(&str, &str)]) -> Desired {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, yaml).unwrap();
    let loaded = crate::spec::load(&[path], &EnvVars::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.problems);
    crate::desired::desired(&loaded.specs.unwrap()).unwrap()
}

/// Nothing of `desired` exists, not even its resource groups.
pub fn nothing(desired: &Desired) -> Observed {
    fn not_read<T>(n: usize) -> Vec<Live<T>> {
        (0..n).map(|_| Live::NotRead).collect()
    }
    Observed {
        workspaces: desired
            .workspaces
            .iter()
            .map(|ws| ObservedWorkspace {
                workspace: Live::Missing,
                resource_group_exists: Some(false),
                dependencies: None,
                registries: not_read(ws.registries.len()),
                environments: not_read(ws.environments.len()),
                existing_environments: not_read(ws.existing_environments.len()),
                clusters: not_read(ws.clusters.len()),
                codes: not_read(ws.codes.len()),
                jobs: not_read(ws.jobs.len()),
                images: Default::default(),
            })
            .collect(),
        preflight: crate::observe::Preflight::NONE,
        regions: Vec::new(),
    }
}
