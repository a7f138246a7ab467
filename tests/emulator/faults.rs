//! Each fault: throttling with Retry-After, 500/503, dropped connections, latency (on
//! paused tokio time), failed LROs, expired tokens; seeded determinism; the admin API.

use std::time::Duration;

use amlspec::emulator::{ADMIN_KEY_HEADER, EmulatorConfig, Fault, FaultRule, FaultTarget};
use serde_json::json;

use crate::emulator::support::{explicit, start};

#[tokio::test]
async fn throttling_answers_429_with_retry_after_then_recovers() {
    let env = start(explicit()).await;
    let sub = format!("{}?api-version=2022-12-01", env.sub());
    env.emu.admin().add_fault(
        FaultRule::always(Fault::Throttle {
            retry_after_secs: 7,
        })
        .times(2)
        .on(FaultTarget::Arm),
    );
    for _ in 0..2 {
        let r = env.get(&sub).await;
        assert_eq!(r.expect(429).error_code(), "TooManyRequests");
        assert_eq!(r.header("retry-after"), Some("7"));
    }
    env.get(&sub).await.expect(200);
}

#[tokio::test]
async fn server_errors_500_and_503() {
    let env = start(explicit()).await;
    let sub = format!("{}?api-version=2022-12-01", env.sub());
    env.emu
        .admin()
        .add_fault(FaultRule::always(Fault::ServerError { status: 503 }).times(1));
    let r = env.get(&sub).await;
    assert_eq!(r.expect(503).error_code(), "ServiceUnavailable");
    assert!(r.header("retry-after").is_some());
    env.emu.admin().add_fault(
        FaultRule::always(Fault::ServerError { status: 500 })
            .times(1)
            .method("GET"),
    );
    assert_eq!(
        env.get(&sub).await.expect(500).error_code(),
        "InternalServerError"
    );
    env.get(&sub).await.expect(200);
}

#[tokio::test]
async fn dropped_connections_fail_the_request() {
    let env = start(explicit()).await;
    env.emu.admin().add_fault(
        FaultRule::always(Fault::DropConnection)
            .times(1)
            .path_contains("/subscriptions"),
    );
    let url = format!("{}{}?api-version=2022-12-01", env.emu.endpoint(), env.sub());
    let result = async {
        let resp = env.http.get(&url).bearer_auth(&env.token).send().await?;
        resp.bytes().await
    }
    .await;
    assert!(
        result.is_err(),
        "a dropped connection must surface as an error: {result:?}"
    );
    env.get(&format!("{}?api-version=2022-12-01", env.sub()))
        .await
        .expect(200);
}

#[tokio::test(start_paused = true)]
async fn latency_is_fixed_plus_jitter() {
    let env = start(EmulatorConfig {
        faults: vec![
            FaultRule::always(Fault::Latency {
                fixed_ms: 2000,
                jitter_ms: 500,
            })
            .on(FaultTarget::Arm),
        ],
        ..explicit()
    })
    .await;
    let started = tokio::time::Instant::now();
    env.get(&format!("{}?api-version=2022-12-01", env.sub()))
        .await
        .expect(200);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2000) && took <= Duration::from_millis(2600),
        "{took:?}"
    );
}

#[tokio::test]
async fn fault_decisions_are_deterministic_under_a_seed() {
    let run = |seed: u64| async move {
        let env = start(EmulatorConfig {
            faults: vec![
                FaultRule::always(Fault::ServerError { status: 500 })
                    .with_probability(0.5)
                    .on(FaultTarget::Arm),
            ],
            seed,
            ..explicit()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(
                env.get(&format!("{}?api-version=2022-12-01", env.sub()))
                    .await
                    .status,
            );
        }
        statuses
    };
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert_ne!(a, run(43).await);
    assert!(a.contains(&500) && a.contains(&200));
}

#[tokio::test]
async fn expired_token_fault_and_fail_lro_rule() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    env.emu
        .admin()
        .add_fault(FaultRule::always(Fault::ExpiredToken).times(1));
    let r = env.get(&ws).await;
    assert_eq!(r.expect(401).error_code(), "ExpiredAuthenticationToken");
    env.get(&ws).await.expect(200);

    env.emu.admin().add_fault(
        FaultRule::always(Fault::FailLro)
            .times(1)
            .path_contains("/computes/"),
    );
    let id = format!("{ws}/computes/doomed");
    let r = env.put(&id, json!({ "location": "westeurope", "properties": { "computeType": "AmlCompute", "properties": { "scaleSettings": { "maxNodeCount": 1 } } } })).await;
    let status = r.header("azure-asyncoperation").unwrap().to_string();
    env.emu.admin().step(&id).unwrap();
    assert_eq!(env.get(&status).await.body["status"], "Failed");
}

#[tokio::test]
async fn admin_endpoint_sets_and_clears_faults() {
    let env = start(explicit()).await;
    let admin = format!("{}/admin/faults", env.emu.endpoint());
    let rules = json!({ "rules": [{ "fault": { "type": "throttle", "retry_after_secs": 2 }, "count": 1, "target": "arm" }], "seed": 9 });
    let key = env.emu.admin_key();
    let r = env
        .http
        .put(&admin)
        .header(ADMIN_KEY_HEADER, key)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sub = format!("{}?api-version=2022-12-01", env.sub());
    env.get(&sub).await.expect(429);
    env.get(&sub).await.expect(200);
    let r = env
        .http
        .put(&admin)
        .header(ADMIN_KEY_HEADER, key)
        .json(&json!({ "rules": [{ "fault": { "type": "server_error", "status": 500 } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    env.get(&sub).await.expect(500);
    let r = env.http.delete(&admin).header(ADMIN_KEY_HEADER, key);
    assert_eq!(r.send().await.unwrap().status(), 200);
    env.get(&sub).await.expect(200);
    // Admin stepping over HTTP.
    let r = env
        .http
        .post(format!("{}/admin/step", env.emu.endpoint()))
        .header(ADMIN_KEY_HEADER, key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env
        .http
        .post(format!("{}/admin/advance", env.emu.endpoint()))
        .header(ADMIN_KEY_HEADER, key)
        .json(&json!({ "seconds": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
