//! Fuzz body: apply's dependency queue over arbitrary steps and completions. Properties:
//! a queue is refused or every step ends exactly once (done, failed or skipped); nothing
//! starts before its dependencies are done; a failure skips its dependents only.

use std::collections::{BTreeMap, BTreeSet};

use amlspec::apply::queue::{DependencyQueue, Outcome};

use super::input::Input;

pub fn run(bytes: &[u8]) {
    let mut input = Input::new(bytes);
    let count = input.below(24);
    let mut steps: Vec<(u8, u32, Vec<u8>)> = Vec::new();
    for value in 0..count {
        let key = input.byte() % 32;
        let deps = (0..input.below(4)).map(|_| input.byte() % 32).collect();
        steps.push((key, value as u32, deps));
    }
    let deps_of: BTreeMap<u8, BTreeSet<u8>> = steps
        .iter()
        .map(|(k, _, d)| (*k, d.iter().copied().collect()))
        .collect();
    let Ok(mut queue) = DependencyQueue::new(steps.clone()) else {
        return;
    };
    let mut done: BTreeSet<u8> = BTreeSet::new();
    let mut ended: BTreeSet<u8> = BTreeSet::new();
    let mut failed: BTreeSet<u8> = BTreeSet::new();
    let mut running: Vec<u8> = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 10_000, "the queue does not drain");
        while let Some((key, _)) = queue.dequeue() {
            assert!(
                deps_of[&key].iter().all(|d| done.contains(d)),
                "{key} started before its dependencies were done"
            );
            assert!(!ended.contains(&key), "{key} started twice");
            running.push(key);
        }
        if running.is_empty() {
            break;
        }
        let index = input.below(running.len());
        let key = running.swap_remove(index);
        let outcome = if input.byte().is_multiple_of(4) {
            Outcome::Failed
        } else {
            Outcome::Done
        };
        ended.insert(key);
        match outcome {
            Outcome::Done => {
                done.insert(key);
            }
            Outcome::Failed => {
                failed.insert(key);
            }
        }
        for (skipped, _) in queue.finish(&key, outcome) {
            assert!(
                !ended.contains(&skipped),
                "{skipped} skipped after it ended"
            );
            // Skipped only when something it needs (directly or not) failed.
            assert!(
                depends_on_any(&deps_of, skipped, &failed),
                "{skipped} skipped though nothing it needs failed"
            );
            ended.insert(skipped);
        }
    }
    assert!(queue.is_empty(), "steps left waiting: {}", queue.waiting());
    let keys: BTreeSet<u8> = deps_of.keys().copied().collect();
    assert_eq!(ended, keys, "every step ends exactly once");
}

fn depends_on_any(deps_of: &BTreeMap<u8, BTreeSet<u8>>, key: u8, failed: &BTreeSet<u8>) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<u8> = deps_of[&key].iter().copied().collect();
    while let Some(next) = stack.pop() {
        if failed.contains(&next) {
            return true;
        }
        if seen.insert(next) {
            stack.extend(deps_of[&next].iter().copied());
        }
    }
    false
}
