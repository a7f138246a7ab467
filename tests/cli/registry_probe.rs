//! The registry probe (`azure::registry`) against the in-process emulator's ACR-style
//! registry over TLS, trusting its CA: every outcome a plan's image check can report,
//! what each costs in requests, and a password that never shows.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amlspec::azure::Trust;
use amlspec::azure::client::ClientSettings;
use amlspec::azure::registry::{ImageRef, Pullable, RegistryClient, RegistryCredentials};
use amlspec::emulator::{
    Emulator, EmulatorConfig, Fault, FaultRule, FaultTarget, RegistrySeed, RegistryUser,
    RepositorySeed, TlsConfig,
};
use amlspec::secret::Secret;

const HOST: &str = "myregistry.azurecr.io";
const CANARY: &str = "canary-Pa55w0rd-7f3e";

struct Probe {
    emu: Emulator,
    client: RegistryClient,
}

/// The emulator over TLS with one registry: `myregistry` may pull everything (password
/// [`CANARY`]), `teamtoken` only `team/app`.
async fn probe() -> Probe {
    probe_of(&[HOST]).await
}

/// The emulator over TLS serving [`HOST`]'s registry at each of `hosts`.
async fn probe_of(hosts: &[&str]) -> Probe {
    let registry = |host: &str| RegistrySeed {
        host: host.into(),
        users: vec![
            RegistryUser {
                username: "myregistry".into(),
                password: CANARY.into(),
                repositories: None,
            },
            RegistryUser {
                username: "teamtoken".into(),
                password: "team-password".into(),
                repositories: Some(vec!["team/app".into()]),
            },
        ],
        repositories: vec![
            RepositorySeed {
                name: "team/app".into(),
                tags: vec!["1.0".into()],
            },
            RepositorySeed {
                name: "secret/base".into(),
                tags: vec!["v1".into()],
            },
        ],
        anonymous_pull: false,
    };
    let emu = Emulator::start(EmulatorConfig {
        tls: TlsConfig::SelfSigned { write_ca_to: None },
        registries: hosts.iter().map(|host| registry(host)).collect(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let ca = emu.ca_cert_pem().expect("self-signed CA");
    let routes: Vec<_> = hosts.iter().map(|host| (*host, emu.addr())).collect();
    let client =
        RegistryClient::with_resolve(Trust::Only(ca), &ClientSettings::default(), &routes).unwrap();
    Probe { emu, client }
}

fn creds(username: &str, password: &str) -> RegistryCredentials {
    RegistryCredentials {
        username: username.into(),
        password: Secret::new(password.into()),
    }
}

fn image(text: &str) -> ImageRef {
    ImageRef::parse(text).unwrap()
}

impl Probe {
    async fn ask(&self, text: &str, credentials: Option<RegistryCredentials>) -> Pullable {
        self.client.probe(&image(text), credentials.as_ref()).await
    }

    /// Registry requests answered so far: (GET, HEAD).
    fn requests(&self) -> (u64, u64) {
        let t = self.emu.admin().traffic();
        let n = |m: &str| t.registry.get(m).copied().unwrap_or(0);
        (n("GET"), n("HEAD"))
    }
}

#[tokio::test]
async fn right_credentials_pull_with_the_emulators_digest_in_three_requests() {
    let p = probe().await;
    let digest = p.emu.admin().image_digest(HOST, "team/app", "1.0").unwrap();
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:1.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(digest.clone())
        }
    );
    assert_eq!(p.requests(), (2, 1), "GET /v2/, GET token, HEAD manifest");
    // By digest, and with the user limited to that repository.
    let outcome = p
        .ask(
            &format!("{HOST}/team/app@{digest}"),
            Some(creds("teamtoken", "team-password")),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(digest)
        }
    );
}

