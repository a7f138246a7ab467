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

/// Which images are asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Every,
    /// Only those on a registry the manifest declares (the in-process emulator serves
    /// those and no other).
    DeclaredRegistries,
}

/// The image checks under way, started from the specs.
pub struct ImageProbes {
    /// For each workspace (in spec order): environment name -> what its image is asked.
    by_environment: Vec<BTreeMap<String, Asked>>,
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

    /// Start a probe for each distinct question of `specs` ([`questions`]). Call inside a
    /// tokio runtime.
    pub fn start(client: &RegistryClient, specs: &[WorkspaceSpec], ask: Ask) -> ImageProbes {
        let (questions, by_environment) = questions(specs, ask);
        let probes: Vec<Probe> = questions
            .into_iter()
            .map(|question| match question.image {
                Ok(image) => {
                    let client = client.clone();
                    let credentials = question.credentials;
                    Probe::Asking(tokio::spawn(async move {
                        client.probe(&image, credentials.as_ref()).await
                    }))
                }
                Err(error) => Probe::NotAsked(error),
            })
            .collect();
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
        let mut wanted: Vec<Vec<(String, Asked)>> = Vec::new();
        for (index, (d, o)) in desired.workspaces.iter().zip(observed.iter()).enumerate() {
            let Some(mine) = self.by_environment.get(index) else {
                wanted.push(Vec::new());
                continue;
            };
            let names = environments_in_use(d, o);
            let these: Vec<(String, Asked)> = mine
                .iter()
                .filter(|(name, _)| names.contains(name.as_str()))
                .map(|(name, asked)| (name.clone(), asked.clone()))
                .collect();
            for (_, asked) in &these {
                needed[asked.question] = true;
            }
            wanted.push(these);
        }
        tracing::debug!(
            needed = needed.iter().filter(|n| **n).count(),
            stopped = needed.iter().filter(|n| !**n).count(),
            "waiting for the image answers this plan needs"
        );
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
            for (name, asked) in these {
                if let Some(pullable) = &answers[asked.question] {
                    let answer = ImageAnswer {
                        registry: asked.registry,
                        pullable: pullable.clone(),
                    };
                    o.images.insert(name, answer);
                }
            }
        }
    }
}

/// Which question an environment's image is, and the declared registry whose
/// credentials go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    /// Index into the questions (and the probes).
    question: usize,
    registry: Option<String>,
}

/// One thing to ask a registry.
#[derive(Debug)]
struct Question {
    /// The image, or why its reference could not be parsed.
    image: Result<ImageRef, String>,
    credentials: Option<RegistryCredentials>,
}

