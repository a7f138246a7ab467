//! Long-running ARM operations, polled as ARM's RPC says: a 201/202 answer names an
//! `Azure-AsyncOperation` status resource (polled until `Succeeded`, `Failed` or
//! `Canceled`) or a `Location` (polled until it stops answering 202), and `Retry-After`
//! says how long to wait between polls. A poll URL must be on the resource manager's
//! own host: the bearer token is never sent anywhere else.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use serde_json::Value;

use super::client::{ArmClient, ArmError, Found, Operation, Response};

/// Between polls when the service says nothing (Azure's SDKs wait 30 s; most of our
/// operations take less).
const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// Never poll faster than this, whatever `Retry-After` says (it may say 0).
const MIN_POLL: Duration = Duration::from_millis(100);
/// Never wait longer than this between polls.
const MAX_POLL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Where to poll, from the first answer: `None` when it finished at once.
fn poll_target(response: &Response) -> Option<(Target, String)> {
    if !matches!(response.status, StatusCode::CREATED | StatusCode::ACCEPTED)
        && response.async_operation.is_none()
    {
        return None;
    }
    if let Some(url) = &response.async_operation {
        return Some((Target::Status, url.clone()));
    }
    if let Some(url) = &response.location {
        return Some((Target::Location, url.clone()));
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `Azure-AsyncOperation`: a status resource.
    Status,
    /// `Location`: 202 while running.
    Location,
}

/// How long to wait before the next poll.
fn poll_delay(retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or(DEFAULT_POLL)
        .clamp(MIN_POLL, MAX_POLL)
}

/// Between reads of a resource being provisioned, when no `Retry-After` says otherwise.
const PROVISIONING_POLL: Duration = Duration::from_secs(2);

/// A provisioning state after which nothing more happens until the next write.
fn is_final(state: &str) -> bool {
    ["Succeeded", "Failed", "Canceled", "Cancelled"]
        .iter()
        .any(|done| state.eq_ignore_ascii_case(done))
}

fn timed_out(operation: &Operation, timeout: Duration) -> ArmError {
    ArmError::Operation {
        action: operation.action,
        resource: operation.resource.clone(),
        status: "TimedOut".into(),
        code: "OperationTimedOut".into(),
        message: format!(
            "the operation did not finish within {} s; it may still finish in Azure, and the next apply picks up from there",
            timeout.as_secs()
        ),
    }
}

impl ArmClient {
    /// Wait for the operation `response` started, if it is long-running; an error names
    /// the operation's own error code and message. Gives up after `timeout`.
    pub async fn wait(
        &self,
        operation: &Operation,
        response: &Response,
        timeout: Duration,
    ) -> Result<(), ArmError> {
        let Some((target, url)) = poll_target(response) else {
            return Ok(());
        };
        let url = self.poll_url(operation, &url)?;
        let started = tokio::time::Instant::now();
        let mut delay = poll_delay(response.retry_after);
        loop {
            if started.elapsed() + delay > timeout {
                return Err(timed_out(operation, timeout));
            }
            (self.settings().sleep)(delay).await;
            let polled = self
                .send(operation, Method::GET, url.clone(), None, true)
                .await?;
            delay = poll_delay(polled.retry_after);
            match target {
                Target::Location => {
                    if polled.status != StatusCode::ACCEPTED {
                        return Ok(());
                    }
                }
                Target::Status => {
                    let status: Status = polled.decode(operation)?;
                    let state = status.status.unwrap_or_default();
                    match state.to_ascii_lowercase().as_str() {
                        "succeeded" => return Ok(()),
                        "failed" | "canceled" | "cancelled" => {
                            let error = status.error.unwrap_or(StatusError {
                                code: None,
                                message: None,
                            });
                            return Err(ArmError::Operation {
                                action: operation.action,
                                resource: operation.resource.clone(),
                                status: state,
                                code: error.code.unwrap_or_else(|| "OperationFailed".into()),
                                message: error
                                    .message
                                    .unwrap_or_else(|| "no message was given".into()),
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// After a `409 Conflict` on a write: while the resource at `url` is being
    /// provisioned (its `provisioningState` is not final), wait for it. `true` once it
    /// exists and has settled: the write may be sent once more (its operation may have
    /// ended between the conflict and this read; a conflict about something else comes
    /// back the same). `false` when it does not exist. Gives up after `timeout`.
    pub async fn wait_while_provisioning(
        &self,
        operation: &Operation,
        url: Url,
        timeout: Duration,
    ) -> Result<bool, ArmError> {
        let started = tokio::time::Instant::now();
        let mut waited = false;
        loop {
            let response = match self.get(operation, url.clone()).await? {
                Found::Present(response) => response,
                Found::Missing { .. } => return Ok(false),
            };
            let body: Value = response.decode(operation)?;
            let state = body
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if state.is_empty() || is_final(state) {
                return Ok(true);
            }
            let delay = poll_delay(response.retry_after.or(Some(PROVISIONING_POLL)));
            if started.elapsed() + delay > timeout {
                return Err(timed_out(operation, timeout));
            }
            if !waited {
                tracing::info!(
                    action = operation.action,
                    resource = %operation.resource,
                    state,
                    "409 Conflict: the resource is being provisioned; waiting for it, then writing again"
                );
            }
            waited = true;
            (self.settings().sleep)(delay).await;
        }
    }

    /// A poll URL, refused unless it is on the resource manager's host and scheme.
    fn poll_url(&self, operation: &Operation, text: &str) -> Result<Url, ArmError> {
        let base = &self.endpoints().resource_manager;
        let url = Url::parse(text).map_err(|e| ArmError::Body {
            action: operation.action,
            resource: operation.resource.clone(),
            message: format!("bad operation URL: {e}"),
        })?;
        if url.scheme() != base.scheme()
            || url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(ArmError::Body {
                action: operation.action,
                resource: operation.resource.clone(),
                message: format!(
                    "the operation is to be polled at `{}`, not on the resource manager `{base}`; refusing to send the token there",
                    super::client::redact_query(&url)
                ),
            });
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, async_operation: Option<&str>, location: Option<&str>) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            text: String::new(),
            request_id: None,
            etag: None,
            async_operation: async_operation.map(str::to_string),
            location: location.map(str::to_string),
            retry_after: None,
        }
    }

    #[test]
    fn what_is_polled() {
        for (status, op, loc, expected) in [
            (200, None, None, None),
            (200, None, Some("L"), None),
            (201, None, None, None),
            (201, Some("A"), None, Some((Target::Status, "A"))),
            (202, None, Some("L"), Some((Target::Location, "L"))),
            (202, Some("A"), Some("L"), Some((Target::Status, "A"))),
            // A PATCH of a compute answers 200 with a status resource to follow.
            (200, Some("A"), Some("L"), Some((Target::Status, "A"))),
        ] {
            let found = poll_target(&response(status, op, loc));
            assert_eq!(
                found.as_ref().map(|(t, u)| (*t, u.as_str())),
                expected,
                "{status} {op:?} {loc:?}"
            );
        }
    }

    /// Final in any case; anything else (Creating, Updating, Deleting, Accepted,
    /// ResolvingDNS...) goes on.
    #[test]
    fn final_provisioning_states() {
        for done in ["Succeeded", "failed", "CANCELED", "Cancelled"] {
            assert!(is_final(done), "{done}");
        }
        for going in [
            "Creating",
            "Updating",
            "Deleting",
            "Accepted",
            "ResolvingDNS",
            "",
        ] {
            assert!(!is_final(going), "{going}");
        }
    }

    #[test]
    fn poll_delays_are_bounded() {
        assert_eq!(poll_delay(None), DEFAULT_POLL);
        assert_eq!(poll_delay(Some(Duration::ZERO)), MIN_POLL);
        assert_eq!(
            poll_delay(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(poll_delay(Some(Duration::from_secs(3600))), MAX_POLL);
    }
}
