//! The fault campaign: randomized applies of generated manifests against the emulator
//! under random fault schedules, each run checked to converge within three applies with
//! nothing made twice and a plan of "No changes" afterwards.
//!
//! One run, from its seed: a manifest of 1 to 3 workspaces holding every resource kind
//! (registry connections, environments from public and private images, with conda files,
//! from inline Dockerfiles and from build-context folders, clusters, jobs with source
//! folders), applied under a fault schedule drawn from: 429 with Retry-After, 500 and
//! 503, dropped connections, answers lost after the emulator acted, long-running
//! operations that fail or take time, a token that expires mid-run, and blob upload
//! failures. Then a random edit (a job's command, a
//! source file, a cluster's size bounds, a new job, an environment's conda file) applied
//! under the same schedule. Each phase must converge within three applies; then, with
//! the faults cleared, `plan --detailed-exitcode` must say "No changes" (exit 0), and the
//! emulator must hold exactly the jobs, code versions and environment versions that the
//! manifests named, in either phase: one of each, never two.
//!
//! Run it (seeds are printed, and a failing seed is named):
//!
//! ```sh
//! AMLSPEC_CAMPAIGN_RUNS=1000 cargo test --release --test integration campaign_faults -- --ignored --nocapture
//! ```
//!
//! `AMLSPEC_CAMPAIGN_RUNS` (default 50, what CI runs), `AMLSPEC_CAMPAIGN_SEED` (the first
//! seed, default 1), `AMLSPEC_CAMPAIGN_SECONDS` (a time bound: no run starts after it,
//! default 3600), `AMLSPEC_CAMPAIGN_PARALLEL` (runs at once, default 4: they mostly wait
//! on retries), `AMLSPEC_CAMPAIGN_VERBOSE` (print every apply's output). Everything stays on 127.0.0.1. The fault draws depend on the order in
//! which concurrent requests reach the emulator, so a seed reproduces its manifest, edit
//! and schedule exactly, and its faults closely.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use amlspec::emulator::{EmulatorConfig, Fault, FaultRule, FaultTarget, SimTimings};
use futures::StreamExt;
use serde_json::Value;

use crate::cli::azure::{Local, config, load, run_test};
use crate::cli::common::Test;

