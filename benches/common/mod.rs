//! What the benchmarks share: measuring a child process (its peak RSS and CPU), the
//! emulator's own CPU, loading specs, generating large manifests and source trees,
//! finding the Python that runs the SDK peers (benches/peer).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use amlspec::desired::{self, Desired};
use amlspec::emulator::{
    Emulator, Fault, FaultRule, FaultTarget, RegistrySeed, RegistryUser, RepositorySeed,
};
use amlspec::spec::{self, interpolate::EnvVars};

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";

/// When the benchmark is re-invoked as `--measure-child PROGRAM ARGS...`: run the
/// program as a tiny parent would, so that its peak RSS is its own (a child forked from
/// the benchmark would first count the benchmark's pages), print
/// `status rss_kb cpu_ms`, and return true.
pub fn measure_child_if_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("--measure-child") {
        return false;
    }
    // Waited for with wait4 below, which also reports the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(&args[2])
        .args(&args[3..])
        .stdout(Stdio::null())
        .spawn()
        .expect("the command runs");
    let (status, rss_kb, cpu_ms) = wait_with_rusage(child.id() as libc::pid_t);
    println!("{status} {rss_kb} {cpu_ms}");
    true
}

/// Wait for one child; its exit status, its own peak resident set (Linux: kB) and the
/// CPU time it used (ms).
pub fn wait_with_rusage(pid: libc::pid_t) -> (i32, i64, i64) {
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 fills `status` and `usage` for the child `pid` this process spawned.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    (libc::WEXITSTATUS(status), usage.ru_maxrss, cpu_ms(&usage))
}

/// CPU time (ms) this process has used so far: the emulator's, which serves the plan
/// on the same cores.
pub fn own_cpu_ms() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills `usage` for this process.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_ms(&usage)
}

