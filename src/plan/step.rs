//! A plan as work: one `Step` per change the plan decided (create, update in place,
//! replace), with its request body built and every id resolved, plus one step per code
//! snapshot to upload. Pure: `apply` executes steps and decides nothing.

use serde_json::Value;

use super::{Action, Address, BuildContextFact, CodeFact, Facts, Kind, Plan, ResourceChange};
use crate::bodies;
use crate::desired::{Desired, DesiredCode, DesiredEnvironment, DesiredWorkspace};
use crate::ids::ResourceId;

/// One unit of apply's work.
#[derive(Debug, Clone)]
pub struct Step {
    pub address: Address,
    pub kind: Kind,
    /// Create, update or replace.
    pub action: Action,
    /// Steps that must succeed first (only steps: what exists already is not waited for).
    pub depends_on: Vec<Address>,
    pub work: Work,
}

/// What a step sends.
#[derive(Debug, Clone)]
pub enum Work {
    /// PUT the body; a long-running answer is waited for.
    Put { id: ResourceId, body: Body },
    /// PATCH the body; a long-running answer is waited for.
    Patch { id: ResourceId, body: Body },
    /// DELETE (waited for), then PUT the body: a cluster whose fixed settings changed.
    Replace { id: ResourceId, body: Body },
    /// A key vault, whose body needs the subscription's tenant (read first).
    KeyVault { id: ResourceId, location: String },
    /// Upload the build context to the workspace's default datastore under its content
    /// hash, then PUT the environment version that names it.
    Environment {
        id: ResourceId,
        workspace: ResourceId,
        environment: Box<DesiredEnvironment>,
    },
    /// Upload a code snapshot through the version's pending upload, then PUT the code
    /// version that names it.
    Code {
        id: ResourceId,
        code: Box<DesiredCode>,
    },
}

/// A request body. It may hold a secret (a registry password), so its Debug form never
/// shows it.
#[derive(Clone)]
pub struct Body(pub Value);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("{address}: the plan and the specs disagree ({what}); make the plan again")]
    Mismatch { address: String, what: String },
}

impl Step {
    /// The ARM id the step writes.
    pub fn id(&self) -> &ResourceId {
        match &self.work {
            Work::Put { id, .. }
            | Work::Patch { id, .. }
            | Work::Replace { id, .. }
            | Work::KeyVault { id, .. }
            | Work::Environment { id, .. }
            | Work::Code { id, .. } => id,
        }
    }
}

/// The steps of `plan`, whose workspaces are `desired`'s in the same order.
pub fn steps(plan: &Plan, desired: &Desired) -> Result<Vec<Step>, StepError> {
    let mut steps = Vec::new();
    for (workspace, ws) in plan.workspaces.iter().zip(&desired.workspaces) {
        let ws_address = Address::workspace(ws.spec.resource_group.as_str(), ws.spec.name.as_str());
        for change in &workspace.resources {
            if !matches!(
                change.action,
                Action::Create | Action::Update | Action::Replace
            ) {
                continue;
            }
            steps.extend(change_steps(change, ws, &ws_address)?);
        }
    }
    let mut steps = dedup(steps);
    // Dependencies on what needs no step (it exists) are already met.
    let addresses: Vec<Address> = steps.iter().map(|s| s.address.clone()).collect();
    for step in &mut steps {
        step.depends_on.retain(|a| addresses.contains(a));
        step.depends_on.sort();
        step.depends_on.dedup();
    }
    Ok(steps)
}

fn mismatch(change: &ResourceChange, what: &str) -> StepError {
    StepError::Mismatch {
        address: change.address.to_string(),
        what: what.to_string(),
    }
}

fn find<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> String,
    change: &ResourceChange,
) -> Result<&'a T, StepError> {
    items
        .iter()
        .find(|item| id(item) == change.id)
        .ok_or_else(|| mismatch(change, "no such resource in the specs"))
}

