//! Retries, in-process with a clock that records instead of sleeping: Retry-After is
//! honoured, backoff grows, dropped connections and 5xx on reads are retried, and the
//! number of tries is bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use amlspec::azure::client::{ArmError, ClientSettings, Operation, RetryPolicy, Sleep};
use amlspec::commands::connect::client_for_emulator;
use amlspec::emulator::{Fault, FaultRule, FaultTarget};
use amlspec::observe;

use crate::azure::{Local, load};

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
    let observed = observe::observe(&client, &desired)
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
    let errors = observe::observe(&client, &desired).await.unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(&errors[0], ArmError::Status { status: 500, attempts: 4, .. }),
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
    observe::observe(&client, &desired).await.unwrap();
    let slept = slept.lock().unwrap().clone();
    assert_eq!(slept.first(), Some(&Duration::from_secs(30)), "{slept:?}");
    // The retry, and each of the 5 children read after it, first waited at the gate.
    assert!(slept.len() >= 6, "{slept:?}");
    assert!(
        slept
            .iter()
            .all(|d| *d > Duration::from_secs(29) && *d <= Duration::from_secs(30)),
        "{slept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_follow_next_link_to_the_end() {
    let mut config = crate::azure::config();
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
