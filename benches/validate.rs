//! Benchmark: `amlspec validate` as a whole process. Two parts, in one run:
//!
//! 1. The example specs, against the cost of starting the same binary for `--version`,
//!    measured side by side (target: median <= 10 ms wall on 2 cores).
//! 2. Generated worst cases, in every output format (target: each under 0.5 s): a
//!    4 MiB spec with 4,000 errors; the same on one line of flow YAML; 800 documents of
//!    a valid spec in one file; 800 documents that declare one workspace together.
//!    Showing a problem must cost the same whatever the size of its file, so these
//!    grow linearly. Wall time and CPU time (user + system) are both shown: on a shared
//!    machine wall time also counts the wait for a core.
//!
//! Run: `cargo bench --bench validate`.
//! `AMLSPEC_BENCH_RUNS` sets the runs of part 1 (default 300), `AMLSPEC_BENCH_LARGE_RUNS`
//! those of part 2 (default 5).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";

/// CPU time (user + system) of the finished children of this process so far: on a
/// shared machine wall time also counts waiting for a core, CPU time does not.
#[cfg(unix)]
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(not(unix))]
fn children_cpu() -> Duration {
    Duration::ZERO
}

/// Run `amlspec args` in `dir` `runs` times: wall times, and CPU times, each sorted.
fn timed(
    dir: &Path,
    args: &[&str],
    expect_valid: bool,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut walls = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cpu = children_cpu();
        walls.extend(time_runs(dir, args, expect_valid, 1));
        cpus.push(children_cpu() - cpu);
    }
    walls.sort();
    cpus.sort();
    (walls, cpus)
}

