//! `--target ADDRESS`: a plan narrowed to some resources and what they need, as
//! terraform's `-target` (for a change that must go first, or a resource to fix alone).

use std::collections::BTreeSet;

use super::{Address, Plan, Summary};
use crate::diagnostic::did_you_mean;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("--target `{target}` names no resource of the plan{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    Unknown {
        target: String,
        suggestion: Option<String>,
    },
}

/// Whether `address` is `target` or inside it (`ml-rg/pets-ws` holds the workspace's
/// registries, environments, clusters and jobs).
fn selects(target: &str, address: &Address) -> bool {
    let address = address.as_str();
    address == target
        || address
            .strip_prefix(target)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `plan` with only the resources the targets select and, transitively, those they
/// depend on; the summary counts what is left. Every target must select something.
pub fn targeted(mut plan: Plan, targets: &[String]) -> Result<Plan, TargetError> {
    if targets.is_empty() {
        return Ok(plan);
    }
    let all: Vec<&Address> = plan.resources().map(|r| &r.address).collect();
    for target in targets {
        let target = target.trim_end_matches('/');
        if !all.iter().any(|a| selects(target, a)) {
            return Err(TargetError::Unknown {
                target: target.to_string(),
                suggestion: did_you_mean(target, all.iter().map(|a| a.as_str()))
                    .map(str::to_string),
            });
        }
    }
    let mut kept: BTreeSet<Address> = all
        .iter()
        .filter(|a| targets.iter().any(|t| selects(t.trim_end_matches('/'), a)))
        .map(|a| (*a).clone())
        .collect();
    // What they need, and what that needs.
    loop {
        let needed: Vec<Address> = plan
            .resources()
            .filter(|r| kept.contains(&r.address))
            .flat_map(|r| r.depends_on.iter().cloned())
            .filter(|a| !kept.contains(a))
            .collect();
        if needed.is_empty() {
            break;
        }
        kept.extend(needed);
    }
    for workspace in &mut plan.workspaces {
        workspace.resources.retain(|r| kept.contains(&r.address));
    }
    plan.workspaces.retain(|w| !w.resources.is_empty());
    plan.summary = Summary::count(plan.resources());
    plan.targets = targets.to_vec();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{desired_with_files, nothing};

    const SPEC: &str = "workspace:\n  name: pets-ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  location: westeurope\n  create_if_missing: true\nenvironments:\n  - name: plain\n    image: ubuntu:22.04\nclusters:\n  - name: gpu\n    vm_size: STANDARD_NC6\n    max_nodes: 2\n  - name: cpu\n    vm_size: Standard_DS3_v2\n    max_nodes: 2\njobs:\n  - name: a\n    command: python a.py\n    source_directory: src\n    environment: plain\n    cluster: gpu\n";

    fn addresses(plan: &Plan) -> Vec<String> {
        plan.resources().map(|r| r.address.to_string()).collect()
    }

    #[test]
    fn a_target_keeps_itself_and_what_it_needs() {
        let desired = desired_with_files(SPEC, &[("src/a.py", "print(1)\n")]);
        let plan = crate::plan::plan(&desired, &nothing(&desired));
        let everything = addresses(&plan);
        assert_eq!(targeted(plan.clone(), &[]).unwrap(), plan, "no target: all");

        let cpu = targeted(plan.clone(), &["rg/pets-ws/cluster/cpu".into()]).unwrap();
        assert_eq!(
            addresses(&cpu),
            [
                "rg",
                "rg/storage_account/petswsad13817e",
                "rg/key_vault/petsws-ad13817e",
                "rg/application_insights/pets-ws-insights",
                "rg/pets-ws",
                "rg/pets-ws/cluster/cpu",
            ]
        );
        assert_eq!(cpu.summary.create, 6);
        assert_eq!(cpu.targets, ["rg/pets-ws/cluster/cpu"]);

        // A job needs its cluster and environment, not the other cluster.
        let job = plan
            .resources()
            .find(|r| r.kind == crate::plan::Kind::Job)
            .unwrap()
            .address
            .to_string();
        let with_job = addresses(&targeted(plan.clone(), &[job]).unwrap());
        assert!(with_job.iter().any(|a| a.ends_with("cluster/gpu")));
        assert!(with_job.iter().any(|a| a.contains("environment/plain")));
        assert!(!with_job.iter().any(|a| a.ends_with("cluster/cpu")));

        // A workspace holds its children; a trailing slash is the same.
        for target in ["rg/pets-ws", "rg/pets-ws/"] {
            assert_eq!(
                addresses(&targeted(plan.clone(), &[target.into()]).unwrap()),
                everything
            );
        }
        // A prefix that is not a whole segment selects nothing.
        assert_eq!(
            targeted(plan.clone(), &["rg/pets-ws/cluster/cp".into()]),
            Err(TargetError::Unknown {
                target: "rg/pets-ws/cluster/cp".into(),
                suggestion: Some("rg/pets-ws/cluster/cpu".into()),
            })
        );
    }
}
