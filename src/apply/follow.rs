//! Following jobs (`apply --wait`, `amlspec logs`): each job's status until it reaches
//! a terminal state, and, as Azure ML's own clients show it, the job's output as it is
//! written.
//!
//! The way azure-ai-ml's `jobs.stream` does it (tests/emulator/RUN_HISTORY.md): the
//! workspace's `discoveryUrl` names the regional `api` service; its run history
//! (`/history/v1.0{workspace}/runs/{job}/details`) gives the status, the error of a
//! failed run and `logFiles`, read-SAS URLs of the logs. Unlike azure-ai-ml, which reads
//! each log whole at every poll, only the new bytes are read (`Range: bytes={offset}-`).
//!
//! Trouble does not end the following: a status read that fails is tried again at the
//! next poll; logs that cannot be read are said once and the status is still followed.
//! A stop request ends the following, never the jobs. The lines a job writes before it
//! ends are read after its final status, so they come before its summary.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::azure::client::{ArmClient, Operation};
use crate::ids::ResourceId;

/// The statuses after which a job changes no more (Azure ML's own clients stop
/// waiting at these).
pub const TERMINAL: [&str; 5] = ["Completed", "Failed", "Canceled", "NotResponding", "Paused"];

/// Polls start this far apart and double up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(10);
/// Bytes of a log read in one request, at most (a poll reads until it has all).
const LOG_READ: u64 = 4 * 1024 * 1024;
/// A line longer than this is shown in pieces of this size (memory stays bounded when a
/// job writes without newlines).
const MAX_LINE: usize = 64 * 1024;

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
    /// How long it ran (from its start to its end, as run history says).
    pub duration: Option<Duration>,
}

impl JobState {
    pub fn new(id: ResourceId) -> JobState {
        JobState {
            id,
            status: None,
            studio_url: None,
            error: None,
            duration: None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| TERMINAL.contains(&s))
    }

    pub fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("Completed")
    }
}

