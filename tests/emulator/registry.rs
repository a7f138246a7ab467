//! Container registries: ACR's token auth and the OCI distribution read API, reached by
//! Host header on the emulator's port, seeded through the admin handle and `/admin`.

use amlspec::emulator::{
    ADMIN_KEY_HEADER, Emulator, EmulatorConfig, FaultRule, FaultTarget, OCI_MANIFEST, RegistrySeed,
    RegistryUser, RepositorySeed, TlsConfig,
};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::support::{explicit, start_emulator};

pub const HOST: &str = "myregistry.azurecr.io";

/// A registry with an all-repositories user, a user limited to `team/app`, and images
/// `fastdotai/fastai2:latest`, `team/app:1.0` and `secret/base:v1`.
pub fn seed() -> RegistrySeed {
    RegistrySeed {
        host: HOST.into(),
        users: vec![
            RegistryUser {
                username: "myregistry".into(),
                password: "right-password".into(),
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
                name: "fastdotai/fastai2".into(),
                tags: vec!["latest".into()],
            },
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
    }
}

struct Reg {
    emu: Emulator,
    http: reqwest::Client,
    base: String,
}

async fn registry(config: EmulatorConfig) -> Reg {
    let emu = start_emulator(config).await;
    emu.admin().add_registry(seed()).unwrap();
    let http = emu.reqwest_client_builder().build().unwrap();
    let base = emu.registry_endpoint(HOST);
    assert!(emu.serves_registry("MyRegistry.azurecr.io:443"));
    assert!(!emu.serves_registry("other.azurecr.io"));
    Reg { emu, http, base }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Reg {
    async fn send(&self, method: Method, path: &str, auth: Option<&str>) -> reqwest::Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }

    async fn token(&self, user: &str, password: &str, repository: &str) -> reqwest::Response {
        self.send(
            Method::GET,
            &format!("/oauth2/token?service={HOST}&scope=repository:{repository}:pull"),
            Some(&basic(user, password)),
        )
        .await
    }

    async fn bearer(&self, user: &str, password: &str, repository: &str) -> String {
        let r = self.token(user, password, repository).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        format!("Bearer {}", body["access_token"].as_str().unwrap())
    }
}

async fn error_code(r: reqwest::Response) -> (StatusCode, String, Value) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        body["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body,
    )
}

#[tokio::test]
async fn v2_challenges_with_the_acr_realm_and_service() {
    let reg = registry(explicit()).await;
    let r = reg.send(Method::GET, "/v2/", None).await;
    assert_eq!(r.status(), 401);
    let port = reg.emu.addr().port();
    assert_eq!(
        r.headers()["www-authenticate"],
        format!("Bearer realm=\"http://{HOST}:{port}/oauth2/token\",service=\"{HOST}\"").as_str()
    );
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let (_, code, body) = error_code(r).await;
    assert_eq!(code, "UNAUTHORIZED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aka.ms/acr/authorization")
    );

    let token = reg
        .bearer("myregistry", "right-password", "fastdotai/fastai2")
        .await;
    let r = reg.send(Method::GET, "/v2/", Some(&token)).await;
    assert_eq!(r.status(), 200);
    let r = reg
        .send(
            Method::GET,
            "/v2/",
            Some(&basic("myregistry", "right-password")),
        )
        .await;
    assert_eq!(r.status(), 200, "ACR takes Basic directly too");
    let r = reg.send(Method::GET, "/v2/", Some("Bearer forged")).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_token_endpoint_takes_basic_and_refuses_a_wrong_password() {
    let reg = registry(explicit()).await;
    let r = reg
        .token("myregistry", "right-password", "fastdotai/fastai2")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    for (user, password) in [
        ("myregistry", "wrong"),
        ("nobody", "right-password"),
        ("myregistry", ""),
    ] {
        let r = reg.token(user, password, "fastdotai/fastai2").await;
        let (status, code, _) = error_code(r).await;
        assert_eq!(
            (status.as_u16(), code.as_str()),
            (401, "UNAUTHORIZED"),
            "{user}"
        );
    }
    let r = reg
        .send(
            Method::GET,
            &format!("/oauth2/token?service={HOST}&scope=repository:x:pull"),
            None,
        )
        .await;
    assert_eq!(r.status(), 401, "no anonymous pull");
    let r = reg
        .send(
            Method::GET,
            "/oauth2/token?service=other.azurecr.io&scope=repository:team/app:pull",
            Some(&basic("myregistry", "right-password")),
        )
        .await;
    assert_eq!(r.status(), 401, "a token for another registry's service");
}

