//! Hostile callers: tokens for audiences that only start like the emulator's, tokens for
//! resources the emulator does not serve, and anonymous calls to the admin endpoints.

use amlspec::emulator::EmulatorConfig;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};

use crate::emulator::support::{explicit, start, token_for};

/// The token-signing key, as the state folder holds it.
fn signing_key(state: &std::path::Path) -> String {
    let mut text = std::fs::read_to_string(state.join("snapshot.jsonl")).unwrap();
    text += &std::fs::read_to_string(state.join("journal.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["key"] == "meta:signing-key")
        .and_then(|e| e["record"]["value"].as_str().map(str::to_string))
        .expect("the state folder holds the signing key")
}

/// A token the emulator itself would have signed, with `aud` of our choosing.
fn forge(key: &str, claims: &Value, aud: &str) -> String {
    let mut claims = claims.clone();
    claims["aud"] = json!(aud);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"amlspec-emulator"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn audiences_must_match_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let env = start(EmulatorConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..explicit()
    })
    .await;
    let key = signing_key(dir.path());
    let payload = env.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let path = format!("{}?api-version=2022-12-01", env.sub());
    let endpoint = env.emu.endpoint();
    let port = env.emu.addr().port();
    let accepted = [
        "https://management.azure.com/".to_string(),
        "https://management.azure.com".to_string(),
        "https://management.core.windows.net/".to_string(),
        endpoint.clone(),
        format!("{endpoint}/"),
        format!("http://localhost:{port}"),
    ];
    for aud in &accepted {
        let token = forge(&key, &claims, aud);
        env.call_with(Method::GET, &path, None, Some(&token))
            .await
            .expect(200);
    }
    let refused = [
        "https://127.0.0.1:1".to_string(),
        "https://localhost.evil.example".to_string(),
        "https://localhost".to_string(),
        format!("{endpoint}0"),
        format!("{endpoint}/evil"),
        format!("https://127.0.0.1:{port}"), // the emulator serves plain http here
        "https://management.azure.com.evil.example/".to_string(),
        "https://storage.azure.com/".to_string(),
        "https://stacct.blob.core.localhost".to_string(),
    ];
    for aud in &refused {
        let token = forge(&key, &claims, aud);
        let r = env.call_with(Method::GET, &path, None, Some(&token)).await;
        assert_eq!(
            r.expect(401).error_code(),
            "InvalidAuthenticationTokenAudience",
            "audience {aud}"
        );
    }
}

#[tokio::test]
async fn tokens_are_issued_only_for_resources_the_emulator_serves() {
    let env = start(explicit()).await;
    let endpoint = env.emu.endpoint();
    for scope in [
        "https://management.azure.com/.default".to_string(),
        "https://management.core.windows.net//.default".to_string(),
        "https://storage.azure.com/.default".to_string(),
        format!("{endpoint}/.default"),
        format!("http://stacct.blob.{}/.default", env.emu.storage_suffix()),
    ] {
        token_for(&env.http, &env.emu, &scope).await;
    }
    for scope in [
        "https://127.0.0.1:1/.default",
        "https://localhost.evil.example/.default",
        "https://graph.microsoft.com/.default",
        "https://vault.azure.net/.default",
        "api://something-else/.default",
    ] {
        let r = env
            .http
            .post(env.emu.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", env.emu.client_id()),
                ("client_secret", env.emu.client_secret()),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{scope}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], "invalid_resource", "{scope}: {b}");
        assert_eq!(b["error_codes"][0], 500011, "{scope}");
        let description = b["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("AADSTS500011: The resource principal named ")
                && description.contains(&scope[..scope.len() - "/.default".len()])
                && description.contains(env.emu.tenant_id()),
            "{description}"
        );
        assert!(b["access_token"].is_null());
    }
    // The v1 endpoint names the resource itself.
    let r = env
        .http
        .post(format!("{endpoint}/{}/oauth2/token", env.emu.tenant_id()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", env.emu.client_id()),
            ("client_secret", env.emu.client_secret()),
            ("resource", "https://graph.microsoft.com/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_resource"
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_key() {
    let env = start(explicit()).await;
    let rg = format!("{}?api-version=2021-04-01", env.rg("rg"));
    env.put(&rg, json!({ "location": "westeurope" }))
        .await
        .expect(201);
    let url = format!("{}/admin/expire-tokens", env.emu.endpoint());
    for key in [None, Some("wrong"), Some("")] {
        let mut request = env.http.post(&url);
        if let Some(k) = key {
            request = request.header("x-amlspec-admin-key", k);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "key {key:?}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "AdminKeyRequired", "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-amlspec-admin-key"),
            "{b}"
        );
        // Nothing was revoked.
        env.get(&rg).await.expect(200);
    }
    let faults = env
        .http
        .put(format!("{}/admin/faults", env.emu.endpoint()))
        .json(&json!({ "rules": [{ "fault": { "type": "server_error", "status": 500 } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 401);
    env.get(&rg).await.expect(200);

    let r = env
        .http
        .post(&url)
        .header("x-amlspec-admin-key", env.emu.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env.get(&rg).await;
    assert_eq!(r.expect(401).error_code(), "ExpiredAuthenticationToken");
}

/// `... expiry UTC time 'A' is earlier than current UTC time 'B'.` -> (A, B)
fn expiry_times(message: &str) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let quoted: Vec<&str> = message.split('\'').skip(1).step_by(2).collect();
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    };
    (parse(quoted[0]), parse(quoted[1]))
}

#[tokio::test]
async fn a_revoked_token_is_reported_with_the_time_it_was_revoked() {
    let env = start(explicit()).await;
    let path = format!("{}?api-version=2022-12-01", env.sub());
    env.get(&path).await.expect(200);
    env.emu.admin().expire_tokens();
    let r = env.get(&path).await;
    assert_eq!(r.expect(401).error_code(), "ExpiredAuthenticationToken");
    let message = r.body["error"]["message"].as_str().unwrap();
    let (expiry, now) = expiry_times(message);
    assert!(
        expiry <= now,
        "the message must state an expiry before now: {message}"
    );
    // And the token's own expiry (an hour away) is not what it states.
    let payload = env.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(expiry.unix_timestamp() < claims["exp"].as_i64().unwrap());
}
