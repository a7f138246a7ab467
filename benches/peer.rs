//! Benchmark: amlspec side by side with its peer, Azure's own Python SDK (azure-ai-ml),
//! on the seed scenario (specs/pets.yaml), both run as whole processes against the same
//! in-process emulator over HTTPS at the same injected latency.
//!
//! The peer is benches/peer/seed_scenario.py: the scenario written imperatively, as the
//! SDK's documentation teaches (get the workspace; get-or-create the registry connection
//! and the cluster; create the environment; create the command job). Phases, each timed
//! for both tools in turns, so that the machine's noise falls on both alike:
//!
//! - read: `amlspec plan specs/pets.yaml` with everything present, against the reads the
//!   SDK's flow makes before creating (workspace, connection, compute, environment, job);
//! - apply from an empty workspace: `amlspec apply --auto-approve` against the SDK's whole
//!   flow, each on a fresh emulator holding only the workspace (the flow gets the
//!   workspace; the SDK's `workspaces.begin_create` deploys an ARM template, which the
//!   emulator does not serve). amlspec from an empty subscription is shown for context;
//!   it has no peer row;
//! - unchanged re-run: everything present, each tool on the state its own apply left:
//!   amlspec applies nothing, the SDK's flow submits the job again, as it would in a
//!   notebook run twice;
//! - process start, for context: `amlspec --version` and the SDK's interpreter with its
//!   imports (`seed_scenario.py imports`), which every SDK phase pays.
//!
//! Per phase and tool: the median wall time of `AMLSPEC_BENCH_RUNS` runs (default 5;
//! min and max beside it), the child's CPU time and peak RSS (getrusage of the child,
//! its own waited-for children included: for the SDK, the Python interpreter with its
//! start and imports), the requests the emulator answered (ARM, its writes, blob,
//! registry; tokens and OpenID metadata are not counted there), and the ratio
//! SDK/amlspec. Latency (`AMLSPEC_BENCH_LATENCY_MS`, default 100) is injected on every
//! ARM, blob and container-registry request (registries: only amlspec's image check
//! asks them); token requests are not delayed. Long-running operations take
//! `AMLSPEC_BENCH_LRO_MS` (default 1000) and the emulator answers them with
//! `Retry-After: 1`, which both clients honour (with `Retry-After: 0` azure-core falls
//! back to its 30 s polling interval, which would measure a setting, not the clients).
//!
//! The Python interpreter is `AMLSPEC_PYTHON`, else `target/ci-python/bin/python` (the CI
//! venv), else `target/peer-python/bin/python` (benches/peer/requirements.txt says how to
//! make it); when none imports azure-ai-ml, the benchmark says so and exits 0. The amlspec
//! binary is copied first, so a build in the shared target folder during the run does not
//! swap it.
//!
//! Run: `cargo bench --bench peer`. `AMLSPEC_BENCH_ONLY` runs only the phases whose name
//! contains it (`read`, `apply`, `re-run`, `start`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use amlspec::emulator::{Emulator, EmulatorConfig, FaultTarget, SimTimings, TlsConfig, Traffic};
use serde_json::Value;

mod common;

/// The emulator here runs on the allocator `amlspec emulator` ships with.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One measured run of a child process.
struct Sample {
    wall: Duration,
    cpu_ms: i64,
    rss_kb: i64,
    /// CPU the emulator (this process) spent while the child ran.
    emulator_cpu_ms: i64,
    traffic: Traffic,
    /// The SDK's own report (`peer-report` on its stderr).
    report: Option<Value>,
}

/// What the benchmark runs with.
struct Bench {
    runtime: tokio::runtime::Runtime,
    amlspec: PathBuf,
    python: PathBuf,
    script: PathBuf,
    pets: PathBuf,
    /// specs/pets.yaml's workspace alone.
    workspace_only: PathBuf,
    latency_ms: u64,
    lro: Duration,
    runs: usize,
}

