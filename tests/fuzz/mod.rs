//! The fuzz targets' findings and corpora, replayed: every input under
//! `tests/fuzz/corpus/<target>/` and `tests/fuzz/regressions/<target>/` goes through the
//! same body the fuzzer runs (`bodies/`), so a crash once found stays fixed and the corpus
//! keeps passing on every change. This folder is also the cargo-fuzz project that finds
//! new ones (its own Cargo.toml; see README.md here).

use std::path::{Path, PathBuf};

#[path = "bodies/emulator.rs"]
mod emulator;
#[path = "bodies/input.rs"]
mod input;
#[path = "bodies/queue.rs"]
mod queue;
#[path = "bodies/saved_plan.rs"]
mod saved_plan;
#[path = "bodies/spec.rs"]
mod spec;

/// The files of `corpus/<target>` and `regressions/<target>` here, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let mut files = Vec::new();
    for folder in ["corpus", "regressions"] {
        let Ok(listing) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        files.extend(
            listing
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_file()),
        );
    }
    files.sort();
    files
}

/// Run `body` on every input of `target`, naming the input that fails.
fn replay(target: &str, at_least: usize, body: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        inputs.len() >= at_least,
        "tests/fuzz/corpus/{target} holds {} inputs; expected at least {at_least}",
        inputs.len()
    );
    for path in inputs {
        // A fuzzer running meanwhile may drop inputs it has reduced.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let outcome = std::panic::catch_unwind(|| body(&bytes));
        assert!(
            outcome.is_ok(),
            "{} fails (see the panic above)",
            path.display()
        );
    }
}

#[test]
fn spec_inputs_load_and_render_without_panicking() {
    replay("spec", 20, spec::run);
}

#[test]
fn saved_plan_inputs_read_and_render_without_panicking() {
    replay("saved_plan", 5, saved_plan::run);
}

#[test]
fn queue_inputs_keep_the_queue_s_promises() {
    replay("queue", 5, queue::run);
}

#[test]
fn emulator_inputs_are_all_answered() {
    replay("emulator", 5, emulator::run);
}
