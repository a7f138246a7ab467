//! A local Azure for tests: the emulator in this process over HTTPS (self-signed CA),
//! an ARM client signed in as its service principal, and helpers that create a
//! manifest's resources through ARM exactly as a client would, so plans can be checked
//! against state the emulator filled in itself.

use std::path::PathBuf;
use std::time::Duration;

use amlspec::azure::ML_API_VERSION;
use amlspec::azure::client::{ArmClient, ClientSettings, Operation};
use amlspec::desired::{self, Desired};
use amlspec::emulator::{
    Emulator, EmulatorConfig, RegistrySeed, RegistryUser, RepositorySeed, SimTimings, TlsConfig,
};
use amlspec::ids::ResourceId;
use amlspec::ops::connect::client_for_emulator;
use amlspec::spec;
use reqwest::Method;
use serde_json::Value;

use crate::cli::common::{Output, PASSWORD, Test, env_vars};
use crate::cli::seed::json;

pub struct Local {
    pub emulator: Emulator,
    pub client: ArmClient,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

/// Emulator settings for tests: everything completes at once (no clock to wait on).
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        timings: SimTimings {
            lro: Duration::ZERO,
            job_phase: Duration::ZERO,
            job_running: Duration::ZERO,
            retry_after_secs: 0,
        },
        subscriptions: ["1", "2", "3"]
            .iter()
            .map(|n| format!("00000000-0000-0000-0000-00000000000{n}"))
            .collect(),
        registries: registries(),
        ..EmulatorConfig::default()
    }
}