fn main() {
    if common::measure_child_if_asked() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some((python, sdk_version)) = common::peer_python("peer") else {
        return;
    };
    let env_u64 = common::env_number;
    let work = tempfile::tempdir().expect("a temporary folder");
    // A copy, so that a build in the shared target folder cannot swap the binary mid-run.
    let amlspec = work.path().join("amlspec");
    std::fs::copy(env!("CARGO_BIN_EXE_amlspec"), &amlspec).expect("the amlspec binary copies");
    let pets = root.join("specs/pets.yaml");
    let workspace_only = work.path().join("pets-workspace.yaml");
    write_workspace_only(&pets, &workspace_only);
    let bench = Bench {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
        amlspec,
        python,
        script: root.join("benches/peer/seed_scenario.py"),
        pets,
        workspace_only,
        latency_ms: env_u64("AMLSPEC_BENCH_LATENCY_MS", 100),
        lro: Duration::from_millis(env_u64("AMLSPEC_BENCH_LRO_MS", 1000)),
        runs: env_u64("AMLSPEC_BENCH_RUNS", 5).max(1) as usize,
    };
    println!(
        "amlspec vs azure-ai-ml {sdk_version} ({}), specs/pets.yaml",
        bench.python.display()
    );
    println!(
        "latency {} ms on ARM, blob and registry requests; long-running operations {} ms \
         (Retry-After: 1); median of {} runs\n",
        bench.latency_ms,
        bench.lro.as_millis(),
        bench.runs
    );
    println!(
        "{:<30} {:<12} {:>8} {:>15} {:>7} {:>8} {:>8} {:>6} {:>5} {:>5} {:>8} {:>9}",
        "phase",
        "tool",
        "wall",
        "(min-max)",
        "CPU",
        "peak RSS",
        "emu CPU",
        "ARM",
        "wr",
        "blob",
        "registry",
        "SDK/amlspec"
    );
    let only = std::env::var("AMLSPEC_BENCH_ONLY").unwrap_or_default();
    let mut verdicts = Vec::new();
    if "read".contains(only.as_str()) {
        let (amlspec, sdk) = bench.read_phase();
        let ratio = print_pair("read (everything present)", "plan", &amlspec, &sdk);
        verdicts.push(("read: plan vs the SDK's gets", ratio, 20.0));
    }
    if "apply".contains(only.as_str()) {
        let (amlspec, sdk) = bench.apply_phase();
        let ratio = print_pair("apply from an empty workspace", "apply", &amlspec, &sdk);
        verdicts.push(("apply from empty", ratio, 3.0));
        let alone = bench.apply_from_empty_subscription();
        print_row("apply from empty subscription", "apply", &alone, None);
        println!(
            "{:<30} {:<12} (no peer row: the SDK's workspace creation deploys an ARM template)",
            "", "azure-ai-ml"
        );
    }
    if "re-run".contains(only.as_str()) {
        let (amlspec, sdk) = bench.rerun_phase();
        let ratio = print_pair("unchanged re-run", "apply", &amlspec, &sdk);
        verdicts.push(("unchanged re-run", ratio, 20.0));
    }
    if "start".contains(only.as_str()) {
        let (amlspec, sdk) = bench.start_phase();
        print_pair("process start (context)", "--version", &amlspec, &sdk);
    }
    if !verdicts.is_empty() {
        println!("\ntargets (issue #10):");
        for (name, ratio, target) in verdicts {
            println!(
                "  {name}: {ratio:.1}x, target >= {target}x: {}",
                if ratio >= target { "met" } else { "missed" }
            );
        }
    }
}

impl Bench {
    /// A fresh emulator without latency (set up first, then slowed down), its CA written
    /// to `ca`, serving the registry specs/pets.yaml pulls from.
    fn emulator(&self, ca: &Path) -> Emulator {
        let config = EmulatorConfig {
            tls: TlsConfig::SelfSigned {
                write_ca_to: Some(ca.to_path_buf()),
            },
            timings: SimTimings {
                lro: self.lro,
                job_phase: Duration::ZERO,
                job_running: Duration::ZERO,
                retry_after_secs: 1,
            },
            registries: vec![common::pets_registry()],
            ..EmulatorConfig::default()
        };
        self.runtime
            .block_on(Emulator::start(config))
            .expect("the emulator starts")
    }