#[tokio::test]
async fn the_token_endpoint_takes_password_and_refresh_token_grants_by_post() {
    let reg = registry(explicit()).await;
    let url = format!("{}/oauth2/token", reg.base);
    let r = reg
        .http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("service", HOST),
            ("scope", "repository:team/app:pull"),
            ("username", "teamtoken"),
            ("password", "team-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let r = reg
        .http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", HOST),
            ("scope", "repository:team/app:pull"),
            ("refresh_token", &refresh),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access: Value = r.json().await.unwrap();
    let token = format!("Bearer {}", access["access_token"].as_str().unwrap());
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", Some(&token))
        .await;
    assert_eq!(r.status(), 200);
    // A refresh token is not an access token, and a tampered one is refused.
    let r = reg
        .send(
            Method::HEAD,
            "/v2/team/app/manifests/1.0",
            Some(&format!("Bearer {refresh}")),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = reg
        .http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", HOST),
            ("refresh_token", &format!("{refresh}x")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reg
        .http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("service", HOST),
            ("username", "teamtoken"),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn manifests_answer_head_and_get_with_digest_type_and_length() {
    let reg = registry(explicit()).await;
    let expected = reg
        .emu
        .admin()
        .image_digest(HOST, "fastdotai/fastai2", "latest")
        .unwrap();
    let token = reg
        .bearer("myregistry", "right-password", "fastdotai/fastai2")
        .await;
    let head = reg
        .send(
            Method::HEAD,
            "/v2/fastdotai/fastai2/manifests/latest",
            Some(&token),
        )
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["docker-content-digest"], expected.as_str());
    assert_eq!(head.headers()["content-type"], OCI_MANIFEST);
    let head_length: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(head.bytes().await.unwrap().is_empty());

    let get = reg
        .send(
            Method::GET,
            "/v2/fastdotai/fastai2/manifests/latest",
            Some(&token),
        )
        .await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["docker-content-digest"], expected.as_str());
    let bytes = get.bytes().await.unwrap();
    assert_eq!(bytes.len(), head_length);
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        expected
    );

    // By digest, and the blobs the manifest names.
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    let by_digest = reg
        .send(
            Method::GET,
            &format!("/v2/fastdotai/fastai2/manifests/{expected}"),
            Some(&token),
        )
        .await;
    assert_eq!(by_digest.status(), 200);
    for d in [&manifest["config"], &manifest["layers"][0]] {
        let digest = d["digest"].as_str().unwrap();
        let path = format!("/v2/fastdotai/fastai2/blobs/{digest}");
        let head = reg.send(Method::HEAD, &path, Some(&token)).await;
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["docker-content-digest"], digest);
        assert_eq!(
            head.headers()["content-length"].to_str().unwrap(),
            d["size"].to_string()
        );
        let blob = reg
            .send(Method::GET, &path, Some(&token))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&blob))),
            digest
        );
    }
    let config: Value = serde_json::from_slice(
        &reg.send(
            Method::GET,
            &format!(
                "/v2/fastdotai/fastai2/blobs/{}",
                manifest["config"]["digest"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await
        .bytes()
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    let missing = reg
        .send(
            Method::GET,
            "/v2/fastdotai/fastai2/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            Some(&token),
        )
        .await;
    let (status, code, _) = error_code(missing).await;
    assert_eq!((status.as_u16(), code.as_str()), (404, "BLOB_UNKNOWN"));

    let tags = reg
        .send(Method::GET, "/v2/fastdotai/fastai2/tags/list", Some(&token))
        .await;
    let tags: Value = tags.json().await.unwrap();
    assert_eq!(
        tags,
        json!({ "name": "fastdotai/fastai2", "tags": ["latest"] })
    );
}

#[tokio::test]
async fn missing_tags_and_repositories_are_registry_errors() {
    let reg = registry(explicit()).await;
    let token = reg
        .bearer("myregistry", "right-password", "fastdotai/fastai2")
        .await;
    let r = reg
        .send(
            Method::GET,
            "/v2/fastdotai/fastai2/manifests/nope",
            Some(&token),
        )
        .await;
    let (status, code, body) = error_code(r).await;
    assert_eq!((status.as_u16(), code.as_str()), (404, "MANIFEST_UNKNOWN"));
    assert_eq!(body["errors"][0]["detail"]["Tag"], "nope");
    let r = reg
        .send(
            Method::HEAD,
            "/v2/fastdotai/fastai2/manifests/nope",
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");

    let token = reg
        .bearer("myregistry", "right-password", "nope/nothing")
        .await;
    let r = reg
        .send(
            Method::GET,
            "/v2/nope/nothing/manifests/latest",
            Some(&token),
        )
        .await;
    let (status, code, _) = error_code(r).await;
    assert_eq!((status.as_u16(), code.as_str()), (404, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn a_user_without_access_to_a_repository_is_unauthorized_as_acr_answers() {
    let reg = registry(explicit()).await;
    // The token endpoint issues a token, but without access to the repository.
    let token = reg
        .bearer("teamtoken", "team-password", "secret/base")
        .await;
    let r = reg
        .send(Method::HEAD, "/v2/secret/base/manifests/v1", Some(&token))
        .await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("scope=\"repository:secret/base:pull\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    let r = reg
        .send(Method::GET, "/v2/secret/base/manifests/v1", Some(&token))
        .await;
    let (status, code, body) = error_code(r).await;
    assert_eq!((status.as_u16(), code.as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(body["errors"][0]["detail"][0]["Name"], "secret/base");
    // Nor may it learn whether a repository exists.
    let token = reg
        .bearer("teamtoken", "team-password", "nope/nothing")
        .await;
    let r = reg
        .send(Method::GET, "/v2/nope/nothing/manifests/v1", Some(&token))
        .await;
    assert_eq!(r.status(), 401);
    // Basic straight to the data plane follows the same permissions.
    let r = reg
        .send(
            Method::GET,
            "/v2/secret/base/manifests/v1",
            Some(&basic("teamtoken", "team-password")),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = reg
        .send(
            Method::GET,
            "/v2/team/app/manifests/1.0",
            Some(&basic("teamtoken", "team-password")),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A token for one repository does not open another.
    let token = reg.bearer("myregistry", "right-password", "team/app").await;
    let r = reg
        .send(Method::GET, "/v2/secret/base/manifests/v1", Some(&token))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn without_credentials_manifests_challenge_with_the_scope() {
    let reg = registry(explicit()).await;
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", None)
        .await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"repository:team/app:pull\""),
        "{challenge}"
    );
    let r = reg
        .send(
            Method::GET,
            "/v2/team/app/manifests/1.0",
            Some(&basic("teamtoken", "wrong")),
        )
        .await;
    let (status, code, _) = error_code(r).await;
    assert_eq!((status.as_u16(), code.as_str()), (401, "UNAUTHORIZED"));
    let r = reg
        .send(
            Method::PUT,
            "/v2/team/app/manifests/2.0",
            Some(&basic("teamtoken", "team-password")),
        )
        .await;
    assert_eq!(r.status(), 405, "read-only");
}

/// A registry that allows anonymous pulls (Docker Hub, MCR) gives a caller without
/// credentials a pull token; data-plane calls still need the token, wrong credentials
/// are still refused, and a registry that does not allow it gives none.
#[tokio::test]
async fn anonymous_pull_gives_tokens_without_credentials_only_where_allowed() {
    let reg = registry(explicit()).await;
    let anonymous_token = format!("/oauth2/token?service={HOST}&scope=repository:team/app:pull");
    let r = reg.send(Method::GET, &anonymous_token, None).await;
    assert_eq!(r.status(), 401, "not allowed on this registry");

    let mut public = seed();
    public.anonymous_pull = true;
    reg.emu.admin().add_registry(public).unwrap();
    let r = reg.send(Method::GET, &anonymous_token, None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", None)
        .await;
    assert_eq!(r.status(), 401, "the data plane still wants a token");
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", Some(&token))
        .await;
    assert_eq!(r.status(), 200);
    // The token is for the scope asked for only.
    let r = reg
        .send(Method::HEAD, "/v2/secret/base/manifests/v1", Some(&token))
        .await;
    assert_eq!(r.status(), 401);
    // Credentials given are checked, not ignored.
    let r = reg
        .send(
            Method::GET,
            &anonymous_token,
            Some(&basic("myregistry", "wrong")),
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_moved_tag_has_a_new_digest_and_a_removed_one_is_unknown() {
    let reg = registry(explicit()).await;
    let admin = reg.emu.admin();
    let before = admin.image_digest(HOST, "team/app", "1.0").unwrap();
    let after = admin.push_image(HOST, "team/app", "1.0").unwrap();
    assert_ne!(before, after);
    let auth = basic("myregistry", "right-password");
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", Some(&auth))
        .await;
    assert_eq!(r.headers()["docker-content-digest"], after.as_str());
    assert!(admin.remove_tag(HOST, "team/app", "1.0").unwrap());
    let r = reg
        .send(Method::HEAD, "/v2/team/app/manifests/1.0", Some(&auth))
        .await;
    assert_eq!(r.status(), 404);
    assert!(admin.push_image("unknown.azurecr.io", "a", "b").is_err());
    assert!(admin.push_image(HOST, "Bad Name", "b").is_err());
    // A changed password takes effect at once.
    admin
        .set_registry_user(
            HOST,
            RegistryUser {
                username: "myregistry".into(),
                password: "rotated".into(),
                repositories: None,
            },
        )
        .unwrap();
    let r = reg.send(Method::GET, "/v2/", Some(&auth)).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn hosts_match_in_any_case_and_unknown_hosts_are_not_registries() {
    let reg = registry(explicit()).await;
    let port = reg.emu.addr().port();
    let r = reg
        .http
        .get(format!("http://127.0.0.1:{port}/v2/"))
        .header("host", format!("MyRegistry.AzureCR.io:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = reg
        .http
        .get(format!("http://127.0.0.1:{port}/v2/"))
        .header("host", format!("other.azurecr.io:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The emulator's client resolves only registries it serves.
    let r = reg
        .http
        .get(format!("http://other.azurecr.io:{port}/v2/"))
        .send()
        .await;
    assert!(r.is_err());
    assert!(reg.emu.admin().remove_registry(HOST));
    assert!(
        reg.http
            .get(format!("{}/v2/", reg.base))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn registry_faults_make_a_registry_unreachable() {
    let reg = registry(explicit()).await;
    reg.emu.admin().add_fault(
        FaultRule::always(amlspec::emulator::Fault::DropConnection).on(FaultTarget::Registry),
    );
    let r = reg.http.get(format!("{}/v2/", reg.base)).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the dropped connection shows");
    reg.emu.admin().clear_faults();
    let r = reg
        .http
        .get(format!("{}/v2/", reg.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        reg.emu.admin().traffic().registry.get("GET"),
        Some(&1),
        "answered requests are counted"
    );
}

#[tokio::test]
async fn admin_http_seeds_registries_and_never_returns_passwords() {
    let emu = start_emulator(explicit()).await;
    let http = emu.reqwest_client_builder().build().unwrap();
    let base = emu.endpoint();
    let key = emu.admin_key().to_string();
    let body = json!({
        "users": [{ "username": "u", "password": "p4ss-w0rd" }],
        "repositories": [{ "name": "app", "tags": ["v1", "v2"] }],
    });
    let r = http
        .put(format!("{base}/admin/registries/{HOST}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "admin key needed");
    let r = http
        .put(format!("{base}/admin/registries/{HOST}"))
        .header(ADMIN_KEY_HEADER, &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("p4ss-w0rd"), "{text}");
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["users"], json!(["u"]));
    let v1 = info["repositories"]["app"]["v1"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(v1.starts_with("sha256:"));

    let r = http
        .post(format!("{base}/admin/registries/{HOST}/images"))
        .header(ADMIN_KEY_HEADER, &key)
        .json(&json!({ "repository": "app", "tag": "v3" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pushed: Value = r.json().await.unwrap();
    let listed: Value = http
        .get(format!("{base}/admin/registries"))
        .header(ADMIN_KEY_HEADER, &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["registries"][0]["repositories"]["app"]["v3"],
        pushed["digest"]
    );
    assert!(!listed.to_string().contains("p4ss-w0rd"));

    let url = format!("http://{HOST}:{}/v2/app/manifests/v1", emu.addr().port());
    let r = http
        .head(&url)
        .header("authorization", basic("u", "p4ss-w0rd"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], v1.as_str());

    for (method, path, body, status) in [
        (Method::PUT, "/admin/registries/not a host", json!({}), 400),
        (
            Method::PUT,
            &format!("/admin/registries/{HOST}") as &str,
            json!({ "bogus": 1 }),
            400,
        ),
        (
            Method::POST,
            "/admin/registries/none.azurecr.io/images",
            json!({ "repository": "a", "tag": "b" }),
            404,
        ),
        (
            Method::DELETE,
            &format!("/admin/registries/{HOST}/images") as &str,
            json!({ "repository": "app", "tag": "v1" }),
            200,
        ),
        (
            Method::DELETE,
            &format!("/admin/registries/{HOST}") as &str,
            json!({}),
            200,
        ),
        (
            Method::GET,
            &format!("/admin/registries/{HOST}") as &str,
            json!({}),
            404,
        ),
    ] {
        let r = http
            .request(method.clone(), format!("{base}{path}"))
            .header(ADMIN_KEY_HEADER, &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
    }
}

#[tokio::test]
async fn over_tls_the_certificate_names_acr_hosts() {
    let config = EmulatorConfig {
        tls: TlsConfig::SelfSigned { write_ca_to: None },
        registries: vec![RegistrySeed {
            host: "registry.example.test".into(),
            users: vec![RegistryUser {
                username: "u".into(),
                password: "p".into(),
                repositories: None,
            }],
            repositories: vec![RepositorySeed {
                name: "img".into(),
                tags: vec!["t".into()],
            }],
            anonymous_pull: false,
        }],
        ..explicit()
    };
    let reg = registry(config).await;
    assert!(reg.base.starts_with("https://"));
    let r = reg.send(Method::GET, "/v2/", None).await;
    assert_eq!(r.status(), 401);
    let realm = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        realm.starts_with(&format!("Bearer realm=\"https://{HOST}:")),
        "{realm}"
    );
    // A host configured at start is in the certificate too.
    let url = format!(
        "https://registry.example.test:{}/v2/img/manifests/t",
        reg.emu.addr().port()
    );
    let r = reg
        .http
        .head(&url)
        .header("authorization", basic("u", "p"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// skopeo (containers/image, Debian's package) inspects emulated images as it does ACR's:
/// right credentials succeed with the digest the emulator reports, a wrong password and a
/// missing tag fail with the registry's errors. The registry is served as `localhost`
/// (skopeo resolves host names itself; `localhost` is the one name every system resolves
/// to the loopback address and the self-signed certificate names), over verified TLS.
/// Needs skopeo (`apt-get install skopeo`; AMLSPEC_SKOPEO names another binary):
/// `cargo test --test integration skopeo -- --ignored`.
#[tokio::test]
#[ignore = "needs skopeo (apt-get install skopeo); run with `cargo test -- --ignored skopeo`"]
async fn skopeo_inspects_emulated_images_as_on_acr() {
    let skopeo = std::env::var("AMLSPEC_SKOPEO").unwrap_or_else(|_| "skopeo".to_string());
    let found = tokio::process::Command::new(&skopeo)
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{skopeo}` does not run: apt-get install skopeo (or set AMLSPEC_SKOPEO)"
    );
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let emu = start_emulator(EmulatorConfig {
        tls: TlsConfig::SelfSigned {
            write_ca_to: Some(certs.join("ca.crt")),
        },
        ..explicit()
    })
    .await;
    let mut registry = seed();
    registry.host = "localhost".into();
    let info = emu.admin().add_registry(registry).unwrap();
    let port = emu.addr().port();
    let auth_file = dir.path().join("auth.json");
    std::fs::write(&auth_file, "{}").unwrap();

    let inspect = |image: &str, creds: Option<&str>| {
        let mut cmd = tokio::process::Command::new(&skopeo);
        cmd.arg("inspect")
            .arg("--retry-times=0")
            .arg(format!("--cert-dir={}", certs.display()))
            .arg(format!("--authfile={}", auth_file.display()))
            // Nothing from the user's containers configuration.
            .env("REGISTRY_AUTH_FILE", &auth_file)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                dir.path().join("registries.conf"),
            )
            .env("HOME", dir.path())
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        match creds {
            Some(c) => cmd.arg(format!("--creds={c}")),
            None => cmd.arg("--no-creds"),
        };
        cmd.arg(format!("docker://localhost:{port}/{image}"));
        async move {
            let out = cmd.output().await.expect("skopeo runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };

    let (ok, stdout, stderr) = inspect("team/app:1.0", Some("myregistry:right-password")).await;
    assert!(ok, "skopeo inspect failed: {stderr}");
    let inspected: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        inspected["Digest"],
        info.repositories["team/app"]["1.0"].as_str()
    );
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Architecture"], "amd64");

    // The user limited to team/app can read it, and nothing else.
    let (ok, _, stderr) = inspect("team/app:1.0", Some("teamtoken:team-password")).await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = inspect("secret/base:v1", Some("teamtoken:team-password")).await;
    assert!(!ok);
    assert!(stderr.contains("authentication required"), "{stderr}");

    let (ok, _, stderr) = inspect("team/app:1.0", Some("myregistry:wrong-password")).await;
    assert!(!ok, "a wrong password must fail");
    assert!(
        stderr.contains("unauthorized") && stderr.contains("aka.ms/acr/authorization"),
        "ACR's words: {stderr}"
    );

    let (ok, _, stderr) = inspect("team/app:nope", Some("myregistry:right-password")).await;
    assert!(!ok, "a missing tag must fail");
    assert!(stderr.contains("manifest unknown"), "{stderr}");

    let (ok, _, stderr) = inspect("team/app:1.0", None).await;
    assert!(!ok, "no anonymous pull");
    assert!(stderr.contains("authentication required"), "{stderr}");
}