/// User plus system CPU time of a resource usage record, in ms.
pub fn cpu_ms(usage: &libc::rusage) -> i64 {
    let ms = |t: libc::timeval| t.tv_sec * 1000 + t.tv_usec / 1000;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

pub fn load(paths: &[PathBuf]) -> Desired {
    let env: EnvVars = [
        ("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION),
        ("ACR_PASSWORD", "bench-password"),
    ]
    .into_iter()
    .collect();
    let loaded = spec::load(paths, &env);
    assert!(!loaded.has_errors(), "{:#?}", loaded.problems);
    desired::desired(&loaded.specs.unwrap()).unwrap()
}

/// `workspaces` spec files of `per_workspace` resources each: the workspace, one
/// registry, then environments, clusters and jobs in equal thirds.
pub fn generate_manifest(dir: &Path, workspaces: usize, per_workspace: usize) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/train.py"), "print('train')\n").unwrap();
    let children = per_workspace - 2;
    let (envs, clusters) = (children / 3, children / 3);
    let jobs = children - envs - clusters;
    for w in 0..workspaces {
        let mut text = format!(
            "workspace:\n  name: bench-ws-{w}\n  subscription_id: ${{AZURE_SUBSCRIPTION_ID}}\n  resource_group: bench-rg-{w}\n  location: westeurope\n  create_if_missing: true\n\nregistries:\n  - name: registry{w}\n    address: registry{w}.azurecr.io\n    username: bench\n    password: ${{ACR_PASSWORD}}\n\nenvironments:\n"
        );
        for e in 0..envs {
            text.push_str(&format!("  - name: env-{e}\n    image: mcr.microsoft.com/azureml/base:{e}\n    user_managed_dependencies: true\n"));
        }
        text.push_str("\nclusters:\n");
        for c in 0..clusters {
            text.push_str(&format!(
                "  - name: cluster{c}\n    vm_size: STANDARD_DS3_V2\n    max_nodes: {}\n",
                c % 8 + 1
            ));
        }
        text.push_str("\njobs:\n");
        for j in 0..jobs {
            text.push_str(&format!(
                "  - name: job-{j}\n    source_directory: src\n    command: python train.py --seed {j}\n    environment: env-{}\n    cluster: cluster{}\n",
                j % envs,
                j % clusters
            ));
        }
        std::fs::write(dir.join(format!("bench-{w:02}.yaml")), text).unwrap();
    }
}

/// `amlspec <args>` run by this benchmark re-invoked as its measuring parent (see
/// [`measure_child_if_asked`]), connected to `emulator` as its service principal.
pub fn measured_command(emulator: &Emulator, ca: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the benchmark's own path"));
    command
        .arg("--measure-child")
        .arg(env!("CARGO_BIN_EXE_amlspec"))
        .args(args);
    connect(&mut command, emulator, ca);
    command
}

/// The connection options and environment of `amlspec` against `emulator`.
pub fn connect(command: &mut Command, emulator: &Emulator, ca: &Path) {
    command
        .args([
            "--arm-endpoint",
            &emulator.arm_endpoint(),
            "--authority-host",
            &emulator.authority_host(),
            "--storage-suffix",
            &emulator.storage_suffix(),
            "--auth",
            "service-principal",
        ])
        .arg("--ca-cert")
        .arg(ca)
        .env("AZURE_TENANT_ID", emulator.tenant_id())
        .env("AZURE_CLIENT_ID", emulator.client_id())
        .env("AZURE_CLIENT_SECRET", emulator.client_secret())
        .env("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
        .env("ACR_PASSWORD", "bench-password")
        .env("NO_COLOR", "1");
}

/// What the measuring parent reports: the child's exit status, peak RSS (kB) and CPU
/// time (ms).
pub fn child_report(stdout: &[u8]) -> (i64, i64, i64) {
    let report = String::from_utf8_lossy(stdout);
    let mut fields = report
        .split_whitespace()
        .map(|f| f.parse::<i64>().unwrap_or(-1));
    (
        fields.next().unwrap_or(-1),
        fields.next().unwrap_or(0),
        fields.next().unwrap_or(0),
    )
}

/// The registry specs/pets.yaml pulls from, holding its image, with the password the
/// benchmarks' environment gives ([`connect`]).
pub fn pets_registry() -> RegistrySeed {
    RegistrySeed {
        host: "myregistry.azurecr.io".into(),
        users: vec![RegistryUser {
            username: "username".into(),
            password: "bench-password".into(),
            repositories: None,
        }],
        repositories: vec![RepositorySeed {
            name: "fastdotai/fastai2".into(),
            tags: vec!["latest".into()],
        }],
        anonymous_pull: false,
    }
}

/// The number in the environment variable `name`, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixed latency of `ms` on every request to each of `targets`.
pub fn latency(ms: u64, targets: &[FaultTarget]) -> Vec<FaultRule> {
    targets
        .iter()
        .map(|target| {
            FaultRule::always(Fault::Latency {
                fixed_ms: ms,
                jitter_ms: 0,
            })
            .on(*target)
        })
        .collect()
}

/// `files` files of `size` bytes each (content that does not compress, from a fixed
/// seed) in 100 folders, `d00/f00000.bin` to `d99/f19999.bin`: nothing an ignore file
/// or a secret check would leave out.
pub fn generate_tree(dir: &Path, files: u64, size: u64) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![0u8; size as usize];
    for i in 0..files {
        for chunk in bytes.chunks_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = chunk.len();
            chunk.copy_from_slice(&state.to_le_bytes()[..n]);
        }
        let folder = dir.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&folder).unwrap();
        let mut file = std::fs::File::create(folder.join(format!("f{i:05}.bin"))).unwrap();
        file.write_all(&bytes).unwrap();
    }
}

/// The generated tree's size from the environment: `AMLSPEC_BENCH_HASH_MB` (default
/// 1024) in `AMLSPEC_BENCH_HASH_FILES` files (default 20000); (files, bytes per file).
pub fn tree_size() -> (u64, u64) {
    let megabytes = env_number("AMLSPEC_BENCH_HASH_MB", 1024);
    let files = env_number("AMLSPEC_BENCH_HASH_FILES", 20_000).max(1);
    (files, megabytes * 1024 * 1024 / files)
}

/// How to make a venv the Python peers run in (from the repository root).
pub const PYTHON_SETUP: &str = "python3 -m venv target/peer-python && target/peer-python/bin/pip install -r benches/peer/requirements.txt";

