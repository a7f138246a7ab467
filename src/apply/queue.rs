//! The order of apply's work: a dependency queue over the plan's steps (cargo's
//! `DependencyQueue`: queue, dequeue, finish). Pure and synchronous; the executor asks
//! it what may start, tells it what ended, and it answers which dependents can no longer
//! run. Unknown dependencies and cycles are refused when the queue is built, so an
//! executor can never wait for something that will not come.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// Why a set of steps cannot be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError<K: Debug> {
    #[error("{key:?} is listed twice")]
    Duplicate { key: K },
    #[error("{key:?} depends on {missing:?}, which is not in the plan")]
    UnknownDependency { key: K, missing: K },
    #[error("{cycle:?} depend on each other")]
    Cycle { cycle: Vec<K> },
}

/// How a dequeued step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
}

/// Steps keyed by `K`, each with its value `V`, waiting for their dependencies.
/// Ready steps come out in key order, so a run is deterministic for a given order of
/// completions.
#[derive(Debug)]
pub struct DependencyQueue<K: Ord + Clone + Debug, V> {
    /// Steps not started yet, with the dependencies they still wait for.
    waiting: BTreeMap<K, (V, BTreeSet<K>)>,
    /// Who waits for each step.
    dependents: BTreeMap<K, BTreeSet<K>>,
    /// Dequeued and not finished.
    running: BTreeSet<K>,
}

impl<K: Ord + Clone + Debug, V> DependencyQueue<K, V> {
    /// A queue of `(key, value, dependencies)`; refused when a key repeats, a
    /// dependency is not among the keys, or dependencies form a cycle.
    pub fn new(steps: impl IntoIterator<Item = (K, V, Vec<K>)>) -> Result<Self, QueueError<K>> {
        let mut waiting: BTreeMap<K, (V, BTreeSet<K>)> = BTreeMap::new();
        for (key, value, depends_on) in steps {
            if waiting.contains_key(&key) {
                return Err(QueueError::Duplicate { key });
            }
            waiting.insert(key, (value, depends_on.into_iter().collect()));
        }
        let mut dependents: BTreeMap<K, BTreeSet<K>> = BTreeMap::new();
        for (key, (_, depends_on)) in &waiting {
            for dependency in depends_on {
                if !waiting.contains_key(dependency) {
                    return Err(QueueError::UnknownDependency {
                        key: key.clone(),
                        missing: dependency.clone(),
                    });
                }
                dependents
                    .entry(dependency.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let queue = DependencyQueue {
            waiting,
            dependents,
            running: BTreeSet::new(),
        };
        queue.check_acyclic()?;
        Ok(queue)
    }

    /// Kahn's algorithm over a copy of the in-degrees: whatever never becomes ready
    /// lies on or behind a cycle; the cycle itself is found by walking dependencies.
    fn check_acyclic(&self) -> Result<(), QueueError<K>> {
        let mut remaining: BTreeMap<&K, usize> = self
            .waiting
            .iter()
            .map(|(key, (_, depends_on))| (key, depends_on.len()))
            .collect();
        let mut ready: Vec<&K> = remaining
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        while let Some(key) = ready.pop() {
            remaining.remove(key);
            for dependent in self.dependents.get(key).into_iter().flatten() {
                if let Some(n) = remaining.get_mut(dependent) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(dependent);
                    }
                }
            }
        }
        let Some(start) = remaining.keys().next() else {
            return Ok(());
        };
        // Every step left waits for another step left: walk until a step repeats.
        let mut path: Vec<K> = Vec::new();
        let mut at: &K = start;
        loop {
            if let Some(position) = path.iter().position(|k| k == at) {
                return Err(QueueError::Cycle {
                    cycle: path.split_off(position),
                });
            }
            path.push(at.clone());
            let (_, depends_on) = &self.waiting[at];
            at = depends_on
                .iter()
                .find(|d| remaining.contains_key(d))
                .expect("a step left after Kahn's algorithm waits for another step left");
        }
    }

    /// A step whose dependencies have all finished, if any; it counts as running until
    /// [`finish`](Self::finish) is called for it.
    pub fn dequeue(&mut self) -> Option<(K, V)> {
        let key = self
            .waiting
            .iter()
            .find(|(_, (_, depends_on))| depends_on.is_empty())
            .map(|(key, _)| key.clone())?;
        let (value, _) = self.waiting.remove(&key).expect("found just now");
        self.running.insert(key.clone());
        Some((key, value))
    }

    /// Record how a running step ended. After a failure, every step that depends on it
    /// (directly or not) will never run: they are taken out of the queue and returned,
    /// in key order, so the caller can report them skipped.
    pub fn finish(&mut self, key: &K, outcome: Outcome) -> Vec<(K, V)> {
        assert!(
            self.running.remove(key),
            "{key:?} finished without having been dequeued"
        );
        let dependents = self.dependents.remove(key).unwrap_or_default();
        match outcome {
            Outcome::Done => {
                for dependent in dependents {
                    if let Some((_, depends_on)) = self.waiting.get_mut(&dependent) {
                        depends_on.remove(key);
                    }
                }
                Vec::new()
            }
            Outcome::Failed => {
                let mut skipped = BTreeMap::new();
                let mut stack: Vec<K> = dependents.into_iter().collect();
                while let Some(dependent) = stack.pop() {
                    if let Some((value, _)) = self.waiting.remove(&dependent) {
                        stack.extend(self.dependents.remove(&dependent).unwrap_or_default());
                        skipped.insert(dependent, value);
                    }
                }
                skipped.into_iter().collect()
            }
        }
    }

    /// Steps started and not finished.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Steps not started yet (ready or waiting).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Nothing waits and nothing runs.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Take every step not started yet out of the queue (when apply stops early), in
    /// key order.
    pub fn drain_waiting(&mut self) -> Vec<(K, V)> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|(key, (value, _))| (key, value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(steps: &[(&'static str, &[&'static str])]) -> DependencyQueue<&'static str, ()> {
        DependencyQueue::new(steps.iter().map(|(k, deps)| (*k, (), deps.to_vec())))
            .expect("a valid queue")
    }

