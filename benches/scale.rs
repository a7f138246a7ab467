//! Benchmark: how plan and apply grow with the manifest. Generated manifests of 10, 100,
//! 1,000 and 10,000 resources (workspaces of at most 100 resources each: the workspace,
//! a registry connection, then environments, clusters and jobs in equal thirds) are
//! applied from an empty emulator, then planned; for each: wall time, requests (ARM, and
//! blob for apply), peak RSS and CPU of the `amlspec` process, and the CPU the emulator
//! (this process) spent serving it. The figures go to
//! standard output as a table, and a chart of wall time and peak RSS against the number
//! of resources (log-log) is written as SVG.
//!
//! Run: `cargo bench --bench scale`. `AMLSPEC_BENCH_LATENCY_MS` is the injected ARM
//! latency (default 20: at scale, the cost of amlspec's own work is what is measured),
//! `AMLSPEC_BENCH_SIZES` the sizes (default `10,100,1000,10000`),
//! `AMLSPEC_BENCH_SVG` the chart's path (default `target/scale.svg`). The bound the
//! project keeps: a plan of 10,000 resources under 128 MB peak RSS.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use amlspec::emulator::{Emulator, EmulatorConfig, FaultTarget, SimTimings, TlsConfig};

mod common;
use common::generate_manifest;

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One measured run of the binary.
struct Measured {
    wall: Duration,
    arm_requests: u64,
    blob_requests: u64,
    rss_kb: i64,
    cpu_ms: i64,
    /// What the emulator (this process) spent serving it.
    emulator_cpu_ms: i64,
}

struct Row {
    resources: usize,
    apply: Measured,
    plan: Measured,
}

fn main() {
    if common::measure_child_if_asked() {
        return;
    }
    let latency_ms = common::env_number("AMLSPEC_BENCH_LATENCY_MS", 20);
    let sizes: Vec<usize> = std::env::var("AMLSPEC_BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let svg_path = std::env::var("AMLSPEC_BENCH_SVG").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/scale.svg")
            .to_string_lossy()
            .into_owned()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("ARM latency {latency_ms} ms; apply from empty, then plan (everything present)\n");
    println!(
        "{:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "resources",
        "apply wall",
        "ARM req",
        "blob req",
        "peak RSS",
        "CPU",
        "emu CPU",
        "plan wall",
        "ARM req",
        "peak RSS",
        "CPU",
        "emu CPU"
    );
    let mut rows = Vec::new();
    for &size in &sizes {
        let (workspaces, per_workspace) = layout(size);
        let dir = tempfile::tempdir().expect("a temporary folder");
        generate_manifest(dir.path(), workspaces, per_workspace);
        let ca = tempfile::NamedTempFile::new().unwrap();
        let config = EmulatorConfig {
            tls: TlsConfig::SelfSigned {
                write_ca_to: Some(ca.path().to_path_buf()),
            },
            timings: SimTimings {
                lro: Duration::ZERO,
                job_phase: Duration::from_secs(3600),
                job_running: Duration::from_secs(3600),
                retry_after_secs: 0,
            },
            ..EmulatorConfig::default()
        };
        let emulator = runtime
            .block_on(Emulator::start(config))
            .expect("the emulator starts");
        emulator
            .admin()
            .set_faults(common::latency(latency_ms, &[FaultTarget::Arm]), None);
        let paths = [dir.path().to_str().unwrap()];
        let apply = run(&emulator, ca.path(), &["apply", "--auto-approve"], &paths);
        let plan = run(
            &emulator,
            ca.path(),
            &["plan", "--detailed-exitcode"],
            &paths,
        );
        let resources = workspaces * per_workspace;
        println!(
            "{:>9} {:>7} ms {:>9} {:>9} {:>6} MB {:>6} ms {:>6} ms {:>7} ms {:>9} {:>6} MB {:>6} ms {:>6} ms",
            resources,
            apply.wall.as_millis(),
            apply.arm_requests,
            apply.blob_requests,
            apply.rss_kb / 1024,
            apply.cpu_ms,
            apply.emulator_cpu_ms,
            plan.wall.as_millis(),
            plan.arm_requests,
            plan.rss_kb / 1024,
            plan.cpu_ms,
            plan.emulator_cpu_ms,
        );
        rows.push(Row {
            resources,
            apply,
            plan,
        });
        runtime.block_on(emulator.shutdown());
    }
    if let Some(largest) = rows.iter().find(|r| r.resources >= 10_000) {
        let mb = largest.plan.rss_kb / 1024;
        println!(
            "\nplan of {} resources: peak RSS {mb} MB (bound: 128 MB) {}",
            largest.resources,
            if mb < 128 { "within" } else { "OVER" }
        );
    }
    std::fs::write(&svg_path, chart(&rows, latency_ms)).expect("the chart is written");
    println!("chart: {svg_path}");
}

