//! Token endpoint and bearer checks: 401 with WWW-Authenticate, expiry (virtual clock and
//! the expire-tokens control), audience, scope (403), client secret and client assertion.

use std::time::Duration;

use amlspec::emulator::{EmulatorConfig, FederatedCredential, ServicePrincipal};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::emulator::support::{explicit, start, token_for};

#[tokio::test]
async fn missing_invalid_and_expired_tokens_are_refused() {
    let env = start(EmulatorConfig {
        token_lifetime: Duration::from_secs(300),
        ..explicit()
    })
    .await;
    let rg = format!("{}?api-version=2021-04-01", env.rg("rg"));
    env.put(&rg, json!({ "location": "westeurope" }))
        .await
        .expect(201);

    let r = env.call_with(Method::GET, &rg, None, None).await;
    assert_eq!(r.expect(401).error_code(), "AuthenticationFailed");
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.starts_with("Bearer authorization_uri=") && www.contains(env.emu.tenant_id()),
        "{www}"
    );

    let mut forged = env.token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let r = env.call_with(Method::GET, &rg, None, Some(&forged)).await;
    assert_eq!(r.expect(401).error_code(), "InvalidAuthenticationToken");

    env.emu
        .admin()
        .advance_clock(Duration::from_secs(301))
        .unwrap();
    let r = env.get(&rg).await;
    assert_eq!(r.expect(401).error_code(), "ExpiredAuthenticationToken");
    assert!(r.header("www-authenticate").is_some());

    // A fresh token works; revoking every token makes it fail again.
    let fresh = token_for(&env.http, &env.emu, "https://management.azure.com/.default").await;
    env.call_with(Method::GET, &rg, None, Some(&fresh))
        .await
        .expect(200);
    env.emu.admin().expire_tokens();
    let r = env.call_with(Method::GET, &rg, None, Some(&fresh)).await;
    assert_eq!(r.expect(401).error_code(), "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn tokens_carry_the_requested_audience() {
    let env = start(explicit()).await;
    let storage = token_for(&env.http, &env.emu, "https://storage.azure.com/.default").await;
    let r = env
        .call_with(
            Method::GET,
            &format!("{}?api-version=2021-04-01", env.rg("rg")),
            None,
            Some(&storage),
        )
        .await;
    assert_eq!(
        r.expect(401).error_code(),
        "InvalidAuthenticationTokenAudience"
    );
    // The emulator's own URL is an ARM audience too (custom clouds use it as the scope).
    let own = token_for(
        &env.http,
        &env.emu,
        &format!("{}/.default", env.emu.endpoint()),
    )
    .await;
    let r = env
        .call_with(
            Method::GET,
            &format!("{}?api-version=2021-04-01", env.rg("rg")),
            None,
            Some(&own),
        )
        .await;
    assert_eq!(r.expect(404).error_code(), "ResourceGroupNotFound");
    let payload = env.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://management.azure.com/");
    assert_eq!(claims["tid"], env.emu.tenant_id());
    assert_eq!(claims["appid"], env.emu.client_id());
}