/// xorshift64*: a small, seeded, dependency-free source of choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The number in variable `name`, or `default`.
fn number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a campaign counted.
#[derive(Default)]
struct Tally {
    runs: u64,
    applies: u64,
    /// Applies each phase needed: index 1, 2 or 3.
    needed: [u64; 4],
    faults: BTreeMap<&'static str, u64>,
    worst: (u64, u64),
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.runs += other.runs;
        self.applies += other.applies;
        for (mine, theirs) in self.needed.iter_mut().zip(other.needed) {
            *mine += theirs;
        }
        for (kind, count) in other.faults {
            *self.faults.entry(kind).or_default() += count;
        }
        if other.worst.1 > self.worst.1 {
            self.worst = other.worst;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a campaign (minutes): AMLSPEC_CAMPAIGN_RUNS=1000 cargo test --release --test integration campaign_faults -- --ignored --nocapture"]
async fn campaign_faults() {
    let runs = number("AMLSPEC_CAMPAIGN_RUNS", 50);
    let first = number("AMLSPEC_CAMPAIGN_SEED", 1);
    let budget = Duration::from_secs(number("AMLSPEC_CAMPAIGN_SECONDS", 3600));
    let parallel = number("AMLSPEC_CAMPAIGN_PARALLEL", 4).max(1) as usize;
    let started = Instant::now();
    let mut tally = Tally::default();
    // Runs wait on retries and operations more than they compute: several at once, each
    // with its own emulator and folder.
    let mut results = futures::stream::iter(first..first + runs)
        .map(|seed| async move {
            if started.elapsed() > budget {
                return None;
            }
            let mut tally = Tally::default();
            one_run(seed, &mut tally).await;
            Some(tally)
        })
        .buffer_unordered(parallel);
    let mut skipped = 0;
    while let Some(result) = results.next().await {
        let Some(run) = result else {
            skipped += 1;
            continue;
        };
        tally.merge(run);
        if tally.runs % 50 == 0 {
            println!(
                "{} runs, {} applies, {:.0} s",
                tally.runs,
                tally.applies,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if skipped > 0 {
        println!("time bound reached: {skipped} runs not started");
    }
    println!(
        "fault campaign: seeds {first}..{}: {} runs converged, {} applies in {:.0} s",
        first + tally.runs,
        tally.runs,
        tally.applies,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  phases converging after 1 / 2 / 3 applies: {} / {} / {}",
        tally.needed[1], tally.needed[2], tally.needed[3]
    );
    println!(
        "  worst: seed {} needed {} applies in a phase",
        tally.worst.0, tally.worst.1
    );
    println!("  faults injected, by kind (as the emulator counted them):");
    for (kind, count) in &tally.faults {
        println!("    {kind}: {count}");
    }
    println!("  duplicates: 0 jobs, 0 code versions, 0 environment versions; panics: 0");
    assert!(tally.runs > 0, "no run finished within the time bound");
}

/// The crash campaign: an apply killed (SIGKILL) at a random point, then applied again.
/// The point is a count of requests the emulator has answered (any of ARM, blob and
/// registry), drawn from 1 to 60, so kills land before, during and after uploads,
/// between a PUT and its poll, and in the middle of job submission; long-running
/// operations take 50 to 300 ms so that many kills find one in flight. The next apply
/// must succeed, the plan then say "No changes", and the emulator hold exactly what the
/// manifest names, one of each.
///
/// ```sh
/// AMLSPEC_CAMPAIGN_CRASHES=50 cargo test --release --test integration campaign_crashes -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a campaign (minutes): AMLSPEC_CAMPAIGN_CRASHES=50 cargo test --release --test integration campaign_crashes -- --ignored --nocapture"]
async fn campaign_crashes() {
    let crashes = number("AMLSPEC_CAMPAIGN_CRASHES", 5);
    let first = number("AMLSPEC_CAMPAIGN_SEED", 1);
    let started = Instant::now();
    let mut killed = 0;
    let mut finished_first = 0;
    let mut points = Vec::new();
    for seed in first..first + crashes {
        let mut rng = Rng::new(seed ^ 0x0C4A_54E5);
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::generate(&mut rng);
        manifest.write(dir.path());
        let paths = manifest.paths(dir.path());
        let point = 1 + rng.below(60);
        let lro = Duration::from_millis(50 + rng.below(250));
        let azure = Local::start_with(EmulatorConfig {
            timings: SimTimings {
                lro,
                job_phase: Duration::ZERO,
                job_running: Duration::ZERO,
                retry_after_secs: 0,
            },
            ..config()
        })
        .await;
        let what = format!(
            "crash seed {seed} ({}; killed after {point} requests, operations of {} ms)",
            manifest.describe(),
            lro.as_millis()
        );
        let mut args = vec!["apply", "--auto-approve"];
        args.extend(paths.iter().map(String::as_str));
        let mut running = azure.cli(&args).spawn();
        let answered = |azure: &Local| {
            let traffic = azure.emulator.admin().traffic();
            traffic.arm.values().sum::<u64>()
                + traffic.blob.values().sum::<u64>()
                + traffic.registry.values().sum::<u64>()
        };
        let mut exited = false;
        for _ in 0..6000 {
            if answered(&azure) >= point {
                break;
            }
            if running.child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if exited {
            finished_first += 1;
        } else {
            running.signal(libc::SIGKILL);
            killed += 1;
        }
        let out = tokio::task::spawn_blocking(move || running.finish())
            .await
            .unwrap();
        assert!(
            !out.stderr.contains("panicked"),
            "{what}: the first apply panicked:\n{}",
            out.stderr
        );
        points.push(point);
        let out = azure.run(&args).await;
        assert_eq!(
            out.code, 0,
            "{what}: the apply after the crash failed:\n{}{}",
            out.stdout, out.stderr
        );
        let mut plan = vec!["plan", "--detailed-exitcode"];
        plan.extend(paths.iter().map(String::as_str));
        let out = azure.run(&plan).await;
        assert_eq!(
            out.code, 0,
            "{what}: after the crash and one apply, the plan is not empty:\n{}{}",
            out.stdout, out.stderr
        );
        let mut named = Named::default();
        named.add(&paths);
        let local = &azure;
        named
            .assert_exactly_these(|path| async move { local.get_json(&path).await }, &what)
            .await;
    }
    points.sort_unstable();
    println!(
        "crash campaign: seeds {first}..{}: {killed} applies killed (SIGKILL) at request counts from {} to {} (median {}), {finished_first} finished before their point; every next apply converged, nothing twice, in {:.0} s",
        first + crashes,
        points.first().copied().unwrap_or(0),
        points.last().copied().unwrap_or(0),
        points.get(points.len() / 2).copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}

/// The emulator crash campaign: the emulator itself, `amlspec emulator --state` in its
/// own process, is killed (SIGKILL) while an apply writes to it, right after a random one
/// of its journal writes (the journal's size is watched, so kills land while writes are
/// in progress), and started again on the same folder and port. The apply that was
/// running may fail or go on against the new emulator; at most two more applies must
/// succeed, the plan then say "No changes", and the emulator hold exactly what the
/// manifest names, one of each: no acknowledged write lost, nothing half-made that plan
/// does not show.
///
/// ```sh
/// AMLSPEC_CAMPAIGN_EMULATOR_CRASHES=50 cargo test --release --test integration campaign_emulator_crashes -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a campaign (minutes): AMLSPEC_CAMPAIGN_EMULATOR_CRASHES=50 cargo test --release --test integration campaign_emulator_crashes -- --ignored --nocapture"]
async fn campaign_emulator_crashes() {
    let crashes = number("AMLSPEC_CAMPAIGN_EMULATOR_CRASHES", 5);
    let first = number("AMLSPEC_CAMPAIGN_SEED", 1);
    let started = Instant::now();
    let (mut killed, mut finished_first, mut applies_after) = (0, 0, Vec::new());
    // How the apply the crash interrupted ended: went on and succeeded, or failed.
    let (mut went_on, mut failed) = (0, 0);
    let mut points = Vec::new();
    for seed in first..first + crashes {
        let mut rng = Rng::new(seed ^ 0xE3A1_C0DE);
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let manifest = Manifest::generate(&mut rng);
        manifest.write(dir.path());
        let paths = manifest.paths(dir.path());
        let point = 1 + rng.below(16);
        let what = format!(
            "emulator crash seed {seed} ({}; emulator killed after {point} journal writes)",
            manifest.describe()
        );
        let emulator = EmulatorProcess::start(state.path(), 0);
        let port = emulator.port;
        let mut apply = vec!["apply", "--auto-approve"];
        apply.extend(paths.iter().map(String::as_str));
        let mut running = emulator.cli(&apply).spawn();
        let journal = state.path().join("journal.jsonl");
        let size = || std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
        let (mut last, mut writes, mut exited) = (size(), 0, false);
        let deadline = Instant::now() + Duration::from_secs(120);
        while writes < point && Instant::now() < deadline {
            if running.child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            let now = size();
            if now != last {
                writes += 1;
                last = now;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        emulator.kill();
        if exited {
            finished_first += 1;
        } else {
            killed += 1;
        }
        points.push(writes);
        let emulator = EmulatorProcess::start(state.path(), port);
        let out = tokio::task::spawn_blocking(move || running.finish())
            .await
            .unwrap();
        assert!(
            !out.stderr.contains("panicked"),
            "{what}: the apply the crash interrupted panicked:\n{}",
            out.stderr
        );
        if !exited {
            if out.code == 0 {
                went_on += 1;
            } else {
                failed += 1;
                // Why, in a line: its first failure as reported.
                let reason = out
                    .stdout
                    .lines()
                    .chain(out.stderr.lines())
                    .find(|line| line.contains("FAILED") || line.starts_with("error"))
                    .unwrap_or("(no failure line)");
                println!("  seed {seed}: the interrupted apply failed: {reason}");
            }
        }
        let mut applies = 0;
        loop {
            applies += 1;
            let out = run_test(emulator.cli(&apply)).await;
            if out.code == 0 {
                break;
            }
            assert!(
                applies < 2,
                "{what}: two applies after the crash failed; the last:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
        applies_after.push(applies);
        let mut plan = vec!["plan", "--detailed-exitcode"];
        plan.extend(paths.iter().map(String::as_str));
        let out = run_test(emulator.cli(&plan)).await;
        assert_eq!(
            out.code, 0,
            "{what}: after the crash and the applies, the plan is not empty:\n{}{}",
            out.stdout, out.stderr
        );
        let mut named = Named::default();
        named.add(&paths);
        let http = emulator.http();
        named
            .assert_exactly_these(|path| emulator.get_json(&http, path), &what)
            .await;
        emulator.kill();
    }
    points.sort_unstable();
    println!(
        "emulator crash campaign: seeds {first}..{}: {killed} emulators killed (SIGKILL) mid-apply after {} to {} journal writes (median {}), {finished_first} applies finished first; the interrupted applies went on against the restarted emulator and succeeded in {went_on} cases and failed in {failed}; the next apply converged in {} (at most {}), nothing twice, in {:.0} s",
        first + crashes,
        points.first().copied().unwrap_or(0),
        points.last().copied().unwrap_or(0),
        points.get(points.len() / 2).copied().unwrap_or(0),
        if applies_after.iter().all(|a| *a == 1) {
            "one apply each".to_string()
        } else {
            format!(
                "one apply in {} of {}",
                applies_after.iter().filter(|a| **a == 1).count(),
                applies_after.len()
            )
        },
        applies_after.iter().max().copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}

/// `amlspec emulator --state` in its own process: operations of one second, jobs that
/// finish at once, HTTPS with a certificate made for the campaign. `amlspec emulator`
/// makes its own CA afresh at every start (its key never leaves the process), so an
/// apply connected to the killed emulator would refuse the restarted one; with the same
/// certificate, it can go on as a client of a restarted Azure front end does.
struct EmulatorProcess {
    child: std::process::Child,
    port: u16,
    base: String,
    ca: std::path::PathBuf,
}

impl EmulatorProcess {
    /// Start it on `port` (0: any). A port just freed by a killed emulator is tried again
    /// for a few seconds.
    fn start(state: &Path, port: u16) -> EmulatorProcess {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let ca = state.with_extension("ca.pem");
        let (cert, key) = (
            state.with_extension("cert.pem"),
            state.with_extension("key.pem"),
        );
        if !ca.exists() {
            let (chain, private, authority) = certificate();
            std::fs::write(&cert, chain).unwrap();
            std::fs::write(&key, private).unwrap();
            std::fs::write(&ca, authority).unwrap();
        }
        for _ in 0..50 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_amlspec"))
                .args(["emulator", "--port", &port.to_string()])
                .args(["--lro-seconds", "1", "--job-phase-seconds", "0"])
                .args(["--job-running-seconds", "0", "--retry-after", "1"])
                .arg("--state")
                .arg(state)
                .arg("--tls-cert")
                .arg(&cert)
                .arg("--tls-key")
                .arg(&key)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the emulator starts");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let Some(base) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("arm="))
                .map(str::to_string)
            else {
                // Not started (the port still held): its error is on stderr.
                let output = child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    port != 0 && stderr.contains("in use"),
                    "the emulator did not start: {stderr}"
                );
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let port = base.rsplit(':').next().unwrap().parse().unwrap();
            return EmulatorProcess {
                child,
                port,
                base,
                ca,
            };
        }
        panic!("port {port} stayed in use");
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// `amlspec args...` connected to it, as its service principal.
    fn cli(&self, args: &[&str]) -> Test {
        Test::new()
            .env("AMLSPEC_AUTH", "service-principal")
            .env("AZURE_TENANT_ID", amlspec::emulator::DEFAULT_TENANT_ID)
            .env("AZURE_CLIENT_ID", amlspec::emulator::DEFAULT_CLIENT_ID)
            .env(
                "AZURE_CLIENT_SECRET",
                amlspec::emulator::DEFAULT_CLIENT_SECRET,
            )
            .secret(amlspec::emulator::DEFAULT_CLIENT_SECRET)
            .args(args)
            .args(["--arm-endpoint", &self.base, "--authority-host", &self.base])
            .args([
                "--storage-suffix",
                &format!(
                    "{}:{}",
                    amlspec::emulator::DEFAULT_STORAGE_SUFFIX,
                    self.port
                ),
            ])
            .args([std::ffi::OsStr::new("--ca-cert"), self.ca.as_os_str()])
    }

    /// An HTTPS client that trusts its CA.
    fn http(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).unwrap();
        reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// GET an ARM path at the ML api-version, as its service principal.
    async fn get_json(&self, http: &reqwest::Client, path: String) -> Value {
        let token: Value = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.base,
                amlspec::emulator::DEFAULT_TENANT_ID
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", amlspec::emulator::DEFAULT_CLIENT_ID),
                ("client_secret", amlspec::emulator::DEFAULT_CLIENT_SECRET),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = http
            .get(format!(
                "{}{path}?api-version={}",
                self.base,
                amlspec::azure::ML_API_VERSION
            ))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

/// A CA and a server certificate it signs for the emulator's names (loopback, the
/// storage accounts, Azure Container Registry): the chain, the server key and the CA, as
/// PEM.
fn certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let suffix = amlspec::emulator::DEFAULT_STORAGE_SUFFIX;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        format!("*.blob.{suffix}"),
        "*.azurecr.io".to_string(),
    ])
    .unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        format!("{}{}", cert.pem(), ca.pem()),
        key.serialize_pem(),
        ca.pem(),
    )
}

/// One seed: generate, apply under faults until converged (at most 3), edit, again, then
/// check the end state.
async fn one_run(seed: u64, tally: &mut Tally) {
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::generate(&mut rng);
    manifest.write(dir.path());
    let lro_ms = [0, 0, 20, 150][rng.below(4) as usize];
    let azure = Local::start_with(EmulatorConfig {
        timings: SimTimings {
            lro: Duration::from_millis(lro_ms),
            job_phase: Duration::ZERO,
            job_running: Duration::ZERO,
            retry_after_secs: 0,
        },
        ..config()
    })
    .await;
    let schedule = schedule(&mut rng);
    let what = format!(
        "seed {seed} ({}; faults: {})",
        manifest.describe(),
        describe(&schedule)
    );
    let paths = manifest.paths(dir.path());
    let mut named = Named::default();
    named.add(&paths);

    azure
        .emulator
        .admin()
        .set_faults(schedule.clone(), Some(seed));
    converge(&azure, &paths, &what, "first apply", tally, seed).await;

    let edit = manifest.edit(&mut rng, dir.path());
    let what = format!("{what}; edit: {edit}");
    named.add(&paths);
    azure
        .emulator
        .admin()
        .set_faults(schedule, Some(seed ^ 0xED17));
    converge(&azure, &paths, &what, "after the edit", tally, seed).await;

    for (kind, count) in fault_counts(&azure) {
        *tally.faults.entry(kind).or_default() += count;
    }
    azure.emulator.admin().clear_faults();
    let mut args = vec!["plan", "--detailed-exitcode"];
    args.extend(paths.iter().map(String::as_str));
    let out = azure.run(&args).await;
    assert_eq!(
        out.code, 0,
        "{what}: after convergence the plan is not empty:\n{}{}",
        out.stdout, out.stderr
    );
    let local = &azure;
    named
        .assert_exactly_these(|path| async move { local.get_json(&path).await }, &what)
        .await;
    tally.runs += 1;
}

/// Apply until an apply succeeds, at most three times.
async fn converge(
    azure: &Local,
    paths: &[String],
    what: &str,
    phase: &str,
    tally: &mut Tally,
    seed: u64,
) {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend(paths.iter().map(String::as_str));
    let mut log = String::new();
    for attempt in 1..=3u64 {
        let out = azure.run(&args).await;
        tally.applies += 1;
        if std::env::var_os("AMLSPEC_CAMPAIGN_VERBOSE").is_some() {
            println!(
                "--- {what}: {phase}: apply {attempt} exited {}\n{}{}",
                out.code, out.stdout, out.stderr
            );
        }
        assert!(
            !out.stderr.contains("panicked"),
            "{what}: {phase}: apply {attempt} panicked:\n{}",
            out.stderr
        );
        assert!(
            matches!(out.code, 0 | 1),
            "{what}: {phase}: apply {attempt} exited {}:\n{}{}",
            out.code,
            out.stdout,
            out.stderr
        );
        if out.code == 0 {
            tally.needed[attempt as usize] += 1;
            if attempt > tally.worst.1 {
                tally.worst = (seed, attempt);
            }
            return;
        }
        log.push_str(&format!(
            "--- apply {attempt}:\n{}{}\n",
            out.stdout, out.stderr
        ));
    }
    panic!("{what}: {phase}: not converged within 3 applies:\n{log}");
}

/// A random fault schedule: each kind of fault with some chance, at a random rate.
fn schedule(rng: &mut Rng) -> Vec<FaultRule> {
    let mut rules = Vec::new();
    if rng.chance(0.6) {
        let p = rng.between(0.05, 0.2);
        rules.push(
            FaultRule::always(Fault::Throttle {
                retry_after_secs: 0,
            })
            .with_probability(p)
            .on(FaultTarget::Arm),
        );
    }
    if rng.chance(0.6) {
        let status = if rng.chance(0.5) { 500 } else { 503 };
        let p = rng.between(0.03, 0.12);
        rules.push(FaultRule::always(Fault::ServerError { status }).with_probability(p));
    }
    if rng.chance(0.5) {
        let p = rng.between(0.02, 0.08);
        rules.push(FaultRule::always(Fault::DropConnection).with_probability(p));
    }
    if rng.chance(0.5) {
        let times = 1 + rng.below(2) as u32;
        rules.push(FaultRule::always(Fault::FailLro).times(times));
    }
    if rng.chance(0.4) {
        rules.push(
            FaultRule::always(Fault::ExpiredToken)
                .times(1)
                .on(FaultTarget::Arm),
        );
    }
    if rng.chance(0.5) {
        let p = rng.between(0.05, 0.25);
        rules.push(
            FaultRule::always(Fault::ServerError { status: 503 })
                .with_probability(p)
                .on(FaultTarget::Blob),
        );
    }
    if rng.chance(0.3) {
        rules.push(
            FaultRule::always(Fault::Latency {
                fixed_ms: 0,
                jitter_ms: 30,
            })
            .with_probability(0.3),
        );
    }
    if rng.chance(0.4) {
        // Answers lost after the emulator acted (a gateway timing out): a write tried
        // again may meet its own resource still being made (409 Conflict).
        let p = rng.between(0.02, 0.06);
        rules.push(
            FaultRule::always(Fault::LoseAnswer)
                .with_probability(p)
                .on(FaultTarget::Arm),
        );
    }
    rules
}

fn describe(rules: &[FaultRule]) -> String {
    if rules.is_empty() {
        return "none".into();
    }
    rules
        .iter()
        .map(|r| format!("{:?} p={:.2} on {:?}", r.fault, r.probability, r.target))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Faults the emulator injected, by kind.
fn fault_counts(azure: &Local) -> Vec<(&'static str, u64)> {
    azure
        .emulator
        .admin()
        .injected_faults()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------- manifests

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EnvKind {
    Public,
    Private,
    Conda,
    Inline,
    Folder,
}

struct Workspace {
    registry: bool,
    environments: Vec<EnvKind>,
    clusters: Vec<(u32, u32)>,
    /// (command seed, environment index, cluster index)
    jobs: Vec<(u64, usize, usize)>,
}

struct Manifest {
    workspaces: Vec<Workspace>,
    /// A token that keeps each run's names apart from every other's.
    tag: u64,
}

impl Manifest {
    fn generate(rng: &mut Rng) -> Manifest {
        let kinds = [
            EnvKind::Public,
            EnvKind::Private,
            EnvKind::Conda,
            EnvKind::Inline,
            EnvKind::Folder,
        ];
        let workspaces = (0..1 + rng.below(3))
            .map(|_| {
                let registry = rng.chance(0.7);
                let environments: Vec<EnvKind> = (0..1 + rng.below(3))
                    .map(|_| kinds[rng.below(5) as usize])
                    .filter(|k| registry || *k != EnvKind::Private)
                    .collect();
                let environments = if environments.is_empty() {
                    vec![EnvKind::Public]
                } else {
                    environments
                };
                let clusters = (0..1 + rng.below(2))
                    .map(|_| {
                        let min = rng.below(2) as u32;
                        (min, min + 1 + rng.below(4) as u32)
                    })
                    .collect::<Vec<_>>();
                let jobs = (0..rng.below(4))
                    .map(|_| {
                        (
                            rng.below(1000),
                            rng.below(environments.len() as u64) as usize,
                            rng.below(clusters.len() as u64) as usize,
                        )
                    })
                    .collect();
                Workspace {
                    registry,
                    environments,
                    clusters,
                    jobs,
                }
            })
            .collect();
        Manifest {
            workspaces,
            tag: rng.below(1 << 30),
        }
    }

    fn describe(&self) -> String {
        self.workspaces
            .iter()
            .map(|w| {
                format!(
                    "{} env, {} cluster, {} job{}",
                    w.environments.len(),
                    w.clusters.len(),
                    w.jobs.len(),
                    if w.registry { ", registry" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn paths(&self, dir: &Path) -> Vec<String> {
        (0..self.workspaces.len())
            .map(|w| {
                dir.join(format!("ws{w}.yaml"))
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn write(&self, dir: &Path) {
        for (w, ws) in self.workspaces.iter().enumerate() {
            let src = dir.join(format!("src{w}"));
            std::fs::create_dir_all(src.join("pkg")).unwrap();
            std::fs::write(src.join("train.py"), format!("print('train {w}')\n")).unwrap();
            std::fs::write(src.join("pkg/util.py"), "X = 1\n").unwrap();
            let context = dir.join(format!("docker{w}"));
            std::fs::create_dir_all(&context).unwrap();
            std::fs::write(
                context.join("Dockerfile"),
                "FROM ubuntu:22.04\nCOPY setup.sh /\n",
            )
            .unwrap();
            std::fs::write(context.join("setup.sh"), "echo setup\n").unwrap();
            std::fs::write(
                dir.join(format!("conda{w}.yml")),
                "name: train\ndependencies:\n  - python=3.11\n",
            )
            .unwrap();
            std::fs::write(dir.join(format!("ws{w}.yaml")), self.text(w, ws)).unwrap();
        }
    }

    fn text(&self, w: usize, ws: &Workspace) -> String {
        let tag = self.tag;
        let mut text = format!(
            "workspace:\n  name: camp-{tag}-{w}\n  subscription_id: ${{AZURE_SUBSCRIPTION_ID}}\n  resource_group: camp-rg-{w}\n  location: westeurope\n  create_if_missing: true\n"
        );
        if ws.registry {
            text.push_str("registries:\n  - name: acr\n    address: myregistry.azurecr.io\n    username: user\n    password: ${ACR_PASSWORD}\n");
        }
        text.push_str("environments:\n");
        for (e, kind) in ws.environments.iter().enumerate() {
            text.push_str(&format!("  - name: env{e}\n"));
            text.push_str(match kind {
                EnvKind::Public => "    image: ubuntu:22.04\n    user_managed_dependencies: true\n",
                EnvKind::Private => "    image: team/img:1\n    registry: acr\n    user_managed_dependencies: true\n",
                EnvKind::Conda => "",
                EnvKind::Inline => "    dockerfile: \"FROM ubuntu:22.04\\nRUN echo hi\\n\"\n",
                EnvKind::Folder => "",
            });
            match kind {
                EnvKind::Conda => text.push_str(&format!(
                    "    image: ubuntu:22.04\n    conda_file: conda{w}.yml\n"
                )),
                EnvKind::Folder => {
                    text.push_str(&format!("    dockerfile_path: docker{w}/Dockerfile\n"))
                }
                _ => {}
            }
        }
        text.push_str("clusters:\n");
        for (c, (min, max)) in ws.clusters.iter().enumerate() {
            text.push_str(&format!(
                "  - name: cpu{c}x\n    vm_size: Standard_DS3_v2\n    min_nodes: {min}\n    max_nodes: {max}\n"
            ));
        }
        if !ws.jobs.is_empty() {
            text.push_str("jobs:\n");
        }
        for (j, (seed, env, cluster)) in ws.jobs.iter().enumerate() {
            text.push_str(&format!(
                "  - name: job{j}\n    source_directory: src{w}\n    command: python train.py --seed {seed}\n    environment: env{env}\n    cluster: cpu{cluster}x\n"
            ));
        }
        text
    }

    /// Change the manifest (or a file it names) at random; what was changed.
    fn edit(&self, rng: &mut Rng, dir: &Path) -> String {
        let w = rng.below(self.workspaces.len() as u64) as usize;
        let path = dir.join(format!("ws{w}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (text, what) = match rng.below(5) {
            0 if text.contains("--seed ") => (
                text.replacen("--seed ", "--seed 1", 1),
                "a job's command (a new run)".to_string(),
            ),
            1 => {
                std::fs::write(
                    dir.join(format!("src{w}/train.py")),
                    format!("print('train {w}, edited')\n"),
                )
                .unwrap();
                (text, "a source file (new code, new runs)".to_string())
            }
            2 => (
                text.replacen("max_nodes: ", "max_nodes: 1", 1),
                "a cluster's max_nodes (an update)".to_string(),
            ),
            3 => {
                std::fs::write(
                    dir.join(format!("conda{w}.yml")),
                    "name: train\ndependencies:\n  - python=3.12\n",
                )
                .unwrap();
                (
                    text,
                    "the conda file (new environment versions)".to_string(),
                )
            }
            _ => {
                let mut text = text;
                if !text.contains("jobs:\n") {
                    text.push_str("jobs:\n");
                }
                text.push_str(&format!(
                    "  - name: added\n    source_directory: src{w}\n    command: python train.py --added\n    environment: env0\n    cluster: cpu0x\n"
                ));
                (text, "a new job".to_string())
            }
        };
        std::fs::write(&path, text).unwrap();
        format!("{what} in ws{w}")
    }
}

// --------------------------------------------------------------------------- end state

/// Everything the manifests named in any phase: the jobs (submitted names), code
/// versions and environment versions the emulator must hold, each exactly once.
#[derive(Default)]
struct Named {
    /// Workspace id -> names.
    jobs: BTreeMap<String, BTreeSet<String>>,
    codes: BTreeMap<String, BTreeSet<String>>,
    environments: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl Named {
    fn add(&mut self, paths: &[String]) {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        for ws in load(&paths).workspaces {
            let id = ws.id.to_string();
            self.jobs
                .entry(id.clone())
                .or_default()
                .extend(ws.jobs.iter().map(|j| j.name.clone()));
            self.codes
                .entry(id.clone())
                .or_default()
                .extend(ws.codes.iter().map(|c| c.name.clone()));
            self.environments.entry(id).or_default().extend(
                ws.environments
                    .iter()
                    .map(|e| (e.name.clone(), e.version.clone())),
            );
        }
    }

    async fn assert_exactly_these<F, Fut>(&self, get_json: F, what: &str)
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Value>,
    {
        let list = |path: String| {
            let read = get_json(path);
            async move { read.await["value"].as_array().cloned().unwrap_or_default() }
        };
        let names = |items: &[Value]| -> BTreeSet<String> {
            items
                .iter()
                .map(|i| i["name"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        for (id, jobs) in &self.jobs {
            let live = list(format!("{id}/jobs")).await;
            assert_eq!(live.len(), names(&live).len());
            assert_eq!(&names(&live), jobs, "{what}: jobs in {id}");
        }
        for (id, codes) in &self.codes {
            let live = list(format!("{id}/codes")).await;
            assert_eq!(&names(&live), codes, "{what}: code assets in {id}");
            for code in codes {
                let versions = list(format!("{id}/codes/{code}/versions")).await;
                assert_eq!(
                    versions.len(),
                    1,
                    "{what}: code {code} has {} versions",
                    versions.len()
                );
            }
        }
        for (id, environments) in &self.environments {
            let mut by_name: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
            for (name, version) in environments {
                by_name.entry(name).or_default().insert(version.clone());
            }
            for (name, versions) in by_name {
                let live = list(format!("{id}/environments/{name}/versions")).await;
                assert_eq!(
                    names(&live),
                    versions,
                    "{what}: versions of environment {name} in {id}"
                );
            }
        }
    }
}
