//! Retries, in-process with a clock that records instead of sleeping: Retry-After is
//! honoured, backoff grows, dropped connections and 5xx on reads are retried, and the
//! number of tries is bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use amlspec::azure::client::{ArmClient, ArmError, ClientSettings, Operation, RetryPolicy, Sleep};
use amlspec::desired::Desired;
use amlspec::emulator::{Fault, FaultRule, FaultTarget};
use amlspec::observe;
use amlspec::ops::connect::client_for_emulator;

use crate::cli::azure::{Local, load};

/// A `Sleep` that returns at once and remembers what it was asked to wait.
fn recording_sleep() -> (Sleep, Arc<Mutex<Vec<Duration>>>) {
    let slept = Arc::new(Mutex::new(Vec::new()));
    let record = slept.clone();
    let sleep: Sleep = Arc::new(move |duration| {
        record.lock().unwrap().push(duration);
        Box::pin(async {})
    });
    (sleep, slept)
}

/// `desired` with its workspaces alone, none of their children.
fn workspaces_only(mut desired: Desired) -> Desired {
    for ws in &mut desired.workspaces {
        ws.registries.clear();
        ws.environments.clear();
        ws.existing_environments.clear();
        ws.clusters.clear();
        ws.codes.clear();
        ws.jobs.clear();
    }
    desired
}