    /// The injected latency on every ARM, blob and registry request from now on.
    fn slow_down(&self, emulator: &Emulator) {
        emulator.admin().set_faults(
            common::latency(
                self.latency_ms,
                &[FaultTarget::Arm, FaultTarget::Blob, FaultTarget::Registry],
            ),
            None,
        );
    }

    fn shutdown(&self, emulator: Emulator) {
        self.runtime.block_on(emulator.shutdown());
    }

    /// `amlspec <args> <manifest>` run to success, not measured (setting up state).
    fn set_up_with_amlspec(&self, emulator: &Emulator, ca: &Path, args: &[&str], manifest: &Path) {
        let mut command = Command::new(&self.amlspec);
        command.args(args).arg(manifest);
        common::connect(&mut command, emulator, ca);
        let output = command.output().expect("amlspec runs");
        assert!(
            output.status.success(),
            "amlspec {args:?} failed while setting up: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The name the job of specs/pets.yaml was submitted under, from a JSON plan.
    fn submitted_job(&self, emulator: &Emulator, ca: &Path) -> String {
        let mut command = Command::new(&self.amlspec);
        command.args(["plan", "--format", "json"]).arg(&self.pets);
        common::connect(&mut command, emulator, ca);
        let output = command.output().expect("amlspec runs");
        assert!(output.status.success(), "plan failed");
        let plan: Value = serde_json::from_slice(&output.stdout).expect("a JSON plan");
        assert_eq!(
            plan["summary"]["create"].as_u64().unwrap_or(1)
                + plan["summary"]["update"].as_u64().unwrap_or(1)
                + plan["summary"]["replace"].as_u64().unwrap_or(1),
            0,
            "everything is present: {}",
            plan["summary"]
        );
        plan["workspaces"][0]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["type"] == "job")
            .and_then(|r| r["id"].as_str())
            .and_then(|id| id.rsplit('/').next())
            .expect("the plan names the job")
            .to_string()
    }

    /// `amlspec <args>` against `emulator`, measured.
    fn run_amlspec(&self, emulator: &Emulator, ca: &Path, args: &[&str]) -> Sample {
        let mut command = common::measuring(&self.amlspec);
        command.args(args);
        common::connect(&mut command, emulator, ca);
        measure(emulator, command, &format!("amlspec {args:?}"))
    }

    /// `seed_scenario.py <mode> <port> <ca> <extra>` against `emulator`, measured.
    fn run_sdk(&self, emulator: &Emulator, ca: &Path, mode: &str, extra: &[&str]) -> Sample {
        let mut command = common::measuring(&self.python);
        command
            .arg(&self.script)
            .arg(mode)
            .arg(emulator.addr().port().to_string())
            .arg(ca)
            .args(extra);
        common::connect_sdk(&mut command, emulator);
        measure(emulator, command, &format!("seed_scenario.py {mode}"))
    }

    fn read_phase(&self) -> (Vec<Sample>, Vec<Sample>) {
        let ca = tempfile::NamedTempFile::new().unwrap();
        let emulator = self.emulator(ca.path());
        self.set_up_with_amlspec(
            &emulator,
            ca.path(),
            &["apply", "--auto-approve"],
            &self.pets,
        );
        let job = self.submitted_job(&emulator, ca.path());
        self.slow_down(&emulator);
        let pets = self.pets.to_str().expect("a UTF-8 path");
        let (mut amlspec, mut sdk) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            amlspec.push(self.run_amlspec(&emulator, ca.path(), &["plan", pets]));
            sdk.push(self.run_sdk(&emulator, ca.path(), "read", &["--job", &job]));
        }
        self.shutdown(emulator);
        (amlspec, sdk)
    }

