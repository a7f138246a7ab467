//! Preflight's image check, observe side: can the image each environment is made from be
//! pulled, with the credentials Azure would pull it with?
//!
//! The questions need only the loaded specs (an image and a declared registry's username
//! and password), so their probes start as soon as the specs are loaded and run while
//! Azure is read ([`ImageProbes::start`]). Once the live state is read, only the answers
//! something in this plan needs are waited for ([`ImageProbes::finish`]): an environment
//! that is to be created (or whose live version differs), or a job that is to be
//! submitted with it. The other probes are stopped, so a settled manifest's plan never
//! waits on a registry (one behind a firewall costs nothing).
//!
//! One probe per distinct question (image and credentials): environments of several
//! workspaces that pull the same image with the same credentials share it. Credentials
//! are those of the declared registry the environment names, or else of the declared
//! registry at the image's host (Azure ML pulls with the workspace's registry
//! connections); an image on no declared registry is asked for anonymously.

use std::collections::BTreeMap;

use tokio::task::JoinHandle;

use super::{Live, ObservedWorkspace};
use crate::azure::registry::{ImageRef, RegistryClient, RegistryCredentials};
use crate::desired::{Desired, JobEnvironment};
use crate::oci::Pullable;
use crate::spec::model::{EnvironmentBuild, WorkspaceSpec};

/// What the registry said of an environment's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAnswer {
    /// The declared registry whose credentials were given (its name), if any.
    pub registry: Option<String>,
    pub pullable: Pullable,
}

/// The image checks under way, started from the specs.
pub struct ImageProbes {
    /// For each workspace (in spec order): environment name -> (index into `probes`,
    /// the registry whose credentials it is asked with).
    by_environment: Vec<BTreeMap<String, (usize, Option<String>)>>,
    probes: Vec<Probe>,
}

enum Probe {
    Asking(JoinHandle<Pullable>),
    /// The image reference could not be parsed (validation should have refused it).
    NotAsked(String),
}

impl ImageProbes {
    /// No checks: `--skip-preflight=image`, or no registry client (`--emulator`).
    pub fn none() -> ImageProbes {
        ImageProbes {
            by_environment: Vec::new(),
            probes: Vec::new(),
        }
    }

    /// Start a probe for each distinct (image, credentials) of the environments that
    /// `specs` make from an image. Call inside a tokio runtime.
    pub fn start(client: &RegistryClient, specs: &[WorkspaceSpec]) -> ImageProbes {
        let mut questions: Vec<(String, Option<(String, String)>)> = Vec::new();
        let mut probes = Vec::new();
        let mut by_environment = Vec::with_capacity(specs.len());
        for ws in specs {
            let mut mine = BTreeMap::new();
            for env in &ws.environments {
                let EnvironmentBuild::Image { image, .. } = &env.build else {
                    continue;
                };
                let registry = match &env.registry {
                    Some(name) => ws.registries.iter().find(|r| r.name == *name),
                    None => ImageRef::parse(image).ok().and_then(|parsed| {
                        ws.registries
                            .iter()
                            .find(|r| r.address.eq_ignore_ascii_case(&parsed.registry))
                    }),
                };
                let key = (
                    image.clone(),
                    registry.map(|r| (r.username.clone(), r.password.expose().to_string())),
                );
                let index = match questions.iter().position(|q| *q == key) {
                    Some(index) => index,
                    None => {
                        let credentials = registry.map(|r| RegistryCredentials {
                            username: r.username.clone(),
                            password: r.password.clone(),
                        });
                        probes.push(match ImageRef::parse(image) {
                            Ok(parsed) => {
                                let client = client.clone();
                                Probe::Asking(tokio::spawn(async move {
                                    client.probe(&parsed, credentials.as_ref()).await
                                }))
                            }
                            Err(error) => Probe::NotAsked(error.to_string()),
                        });
                        questions.push(key);
                        probes.len() - 1
                    }
                };
                mine.insert(
                    env.name.to_string(),
                    (index, registry.map(|r| r.name.to_string())),
                );
            }
            by_environment.push(mine);
        }
        tracing::debug!(
            probes = probes.len(),
            "asking registries whether images can be pulled"
        );
        ImageProbes {
            by_environment,
            probes,
        }
    }

    /// Wait for the answers that `observed` (aligned with `desired`) shows are needed,
    /// record them in each workspace's `images`, and stop the other probes.
    pub async fn finish(mut self, desired: &Desired, observed: &mut [ObservedWorkspace]) {
        let probes = std::mem::take(&mut self.probes);
        let mut needed = vec![false; probes.len()];
        let mut wanted: Vec<Vec<(String, usize, Option<String>)>> = Vec::new();
        for (index, (d, o)) in desired.workspaces.iter().zip(observed.iter()).enumerate() {
            let Some(mine) = self.by_environment.get(index) else {
                wanted.push(Vec::new());
                continue;
            };
            let names = environments_in_use(d, o);
            let these: Vec<(String, usize, Option<String>)> = mine
                .iter()
                .filter(|(name, _)| names.contains(name.as_str()))
                .map(|(name, (probe, registry))| (name.clone(), *probe, registry.clone()))
                .collect();
            for (_, probe, _) in &these {
                needed[*probe] = true;
            }
            wanted.push(these);
        }
        let mut answers: Vec<Option<Pullable>> = Vec::with_capacity(probes.len());
        for (probe, needed) in probes.into_iter().zip(needed) {
            answers.push(match probe {
                Probe::Asking(handle) if needed => Some(match handle.await {
                    Ok(answer) => answer,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => Pullable::Unreachable {
                        message: "the probe was stopped".into(),
                    },
                }),
                Probe::Asking(handle) => {
                    handle.abort();
                    None
                }
                Probe::NotAsked(message) => needed.then(|| Pullable::Unreachable {
                    message: format!("not asked: {message}"),
                }),
            });
        }
        for (o, these) in observed.iter_mut().zip(wanted) {
            for (name, probe, registry) in these {
                if let Some(pullable) = &answers[probe] {
                    let answer = ImageAnswer {
                        registry,
                        pullable: pullable.clone(),
                    };
                    o.images.insert(name, answer);
                }
            }
        }
    }
}

/// Probes nobody waits for (a plan that stopped early) are stopped, not left running.
impl Drop for ImageProbes {
    fn drop(&mut self) {
        for probe in &self.probes {
            if let Probe::Asking(handle) = probe {
                handle.abort();
            }
        }
    }
}

/// The environments of `d` (by name) that this plan may pull: one whose live version is
/// missing or differs from the manifest's image, or one a job that is not there yet
/// runs in. (A superset of what plan checks: it decides creations itself.)
fn environments_in_use<'a>(
    d: &'a crate::desired::DesiredWorkspace,
    o: &ObservedWorkspace,
) -> std::collections::BTreeSet<&'a str> {
    let mut names = std::collections::BTreeSet::new();
    for (env, live) in d.environments.iter().zip(&o.environments) {
        let settled = match live {
            Live::Present(live) => live.image == env.definition.image,
            Live::Missing | Live::NotRead => false,
        };
        if !settled {
            names.insert(env.name.as_str());
        }
    }
    for (job, live) in d.jobs.iter().zip(&o.jobs) {
        if let (JobEnvironment::Declared { name, .. }, Live::Missing | Live::NotRead) =
            (&job.environment, live)
        {
            names.insert(name.as_str());
        }
    }
    names
}