fn settings(sleep: Sleep, max_attempts: usize) -> ClientSettings {
    ClientSettings {
        sleep,
        retry: RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        },
        ..ClientSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_and_transient_failures_recover() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 7,
            })
            .times(1)
            .on(FaultTarget::Arm)
            .path_contains("/computes/"),
            FaultRule::always(Fault::ServerError { status: 503 })
                .times(1)
                .on(FaultTarget::Arm)
                .path_contains("/jobs/"),
            FaultRule::always(Fault::DropConnection)
                .times(1)
                .on(FaultTarget::Arm)
                .path_contains("/environments/"),
        ],
        None,
    );
    let (sleep, slept) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 6)).unwrap();
    let observed = observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .expect("transient faults are retried");
    assert!(observed.workspaces[0].clusters[0].present().is_some());
    let slept = slept.lock().unwrap().clone();
    assert!(
        slept.contains(&Duration::from_secs(7)),
        "429 waits its Retry-After: {slept:?}"
    );
    assert!(
        slept.contains(&Duration::from_secs(1)),
        "503 waits its Retry-After: {slept:?}"
    );
    assert_eq!(
        client
            .stats
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    // 1 workspace + registry + environment + cluster + code + job, plus the 3 retries.
    assert_eq!(
        client
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        6 + 3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_are_bounded_and_back_off_exponentially() {
    let azure = Local::start().await;
    let desired = load(&["specs/pets.yaml"]);
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 500 }).on(FaultTarget::Arm)],
        None,
    );
    let (sleep, slept) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 4)).unwrap();
    // The workspace alone: its children's reads, which go alongside, would retry too.
    let errors = observe::observe(&client, &workspaces_only(desired), observe::Preflight::NONE)
        .await
        .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(
            &errors[0],
            ArmError::Status {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{}",
        errors[0]
    );
    let slept = slept.lock().unwrap().clone();
    assert_eq!(slept.len(), 3);
    // 0.5 s doubling, with jitter added on top.
    assert!(
        slept[0] >= Duration::from_millis(500)
            && slept[1] >= Duration::from_secs(1)
            && slept[2] >= Duration::from_secs(2),
        "{slept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_pauses_every_request_in_flight() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    // Only the workspace read is throttled; its children must still wait for the gate.
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 30,
            })
            .times(1)
            .on(FaultTarget::Arm)
            .path_contains("/workspaces/pets-ws"),
        ],
        None,
    );
    let (sleep, slept) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 6)).unwrap();
    observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap();
    let first = slept.lock().unwrap().clone();
    assert_eq!(first.first(), Some(&Duration::from_secs(30)), "{first:?}");
    // The children are read alongside the workspace, so they were on their way before
    // the 429 came. Every request sent after it, while the gate is closed, waits: read
    // again, the workspace and each of its 5 children first wait at the gate.
    observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap();
    let slept = slept.lock().unwrap()[first.len()..].to_vec();
    assert_eq!(slept.len(), 6, "{slept:?}");
    assert!(
        slept
            .iter()
            .all(|d| *d > Duration::from_secs(29) && *d <= Duration::from_secs(30)),
        "{slept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_follow_next_link_to_the_end() {
    let mut config = crate::cli::azure::config();
    config.page_size = 1;
    let azure = Local::start_with(config).await;
    let desired = azure.seed(&["specs/distributed.yaml"]).await;
    let ws = &desired.workspaces[0];
    let client = client_for_emulator(&azure.emulator, ClientSettings::default()).unwrap();
    let operation = Operation::new("list computes", "dist-ws");
    let url = client.url(
        &ws.id.collection("computes"),
        amlspec::azure::ML_API_VERSION,
    );
    let requests = || {
        client
            .stats
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = requests();
    let all = client.list(&operation, url.clone(), None).await.unwrap();
    assert_eq!(
        (all.len(), requests() - before),
        (2, 2),
        "one compute per page, both pages read"
    );
    let before = requests();
    let first = client.list(&operation, url, Some(1)).await.unwrap();
    assert_eq!(
        (first.len(), requests() - before),
        (1, 1),
        "a limit stops paging early"
    );
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_after_retries_keep_the_last_answer() {
    let azure = Local::start().await;
    let desired = load(&["specs/pets.yaml"]);
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 500 }).on(FaultTarget::Arm)],
        None,
    );
    let (sleep, _) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 3)).unwrap();
    let errors = observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap_err();
    let message = errors[0].to_string();
    assert!(
        message.starts_with(
            "failed to read workspace pets-ws: HTTP 500 InternalServerError: Encountered internal server error. (emulated fault) (x-ms-request-id: "
        ) && message.ends_with(") (after 3 tries)"),
        "{message}"
    );
    let ArmError::Status { request_id, .. } = &errors[0] else {
        panic!("{message}")
    };
    assert!(request_id.as_deref().is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_failures_keep_status_code_and_description() {
    let azure = Local::start().await;
    let desired = load(&["specs/pets.yaml"]);
    let tenant = azure.emulator.tenant_id();
    let endpoint = format!(
        "{}/{tenant}/oauth2/v2.0/token",
        azure.emulator.authority_host().trim_end_matches('/')
    );

    // The token endpoint fails every time: retried with the ARM policy, then the last
    // answer is reported.
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 503 }).on(FaultTarget::Token)],
        None,
    );
    let (sleep, slept) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 3)).unwrap();
    let errors = observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap_err();
    let message = errors[0].to_string();
    let expected = format!(
        "failed to read workspace pets-ws: service principal could not get a token for {} from {endpoint}: HTTP 503 ServiceUnavailable: The service is temporarily unavailable. (emulated fault) (x-ms-request-id: ",
        client.endpoints().arm_scope()
    );
    assert!(
        message.starts_with(&expected) && message.ends_with(") (after 3 tries)"),
        "{message}\nexpected: {expected}"
    );
    assert!(
        slept.lock().unwrap().contains(&Duration::from_secs(1)),
        "503 waits its Retry-After"
    );

    // A wrong secret: Entra's status, error, AADSTS code and description; not retried;
    // the secret never shown.
    azure.emulator.admin().clear_faults();
    let wrong_secret = "wrong-secret-never-printed";
    let env: amlspec::spec::interpolate::EnvVars = [
        ("AZURE_TENANT_ID", tenant),
        ("AZURE_CLIENT_ID", azure.emulator.client_id()),
        ("AZURE_CLIENT_SECRET", wrong_secret),
    ]
    .into_iter()
    .collect();
    let pem = azure.emulator.ca_cert_pem().unwrap();
    let settings = ClientSettings::default();
    let credential = amlspec::azure::auth::credential(
        amlspec::azure::auth::AuthMethod::ServicePrincipal,
        client.endpoints(),
        &env,
        amlspec::azure::Trust::Only(pem),
        &settings,
    )
    .unwrap();
    let http = amlspec::azure::http_client(amlspec::azure::Trust::Only(pem), &settings).unwrap();
    let client = ArmClient::new(http, client.endpoints().clone(), credential, settings);
    let errors = observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap_err();
    let message = errors[0].to_string();
    assert!(
        message.contains(&format!(
            "from {endpoint}: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided."
        )) && message.contains("(x-ms-request-id: ")
            && !message.contains("after"),
        "{message}"
    );
    assert!(!message.contains(wrong_secret), "{message}");
    assert!(!message.contains("Trace ID"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_on_a_post_is_not_retried() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let ws = desired.workspaces[0].id.to_string();
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::ServerError { status: 500 })
                .times(2)
                .on(FaultTarget::Arm)
                .method("POST"),
        ],
        None,
    );
    let (sleep, slept) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 6)).unwrap();
    let url = azure.arm_url(&format!("{ws}/codes/probe/versions/1/startPendingUpload"));
    let body = serde_json::json!({"pendingUploadType": "TemporaryBlobReference"});
    let operation = Operation::new("start an upload for", "code probe");
    let error = client
        .send(
            &operation,
            reqwest::Method::POST,
            url.clone(),
            Some(body.clone()),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ArmError::Status {
                status: 500,
                attempts: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(count(&client.stats.requests), 1);
    assert!(slept.lock().unwrap().is_empty());
    // The same request marked idempotent is tried again (and the fault is spent).
    client
        .send(&operation, reqwest::Method::POST, url, Some(body), true)
        .await
        .unwrap();
    assert_eq!(count(&client.stats.retries), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_three_minute_budget_ends_a_throttling_storm() {
    let azure = Local::start().await;
    let desired = load(&["specs/pets.yaml"]);
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 50,
            })
            .on(FaultTarget::Arm),
        ],
        None,
    );
    let (sleep, _) = recording_sleep();
    // Tries are no limit here: the budget is.
    let client = client_for_emulator(&azure.emulator, settings(sleep, 100)).unwrap();
    let errors = observe::observe(&client, &desired, observe::Preflight::NONE)
        .await
        .unwrap_err();
    let message = errors[0].to_string();
    // Tries at 0, 50, 100 and 150 s; the next would be at 200 s, past 180 s.
    assert!(
        matches!(
            &errors[0],
            ArmError::Status {
                status: 429,
                attempts: 4,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("HTTP 429 TooManyRequests: ") && message.ends_with("(after 4 tries)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_once() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let (sleep, _) = recording_sleep();
    let client = client_for_emulator(&azure.emulator, settings(sleep, 6)).unwrap();
    let workspace = desired.workspaces[0].id.to_string();
    let operation = Operation::new("read", "workspace pets-ws");
    let read = || client.get(&operation, azure.arm_url(&workspace));
    read().await.unwrap();

    // Every token issued so far is revoked: azure_identity's cache still holds one, so
    // the renewal must get past it.
    azure.emulator.admin().expire_tokens();
    let before = count(&client.stats.requests);
    read().await.expect("the token is renewed");
    assert_eq!(count(&client.stats.requests) - before, 2);

    // One 401 ExpiredAuthenticationToken whatever the token: one renewal, then success.
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::ExpiredToken)
                .times(1)
                .on(FaultTarget::Arm),
        ],
        None,
    );
    read().await.expect("one expired answer is survived");

    // A second 401 after the renewal is an error, reported as ARM sent it.
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ExpiredToken).on(FaultTarget::Arm)],
        None,
    );
    let before = count(&client.stats.requests);
    let error = read().await.unwrap_err();
    assert_eq!(count(&client.stats.requests) - before, 2);
    assert!(
        error
            .to_string()
            .starts_with("failed to read workspace pets-ws: HTTP 401 ExpiredAuthenticationToken: "),
        "{error}"
    );
}
