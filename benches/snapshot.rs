//! Benchmark: a code snapshot hashed, and hashed and uploaded, by amlspec and by its peer,
//! Azure's own Python SDK (azure-ai-ml), side by side on the same generated tree (1 GB in
//! 20,000 files by default) and the same storage: the emulator's own blob service, then
//! Azurite behind the emulator.
//!
//! Phases, each tool in turns (amlspec, then the SDK, and so on) so that the machine's
//! noise falls on both alike:
//!
//! - hash, in-process: `amlspec::snapshot::snapshot` in this process against the SDK's
//!   `get_content_hash` timed inside its interpreter (benches/peer/snapshot.py `hash`,
//!   its marks): the two functions alone, warm cache. Both hashes must be equal.
//! - hash, whole process: `amlspec plan` of a manifest whose job's code is the tree,
//!   against an emulator holding everything else of it (so plan walks and hashes the tree,
//!   and reads; it looks the code up by its hash and does not find it), against
//!   `snapshot.py hash` (the interpreter's start and the SDK's imports included).
//! - hash + upload, emulator blob: `amlspec apply --auto-approve` of that manifest (the
//!   plan above, then startPendingUpload, every file through the SAS, the code version,
//!   the job) against `snapshot.py upload`: the same job submitted with
//!   `ml_client.jobs.create_or_update(command(code=tree, ...))`, which for its code hashes
//!   the tree, looks the code up by hash, starts the pending upload, uploads every file
//!   and PUTs the code version, then PUTs the job (`ml_client.code`, which makes the code
//!   alone, is private in azure-ai-ml 1.35). Every run on a fresh emulator holding the workspace, its registry
//!   connection, environment and cluster (applied first by amlspec, not timed). Afterwards
//!   the code version's hash must be the tree's, and the container must hold every file:
//!   byte for byte (listed and downloaded, not timed) after each tool's first run, by
//!   count after the others.
//! - hash + upload, Azurite: the same with the emulator's `BlobBackend::Azurite`, a fresh
//!   `azurite-blob` per run; skipped, loudly, when azurite-blob cannot be started.
//!
//! Per phase and tool: the median wall time of `AMLSPEC_BENCH_RUNS` runs (default 3), min
//! and max; MB/s (the tree's bytes over that time); the child's CPU (user + system, its
//! waited-for children included) and peak RSS, from wait4 of a measuring parent; the CPU
//! the in-process emulator spent; the requests the emulator answered (ARM, blob) and the
//! bytes its blob service took in; the ratio SDK/amlspec. The SDK's own report says how
//! long it spent hashing (and how many times it hashed the tree) and uploading, and what
//! it logged as warnings. No latency by default (this measures throughput);
//! `AMLSPEC_BENCH_LATENCY_MS` adds one to every ARM and blob request of the emulator (not
//! to Azurite's).
//!
//! The tree: `AMLSPEC_BENCH_HASH_MB` (default 1024) in `AMLSPEC_BENCH_HASH_FILES` (default
//! 20000) files of random bytes, `d00/f00000.bin`..., no ignore file: both tools take every
//! file, nothing looks like a credential. amlspec notes that the snapshot is above 300 MB
//! (a note in the plan, not a block).
//!
//! Python: as benches/peer.rs finds it (`AMLSPEC_PYTHON`, else the CI venv, else
//! target/peer-python). Run: `cargo bench --bench snapshot`; `AMLSPEC_BENCH_ONLY` runs
//! the phases whose name contains it (`hash`, `emulator`, `azurite`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amlspec::azure::ML_API_VERSION;
use amlspec::azure::blob::{BlobAuth, BlobClient, Container};
use amlspec::azure::client::{ArmClient, ClientSettings, Operation};
use amlspec::emulator::{
    BlobBackend, Emulator, EmulatorConfig, FaultTarget, SimTimings, TlsConfig, Traffic,
};
use amlspec::secret::Secret;
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{Value, json};

#[path = "../tests/support/azurite.rs"]
#[allow(dead_code)]
mod azurite_support;
mod common;

/// The emulator here runs on the allocator `amlspec emulator` ships with.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const WORKSPACE: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml-rg/providers/Microsoft.MachineLearningServices/workspaces/pets-ws";

