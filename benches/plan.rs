//! Benchmark: `amlspec plan` (the real binary, as a user runs it) against the local
//! emulator with a fixed injected ARM and registry latency, side by side with the
//! critical-path minimum: the longest chain of requests that must follow one another,
//! times the latency. A plan that reads every resource at once, each workspace's
//! children alongside the workspace (one round trip), scores close to 1. When a new
//! environment's image is checked (preflight), the registry's handshake (`GET /v2/` and,
//! alongside it for an Azure Container Registry, a token; then `HEAD` of the manifest)
//! is a chain of two, run alongside the ARM reads; the `--skip-preflight=image` case
//! shows the ARM reads alone.
//!
//! Run: `cargo bench --bench plan`. Cases: specs/pets.yaml on an empty subscription
//! (depth 2: the workspace is missing, its children are not read, and the new
//! environment's image is checked), the same with `--skip-preflight=image` (depth 1),
//! specs/pets.yaml with
//! everything present (depth 1), a generated manifest of 1,000 resources across 10
//! workspaces, everything present (depth 1), and specs/pets.yaml with a 40 MB source
//! folder to hash, everything present (depth 1: the children's reads wait for the
//! hashing, which the workspace read overlaps). `AMLSPEC_BENCH_LATENCY_MS` sets the
//! latency (default 100), `AMLSPEC_BENCH_RUNS` the runs per case (default 5; the median
//! is reported), `AMLSPEC_BENCH_ONLY` runs only the cases whose name contains it, and
//! `AMLSPEC_BENCH_SHOW_LOG` prints each run's `-v` log (stage timestamps),
//! `AMLSPEC_BENCH_ARGS` adds arguments to every plan (`--skip-preflight=image`). Peak
//! RSS is the child's maximum resident set (getrusage); CPU is the child's, and "emu CPU"
//! is what the emulator (this process) spent serving it on the same cores.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use amlspec::azure::client::ClientSettings;

mod common;
#[path = "../tests/support/seed.rs"]
mod seed;
use amlspec::emulator::{Emulator, EmulatorConfig, FaultTarget, SimTimings, TlsConfig};
use amlspec::ops::connect::client_for_emulator;
use common::{generate_manifest, load, own_cpu_ms};

/// The emulator here runs on the allocator `amlspec emulator` ships with.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Case {
    name: &'static str,
    paths: Vec<PathBuf>,
    seed: bool,
    /// Levels of reads that must follow one another (ARM reads, or a registry probe's
    /// two round trips when an image is checked).
    depth: u32,
    extra_args: &'static [&'static str],
}