    /// Each run on a fresh emulator holding specs/pets.yaml's workspace only.
    fn apply_phase(&self) -> (Vec<Sample>, Vec<Sample>) {
        let pets = self.pets.to_str().expect("a UTF-8 path");
        let (mut amlspec, mut sdk) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            for tool in ["amlspec", "sdk"] {
                let ca = tempfile::NamedTempFile::new().unwrap();
                let emulator = self.emulator(ca.path());
                self.set_up_with_amlspec(
                    &emulator,
                    ca.path(),
                    &["apply", "--auto-approve"],
                    &self.workspace_only,
                );
                self.slow_down(&emulator);
                if tool == "amlspec" {
                    amlspec.push(self.run_amlspec(
                        &emulator,
                        ca.path(),
                        &["apply", "--auto-approve", pets],
                    ));
                } else {
                    sdk.push(self.run_sdk(&emulator, ca.path(), "apply", &[]));
                }
                self.shutdown(emulator);
            }
        }
        (amlspec, sdk)
    }

    fn apply_from_empty_subscription(&self) -> Vec<Sample> {
        let pets = self.pets.to_str().expect("a UTF-8 path");
        (0..self.runs)
            .map(|_| {
                let ca = tempfile::NamedTempFile::new().unwrap();
                let emulator = self.emulator(ca.path());
                self.slow_down(&emulator);
                let sample =
                    self.run_amlspec(&emulator, ca.path(), &["apply", "--auto-approve", pets]);
                self.shutdown(emulator);
                sample
            })
            .collect()
    }

    /// Each tool on the state its own apply left, both emulators up, runs in turns.
    fn rerun_phase(&self) -> (Vec<Sample>, Vec<Sample>) {
        let pets = self.pets.to_str().expect("a UTF-8 path");
        let (ca_a, ca_s) = (
            tempfile::NamedTempFile::new().unwrap(),
            tempfile::NamedTempFile::new().unwrap(),
        );
        let for_amlspec = self.emulator(ca_a.path());
        self.set_up_with_amlspec(
            &for_amlspec,
            ca_a.path(),
            &["apply", "--auto-approve"],
            &self.pets,
        );
        let for_sdk = self.emulator(ca_s.path());
        self.set_up_with_amlspec(
            &for_sdk,
            ca_s.path(),
            &["apply", "--auto-approve"],
            &self.workspace_only,
        );
        self.run_sdk(&for_sdk, ca_s.path(), "apply", &[]);
        self.slow_down(&for_amlspec);
        self.slow_down(&for_sdk);
        let (mut amlspec, mut sdk) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let sample = self.run_amlspec(
                &for_amlspec,
                ca_a.path(),
                &["apply", "--auto-approve", pets],
            );
            assert_eq!(
                sample.traffic.arm_writes(),
                0,
                "an unchanged apply writes nothing"
            );
            assert_eq!(
                sample.traffic.blob_bytes_in, 0,
                "an unchanged apply uploads nothing"
            );
            amlspec.push(sample);
            let sample = self.run_sdk(&for_sdk, ca_s.path(), "apply", &[]);
            assert!(
                sample.traffic.arm("PUT") >= 1,
                "the SDK's flow submits the job again"
            );
            sdk.push(sample);
        }
        self.shutdown(for_amlspec);
        self.shutdown(for_sdk);
        (amlspec, sdk)
    }

    /// Process start: `amlspec --version` and the SDK's interpreter with its imports.
    fn start_phase(&self) -> (Vec<Sample>, Vec<Sample>) {
        // An idle emulator, only so that the samples are made the same way.
        let ca = tempfile::NamedTempFile::new().unwrap();
        let emulator = self.emulator(ca.path());
        let (mut amlspec, mut sdk) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let mut command = common::measuring(&self.amlspec);
            command.arg("--version");
            amlspec.push(measure(&emulator, command, "amlspec --version"));
            sdk.push(self.run_sdk(&emulator, ca.path(), "imports", &[]));
        }
        self.shutdown(emulator);
        (amlspec, sdk)
    }
}

