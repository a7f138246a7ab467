//! Runs a [`DependencyQueue`] to the end: every step whose dependencies are done starts,
//! at most `max_parallel` at once; a failure skips what depends on it and nothing else;
//! a stop request starts nothing more and lets what runs finish. Generic over the step
//! runner, so the order of work is tested without HTTP.

use std::fmt::Debug;
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use super::queue::{DependencyQueue, Outcome};

/// What happened to a step, as it happens (for progress output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<K, E> {
    Started(K),
    Done(K),
    Failed(K, E),
    /// Never started: `because` failed (directly or through another skipped step).
    Skipped {
        key: K,
        because: K,
    },
}

/// How a run ended, step by step, in the order things ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran<K, E> {
    pub done: Vec<K>,
    pub failed: Vec<(K, E)>,
    /// Steps that never started because a step they need failed: (step, failed step).
    pub skipped: Vec<(K, K)>,
    /// Steps that never started because the run was stopped.
    pub not_started: Vec<K>,
    pub stopped: bool,
}

impl<K, E> Ran<K, E> {
    /// Every step done.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty()
    }
}

/// Run every step of `queue` with `run`, at most `max_parallel` at once, until all
/// ended or `stop` resolves (then nothing more starts, and what runs is awaited).
pub async fn drive<K, V, E, F, Fut>(
    mut queue: DependencyQueue<K, V>,
    max_parallel: usize,
    stop: impl Future<Output = ()>,
    mut run: F,
    mut on_event: impl FnMut(&Event<K, E>),
) -> Ran<K, E>
where
    K: Ord + Clone + Debug,
    E: Clone,
    F: FnMut(K, V) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    assert!(max_parallel > 0, "at least one step must be able to run");
    let mut ran = Ran {
        done: Vec::new(),
        failed: Vec::new(),
        skipped: Vec::new(),
        not_started: Vec::new(),
        stopped: false,
    };
    let mut running = FuturesUnordered::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        if !ran.stopped {
            while running.len() < max_parallel {
                let Some((key, value)) = queue.dequeue() else {
                    break;
                };
                on_event(&Event::Started(key.clone()));
                let step = run(key.clone(), value);
                running.push(async move { (key, step.await) });
            }
        }
        if running.is_empty() {
            break;
        }
        let (key, result) = tokio::select! {
            ended = running.next() => ended.expect("a step is running"),
            () = &mut stop, if !ran.stopped => {
                ran.stopped = true;
                ran.not_started
                    .extend(queue.drain_waiting().into_iter().map(|(key, _)| key));
                continue;
            }
        };
        match result {
            Ok(()) => {
                queue.finish(&key, Outcome::Done);
                on_event(&Event::Done(key.clone()));
                ran.done.push(key);
            }
            Err(error) => {
                let skipped = queue.finish(&key, Outcome::Failed);
                on_event(&Event::Failed(key.clone(), error.clone()));
                for (dependent, _) in skipped {
                    on_event(&Event::Skipped {
                        key: dependent.clone(),
                        because: key.clone(),
                    });
                    ran.skipped.push((dependent, key.clone()));
                }
                ran.failed.push((key, error));
            }
        }
    }
    ran
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    type Steps = &'static [(&'static str, &'static [&'static str])];

    const GRAPH: Steps = &[
        ("rg", &[]),
        ("ws", &["rg"]),
        ("cluster", &["ws"]),
        ("env", &["ws"]),
        ("code", &["ws"]),
        ("job", &["cluster", "env", "code"]),
    ];

    fn queue(steps: Steps) -> DependencyQueue<&'static str, u64> {
        // Each step's value: how long it takes, in ms (longer for clusters, as in Azure).
        DependencyQueue::new(steps.iter().map(|(key, deps)| {
            let millis = if *key == "cluster" { 300 } else { 100 };
            (*key, millis, deps.to_vec())
        }))
        .unwrap()
    }

    /// Runs `steps`, failing those in `failing`, and returns the run and the events.
    async fn run(
        steps: Steps,
        max_parallel: usize,
        failing: &'static [&'static str],
        stop_after: Option<Duration>,
    ) -> (Ran<&'static str, String>, Vec<Event<&'static str, String>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let stop = async move {
            match stop_after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let ran = drive(
            queue(steps),
            max_parallel,
            stop,
            |key, millis| async move {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                if failing.contains(&key) {
                    Err(format!("{key} broke"))
                } else {
                    Ok(())
                }
            },
            |event| seen.lock().unwrap().push(event.clone()),
        )
        .await;
        let events = events.lock().unwrap().clone();
        (ran, events)
    }

    #[tokio::test(start_paused = true)]
    async fn independent_steps_run_at_once_and_the_critical_path_sets_the_time() {
        let started = tokio::time::Instant::now();
        let (ran, _) = run(GRAPH, 16, &[], None).await;
        assert!(ran.succeeded());
        assert_eq!(ran.done.len(), GRAPH.len());
        // rg, ws, the cluster (300 ms, alongside env and code), job: 100+100+300+100.
        assert_eq!(started.elapsed(), Duration::from_millis(600));
        assert_eq!(ran.done.last(), Some(&"job"));
    }

    #[tokio::test(start_paused = true)]
    async fn max_parallel_bounds_what_runs_at_once() {
        let started = tokio::time::Instant::now();
        let (ran, events) = run(GRAPH, 1, &[], None).await;
        assert!(ran.succeeded());
        // One at a time: the sum of all steps.
        assert_eq!(started.elapsed(), Duration::from_millis(800));
        let mut running = 0;
        for event in events {
            match event {
                Event::Started(_) => running += 1,
                Event::Done(_) => running -= 1,
                _ => {}
            }
            assert!(running <= 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_skips_its_dependents_and_the_rest_goes_on() {
        let (ran, events) = run(GRAPH, 16, &["env"], None).await;
        assert!(!ran.succeeded());
        assert_eq!(ran.failed, [("env", "env broke".to_string())]);
        assert_eq!(ran.skipped, [("job", "env")]);
        // The cluster and the code, which do not need the environment, are done.
        let mut done = ran.done.clone();
        done.sort();
        assert_eq!(done, ["cluster", "code", "rg", "ws"]);
        assert!(events.contains(&Event::Skipped {
            key: "job",
            because: "env"
        }));
        assert!(!events.contains(&Event::Started("job")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_starts_nothing_more_and_waits_for_what_runs() {
        // Stopped while the cluster, the environment and the code run (150 ms after
        // the workspace started): they finish; the job never starts.
        let (ran, events) = run(GRAPH, 16, &[], Some(Duration::from_millis(250))).await;
        assert!(ran.stopped);
        assert_eq!(ran.not_started, ["job"]);
        let mut done = ran.done.clone();
        done.sort();
        assert_eq!(done, ["cluster", "code", "env", "rg", "ws"]);
        assert!(!events.contains(&Event::Started("job")));
        assert!(!ran.succeeded());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_after_everything_ended_changes_nothing() {
        let (ran, _) = run(GRAPH, 16, &[], Some(Duration::from_secs(10))).await;
        assert!(ran.succeeded());
        assert!(!ran.stopped);
    }
}