/// One measured run.
struct Sample {
    wall: Duration,
    /// A function timed inside a process, not a process: no RSS, no requests.
    in_process: bool,
    /// CPU (ms): the child's, or this process's for amlspec's function; `None` for the
    /// SDK's function (its report has the whole process's).
    cpu_ms: Option<i64>,
    rss_kb: i64,
    /// CPU the emulator (this process) spent while the child ran.
    emulator_cpu_ms: i64,
    traffic: Traffic,
    /// The SDK's own report (`peer-report` on its stderr).
    report: Option<Value>,
    stderr: String,
}

impl Sample {
    /// A function timed in this process.
    fn in_process(wall: Duration) -> Sample {
        Sample {
            wall,
            in_process: true,
            cpu_ms: None,
            rss_kb: 0,
            emulator_cpu_ms: 0,
            traffic: Traffic::default(),
            report: None,
            stderr: String::new(),
        }
    }

    /// The value after `prefix ` on a line of the child's stderr.
    fn said(&self, prefix: &str) -> Option<&str> {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
    }
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    amlspec: PathBuf,
    python: PathBuf,
    script: PathBuf,
    tree: PathBuf,
    files: u64,
    bytes: u64,
    /// The tree's content hash, as amlspec computes it.
    hash: String,
    /// specs/pets.yaml with the job's code the tree.
    manifest: PathBuf,
    /// The same without its job: what every run starts from.
    setup: PathBuf,
    latency_ms: u64,
    runs: usize,
}

/// A fresh emulator (and the Azurite behind it), with its CA file.
struct Azure {
    emulator: Emulator,
    ca: tempfile::NamedTempFile,
    azurite: Option<(azurite_support::Azurite, tempfile::TempDir)>,
}

fn main() {
    if common::measure_child_if_asked() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some((python, sdk_version)) = common::peer_python("snapshot") else {
        return;
    };
    let (files, size) = common::tree_size();
    let work = tempfile::tempdir().expect("a temporary folder");
    // A copy, so that a build in the shared target folder cannot swap the binary mid-run.
    let amlspec = work.path().join("amlspec");
    std::fs::copy(env!("CARGO_BIN_EXE_amlspec"), &amlspec).expect("the amlspec binary copies");
    let tree = work.path().join("tree");
    let generating = Instant::now();
    common::generate_tree(&tree, files, size);
    let snapshot = amlspec::snapshot::snapshot(&tree).expect("the tree hashes");
    assert_eq!(snapshot.files.len() as u64, files);
    assert!(snapshot.likely_secrets().is_empty());
    let (manifest, setup) = write_manifests(root, work.path());
    let bench = Bench {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
        amlspec,
        python,
        script: root.join("benches/peer/snapshot.py"),
        tree,
        files,
        bytes: snapshot.total_bytes,
        hash: snapshot.hash.clone(),
        manifest,
        setup,
        latency_ms: common::env_number("AMLSPEC_BENCH_LATENCY_MS", 0),
        runs: common::env_number("AMLSPEC_BENCH_RUNS", 3).max(1) as usize,
    };
    println!(
        "amlspec vs azure-ai-ml {sdk_version} ({}): code snapshot of {} files, {:.0} MB ({} bytes each; generated in {} ms), content hash {}",
        bench.python.display(),
        files,
        bench.bytes as f64 / 1e6,
        size,
        generating.elapsed().as_millis(),
        bench.hash
    );
    println!(
        "latency {} ms on the emulator's ARM and blob requests; median of {} runs; warm cache\n",
        bench.latency_ms, bench.runs
    );
    println!(
        "{:<26} {:<14} {:>8} {:>13} {:>7} {:>8} {:>8} {:>8} {:>4} {:>6} {:>8} {:>6}",
        "phase",
        "tool",
        "wall",
        "(min-max)",
        "MB/s",
        "CPU",
        "peak RSS",
        "emu CPU",
        "ARM",
        "blob",
        "blob MB",
        "SDK/am"
    );
    let only = std::env::var("AMLSPEC_BENCH_ONLY").unwrap_or_default();
    let mut verdicts = Vec::new();
    let mut notes = Vec::new();
    if "hash".contains(only.as_str()) {
        let (function, process) = bench.hash_phase();
        let ratio = print_pair(
            "hash, in-process",
            ["snapshot()", "get_content_hash"],
            &function,
            &bench,
        );
        verdicts.push(("hash, the functions", ratio));
        let ratio = print_pair(
            "hash, whole process",
            ["plan", "azure-ai-ml"],
            &process,
            &bench,
        );
        verdicts.push(("hash, whole processes", ratio));
    }
    for (phase, azurite) in [("emulator", false), ("azurite", true)] {
        if !phase.contains(only.as_str()) {
            continue;
        }
        if azurite && !azurite_available() {
            println!(
                "\n!!! hash + upload, Azurite: SKIPPED: azurite-blob is not installed or does not start (npm install -g azurite@3.35.0) !!!\n"
            );
            continue;
        }
        let samples = bench.upload_phase(azurite);
        let name = if azurite {
            "hash + upload, Azurite"
        } else {
            "hash + upload, emulator"
        };
        let ratio = print_pair(name, ["apply", "azure-ai-ml"], &samples, &bench);
        verdicts.push((name, ratio));
        notes.extend(sdk_warnings(&samples.1));
    }
    println!("\ntarget (issue #10): SDK/amlspec >= 3x");
    for (name, ratio) in verdicts {
        println!(
            "  {name}: {ratio:.1}x: {}",
            if ratio >= 3.0 { "met" } else { "missed" }
        );
    }
    notes.sort();
    notes.dedup();
    for note in notes {
        println!("the SDK warned: {note}");
    }
}