fn time_runs(dir: &Path, args: &[&str], expect_valid: bool, runs: usize) -> Vec<Duration> {
    let binary = env!("CARGO_BIN_EXE_amlspec");
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .env("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
            .env("ACR_PASSWORD", "bench-password")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("amlspec runs");
        times.push(start.elapsed());
        assert_eq!(
            status.code(),
            Some(if expect_valid { 0 } else { 1 }),
            "{args:?}"
        );
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn env_runs(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The largest spec amlspec reads, less some slack.
const TARGET_BYTES: usize = 4 * 1024 * 1024 - 16 * 1024;
const ERRORS: usize = 4_000;

fn header() -> String {
    format!(
        "workspace:\n  name: bench-ws\n  subscription_id: {SUBSCRIPTION}\n  resource_group: rg\n"
    )
}

/// 4,000 environments, each with a misspelled key whose value pads the file to 4 MiB.
fn many_errors() -> String {
    let mut text = header();
    text.push_str("environments:\n");
    let entry = |i: usize, pad: &str| {
        format!(
            "  - name: env{i:04}\n    image: ubuntu:22.04\n    user_managed_dependencies: true\n    descripton: {pad}\n"
        )
    };
    let pad = "d".repeat((TARGET_BYTES - text.len()) / ERRORS - entry(0, "").len());
    for i in 0..ERRORS {
        text.push_str(&entry(i, &pad));
    }
    text
}

/// The same, as one line of flow YAML.
fn many_errors_one_line() -> String {
    let mut text = format!(
        "{{workspace: {{name: bench-ws, subscription_id: {SUBSCRIPTION}, resource_group: rg}}, environments: ["
    );
    let entry = |i: usize, pad: &str| {
        format!(
            "{{name: env{i:04}, image: 'ubuntu:22.04', user_managed_dependencies: true, descripton: {pad}}}, "
        )
    };
    let pad = "d".repeat((TARGET_BYTES - text.len()) / ERRORS - entry(0, "").len());
    for i in 0..ERRORS {
        text.push_str(&entry(i, &pad));
    }
    text.push_str("]}\n");
    text
}

/// 800 documents, each a valid workspace with a registry, an environment, a cluster
/// and a job.
fn many_documents() -> String {
    let mut text = String::new();
    for i in 0..800 {
        let _ = write!(
            text,
            "---\nworkspace:\n  name: bench-ws-{i:04}\n  subscription_id: ${{AZURE_SUBSCRIPTION_ID}}\n  resource_group: rg\n  location: westeurope\n  description: document {i}\n  tags:\n    team: bench\n\
             registries:\n  - name: myregistry\n    address: myregistry.azurecr.io\n    username: bench\n    password: ${{ACR_PASSWORD}}\n\
             environments:\n  - name: env\n    image: team/image:1\n    registry: myregistry\n    user_managed_dependencies: true\n\
             clusters:\n  - name: gpu-cluster\n    vm_size: STANDARD_NC6\n    max_nodes: 4\n\
             jobs:\n  - name: train-{i:04}\n    experiment: bench\n    source_directory: src\n    command: python train.py\n    environment: env\n    cluster: gpu-cluster\n"
        );
    }
    text
}

/// 800 documents declaring one workspace together, each adding its own entries.
fn one_workspace_in_many_documents() -> String {
    let mut text = String::new();
    for i in 0..800 {
        let _ = write!(
            text,
            "---\nworkspace:\n  name: bench-ws\n  subscription_id: ${{AZURE_SUBSCRIPTION_ID}}\n  resource_group: rg\n  location: westeurope\n\
             registries:\n  - name: registry{i}\n    address: registry{i}.azurecr.io\n    username: bench\n    password: ${{ACR_PASSWORD}}\n\
             environments:\n  - name: env{i}\n    image: team/image:1\n    registry: registry{i}\n    user_managed_dependencies: true\n\
             clusters:\n  - name: cluster{i}\n    vm_size: STANDARD_NC6\n    max_nodes: 4\n\
             jobs:\n  - name: train-{i:04}\n    experiment: bench\n    source_directory: src\n    command: python train.py\n    environment: env{i}\n    cluster: cluster{i}\n"
        );
    }
    text
}

fn main() {
    let runs = env_runs("AMLSPEC_BENCH_RUNS", 300);
    let large_runs = env_runs("AMLSPEC_BENCH_LARGE_RUNS", 5);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // ---- part 1: the examples, against process start ---------------------------------
    let cases: [(&str, &[&str]); 3] = [
        ("amlspec --version (process start)", &["--version"]),
        (
            "amlspec validate specs/pets.yaml",
            &["validate", "specs/pets.yaml"],
        ),
        ("amlspec validate specs/ (3 files)", &["validate", "specs"]),
    ];
    // Interleave the cases so machine noise hits them alike.
    let rounds = runs.min(10);
    let mut results: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, args)) in cases.iter().enumerate() {
            results[i].extend(time_runs(root, args, true, runs / rounds));
        }
    }
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9}",
        "command", "min ms", "median", "p90", "x start"
    );
    let baseline = median(&results[0]);
    for ((name, _), times) in cases.iter().zip(results.iter_mut()) {
        times.sort();
        println!(
            "{:<52} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            ms(times[0]),
            ms(median(times)),
            ms(times[times.len() * 9 / 10]),
            median(times).as_secs_f64() / baseline.as_secs_f64()
        );
    }

    // ---- part 2: generated worst cases, every format ---------------------------------
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(dir.path().join("src")).expect("src/");
    std::fs::write(dir.path().join("src/train.py"), "print('train')\n").expect("train.py");
    let files = [
        ("errors.yaml", many_errors(), false),
        ("one-line.yaml", many_errors_one_line(), false),
        ("documents.yaml", many_documents(), true),
        (
            "one-workspace.yaml",
            one_workspace_in_many_documents(),
            true,
        ),
    ];
    for (name, text, _) in &files {
        assert!(text.len() <= 4 * 1024 * 1024, "{name}: {}", text.len());
        std::fs::write(dir.path().join(name), text).expect("a generated spec");
    }
    println!();
    println!(
        "{:<52} {:>9} {:>9} {:>9}",
        "generated spec (bytes), format", "wall ms", "cpu ms", "max cpu"
    );
    for (name, text, valid) in &files {
        let formats: [&[&str]; 4] = [
            &["--format", "human", "--color", "never"],
            &["--format", "human", "--color", "always"],
            &["--format", "json"],
            &["--format", "github"],
        ];
        for format in formats {
            let mut args = vec!["validate"];
            args.extend_from_slice(format);
            args.push(name);
            let (walls, cpus) = timed(dir.path(), &args, *valid, large_runs);
            println!(
                "{:<52} {:>9.1} {:>9.1} {:>9.1}",
                format!("{name} ({} bytes), {}", text.len(), format[1..].join(" ")),
                ms(median(&walls)),
                ms(median(&cpus)),
                ms(cpus[cpus.len() - 1])
            );
        }
    }
}