/// The Python that runs the SDK peers and the azure-ai-ml version it imports, or `None`
/// after saying why `bench` is skipped and how to set one up.
pub fn peer_python(bench: &str) -> Option<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = python_candidates(root);
    let found = find_python(&candidates);
    if found.is_none() {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        println!(
            "{bench} benchmark skipped: no Python that imports azure-ai-ml and azure-identity \
             (tried {}; AMLSPEC_PYTHON names another).\n\
             Set one up from the repository root with:\n    {PYTHON_SETUP}\n\
             or point AMLSPEC_PYTHON at an interpreter that has azure-ai-ml==1.35.2 and azure-identity==1.27.0.",
            tried.join(", ")
        );
    }
    found
}

/// The interpreters to try: AMLSPEC_PYTHON when set, else the CI venv or the venv
/// benches/peer/requirements.txt makes, in the repository's target folder or the one the
/// benchmark was built in.
pub fn python_candidates(root: &Path) -> Vec<PathBuf> {
    if let Some(python) = std::env::var_os("AMLSPEC_PYTHON") {
        return vec![PathBuf::from(python)];
    }
    // target/release/deps/peer-<hash>: three folders up is the target folder.
    let built_in = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()));
    let mut candidates: Vec<PathBuf> = [Some(root.join("target")), built_in]
        .into_iter()
        .flatten()
        .flat_map(|target| {
            ["ci-python", "peer-python"].map(|venv| target.join(venv).join("bin/python"))
        })
        .collect();
    candidates.dedup();
    candidates
}

/// The first of `candidates` that imports azure-ai-ml and azure-identity, with the
/// azure-ai-ml version.
pub fn find_python(candidates: &[PathBuf]) -> Option<(PathBuf, String)> {
    candidates.iter().find_map(|python| {
        let output = Command::new(python)
            .args([
                "-c",
                "import azure.ai.ml, azure.identity; print(azure.ai.ml.__version__)",
            ])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output.status.success().then(|| {
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
            (python.clone(), version)
        })
    })
}

/// `program` run by this benchmark re-invoked as its measuring parent (see
/// [`measure_child_if_asked`]): the child's peak RSS and CPU are its own.
pub fn measuring(program: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the benchmark's own path"));
    command.arg("--measure-child").arg(program);
    command
}

/// The environment a Python peer signs in to `emulator` with: its service principal.
pub fn connect_sdk(command: &mut Command, emulator: &Emulator) {
    command
        .env("AZURE_TENANT_ID", emulator.tenant_id())
        .env("AZURE_CLIENT_ID", emulator.client_id())
        .env("AZURE_CLIENT_SECRET", emulator.client_secret())
        .env("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
        .env("ACR_PASSWORD", "bench-password");
}

/// One run of a measuring parent ([`measuring`] or [`measured_command`]).
pub struct MeasuredRun {
    pub wall: std::time::Duration,
    /// The child's user + system CPU, with the children it waited for.
    pub cpu_ms: i64,
    pub rss_kb: i64,
    /// CPU this process (the in-process emulator) spent while the child ran.
    pub emulator_cpu_ms: i64,
    pub stderr: String,
    /// The SDK's own report: the JSON of its `peer-report` line on stderr, if any.
    pub report: Option<serde_json::Value>,
}

/// Run `command` (a measuring parent) once, its stderr to a log; panics, showing that
/// log, when the child fails. Warns when the SDK's report names hosts it refused to
/// resolve (anything not loopback).
pub fn run_measured(mut command: Command, what: &str) -> MeasuredRun {
    let log = tempfile::NamedTempFile::new().expect("a log file");
    command.stderr(Stdio::from(log.reopen().expect("the log file reopens")));
    let cpu_before = own_cpu_ms();
    let start = std::time::Instant::now();
    let output = command.output().expect("the measuring parent runs");
    let wall = start.elapsed();
    let emulator_cpu_ms = own_cpu_ms() - cpu_before;
    let (status, rss_kb, cpu_ms) = child_report(&output.stdout);
    let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(status == 0, "{what} failed (exit {status}):\n{stderr}");
    let report = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peer-report "))
        .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("the SDK's report is JSON"));
    if let Some(refused) = report.as_ref().and_then(|r| r["refused"].as_array())
        && !refused.is_empty()
    {
        println!("warning: {what} tried to resolve hosts that are not loopback: {refused:?}");
    }
    MeasuredRun {
        wall,
        cpu_ms,
        rss_kb,
        emulator_cpu_ms,
        stderr,
        report,
    }
}