/// Run `command` (a measuring parent) once; the emulator's traffic counted from its
/// start.
fn measure(emulator: &Emulator, command: Command, what: &str) -> Sample {
    emulator.admin().reset_traffic();
    let run = common::run_measured(command, what);
    Sample {
        wall: run.wall,
        cpu_ms: run.cpu_ms,
        rss_kb: run.rss_kb,
        emulator_cpu_ms: run.emulator_cpu_ms,
        traffic: emulator.admin().traffic(),
        report: run.report,
    }
}

/// The amlspec and SDK rows of a phase; the ratio of their median wall times.
fn print_pair(phase: &str, command: &str, amlspec: &[Sample], sdk: &[Sample]) -> f64 {
    let base = print_row(phase, command, amlspec, None);
    let wall = print_row("", "azure-ai-ml", sdk, Some(base));
    print_sdk_detail(sdk);
    wall / base
}

/// The median run (by wall time) of `samples`.
fn median(samples: &[Sample]) -> &Sample {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| s.wall);
    sorted[sorted.len() / 2]
}

/// One row: median wall time (min-max), median CPU, max peak RSS, median emulator CPU,
/// the requests of the median run, and the ratio to `base` (s) when given. Returns the
/// median wall time (s).
fn print_row(phase: &str, tool: &str, samples: &[Sample], base: Option<f64>) -> f64 {
    let median_run = median(samples);
    let median_of = |f: fn(&Sample) -> i64| {
        let mut v: Vec<i64> = samples.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let wall = median_run.wall.as_secs_f64();
    let traffic = &median_run.traffic;
    println!(
        "{:<30} {:<12} {:>5} ms {:>15} {:>4} ms {:>5} MB {:>5} ms {:>6} {:>5} {:>5} {:>8} {:>9}",
        phase,
        tool,
        median_run.wall.as_millis(),
        format!(
            "({}-{})",
            samples
                .iter()
                .map(|s| s.wall)
                .min()
                .unwrap_or_default()
                .as_millis(),
            samples
                .iter()
                .map(|s| s.wall)
                .max()
                .unwrap_or_default()
                .as_millis()
        ),
        median_of(|s| s.cpu_ms),
        samples.iter().map(|s| s.rss_kb).max().unwrap_or(0) / 1024,
        median_of(|s| s.emulator_cpu_ms),
        traffic.arm.values().sum::<u64>(),
        traffic.arm_writes(),
        traffic.blob.values().sum::<u64>(),
        traffic.registry.values().sum::<u64>(),
        base.map_or(String::new(), |b| format!("{:.1}x", wall / b)),
    );
    wall
}

/// Where the SDK's time went in its median run, from its own report: from the script's
/// first line to the end of its imports, each step after that, and the rest of the wall
/// time (the interpreter's start before the first line and its exit after the last); and
/// the HTTP requests it sent, tokens and metadata included.
fn print_sdk_detail(samples: &[Sample]) {
    let run = median(samples);
    let Some(report) = run.report.as_ref() else {
        return;
    };
    let marks: Vec<(&str, i64)> = report["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m[0].as_str()?, (m[1].as_f64()? * 1000.0).round() as i64)))
        .collect();
    let mut steps = Vec::new();
    let mut previous = 0;
    for (step, at) in &marks {
        if *step != "done" {
            steps.push(format!("{step} {}", at - previous));
        }
        previous = *at;
    }
    let mut http: Vec<String> = report["http"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    http.sort();
    println!(
        "{:<43} its median run, ms: {}, start and exit {}; its HTTP: {}",
        "",
        steps.join(", "),
        run.wall.as_millis() as i64 - previous,
        if http.is_empty() {
            "none".to_string()
        } else {
            http.join(", ")
        }
    );
}

/// specs/pets.yaml up to its registries: the workspace alone, as declared.
fn write_workspace_only(pets: &Path, to: &Path) {
    let spec = std::fs::read_to_string(pets).expect("specs/pets.yaml");
    let workspace: String = spec
        .lines()
        .take_while(|line| !line.starts_with("registries:"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(to, workspace).expect("the workspace manifest is written");
}