impl Bench {
    /// A fresh emulator (in front of a fresh Azurite when asked) holding the workspace,
    /// its registry connection, environment and cluster: everything of the manifest but
    /// the job and its code. Then slowed down, when asked.
    fn azure(&self, azurite: bool) -> Azure {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let azurite = azurite.then(|| {
            let dir = tempfile::tempdir().expect("a folder for Azurite");
            (
                azurite_support::start(dir.path(), "the snapshot bench"),
                dir,
            )
        });
        let config = EmulatorConfig {
            tls: TlsConfig::SelfSigned {
                write_ca_to: Some(ca.path().to_path_buf()),
            },
            timings: SimTimings {
                lro: Duration::ZERO,
                job_phase: Duration::ZERO,
                job_running: Duration::ZERO,
                retry_after_secs: 1,
            },
            registries: vec![common::pets_registry()],
            blob_backend: match &azurite {
                Some((azurite, _)) => BlobBackend::Azurite {
                    endpoint: azurite.account_url(),
                    account: "devstoreaccount1".into(),
                    key: azurite_support::AZURITE_KEY.into(),
                },
                None => BlobBackend::Local,
            },
            ..EmulatorConfig::default()
        };
        let emulator = self
            .runtime
            .block_on(Emulator::start(config))
            .expect("the emulator starts");
        let mut command = Command::new(&self.amlspec);
        command.args(["apply", "--auto-approve"]).arg(&self.setup);
        common::connect(&mut command, &emulator, ca.path());
        let output = command.output().expect("amlspec runs");
        assert!(
            output.status.success(),
            "amlspec apply failed while setting up: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if self.latency_ms > 0 {
            emulator.admin().set_faults(
                common::latency(self.latency_ms, &[FaultTarget::Arm, FaultTarget::Blob]),
                None,
            );
        }
        Azure {
            emulator,
            ca,
            azurite,
        }
    }

    fn shutdown(&self, azure: Azure) {
        self.runtime.block_on(azure.emulator.shutdown());
        drop(azure.azurite);
    }

    /// `amlspec <args> <manifest>`, measured.
    fn run_amlspec(&self, azure: &Azure, args: &[&str]) -> Sample {
        let mut command = common::measuring(&self.amlspec);
        command.args(args).arg(&self.manifest);
        common::connect(&mut command, &azure.emulator, azure.ca.path());
        measure(Some(&azure.emulator), command, &format!("amlspec {args:?}"))
    }

    /// `snapshot.py <mode> <tree> [port ca]`, measured.
    fn run_sdk(&self, azure: Option<&Azure>, mode: &str) -> Sample {
        let mut command = common::measuring(&self.python);
        command.arg(&self.script).arg(mode).arg(&self.tree);
        if let Some(azure) = azure {
            command
                .arg(azure.emulator.addr().port().to_string())
                .arg(azure.ca.path());
            common::connect_sdk(&mut command, &azure.emulator);
        }
        measure(
            azure.map(|a| &a.emulator),
            command,
            &format!("snapshot.py {mode}"),
        )
    }

