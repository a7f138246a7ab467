//! Benchmark: `amlspec validate specs/pets.yaml` as a whole process, against the cost
//! of starting the same binary for `--version`, measured side by side in one run.
//!
//! Run: `cargo bench --bench validate` (target: median <= 10 ms wall on 2 cores).
//! Set `AMLSPEC_BENCH_RUNS` to change the number of runs (default 300).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn time_runs(args: &[&str], runs: usize) -> Vec<Duration> {
    let binary = env!("CARGO_BIN_EXE_amlspec");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new(binary)
            .args(args)
            .current_dir(root)
            .env(
                "AZURE_SUBSCRIPTION_ID",
                "00000000-0000-0000-0000-000000000001",
            )
            .env("ACR_PASSWORD", "bench-password")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("amlspec runs");
        times.push(start.elapsed());
        assert!(status.success(), "{args:?} failed");
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful.
    let runs: usize = std::env::var("AMLSPEC_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let cases: [(&str, &[&str]); 3] = [
        ("amlspec --version (process start)", &["--version"]),
        (
            "amlspec validate specs/pets.yaml",
            &["validate", "specs/pets.yaml"],
        ),
        ("amlspec validate specs/ (3 files)", &["validate", "specs"]),
    ];
    // Interleave the cases so machine noise hits them alike.
    let mut results: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..10 {
        for (i, (_, args)) in cases.iter().enumerate() {
            results[i].extend(time_runs(args, runs / 10));
        }
    }
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "command", "min ms", "median", "p90", "x start"
    );
    let baseline = {
        let mut b = results[0].clone();
        b.sort();
        b[b.len() / 2]
    };
    for ((name, _), times) in cases.iter().zip(results.iter_mut()) {
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{:<40} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            ms(times[0]),
            ms(median),
            ms(times[times.len() * 9 / 10]),
            median.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
