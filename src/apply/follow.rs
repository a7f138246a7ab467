//! `apply --wait`: follow submitted jobs until each reaches a terminal state, reporting
//! every change of status. A read that fails is tried again at the next poll (the jobs
//! run on whatever happens to this process), and a stop request ends the following,
//! never the jobs.

use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;

use crate::azure::client::{ArmClient, Operation};
use crate::ids::ResourceId;

/// The statuses after which a job changes no more (Azure ML's own clients stop
/// waiting at these).
pub const TERMINAL: [&str; 5] = ["Completed", "Failed", "Canceled", "NotResponding", "Paused"];

/// Polls start this far apart and double up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(15);

/// What following saw of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub id: ResourceId,
    /// The last status read (`None` before the first read succeeds).
    pub status: Option<String>,
    /// The job's page in Azure ML studio.
    pub studio_url: Option<String>,
}

impl JobState {
    pub fn is_terminal(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| TERMINAL.contains(&s))
    }

    pub fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("Completed")
    }
}

/// What a poll heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent<'a> {
    /// A job's status is new (the first read counts).
    Status(&'a JobState),
    /// A read failed; following goes on.
    ReadFailed { id: &'a ResourceId, error: String },
}

/// Follow `jobs` until all are terminal or `stop` resolves; the states as last seen.
pub async fn follow(
    client: &ArmClient,
    jobs: Vec<ResourceId>,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(FollowEvent<'_>),
) -> Vec<JobState> {
    let mut states: Vec<JobState> = jobs
        .into_iter()
        .map(|id| JobState {
            id,
            status: None,
            studio_url: None,
        })
        .collect();
    let mut stop = std::pin::pin!(stop);
    let mut delay = Duration::ZERO;
    loop {
        let pending: Vec<usize> = (0..states.len())
            .filter(|&i| !states[i].is_terminal())
            .collect();
        if pending.is_empty() {
            return states;
        }
        tokio::select! {
            () = (client.settings().sleep)(delay) => {}
            () = &mut stop => return states,
        }
        delay = if delay.is_zero() {
            FIRST_POLL
        } else {
            (delay * 2).min(MAX_POLL)
        };
        let reads = join_all(pending.iter().map(|&i| read(client, &states[i].id))).await;
        for (i, read) in pending.into_iter().zip(reads) {
            match read {
                Ok((status, studio_url)) => {
                    let state = &mut states[i];
                    if studio_url.is_some() {
                        state.studio_url = studio_url;
                    }
                    if state.status != status {
                        state.status = status;
                        on_event(FollowEvent::Status(state));
                    }
                }
                Err(error) => on_event(FollowEvent::ReadFailed {
                    id: &states[i].id,
                    error,
                }),
            }
        }
    }
}

/// A job's status and studio URL.
async fn read(
    client: &ArmClient,
    id: &ResourceId,
) -> Result<(Option<String>, Option<String>), String> {
    #[derive(serde::Deserialize)]
    struct Job {
        properties: Properties,
    }
    #[derive(serde::Deserialize)]
    struct Properties {
        status: Option<String>,
        #[serde(default)]
        services: Option<std::collections::BTreeMap<String, Service>>,
    }
    #[derive(serde::Deserialize)]
    struct Service {
        endpoint: Option<String>,
    }
    let operation = Operation::new("read job", id.to_string());
    let response = client
        .send(&operation, Method::GET, client.url_of(id), None, true)
        .await
        .map_err(|e| e.to_string())?;
    let job: Job = response.decode(&operation).map_err(|e| e.to_string())?;
    let studio = job
        .properties
        .services
        .and_then(|mut services| services.remove("Studio"))
        .and_then(|service| service.endpoint);
    Ok((job.properties.status, studio))
}