    /// (the functions, the whole processes), each as (amlspec, SDK).
    #[allow(clippy::type_complexity)]
    fn hash_phase(&self) -> ((Vec<Sample>, Vec<Sample>), (Vec<Sample>, Vec<Sample>)) {
        let azure = self.azure(false);
        let (mut functions, mut processes) = ((vec![], vec![]), (vec![], vec![]));
        for _ in 0..self.runs {
            let cpu_before = common::own_cpu_ms();
            let start = Instant::now();
            let snapshot = amlspec::snapshot::snapshot(&self.tree).expect("the tree hashes");
            let mut sample = Sample::in_process(start.elapsed());
            sample.cpu_ms = Some(common::own_cpu_ms() - cpu_before);
            assert_eq!(snapshot.hash, self.hash);
            functions.0.push(sample);

            let plan = self.run_amlspec(&azure, &["plan", "--format", "json"]);
            assert_eq!(plan.traffic.arm_writes(), 0, "plan writes nothing");
            processes.0.push(plan);

            let sdk = self.run_sdk(None, "hash");
            assert_eq!(
                sdk.said("peer-hash"),
                Some(self.hash.as_str()),
                "the SDK's content hash is amlspec's"
            );
            let hashing = mark_between(&sdk, "imported", "hash").expect("the SDK's hash mark");
            functions.1.push(Sample::in_process(hashing));
            processes.1.push(sdk);
        }
        self.shutdown(azure);
        (functions, processes)
    }

    /// Each run of either tool on a fresh emulator (and Azurite).
    fn upload_phase(&self, azurite: bool) -> (Vec<Sample>, Vec<Sample>) {
        let (mut amlspec, mut sdk) = (Vec::new(), Vec::new());
        for run in 0..self.runs {
            // Each tool's first run is checked byte for byte; its later runs by the
            // code's hash, the number of files stored and the bytes taken in.
            let every_byte = run == 0;
            for tool in ["amlspec", "sdk"] {
                let azure = self.azure(azurite);
                if tool == "amlspec" {
                    let sample = self.run_amlspec(&azure, &["apply", "--auto-approve"]);
                    let code = self.runtime.block_on(amlspec_code(&azure));
                    self.runtime
                        .block_on(self.verify(&azure, &code, &sample, every_byte));
                    amlspec.push(sample);
                } else {
                    let sample = self.run_sdk(Some(&azure), "upload");
                    let code = sample.said("peer-code").expect("the SDK names its code");
                    self.runtime
                        .block_on(self.verify(&azure, code, &sample, every_byte));
                    sdk.push(sample);
                }
                self.shutdown(azure);
            }
        }
        (amlspec, sdk)
    }

    /// The code version `code` holds the tree: its content hash is the tree's, and its
    /// folder in storage as many files, each byte for byte when `every_byte` (a download
    /// of the whole tree: slow against Azurite at 1 GB); the emulator's blob service took
    /// in the tree's bytes (nothing when Azurite stores them).
    async fn verify(&self, azure: &Azure, code: &str, sample: &Sample, every_byte: bool) {
        let arm = arm_client(&azure.emulator);
        let version = get_json(&arm, code).await;
        let properties = &version["properties"];
        assert_eq!(
            properties["properties"]["hash_sha256"].as_str(),
            Some(self.hash.as_str()),
            "the code version's content hash: {version}"
        );
        let uri = properties["codeUri"].as_str().expect("a codeUri");
        // `{endpoint}/{container}/{folder}`: containers of pending uploads are `pending-*`.
        let at = uri.find("/pending-").expect("a pending upload's container");
        let end = uri[at + 1..].find('/').map_or(uri.len(), |i| at + 1 + i);
        let container_url = url::Url::parse(&uri[..end]).expect("a container URL");
        let prefix = uri[end..].trim_start_matches('/').to_string();
        let auth = match &azure.azurite {
            Some(_) => BlobAuth::SharedKey {
                account: "devstoreaccount1".into(),
                key: Secret::new(azurite_support::AZURITE_KEY.to_string()),
            },
            None => {
                let secrets = post_json(
                    &arm,
                    &format!("{WORKSPACE}/datastores/workspaceblobstore/listSecrets"),
                )
                .await;
                let store =
                    get_json(&arm, &format!("{WORKSPACE}/datastores/workspaceblobstore")).await;
                BlobAuth::SharedKey {
                    account: store["properties"]["accountName"]
                        .as_str()
                        .expect("an account")
                        .to_string(),
                    key: Secret::new(secrets["key"].as_str().expect("a key").to_string()),
                }
            }
        };
        let blobs = BlobClient::new(
            arm.http().clone(),
            Container {
                url: container_url,
                auth,
            },
            ClientSettings::default(),
        );
        let listed_prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let mut names = blobs.list(&listed_prefix).await.expect("the folder lists");
        names.sort();
        assert_eq!(
            names.len() as u64,
            self.files,
            "the folder holds every file ({uri})"
        );
        let taken_in = if azure.azurite.is_some() {
            0
        } else {
            self.bytes
        };
        assert_eq!(
            sample.traffic.blob_bytes_in, taken_in,
            "the emulator's blob service took in each byte once"
        );
        if !every_byte {
            return;
        }
        let stored: u64 = stream::iter(names)
            .map(|name| {
                let blobs = &blobs;
                let relative = name[listed_prefix.len()..].to_string();
                let local = self.tree.join(&relative);
                async move {
                    let bytes = blobs
                        .get(&name)
                        .await
                        .expect("the blob downloads")
                        .expect("the blob is there");
                    let expected = tokio::fs::read(&local)
                        .await
                        .unwrap_or_else(|e| panic!("{relative} is a file of the tree: {e}"));
                    assert!(bytes == expected, "{name} holds {relative}'s bytes");
                    Ok::<u64, ()>(bytes.len() as u64)
                }
            })
            .buffer_unordered(8)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await
            .unwrap();
        assert_eq!(stored, self.bytes, "the stored bytes are the tree's");
    }
}

