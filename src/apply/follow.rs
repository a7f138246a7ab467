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
    /// Why it failed, as run history says (for a job that ended otherwise than
    /// Completed, when run history could be read).
    pub error: Option<String>,
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
            error: None,
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
                        if state.is_terminal() && !state.succeeded() {
                            state.error = run_error(client, &state.id).await;
                        }
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

/// The error run history gives for a job, as Azure ML's clients find it: the
/// workspace's `discoveryUrl`, its `api` service, then
/// `/history/v1.0{workspace}/runs/{job}/details`. `None` when any of it cannot be had
/// (the job's status is reported all the same).
async fn run_error(client: &ArmClient, job: &ResourceId) -> Option<String> {
    let (workspace, name) = job.as_str().rsplit_once("/jobs/")?;
    let workspace = ResourceId::from_plan(workspace);
    let operation = Operation::new("read workspace", workspace.to_string());
    let response = client
        .send(
            &operation,
            Method::GET,
            client.url_of(&workspace),
            None,
            true,
        )
        .await
        .ok()?;
    let body: serde_json::Value = response.decode(&operation).ok()?;
    let discovery = body["properties"]["discoveryUrl"].as_str()?;
    let discovery = trusted_url(discovery)?;
    // Anonymous, as Azure ML's clients read it.
    let services: serde_json::Value = client
        .http()
        .get(discovery)
        .timeout(client.settings().timeout)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .json()
        .await
        .ok()?;
    let api = trusted_url(services["api"].as_str()?)?;
    let details = api
        .join(&format!(
            "history/v1.0{}/runs/{name}/details",
            workspace.as_str()
        ))
        .ok()?;
    let operation = Operation::new("read run history of", job.to_string());
    let response = client
        .send(&operation, Method::GET, details, None, true)
        .await
        .ok()?;
    let details: serde_json::Value = response.decode(&operation).ok()?;
    let error = &details["error"]["error"];
    let message = error["message"].as_str()?;
    Some(match error["code"].as_str() {
        Some(code) => format!("{code}: {message}"),
        None => message.to_string(),
    })
}

/// A service URL from Azure's answers that may receive the token: https, or http on
/// loopback (a local emulator).
fn trusted_url(text: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(text).ok()?;
    let ok = url.scheme() == "https"
        || (url.scheme() == "http" && crate::azure::endpoints::is_loopback(&url));
    if !ok {
        tracing::warn!(
            url = text,
            "not reading run history from a URL that is neither https nor loopback"
        );
        return None;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_https_or_loopback() {
        assert!(trusted_url("https://westeurope.api.azureml.ms").is_some());
        assert!(trusted_url("http://127.0.0.1:8443/").is_some());
        assert!(trusted_url("http://westeurope.api.azureml.ms").is_none());
        assert!(trusted_url("ftp://127.0.0.1/").is_none());
        assert_eq!(
            trusted_url("https://h/api").unwrap().as_str(),
            "https://h/api/",
            "joined paths stay under it"
        );
    }
}