    fn ready(queue: &mut DependencyQueue<&'static str, ()>) -> Vec<&'static str> {
        std::iter::from_fn(|| queue.dequeue().map(|(k, ())| k)).collect()
    }

    /// The workspace's graph: rg -> storage/kv/insights -> ws -> children; job after
    /// its code, environment and cluster.
    const WORKSPACE: &[(&str, &[&str])] = &[
        ("rg", &[]),
        ("storage", &["rg"]),
        ("kv", &["rg"]),
        ("insights", &["rg"]),
        ("ws", &["storage", "kv", "insights"]),
        ("registry", &["ws"]),
        ("env", &["registry"]),
        ("cluster", &["ws"]),
        ("code", &["ws"]),
        ("job", &["code", "env", "cluster"]),
    ];

    #[test]
    fn steps_start_only_when_every_dependency_is_done() {
        let mut q = queue(WORKSPACE);
        assert_eq!(ready(&mut q), ["rg"]);
        assert!(q.finish(&"rg", Outcome::Done).is_empty());
        assert_eq!(ready(&mut q), ["insights", "kv", "storage"]);
        q.finish(&"kv", Outcome::Done);
        q.finish(&"storage", Outcome::Done);
        // Two of three done: the workspace still waits.
        assert_eq!(ready(&mut q), Vec::<&str>::new());
        q.finish(&"insights", Outcome::Done);
        assert_eq!(ready(&mut q), ["ws"]);
        q.finish(&"ws", Outcome::Done);
        assert_eq!(ready(&mut q), ["cluster", "code", "registry"]);
        q.finish(&"registry", Outcome::Done);
        q.finish(&"code", Outcome::Done);
        assert_eq!(ready(&mut q), ["env"]);
        q.finish(&"env", Outcome::Done);
        assert_eq!(ready(&mut q), Vec::<&str>::new(), "the cluster still runs");
        assert_eq!((q.running(), q.waiting()), (1, 1), "the job waits for it");
        q.finish(&"cluster", Outcome::Done);
        assert_eq!((q.running(), q.waiting()), (0, 1));
        assert_eq!(ready(&mut q), ["job"]);
        q.finish(&"job", Outcome::Done);
        assert!(q.is_empty());
    }

    #[test]
    fn a_failure_skips_its_dependents_only() {
        let mut q = queue(WORKSPACE);
        ready(&mut q);
        q.finish(&"rg", Outcome::Done);
        ready(&mut q);
        for step in ["storage", "kv", "insights"] {
            q.finish(&step, Outcome::Done);
        }
        ready(&mut q);
        q.finish(&"ws", Outcome::Done);
        assert_eq!(ready(&mut q), ["cluster", "code", "registry"]);
        // The registry fails: the environment and, through it, the job are skipped;
        // the cluster and the code, which do not need it, go on.
        let skipped: Vec<&str> = q
            .finish(&"registry", Outcome::Failed)
            .into_iter()
            .map(|(k, ())| k)
            .collect();
        assert_eq!(skipped, ["env", "job"]);
        q.finish(&"cluster", Outcome::Done);
        q.finish(&"code", Outcome::Done);
        assert_eq!(ready(&mut q), Vec::<&str>::new());
        assert!(q.is_empty());
    }

    #[test]
    fn a_failure_at_the_root_skips_everything_below_once() {
        let mut q = queue(WORKSPACE);
        ready(&mut q);
        let skipped = q.finish(&"rg", Outcome::Failed);
        assert_eq!(skipped.len(), WORKSPACE.len() - 1);
        assert!(q.is_empty());
    }

    #[test]
    fn a_failed_step_with_no_dependents_skips_nothing() {
        let mut q = queue(&[("a", &[]), ("b", &[])]);
        assert_eq!(ready(&mut q), ["a", "b"]);
        assert!(q.finish(&"a", Outcome::Failed).is_empty());
        q.finish(&"b", Outcome::Done);
        assert!(q.is_empty());
    }

    #[test]
    fn unknown_dependencies_duplicates_and_cycles_are_refused() {
        let build = |steps: &[(&'static str, &[&'static str])]| {
            DependencyQueue::new(steps.iter().map(|(k, deps)| (*k, (), deps.to_vec()))).map(|_| ())
        };
        assert_eq!(
            build(&[("job", &["code"])]),
            Err(QueueError::UnknownDependency {
                key: "job",
                missing: "code"
            })
        );
        assert_eq!(
            build(&[("a", &[]), ("a", &[])]),
            Err(QueueError::Duplicate { key: "a" })
        );
        assert_eq!(
            build(&[("a", &["a"])]),
            Err(QueueError::Cycle { cycle: vec!["a"] })
        );
        // A cycle behind a valid root, with a bystander that depends on the cycle.
        let Err(QueueError::Cycle { cycle }) = build(&[
            ("root", &[]),
            ("x", &["root", "z"]),
            ("y", &["x"]),
            ("z", &["y"]),
            ("after", &["x"]),
        ]) else {
            panic!("a cycle must be refused");
        };
        let mut sorted = cycle.clone();
        sorted.sort();
        assert_eq!(sorted, ["x", "y", "z"], "{cycle:?}");
        assert_eq!(build(&[]), Ok(()));
    }

    #[test]
    fn draining_takes_what_did_not_start() {
        let mut q = queue(&[("a", &[]), ("b", &["a"]), ("c", &[])]);
        assert_eq!((q.running(), q.waiting()), (0, 3));
        assert_eq!(q.dequeue().map(|(k, ())| k), Some("a"));
        let drained: Vec<&str> = q.drain_waiting().into_iter().map(|(k, ())| k).collect();
        assert_eq!(drained, ["b", "c"]);
        assert_eq!(q.waiting(), 0);
        assert!(!q.is_empty(), "a still runs");
        q.finish(&"a", Outcome::Done);
        assert!(q.is_empty());
    }

    #[test]
    #[should_panic(expected = "finished without having been dequeued")]
    fn finishing_a_step_that_did_not_start_is_a_bug() {
        let mut q = queue(&[("a", &[])]);
        q.finish(&"a", Outcome::Done);
    }
}