/// An Azure Container Registry's token is asked alongside `GET /v2/`, not after its
/// answer: with the ping's answer lost, the token request has still been made (and
/// the probe is no slower for it). Any other registry's realm is learnt from its
/// challenge, so there the token waits for the ping.
#[tokio::test]
async fn an_acr_token_is_asked_without_waiting_for_the_challenge() {
    const OTHER: &str = "registry.example.test";
    let p = probe_of(&[HOST, OTHER]).await;
    let (admin, client) = (p.emu.admin(), &p.client);
    for (host, gets) in [(HOST, 2), (OTHER, 1)] {
        admin.reset_traffic();
        admin.add_fault(
            FaultRule::always(Fault::LoseAnswer)
                .on(FaultTarget::Registry)
                .path_contains("/v2/")
                .times(1),
        );
        let (wanted, given) = (
            image(&format!("{host}/team/app:1.0")),
            creds("myregistry", CANARY),
        );
        let outcome = client.probe(&wanted, Some(&given)).await;
        assert!(
            matches!(outcome, Pullable::Unreachable { .. }),
            "{host}: {outcome:?}"
        );
        assert_eq!(p.requests(), (gets, 0), "{host}");
        // Answered, both cost the same three requests.
        admin.reset_traffic();
        let outcome = client.probe(&wanted, Some(&given)).await;
        assert!(
            matches!(outcome, Pullable::Yes { .. }),
            "{host}: {outcome:?}"
        );
        assert_eq!(p.requests(), (2, 1), "{host}");
    }
}

#[tokio::test]
async fn a_moved_tag_shows_its_new_digest() {
    let p = probe().await;
    let before = p.emu.admin().image_digest(HOST, "team/app", "1.0").unwrap();
    let after = p.emu.admin().push_image(HOST, "team/app", "1.0").unwrap();
    assert_ne!(before, after);
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:1.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(after)
        }
    );
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_at_the_token_endpoint() {
    let p = probe().await;
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:1.0"),
            Some(creds("myregistry", "wrong")),
        )
        .await;
    let Pullable::Unauthorized { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(message.starts_with("UNAUTHORIZED: "), "{message}");
    assert!(outcome.blocks());
    assert_eq!(
        p.requests(),
        (2, 0),
        "no manifest request after a refused token"
    );
}

#[tokio::test]
async fn a_user_limited_to_another_repository_is_denied() {
    let p = probe().await;
    let outcome = p
        .ask(
            &format!("{HOST}/secret/base:v1"),
            Some(creds("teamtoken", "team-password")),
        )
        .await;
    assert!(matches!(outcome, Pullable::Denied { .. }), "{outcome:?}");
    assert_eq!(p.requests(), (3, 1), "the HEAD's 401 is read again by GET");
}

