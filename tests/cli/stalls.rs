//! Stalled endpoints end in one clear error naming them: a token endpoint that accepts
//! and never answers, an `az` that never returns, a blob service that never answers.
//! On tokio's paused clock: the timeouts pass without waiting for them.

use std::time::Duration;

use amlspec::azure::Trust;
use amlspec::azure::auth::{self, AuthMethod};
use amlspec::azure::blob::{BlobAuth, BlobClient, Container};
use amlspec::azure::client::{ArmClient, ClientSettings, Operation, RetryPolicy};
use amlspec::azure::endpoints::{Cloud, Endpoints};
use amlspec::emulator::{Fault, FaultRule, FaultTarget};
use amlspec::ids::ResourceId;
use amlspec::ops::connect::client_for_emulator;
use amlspec::spec::interpolate::EnvVars;
use amlspec::spec::secret::Secret;
use tokio::net::TcpListener;
use tokio::time::Instant;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_SECRET: &str = "never-shown-client-secret";

/// A server on 127.0.0.1 that accepts connections and never answers, not even the TLS
/// handshake; its base URL.
async fn stalled_server(scheme: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("{scheme}://{address}/")
}

/// Short enough that the test is quick, long enough to tell the timeouts apart: the
/// connect timeout is longer than the token timeout, so whichever fires, it is the
/// token's.
fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(60),
        token_timeout: Duration::from_secs(30),
        blob_timeout: Duration::from_secs(20),
        ..ClientSettings::default()
    }
}

/// `work`, or a failure once 10 minutes have passed (on the paused clock: at once)
/// instead of hanging the suite.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(600), work)
        .await
        .expect("the call gave up on its own, well within 10 minutes")
}

async fn read_something(client: &ArmClient) -> String {
    let url = client.url(
        &ResourceId::resource_group("00000000-0000-0000-0000-000000000001", "rg"),
        amlspec::azure::RESOURCES_API_VERSION,
    );
    client
        .get(&Operation::new("read", "resource group rg"), url)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_token_endpoint_ends_in_one_error_naming_it() {
    let authority = stalled_server("https").await;
    let endpoints = Endpoints::with_overrides(Cloud::Public, None, Some(&authority), None).unwrap();
    let env: EnvVars = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", "client"),
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
    ]
    .into_iter()
    .collect();
    let settings = settings();
    let credential = auth::credential(
        AuthMethod::ServicePrincipal,
        &endpoints,
        &env,
        Trust::System,
        &settings,
    )
    .unwrap();
    let http = amlspec::azure::http_client(Trust::System, &settings).unwrap();
    let client = ArmClient::new(http, endpoints, credential, settings);
    let started = Instant::now();
    let error = bounded(read_something(&client)).await;
    assert_eq!(
        error,
        format!(
            "failed to read resource group rg: service principal: timed out after 30 s waiting for a token from {authority}{TENANT}/oauth2/v2.0/token"
        )
    );
    assert!(!error.contains(CLIENT_SECRET));
    // One try: a stall is not tried again.
    assert!(
        started.elapsed() < Duration::from_secs(31),
        "{:?}",
        started.elapsed()
    );
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn an_az_that_never_answers_ends_in_one_error() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let az = bin.path().join("az");
    std::fs::write(&az, "#!/bin/sh\nsleep 30\n").unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let env: EnvVars = [("PATH", path.as_str())].into_iter().collect();
    let endpoints = Endpoints::for_cloud(Cloud::Public);
    let settings = settings();
    let credential = auth::credential(
        AuthMethod::AzureCli,
        &endpoints,
        &env,
        Trust::System,
        &settings,
    )
    .unwrap();
    let http = amlspec::azure::http_client(Trust::System, &settings).unwrap();
    let client = ArmClient::new(http, endpoints, credential, settings);
    let error = bounded(read_something(&client)).await;
    assert_eq!(
        error,
        "failed to read resource group rg: Azure CLI: timed out after 30 s waiting for a token from `az account get-access-token`"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_blob_service_times_out_per_try() {
    let base = stalled_server("http").await;
    let container = Container {
        url: url::Url::parse(&format!("{base}devstoreaccount1/c")).unwrap(),
        auth: BlobAuth::Sas(Secret::new("sv=2023-11-03&sig=x".into())),
    };
    let settings = ClientSettings {
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
        ..settings()
    };
    let http = amlspec::azure::http_client(Trust::System, &settings).unwrap();
    let client = BlobClient::new(http, container, settings);
    let started = Instant::now();
    let error = bounded(client.put_blob("x.txt", b"x".to_vec()))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "failed to upload x.txt: no answer within 20 s (after 2 tries)"
    );
    // Two tries of 20 s and one backoff between them.
    assert!(
        started.elapsed() >= Duration::from_secs(40) && started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
}

/// The emulator's token endpoint answering after 10 minutes (the `latency` fault): the
/// stall is after the TLS handshake, in the HTTP exchange.
#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_answers_too_late_ends_in_one_error() {
    let azure = crate::cli::azure::Local::start().await;
    azure.emulator.admin().set_faults(
        vec![
            FaultRule::always(Fault::Latency {
                fixed_ms: 600_000,
                jitter_ms: 0,
            })
            .on(FaultTarget::Token),
        ],
        None,
    );
    let client = client_for_emulator(&azure.emulator, settings()).unwrap();
    let started = Instant::now();
    let error = bounded(read_something(&client)).await;
    let endpoint = format!(
        "{}/{}/oauth2/v2.0/token",
        azure.emulator.authority_host().trim_end_matches('/'),
        azure.emulator.tenant_id()
    );
    assert_eq!(
        error,
        format!(
            "failed to read resource group rg: service principal: timed out after 30 s waiting for a token from {endpoint}"
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(31),
        "{:?}",
        started.elapsed()
    );
}
