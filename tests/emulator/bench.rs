//! Throughput benchmark (ignored by default; no timing assertions):
//! `cargo test --release --test integration -- --ignored --nocapture throughput`
//! Builds 10 workspaces with 100 resources each, then measures authenticated ARM GETs and
//! PUTs per second from 64 concurrent clients on loopback, in memory and on disk.

use std::sync::Arc;
use std::time::Instant;

use amlspec::emulator::EmulatorConfig;
use serde_json::json;

use crate::emulator::support::{Env, explicit, start};

async fn populate(env: &Env) -> Vec<String> {
    let mut ids = Vec::new();
    for w in 0..10 {
        let ws = env.workspace("bench-rg", &format!("bench-ws-{w}")).await;
        for i in 0..100 {
            let id = format!("{ws}/environments/env-{i}/versions/1");
            env.put(
                &id,
                json!({ "properties": { "image": format!("registry.local/img:{i}") } }),
            )
            .await
            .expect(201);
            ids.push(id);
        }
    }
    ids
}

async fn hammer(env: &Arc<Env>, ids: &Arc<Vec<String>>, total: usize, write: bool) -> f64 {
    let clients = 64;
    let per = total / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (env, ids) = (env.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let id = &ids[(c * per + i) % ids.len()];
                let url = format!("{}{id}?api-version=2026-07-01", env.emu.endpoint());
                let req = if write {
                    let tagged = format!(
                        "{}/environments/w{c}-{i}/versions/1",
                        id.split("/environments/").next().unwrap()
                    );
                    env.http
                        .put(format!(
                            "{}{tagged}?api-version=2026-07-01",
                            env.emu.endpoint()
                        ))
                        .json(&json!({ "properties": { "image": "registry.local/img:w" } }))
                } else {
                    env.http.get(url)
                };
                let r = req.bearer_auth(&env.token).send().await.unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (per * clients) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn throughput() {
    for on_disk in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = EmulatorConfig {
            state_dir: on_disk.then(|| dir.path().to_path_buf()),
            ..explicit()
        };
        let env = Arc::new(start(config).await);
        let t = Instant::now();
        let ids = Arc::new(populate(&env).await);
        let setup = t.elapsed();
        let reads = hammer(&env, &ids, 20_000, false).await;
        let writes = hammer(&env, &ids, if on_disk { 2_000 } else { 10_000 }, true).await;
        println!(
            "state={}: {} resources in 10 workspaces created in {:.2}s; GET {:.0} req/s; PUT (new env versions) {:.0} req/s",
            if on_disk { "disk" } else { "memory" },
            ids.len(),
            setup.as_secs_f64(),
            reads,
            writes
        );
    }
}