/// The registries the example specs and the corpus pull from, holding their images: the
/// team's registry (each username they use, with the test password) and the public
/// Docker Hub and Microsoft Container Registry. Plans ask them (preflight), routed here.
pub fn registries() -> Vec<RegistrySeed> {
    let repository = |name: &str, tags: &[&str]| RepositorySeed {
        name: name.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    let user = |username: &str| RegistryUser {
        username: username.to_string(),
        password: PASSWORD.to_string(),
        repositories: None,
    };
    vec![
        RegistrySeed {
            host: "myregistry.azurecr.io".into(),
            users: vec![user("username"), user("user"), user("acr-user")],
            repositories: vec![
                repository("fastdotai/fastai2", &["latest", "2.7.12"]),
                repository("team/img", &["1"]),
            ],
            anonymous_pull: false,
        },
        RegistrySeed {
            host: "registry-1.docker.io".into(),
            users: Vec::new(),
            repositories: vec![
                repository("library/ubuntu", &["22.04"]),
                repository("fastdotai/fastai2", &["latest"]),
                repository("pytorch/pytorch", &["2.1"]),
            ],
            anonymous_pull: true,
        },
        RegistrySeed {
            host: "mcr.microsoft.com".into(),
            users: Vec::new(),
            repositories: vec![
                repository("azureml/openmpi4.1.0-ubuntu22.04", &["latest"]),
                repository("azureml/curated/acpt-pytorch-2.2-cuda12.1", &["latest"]),
            ],
            anonymous_pull: true,
        },
    ]
}

impl Local {
    pub async fn start() -> Local {
        Local::start_with(config()).await
    }

    pub async fn start_with(mut config: EmulatorConfig) -> Local {
        log_to_canary_dir();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        config.tls = TlsConfig::SelfSigned {
            write_ca_to: Some(ca.clone()),
        };
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        let client = client_for_emulator(&emulator, ClientSettings::default()).unwrap();
        Local {
            emulator,
            client,
            ca,
            _dir: dir,
        }
    }

    /// The CLI pointed at this emulator as its service principal (`--auth` may override).
    pub fn cli(&self, args: &[&str]) -> Test {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend([
            "--arm-endpoint".into(),
            self.emulator.arm_endpoint(),
            "--authority-host".into(),
            self.emulator.authority_host(),
            "--storage-suffix".into(),
            self.emulator.storage_suffix(),
            "--ca-cert".into(),
            self.ca.display().to_string(),
        ]);
        Test::new()
            .env("AMLSPEC_AUTH", "service-principal")
            .env("AZURE_TENANT_ID", self.emulator.tenant_id())
            .env("AZURE_CLIENT_ID", self.emulator.client_id())
            .env("AZURE_CLIENT_SECRET", self.emulator.client_secret())
            .secret(self.emulator.client_secret())
            .args(args)
    }

    /// Run the CLI without blocking the runtime the emulator serves on.
    pub async fn run(&self, args: &[&str]) -> Output {
        run_test(self.cli(args)).await
    }

    pub async fn put(&self, id: &ResourceId, api_version: &str, body: Value) -> Value {
        crate::cli::seed::put(&self.client, id, api_version, body).await
    }

    pub async fn patch(&self, id: &ResourceId, api_version: &str, body: Value) -> Value {
        let url = self.client.url(id, api_version);
        let response = self
            .client
            .send(
                &Operation::new("change", id.to_string()),
                Method::PATCH,
                url,
                Some(body),
                true,
            )
            .await;
        json(&response.unwrap_or_else(|e| panic!("PATCH {id}: {e}")))
    }

    pub async fn delete(&self, id: &ResourceId, api_version: &str) {
        let url = self.client.url(id, api_version);
        self.client
            .send(
                &Operation::new("delete", id.to_string()),
                Method::DELETE,
                url,
                None,
                true,
            )
            .await
            .unwrap_or_else(|e| panic!("DELETE {id}: {e}"));
    }

    /// The URL of an ARM path at the ML api-version.
    pub fn arm_url(&self, path: &str) -> url::Url {
        let mut url = self
            .client
            .endpoints()
            .resource_manager
            .join(path.trim_start_matches('/'))
            .unwrap();
        url.query_pairs_mut()
            .append_pair("api-version", ML_API_VERSION);
        url
    }

    /// GET an ARM path (at the ML api-version) as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .send(
                &Operation::new("read", path),
                Method::GET,
                self.arm_url(path),
                None,
                true,
            )
            .await;
        json(&response.unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }

    /// POST to an ARM path (at the ML api-version), as JSON.
    pub async fn post_json(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .send(
                &Operation::new("post", path),
                Method::POST,
                self.arm_url(path),
                Some(body),
                true,
            )
            .await;
        json(&response.unwrap_or_else(|e| panic!("POST {path}: {e}")))
    }

    /// Create every resource of the specs as a client would, from their request bodies.
    pub async fn seed(&self, paths: &[&str]) -> Desired {
        let desired = load(paths);
        crate::cli::seed::seed(&self.client, self.emulator.tenant_id(), &desired).await;
        desired
    }
}

/// Under the secret canary (`AMLSPEC_CANARY_DIR`, .ci/run), this process's own log (the
/// in-process emulators', the ARM clients') goes at trace level to a file there, which
/// .ci/run searches for the canaries with the CLI runs' logs.
fn log_to_canary_dir() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = std::env::var_os("AMLSPEC_CANARY_DIR") else {
            return;
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = PathBuf::from(dir).join(format!("tests-{}.log", std::process::id()));
        let file = std::fs::File::create(path).unwrap();
        let _ = tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("amlspec=trace"))
            .try_init();
    });
}

/// Run `test` without blocking the runtime an emulator serves on.
pub async fn run_test(test: Test) -> Output {
    tokio::task::spawn_blocking(move || test.run())
        .await
        .unwrap()
}

/// The desired state of spec files, with the test environment variables.
pub fn load(paths: &[&str]) -> Desired {
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let loaded = spec::load(&paths, &env_vars());
    assert!(!loaded.has_errors(), "{:#?}", loaded.problems);
    desired::desired(&loaded.specs.unwrap()).expect("snapshots hash")
}

/// Poll `ready` every 50 ms for up to 60 s.
pub async fn wait_until<F, Fut>(ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1200 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting");
}
