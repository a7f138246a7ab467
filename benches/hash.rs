//! Benchmark: the content hash of a large source folder (what plan computes for a job's
//! code snapshot), warm cache, next to one core's sha256 rate as `openssl speed`
//! measures it on the same machine in the same run, and next to `sha2` and ring hashing
//! bytes already in memory (16 MiB blocks, which come from memory) and in the core's
//! cache (16 KiB blocks: the ceiling for any hash that reads files).
//!
//! Run: `cargo bench --bench hash`. `AMLSPEC_BENCH_HASH_MB` (default 1024) and
//! `AMLSPEC_BENCH_HASH_FILES` (default 20000) size the generated tree;
//! `AMLSPEC_BENCH_RUNS` (default 3) the runs (the median is reported).

use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

mod common;

fn main() {
    let (files, size) = common::tree_size();
    let runs = common::env_number("AMLSPEC_BENCH_RUNS", 3).max(1) as usize;
    let dir = tempfile::tempdir().expect("a temporary folder");
    common::generate_tree(dir.path(), files, size);

    // Warm the cache, and check the tree is what was asked for.
    let snapshot = amlspec::snapshot::snapshot(dir.path()).expect("the tree hashes");
    assert_eq!(snapshot.files.len() as u64, files);
    let bytes = snapshot.total_bytes;
    // Measured in turns, so that a noisy neighbour weighs on each alike.
    let (mut walls, mut sha2s, mut rings, mut cached, mut openssls) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let start = Instant::now();
        let again = amlspec::snapshot::snapshot(dir.path()).expect("the tree hashes");
        walls.push(start.elapsed());
        assert_eq!(again.hash, snapshot.hash);
        sha2s.push(sha2_in_memory_rate());
        rings.push(ring_in_memory_rate(16 * 1024 * 1024));
        cached.push(ring_in_memory_rate(16 * 1024));
        openssls.extend(openssl_rate());
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    walls.sort();
    let wall = walls[walls.len() / 2];
    let ours = bytes as f64 / wall.as_secs_f64();
    let in_memory = median(&mut sha2s).unwrap_or(f64::NAN);
    let ring_in_memory = median(&mut rings).unwrap_or(f64::NAN);
    let ring_cached = median(&mut cached).unwrap_or(f64::NAN);
    let openssl = median(&mut openssls);

    let mb = |rate: f64| rate / 1e6;
    println!(
        "content hash of {} files, {:.0} MB, warm cache, median of {runs}\n",
        files,
        bytes as f64 / 1e6
    );
    println!("{:<44} {:>10}", "what", "MB/s");
    println!(
        "{:<44} {:>10.0}   ({} ms)",
        "amlspec content hash (walk, read, hash)",
        mb(ours),
        wall.as_millis()
    );
    println!(
        "{:<44} {:>10.0}   (ours / this: {:.2}x)",
        "sha2 crate, bytes in memory",
        mb(in_memory),
        ours / in_memory
    );
    println!(
        "{:<44} {:>10.0}   (ours / this: {:.2}x)",
        "ring (what amlspec uses), bytes in memory",
        mb(ring_in_memory),
        ours / ring_in_memory
    );
    println!(
        "{:<44} {:>10.0}   (ours / this: {:.2}x)",
        "ring, 16 KiB blocks in the core's cache",
        mb(ring_cached),
        ours / ring_cached
    );
    match openssl {
        Some(rate) => println!(
            "{:<44} {:>10.0}   (ours / this: {:.2}x)",
            "openssl speed sha256, 16 KiB blocks, 1 core",
            mb(rate),
            ours / rate
        ),
        None => println!("openssl speed: not available on this machine"),
    }
}

/// Bytes per second of the `sha2` crate over 256 MiB already in memory.
fn sha2_in_memory_rate() -> f64 {
    let block = vec![0x5au8; 16 * 1024 * 1024];
    let start = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..16 {
        hasher.update(&block);
    }
    std::hint::black_box(hasher.finalize());
    (16 * block.len()) as f64 / start.elapsed().as_secs_f64()
}

/// Bytes per second of ring's SHA-256 over 256 MiB already in memory, hashed in blocks
/// of `block` bytes: 16 MiB blocks come from memory, 16 KiB blocks from the core's cache
/// (what `openssl speed` measures).
fn ring_in_memory_rate(block: usize) -> f64 {
    let bytes = vec![0x5au8; block];
    let total = 256 * 1024 * 1024;
    let start = Instant::now();
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for _ in 0..total / block {
        context.update(&bytes);
    }
    std::hint::black_box(context.finish());
    total as f64 / start.elapsed().as_secs_f64()
}

/// Bytes per second of `openssl speed -bytes 16384 sha256` (one process, one core).
fn openssl_rate() -> Option<f64> {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "1", "-bytes", "16384", "sha256"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // `sha256  1999781.89k` : thousands of bytes per second.
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let value = line.split_whitespace().last()?;
    let thousands: f64 = value.trim_end_matches('k').parse().ok()?;
    Some(thousands * 1000.0)
}