#[tokio::test]
async fn a_missing_tag_and_a_missing_repository_are_told_apart() {
    let p = probe().await;
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:2.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    let Pullable::MissingTag { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        message,
        "MANIFEST_UNKNOWN: manifest tagged by \"2.0\" is not found"
    );
    let outcome = p
        .ask(
            &format!("{HOST}/nope/app:1.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    let Pullable::MissingRepository { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(message.starts_with("NAME_UNKNOWN: "), "{message}");
    // A removed tag is missing too, though its manifest stays by digest.
    let digest = p.emu.admin().image_digest(HOST, "team/app", "1.0").unwrap();
    assert!(p.emu.admin().remove_tag(HOST, "team/app", "1.0").unwrap());
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:1.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    assert!(
        matches!(outcome, Pullable::MissingTag { .. }),
        "{outcome:?}"
    );
    let outcome = p
        .ask(
            &format!("{HOST}/team/app@{digest}"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(digest)
        }
    );
}

#[tokio::test]
async fn anonymous_on_a_private_registry_is_unauthorized() {
    let p = probe().await;
    let outcome = p.ask(&format!("{HOST}/team/app:1.0"), None).await;
    assert!(
        matches!(outcome, Pullable::Unauthorized { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_unreachable_and_a_warning() {
    let p = probe().await;
    p.emu
        .admin()
        .add_fault(FaultRule::always(Fault::DropConnection).on(FaultTarget::Registry));
    let outcome = p
        .ask(
            &format!("{HOST}/team/app:1.0"),
            Some(creds("myregistry", CANARY)),
        )
        .await;
    let Pullable::Unreachable { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        message.starts_with(&format!("https://{HOST}/v2/: ")),
        "{message}"
    );
    assert!(!outcome.blocks());
}

#[tokio::test]
async fn a_loopback_port_nothing_listens_on_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = RegistryClient::new(Trust::System, &ClientSettings::default()).unwrap();
    let outcome = client
        .probe(&image(&format!("127.0.0.1:{port}/app:v1")), None)
        .await;
    let Pullable::Unreachable { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        message.starts_with(&format!("http://127.0.0.1:{port}/v2/: ")),
        "{message}"
    );
}

/// A registry that takes the connection and never answers: the budget ends the probe.
/// Time is paused, so the budget passes as soon as nothing else can happen.
#[tokio::test(start_paused = true)]
async fn a_registry_that_never_answers_is_unreachable_within_the_budget() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let client = RegistryClient::new(Trust::System, &ClientSettings::default())
        .unwrap()
        .with_budget(Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let outcome = client
        .probe(&image(&format!("127.0.0.1:{port}/app:v1")), None)
        .await;
    assert_eq!(
        outcome,
        Pullable::Unreachable {
            message: "no answer within 3 s".into()
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    drop(silent);
}

#[tokio::test]
async fn routed_to_the_emulator_every_registry_host_reaches_it() {
    let p = probe().await;
    let client = RegistryClient::routed_to(
        Trust::Only(p.emu.ca_cert_pem().unwrap()),
        &ClientSettings::default(),
        p.emu.addr(),
    )
    .unwrap();
    let outcome = client
        .probe(
            &image("MyRegistry.AzureCR.io/team/app:1.0"),
            Some(&creds("teamtoken", "team-password")),
        )
        .await;
    assert!(
        matches!(outcome, Pullable::Yes { digest: Some(_) }),
        "{outcome:?}"
    );
    // A registry the emulator does not serve is not a registry: a warning.
    let outcome = client
        .probe(&image("other.azurecr.io/team/app:1.0"), None)
        .await;
    let Pullable::Unreachable { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(message.starts_with("not a registry: "), "{message}");
}

/// Everything the tracing subscriber writes, at trace level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_password_never_shows_in_outcomes_or_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Other tests of this binary hit the same callsites at the same time on threads
    // without a subscriber. With one dispatcher registered, tracing-core asks only the
    // registering thread's, caches "never", and this thread's events vanish; with two,
    // it asks both, and each event asks this thread's.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let p = probe().await;
    p.emu
        .admin()
        .set_registry_user(
            HOST,
            RegistryUser {
                username: "limited".into(),
                password: CANARY.into(),
                repositories: Some(vec!["team/app".into()]),
            },
        )
        .unwrap();
    let mut shown = Vec::new();
    for (text, user, password) in [
        ("team/app:1.0", "myregistry", CANARY),
        ("team/app:2.0", "myregistry", CANARY),
        ("nope/app:1.0", "myregistry", CANARY),
        ("secret/base:v1", "limited", CANARY),
        (
            "team/app:1.0",
            "myregistry",
            &format!("{CANARY}-wrong") as &str,
        ),
    ] {
        let credentials = creds(user, password);
        shown.push(format!("{credentials:?}"));
        let outcome = p.ask(&format!("{HOST}/{text}"), Some(credentials)).await;
        shown.push(format!("{outcome} {outcome:?}"));
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("registry answered"),
        "the log was captured: {log}"
    );
    // Nor as a Basic header would carry it.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("myregistry:{CANARY}"),
    );
    for text in shown.iter().chain([&log]) {
        assert!(!text.contains(CANARY) && !text.contains(&basic), "{text}");
    }
}

/// A request a stand-in registry saw: method, `Host` header, path, `Authorization`.
type Seen = Arc<Mutex<Vec<(String, String, String, Option<String>)>>>;

/// A stand-in registry on loopback (plain http), for what the emulator does not do:
/// an open registry, a Basic challenge, redirects. `answer` gets (method, host, path,
/// authorization, port).
async fn stand_in(
    answer: fn(&str, &str, &str, Option<&str>, u16) -> axum::response::Response,
) -> (u16, Seen) {
    use axum::http::{HeaderMap, Method, Uri};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let (host, auth) = (header("host").unwrap_or_default(), header("authorization"));
            record.lock().unwrap().push((
                method.to_string(),
                host.clone(),
                uri.path().to_string(),
                auth.clone(),
            ));
            answer(method.as_str(), &host, uri.path(), auth.as_deref(), port)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn reply(status: u16, headers: &[(&str, String)], body: &str) -> axum::response::Response {
    let mut r = axum::response::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(axum::body::Body::from(body.to_string())).unwrap()
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn an_open_registry_costs_two_requests_and_no_credentials_are_sent() {
    let (port, seen) = stand_in(|method, _, path, _, _| match (method, path) {
        ("GET", "/v2/") => reply(200, &[], "{}"),
        ("HEAD", "/v2/library/app/manifests/v1") => {
            reply(200, &[("docker-content-digest", DIGEST.into())], "")
        }
        _ => reply(404, &[], ""),
    })
    .await;
    let client = RegistryClient::new(Trust::System, &ClientSettings::default()).unwrap();
    let outcome = client
        .probe(
            &image(&format!("localhost:{port}/library/app:v1")),
            Some(&creds("u", CANARY)),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(DIGEST.into())
        }
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|(.., auth)| auth.is_none()), "{seen:?}");
}

#[tokio::test]
async fn a_basic_challenge_sends_basic_to_the_manifest_directly() {
    fn answer(
        method: &str,
        _: &str,
        path: &str,
        auth: Option<&str>,
        _: u16,
    ) -> axum::response::Response {
        let challenge = [(
            "www-authenticate",
            "basic realm=\"Registry Realm\"".to_string(),
        )];
        let right = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("u:{CANARY}"),
        );
        match (method, path, auth) {
            ("GET", "/v2/", _) => reply(401, &challenge, ""),
            ("HEAD" | "GET", "/v2/app/manifests/v1", Some(a)) if a == format!("Basic {right}") => {
                reply(200, &[("docker-content-digest", DIGEST.into())], "")
            }
            ("HEAD", "/v2/app/manifests/v1", _) => reply(401, &challenge, ""),
            ("GET", "/v2/app/manifests/v1", _) => reply(
                401,
                &challenge,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ),
            _ => reply(404, &[], ""),
        }
    }
    let (port, seen) = stand_in(answer).await;
    let client = RegistryClient::new(Trust::System, &ClientSettings::default()).unwrap();
    let app = image(&format!("127.0.0.1:{port}/app:v1"));
    let outcome = client.probe(&app, Some(&creds("u", CANARY))).await;
    assert_eq!(
        outcome,
        Pullable::Yes {
            digest: Some(DIGEST.into())
        }
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    let outcome = client.probe(&app, Some(&creds("u", "wrong"))).await;
    assert_eq!(
        outcome,
        Pullable::Unauthorized {
            message: "UNAUTHORIZED: authentication required".into()
        }
    );
    let outcome = client.probe(&app, None).await;
    assert!(
        matches!(outcome, Pullable::Unauthorized { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn redirects_to_another_host_lose_the_credentials_and_plain_http_is_refused() {
    fn answer(
        method: &str,
        host: &str,
        path: &str,
        _: Option<&str>,
        port: u16,
    ) -> axum::response::Response {
        let challenge = [("www-authenticate", "Basic realm=r".to_string())];
        match (method, host.split(':').next().unwrap_or_default(), path) {
            ("GET", _, "/v2/") => reply(401, &challenge, ""),
            // From 127.0.0.1 to localhost: another host, same server.
            (_, "127.0.0.1", "/v2/app/manifests/v1") => reply(
                307,
                &[(
                    "location",
                    format!("http://localhost:{port}/v2/app/manifests/v1"),
                )],
                "",
            ),
            (_, "127.0.0.1", "/v2/app/manifests/v2") => reply(
                307,
                &[(
                    "location",
                    "http://registry.invalid/v2/app/manifests/v2".into(),
                )],
                "",
            ),
            (_, "localhost", _) => reply(
                401,
                &challenge,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"no credentials arrived"}]}"#,
            ),
            _ => reply(404, &[], ""),
        }
    }
    let (port, seen) = stand_in(answer).await;
    let client = RegistryClient::new(Trust::System, &ClientSettings::default()).unwrap();
    let outcome = client
        .probe(
            &image(&format!("127.0.0.1:{port}/app:v1")),
            Some(&creds("u", CANARY)),
        )
        .await;
    assert_eq!(
        outcome,
        Pullable::Unauthorized {
            message: "UNAUTHORIZED: no credentials arrived".into()
        }
    );
    let seen_now = seen.lock().unwrap().clone();
    let redirected: Vec<_> = seen_now
        .iter()
        .filter(|(_, host, ..)| host.starts_with("localhost"))
        .collect();
    assert!(!redirected.is_empty(), "{seen_now:?}");
    assert!(
        redirected.iter().all(|(.., auth)| auth.is_none()),
        "{seen_now:?}"
    );
    assert!(
        seen_now
            .iter()
            .any(|(_, host, _, auth)| host.starts_with("127.0.0.1") && auth.is_some()),
        "credentials went to the registry itself: {seen_now:?}"
    );

    let outcome = client
        .probe(
            &image(&format!("127.0.0.1:{port}/app:v2")),
            Some(&creds("u", CANARY)),
        )
        .await;
    let Pullable::Unreachable { message } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(message.contains("not https"), "{message}");
}