/// Workspaces of at most 100 resources: (workspaces, resources per workspace).
fn layout(size: usize) -> (usize, usize) {
    let workspaces = size.div_ceil(100).max(1);
    (workspaces, (size / workspaces).max(5))
}

/// Run `amlspec <command> <paths>` once; what it cost, and the requests the emulator
/// answered meanwhile.
fn run(emulator: &Emulator, ca: &Path, command: &[&str], paths: &[&str]) -> Measured {
    emulator.admin().reset_traffic();
    let mut args = command.to_vec();
    args.extend(paths);
    let mut child = common::measured_command(emulator, ca, &args);
    child.stderr(Stdio::piped());
    let own_before = common::own_cpu_ms();
    let start = Instant::now();
    let output = child.output().expect("amlspec runs");
    let wall = start.elapsed();
    let emulator_cpu_ms = common::own_cpu_ms() - own_before;
    let (status, rss_kb, cpu_ms) = common::child_report(&output.stdout);
    assert!(
        status == 0,
        "{command:?} failed ({status}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let traffic = emulator.admin().traffic();
    Measured {
        wall,
        arm_requests: traffic.arm.values().sum(),
        blob_requests: traffic.blob.values().sum(),
        rss_kb,
        cpu_ms,
        emulator_cpu_ms,
    }
}

/// A log-log chart of wall time (seconds) and peak RSS (MB) against resources, for plan
/// and apply, as SVG.
fn chart(rows: &[Row], latency_ms: u64) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 70.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    let xs: Vec<f64> = rows.iter().map(|r| r.resources as f64).collect();
    let series: [(&str, &str, Vec<f64>, bool); 4] = [
        (
            "apply wall (s)",
            "#1f77b4",
            rows.iter().map(|r| r.apply.wall.as_secs_f64()).collect(),
            false,
        ),
        (
            "plan wall (s)",
            "#2ca02c",
            rows.iter().map(|r| r.plan.wall.as_secs_f64()).collect(),
            false,
        ),
        (
            "apply peak RSS (MB)",
            "#ff7f0e",
            rows.iter()
                .map(|r| r.apply.rss_kb as f64 / 1024.0)
                .collect(),
            true,
        ),
        (
            "plan peak RSS (MB)",
            "#d62728",
            rows.iter().map(|r| r.plan.rss_kb as f64 / 1024.0).collect(),
            true,
        ),
    ];
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let values: Vec<f64> = values.filter(|v| *v > 0.0).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi.is_finite() {
            (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        } else {
            (0.0, 1.0)
        }
    };
    let (x0, x1) = range(&mut xs.iter().copied());
    let (t0, t1) = range(&mut series[..2].iter().flat_map(|s| s.2.clone()));
    let (m0, m1) = range(&mut series[2..].iter().flat_map(|s| s.2.clone()));
    let x = |v: f64| LEFT + (v.log10() - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let y =
        |v: f64, lo: f64, hi: f64| H - BOTTOM - (v.log10() - lo) / (hi - lo) * (H - TOP - BOTTOM);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">amlspec: cost against manifest size (ARM latency {latency_ms} ms, log-log)</text>\n",
        W / 2.0
    );
    // Axes and decade ticks.
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM
    ));
    let mut decade = x0;
    while decade <= x1 {
        let v = 10f64.powf(decade);
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(v),
            H - BOTTOM + 18.0,
            v
        ));
        decade += 1.0;
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">resources</text>\n",
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    ));
    for (lo, hi, at, label, anchor) in [
        (t0, t1, LEFT - 8.0, "wall time (s)", "end"),
        (m0, m1, W - RIGHT + 8.0, "peak RSS (MB)", "start"),
    ] {
        let mut decade = lo;
        while decade <= hi {
            let v = 10f64.powf(decade);
            svg.push_str(&format!(
                "<text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{v}</text>\n",
                y(v, lo, hi) + 4.0
            ));
            decade += 1.0;
        }
        svg.push_str(&format!(
            "<text x=\"{at:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{label}</text>\n",
            TOP - 8.0
        ));
    }
    for (i, (name, colour, values, memory)) in series.iter().enumerate() {
        let (lo, hi) = if *memory { (m0, m1) } else { (t0, t1) };
        let points: Vec<String> = xs
            .iter()
            .zip(values)
            .filter(|(_, v)| **v > 0.0)
            .map(|(xv, v)| format!("{:.1},{:.1}", x(*xv), y(*v, lo, hi)))
            .collect();
        let dash = if *memory {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>\n",
            points.join(" ")
        ));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{name}</text>\n",
            LEFT + 10.0,
            TOP + 16.0 * (i as f64 + 1.0)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
