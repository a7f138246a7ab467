//! What the benchmarks share: measuring a child process (its peak RSS and CPU), the
//! emulator's own CPU, loading specs, generating large manifests.
#![allow(dead_code)]

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