#[tokio::test]
async fn principals_are_limited_to_their_scope() {
    let mut config = explicit();
    let sub = config.subscriptions[0].clone();
    config.principals.push(ServicePrincipal {
        client_id: "33333333-3333-3333-3333-333333333333".into(),
        client_secret: Some("narrow".into()),
        federated: Vec::new(),
        scopes: vec![format!("/subscriptions/{sub}/resourceGroups/allowed")],
    });
    let env = start(config).await;
    let resp = env
        .http
        .post(env.emu.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "33333333-3333-3333-3333-333333333333"),
            ("client_secret", "narrow"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let narrow = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = env
        .call_with(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", env.rg("allowed")),
            Some(json!({ "location": "westeurope" })),
            Some(&narrow),
        )
        .await;
    ok.expect(201);
    let denied = env
        .call_with(
            Method::PUT,
            &format!("{}?api-version=2021-04-01", env.rg("other")),
            Some(json!({ "location": "westeurope" })),
            Some(&narrow),
        )
        .await;
    assert_eq!(denied.expect(403).error_code(), "AuthorizationFailed");
    assert!(
        denied
            .text
            .contains("Microsoft.Resources/resourceGroups/write"),
        "{}",
        denied.text
    );
}

#[tokio::test]
async fn token_endpoint_errors_look_like_entra() {
    let env = start(explicit()).await;
    let post = |form: Vec<(&'static str, String)>, tenant: String| {
        let http = env.http.clone();
        let url = format!("{}/{tenant}/oauth2/v2.0/token", env.emu.endpoint());
        async move { http.post(url).form(&form).send().await.unwrap() }
    };
    let base = |secret: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", env.emu.client_id().to_string()),
            ("client_secret", secret.to_string()),
            ("scope", "https://management.azure.com/.default".to_string()),
        ]
    };
    let r = post(base("wrong"), env.emu.tenant_id().to_string()).await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_client");
    assert_eq!(b["error_codes"][0], 7000215);
    let r = post(
        base(env.emu.client_secret()),
        "00000000-dead-beef-0000-000000000000".into(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let mut no_default = base(env.emu.client_secret());
    no_default[3].1 = "https://management.azure.com/user_impersonation".into();
    let r = post(no_default, env.emu.tenant_id().to_string()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // v1 endpoint with resource=.
    let r = env
        .http
        .post(format!(
            "{}/{}/oauth2/token",
            env.emu.endpoint(),
            env.emu.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", env.emu.client_id()),
            ("client_secret", env.emu.client_secret()),
            ("resource", "https://management.azure.com/"),
        ])
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert!(
        b["access_token"].is_string() && b["expires_on"].is_string(),
        "{b}"
    );
}

fn unsigned_jwt(claims: Value) -> String {
    let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        e(br#"{"alg":"RS256","typ":"JWT"}"#),
        e(claims.to_string().as_bytes()),
        e(b"sig")
    )
}

#[tokio::test]
async fn client_assertions_match_federated_credentials() {
    let mut config = explicit();
    config.principals.push(ServicePrincipal {
        client_id: "44444444-4444-4444-4444-444444444444".into(),
        client_secret: None,
        federated: vec![FederatedCredential {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:org/repo:ref:refs/heads/main".into(),
        }],
        scopes: Vec::new(),
    });
    let env = start(config).await;
    let send = |sub: &str| {
        let exp = 4_102_444_800i64; // 2100-01-01
        let assertion = unsigned_jwt(
            json!({ "iss": "https://token.actions.githubusercontent.com", "sub": sub, "aud": "api://AzureADTokenExchange", "exp": exp }),
        );
        let http = env.http.clone();
        let url = env.emu.token_url();
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "44444444-4444-4444-4444-444444444444"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                    ("scope", "https://management.azure.com/.default"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let ok = send("repo:org/repo:ref:refs/heads/main").await;
    assert_eq!(ok.status(), 200);
    let token = ok.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    env.call_with(
        Method::GET,
        "/subscriptions?api-version=2022-12-01",
        None,
        Some(&token),
    )
    .await
    .expect(200);
    let bad = send("repo:evil/repo:ref:refs/heads/main").await;
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.json::<Value>().await.unwrap()["error_codes"][0], 70021);
}

#[tokio::test]
async fn discovery_and_cloud_metadata() {
    let env = start(explicit()).await;
    let get = |path: String| {
        let http = env.http.clone();
        async move {
            http.get(path)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let base = env.emu.endpoint();
    let oidc = get(format!(
        "{base}/{}/v2.0/.well-known/openid-configuration",
        env.emu.tenant_id()
    ))
    .await;
    assert_eq!(oidc["token_endpoint"], env.emu.token_url());
    let inst = get(format!("{base}/common/discovery/instance?api-version=1.1&authorization_endpoint={base}/common/oauth2/authorize")).await;
    assert!(
        inst["tenant_discovery_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&base)
    );
    let cloud = get(env.emu.metadata_url()).await;
    let clouds = get(format!("{base}/metadata/endpoints?api-version=2019-05-01")).await;
    assert_eq!(clouds[0], cloud);
    assert_eq!(cloud["resourceManager"], format!("{base}/"));
    assert_eq!(cloud["authentication"]["loginEndpoint"], format!("{base}/"));
    assert_eq!(cloud["suffixes"]["storage"], env.emu.storage_suffix());
    let single = get(format!("{base}/metadata/endpoints?api-version=2015-01-01")).await;
    assert!(single.is_object());
}
