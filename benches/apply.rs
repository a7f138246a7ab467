//! Benchmark: `amlspec apply` (the real binary) against the local emulator with a fixed
//! injected ARM latency and long-running-operation time, side by side with the
//! critical-path minimum of the same plan.
//!
//! The minimum is worked out from the plan itself (`plan --format json`, made first and
//! not timed): the reads before it (one round trip: a workspace's children are read
//! alongside it), then the longest chain through its `depends_on` graph, each
//! resource costing the ARM round trips it cannot avoid (a PUT; a long-running one
//! also its operation time, which the poll that sees it done overlaps; a key vault the subscription read for its
//! tenant; a Dockerfile environment the datastore read and its `listSecrets`; a job's
//! code upload its `startPendingUpload` and code PUT). Blob requests and tokens are not
//! delayed.
//!
//! Run: `cargo bench --bench apply`. Cases: specs/pets.yaml from an empty subscription;
//! the same apply again when nothing changed (next to a plan of the same specs, in the
//! same run); a generated manifest of 1,000 resources across 10 workspaces from empty.
//! `AMLSPEC_BENCH_LATENCY_MS` (default 100), `AMLSPEC_BENCH_LRO_MS` (default 1000),
//! `AMLSPEC_BENCH_RUNS` (default 3; the median is reported; every run starts from a
//! fresh emulator), `AMLSPEC_BENCH_ONLY` (cases whose name contains it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amlspec::emulator::{Emulator, EmulatorConfig, FaultTarget, SimTimings, TlsConfig};
use serde_json::Value;

mod common;
use common::generate_manifest;

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One measured run of the binary.
struct Run {
    wall: Duration,
    rss_kb: i64,
    cpu_ms: i64,
}

fn main() {
    if common::measure_child_if_asked() {
        return;
    }
    let env_ms = common::env_number;
    let latency = Duration::from_millis(env_ms("AMLSPEC_BENCH_LATENCY_MS", 100));
    let lro = Duration::from_millis(env_ms("AMLSPEC_BENCH_LRO_MS", 1000));
    let runs = env_ms("AMLSPEC_BENCH_RUNS", 3).max(1) as usize;
    let only = std::env::var("AMLSPEC_BENCH_ONLY").unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = tempfile::tempdir().expect("a temporary folder");
    generate_manifest(generated.path(), 10, 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "ARM latency {} ms, long-running operations {} ms, median of {runs} runs\n",
        latency.as_millis(),
        lro.as_millis()
    );
    println!(
        "{:<44} {:>6} {:>9} {:>7} {:>10} {:>9} {:>7} {:>9} {:>8}",
        "case", "steps", "requests", "writes", "critical", "wall", "ratio", "peak RSS", "CPU"
    );
    let pets = vec![root.join("specs/pets.yaml")];
    let bench = Bench {
        runtime: &runtime,
        latency,
        lro,
    };
    if "pets.yaml from empty".contains(&only) {
        bench.apply_from_empty("pets.yaml from empty", &pets, runs);
    }
    if "pets.yaml unchanged (apply vs plan)".contains(&only) {
        bench.unchanged("pets.yaml unchanged", &pets, runs);
    }
    if "1,000 resources / 10 workspaces from empty".contains(&only) {
        bench.apply_from_empty(
            "1,000 resources / 10 workspaces from empty",
            &[generated.path().to_path_buf()],
            runs,
        );
    }
}

struct Bench<'a> {
    runtime: &'a tokio::runtime::Runtime,
    latency: Duration,
    lro: Duration,
}

impl Bench<'_> {
    /// A fresh emulator with the latency and operation time, its CA written to `ca`.
    fn emulator(&self, ca: &Path) -> Emulator {
        let config = EmulatorConfig {
            tls: TlsConfig::SelfSigned {
                write_ca_to: Some(ca.to_path_buf()),
            },
            timings: SimTimings {
                lro: self.lro,
                job_phase: Duration::ZERO,
                job_running: Duration::ZERO,
                // Polls as often as the client allows (100 ms): the minimum counts one.
                retry_after_secs: 0,
            },
            ..EmulatorConfig::default()
        };
        let emulator = self
            .runtime
            .block_on(Emulator::start(config))
            .expect("the emulator starts");
        emulator.admin().set_faults(
            common::latency(self.latency.as_millis() as u64, &[FaultTarget::Arm]),
            None,
        );
        emulator
    }

    fn apply_from_empty(&self, name: &str, paths: &[PathBuf], runs: usize) {
        let mut measured = Vec::new();
        let mut critical = Duration::ZERO;
        let (mut steps, mut requests, mut writes) = (0, 0, 0);
        for _ in 0..runs {
            let ca = tempfile::NamedTempFile::new().unwrap();
            let emulator = self.emulator(ca.path());
            let plan = plan_json(&emulator, ca.path(), paths);
            (critical, steps) = critical_path(&plan, self.latency, self.lro);
            emulator.admin().reset_traffic();
            measured.push(run(&emulator, ca.path(), "apply", paths));
            let traffic = emulator.admin().traffic();
            requests = traffic.arm.values().sum::<u64>();
            writes = traffic.arm_writes();
            self.runtime.block_on(emulator.shutdown());
        }
        report(name, steps, requests, writes, critical, &mut measured);
    }

    fn unchanged(&self, name: &str, paths: &[PathBuf], runs: usize) {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let emulator = self.emulator(ca.path());
        run(&emulator, ca.path(), "apply", paths);
        let (mut applies, mut plans) = (Vec::new(), Vec::new());
        let (mut apply_traffic, mut plan_requests) = (None, 0);
        for _ in 0..runs {
            emulator.admin().reset_traffic();
            plans.push(run(&emulator, ca.path(), "plan", paths));
            plan_requests = emulator.admin().traffic().arm.values().sum::<u64>();
            emulator.admin().reset_traffic();
            applies.push(run(&emulator, ca.path(), "apply", paths));
            apply_traffic = Some(emulator.admin().traffic());
        }
        let traffic = apply_traffic.expect("at least one run");
        assert_eq!(traffic.arm_writes(), 0, "an unchanged apply writes nothing");
        assert_eq!(
            traffic.blob_bytes_in, 0,
            "an unchanged apply uploads nothing"
        );
        plans.sort_by_key(|r| r.wall);
        let plan_wall = plans[plans.len() / 2].wall;
        report(
            &format!("{name}: plan"),
            0,
            plan_requests,
            0,
            plan_wall,
            &mut plans,
        );
        report(
            &format!("{name}: apply (vs plan)"),
            0,
            traffic.arm.values().sum::<u64>(),
            traffic.arm_writes(),
            plan_wall,
            &mut applies,
        );
        self.runtime.block_on(emulator.shutdown());
    }
}