/// The step of one change (and, for a job, the upload of its code).
fn change_steps(
    change: &ResourceChange,
    ws: &DesiredWorkspace,
    ws_address: &Address,
) -> Result<Vec<Step>, StepError> {
    let step = |work: Work| Step {
        address: change.address.clone(),
        kind: change.kind.clone(),
        action: change.action,
        depends_on: change.depends_on.clone(),
        work,
    };
    let location = || {
        ws.spec
            .location
            .as_ref()
            .map(|l| l.as_str().to_string())
            .ok_or_else(|| mismatch(change, "no location"))
    };
    let id = || ResourceId::from_plan(&change.id);
    let work = match (&change.kind, change.action) {
        (Kind::ResourceGroup, _) => Work::Put {
            id: id(),
            body: Body(bodies::resource_group(&location()?)),
        },
        (Kind::StorageAccount, _) => Work::Put {
            id: id(),
            body: Body(bodies::storage_account(&location()?)),
        },
        (Kind::KeyVault, _) => Work::KeyVault {
            id: id(),
            location: location()?,
        },
        (Kind::ApplicationInsights, _) => Work::Put {
            id: id(),
            body: Body(bodies::application_insights(&location()?)),
        },
        // Created, or created again after its provisioning failed (the plan then gives
        // the facts of a creation).
        (Kind::Workspace, action)
            if action == Action::Create
                || matches!(change.facts, Some(Facts::Workspace { .. })) =>
        {
            Work::Put {
                id: ws.id.clone(),
                body: Body(bodies::workspace(ws)),
            }
        }
        (Kind::Workspace, _) => Work::Patch {
            id: ws.id.clone(),
            body: Body(bodies::workspace_update(ws)),
        },
        (Kind::Registry, _) => {
            let registry = find(&ws.registries, |r| r.id.to_string(), change)?;
            Work::Put {
                id: registry.id.clone(),
                body: Body(bodies::connection(registry)),
            }
        }
        (Kind::Environment, action) => {
            let env = find(&ws.environments, |e| e.id.to_string(), change)?;
            let built = env.definition.build.is_some();
            match (action, built, &change.facts) {
                // A new version built from a Dockerfile: its context is uploaded first.
                (Action::Create, true, _) => Work::Environment {
                    id: env.id.clone(),
                    workspace: ws.id.clone(),
                    environment: Box::new(env.clone()),
                },
                // An existing one, updated in place: the context it has stays.
                (
                    _,
                    true,
                    Some(Facts::Environment {
                        build_context: Some(BuildContextFact::Uploaded { uri }),
                    }),
                ) => Work::Put {
                    id: env.id.clone(),
                    body: Body(bodies::environment(env, Some(uri))),
                },
                (_, true, _) => {
                    return Err(mismatch(change, "the build context's location is unknown"));
                }
                (_, false, _) => Work::Put {
                    id: env.id.clone(),
                    body: Body(bodies::environment(env, None)),
                },
            }
        }
        (Kind::Cluster, action) => {
            let cluster = find(&ws.clusters, |c| c.id.to_string(), change)?;
            match (action, &change.facts) {
                (Action::Update, _) => Work::Patch {
                    id: cluster.id.clone(),
                    body: Body(bodies::compute_update(cluster)),
                },
                (action, Some(Facts::Location { location, .. })) => {
                    let body = Body(bodies::compute(cluster, location));
                    let id = cluster.id.clone();
                    if action == Action::Replace {
                        Work::Replace { id, body }
                    } else {
                        Work::Put { id, body }
                    }
                }
                _ => return Err(mismatch(change, "the cluster's region is unknown")),
            }
        }
        (Kind::Job, _) => {
            let job = find(&ws.jobs, |j| j.id.to_string(), change)?;
            let Some(Facts::Job {
                environment_id,
                code,
                ..
            }) = &change.facts
            else {
                return Err(mismatch(change, "the job's environment is unresolved"));
            };
            let mut steps = Vec::new();
            let code_id = match code {
                None => None,
                Some(CodeFact::Found { id }) => Some(id.clone()),
                Some(CodeFact::Upload { id, sha256, .. }) => {
                    let desired_code = ws
                        .codes
                        .iter()
                        .find(|c| &c.hash == sha256)
                        .ok_or_else(|| mismatch(change, "no code with that content"))?;
                    let address = code_address(ws_address, sha256);
                    steps.push(Step {
                        address,
                        kind: Kind::Code,
                        action: Action::Create,
                        depends_on: vec![ws_address.clone()],
                        work: Work::Code {
                            id: ResourceId::from_plan(id),
                            code: Box::new(desired_code.clone()),
                        },
                    });
                    Some(id.clone())
                }
            };
            let mut job_step = step(Work::Put {
                id: job.id.clone(),
                body: Body(bodies::job(job, environment_id, code_id.as_deref())),
            });
            if let Some(CodeFact::Upload { sha256, .. }) = code {
                job_step.depends_on.push(code_address(ws_address, sha256));
            }
            steps.push(job_step);
            return Ok(steps);
        }
        (Kind::Code, _) => return Err(mismatch(change, "code is not a plan entry")),
    };
    Ok(vec![step(work)])
}