/// What a poll heard, in the order it happened for each job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent<'a> {
    /// A job's status is new (the first read counts).
    Status(&'a JobState),
    /// A line the job wrote to its output.
    Line { id: &'a ResourceId, line: &'a str },
    /// A status read failed; following goes on.
    ReadFailed { id: &'a ResourceId, error: String },
    /// The job's logs cannot be read (said once per job); its status is still followed.
    LogsUnavailable { id: &'a ResourceId, error: String },
}

/// Follow `jobs` and their output until all are terminal or `stop` resolves (then the
/// states as last seen).
pub async fn follow(
    client: &ArmClient,
    jobs: Vec<ResourceId>,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(FollowEvent<'_>),
) -> Vec<JobState> {
    let mut tracked: Vec<Tracked> = jobs.into_iter().map(Tracked::new).collect();
    let mut services = Services::default();
    let mut stop = std::pin::pin!(stop);
    let mut delay = Duration::ZERO;
    loop {
        let pending: Vec<usize> = (0..tracked.len())
            .filter(|&i| !tracked[i].state.is_terminal())
            .collect();
        if pending.is_empty() {
            break;
        }
        tokio::select! {
            () = (client.settings().sleep)(delay) => {}
            () = &mut stop => break,
        }
        delay = if delay.is_zero() {
            FIRST_POLL
        } else {
            (delay * 2).min(MAX_POLL)
        };
        tokio::select! {
            () = poll_round(client, &mut tracked, &pending, &mut services, &mut on_event) => {}
            () = &mut stop => break,
        }
    }
    tracked.into_iter().map(|t| t.state).collect()
}

/// One look at `jobs`: their status and all the output written so far, a last
/// unfinished line included.
pub async fn look(
    client: &ArmClient,
    jobs: Vec<ResourceId>,
    mut on_event: impl FnMut(FollowEvent<'_>),
) -> Vec<JobState> {
    let mut tracked: Vec<Tracked> = jobs.into_iter().map(Tracked::new).collect();
    for job in &mut tracked {
        job.flush_partial = true;
    }
    let all: Vec<usize> = (0..tracked.len()).collect();
    let mut services = Services::default();
    poll_round(client, &mut tracked, &all, &mut services, &mut on_event).await;
    tracked.into_iter().map(|t| t.state).collect()
}

/// Poll the `pending` jobs of `tracked` at once, then report what each heard, in order.
async fn poll_round(
    client: &ArmClient,
    tracked: &mut [Tracked],
    pending: &[usize],
    services: &mut Services,
    on_event: &mut impl FnMut(FollowEvent<'_>),
) {
    for &i in pending {
        services.discover(client, &tracked[i].workspace).await;
    }
    let services = &*services;
    let polls = join_all(
        tracked
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| pending.contains(i))
            .map(|(_, job)| job.poll(client, services)),
    )
    .await;
    for (&i, heard) in pending.iter().zip(polls) {
        tracked[i].report(heard, on_event);
    }
}

/// One followed job.
struct Tracked {
    state: JobState,
    workspace: ResourceId,
    /// The job's name: its run id in run history.
    name: String,
    /// Bytes of each log read so far, and the line begun at their end.
    logs: BTreeMap<String, LogCursor>,
    /// The logs could not be read, and that was said.
    logs_failed: bool,
    /// Show a last line without its newline yet (a one-time look).
    flush_partial: bool,
}

#[derive(Default)]
struct LogCursor {
    offset: u64,
    partial: Vec<u8>,
}

/// A job's status and studio URL as ARM gives them, and a failed run's error as run
/// history gives it.
struct Seen {
    status: Option<String>,
    studio_url: Option<String>,
    error: Option<String>,
}

impl Seen {
    fn ended(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| TERMINAL.contains(&s))
    }

    fn failed(&self) -> bool {
        self.ended() && self.status.as_deref() != Some("Completed")
    }
}

/// What one poll of a job found.
struct Heard {
    /// What was read of the job (`Err`: the read failed).
    status: Result<Seen, String>,
    lines: Vec<String>,
    logs_error: Option<String>,
    duration: Option<Duration>,
}

impl Tracked {
    fn new(id: ResourceId) -> Tracked {
        let (workspace, name) = id
            .as_str()
            .rsplit_once("/jobs/")
            .map(|(w, n)| (ResourceId::from_plan(w), n.to_string()))
            .unwrap_or_else(|| (id.clone(), id.name().to_string()));
        Tracked {
            state: JobState::new(id),
            workspace,
            name,
            logs: BTreeMap::new(),
            logs_failed: false,
            flush_partial: false,
        }
    }

    /// Read the status, then run history and the new bytes of the logs: read after the
    /// status, a job's last lines are there when it has ended.
    async fn poll(&mut self, client: &ArmClient, services: &Services) -> Heard {
        let status = read_job(client, &self.state.id)
            .await
            .map(|(status, studio_url)| Seen {
                status,
                studio_url,
                error: None,
            });
        let mut heard = Heard {
            status,
            lines: Vec::new(),
            logs_error: None,
            duration: None,
        };
        let ended = heard.status.as_ref().is_ok_and(Seen::ended);
        let wants_error = heard.status.as_ref().is_ok_and(Seen::failed);
        let api = match services.api(&self.workspace) {
            Ok(api) => api,
            Err(error) => {
                heard.logs_error = Some(error);
                return heard;
            }
        };
        match run_details(client, api, &self.workspace, &self.name).await {
            Ok(Details {
                error: run_error,
                logs,
                duration,
            }) => {
                heard.duration = duration;
                if let Ok(seen) = &mut heard.status
                    && wants_error
                {
                    seen.error = run_error;
                }
                for (file, url) in logs {
                    let cursor = self.logs.entry(file).or_default();
                    match read_new(client, &url, cursor).await {
                        Ok(lines) => heard.lines.extend(lines),
                        Err(error) => {
                            heard.logs_error = Some(error);
                            break;
                        }
                    }
                }
                if ended || self.flush_partial {
                    for cursor in self.logs.values_mut() {
                        if !cursor.partial.is_empty() {
                            heard
                                .lines
                                .push(line_text(&std::mem::take(&mut cursor.partial)));
                        }
                    }
                }
            }
            Err(error) => heard.logs_error = Some(error),
        }
        heard
    }

    /// Tell what a poll heard: lines first, then a new status.
    fn report(&mut self, heard: Heard, on_event: &mut impl FnMut(FollowEvent<'_>)) {
        if let Some(error) = heard.logs_error
            && !self.logs_failed
        {
            self.logs_failed = true;
            on_event(FollowEvent::LogsUnavailable {
                id: &self.state.id,
                error,
            });
        }
        for line in &heard.lines {
            on_event(FollowEvent::Line {
                id: &self.state.id,
                line,
            });
        }
        if heard.duration.is_some() {
            self.state.duration = heard.duration;
        }
        match heard.status {
            Ok(Seen {
                status,
                studio_url,
                error,
            }) => {
                if studio_url.is_some() {
                    self.state.studio_url = studio_url;
                }
                if error.is_some() {
                    self.state.error = error;
                }
                if self.state.status != status {
                    self.state.status = status;
                    on_event(FollowEvent::Status(&self.state));
                }
            }
            Err(error) => on_event(FollowEvent::ReadFailed {
                id: &self.state.id,
                error,
            }),
        }
    }
}

/// A job's status and studio URL, from ARM.
async fn read_job(
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
        services: Option<BTreeMap<String, Service>>,
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

/// Each workspace's run history service (`api` of its discovery document), looked up
/// once.
#[derive(Default)]
struct Services {
    api: BTreeMap<ResourceId, Result<Url, String>>,
}

impl Services {
    async fn discover(&mut self, client: &ArmClient, workspace: &ResourceId) {
        if !self.api.contains_key(workspace) {
            let found = discover(client, workspace).await;
            self.api.insert(workspace.clone(), found);
        }
    }

    fn api(&self, workspace: &ResourceId) -> Result<&Url, String> {
        match self.api.get(workspace) {
            Some(Ok(url)) => Ok(url),
            Some(Err(error)) => Err(error.clone()),
            None => Err("its run history was not looked up".into()),
        }
    }
}

/// The workspace's `discoveryUrl`, then its `api` service.
async fn discover(client: &ArmClient, workspace: &ResourceId) -> Result<Url, String> {
    let operation = Operation::new("read workspace", workspace.to_string());
    let response = client
        .send(
            &operation,
            Method::GET,
            client.url_of(workspace),
            None,
            true,
        )
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = response.decode(&operation).map_err(|e| e.to_string())?;
    let discovery = body["properties"]["discoveryUrl"]
        .as_str()
        .ok_or("the workspace has no discoveryUrl")?;
    let discovery = trusted_url(discovery)?;
    // Anonymous, as Azure ML's clients read it.
    let services: serde_json::Value = client
        .http()
        .get(discovery.clone())
        .timeout(client.settings().timeout)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot read {discovery}: {}", describe(e)))?
        .json()
        .await
        .map_err(|e| format!("cannot read {discovery}: {}", describe(e)))?;
    let api = services["api"]
        .as_str()
        .ok_or("the discovery document has no `api` service")?;
    trusted_url(api)
}

/// What run history says of a run.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunDetails {
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    log_files: BTreeMap<String, String>,
    #[serde(default)]
    start_time_utc: Option<String>,
    #[serde(default)]
    end_time_utc: Option<String>,
}

impl RunDetails {
    /// `code: message` of a failed run.
    fn error(&self) -> Option<String> {
        let error = &self.error.as_ref()?["error"];
        let message = error["message"].as_str()?;
        Some(match error["code"].as_str() {
            Some(code) => format!("{code}: {message}"),
            None => message.to_string(),
        })
    }

    /// From its start to its end, once it has ended.
    fn duration(&self) -> Option<Duration> {
        let parse = |t: &Option<String>| {
            time::OffsetDateTime::parse(
                t.as_deref()?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
        };
        let ran = parse(&self.end_time_utc)? - parse(&self.start_time_utc)?;
        Duration::try_from(ran).ok()
    }

    /// The job's own output (`user_logs/std_log*.txt`, as azure-ai-ml picks them), by
    /// name.
    fn std_logs(&self) -> Vec<(String, String)> {
        self.log_files
            .iter()
            .filter(|(name, _)| is_std_log(name))
            .map(|(name, url)| (name.clone(), url.clone()))
            .collect()
    }
}

/// What following needs of run details: a failed run's error, the job's output logs.
struct Details {
    error: Option<String>,
    logs: Vec<(String, String)>,
    duration: Option<Duration>,
}

/// Run details, read from `api` with the ARM token.
async fn run_details(
    client: &ArmClient,
    api: &Url,
    workspace: &ResourceId,
    name: &str,
) -> Result<Details, String> {
    let url = api
        .join(&format!(
            "history/v1.0{}/runs/{name}/details",
            workspace.as_str()
        ))
        .map_err(|e| format!("bad run history URL: {e}"))?;
    let operation = Operation::new("read run history of", format!("{workspace}/jobs/{name}"));
    let response = client
        .send(&operation, Method::GET, url, None, true)
        .await
        .map_err(|e| e.to_string())?;
    let details: RunDetails = response.decode(&operation).map_err(|e| e.to_string())?;
    Ok(Details {
        error: details.error(),
        logs: details.std_logs(),
        duration: details.duration(),
    })
}

/// `user_logs/std_log.txt`, `user_logs/std_log_process_0.txt`, ...: azure-ai-ml's
/// `user_logs/std_log[\D]*[0]*(?:_ps)?\.txt`.
fn is_std_log(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("user_logs/std_log")
        .and_then(|r| r.strip_suffix(".txt"))
    else {
        return false;
    };
    let rest = rest.strip_suffix("_ps").unwrap_or(rest);
    let digits_from = rest
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (letters, digits) = rest.split_at(digits_from);
    !letters.contains('/') && digits.chars().all(|c| c == '0')
}

/// The lines completed since `cursor`, read with `Range` (a SAS URL: no token sent).
async fn read_new(
    client: &ArmClient,
    url: &str,
    cursor: &mut LogCursor,
) -> Result<Vec<String>, String> {
    let url = trusted_url_exact(url)?;
    let mut lines = Vec::new();
    loop {
        let response = client
            .http()
            .get(url.clone())
            .header(
                "x-ms-range",
                format!("bytes={}-{}", cursor.offset, cursor.offset + LOG_READ - 1),
            )
            .header("x-ms-version", crate::azure::blob::STORAGE_VERSION)
            .timeout(client.settings().blob_timeout)
            .send()
            .await
            .map_err(|e| format!("cannot read the job's log: {}", describe(e)))?;
        let bytes = match response.status() {
            StatusCode::RANGE_NOT_SATISFIABLE | StatusCode::NOT_FOUND => return Ok(lines),
            StatusCode::PARTIAL_CONTENT => response.bytes().await,
            // A service that ignores the range sends it all: keep what is new.
            StatusCode::OK => response
                .bytes()
                .await
                .map(|all| all.slice((cursor.offset as usize).min(all.len())..)),
            status => {
                return Err(format!("cannot read the job's log: HTTP {status}"));
            }
        }
        .map_err(|e| format!("cannot read the job's log: {}", describe(e)))?;
        if bytes.is_empty() {
            return Ok(lines);
        }
        cursor.offset += bytes.len() as u64;
        cursor.partial.extend_from_slice(&bytes);
        take_lines(&mut cursor.partial, &mut lines);
        if (bytes.len() as u64) < LOG_READ {
            return Ok(lines);
        }
    }
}

/// Move the complete lines of `buffer` to `lines`, keeping the line begun at its end
/// (cut at [`MAX_LINE`]).
fn take_lines(buffer: &mut Vec<u8>, lines: &mut Vec<String>) {
    let mut start = 0;
    while let Some(at) = buffer[start..].iter().position(|b| *b == b'\n') {
        lines.push(line_text(&buffer[start..start + at]));
        start += at + 1;
    }
    buffer.drain(..start);
    while buffer.len() >= MAX_LINE {
        let piece: Vec<u8> = buffer.drain(..MAX_LINE).collect();
        lines.push(line_text(&piece));
    }
}

/// An HTTP error with its causes, without its URL (a log's URL carries a SAS).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// A service URL from Azure's answers that may receive the token: https, or http on
/// loopback (a local emulator); with a `/` at the end of its path, so that paths join
/// under it.
fn trusted_url(text: &str) -> Result<Url, String> {
    let mut url = trusted_url_exact(text)?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn trusted_url_exact(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("Azure gave a URL that is not valid: {e}"))?;
    let ok = url.scheme() == "https"
        || (url.scheme() == "http" && crate::azure::endpoints::is_loopback(&url));
    if ok {
        Ok(url)
    } else {
        Err(format!(
            "not reading from `{}://{}`: neither https nor loopback",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_https_or_loopback() {
        assert!(trusted_url("https://westeurope.api.azureml.ms").is_ok());
        assert!(trusted_url("http://127.0.0.1:8443/").is_ok());
        assert!(trusted_url("http://westeurope.api.azureml.ms").is_err());
        assert!(trusted_url("ftp://127.0.0.1/").is_err());
        assert_eq!(
            trusted_url("https://h/api").unwrap().as_str(),
            "https://h/api/",
            "joined paths stay under it"
        );
    }

    #[test]
    fn the_job_output_is_the_std_logs_as_azure_ml_picks_them() {
        for name in [
            "user_logs/std_log.txt",
            "user_logs/std_log_process_0.txt",
            "user_logs/std_log_process_00.txt",
            "user_logs/std_log_ps.txt",
        ] {
            assert!(is_std_log(name), "{name}");
        }
        for name in [
            "user_logs/std_log_process_1.txt",
            "user_logs/std_log.log",
            "system_logs/std_log.txt",
            "user_logs/other.txt",
            "user_logs/std_log/x.txt",
        ] {
            assert!(!is_std_log(name), "{name}");
        }
    }

    #[test]
    fn lines_are_cut_at_newlines_and_the_rest_waits() {
        let mut buffer = b"one\r\ntwo\nthr".to_vec();
        let mut lines = Vec::new();
        take_lines(&mut buffer, &mut lines);
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(buffer, b"thr");
        buffer.extend_from_slice(b"ee\n\n");
        take_lines(&mut buffer, &mut lines);
        assert_eq!(lines, ["one", "two", "three", ""]);
        assert!(buffer.is_empty());
        // No newline for too long: shown in pieces.
        buffer.extend(std::iter::repeat_n(b'x', MAX_LINE + 3));
        take_lines(&mut buffer, &mut lines);
        assert_eq!(lines.last().unwrap().len(), MAX_LINE);
        assert_eq!(buffer.len(), 3);
    }
}