fn report(
    name: &str,
    steps: usize,
    requests: u64,
    writes: u64,
    critical: Duration,
    runs: &mut [Run],
) {
    runs.sort_by_key(|r| r.wall);
    let median = &runs[runs.len() / 2];
    let mut cpus: Vec<i64> = runs.iter().map(|r| r.cpu_ms).collect();
    cpus.sort();
    println!(
        "{:<44} {:>6} {:>9} {:>7} {:>7} ms {:>6} ms {:>6.2}x {:>6} MB {:>5} ms",
        name,
        steps,
        requests,
        writes,
        critical.as_millis(),
        median.wall.as_millis(),
        median.wall.as_secs_f64() / critical.as_secs_f64(),
        runs.iter().map(|r| r.rss_kb).max().unwrap_or(0) / 1024,
        cpus[cpus.len() / 2],
    );
}

/// The plan of `paths` as JSON (not timed).
fn plan_json(emulator: &Emulator, ca: &Path, paths: &[PathBuf]) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amlspec"));
    command.args(["plan", "--format", "json"]).args(paths);
    common::connect(&mut command, emulator, ca);
    let output = command.output().expect("amlspec runs");
    assert!(
        output.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON plan")
}

/// Run `amlspec <command>` once (apply with --auto-approve), measured.
fn run(emulator: &Emulator, ca: &Path, what: &str, paths: &[PathBuf]) -> Run {
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut args = vec![what];
    if what == "apply" {
        args.push("--auto-approve");
    }
    args.extend(paths.iter().map(|p| p.to_str().expect("UTF-8 paths")));
    let mut command = common::measured_command(emulator, ca, &args);
    command.stderr(Stdio::from(log.reopen().expect("the log file reopens")));
    let start = Instant::now();
    let output = command.output().expect("amlspec runs");
    let wall = start.elapsed();
    let (status, rss_kb, cpu_ms) = common::child_report(&output.stdout);
    assert!(
        status == 0,
        "{what} failed: {}",
        std::fs::read_to_string(log.path()).unwrap_or_default()
    );
    Run {
        wall,
        rss_kb,
        cpu_ms,
    }
}

/// The least time a client could take for `plan` (a JSON plan) at `latency` per ARM
/// round trip and `lro` per long-running operation, and the number of steps.
fn critical_path(plan: &Value, latency: Duration, lro: Duration) -> (Duration, usize) {
    let resources: Vec<&Value> = plan["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["resources"].as_array().into_iter().flatten())
        .collect();
    let by_address: BTreeMap<&str, &Value> = resources
        .iter()
        .map(|r| (r["address"].as_str().unwrap_or_default(), *r))
        .collect();
    let acts = |r: &Value| matches!(r["action"].as_str(), Some("create" | "update" | "replace"));
    let mut finish: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut steps = 0;
    // Resources come in dependency order within a workspace plan.
    for r in resources.iter().filter(|r| acts(r)) {
        steps += 1;
        let address = r["address"].as_str().unwrap_or_default();
        let ready = |deps: &Value| -> Duration {
            deps.as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .filter(|d| by_address.get(d).is_some_and(|r| acts(r)))
                .map(|d| finish.get(d).copied().unwrap_or_default())
                .max()
                .unwrap_or_default()
        };
        let mut start = ready(&r["depends_on"]);
        let rtt = |n: u32| latency * n;
        // The emulator delays a request before handling it: a long-running operation
        // starts when its PUT is handled, and a poll handled at its end sees it done.
        let long = rtt(1) + lro;
        let action = r["action"].as_str().unwrap_or_default();
        let cost = match (r["type"].as_str().unwrap_or_default(), action) {
            ("storage_account", _) => long,
            ("key_vault", _) => rtt(2),
            ("workspace", "create") => long,
            ("cluster", "replace") => long + long,
            ("cluster", _) => long,
            ("environment", _)
                if r["facts"]["build_context"]["state"].as_str() == Some("upload") =>
            {
                rtt(3)
            }
            ("job", _) => {
                if r["facts"]["code"]["state"].as_str() == Some("upload") {
                    // The upload waits for the workspace only.
                    let ws = address.rsplitn(3, '/').nth(2).unwrap_or_default();
                    let code_done = finish.get(ws).copied().unwrap_or_default() + rtt(2);
                    start = start.max(code_done);
                }
                rtt(1)
            }
            _ => rtt(1),
        };
        finish.insert(address, start + cost);
    }
    let longest = finish.values().copied().max().unwrap_or_default();
    // The reads come first: one round trip (a workspace's children are read alongside it).
    (latency + longest, steps)
}