/// The distinct questions of the environments that `specs` make from an image, and for
/// each workspace, which question each environment's is (with the declared registry
/// whose credentials it uses). The same image with the same credentials is one question.
fn questions(specs: &[WorkspaceSpec], ask: Ask) -> (Vec<Question>, Vec<BTreeMap<String, Asked>>) {
    let mut keys: Vec<(&str, Option<(&str, &str)>)> = Vec::new();
    let mut questions = Vec::new();
    let mut by_environment = Vec::with_capacity(specs.len());
    for ws in specs {
        let mut mine = BTreeMap::new();
        for env in &ws.environments {
            let EnvironmentBuild::Image { image, .. } = &env.build else {
                continue;
            };
            let parsed = ImageRef::parse(image).map_err(|e| e.to_string());
            // The registry the environment names; else the one at the image's host.
            let registry = match &env.registry {
                Some(name) => ws.registries.iter().find(|r| r.name == *name),
                None => parsed.as_ref().ok().and_then(|parsed| {
                    ws.registries
                        .iter()
                        .find(|r| r.address.eq_ignore_ascii_case(&parsed.registry))
                }),
            };
            if ask == Ask::DeclaredRegistries && registry.is_none() {
                continue;
            }
            let key = (
                image.as_str(),
                registry.map(|r| (r.username.as_str(), r.password.expose())),
            );
            let index = match keys.iter().position(|k| *k == key) {
                Some(index) => index,
                None => {
                    keys.push(key);
                    questions.push(Question {
                        image: parsed,
                        credentials: registry.map(|r| RegistryCredentials {
                            username: r.username.clone(),
                            password: r.password.clone(),
                        }),
                    });
                    questions.len() - 1
                }
            };
            mine.insert(
                env.name.to_string(),
                Asked {
                    question: index,
                    registry: registry.map(|r| r.name.to_string()),
                },
            );
        }
        by_environment.push(mine);
    }
    (questions, by_environment)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::live::{LiveEnvironmentVersion, LiveJob};

    fn specs(yaml: &str) -> Vec<WorkspaceSpec> {
        crate::plan::testing::specs_with_passwords(yaml).workspaces
    }

    fn workspace(name: &str, password: &str, environments: &str) -> String {
        format!(
            "workspace:\n  name: {name}\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\nregistries:\n  - name: acr\n    address: a.azurecr.io\n    username: puller\n    password: ${{{password}}}\nenvironments:\n{environments}"
        )
    }

    #[test]
    fn credentials_come_from_the_named_registry_or_the_one_at_the_image_s_host() {
        let envs = "  - name: named\n    image: team/app:1\n    registry: acr\n  - name: by-host\n    image: A.azurecr.io/team/app:1\n  - name: public\n    image: ubuntu:22.04\n  - name: built\n    dockerfile: \"FROM ubuntu:22.04\\n\"\n";
        let specs = specs(&workspace("ws1", "P", envs));
        let (questions, by_environment) = questions(&specs, Ask::Every);
        let mine = &by_environment[0];
        assert_eq!(mine.len(), 3, "a Dockerfile build is not asked: {mine:?}");
        assert_eq!(mine["named"].registry.as_deref(), Some("acr"));
        assert_eq!(mine["by-host"].registry.as_deref(), Some("acr"));
        assert_eq!(mine["public"].registry, None);
        let public = &questions[mine["public"].question];
        assert!(public.credentials.is_none());
        assert_eq!(
            public.image.as_ref().unwrap().registry,
            "docker.io",
            "{public:?}"
        );
        let named = &questions[mine["named"].question];
        let credentials = named.credentials.as_ref().unwrap();
        assert_eq!(credentials.username, "puller");
        assert_eq!(
            credentials.password.expose(),
            "a-long-enough-password-value"
        );
    }

    #[test]
    fn the_same_image_with_the_same_credentials_is_asked_once() {
        let envs = "  - name: e1\n    image: team/app:1\n    registry: acr\n  - name: e2\n    image: team/app:1\n    registry: acr\n  - name: e3\n    image: team/app:2\n    registry: acr\n";
        let text = format!(
            "{}---\n{}---\n{}",
            workspace("ws1", "P", envs),
            workspace("ws2", "P", envs),
            workspace("ws3", "Q", envs)
        );
        let specs = specs(&text);
        let (questions, by_environment) = questions(&specs, Ask::Every);
        // ws1 and ws2 share two questions; ws3's other password makes two more.
        assert_eq!(questions.len(), 4);
        assert_eq!(
            by_environment[0]["e1"].question,
            by_environment[0]["e2"].question
        );
        assert_ne!(
            by_environment[0]["e1"].question,
            by_environment[0]["e3"].question
        );
        assert_eq!(by_environment[0], by_environment[1]);
        assert_ne!(
            by_environment[0]["e1"].question,
            by_environment[2]["e1"].question
        );
    }

    fn live_env(image: &str) -> Live<LiveEnvironmentVersion> {
        Live::Present(LiveEnvironmentVersion {
            image: Some(image.into()),
            conda_file: None,
            build_context_uri: None,
            dockerfile_path: None,
            description: None,
            tags: BTreeMap::new(),
            fingerprint: "f".into(),
        })
    }

    #[test]
    fn in_use_are_environments_not_there_or_different_and_those_of_new_jobs() {
        let yaml = format!(
            "{}clusters:\n  - name: cpu\n    vm_size: Standard_DS3_v2\n    max_nodes: 1\njobs:\n  - name: one\n    command: echo\n    environment: e1\n    cluster: cpu\n",
            workspace(
                "ws1",
                "P",
                "  - name: e1\n    image: team/app:1\n    registry: acr\n  - name: e2\n    image: team/app:2\n    registry: acr\n"
            )
        );
        let desired = crate::plan::testing::desired_with_passwords(&yaml);
        let d = &desired.workspaces[0];
        let mut observed = crate::plan::testing::nothing(&desired).workspaces.remove(0);
        let image = |i: usize| d.environments[i].definition.image.clone().unwrap();
        // Nothing there: both environments, and e1 for the job.
        assert_eq!(
            environments_in_use(d, &observed)
                .into_iter()
                .collect::<Vec<_>>(),
            ["e1", "e2"]
        );
        // Both there as declared, the job not yet: e1, for the job.
        observed.environments = vec![live_env(&image(0)), live_env(&image(1))];
        observed.jobs = vec![Live::Missing];
        assert_eq!(
            environments_in_use(d, &observed)
                .into_iter()
                .collect::<Vec<_>>(),
            ["e1"]
        );
        // The job there too: none.
        let job: crate::observe::live::arm::Job =
            serde_json::from_value(serde_json::json!({"properties": {}})).unwrap();
        observed.jobs = vec![Live::Present(LiveJob::from_arm(job))];
        assert!(environments_in_use(d, &observed).is_empty());
        // e2 there with another image (a pinned version edited): e2.
        observed.environments[1] = live_env("a.azurecr.io/team/app:3");
        assert_eq!(
            environments_in_use(d, &observed)
                .into_iter()
                .collect::<Vec<_>>(),
            ["e2"]
        );
    }
}
