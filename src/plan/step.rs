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
        (Kind::Workspace, Action::Create) => Work::Put {
            id: ws.id.clone(),
            body: Body(bodies::workspace(ws)),
        },
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
            match (action, &change.facts) {
                (Action::Create, _) if env.definition.build.is_some() => Work::Environment {
                    id: env.id.clone(),
                    workspace: ws.id.clone(),
                    environment: Box::new(env.clone()),
                },
                (Action::Create, _) => Work::Put {
                    id: env.id.clone(),
                    body: Body(bodies::environment(env, None)),
                },
                (
                    _,
                    Some(Facts::Environment {
                        build_context: Some(BuildContextFact::Uploaded { uri }),
                    }),
                ) => Work::Put {
                    id: env.id.clone(),
                    body: Body(bodies::environment(env, Some(uri))),
                },
                _ if env.definition.build.is_some() => {
                    return Err(mismatch(change, "the build context's location is unknown"));
                }
                _ => Work::Put {
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
                (action, Some(Facts::Location { location })) => {
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