fn main() {
    if common::measure_child_if_asked() {
        return;
    }
    let latency_ms = common::env_number("AMLSPEC_BENCH_LATENCY_MS", 100);
    let runs = common::env_number("AMLSPEC_BENCH_RUNS", 5) as usize;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = tempfile::tempdir().expect("a temporary folder");
    generate_manifest(generated.path(), 10, 100);
    let big_source = tempfile::tempdir().expect("a temporary folder");
    generate_big_source(&root.join("specs/pets.yaml"), big_source.path());
    let cases = [
        Case {
            name: "pets.yaml, empty subscription",
            paths: vec![root.join("specs/pets.yaml")],
            seed: false,
            // The image check: the ping and the token together, then the manifest.
            depth: 2,
            extra_args: &[],
        },
        Case {
            name: "pets.yaml, empty, no image check",
            paths: vec![root.join("specs/pets.yaml")],
            seed: false,
            depth: 1,
            extra_args: &["--skip-preflight=image"],
        },
        Case {
            name: "pets.yaml, everything present",
            paths: vec![root.join("specs/pets.yaml")],
            seed: true,
            depth: 1,
            extra_args: &[],
        },
        Case {
            name: "1,000 resources / 10 workspaces",
            paths: vec![generated.path().to_path_buf()],
            seed: true,
            depth: 1,
            extra_args: &[],
        },
        Case {
            name: "pets.yaml, 40 MB source folder",
            paths: vec![big_source.path().join("pets.yaml")],
            seed: true,
            depth: 1,
            extra_args: &[],
        },
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("ARM latency {latency_ms} ms, median of {runs} runs\n");
    println!(
        "{:<34} {:>9} {:>9} {:>8} {:>10} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "case",
        "resources",
        "requests",
        "req/res",
        "critical",
        "wall",
        "ratio",
        "peak RSS",
        "CPU",
        "emu CPU"
    );
    let only = std::env::var("AMLSPEC_BENCH_ONLY").unwrap_or_default();
    for case in cases.into_iter().filter(|c| c.name.contains(&only)) {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let config = EmulatorConfig {
            tls: TlsConfig::SelfSigned {
                write_ca_to: Some(ca.path().to_path_buf()),
            },
            timings: SimTimings {
                lro: Duration::ZERO,
                job_phase: Duration::ZERO,
                job_running: Duration::ZERO,
                retry_after_secs: 0,
            },
            registries: vec![common::pets_registry()],
            ..EmulatorConfig::default()
        };
        let emulator = runtime
            .block_on(Emulator::start(config))
            .expect("the emulator starts");
        let desired = load(&case.paths);
        let resources: usize = desired
            .workspaces
            .iter()
            .map(|w| {
                1 + w.registries.len() + w.environments.len() + w.clusters.len() + w.jobs.len()
            })
            .sum();
        if case.seed {
            let client = client_for_emulator(&emulator, ClientSettings::default()).unwrap();
            runtime.block_on(seed::seed(&client, emulator.tenant_id(), &desired));
        }
        emulator.admin().set_faults(
            common::latency(latency_ms, &[FaultTarget::Arm, FaultTarget::Registry]),
            None,
        );
        let mut walls = Vec::new();
        let mut requests = 0;
        let mut rss_kb = 0;
        let mut cpus = Vec::new();
        let mut emulator_cpus = Vec::new();
        for _ in 0..runs {
            let before = own_cpu_ms();
            let (wall, reqs, rss, cpu) =
                run_plan(&emulator, ca.path(), &case.paths, case.extra_args);
            emulator_cpus.push(own_cpu_ms() - before);
            walls.push(wall);
            cpus.push(cpu);
            requests = reqs;
            rss_kb = rss_kb.max(rss);
        }
        cpus.sort();
        emulator_cpus.sort();
        walls.sort();
        let wall = walls[walls.len() / 2];
        let critical = Duration::from_millis(latency_ms * u64::from(case.depth));
        println!(
            "{:<34} {:>9} {:>9} {:>8.2} {:>7} ms {:>6} ms {:>6.2}x {:>6} MB {:>6} ms {:>6} ms",
            case.name,
            resources,
            requests,
            requests as f64 / resources as f64,
            critical.as_millis(),
            wall.as_millis(),
            wall.as_secs_f64() / critical.as_secs_f64(),
            rss_kb / 1024,
            cpus[cpus.len() / 2],
            emulator_cpus[emulator_cpus.len() / 2],
        );
        runtime.block_on(emulator.shutdown());
    }
}

/// Run `amlspec plan` once; its wall time, the ARM requests it made, its peak RSS (kB).
/// (The wall time includes starting the small measuring parent, about a millisecond.)
fn run_plan(
    emulator: &Emulator,
    ca: &Path,
    paths: &[PathBuf],
    extra_args: &[&str],
) -> (Duration, u64, i64, i64) {
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut args = vec!["plan", "-v"];
    args.extend(extra_args);
    let more = std::env::var("AMLSPEC_BENCH_ARGS").unwrap_or_default();
    args.extend(more.split_whitespace());
    args.extend(paths.iter().map(|p| p.to_str().expect("UTF-8 paths")));
    let mut command = common::measured_command(emulator, ca, &args);
    command.stderr(Stdio::from(log.reopen().expect("the log file reopens")));
    let start = Instant::now();
    let output = command.output().expect("amlspec runs");
    let wall = start.elapsed();
    let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
    let (status, rss_kb, cpu_ms) = common::child_report(&output.stdout);
    assert!(status == 0, "plan failed: {stderr}");
    if std::env::var_os("AMLSPEC_BENCH_SHOW_LOG").is_some() {
        eprintln!("{stderr}");
    }
    let requests = stderr
        .lines()
        .find(|l| l.contains("observed"))
        .and_then(|l| l.split("requests=").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (wall, requests, rss_kb, cpu_ms)
}

/// specs/pets.yaml next to a source folder of 2,000 files, 40 MB in all (content that
/// does not compress, from a fixed seed): hashing it for the job's code snapshot takes
/// tens of milliseconds, which plan hides behind the workspace read.
fn generate_big_source(pets: &Path, dir: &Path) {
    let spec = std::fs::read_to_string(pets).expect("specs/pets.yaml");
    let spec = spec
        .lines()
        .map(|line| match line.split_once("source_directory:") {
            Some((indent, _)) => format!("{indent}source_directory: src"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("pets.yaml"), spec + "\n").unwrap();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..2000 {
        let folder = dir.join(format!("src/pkg{}", i % 40));
        std::fs::create_dir_all(&folder).unwrap();
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(folder.join(format!("f{i}.py")), bytes).unwrap();
    }
}