/// The code version the job amlspec submitted runs.
async fn amlspec_code(azure: &Azure) -> String {
    let arm = arm_client(&azure.emulator);
    let jobs = get_json(&arm, &format!("{WORKSPACE}/jobs")).await;
    jobs["value"][0]["properties"]["codeId"]
        .as_str()
        .expect("the job has a code")
        .to_string()
}

fn arm_client(emulator: &Emulator) -> ArmClient {
    amlspec::ops::connect::client_for_emulator(emulator, ClientSettings::default())
        .expect("a client for the emulator")
}

fn arm_url(arm: &ArmClient, path: &str) -> url::Url {
    let mut url = arm
        .endpoints()
        .resource_manager
        .join(path.trim_start_matches('/'))
        .unwrap();
    url.query_pairs_mut()
        .append_pair("api-version", ML_API_VERSION);
    url
}

async fn get_json(arm: &ArmClient, path: &str) -> Value {
    let operation = Operation::new("read", path);
    let response = arm
        .send(&operation, Method::GET, arm_url(arm, path), None, true)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    response
        .decode::<Value>(&operation)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn post_json(arm: &ArmClient, path: &str) -> Value {
    let operation = Operation::new("post", path);
    let url = arm_url(arm, path);
    let response = arm
        .send(&operation, Method::POST, url, Some(json!({})), true)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    response
        .decode::<Value>(&operation)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// specs/pets.yaml with its job's code the tree (`snapshot.yaml`), and without its job
/// (`setup.yaml`), written to `dir` beside the tree.
fn write_manifests(root: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let pets = std::fs::read_to_string(root.join("specs/pets.yaml")).expect("specs/pets.yaml");
    assert!(pets.contains("source_directory: fastai-example"));
    let manifest = dir.join("snapshot.yaml");
    std::fs::write(
        &manifest,
        pets.replace("source_directory: fastai-example", "source_directory: tree"),
    )
    .unwrap();
    let setup = dir.join("setup.yaml");
    let without_jobs: String = pets
        .lines()
        .take_while(|line| !line.starts_with("jobs:"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&setup, without_jobs).unwrap();
    (manifest, setup)
}

/// Whether azure-blob can be started here.
fn azurite_available() -> bool {
    Command::new("azurite-blob")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `command` (a measuring parent) once; the emulator's traffic counted from its
/// start.
fn measure(emulator: Option<&Emulator>, command: Command, what: &str) -> Sample {
    if let Some(emulator) = emulator {
        emulator.admin().reset_traffic();
    }
    let run = common::run_measured(command, what);
    Sample {
        wall: run.wall,
        in_process: false,
        cpu_ms: Some(run.cpu_ms),
        rss_kb: run.rss_kb,
        emulator_cpu_ms: run.emulator_cpu_ms,
        traffic: emulator.map(|e| e.admin().traffic()).unwrap_or_default(),
        report: run.report,
        stderr: run.stderr,
    }
}

/// The time between two of the SDK's marks.
fn mark_between(sample: &Sample, from: &str, to: &str) -> Option<Duration> {
    let marks = sample.report.as_ref()?["marks"].as_array()?;
    let at = |name: &str| {
        marks
            .iter()
            .find(|m| m[0] == name)
            .and_then(|m| m[1].as_f64())
    };
    Some(Duration::from_secs_f64(at(to)? - at(from)?))
}

/// What the SDK logged as warnings, across `samples`.
fn sdk_warnings(samples: &[Sample]) -> Vec<String> {
    samples
        .iter()
        .filter_map(|s| s.report.as_ref()?["warnings"].as_array())
        .flatten()
        .filter_map(|w| w.as_str())
        .map(|w| w.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The amlspec and SDK rows of a phase, and the SDK's detail; the ratio of their median
/// wall times.
fn print_pair(
    phase: &str,
    tools: [&str; 2],
    (amlspec, sdk): &(Vec<Sample>, Vec<Sample>),
    bench: &Bench,
) -> f64 {
    let base = print_row(phase, tools[0], amlspec, None, bench);
    let wall = print_row("", tools[1], sdk, Some(base), bench);
    print_sdk_detail(sdk);
    wall / base
}

/// The median run (by wall time) of `samples`.
fn median(samples: &[Sample]) -> &Sample {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| s.wall);
    sorted[sorted.len() / 2]
}

/// One row; returns the median wall time (s).
fn print_row(phase: &str, tool: &str, samples: &[Sample], base: Option<f64>, bench: &Bench) -> f64 {
    let run = median(samples);
    let wall = run.wall.as_secs_f64();
    let mut cpus: Vec<i64> = samples.iter().filter_map(|s| s.cpu_ms).collect();
    cpus.sort();
    let rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let traffic = &run.traffic;
    let (min, max) = (
        samples.iter().map(|s| s.wall).min().unwrap_or_default(),
        samples.iter().map(|s| s.wall).max().unwrap_or_default(),
    );
    let dash = |shown: bool, value: String| if shown { value } else { "-".into() };
    let in_process = run.in_process;
    println!(
        "{:<26} {:<14} {:>5} ms {:>13} {:>7.0} {:>8} {:>8} {:>8} {:>4} {:>6} {:>8} {:>6}",
        phase,
        tool,
        run.wall.as_millis(),
        format!("({}-{})", min.as_millis(), max.as_millis()),
        bench.bytes as f64 / 1e6 / wall,
        cpus.get(cpus.len() / 2)
            .map_or("-".to_string(), |c| format!("{c} ms")),
        dash(!in_process, format!("{} MB", rss / 1024)),
        dash(
            !in_process,
            format!("{} ms", median_of(samples, |s| s.emulator_cpu_ms))
        ),
        dash(!in_process, traffic.arm.values().sum::<u64>().to_string()),
        dash(!in_process, traffic.blob.values().sum::<u64>().to_string()),
        dash(
            !in_process,
            format!("{:.0}", traffic.blob_bytes_in as f64 / 1e6)
        ),
        base.map_or(String::new(), |b| format!("{:.1}x", wall / b)),
    );
    wall
}

fn median_of(samples: &[Sample], f: fn(&Sample) -> i64) -> i64 {
    let mut v: Vec<i64> = samples.iter().map(f).collect();
    v.sort();
    v[v.len() / 2]
}

/// Where the SDK's median run went, from its own report: its steps (ms from one mark to
/// the next), the time inside its folder hashes (and how many it made) and inside the
/// upload, and its HTTP requests.
fn print_sdk_detail(samples: &[Sample]) {
    let run = median(samples);
    let Some(report) = run.report.as_ref() else {
        return;
    };
    let mut steps = Vec::new();
    let mut previous = 0.0;
    for mark in report["marks"].as_array().into_iter().flatten() {
        let (Some(step), Some(at)) = (mark[0].as_str(), mark[1].as_f64()) else {
            continue;
        };
        if step != "done" {
            steps.push(format!("{step} {:.0}", (at - previous) * 1000.0));
        }
        previous = at;
    }
    let mut http: Vec<String> = report["http"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    http.sort();
    let seconds = |key: &str| report[key].as_f64().unwrap_or(0.0) * 1000.0;
    let inside = if report["hashes"].as_u64().unwrap_or(0) > 0 {
        format!(
            "; in its {} hashes of the tree {:.0}, in BlobStorageClient.upload {:.0}",
            report["hashes"],
            seconds("hashing"),
            seconds("upload")
        )
    } else {
        String::new()
    };
    println!(
        "{:<41} SDK median run, ms: {}, start and exit {:.0}{inside}; HTTP: {}",
        "",
        steps.join(", "),
        run.wall.as_secs_f64() * 1000.0 - previous * 1000.0,
        if http.is_empty() {
            "none".to_string()
        } else {
            http.join(", ")
        }
    );
}