/// A code upload's address: `<workspace>/code/<first 12 hex digits of its hash>`.
fn code_address(ws_address: &Address, sha256: &str) -> Address {
    ws_address.child(&Kind::Code, &sha256[..sha256.len().min(12)])
}

/// Jobs that share code wait for one upload: steps are unique by address.
fn dedup(steps: Vec<Step>) -> Vec<Step> {
    let mut seen = std::collections::BTreeSet::new();
    steps
        .into_iter()
        .filter(|s| seen.insert(s.address.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Live;
    use crate::plan::testing::{
        WORKSPACE, desired, desired_with_files, live_cluster, live_workspace, nothing, observed,
    };

    /// A new workspace with an inline-Dockerfile environment, a cluster and two jobs that
    /// share one source folder.
    const FULL: &str = "workspace:\n  name: pets-ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  location: westeurope\n  create_if_missing: true\nenvironments:\n  - name: built\n    dockerfile: |\n      FROM ubuntu:22.04\n  - name: plain\n    image: ubuntu:22.04\nclusters:\n  - name: gpu\n    vm_size: STANDARD_NC6\n    max_nodes: 2\njobs:\n  - name: a\n    command: python a.py\n    source_directory: src\n    environment: built\n    cluster: gpu\n  - name: b\n    command: python b.py\n    source_directory: src\n    environment: plain\n    cluster: gpu\n";

    fn summary(steps: &[Step]) -> Vec<(String, &'static str, Vec<String>)> {
        steps
            .iter()
            .map(|s| {
                let work = match &s.work {
                    Work::Put { .. } => "put",
                    Work::Patch { .. } => "patch",
                    Work::Replace { .. } => "replace",
                    Work::KeyVault { .. } => "key vault",
                    Work::Environment { .. } => "environment with upload",
                    Work::Code { .. } => "code with upload",
                };
                (
                    s.address.to_string(),
                    work,
                    s.depends_on.iter().map(|a| a.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn from_nothing_every_resource_is_a_step_and_shared_code_is_uploaded_once() {
        let desired = desired_with_files(FULL, &[("src/train.py", "print(1)\n")]);
        let plan = crate::plan::plan(&desired, &nothing(&desired));
        let steps = steps(&plan, &desired).unwrap();
        let hash = &desired.workspaces[0].codes[0].hash[..12];
        let code = format!("rg/pets-ws/code/{hash}");
        let deps = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let job_a = desired.workspaces[0].jobs[0].name.clone();
        let job_b = desired.workspaces[0].jobs[1].name.clone();
        let built = &desired.workspaces[0].environments[0].version;
        let plain = &desired.workspaces[0].environments[1].version;
        let mut expected = vec![
            ("rg".to_string(), "put", deps(&[])),
            (
                "rg/storage_account/petswsad13817e".into(),
                "put",
                deps(&["rg"]),
            ),
            (
                "rg/key_vault/petsws-ad13817e".into(),
                "key vault",
                deps(&["rg"]),
            ),
            (
                "rg/application_insights/pets-ws-insights".into(),
                "put",
                deps(&["rg"]),
            ),
            (
                "rg/pets-ws".into(),
                "put",
                deps(&[
                    "rg",
                    "rg/application_insights/pets-ws-insights",
                    "rg/key_vault/petsws-ad13817e",
                    "rg/storage_account/petswsad13817e",
                ]),
            ),
            (
                format!("rg/pets-ws/environment/built:{built}"),
                "environment with upload",
                deps(&["rg/pets-ws"]),
            ),
            (
                format!("rg/pets-ws/environment/plain:{plain}"),
                "put",
                deps(&["rg/pets-ws"]),
            ),
            (
                "rg/pets-ws/cluster/gpu".into(),
                "put",
                deps(&["rg/pets-ws"]),
            ),
            (code.clone(), "code with upload", deps(&["rg/pets-ws"])),
        ];
        let mut job = |name: &str, env: String| {
            let mut d = vec![
                "rg/pets-ws".to_string(),
                "rg/pets-ws/cluster/gpu".into(),
                code.clone(),
                env,
            ];
            d.sort();
            expected.push((format!("rg/pets-ws/job/{name}"), "put", d));
        };
        job(&job_a, format!("rg/pets-ws/environment/built:{built}"));
        job(&job_b, format!("rg/pets-ws/environment/plain:{plain}"));
        assert_eq!(summary(&steps), expected);
        // Every dependency is a step: the queue can be built.
        for step in &steps {
            for dependency in &step.depends_on {
                assert!(
                    steps.iter().any(|s| &s.address == dependency),
                    "{dependency}"
                );
            }
        }
        // The cluster goes where the workspace goes.
        let cluster = steps.iter().find(|s| s.kind == Kind::Cluster).unwrap();
        let Work::Put { body, .. } = &cluster.work else {
            panic!("a new cluster is put");
        };
        assert_eq!(body.0["location"], "westeurope");
        // A job names its code version and its environment version by id.
        let job = steps.iter().find(|s| s.kind == Kind::Job).unwrap();
        let Work::Put { body, .. } = &job.work else {
            panic!("a job is put");
        };
        let ws = desired.workspaces[0].id.as_str();
        assert_eq!(
            body.0["properties"]["codeId"],
            format!(
                "{ws}/codes/{}/versions/{}",
                desired.workspaces[0].codes[0].name, desired.workspaces[0].codes[0].version
            )
        );
        assert_eq!(
            body.0["properties"]["environmentId"],
            format!("{ws}/environments/built/versions/{built}")
        );
    }

    #[test]
    fn in_an_existing_workspace_only_what_changed_is_a_step_and_waits_for_nothing_else() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    min_nodes: 0\n    max_nodes: 4\n"
        );
        let desired = desired(&spec);
        let ws = || Live::Present(live_workspace("westeurope"));
        let mut failed = live_cluster("STANDARD_NC6", 0, 4);
        failed.provisioning_state = Some("Failed".into());
        for (live, expected, needs_allow) in [
            (live_cluster("STANDARD_NC6", 0, 4), vec![], false),
            (live_cluster("STANDARD_NC6", 0, 2), vec!["patch"], false),
            (live_cluster("STANDARD_NC12", 0, 4), vec!["replace"], true),
            (live_cluster("STANDARD_NC12", 0, 2), vec!["replace"], true),
            // A cluster whose provisioning failed is made again, with nothing to lose.
            (failed, vec!["replace"], false),
        ] {
            let plan = crate::plan::plan(&desired, &observed(ws(), vec![Live::Present(live)]));
            let steps = steps(&plan, &desired).unwrap();
            let works: Vec<&str> = summary(&steps).into_iter().map(|s| s.1).collect();
            assert_eq!(works, expected);
            assert!(steps.iter().all(|s| s.depends_on.is_empty()));
            let cluster = plan.resources().find(|r| r.kind == Kind::Cluster).unwrap();
            assert_eq!(cluster.needs_allow_replace(), needs_allow, "{works:?}");
        }
    }

    #[test]
    fn a_workspace_whose_provisioning_failed_is_put_again_and_drift_is_patched() {
        let spec = WORKSPACE.replace(
            "  location: westeurope\n",
            "  location: westeurope\n  tags:\n    team: vision\n",
        );
        let desired = desired(&spec);
        let mut failed = live_workspace("westeurope");
        failed.provisioning_state = Some("Failed".into());
        let plan = crate::plan::plan(&desired, &observed(Live::Present(failed), Vec::new()));
        let works: Vec<&str> = summary(&steps(&plan, &desired).unwrap())
            .into_iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(works, ["put"]);
        let plan = crate::plan::plan(
            &desired,
            &observed(Live::Present(live_workspace("westeurope")), Vec::new()),
        );
        let works: Vec<&str> = summary(&steps(&plan, &desired).unwrap())
            .into_iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(works, ["patch"]);
    }

    #[test]
    fn a_plan_that_does_not_match_the_specs_is_refused() {
        let spec = format!(
            "{WORKSPACE}clusters:\n  - name: gpu\n    vm_size: Standard_NC6\n    max_nodes: 4\n"
        );
        let desired = desired(&spec);
        let mut plan = crate::plan::plan(
            &desired,
            &observed(
                Live::Present(live_workspace("westeurope")),
                vec![Live::Missing],
            ),
        );
        let cluster = plan.workspaces[0]
            .resources
            .iter_mut()
            .find(|r| r.kind == Kind::Cluster)
            .unwrap();
        cluster.id.push_str("-other");
        assert!(matches!(
            steps(&plan, &desired),
            Err(StepError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_body_never_shows_itself_in_debug_output() {
        let body = Body(serde_json::json!({"password": "s3cret-value"}));
        assert_eq!(format!("{body:?}"), "Body(..)");
    }

    /// Each environment action becomes its work: a new one with a build uploads first;
    /// an update in place puts the same context URI again; a build without its URI is
    /// refused.
    #[test]
    fn environments_become_their_work() {
        let spec = format!(
            "{WORKSPACE}environments:\n  - name: built\n    dockerfile: |\n      FROM ubuntu:22.04\n  - name: plain\n    image: ubuntu:22.04\n"
        );
        let desired = desired(&spec);
        let mut read = observed(Live::Present(live_workspace("westeurope")), Vec::new());
        read.workspaces[0].environments = vec![Live::Missing, Live::Missing];
        let nothing_yet = crate::plan::plan(&desired, &read);
        let uri = "https://acct.blob.core.windows.net/c/LocalUpload/abc/".to_string();
        let uploaded = Some(Facts::Environment {
            build_context: Some(BuildContextFact::Uploaded { uri: uri.clone() }),
        });
        // The work and the context URI it puts; `None`: refused.
        type Expected<'a> = Option<(&'a str, Option<&'a str>)>;
        let cases: Vec<(&str, Action, Option<Facts>, Expected)> = vec![
            ("built", Action::Create, None, Some(("upload", None))),
            ("plain", Action::Create, None, Some(("put", None))),
            (
                "built",
                Action::Update,
                uploaded.clone(),
                Some(("put", Some(uri.as_str()))),
            ),
            ("built", Action::Update, None, None),
            ("plain", Action::Update, None, Some(("put", None))),
            ("plain", Action::Update, uploaded, Some(("put", None))),
        ];
        for (name, action, facts, expected) in cases {
            let mut plan = nothing_yet.clone();
            for change in &mut plan.workspaces[0].resources {
                if change.kind == Kind::Environment && change.name == name {
                    change.action = action;
                    change.facts = facts.clone();
                }
            }
            let found = steps(&plan, &desired).map(|steps| {
                let step = steps
                    .into_iter()
                    .find(|s| {
                        s.address
                            .as_str()
                            .contains(&format!("/environment/{name}:"))
                    })
                    .unwrap();
                match step.work {
                    Work::Environment { .. } => ("upload", None),
                    Work::Put { body, .. } => (
                        "put",
                        body.0["properties"]["build"]["contextUri"]
                            .as_str()
                            .map(|u| u.to_string()),
                    ),
                    other => panic!("{other:?}"),
                }
            });
            match (found, expected) {
                (Ok((work, uri)), Some((want, want_uri))) => {
                    assert_eq!(
                        (work, uri.as_deref()),
                        (want, want_uri),
                        "{name} {action:?}"
                    );
                }
                (Err(StepError::Mismatch { .. }), None) => {}
                (found, _) => panic!("{name} {action:?}: {found:?}"),
            }
        }
    }
}
